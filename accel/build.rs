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

/// nvcc -ptx cuda/kernels.cu -> $OUT_DIR/kernels.ptx. nvcc comes from `NVCC`, then PATH,
/// then the PyPI wheel `nvidia-cuda-nvcc` (scripts/cuda-toolchain.sh installs it).
fn build_ptx(dir: &Path) {
    println!("cargo:rerun-if-env-changed=NVCC");
    println!("cargo:rerun-if-env-changed=ACCEL_CUDA_ARCH");
    let nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let arch = std::env::var("ACCEL_CUDA_ARCH").unwrap_or_else(|_| "sm_80".to_string());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let ptx = out.join("kernels.ptx");
    let status = Command::new(&nvcc)
        .arg("-ptx")
        .arg(format!("-arch={arch}"))
        .arg("-O3")
        .arg("-std=c++14")
        .arg("-o")
        .arg(&ptx)
        .arg(dir.join("kernels.cu"))
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("nvcc failed ({s}) compiling accel/cuda/kernels.cu to PTX"),
        Err(e) => panic!(
            "the `cuda` feature needs nvcc to build accel's kernels, and `{}` could not run \
             ({e}); install the CUDA toolkit, or run scripts/cuda-toolchain.sh and set NVCC \
             to the path it prints",
            nvcc.display()
        ),
    }
}
