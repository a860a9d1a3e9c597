//! The CUDA executor (feature `cuda`): one thread owns the CUDA context, the kernels' module
//! (PTX built from `accel/cuda/kernels.cu` by build.rs) and a stream; jobs reach it over a
//! channel and each answer comes back on the job's own channel, so callers on any pool thread
//! share one device without sharing the context.
//!
//! Buffers cross as 64-bit words: every value is a blst-layout struct of limbs (`blst_p2` is
//! 36 words, `blst_fp12` 72), which is also how the kernels read them.
// Views of blst's repr(C) limb structs as words, and kernel launches.
#![allow(unsafe_code)]

use super::{DeviceError, Expanded, Kernels};
use crate::backend::Backend;
use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine};
use cust::context::{Context, ContextFlags, CurrentContext, ResourceLimit};
use cust::device::Device;
use cust::memory::{CopyDestination, DeviceBuffer};
use cust::module::Module;
use cust::stream::{Stream, StreamFlags};
use cust::{launch, CudaFlags};
use std::sync::mpsc;
use std::sync::Mutex;

#[cfg(not(accel_cuda_fatbin))]
const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/kernels.ptx"));
/// Machine code for the architectures in `ACCEL_CUDA_SASS` at build time, and PTX for others.
#[cfg(accel_cuda_fatbin)]
const FATBIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernels.fatbin"));

/// The kernels: PTX from the file `ACCEL_CUDA_PTX` names when set (built on the GPU machine by
/// its own nvcc, for a driver older than the PTX built in), otherwise what build.rs built in.
/// PTX from nvcc 13 (the PyPI wheel) needs a CUDA 13 driver (580 or newer) to load.
fn load_module() -> Result<Module, String> {
    let driver = cust::CudaApiVersion::get()
        .map(|v| format!("{}.{}", v.major(), v.minor()))
        .unwrap_or_else(|e| format!("unknown ({e:?})"));
    if let Some(path) = std::env::var_os("ACCEL_CUDA_PTX") {
        let ptx = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "reading the kernels' PTX from ACCEL_CUDA_PTX={}: {e}",
                path.to_string_lossy()
            )
        })?;
        return Module::from_ptx(ptx, &[]).map_err(|e| {
            format!(
                "loading the kernels' PTX from {} (driver supports CUDA {driver}): {e:?}",
                path.to_string_lossy()
            )
        });
    }
    #[cfg(accel_cuda_fatbin)]
    let loaded = Module::from_fatbin(FATBIN, &[]);
    #[cfg(not(accel_cuda_fatbin))]
    let loaded = Module::from_ptx(PTX, &[]);
    loaded.map_err(|e| {
        format!(
            "loading the built-in kernels (driver supports CUDA {driver}): {e:?}; PTX from a \
             newer nvcc than the driver fails this way: update the driver, or build the PTX \
             with the machine's nvcc (`nvcc -ptx -arch=sm_80 accel/cuda/kernels.cu`) and name \
             it in ACCEL_CUDA_PTX"
        )
    })
}

/// Threads per block: the Miller loop holds an Fp12 and a G2 point per thread, so blocks
/// stay small enough for the registers they need.
const BLOCK: u32 = 64;
/// Stack per GPU thread, with room over the largest frame ptxas reports.
const STACK_BYTES: usize = 16 * 1024;
/// Items each thread folds per reduction round.
const SLICE: usize = 32;

/// The first device's name, or why CUDA cannot run here (no driver, no device).
pub(crate) fn probe() -> Result<String, String> {
    cust::init(CudaFlags::empty()).map_err(|e| {
        format!("the CUDA driver did not initialize ({e:?}); is the NVIDIA driver installed?")
    })?;
    let count = Device::num_devices().map_err(|e| format!("counting CUDA devices: {e:?}"))?;
    if count == 0 {
        return Err("no CUDA device is present".to_string());
    }
    let device = Device::get_device(0).map_err(|e| format!("opening CUDA device 0: {e:?}"))?;
    device
        .name()
        .map_err(|e| format!("reading CUDA device 0's name: {e:?}"))
}

type Reply<T> = mpsc::Sender<Result<T, DeviceError>>;

enum Job {
    SigSum {
        sigs: Vec<u64>,
        r: Vec<u64>,
        reply: Reply<(bool, blst_p2)>,
    },
    PairProduct {
        pks: Vec<u64>,
        uniform: Vec<u8>,
        r: Vec<u64>,
        reply: Reply<blst_fp12>,
    },
}

