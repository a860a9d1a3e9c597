//! Builds the kernels' math for the host (always: `make test` checks it against blst) and,
//! with the `cuda` feature, compiles the kernels to PTX with nvcc (ADR 0023).

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &[
    "arith.cuh",
    "fp.cuh",
    "fp2.cuh",
    "fp12.cuh",
    "curve.cuh",
    "pairing.cuh",
    "h2c_constants.cuh",
    "hash_to_g2.cuh",
    "batch.cuh",
    "host_twin.cpp",
    "kernels.cu",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(accel_cuda_fatbin)");
    let dir = Path::new("cuda");
    for s in SOURCES {
        println!("cargo:rerun-if-changed=cuda/{s}");
    }
    // The twin is a test oracle and the host executor of the device backend; it is built
    // optimized even in the dev profile, or the tests' Miller loops crawl.
    cc::Build::new()
        .cpp(true)
        .file(dir.join("host_twin.cpp"))
        .opt_level(2)
        .flag_if_supported("-std=c++14")
        .warnings(true)
        .compile("accel_twin");

    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        build_ptx(dir);
    }
}

/// nvcc -ptx cuda/kernels.cu -> $OUT_DIR/kernels.ptx, which the driver compiles for the GPU
/// it finds when the module loads (JIT, cached by the driver). With `ACCEL_CUDA_SASS` set to
/// a list of architectures (e.g. `sm_80,sm_90`), also a fatbin with machine code for each
/// and the PTX for any other, loaded instead: no JIT at the first start on those GPUs, at the
/// price of about a minute of build time per architecture. nvcc comes from `NVCC`, then
/// PATH (scripts/cuda-toolchain.sh installs one from PyPI).
fn build_ptx(dir: &Path) {
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=ACCEL_CUDA_ARCH");
    println!("cargo:rerun-if-env-changed=ACCEL_CUDA_SASS");
    let nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let arch = std::env::var("ACCEL_CUDA_ARCH").unwrap_or_else(|_| "sm_80".to_string());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    run_nvcc(
        &nvcc,
        &[&format!("-arch={arch}"), "-ptx"],
        &out.join("kernels.ptx"),
        dir,
    );
    let sass = std::env::var("ACCEL_CUDA_SASS").unwrap_or_default();
    let sass: Vec<&str> = sass
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !sass.is_empty() {
        let virt = arch.replace("sm_", "compute_");
        let mut args = vec!["-fatbin".to_string()];
        for sm in &sass {
            args.push(format!("-gencode=arch={virt},code={sm}"));
        }
        args.push(format!("-gencode=arch={virt},code={virt}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_nvcc(&nvcc, &args, &out.join("kernels.fatbin"), dir);
        println!("cargo:rustc-cfg=accel_cuda_fatbin");
    }
}

fn run_nvcc(nvcc: &Path, mode: &[&str], output: &Path, dir: &Path) {
    let status = Command::new(nvcc)
        .args(mode)
        .arg("-O3")
        .arg("-std=c++14")
        .arg("-o")
        .arg(output)
        .arg(dir.join("kernels.cu"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("nvcc failed ({s}) compiling accel/cuda/kernels.cu ({mode:?})"),
        Err(e) => panic!(
            "the `cuda` feature needs nvcc to build accel's kernels, and `{}` could not run \
             ({e}); install the CUDA toolkit, or run scripts/cuda-toolchain.sh and set NVCC \
             to the path it prints",
            nvcc.display()
        ),
    }
}
