#!/usr/bin/env python3
"""One step's kernels in the order the device ran them, from a Chrome trace of `bench train
--trace` or `bench embed --trace`: start (us from the first), duration (us), grid, block, and the
name, as text. Where the summary says which kernels cost most, this says which product of the
step each call is (by its grid and its neighbours). Usage: trace-sequence.py TRACE [FROM] [COUNT]
(FROM: the index of the first kernel to print, default the one after the first Adam kernel)."""
import json, sys
trace = json.load(open(sys.argv[1]))
ev = sorted((e for e in trace.get("traceEvents", []) if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
             and "dur" in e), key=lambda e: e["ts"])
start = int(sys.argv[2]) if len(sys.argv) > 2 else next((i + 1 for i, e in enumerate(ev) if "adamKernel" in e["name"]), 0)
count = int(sys.argv[3]) if len(sys.argv) > 3 else 700
t0 = ev[start]["ts"] if start < len(ev) else 0
for i, e in enumerate(ev[start:start + count]):
    a = e.get("args", {})
    name = e["name"]
    for cut in ("(", "<"):  # short names: the template's arguments and the parameters off
        if cut in name and not name.startswith("nvjet"):
            head, rest = name.split(cut, 1)
            name = head + cut + rest[:60]
            break
    print(f"{start + i:5d} {e['ts'] - t0:9.1f} {e['dur']:8.1f} grid={a.get('grid', '')} block={a.get('block', '')} "
          f"regs={a.get('registers per thread', '')} smem={a.get('shared memory', '')} {name[:150]}")
