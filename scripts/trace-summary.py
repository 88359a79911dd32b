#!/usr/bin/env python3
"""Summarise a Chrome trace written by `bench train --trace`: device time per kernel (top N),
and the share of each kind, as JSON lines. Usage: trace-summary.py TRACE [STEPS] [TOP] [OPS]
OPS (a number): for each of the top kernels, the OPS operator stacks that launched most of its
time (the profiler's External id joins a kernel to its innermost operator; the stack is the
operators enclosing that one on its host thread, innermost first): where a copy or an
elementwise kernel comes from. Eager steps only (`bench train --no-cuda-graphs`): a CUDA graph's
replay launches its kernels under no operator ("?")."""
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
# Where the device waited: the gaps between consecutive kernels and copies on the busiest stream
# (the compute stream), by size; and the host's CUDA calls by their time (a launch that waits for
# room in the device's queue, or a synchronisation, is long). A steady-state trace
# (`bench embed --trace-from N`) with few gaps and long launches is device-bound; many gaps with
# short launches, host-bound.
streams = collections.Counter(e["tid"] for e in trace.get("traceEvents", [])
                              if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and "dur" in e)
if streams:
    busiest = max(streams, key=streams.get)
    ev = sorted((e for e in trace["traceEvents"] if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
                 and "dur" in e and e["tid"] == busiest), key=lambda e: e["ts"])
    gaps = [b["ts"] - (a["ts"] + a["dur"]) for a, b in zip(ev, ev[1:])]
    bins = {"under_5us": (0, 5), "5_50us": (5, 50), "50_500us": (50, 500), "over_500us": (500, float("inf"))}
    print(json.dumps({"figure": "trace_gaps", "stream_busy_ms_per_step": sum(e["dur"] for e in ev) / 1000 / steps,
                      "stream_span_ms_per_step": (ev[-1]["ts"] + ev[-1]["dur"] - ev[0]["ts"]) / 1000 / steps,
                      **{f"gaps_{k}_ms_per_step": round(sum(g for g in gaps if lo <= g < hi) / 1000 / steps, 3)
                         for k, (lo, hi) in bins.items()},
                      **{f"gaps_{k}_count": sum(1 for g in gaps if lo <= g < hi) for k, (lo, hi) in bins.items()}}))
calls = collections.defaultdict(list)
for e in trace.get("traceEvents", []):
    if e.get("cat") in ("cuda_runtime", "cuda_driver") and "dur" in e:
        calls[e["name"]].append(e["dur"])
for name, d in sorted(calls.items(), key=lambda kv: -sum(kv[1]))[:8]:
    print(json.dumps({"figure": "trace_host_call", "call": name, "ms_per_step": round(sum(d) / 1000 / steps, 3),
                      "count_per_step": len(d) / steps, "max_ms": round(max(d) / 1000, 3)}))

ops = int(sys.argv[4]) if len(sys.argv) > 4 else 0
if ops:
    cpu = [e for e in trace.get("traceEvents", []) if e.get("cat") == "cpu_op" and "dur" in e]
    by_ext = {}
    for e in cpu:
        x = e.get("args", {}).get("External id")
        if x is not None: by_ext[x] = e
    threads = collections.defaultdict(list)
    for e in cpu: threads[e["tid"]].append(e)
    for t in threads.values(): t.sort(key=lambda e: (e["ts"], -e["dur"]))
    starts = {tid: [e["ts"] for e in t] for tid, t in threads.items()}
    import bisect
    def stack(op, depth=5):
        # The operators on op's thread that enclose it, innermost first.
        t = threads[op["tid"]]; i = bisect.bisect_right(starts[op["tid"]], op["ts"])
        names = [op["name"]]; end = op["ts"] + op["dur"]
        for e in reversed(t[max(0, i - 400):i]):
            if e is op: continue
            if e["ts"] <= op["ts"] and e["ts"] + e["dur"] >= end:
                names.append(e["name"]); end = e["ts"] + e["dur"]
                if len(names) >= depth: break
        return " < ".join(n[:60] for n in names)
    # Copies and fills may carry no External id: their runtime call (same correlation id) and the
    # innermost operator enclosing it on its thread instead.
    runtime = {e["args"]["correlation"]: e for e in trace.get("traceEvents", [])
               if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    def enclosing(tid, ts):
        t = threads.get(tid, []); i = bisect.bisect_right(starts.get(tid, []), ts)
        for e in reversed(t[max(0, i - 400):i]):
            if e["ts"] <= ts <= e["ts"] + e["dur"]: return e
        return None
    for name, us in by.most_common(top):
        where = collections.Counter()
        for e in trace["traceEvents"]:
            if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and e.get("name") == name and "dur" in e:
                op = by_ext.get(e.get("args", {}).get("External id"))
                if op is None and e.get("args", {}).get("correlation") in runtime:
                    r = runtime[e["args"]["correlation"]]
                    op = enclosing(r["tid"], r["ts"])
                where[stack(op) if op else "?"] += e["dur"]
        print(json.dumps({"figure": "trace_kernel_ops", "kernel": name[:100], "ms_per_step": round(us / 1000 / steps, 3),
                          "from": [{"ms_per_step": round(d / 1000 / steps, 3), "ops": w} for w, d in where.most_common(ops)]}))
