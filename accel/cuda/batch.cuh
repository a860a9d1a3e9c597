// The per-item bodies of the batch-verification kernels: kernels.cu runs one per GPU
// thread, host_twin.cpp one per loop iteration. A batch of n triples (pk_i, m_i, sig_i)
// with random 64-bit r_i holds iff
//     e(g1, sum r_i sig_i) = prod e(r_i pk_i, H(m_i)).
// The device computes each r_i sig_i (after the signature's subgroup check), each H(m_i)
// from its expanded message, each Miller loop e(r_i pk_i, H(m_i)), and the reductions (a sum
// in G2, a product in Fp12); the host expands the messages (SHA-256), adds the last Miller
// loop and runs the final exponentiation.
#pragma once
#include "hash_to_g2.cuh"
#include "pairing.cuh"

namespace bls {

// Whether sig is in G2 (the identity is, as blst counts it), and r * sig.
ACCEL_HD bool sig_term(const g2_affine &sig, u64 r, g2 &out) {
    out = mul_scalar(sig, &r, 1);
    return in_subgroup(sig);
}

// The Miller loop of (r * pk, H(m)), from m's 256 expanded bytes.
ACCEL_HD fp12 pair_term(const g1_affine &pk, const uint8_t *uniform, u64 r) {
    g1_affine rp = to_affine(mul_scalar(pk, &r, 1));
    return miller_loop(rp, hash_to_g2_expanded(uniform));
}

// One thread's share of a reduction: the sum (or product) of in[begin, end).
ACCEL_HD g2 sum_range(const g2 *in, int begin, int end) {
    g2 acc = infinity<fp2>();
    for (int i = begin; i < end; i++) acc = add(acc, in[i]);
    return acc;
}

ACCEL_HD fp12 product_range(const fp12 *in, int begin, int end) {
    fp12 acc = fp12_one();
    for (int i = begin; i < end; i++) acc = mul(acc, in[i]);
    return acc;
}

}  // namespace bls
