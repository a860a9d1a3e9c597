// The batch-verification kernels: one thread per item, with the reductions done in two
// levels (each thread folds a slice; the host launches again until one value is left).
// Bodies live in batch.cuh, shared with the host twin that `make test` checks against blst.
#include "batch.cuh"

using namespace bls;

extern "C" __global__ void sig_terms(const g2_affine *sigs, const u64 *r, g2 *terms,
                                     uint8_t *in_group, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) in_group[i] = sig_term(sigs[i], r[i], terms[i]);
}

// uniform: 256 bytes per item, expand_message_xmd of its message.
extern "C" __global__ void pair_terms(const g1_affine *pks, const uint8_t *uniform,
                                      const u64 *r, fp12 *out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = pair_term(pks[i], uniform + 256 * (size_t)i, r[i]);
}

// out[t] = in[t * slice] + ... + in[min(n, (t + 1) * slice) - 1]
extern "C" __global__ void sum_g2(g2 *out, const g2 *in, int n, int slice) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    int begin = t * slice;
    if (begin < n) out[t] = sum_range(in, begin, min(n, begin + slice));
}

extern "C" __global__ void product_fp12(fp12 *out, const fp12 *in, int n, int slice) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    int begin = t * slice;
    if (begin < n) out[t] = product_range(in, begin, min(n, begin + slice));
}
