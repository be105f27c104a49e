#!/usr/bin/env python3
"""slope's inference layers beside the same layers written in PyTorch (the paper's way: a 2:4
semi-structured weight plus the adapter's two matmuls), shape by shape.

Reads `slope layer --mode inference`'s CSV (Y^T outputs) and, where given, that of its
token-major run (Y), and scripts/bench_torch_layer.py's, and writes one row per shape, adapter
ratio and slope output layout:
  slope_output,hidden,shape,adapter_ratio,rank,slope_form,slope_speedup,slope_overhead,
  torch_way,torch_speedup,torch_overhead,torch_over_slope,torch_dense_over_slope
The speedups (over each library's own dense layer) and the adapter overheads (over each one's
r = 0 layer) are medians of per-pair ratios within one process. torch_over_slope divides
PyTorch's layer time by slope's, torch_dense_over_slope the two dense layers' times: two
processes at different moments, so the latter shows how far apart their conditions were.
PyTorch's 2:4 result lies in memory as slope's Y^T does (see compare_torch.py). Prints, per
slope output layout and adapter ratio, the geometric means: speedups over all shapes, adapter
overheads over the MLP shapes with d >= 2048 (issue 4's figure), torch_over_slope over all
shapes; writes them to --json with slope's meta (--slope-json).
Usage: compare_torch_layer.py --slope-csv layer_inference.csv [--slope-token-major-csv FILE]
                              --torch-csv torch_layer.csv --out FILE.csv [--json FILE.json --slope-json FILE]
"""
import argparse
import json
import sys
from collections import defaultdict

from atomic_file import write_json_atomically
from compare_torch import geometric_mean, number, read_csv
from derived_meta import carried_meta
from torch_common import write_csv

COLUMNS = ("slope_output", "hidden", "shape", "adapter_ratio", "rank", "slope_form", "slope_speedup",
           "slope_overhead", "torch_way", "torch_speedup", "torch_overhead", "torch_over_slope",
           "torch_dense_over_slope")


def key(row):
    return int(row["hidden"]), row["shape"], round(float(row["adapter_ratio"]), 6), int(row["tokens"])


def comparison_rows(slope_rows, torch_rows, slope_output):
    """One dict per (shape, ratio) that both files time with the same rank and token count."""
    torch_by_key = {key(t): t for t in torch_rows}
    out = []
    for s in slope_rows:
        t = torch_by_key.get(key(s))
        if t is None or int(t["rank"]) != int(s["rank"]):
            continue
        out.append({
            "slope_output": slope_output, "hidden": int(s["hidden"]), "shape": s["shape"],
            "adapter_ratio": float(s["adapter_ratio"]), "rank": int(s["rank"]), "slope_form": s.get("form", ""),
            "slope_speedup": number(s, "speedup"), "slope_overhead": number(s, "overhead_vs_r0"),
            "torch_way": t.get("way", ""), "torch_speedup": number(t, "speedup"),
            "torch_overhead": number(t, "overhead_vs_r0"),
            "torch_over_slope": number(t, "sparse_ms") / number(s, "sparse_ms"),
            "torch_dense_over_slope": number(t, "dense_ms") / number(s, "dense_ms"),
        })
    return out


def summary(rows):
    """Per adapter ratio: geometric means of both speedups and of torch_over_slope over all
    shapes, and of 1 + overhead (minus 1) over the MLP shapes with d >= 2048 and rank > 0."""
    by_ratio = defaultdict(list)
    for r in rows:
        by_ratio[r["adapter_ratio"]].append(r)
    out = {}
    for ratio, rs in sorted(by_ratio.items()):
        tag = f"ratio_{ratio:.4f}"
        out[f"{tag}_geomean_slope_speedup"] = geometric_mean([r["slope_speedup"] for r in rs])
        out[f"{tag}_geomean_torch_speedup"] = geometric_mean([r["torch_speedup"] for r in rs])
        out[f"{tag}_geomean_torch_over_slope"] = geometric_mean([r["torch_over_slope"] for r in rs])
        out[f"{tag}_geomean_torch_dense_over_slope"] = geometric_mean([r["torch_dense_over_slope"] for r in rs])
        mlp = [r for r in rs if r["hidden"] >= 2048 and r["shape"] != "attention" and r["rank"] > 0]
        if mlp:
            for lib in ("slope", "torch"):
                out[f"{tag}_{lib}_overhead_mlp_d2048plus"] = geometric_mean([1 + r[f"{lib}_overhead"] for r in mlp]) - 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--slope-csv", required=True)
    p.add_argument("--slope-token-major-csv")
    p.add_argument("--torch-csv", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json")
    p.add_argument("--slope-json", help="slope layer's JSON, whose meta the JSON carries")
    args = p.parse_args()
    try:
        torch_rows = read_csv(args.torch_csv)
        layouts = {"feature-major": comparison_rows(read_csv(args.slope_csv), torch_rows, "feature-major")}
        if args.slope_token_major_csv:
            layouts["token-major"] = comparison_rows(read_csv(args.slope_token_major_csv), torch_rows, "token-major")
        slope_meta = {}
        if args.slope_json:
            with open(args.slope_json) as f:
                slope_meta = json.load(f)["meta"]
    except (OSError, KeyError, ValueError) as e:
        print(f"compare_torch_layer.py: error: cannot read the input files: {e!r}", file=sys.stderr)
        return 2
    for layout, rows in layouts.items():
        if not rows:
            print(f"compare_torch_layer.py: error: slope's {layout} CSV and {args.torch_csv} share no layer",
                  file=sys.stderr)
            return 2
    write_csv(args.out, ",".join(COLUMNS), [tuple(r[c] for c in COLUMNS) for rows in layouts.values() for r in rows])
    totals = {layout: summary(rows) for layout, rows in layouts.items()}
    if args.json:
        meta = carried_meta(slope_meta, "torch_vs_slope_layer", "slope_command")
        meta["torch_version"] = torch_rows[0].get("torch_version", "?") if torch_rows else "?"
        meta["command"] = " ".join(["compare_torch_layer.py"] + sys.argv[1:])
        write_json_atomically(args.json, {"meta": meta, "summary": totals})
    for layout, t in totals.items():
        for k, v in t.items():
            print(f"{layout} {k} = {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
