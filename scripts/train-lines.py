#!/usr/bin/env python3
"""The figures of `bench train` JSON lines in a log (stdin or files): one short line per run."""
import json
import sys


def lines(names):
    for name in names:
        if name == "-":
            yield from sys.stdin
        else:
            with open(name) as f:
                yield from f


for line in lines(sys.argv[1:] or ["-"]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("figure") != "train":
        continue
    st = d.get("step_times") or {}
    print(json.dumps({k: d.get(k) for k in ("cells_per_s", "validation_nll", "train_s", "pool_token_pairs",
                                            "validation_ahead", "peak_gpu_gib", "tuned_input_grads",
                                            "tuned_input_grad_calls", "tuned_input_grad_shapes",
                                            "tuned_input_grad_borrowed", "fused_norm_gelu", "fused_proj_norm",
                                            "proj_norm_runs")}
                     | {k: st.get(k) for k in ("replay_median_ms", "replay_s", "eager_s", "capture_s", "validation_s",
                                               "validation_wait_s", "validation_build_s", "sequence_tiles")}))
