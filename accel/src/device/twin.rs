//! The kernels' math compiled for the host (`accel/cuda/host_twin.cpp`): the same source
//! nvcc compiles for the GPU, built here with the host compiler so that every routine is
//! checked against blst on every machine, and so the device backend's job logic runs (as
//! [`HostTwin`]) where no GPU is present.
// FFI into the twin; every pointer is to a blst-layout value the twin reads or writes whole.
#![allow(unsafe_code)]

use super::{DeviceError, Expanded, Kernels};
use crate::backend::Backend;
use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine};
use rayon::prelude::*;
use rayon::ThreadPool;
use std::sync::Arc;

mod ffi {
    use blst::{blst_fp12, blst_p1_affine, blst_p2, blst_p2_affine};
    unsafe extern "C" {
        pub fn accel_twin_sig_terms(
            sigs: *const blst_p2_affine,
            r: *const u64,
            terms: *mut blst_p2,
            in_group: *mut u8,
            n: i32,
        );
        pub fn accel_twin_pair_terms(
            pks: *const blst_p1_affine,
            uniform: *const u8,
            r: *const u64,
            out: *mut blst_fp12,
            n: i32,
        );
        pub fn accel_twin_sum_g2(out: *mut blst_p2, input: *const blst_p2, n: i32);
        pub fn accel_twin_product_fp12(out: *mut blst_fp12, input: *const blst_fp12, n: i32);
    }
}

/// The device backend's kernels run on the host, one chunk of items per pool task: the
/// executor for tests and for machines without a GPU that still want the device path
/// exercised. It is slow (plain double-and-add, no sparse line products) and not selectable by
/// operators.
pub(crate) struct HostTwin {
    pool: Arc<ThreadPool>,
}

impl HostTwin {
    pub(crate) fn new(pool: Arc<ThreadPool>) -> Self {
        Self { pool }
    }
}

/// Items per task: a few tasks per pool thread, so uneven chunks even out.
fn chunk_len(pool: &ThreadPool, n: usize) -> usize {
    let tasks = pool.current_num_threads().max(1) * 2;
    n.div_ceil(tasks).max(1)
}

impl Kernels for HostTwin {
    fn kind(&self) -> Backend {
        Backend::DeviceTwin
    }

    fn sig_sum(&self, sigs: &[blst_p2_affine], r: &[u64]) -> Result<(bool, blst_p2), DeviceError> {
        super::check_job(sigs.len(), &[r.len()])?;
        let len = chunk_len(&self.pool, sigs.len());
        let parts: Vec<(bool, blst_p2)> = self.pool.install(|| {
            sigs.par_chunks(len)
                .zip(r.par_chunks(len))
                .map(|(s, r)| {
                    let mut terms = vec![blst_p2::default(); s.len()];
                    let mut in_group = vec![0u8; s.len()];
                    let mut sum = blst_p2::default();
                    // SAFETY: the twin reads `s.len()` items of `s` and `r`, writes as many
                    // of `terms` and `in_group`, then reads `terms` back.
                    unsafe {
                        ffi::accel_twin_sig_terms(
                            s.as_ptr(),
                            r.as_ptr(),
                            terms.as_mut_ptr(),
                            in_group.as_mut_ptr(),
                            s.len() as i32,
                        );
                        ffi::accel_twin_sum_g2(&mut sum, terms.as_ptr(), terms.len() as i32);
                    }
                    (in_group.iter().all(|&g| g == 1), sum)
                })
                .collect()
        });
        let all_in_group = parts.iter().all(|(g, _)| *g);
        let sums: Vec<blst_p2> = parts.into_iter().map(|(_, s)| s).collect();
        let mut total = blst_p2::default();
        // SAFETY: the twin reads `sums.len()` points.
        unsafe { ffi::accel_twin_sum_g2(&mut total, sums.as_ptr(), sums.len() as i32) };
        Ok((all_in_group, total))
    }

    fn pair_product(
        &self,
        pks: &[blst_p1_affine],
        uniform: &[Expanded],
        r: &[u64],
    ) -> Result<blst_fp12, DeviceError> {
        super::check_job(pks.len(), &[uniform.len(), r.len()])?;
        let len = chunk_len(&self.pool, pks.len());
        let products: Vec<blst_fp12> = self.pool.install(|| {
            pks.par_chunks(len)
                .zip(uniform.par_chunks(len))
                .zip(r.par_chunks(len))
                .map(|((p, h), r)| {
                    let mut loops = vec![blst_fp12::default(); p.len()];
                    let mut out = blst_fp12::default();
                    // SAFETY: the twin reads `p.len()` items of each input, writes as many
                    // Miller loops, then reads them back.
                    unsafe {
                        ffi::accel_twin_pair_terms(
                            p.as_ptr(),
                            h.as_ptr() as *const u8,
                            r.as_ptr(),
                            loops.as_mut_ptr(),
                            p.len() as i32,
                        );
                        ffi::accel_twin_product_fp12(&mut out, loops.as_ptr(), loops.len() as i32);
                    }
                    out
                })
                .collect()
        });
        let mut total = blst_fp12::default();
        // SAFETY: the twin reads `products.len()` values.
        unsafe {
            ffi::accel_twin_product_fp12(&mut total, products.as_ptr(), products.len() as i32)
        };
        Ok(total)
    }
}

