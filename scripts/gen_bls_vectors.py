#!/usr/bin/env python3
"""Generates BLS12-381 conformance vectors with py_ecc (the Ethereum reference), laid out like
the Ethereum consensus BLS vectors: <out>/<kind>/<case>.yaml with `input` and `output`.

Usage: .venv/bin/python scripts/gen_bls_vectors.py [accel/tests/vectors] [--seed N]
Every output is computed by py_ecc, never by the code under test.
"""
import os
import random
import sys

from py_ecc.bls import G2ProofOfPossession as bls
from py_ecc.bls.g2_primitives import pubkey_to_G1, signature_to_G2, subgroup_check
from py_ecc.optimized_bls12_381 import is_inf

CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def hx(b):
    return "0x" + b.hex()


def write(out, kind, name, inp, output):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".yaml"), "w") as f:
        f.write("input:\n")
        for k, v in inp.items():
            if isinstance(v, list) and not v:
                f.write(f"  {k}: []\n")
            elif isinstance(v, list):
                f.write(f"  {k}:\n")
                for x in v:
                    f.write(f"  - '{x}'\n")
            else:
                f.write(f"  {k}: '{v}'\n")
        if output is None:
            f.write("output: null\n")
        elif isinstance(output, bool):
            f.write(f"output: {'true' if output else 'false'}\n")
        else:
            f.write(f"output: '{output}'\n")


def write_list_input(out, kind, name, items, output):
    d = os.path.join(out, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".yaml"), "w") as f:
        f.write("input:\n" if items else "input: []\n")
        for x in items:
            f.write(f"- '{x}'\n")
        f.write("output: null\n" if output is None else f"output: '{output}'\n")


def point_ok(decode, b):
    try:
        p = decode(b)
    except Exception:
        return False
    return is_inf(p) or subgroup_check(p)


