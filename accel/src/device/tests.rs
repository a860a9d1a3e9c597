//! The kernels' math (compiled for the host) against blst, on random and edge inputs; then
//! the device backend, run by the host twin, against the CPU backend on whole batches.
// blst's C API as the oracle.
#![allow(unsafe_code)]

use super::twin::math::{self as twin, FieldOp};
use blst::*;
use rand::{Rng, RngCore, SeedableRng};

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(0x5eed16)
}

fn random_fp(rng: &mut impl RngCore) -> blst_fp {
    // 64 random bytes reduced mod p by blst.
    let mut bytes = [0u8; 48];
    rng.fill_bytes(&mut bytes);
    bytes[47] &= 0x0f;
    let mut out = blst_fp::default();
    // SAFETY: blst reads 48 bytes.
    unsafe { blst_fp_from_lendian(&mut out, bytes.as_ptr()) };
    out
}

fn fp_edges() -> Vec<blst_fp> {
    let from = |v: u64| {
        let mut out = blst_fp::default();
        // SAFETY: plain values.
        unsafe { blst_fp_from_uint64(&mut out, [v, 0, 0, 0, 0, 0].as_ptr()) };
        out
    };
    let mut minus_one = blst_fp::default();
    // SAFETY: plain values.
    unsafe { blst_fp_cneg(&mut minus_one, &from(1), true) };
    vec![blst_fp::default(), from(1), from(2), minus_one]
}

fn random_fp2(rng: &mut impl RngCore) -> blst_fp2 {
    blst_fp2 {
        fp: [random_fp(rng), random_fp(rng)],
    }
}

fn random_fp12(rng: &mut impl RngCore) -> blst_fp12 {
    let mut out = blst_fp12::default();
    for six in out.fp6.iter_mut() {
        for two in six.fp2.iter_mut() {
            *two = random_fp2(rng);
        }
    }
    out
}

fn random_scalar(rng: &mut impl RngCore) -> [u64; 4] {
    let mut k = [0u64; 4];
    rng.fill(&mut k[..]);
    k[3] &= 0x3fff_ffff_ffff_ffff;
    k
}