/// Each routine of the kernels' math on its own, for the differential tests against blst.
#[cfg(test)]
pub(crate) mod math {
    use blst::{blst_fp, blst_fp12, blst_fp2, blst_p1, blst_p1_affine, blst_p2, blst_p2_affine};

    mod ffi {
        use blst::{
            blst_fp, blst_fp12, blst_fp2, blst_p1, blst_p1_affine, blst_p2, blst_p2_affine,
        };
        unsafe extern "C" {
            pub fn accel_twin_fp(
                op: i32,
                out: *mut blst_fp,
                a: *const blst_fp,
                b: *const blst_fp,
            ) -> i32;
            pub fn accel_twin_fp2(
                op: i32,
                out: *mut blst_fp2,
                a: *const blst_fp2,
                b: *const blst_fp2,
            ) -> i32;
            pub fn accel_twin_fp12(
                op: i32,
                out: *mut blst_fp12,
                a: *const blst_fp12,
                b: *const blst_fp12,
            ) -> i32;
            pub fn accel_twin_g1_decompress(out: *mut blst_p1_affine, input: *const u8) -> i32;
            pub fn accel_twin_g2_decompress(out: *mut blst_p2_affine, input: *const u8) -> i32;
            pub fn accel_twin_g1_on_curve(p: *const blst_p1_affine) -> i32;
            pub fn accel_twin_g2_on_curve(p: *const blst_p2_affine) -> i32;
            pub fn accel_twin_g1_in_subgroup(p: *const blst_p1_affine) -> i32;
            pub fn accel_twin_g2_in_subgroup(p: *const blst_p2_affine) -> i32;
            pub fn accel_twin_g1_add(out: *mut blst_p1, a: *const blst_p1, b: *const blst_p1);
            pub fn accel_twin_g2_add(out: *mut blst_p2, a: *const blst_p2, b: *const blst_p2);
            pub fn accel_twin_g1_dbl(out: *mut blst_p1, a: *const blst_p1);
            pub fn accel_twin_g2_dbl(out: *mut blst_p2, a: *const blst_p2);
            pub fn accel_twin_g1_to_affine(out: *mut blst_p1_affine, a: *const blst_p1);
            pub fn accel_twin_g2_to_affine(out: *mut blst_p2_affine, a: *const blst_p2);
            pub fn accel_twin_g1_mul(
                out: *mut blst_p1,
                p: *const blst_p1_affine,
                k: *const u64,
                words: i32,
            );
            pub fn accel_twin_g2_mul(
                out: *mut blst_p2,
                p: *const blst_p2_affine,
                k: *const u64,
                words: i32,
            );
            pub fn accel_twin_map_to_g2(
                out: *mut blst_p2,
                u0: *const blst_fp2,
                u1: *const blst_fp2,
            );
            pub fn accel_twin_hash_to_g2(out: *mut blst_p2_affine, uniform: *const u8);
            pub fn accel_twin_miller_loop(
                out: *mut blst_fp12,
                p: *const blst_p1_affine,
                q: *const blst_p2_affine,
            );
        }
    }