pub(crate) struct CudaKernels {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl CudaKernels {
    /// Starts the device thread: context, module and stream, or the reason they failed.
    pub(crate) fn start() -> Result<Self, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel::<Result<String, String>>();
        std::thread::Builder::new()
            .name("accel-cuda".to_string())
            .spawn(move || device_thread(inbox, ready))
            .map_err(|e| format!("spawning the CUDA thread: {e:?}"))?;
        match started.recv() {
            Ok(Ok(_name)) => Ok(Self {
                jobs: Mutex::new(jobs),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the CUDA thread ended while starting".to_string()),
        }
    }

    fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, DeviceError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .lock()
            .map_err(|_| DeviceError("the CUDA job queue is poisoned".to_string()))?
            .send(job(reply))
            .map_err(|_| DeviceError("the CUDA thread has stopped".to_string()))?;
        answer
            .recv()
            .map_err(|_| DeviceError("the CUDA thread dropped a job".to_string()))?
    }
}

impl Kernels for CudaKernels {
    fn kind(&self) -> Backend {
        Backend::Cuda
    }

    fn sig_sum(&self, sigs: &[blst_p2_affine], r: &[u64]) -> Result<(bool, blst_p2), DeviceError> {
        super::check_job(sigs.len(), &[r.len()])?;
        if r.is_empty() {
            return Ok((true, blst_p2::default()));
        }
        let sigs = words(sigs);
        self.submit(|reply| Job::SigSum {
            sigs,
            r: r.to_vec(),
            reply,
        })
    }

    fn pair_product(
        &self,
        pks: &[blst_p1_affine],
        uniform: &[Expanded],
        r: &[u64],
    ) -> Result<blst_fp12, DeviceError> {
        super::check_job(pks.len(), &[uniform.len(), r.len()])?;
        if r.is_empty() {
            // SAFETY: blst_fp12_one returns a pointer to a static value.
            return Ok(unsafe { *blst::blst_fp12_one() });
        }
        let pks = words(pks);
        let uniform = uniform.concat();
        self.submit(|reply| Job::PairProduct {
            pks,
            uniform,
            r: r.to_vec(),
            reply,
        })
    }
}

/// The words of a slice of blst limb structs (each a multiple of 8 bytes, 8-aligned).
fn words<T: Copy>(items: &[T]) -> Vec<u64> {
    let n = std::mem::size_of_val(items) / 8;
    // SAFETY: T is one of blst's repr(C) structs of u64 limbs: size a multiple of 8, alignment
    // 8, no padding, every bit pattern a valid u64.
    unsafe { std::slice::from_raw_parts(items.as_ptr() as *const u64, n).to_vec() }
}

/// One blst limb struct from its words.
fn from_words<T: Copy + Default>(w: &[u64]) -> T {
    let mut out = T::default();
    assert_eq!(std::mem::size_of::<T>(), w.len() * 8);
    // SAFETY: as in `words`; the sizes match.
    unsafe {
        std::ptr::copy_nonoverlapping(w.as_ptr(), &mut out as *mut T as *mut u64, w.len());
    }
    out
}

fn device_thread(inbox: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<String, String>>) {
    let setup = || -> Result<(Context, Module, Stream, String), String> {
        let name = probe()?;
        let device = Device::get_device(0).map_err(|e| format!("opening CUDA device 0: {e:?}"))?;
        // Waiting for a kernel blocks this thread instead of spinning a host core, which the
        // CPU backend and the node need meanwhile. Set before the primary context starts; where
        // the driver refuses (another user of the device started it first) only the waiting
        // differs, so the refusal is not an error.
        // SAFETY: a plain driver call on a valid device handle.
        let _ = unsafe {
            cust::sys::cuDevicePrimaryCtxSetFlags_v2(
                device.as_raw(),
                ContextFlags::SCHED_BLOCKING_SYNC.bits(),
            )
        };
        let ctx = Context::new(device).map_err(|e| format!("creating a CUDA context: {e:?}"))?;
        // The kernels keep Fp12 values and points on the stack of each thread: ptxas reports up
        // to 8.9 KB (pair_terms, sm_90), far above the 1 KB default.
        CurrentContext::set_resource_limit(ResourceLimit::StackSize, STACK_BYTES)
            .map_err(|e| format!("raising the CUDA stack to {STACK_BYTES} bytes: {e:?}"))?;
        let module = load_module().map_err(|e| format!("{name}: {e}"))?;
        // A blocking stream: it waits for the synchronous copies and memsets that cust issues
        // on the legacy stream, so a kernel never starts before its inputs have landed.
        let stream = Stream::new(StreamFlags::DEFAULT, None)
            .map_err(|e| format!("creating a CUDA stream: {e:?}"))?;
        Ok((ctx, module, stream, name))
    };
    let (_ctx, module, stream, name) = match setup() {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(name));
    for job in inbox {
        match job {
            Job::SigSum { sigs, r, reply } => {
                let _ = reply.send(sig_sum(&module, &stream, &sigs, &r).map_err(device_error));
            }
            Job::PairProduct {
                pks,
                uniform,
                r,
                reply,
            } => {
                let out = pair_product(&module, &stream, &pks, &uniform, &r);
                let _ = reply.send(out.map_err(device_error));
            }
        }
    }
}

fn device_error(e: cust::error::CudaError) -> DeviceError {
    DeviceError(format!("CUDA: {e:?}"))
}

fn grid(n: usize) -> u32 {
    (n as u32).div_ceil(BLOCK)
}

const P2_WORDS: usize = std::mem::size_of::<blst_p2>() / 8;
const FP12_WORDS: usize = std::mem::size_of::<blst_fp12>() / 8;

/// Waits for the stream when dropped: declared after a job's device buffers, it outlives none
/// of them, so no buffer is freed while a kernel launched on it may still run, on the error
/// paths too.
struct Synced<'a>(&'a Stream);

