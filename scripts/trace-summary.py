#!/usr/bin/env python3
"""Summarise a Chrome trace written by `bench train --trace`: device time per kernel (top N),
and the share of each kind, as JSON lines. Usage: trace-summary.py TRACE [STEPS] [TOP]"""
import json, sys, collections
trace = json.load(open(sys.argv[1]))
steps = float(sys.argv[2]) if len(sys.argv) > 2 else 5
top = int(sys.argv[3]) if len(sys.argv) > 3 else 40
by = collections.Counter(); count = collections.Counter()
first, last = float("inf"), 0.0
for e in trace.get("traceEvents", []):
    if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e:
        by[e["name"]] += e["dur"]; count[e["name"]] += 1
        first = min(first, e["ts"]); last = max(last, e["ts"] + e["dur"])
total = sum(by.values())
# span: from the first kernel's start to the last one's end (device busy + idle), per step
print(json.dumps({"figure": "trace", "device_ms_per_step": total / 1000 / steps, "kernels": sum(count.values()) / steps,
                  "span_ms_per_step": (last - first) / 1000 / steps if total else 0}))
for name, us in by.most_common(top):
    print(json.dumps({"ms_per_step": round(us / 1000 / steps, 3), "share": round(us / total, 4), "calls": count[name] / steps, "kernel": name[:160]}))
