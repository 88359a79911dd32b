#!/usr/bin/env python3
"""Where a kernel's warps stall, from Nsight Compute's source page (`ncu --page source --csv
--print-source sass` with the SourceCounters and WarpStateStats sections; gpu-bench ncu-source).

The warp-state samples are attributed to the instruction a warp waits to issue, so a wait at a
named barrier shows on the instruction after the BAR.SYNC. The kernel is cut into regions at its
barriers, register reconfigurations and exits (in a warp-specialized kernel: each role's phases),
and for each region the samples, the instructions executed and the leading stall reasons are
printed, then the instructions with the most samples.

    scripts/ncu-source-summary.py ncu-source.csv[.gz] [--top N]

Lines that are not the CSV (the profiled program's own output, ncu's ==PROF== lines) are skipped.
"""
import argparse
import csv
import gzip
import sys

REASONS = ["barrier", "branch_resolving", "dispatch", "drain", "imc", "lg", "long_sb", "math", "membar",
           "mio", "misc", "no_inst", "not_selected", "selected", "short_sb", "sleep", "tex", "wait"]
CUTS = ("BAR.SYNC", "BAR.ARV", "BAR.RED", "USETMAXREG", "EXIT", "UCGABAR")


def read_rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        lines = [l for l in f if l.startswith('"')]
    rows = list(csv.reader(lines))
    header = next((i for i, r in enumerate(rows) if r and r[0] == "Address"), None)
    if header is None:
        sys.exit("no source table (was the kernel profiled? look for '==WARNING== No kernels were profiled')")
    names = rows[header]
    kernel = rows[header - 1][1] if header > 0 and len(rows[header - 1]) > 1 else "?"
    return kernel, names, rows[header + 1:]


def opcode(source):
    words = source.split()
    words = words[1:] if words and words[0].startswith("@") else words  # a predicate first
    return words[0] if words else ""


def number(text):
    try:
        return int(text.replace(",", ""))
    except ValueError:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    kernel, names, rows = read_rows(a.csv)
    col = {n: i for i, n in enumerate(names)}
    stall = [col.get("stall_" + r, -1) for r in REASONS]
    samples_col, executed_col = col["Warp Stall Sampling (All Samples)"], col["Instructions Executed"]

    def stalls(r):
        return [number(r[i]) if i >= 0 else 0 for i in stall]

    total = sum(number(r[samples_col]) for r in rows)
    print(f"kernel: {kernel[:160]}")
    print(f"samples: {total}, instructions: {len(rows)}")
    sums = [0] * len(REASONS)
    for r in rows:
        sums = [x + y for x, y in zip(sums, stalls(r))]
    lead = sorted(zip(REASONS, sums), key=lambda x: -x[1])
    print("all: " + ", ".join(f"{n} {100 * v / max(total, 1):.1f}%" for n, v in lead if v))

    print("\nregions (cut at barriers, register reconfigurations, exits):")
    start = 0
    for i, r in enumerate(rows + [None]):
        if r is not None and not (i > start and opcode(r[1]).startswith(CUTS)):
            continue
        part = rows[start:i]
        start = i
        n = sum(number(x[samples_col]) for x in part)
        if n < total * 0.005:
            continue
        s = [0] * len(REASONS)
        for x in part:
            s = [p + q for p, q in zip(s, stalls(x))]
        lead = sorted(zip(REASONS, s), key=lambda x: -x[1])[:4]
        executed = max((number(x[executed_col]) for x in part), default=0)
        print(f"  [{part[0][0][-6:]}..{part[-1][0][-6:]}] {len(part):5d} instr, {100 * n / total:5.1f}% of samples, "
              f"most executed {executed}: " + ", ".join(f"{k} {100 * v / max(n, 1):.0f}%" for k, v in lead if v)
              + f" | {part[0][1].strip()[:48]}")

    print(f"\ntop {a.top} instructions by samples:")
    for r in sorted(rows, key=lambda r: -number(r[samples_col]))[:a.top]:
        lead = sorted(zip(REASONS, stalls(r)), key=lambda x: -x[1])[:3]
        print(f"  {r[0][-6:]} {number(r[samples_col]):7d} {r[1].strip()[:60]:60s} "
              + ", ".join(f"{k} {v}" for k, v in lead if v))


if __name__ == "__main__":
    main()
