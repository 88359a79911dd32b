#!/usr/bin/env python3
"""Summarise a Chrome trace written by `bench train --trace`: device time per kernel (top N),
and the share of each kind, as JSON lines. Usage: trace-summary.py TRACE [STEPS] [TOP]"""
import json, sys, collections
trace = json.load(open(sys.argv[1]))
steps = float(sys.argv[2]) if len(sys.argv) > 2 else 5
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
by = collections.Counter(); count = collections.Counter()
for e in trace.get("traceEvents", []):
    if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e:
        by[e["name"]] += e["dur"]; count[e["name"]] += 1
total = sum(by.values())
print(json.dumps({"figure": "trace", "device_ms_per_step": total / 1000 / steps, "kernels": sum(count.values()) / steps}))
for name, us in by.most_common(top):
    print(json.dumps({"ms_per_step": round(us / 1000 / steps, 3), "share": round(us / total, 4), "calls": count[name] / steps, "kernel": name[:160]}))