def on_curve_not_in_group(decode, n, rb):
    """A compressed encoding of a point on the curve outside the prime-order subgroup."""
    while True:
        b = bytes([0x80 | (rb(1)[0] & 0x1f)]) + rb(n - 1)
        try:
            p = decode(b)
        except Exception:
            continue
        if not subgroup_check(p):
            return b


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = args[0] if args else "accel/tests/vectors"
    seed = 4
    if "--seed" in sys.argv:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    rng = random.Random(seed)
    rb = lambda n: bytes(rng.getrandbits(8) for _ in range(n))  # noqa: E731

    sks = [rng.randrange(1, CURVE_ORDER) for _ in range(6)] + [1, CURVE_ORDER - 1]
    pks = [bls.SkToPk(k) for k in sks]
    msgs = [b"", b"\x00" * 32, b"\xab" * 32, b"harmony", rb(64)]
    inf_g1 = b"\xc0" + b"\x00" * 47
    inf_g2 = b"\xc0" + b"\x00" * 95

    # sign
    for i, sk in enumerate(sks):
        m = msgs[i % len(msgs)]
        write(out, "sign", f"sign_case_{i}", {"privkey": hx(sk.to_bytes(32, "big")), "message": hx(m)}, hx(bls.Sign(sk, m)))
    write(out, "sign", "sign_case_zero_privkey", {"privkey": hx(bytes(32)), "message": hx(msgs[1])}, None)

    # verify
    n = 0
    for i in range(5):
        sk, pk, m = sks[i], pks[i], msgs[i]
        sig = bls.Sign(sk, m)
        cases = [(pk, m, sig), (pk, m + b"!", sig), (pks[i + 1], m, sig)]
        tampered = bytearray(sig)
        tampered[-1] ^= 1
        cases.append((pk, m, bytes(tampered)))
        for p, mm, s in cases:
            write(out, "verify", f"verify_case_{n}", {"pubkey": hx(p), "message": hx(mm), "signature": hx(s)}, bls.Verify(p, mm, s))
            n += 1
    write(out, "verify", "verify_infinity_pubkey_and_infinity_signature", {"pubkey": hx(inf_g1), "message": hx(msgs[1]), "signature": hx(inf_g2)}, bls.Verify(inf_g1, msgs[1], inf_g2))

    # aggregate
    for i in range(1, 6):
        sigs = [bls.Sign(sks[j], msgs[j % len(msgs)]) for j in range(i)]
        write_list_input(out, "aggregate", f"aggregate_case_{i}", [hx(s) for s in sigs], hx(bls.Aggregate(sigs)))
    write_list_input(out, "aggregate", "aggregate_na_signatures", [], None)
    write_list_input(out, "aggregate", "aggregate_infinity_signature", [hx(inf_g2)], hx(inf_g2))

    # fast_aggregate_verify
    n = 0
    for k in (1, 3, 5):
        m = msgs[k % len(msgs)]
        sig = bls.Aggregate([bls.Sign(sks[j], m) for j in range(k)])
        group = pks[:k]
        for g, mm in ((group, m), (group, m + b"x"), (pks[1 : k + 1], m), (group + [inf_g1], m)):
            write(out, "fast_aggregate_verify", f"fast_aggregate_verify_case_{n}", {"pubkeys": [hx(p) for p in g], "message": hx(mm), "signature": hx(sig)}, bls.FastAggregateVerify(g, mm, sig))
            n += 1
    write(out, "fast_aggregate_verify", "fast_aggregate_verify_na_pubkeys_and_infinity_signature", {"pubkeys": [], "message": hx(msgs[2]), "signature": hx(inf_g2)}, bls.FastAggregateVerify([], msgs[2], inf_g2))

    # aggregate_verify
    n = 0
    for k in (1, 2, 4):
        ms = [msgs[j] for j in range(k)]
        sig = bls.Aggregate([bls.Sign(sks[j], ms[j]) for j in range(k)])
        variants = [(pks[:k], ms), (pks[:k], ms[::-1] if k > 1 else [b"z"]), (pks[1 : k + 1], ms)]
        for g, mm in variants:
            write(out, "aggregate_verify", f"aggregate_verify_case_{n}", {"pubkeys": [hx(p) for p in g], "messages": [hx(x) for x in mm], "signature": hx(sig)}, bls.AggregateVerify(g, mm, sig))
            n += 1
    write(out, "aggregate_verify", "aggregate_verify_na_pubkeys_and_infinity_signature", {"pubkeys": [], "messages": [], "signature": hx(inf_g2)}, bls.AggregateVerify([], [], inf_g2))

    # batch_verify: true when every triple verifies
    n = 0
    for k in (1, 3, 5):
        ts = [(pks[j], msgs[j], bls.Sign(sks[j], msgs[j])) for j in range(k)]
        variants = [ts]
        if k > 1:
            swapped = list(ts)
            swapped[0] = (ts[0][0], ts[0][1], ts[1][2])
            variants.append(swapped)
        bad_msg = list(ts)
        bad_msg[-1] = (ts[-1][0], b"forged", ts[-1][2])
        variants.append(bad_msg)
        for v in variants:
            ok = all(bls.Verify(p, m, s) for p, m, s in v)
            write(out, "batch_verify", f"batch_verify_case_{n}", {"pubkeys": [hx(p) for p, _, _ in v], "messages": [hx(m) for _, m, _ in v], "signatures": [hx(s) for _, _, s in v]}, ok)
            n += 1

    # deserialization: curve and subgroup checks, identity allowed (as in the Ethereum vectors)
    g1 = [("correct_point", pks[0]), ("infinity", inf_g1), ("infinity_bad_flags", b"\x80" + b"\x00" * 47),
          ("x_too_large", b"\x9a" + b"\xff" * 47), ("random_a", b"\x80" | bytes([0]) if False else bytes([0x80 | rb(1)[0] & 0x1f]) + rb(47)),
          ("random_b", bytes([0xa0 | rb(1)[0] & 0x1f]) + rb(47)), ("no_compression_flag", bytes([pks[1][0] & 0x7f]) + pks[1][1:])]
    for j in range(8):
        g1.append((f"random_{j}", bytes([0x80 | (rb(1)[0] & 0x3f)]) + rb(47)))
    g1.append(("not_in_subgroup", on_curve_not_in_group(pubkey_to_G1, 48, rb)))
    for name, b in g1:
        write(out, "deserialization_G1", f"deserialization_G1_{name}", {"pubkey": hx(b)}, point_ok(pubkey_to_G1, b))
    s0 = bls.Sign(sks[0], msgs[0])
    g2 = [("correct_point", s0), ("infinity", inf_g2), ("infinity_bad_flags", b"\x80" + b"\x00" * 95),
          ("x_too_large", b"\x9a" + b"\xff" * 95), ("no_compression_flag", bytes([s0[0] & 0x7f]) + s0[1:])]
    for j in range(8):
        g2.append((f"random_{j}", bytes([0x80 | (rb(1)[0] & 0x3f)]) + rb(95)))
    g2.append(("not_in_subgroup", on_curve_not_in_group(signature_to_G2, 96, rb)))
    for name, b in g2:
        write(out, "deserialization_G2", f"deserialization_G2_{name}", {"signature": hx(b)}, point_ok(signature_to_G2, b))


if __name__ == "__main__":
    main()
