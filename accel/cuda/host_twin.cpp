// The kernels' math compiled for the host: the C ABI that accel's Rust code calls to check
// every routine against blst (`make test`, on every machine), and the host executor that
// runs the batch kernels' bodies one item per loop iteration, as a GPU grid would.
//
// Every argument points to a blst-layout value (blst_fp, blst_fp2, blst_fp12, blst_p1,
// blst_p1_affine, blst_p2, blst_p2_affine).
#include "batch.cuh"

using namespace bls;

// Field operations, selected by `op`: 0 add, 1 sub, 2 mul, 3 sqr, 4 neg, 5 inverse, 6 sqrt
// (returns whether a root exists). Other ops return -1.
template <class F>
static int field_op(int op, F *out, const F *a, const F *b) {
    switch (op) {
        case 0: *out = add(*a, *b); return 0;
        case 1: *out = sub(*a, *b); return 0;
        case 2: *out = mul(*a, *b); return 0;
        case 3: *out = sqr(*a); return 0;
        case 4: *out = neg(*a); return 0;
        case 5: *out = inverse(*a); return 0;
        case 6: return sqrt(*out, *a) ? 1 : 0;
        default: return -1;
    }
}

extern "C" {

// 7: the 32-bit-limb product the device build uses.
int accel_twin_fp(int op, fp *out, const fp *a, const fp *b) {
    if (op == 7) {
        *out = mul32(*a, *b);
        return 0;
    }
    return field_op(op, out, a, b);
}

int accel_twin_fp2(int op, fp2 *out, const fp2 *a, const fp2 *b) {
    return field_op(op, out, a, b);
}

// 0 mul, 1 sqr, 2 conjugate.
int accel_twin_fp12(int op, fp12 *out, const fp12 *a, const fp12 *b) {
    switch (op) {
        case 0: *out = mul(*a, *b); return 0;
        case 1: *out = sqr(*a); return 0;
        case 2: *out = conj(*a); return 0;
        default: return -1;
    }
}

int accel_twin_g1_decompress(g1_affine *out, const uint8_t *in) { return decompress(*out, in); }
int accel_twin_g2_decompress(g2_affine *out, const uint8_t *in) { return decompress(*out, in); }

int accel_twin_g1_on_curve(const g1_affine *p) { return on_curve(*p); }
int accel_twin_g2_on_curve(const g2_affine *p) { return on_curve(*p); }
int accel_twin_g1_in_subgroup(const g1_affine *p) { return in_subgroup(*p); }
int accel_twin_g2_in_subgroup(const g2_affine *p) { return in_subgroup(*p); }

void accel_twin_g1_add(g1 *out, const g1 *a, const g1 *b) { *out = add(*a, *b); }
void accel_twin_g2_add(g2 *out, const g2 *a, const g2 *b) { *out = add(*a, *b); }
void accel_twin_g1_dbl(g1 *out, const g1 *a) { *out = dbl(*a); }
void accel_twin_g2_dbl(g2 *out, const g2 *a) { *out = dbl(*a); }
void accel_twin_g1_to_affine(g1_affine *out, const g1 *a) { *out = to_affine(*a); }
void accel_twin_g2_to_affine(g2_affine *out, const g2 *a) { *out = to_affine(*a); }

void accel_twin_g1_mul(g1 *out, const g1_affine *p, const u64 *k, int words) {
    *out = mul_scalar(*p, k, words);
}
void accel_twin_g2_mul(g2 *out, const g2_affine *p, const u64 *k, int words) {
    *out = mul_scalar(*p, k, words);
}

void accel_twin_map_to_g2(g2 *out, const fp2 *u0, const fp2 *u1) { *out = map_to_g2(*u0, *u1); }

void accel_twin_hash_to_g2(g2_affine *out, const uint8_t *uniform) {
    *out = hash_to_g2_expanded(uniform);
}

void accel_twin_miller_loop(fp12 *out, const g1_affine *p, const g2_affine *q) {
    *out = miller_loop(*p, *q);
}

// The batch kernels over n items, as kernels.cu runs them over a grid.
void accel_twin_sig_terms(const g2_affine *sigs, const u64 *r, g2 *terms, uint8_t *in_group,
                          int n) {
    for (int i = 0; i < n; i++) in_group[i] = sig_term(sigs[i], r[i], terms[i]);
}

void accel_twin_pair_terms(const g1_affine *pks, const uint8_t *uniform, const u64 *r,
                           fp12 *out, int n) {
    for (int i = 0; i < n; i++) out[i] = pair_term(pks[i], uniform + 256 * (size_t)i, r[i]);
}

void accel_twin_sum_g2(g2 *out, const g2 *in, int n) { *out = sum_range(in, 0, n); }

void accel_twin_product_fp12(fp12 *out, const fp12 *in, int n) {
    *out = product_range(in, 0, n);
}

}  // extern "C"