    /// A field operation of the twin (`op` as host_twin.cpp numbers them).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum FieldOp {
        Add = 0,
        Sub = 1,
        Mul = 2,
        Sqr = 3,
        Neg = 4,
        Inverse = 5,
        /// Returns whether a root exists.
        Sqrt = 6,
        /// The 32-bit-limb product the device build uses (Fp only).
        Mul32 = 7,
    }

    pub(crate) fn fp(op: FieldOp, a: &blst_fp, b: &blst_fp) -> (blst_fp, bool) {
        let mut out = blst_fp::default();
        // SAFETY: plain values of blst's layout; the twin writes `out` only.
        let rc = unsafe { ffi::accel_twin_fp(op as i32, &mut out, a, b) };
        (out, rc == 1)
    }

    pub(crate) fn fp2(op: FieldOp, a: &blst_fp2, b: &blst_fp2) -> (blst_fp2, bool) {
        let mut out = blst_fp2::default();
        // SAFETY: as above.
        let rc = unsafe { ffi::accel_twin_fp2(op as i32, &mut out, a, b) };
        (out, rc == 1)
    }

    /// 0 mul, 1 sqr, 2 conjugate.
    pub(crate) fn fp12(op: i32, a: &blst_fp12, b: &blst_fp12) -> blst_fp12 {
        let mut out = blst_fp12::default();
        // SAFETY: as above.
        unsafe { ffi::accel_twin_fp12(op, &mut out, a, b) };
        out
    }

    /// Decompresses 48 bytes; the status is blst's code (0 success, 1 bad encoding, 2 not on the
    /// curve).
    pub(crate) fn g1_decompress(bytes: &[u8; 48]) -> (blst_p1_affine, i32) {
        let mut out = blst_p1_affine::default();
        // SAFETY: the twin reads exactly 48 bytes.
        let rc = unsafe { ffi::accel_twin_g1_decompress(&mut out, bytes.as_ptr()) };
        (out, rc)
    }

    pub(crate) fn g2_decompress(bytes: &[u8; 96]) -> (blst_p2_affine, i32) {
        let mut out = blst_p2_affine::default();
        // SAFETY: the twin reads exactly 96 bytes.
        let rc = unsafe { ffi::accel_twin_g2_decompress(&mut out, bytes.as_ptr()) };
        (out, rc)
    }

    pub(crate) fn g1_on_curve(p: &blst_p1_affine) -> bool {
        // SAFETY: plain value.
        unsafe { ffi::accel_twin_g1_on_curve(p) == 1 }
    }

    pub(crate) fn g2_on_curve(p: &blst_p2_affine) -> bool {
        // SAFETY: plain value.
        unsafe { ffi::accel_twin_g2_on_curve(p) == 1 }
    }

    pub(crate) fn g1_in_subgroup(p: &blst_p1_affine) -> bool {
        // SAFETY: plain value.
        unsafe { ffi::accel_twin_g1_in_subgroup(p) == 1 }
    }

    pub(crate) fn g2_in_subgroup(p: &blst_p2_affine) -> bool {
        // SAFETY: plain value.
        unsafe { ffi::accel_twin_g2_in_subgroup(p) == 1 }
    }

    pub(crate) fn g1_add(a: &blst_p1, b: &blst_p1) -> blst_p1 {
        let mut out = blst_p1::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g1_add(&mut out, a, b) };
        out
    }

    pub(crate) fn g2_add(a: &blst_p2, b: &blst_p2) -> blst_p2 {
        let mut out = blst_p2::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g2_add(&mut out, a, b) };
        out
    }

    pub(crate) fn g1_dbl(a: &blst_p1) -> blst_p1 {
        let mut out = blst_p1::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g1_dbl(&mut out, a) };
        out
    }

    pub(crate) fn g2_dbl(a: &blst_p2) -> blst_p2 {
        let mut out = blst_p2::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g2_dbl(&mut out, a) };
        out
    }

    pub(crate) fn g1_to_affine(a: &blst_p1) -> blst_p1_affine {
        let mut out = blst_p1_affine::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g1_to_affine(&mut out, a) };
        out
    }

    pub(crate) fn g2_to_affine(a: &blst_p2) -> blst_p2_affine {
        let mut out = blst_p2_affine::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_g2_to_affine(&mut out, a) };
        out
    }

    /// [k]p with k as little-endian words.
    pub(crate) fn g1_mul(p: &blst_p1_affine, k: &[u64]) -> blst_p1 {
        let mut out = blst_p1::default();
        // SAFETY: the twin reads `k.len()` words.
        unsafe { ffi::accel_twin_g1_mul(&mut out, p, k.as_ptr(), k.len() as i32) };
        out
    }

    pub(crate) fn g2_mul(p: &blst_p2_affine, k: &[u64]) -> blst_p2 {
        let mut out = blst_p2::default();
        // SAFETY: the twin reads `k.len()` words.
        unsafe { ffi::accel_twin_g2_mul(&mut out, p, k.as_ptr(), k.len() as i32) };
        out
    }

    pub(crate) fn map_to_g2(u0: &blst_fp2, u1: &blst_fp2) -> blst_p2 {
        let mut out = blst_p2::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_map_to_g2(&mut out, u0, u1) };
        out
    }

    /// H(m) from expand_message_xmd(m, DST, 256).
    pub(crate) fn hash_to_g2(uniform: &[u8; 256]) -> blst_p2_affine {
        let mut out = blst_p2_affine::default();
        // SAFETY: the twin reads 256 bytes.
        unsafe { ffi::accel_twin_hash_to_g2(&mut out, uniform.as_ptr()) };
        out
    }

    pub(crate) fn miller_loop(p: &blst_p1_affine, q: &blst_p2_affine) -> blst_fp12 {
        let mut out = blst_fp12::default();
        // SAFETY: plain values.
        unsafe { ffi::accel_twin_miller_loop(&mut out, p, q) };
        out
    }
}
