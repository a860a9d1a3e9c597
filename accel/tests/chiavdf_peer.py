"""chiavdf as a test peer: reads one JSON request per line on stdin, answers one JSON line.

Requests: {"op": "disc", "seed": hex, "bits": n}
          {"op": "prove", "seed": hex, "bits": n, "iters": n}      -> y ‖ proof, hex
          {"op": "verify", "seed": hex, "bits": n, "iters": n, "proof": hex}  -> bool
"""
import json
import sys

import chiavdf

GENERATOR = b"\x08" + b"\x00" * 99

for line in sys.stdin:
    req = json.loads(line)
    seed = bytes.fromhex(req["seed"])
    disc = chiavdf.create_discriminant(seed, req["bits"])
    if req["op"] == "disc":
        out = disc
    elif req["op"] == "prove":
        out = chiavdf.prove(seed, GENERATOR, req["bits"], req["iters"], "").hex()
    elif req["op"] == "verify":
        blob = bytes.fromhex(req["proof"])
        if len(blob) != 200:
            out = False
        else:
            try:
                out = bool(chiavdf.verify_wesolowski(disc, GENERATOR, blob[:100], blob[100:], req["iters"]))
            except Exception:
                out = False
    else:
        out = None
    print(json.dumps(out), flush=True)
