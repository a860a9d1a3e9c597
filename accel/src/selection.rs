//! What the operator asks for (`accel.backend`, `--accel`) and what it resolves to on this
//! binary and machine: `auto` takes CUDA when it is built in and a device answers, and says
//! why when it falls back to the CPU.

use crate::backend::Backend;

/// What the operator asked for (`accel.backend`, `--accel`): a backend, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Reference,
    Cpu,
    /// The CUDA backend: refused with a reason when this binary or machine cannot run it.
    Cuda,
    /// CUDA when this binary has it and a device is present, otherwise the CPU backend (the
    /// reason is returned for the log).
    Auto,
}

impl std::str::FromStr for Selection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reference" => Ok(Self::Reference),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "auto" => Ok(Self::Auto),
            other => Err(format!(
                "unknown accel backend `{other}`: expected reference, cpu, cuda or auto"
            )),
        }
    }
}

/// Why the CUDA backend cannot run here (this binary is built without it).
pub const CUDA_NOT_BUILT: &str = "the cuda backend is not built into this binary (it needs the \
     cargo feature `cuda` and the CUDA toolkit at build time); use `cpu` or `auto`";

impl Selection {
    /// The backend to run, and for `auto` the reason it settled on the CPU; `cuda` where it
    /// cannot run is an error that says why.
    pub fn resolve(self) -> Result<(Backend, Option<String>), String> {
        match self {
            Self::Reference => Ok((Backend::Reference, None)),
            Self::Cpu => Ok((Backend::Cpu, None)),
            Self::Cuda => cuda_available().map(|()| (Backend::Cuda, None)),
            Self::Auto => Ok(match cuda_available() {
                Ok(()) => (
                    Backend::Cuda,
                    Some("auto: using the cuda backend".to_string()),
                ),
                Err(why) => (
                    Backend::Cpu,
                    Some(format!(
                        "auto: using the multicore CPU backend, because {why}"
                    )),
                ),
            }),
        }
    }
}

/// Whether the CUDA backend can run here: built in, a driver, and a device.
#[cfg(feature = "cuda")]
fn cuda_available() -> Result<(), String> {
    crate::device::cuda::probe().map(|_| ())
}

#[cfg(not(feature = "cuda"))]
fn cuda_available() -> Result<(), String> {
    Err(CUDA_NOT_BUILT.to_string())
}