fn scalar_bytes(k: &[u64]) -> Vec<u8> {
    k.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn g1_point(k: &[u64; 4]) -> blst_p1 {
    let mut out = blst_p1::default();
    // SAFETY: blst reads 256 bits of scalar.
    unsafe { blst_p1_mult(&mut out, blst_p1_generator(), scalar_bytes(k).as_ptr(), 256) };
    out
}

fn g2_point(k: &[u64; 4]) -> blst_p2 {
    let mut out = blst_p2::default();
    // SAFETY: as above.
    unsafe { blst_p2_mult(&mut out, blst_p2_generator(), scalar_bytes(k).as_ptr(), 256) };
    out
}

fn g1_affine(p: &blst_p1) -> blst_p1_affine {
    let mut out = blst_p1_affine::default();
    // SAFETY: plain values.
    unsafe { blst_p1_to_affine(&mut out, p) };
    out
}

fn g2_affine(p: &blst_p2) -> blst_p2_affine {
    let mut out = blst_p2_affine::default();
    // SAFETY: plain values.
    unsafe { blst_p2_to_affine(&mut out, p) };
    out
}

fn g1_eq(a: &blst_p1, b: &blst_p1) -> bool {
    // SAFETY: plain values.
    unsafe { blst_p1_is_equal(a, b) }
}

fn g2_eq(a: &blst_p2, b: &blst_p2) -> bool {
    // SAFETY: plain values.
    unsafe { blst_p2_is_equal(a, b) }
}

#[test]
fn fp_matches_blst() {
    let mut rng = rng();
    let mut values = fp_edges();
    values.extend((0..200).map(|_| random_fp(&mut rng)));
    for a in &values {
        for b in values.iter().take(24) {
            let mut want = blst_fp::default();
            // SAFETY: plain values.
            unsafe { blst_fp_add(&mut want, a, b) };
            assert_eq!(twin::fp(FieldOp::Add, a, b).0, want, "add");
            unsafe { blst_fp_sub(&mut want, a, b) };
            assert_eq!(twin::fp(FieldOp::Sub, a, b).0, want, "sub");
            unsafe { blst_fp_mul(&mut want, a, b) };
            assert_eq!(twin::fp(FieldOp::Mul, a, b).0, want, "mul");
            assert_eq!(twin::fp(FieldOp::Mul32, a, b).0, want, "mul, 32-bit limbs");
        }
        let mut want = blst_fp::default();
        // SAFETY: plain values.
        unsafe { blst_fp_sqr(&mut want, a) };
        assert_eq!(twin::fp(FieldOp::Sqr, a, a).0, want, "sqr");
        unsafe { blst_fp_cneg(&mut want, a, true) };
        assert_eq!(twin::fp(FieldOp::Neg, a, a).0, want, "neg");
        unsafe { blst_fp_inverse(&mut want, a) };
        assert_eq!(twin::fp(FieldOp::Inverse, a, a).0, want, "inverse");
        let has_root = unsafe { blst_fp_sqrt(&mut want, a) };
        let (root, ok) = twin::fp(FieldOp::Sqrt, a, a);
        assert_eq!(ok, has_root, "sqrt exists");
        if ok {
            assert_eq!(
                twin::fp(FieldOp::Sqr, &root, &root).0,
                *a,
                "sqrt squares back"
            );
        }
    }
}

/// The device's 32-bit-limb product, on many more random pairs than the other operations.
#[test]
fn fp_mul32_matches_blst() {
    let mut rng = rng();
    for _ in 0..20_000 {
        let (a, b) = (random_fp(&mut rng), random_fp(&mut rng));
        let mut want = blst_fp::default();
        // SAFETY: plain values.
        unsafe { blst_fp_mul(&mut want, &a, &b) };
        assert_eq!(twin::fp(FieldOp::Mul32, &a, &b).0, want);
    }
}

#[test]
fn fp2_matches_blst() {
    let mut rng = rng();
    let zero = blst_fp2::default();
    let edges = fp_edges();
    let mut values: Vec<blst_fp2> = vec![zero];
    for &x in &edges {
        for &y in &edges {
            values.push(blst_fp2 { fp: [x, y] });
        }
    }
    values.extend((0..100).map(|_| random_fp2(&mut rng)));
    let mut roots = 0;
    for a in &values {
        for b in values.iter().take(20) {
            let mut want = blst_fp2::default();
            // SAFETY: plain values.
            unsafe { blst_fp2_add(&mut want, a, b) };
            assert_eq!(twin::fp2(FieldOp::Add, a, b).0, want, "add");
            unsafe { blst_fp2_sub(&mut want, a, b) };
            assert_eq!(twin::fp2(FieldOp::Sub, a, b).0, want, "sub");
            unsafe { blst_fp2_mul(&mut want, a, b) };
            assert_eq!(twin::fp2(FieldOp::Mul, a, b).0, want, "mul");
        }
        let mut want = blst_fp2::default();
        // SAFETY: plain values.
        unsafe { blst_fp2_sqr(&mut want, a) };
        assert_eq!(twin::fp2(FieldOp::Sqr, a, a).0, want, "sqr");
        unsafe { blst_fp2_cneg(&mut want, a, true) };
        assert_eq!(twin::fp2(FieldOp::Neg, a, a).0, want, "neg");
        unsafe { blst_fp2_inverse(&mut want, a) };
        assert_eq!(twin::fp2(FieldOp::Inverse, a, a).0, want, "inverse");
        let has_root = unsafe { blst_fp2_sqrt(&mut want, a) };
        let (root, ok) = twin::fp2(FieldOp::Sqrt, a, a);
        assert_eq!(ok, has_root, "sqrt exists for {a:?}");
        if ok {
            roots += 1;
            assert_eq!(
                twin::fp2(FieldOp::Sqr, &root, &root).0,
                *a,
                "sqrt squares back"
            );
        }
    }
    assert!(
        roots > 20,
        "the inputs hold squares as well as non-squares ({roots})"
    );
}

#[test]
fn fp12_matches_blst() {
    let mut rng = rng();
    // SAFETY: blst_fp12_one returns a pointer to a static.
    let one = unsafe { *blst_fp12_one() };
    let mut values = vec![one];
    values.extend((0..20).map(|_| random_fp12(&mut rng)));
    for a in &values {
        for b in &values {
            let mut want = blst_fp12::default();
            // SAFETY: plain values.
            unsafe { blst_fp12_mul(&mut want, a, b) };
            assert_eq!(twin::fp12(0, a, b), want, "mul");
        }
        let mut want = blst_fp12::default();
        // SAFETY: plain values.
        unsafe { blst_fp12_sqr(&mut want, a) };
        assert_eq!(twin::fp12(1, a, a), want, "sqr");
        want = *a;
        unsafe { blst_fp12_conjugate(&mut want) };
        assert_eq!(twin::fp12(2, a, a), want, "conjugate");
    }
}

#[test]
fn group_arithmetic_matches_blst() {
    let mut rng = rng();
    for i in 0..12 {
        let (k1, k2) = (random_scalar(&mut rng), random_scalar(&mut rng));
        let (p, q) = (g1_point(&k1), g1_point(&k2));
        let mut want = blst_p1::default();
        // SAFETY: plain values.
        unsafe { blst_p1_add_or_double(&mut want, &p, &q) };
        assert!(g1_eq(&twin::g1_add(&p, &q), &want), "g1 add");
        assert!(
            g1_eq(&twin::g1_add(&p, &p), &twin::g1_dbl(&p)),
            "g1 add = dbl"
        );
        unsafe { blst_p1_double(&mut want, &p) };
        assert!(g1_eq(&twin::g1_dbl(&p), &want), "g1 dbl");
        assert_eq!(twin::g1_to_affine(&p), g1_affine(&p), "g1 affine");
        let pa = g1_affine(&p);
        assert!(twin::g1_on_curve(&pa) && twin::g1_in_subgroup(&pa));
        // [k]P for scalars of 64 and 256 bits.
        let words: &[u64] = if i % 2 == 0 { &k2[..1] } else { &k2[..] };
        let mut want = blst_p1::default();
        // SAFETY: blst reads 64 bits per word given.
        unsafe {
            blst_p1_mult(
                &mut want,
                &p,
                scalar_bytes(words).as_ptr(),
                64 * words.len(),
            )
        };
        assert!(g1_eq(&twin::g1_mul(&pa, words), &want), "g1 mul");
        // P + (-P) is infinity.
        let mut np = p;
        unsafe { blst_p1_cneg(&mut np, true) };
        assert!(
            unsafe { blst_p1_is_inf(&twin::g1_add(&p, &np)) },
            "g1 P - P"
        );

        let (p, q) = (g2_point(&k1), g2_point(&k2));
        let mut want = blst_p2::default();
        // SAFETY: plain values.
        unsafe { blst_p2_add_or_double(&mut want, &p, &q) };
        assert!(g2_eq(&twin::g2_add(&p, &q), &want), "g2 add");
        assert!(
            g2_eq(&twin::g2_add(&p, &p), &twin::g2_dbl(&p)),
            "g2 add = dbl"
        );
        assert_eq!(twin::g2_to_affine(&p), g2_affine(&p), "g2 affine");
        let pa = g2_affine(&p);
        assert!(twin::g2_on_curve(&pa) && twin::g2_in_subgroup(&pa));
        unsafe {
            blst_p2_mult(
                &mut want,
                &p,
                scalar_bytes(words).as_ptr(),
                64 * words.len(),
            )
        };
        assert!(g2_eq(&twin::g2_mul(&pa, words), &want), "g2 mul");
        let mut np = p;
        unsafe { blst_p2_cneg(&mut np, true) };
        assert!(
            unsafe { blst_p2_is_inf(&twin::g2_add(&p, &np)) },
            "g2 P - P"
        );
    }
}

/// A point on the curve outside G2: x = i for the first i whose right-hand side is a square.
fn g2_off_subgroup() -> blst_p2_affine {
    g2_curve_points(1).remove(0)
}

/// The first `n` points on the G2 curve outside G2, with x = (i, 0) for i = 1, 2, ...
fn g2_curve_points(n: usize) -> Vec<blst_p2_affine> {
    let mut out = Vec::new();
    for i in 1u64.. {
        if out.len() == n {
            break;
        }
        let mut x = blst_fp2::default();
        // SAFETY: plain values.
        unsafe { blst_fp_from_uint64(&mut x.fp[0], [i, 0, 0, 0, 0, 0].as_ptr()) };
        let (x3, _) = twin::fp2(FieldOp::Mul, &twin::fp2(FieldOp::Sqr, &x, &x).0, &x);
        let mut b = blst_fp2::default();
        unsafe { blst_fp_from_uint64(&mut b.fp[0], [4, 0, 0, 0, 0, 0].as_ptr()) };
        b.fp[1] = b.fp[0];
        let rhs = twin::fp2(FieldOp::Add, &x3, &b).0;
        let (y, ok) = twin::fp2(FieldOp::Sqrt, &rhs, &rhs);
        if ok {
            let p = blst_p2_affine { x, y };
            assert!(unsafe { blst_p2_affine_on_curve(&p) });
            if !unsafe { blst_p2_affine_in_g2(&p) } {
                out.push(p);
            }
        }
    }
    out
}

fn g1_off_subgroup() -> blst_p1_affine {
    for i in 1u64.. {
        let mut x = blst_fp::default();
        // SAFETY: plain values.
        unsafe { blst_fp_from_uint64(&mut x, [i, 0, 0, 0, 0, 0].as_ptr()) };
        let x3 = twin::fp(FieldOp::Mul, &twin::fp(FieldOp::Sqr, &x, &x).0, &x).0;
        let mut four = blst_fp::default();
        unsafe { blst_fp_from_uint64(&mut four, [4, 0, 0, 0, 0, 0].as_ptr()) };
        let rhs = twin::fp(FieldOp::Add, &x3, &four).0;
        let (y, ok) = twin::fp(FieldOp::Sqrt, &rhs, &rhs);
        if ok {
            let p = blst_p1_affine { x, y };
            if !unsafe { blst_p1_affine_in_g1(&p) } {
                return p;
            }
        }
    }
    unreachable!()
}

/// The endomorphism test ψ(P) = [x]P against blst on points with every kind of order: off the
/// subgroup, of small order only ([r]P), and G2 points shifted by a small-order point.
#[test]
fn g2_subgroup_check_matches_blst_on_points_of_every_order() {
    let r: [u64; 4] = [
        0xffffffff00000001,
        0x53bda402fffe5bfe,
        0x3339d80809a1d805,
        0x73eda753299d7d48,
    ];
    let mut rng = rng();
    let mut points = Vec::new();
    for p in g2_curve_points(12) {
        points.push(p);
        let small = twin::g2_mul(&p, &r); // order divides the cofactor
        points.push(twin::g2_to_affine(&small));
        let g = g2_point(&random_scalar(&mut rng));
        points.push(twin::g2_to_affine(&twin::g2_add(&g, &small)));
        points.push(g2_affine(&g));
    }
    let (mut inside, mut outside) = (0, 0);
    for p in &points {
        // SAFETY: plain values.
        let want = unsafe { blst_p2_affine_in_g2(p) };
        assert_eq!(twin::g2_in_subgroup(p), want, "{p:?}");
        if want {
            inside += 1
        } else {
            outside += 1
        }
    }
    assert!(
        inside >= 12 && outside >= 24,
        "{inside} inside, {outside} outside"
    );
}

#[test]
fn subgroup_checks_match_blst_off_the_subgroup() {
    let p1 = g1_off_subgroup();
    assert!(twin::g1_on_curve(&p1) && !twin::g1_in_subgroup(&p1));
    let p2 = g2_off_subgroup();
    assert!(twin::g2_on_curve(&p2) && !twin::g2_in_subgroup(&p2));
    let mut off = p2;
    off.y.fp[0] = twin::fp(FieldOp::Add, &off.y.fp[0], &fp_edges()[1]).0;
    assert!(!twin::g2_on_curve(&off));
}

fn compress_g1(p: &blst_p1_affine) -> [u8; 48] {
    let mut out = [0u8; 48];
    // SAFETY: blst writes 48 bytes.
    unsafe { blst_p1_affine_compress(out.as_mut_ptr(), p) };
    out
}

fn compress_g2(p: &blst_p2_affine) -> [u8; 96] {
    let mut out = [0u8; 96];
    // SAFETY: blst writes 96 bytes.
    unsafe { blst_p2_affine_compress(out.as_mut_ptr(), p) };
    out
}

#[test]
fn decompression_matches_blst_on_valid_and_broken_encodings() {
    let mut rng = rng();
    let mut g1: Vec<[u8; 48]> = vec![compress_g1(&g1_off_subgroup())];
    let mut g2: Vec<[u8; 96]> = vec![compress_g2(&g2_off_subgroup())];
    for _ in 0..16 {
        let k = random_scalar(&mut rng);
        g1.push(compress_g1(&g1_affine(&g1_point(&k))));
        g2.push(compress_g2(&g2_affine(&g2_point(&k))));
    }
    // Infinity, well and badly encoded; flags off; random bytes; x = p.
    let mut inf1 = [0u8; 48];
    inf1[0] = 0xc0;
    g1.push(inf1);
    let mut bad = inf1;
    bad[47] = 1;
    g1.push(bad);
    bad = inf1;
    bad[0] = 0xe0;
    g1.push(bad);
    let mut inf2 = [0u8; 96];
    inf2[0] = 0xc0;
    g2.push(inf2);
    let mut bad2 = inf2;
    bad2[95] = 1;
    g2.push(bad2);
    for _ in 0..40 {
        let mut b = [0u8; 48];
        rng.fill_bytes(&mut b);
        b[0] = (b[0] & 0x3f) | 0x80;
        g1.push(b);
        let mut b2 = [0u8; 96];
        rng.fill_bytes(&mut b2);
        b2[0] = (b2[0] & 0x3f) | 0x80;
        g2.push(b2);
        let mut flipped = b2;
        flipped[0] &= 0x7f;
        g2.push(flipped);
    }
    let mut x_is_p = hex::decode("9a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab").unwrap();
    g1.push(x_is_p.clone().try_into().unwrap());
    x_is_p.extend([0u8; 48]);
    g2.push(x_is_p.try_into().unwrap());

    let (mut ok1, mut ok2) = (0, 0);
    for b in &g1 {
        let mut want = blst_p1_affine::default();
        // SAFETY: blst reads 48 bytes.
        let rc = unsafe { blst_p1_uncompress(&mut want, b.as_ptr()) } as i32;
        let (got, status) = twin::g1_decompress(b);
        assert_eq!(status, rc, "g1 status for {}", hex::encode(b));
        if rc == 0 {
            ok1 += 1;
            assert_eq!(got, want, "g1 point for {}", hex::encode(b));
        }
    }
    for b in &g2 {
        let mut want = blst_p2_affine::default();
        // SAFETY: blst reads 96 bytes.
        let rc = unsafe { blst_p2_uncompress(&mut want, b.as_ptr()) } as i32;
        let (got, status) = twin::g2_decompress(b);
        assert_eq!(status, rc, "g2 status for {}", hex::encode(b));
        if rc == 0 {
            ok2 += 1;
            assert_eq!(got, want, "g2 point for {}", hex::encode(b));
        }
    }
    assert!(
        ok1 > 18 && ok2 > 18,
        "valid encodings were decoded ({ok1}, {ok2})"
    );
}

fn final_exp(f: &blst_fp12) -> blst_fp12 {
    let mut out = blst_fp12::default();
    // SAFETY: plain values.
    unsafe { blst_final_exp(&mut out, f) };
    out
}

#[test]
fn miller_loop_matches_blst_after_the_final_exponentiation() {
    let mut rng = rng();
    for _ in 0..6 {
        let p = g1_affine(&g1_point(&random_scalar(&mut rng)));
        let q = g2_affine(&g2_point(&random_scalar(&mut rng)));
        let mut want = blst_fp12::default();
        // SAFETY: plain values.
        unsafe { blst_miller_loop(&mut want, &q, &p) };
        let got = twin::miller_loop(&p, &q);
        assert_eq!(final_exp(&got), final_exp(&want));
    }
    // Bilinearity through the twin alone: e([a]P, Q) = e(P, [a]Q).
    let a = [rng.next_u64()];
    let p = g1_affine(&g1_point(&random_scalar(&mut rng)));
    let q = g2_affine(&g2_point(&random_scalar(&mut rng)));
    let lhs = twin::miller_loop(&twin::g1_to_affine(&twin::g1_mul(&p, &a)), &q);
    let rhs = twin::miller_loop(&p, &twin::g2_to_affine(&twin::g2_mul(&q, &a)));
    assert_eq!(final_exp(&lhs), final_exp(&rhs));
    assert_ne!(final_exp(&lhs), final_exp(&twin::miller_loop(&p, &q)));
}

fn twin_engine() -> crate::Engine {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    crate::Engine::device_twin(std::sync::Arc::new(pool))
}

/// Batches the device path must refuse exactly as the CPU backend does: a signature off the
/// subgroup (on the curve, so it decodes), the identity as a signature, a wrong message.
#[test]
fn device_batches_refuse_what_the_cpu_refuses() {
    use crate::{BatchItem, SecretKey, Signature};
    let pool = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let cpu = crate::Engine::cpu(pool);
    let twin = twin_engine();
    let sks: Vec<SecretKey> = (0..6u8)
        .map(|i| SecretKey::from_ikm(&[i + 1; 32]).unwrap())
        .collect();
    let pks: Vec<_> = sks.iter().map(|k| k.public_key()).collect();
    let msgs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 40]).collect();
    let good: Vec<Signature> = sks.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let off_subgroup = Signature::from_bytes(&compress_g2(&g2_off_subgroup())).unwrap();
    let mut identity_bytes = [0u8; 96];
    identity_bytes[0] = 0xc0;
    let identity = Signature::from_bytes(&identity_bytes).unwrap();
    let wrong = sks[2].sign(b"another message");
    let cases = [
        ("all good", None, true),
        ("off the subgroup", Some((3, off_subgroup)), false),
        ("identity", Some((0, identity)), false),
        ("wrong message", Some((2, wrong)), false),
    ];
    for (name, swap, want) in cases {
        let mut sigs = good.clone();
        if let Some((i, s)) = swap {
            sigs[i] = s;
        }
        let items: Vec<BatchItem> = (0..6)
            .map(|i| BatchItem {
                public_key: &pks[i],
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect();
        assert_eq!(cpu.batch_verify(&items), want, "cpu: {name}");
        assert_eq!(twin.batch_verify(&items), want, "device twin: {name}");
    }
    assert_eq!(twin.device_fallbacks(), 0);
}

#[test]
fn hash_to_g2_matches_blst() {
    let mut rng = rng();
    // map_to_g2 on random field elements, zero (SWU's exceptional case) included.
    let zero = blst_fp2::default();
    let mut pairs = vec![(zero, zero), (zero, random_fp2(&mut rng))];
    pairs.extend((0..6).map(|_| (random_fp2(&mut rng), random_fp2(&mut rng))));
    for (u0, u1) in &pairs {
        let mut want = blst_p2::default();
        // SAFETY: plain values.
        unsafe { blst_map_to_g2(&mut want, u0, u1) };
        assert!(g2_eq(&twin::map_to_g2(u0, u1), &want), "map_to_g2");
    }
    // The whole hash, from expanded bytes, against blst's hash_to_g2 with the signature DST.
    for len in [0usize, 1, 32, 77, 300] {
        let msg: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let uniform = super::backend::expand(&msg);
        let mut want = blst_p2::default();
        // SAFETY: blst reads the message and DST for the lengths given.
        unsafe {
            blst_hash_to_g2(
                &mut want,
                msg.as_ptr(),
                msg.len(),
                crate::DST_SIG.as_ptr(),
                crate::DST_SIG.len(),
                std::ptr::null(),
                0,
            )
        };
        assert_eq!(
            twin::hash_to_g2(&uniform),
            g2_affine(&want),
            "hash of {len} bytes"
        );
    }
}

/// The start-up known-answer check passes on the twin, and a broken executor fails it; a
/// device error sends batches to the CPU, and after three in a row the device is not tried.
#[test]
fn known_answers_and_fallbacks() {
    use super::{DeviceBackend, DeviceError, Expanded, Kernels};
    use crate::backend::{Backend, VerifyBackend};
    let pool = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let good = DeviceBackend::new(
        Box::new(super::twin::HostTwin::new(pool.clone())),
        pool.clone(),
    );
    good.self_test().unwrap();

    /// Answers every job with an error, or with a wrong product.
    struct Broken {
        error: bool,
        calls: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }
    impl Kernels for Broken {
        fn kind(&self) -> Backend {
            Backend::DeviceTwin
        }
        fn sig_sum(&self, _: &[blst_p2_affine], _: &[u64]) -> Result<(bool, blst_p2), DeviceError> {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.error {
                return Err(DeviceError("broken".into()));
            }
            Ok((true, blst_p2::default()))
        }
        fn pair_product(
            &self,
            _: &[blst_p1_affine],
            _: &[Expanded],
            _: &[u64],
        ) -> Result<blst_fp12, DeviceError> {
            Ok(random_fp12(&mut rng()))
        }
    }
    let wrong = DeviceBackend::new(
        Box::new(Broken {
            error: false,
            calls: Default::default(),
        }),
        pool.clone(),
    );
    let why = wrong.self_test().unwrap_err();
    assert!(why.contains("wrongly"), "{why}");

    // A wrong "invalid" is overruled by the CPU and counted.
    let sk = crate::SecretKey::from_ikm(&[9; 32]).unwrap();
    let (pk, sig) = (sk.public_key(), sk.sign(b"m"));
    let items = [crate::BatchItem {
        public_key: &pk,
        message: b"m",
        signature: &sig,
    }];
    assert!(wrong.batch_verify(&items));
    assert_eq!(wrong.device_fallbacks(), 1);

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let failing = DeviceBackend::new(
        Box::new(Broken {
            error: true,
            calls: calls.clone(),
        }),
        pool,
    );
    for round in 1..=5u64 {
        assert!(
            failing.batch_verify(&items),
            "the CPU answers round {round}"
        );
        assert_eq!(failing.device_fallbacks(), round);
    }
    let tried = calls.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        tried, 3,
        "the device is given up after three errors in a row"
    );
}

#[test]
fn jobs_are_checked_before_they_reach_a_device() {
    assert!(super::check_job(3, &[3, 3]).is_ok());
    let e = super::check_job(3, &[3, 2]).unwrap_err();
    assert!(e.0.contains("differ in length (3 and 2"), "{}", e.0);
    assert!(super::check_job(super::MAX_JOB_ITEMS, &[]).is_ok());
    let e = super::check_job(super::MAX_JOB_ITEMS + 1, &[]).unwrap_err();
    assert!(e.0.contains("too large for one job"), "{}", e.0);
}
