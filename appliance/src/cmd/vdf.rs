//! `harmony-appliance vdf prove|verify`: the class-group VDF, with chiavdf's formats.
//!
//! `prove` starts from the generator (a = 2, b = 1) of the discriminant derived from the
//! challenge and prints hex(y ‖ π), byte for byte what chiavdf's `prove` returns; `verify`
//! exits 0 only when that blob is a valid proof, and says why not otherwise.

use accel::vdf::{self, Discriminant, Form, Proof};
use clap::{Args, Subcommand};
use eyre::{bail, eyre, WrapErr};

#[derive(Debug, Subcommand)]
pub enum VdfCmd {
    /// Evaluate and prove; prints the hex of the output element followed by the proof.
    Prove(ProveArgs),
    /// Check an output-and-proof blob; exit 0 only when it is valid.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// Challenge (discriminant seed), hex.
    #[arg(long)]
    pub challenge: String,
    /// Number of squarings.
    #[arg(long)]
    pub iterations: u64,
    /// Size of the discriminant in bits (a multiple of 8, at most 1024).
    #[arg(long, default_value_t = 1024)]
    pub discriminant_bits: usize,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output element followed by the proof, hex (as `vdf prove` or chiavdf's `prove` give).
    #[arg(long)]
    pub output: String,
}

fn discriminant(c: &Common) -> eyre::Result<Discriminant> {
    let seed = hex::decode(c.challenge.trim().trim_start_matches("0x"))
        .map_err(|e| eyre!("--challenge is not hex: {e}"))?;
    Discriminant::from_seed(&seed, c.discriminant_bits).wrap_err("bad VDF parameters")
}

pub fn run(cmd: &VdfCmd) -> eyre::Result<()> {
    match cmd {
        VdfCmd::Prove(a) => {
            let d = discriminant(&a.common)?;
            // The squarings are sequential; the proof is spread over the cores.
            let pool = rayon::ThreadPoolBuilder::new()
                .build()
                .wrap_err("cannot start the proof's thread pool")?;
            let x = Form::generator(&d);
            let proof = vdf::prove_with_progress(&d, &x, a.common.iterations, Some(&pool), |_| {})?;
            println!("{}", hex::encode(proof.to_bytes(&d)?));
            Ok(())
        }
        VdfCmd::Verify(a) => {
            let d = discriminant(&a.common)?;
            let blob = hex::decode(a.output.trim().trim_start_matches("0x"))
                .map_err(|e| eyre!("--output is not hex: {e}"))?;
            let proof = Proof::from_bytes(&blob, &d).wrap_err("invalid proof")?;
            let x = Form::generator(&d);
            if !vdf::verify(&d, &x, &proof.y, &proof.pi, a.common.iterations)? {
                bail!(
                    "invalid proof: pi^B * x^(2^T mod B) != y for T = {}",
                    a.common.iterations
                );
            }
            println!("valid");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(iterations: u64) -> Common {
        Common {
            challenge: "c0ffee".into(),
            iterations,
            discriminant_bits: 512,
        }
    }

    #[test]
    fn verify_accepts_a_proof_and_explains_refusals() {
        let d = discriminant(&common(0)).unwrap();
        let blob = vdf::prove(&d, &Form::generator(&d), 600)
            .unwrap()
            .to_bytes(&d)
            .unwrap();
        let verify = |iterations, output: String| {
            run(&VdfCmd::Verify(VerifyArgs {
                common: common(iterations),
                output,
            }))
        };
        verify(600, hex::encode(&blob)).unwrap();
        let e = verify(601, hex::encode(&blob)).unwrap_err();
        assert!(format!("{e:#}").contains("invalid proof"), "{e:#}");
        let e = verify(600, hex::encode(&blob[..150])).unwrap_err();
        assert!(format!("{e:#}").contains("200 bytes"), "{e:#}");
        assert!(verify(600, "xyz".into()).is_err());
        let bad = Common {
            challenge: "zz".into(),
            ..common(1)
        };
        assert!(format!("{:#}", discriminant(&bad).unwrap_err()).contains("not hex"));
        run(&VdfCmd::Prove(ProveArgs { common: common(10) })).unwrap();
    }
}