impl Drop for Synced<'_> {
    fn drop(&mut self) {
        let _ = self.0.synchronize();
    }
}

/// A device buffer every element of which the next kernel writes.
fn scratch<T: cust::memory::DeviceCopy>(len: usize) -> cust::error::CudaResult<DeviceBuffer<T>> {
    // SAFETY: nothing reads the buffer before a kernel has written all `len` elements.
    unsafe { DeviceBuffer::uninitialized(len) }
}

fn sig_sum(
    module: &Module,
    stream: &Stream,
    sigs: &[u64],
    r: &[u64],
) -> cust::error::CudaResult<(bool, blst_p2)> {
    let n = r.len();
    let d_sigs = DeviceBuffer::from_slice(sigs)?;
    let d_r = DeviceBuffer::from_slice(r)?;
    let d_terms = scratch::<u64>(n * P2_WORDS)?;
    let d_group = scratch::<u8>(n)?;
    let _synced = Synced(stream);
    // SAFETY: the kernel reads n items of each input and writes n items of each output, all
    // sized above (the caller checked the input lengths); arguments match kernels.cu.
    unsafe {
        launch!(module.sig_terms<<<grid(n), BLOCK, 0, stream>>>(
            d_sigs.as_device_ptr(),
            d_r.as_device_ptr(),
            d_terms.as_device_ptr(),
            d_group.as_device_ptr(),
            n as i32
        ))?;
    }
    let sum = fold(module, stream, "sum_g2", d_terms, n, P2_WORDS)?;
    let mut group = vec![0u8; n];
    d_group.copy_to(&mut group)?;
    Ok((group.iter().all(|&g| g == 1), from_words(&sum)))
}

fn pair_product(
    module: &Module,
    stream: &Stream,
    pks: &[u64],
    uniform: &[u8],
    r: &[u64],
) -> cust::error::CudaResult<blst_fp12> {
    let n = r.len();
    let d_pks = DeviceBuffer::from_slice(pks)?;
    let d_uniform = DeviceBuffer::from_slice(uniform)?;
    let d_r = DeviceBuffer::from_slice(r)?;
    let d_loops = scratch::<u64>(n * FP12_WORDS)?;
    let _synced = Synced(stream);
    // SAFETY: as in `sig_sum`.
    unsafe {
        launch!(module.pair_terms<<<grid(n), BLOCK, 0, stream>>>(
            d_pks.as_device_ptr(),
            d_uniform.as_device_ptr(),
            d_r.as_device_ptr(),
            d_loops.as_device_ptr(),
            n as i32
        ))?;
    }
    let product = fold(module, stream, "product_fp12", d_loops, n, FP12_WORDS)?;
    Ok(from_words(&product))
}

/// Folds n values of `words` words each down to one with a reduction kernel (`sum_g2`,
/// `product_fp12`): each round, one thread per SLICE values writes their fold. Waits for each
/// round before the buffer it read is freed, and returns the last value's words.
fn fold(
    module: &Module,
    stream: &Stream,
    kernel: &str,
    values: DeviceBuffer<u64>,
    n: usize,
    words: usize,
) -> cust::error::CudaResult<Vec<u64>> {
    let mut values = values;
    // Declared after `values`, so an early return (no such kernel, no memory for a round)
    // waits for the kernel that wrote `values` before freeing it.
    let _synced = Synced(stream);
    let function = module.get_function(kernel)?;
    let mut m = n;
    while m > 1 {
        let outs = m.div_ceil(SLICE);
        let d_out = scratch::<u64>(outs * words)?;
        // SAFETY: `outs` threads each fold SLICE of the m values into their own output, all
        // sized above; arguments match kernels.cu's reduction signature.
        let launched = unsafe {
            launch!(function<<<grid(outs), BLOCK, 0, stream>>>(
                d_out.as_device_ptr(),
                values.as_device_ptr(),
                m as i32,
                SLICE as i32
            ))
        };
        // The round must finish before `values`, which it reads, is freed (also on error).
        let waited = stream.synchronize();
        launched?;
        waited?;
        values = d_out;
        m = outs;
    }
    stream.synchronize()?;
    let mut out = vec![0u64; words];
    values.index(..words).copy_to(&mut out)?;
    Ok(out)
}
