//! Conformance against BLS test vectors laid out like the Ethereum consensus BLS vectors
//! (`<kind>/<case>.yaml`, each with `input` and `output`). Defaults to the vectors committed in
//! `accel/tests/vectors` (generated with py_ecc by `scripts/gen_bls_vectors.py`); the
//! environment variable `ACCEL_BLS_VECTORS` points it at another directory, for example the
//! Ethereum release `bls_tests_yaml`. Prints how many cases of each kind passed; fails on any
//! mismatch, on an unreadable case, or when no case was found.

use accel::{AggregateSignature, BatchItem, Engine, PublicKey, SecretKey, Signature};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("expected a hex string, got {v:?}"))?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("bad hex {s}: {e}"))
}

fn list(v: &Value) -> Result<Vec<Vec<u8>>, String> {
    v.as_sequence()
        .ok_or_else(|| format!("expected a list, got {v:?}"))?
        .iter()
        .map(bytes)
        .collect()
}

fn out_bytes(v: &Value) -> Result<Option<Vec<u8>>, String> {
    if v.is_null() {
        Ok(None)
    } else {
        bytes(v).map(Some)
    }
}

fn out_bool(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected a boolean output, got {v:?}"))
}

fn pks(v: &Value) -> Result<Option<Vec<PublicKey>>, String> {
    Ok(list(v)?
        .iter()
        .map(|b| PublicKey::from_bytes(b).ok())
        .collect())
}

/// Runs one case with `engine`; Ok(true) when our answer equals the expected output.
fn run_case(engine: &Engine, kind: &str, case: &Value) -> Result<bool, String> {
    let input = &case["input"];
    let output = &case["output"];
    Ok(match kind {
        "sign" => {
            let got = SecretKey::from_bytes(&bytes(&input["privkey"])?)
                .ok()
                .map(|sk| {
                    sk.sign(&bytes(&input["message"]).unwrap_or_default())
                        .to_bytes()
                        .to_vec()
                });
            got == out_bytes(output)?
        }
        "verify" => {
            let pk = PublicKey::from_bytes(&bytes(&input["pubkey"])?);
            let sig = Signature::from_bytes(&bytes(&input["signature"])?);
            let msg = bytes(&input["message"])?;
            let got = match (pk, sig) {
                (Ok(pk), Ok(sig)) => sig.verify(&pk, &msg),
                _ => false,
            };
            got == out_bool(output)?
        }
        "aggregate" => {
            let sigs: Result<Vec<Signature>, _> = list(input)?
                .iter()
                .map(|b| Signature::from_bytes(b))
                .collect();
            let got = sigs
                .ok()
                .and_then(|s| AggregateSignature::aggregate(&s).ok())
                .map(|a| a.to_signature().to_bytes().to_vec());
            got == out_bytes(output)?
        }
        "fast_aggregate_verify" => {
            let msg = bytes(&input["message"])?;
            let got = match (
                pks(&input["pubkeys"])?,
                Signature::from_bytes(&bytes(&input["signature"])?),
            ) {
                (Some(pks), Ok(sig)) => engine.fast_aggregate_verify(&pks, &msg, &sig),
                _ => false,
            };
            got == out_bool(output)?
        }
        "aggregate_verify" => {
            let msgs = list(&input["messages"])?;
            let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            let got = match (
                pks(&input["pubkeys"])?,
                Signature::from_bytes(&bytes(&input["signature"])?),
            ) {
                (Some(pks), Ok(sig)) => engine.aggregate_verify(&pks, &refs, &sig),
                _ => false,
            };
            got == out_bool(output)?
        }
        "batch_verify" => {
            let msgs = list(&input["messages"])?;
            let sigs: Option<Vec<Signature>> = list(&input["signatures"])?
                .iter()
                .map(|b| Signature::from_bytes(b).ok())
                .collect();
            let got = match (pks(&input["pubkeys"])?, sigs) {
                (Some(pks), Some(sigs)) if pks.len() == msgs.len() && sigs.len() == msgs.len() => {
                    let items: Vec<BatchItem> = (0..pks.len())
                        .map(|i| BatchItem {
                            public_key: &pks[i],
                            message: &msgs[i],
                            signature: &sigs[i],
                        })
                        .collect();
                    engine.batch_verify(&items)
                }
                _ => false,
            };
            got == out_bool(output)?
        }
        "deserialization_G1" => {
            accel::decode_g1_point(&bytes(&input["pubkey"])?).is_ok() == out_bool(output)?
        }
        "deserialization_G2" => {
            accel::decode_g2_point(&bytes(&input["signature"])?).is_ok() == out_bool(output)?
        }
        other => return Err(format!("unknown kind {other}")),
    })
}

const KINDS: [&str; 8] = [
    "sign",
    "verify",
    "aggregate",
    "fast_aggregate_verify",
    "aggregate_verify",
    "batch_verify",
    "deserialization_G1",
    "deserialization_G2",
];

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            // The Ethereum consensus-spec-tests layout nests cases one directory deeper
            // (`<kind>/<suite>/<case>/data.yaml`).
            out.extend(yaml_files(&p));
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn bls_vectors() {
    let root = std::env::var_os("ACCEL_BLS_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors"));
    // Written to stderr directly, so the counts show even when the test harness captures.
    let mut log = std::io::stderr();
    writeln!(log, "BLS vectors from {}", root.display()).ok();
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    // The device backend runs its kernels on the host everywhere, and on a GPU where this
    // binary has the `cuda` feature and the machine a device.
    let mut engines = vec![
        Engine::reference(),
        Engine::cpu(pool.clone()),
        Engine::device_twin(pool.clone()),
    ];
    match accel::Selection::Cuda.resolve() {
        Ok((backend, _)) => engines.push(Engine::new(backend, pool).expect("the cuda backend")),
        Err(why) => {
            writeln!(log, "BLS vectors: not run on the cuda backend: {why}").ok();
        }
    }
    let mut passed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for kind in KINDS {
        for file in yaml_files(&root.join(kind)) {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{}: {e}", file.display()));
                    continue;
                }
            };
            let case: Value = match serde_yaml::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{}: bad YAML: {e}", file.display()));
                    continue;
                }
            };
            for engine in &engines {
                match run_case(engine, kind, &case) {
                    Ok(true) => {}
                    Ok(false) => {
                        failures.push(format!("{}: mismatch ({engine:?})", file.display()))
                    }
                    Err(e) => failures.push(format!("{}: {e}", file.display())),
                }
            }
            if !failures
                .iter()
                .any(|f| f.starts_with(&file.display().to_string()))
            {
                *passed.entry(kind).or_default() += 1;
            }
        }
    }
    let total: usize = passed.values().sum();
    for kind in KINDS {
        let n = passed.get(kind).copied().unwrap_or(0);
        writeln!(log, "{kind:>24}: {n} cases passed").ok();
    }
    writeln!(
        log,
        "BLS vectors: {total} cases passed, {} failures",
        failures.len()
    )
    .ok();
    for f in &failures {
        writeln!(log, "FAIL {f}").ok();
    }
    assert!(
        total + failures.len() > 0,
        "no BLS vector found under {} (expected <kind>/<case>.yaml)",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} vector case(s) failed",
        failures.len()
    );
}
