#!/usr/bin/env python3
"""slope's 2:4 products beside PyTorch's 2:4 path on the same GPU, shape by shape.

Reads `slope spmm`'s CSV (token-major outputs, Y) and, where given, that of `slope spmm
--output-layout feature-major` (Y^T), and scripts/bench_torch.py's, and writes one row per shape
of the paper's figure and slope output layout (attention, upsample, downsample per hidden size;
slope's upsample the layout its engine uses, the faster of whole and tiled):
  slope_output,hidden,shape,tokens,slope_dense_ms,slope_sparse_ms,slope_speedup,slope_eager_sparse_ms,torch_eager_sparse_ms,
  torch_eager_speedup,torch_dense_graph_ms,torch_sparse_graph_ms,torch_graph_speedup,
  torch_searched_graph_ms,torch_searched_graph_speedup,torch_best_graph_speedup,
  torch_eager_over_slope,torch_graph_over_slope,torch_dense_over_slope
PyTorch's F.linear on a 2:4 weight computes W X^T and returns its transpose as a view, so its
result lies in memory feature-major, as slope's Y^T does. The speedups are each library's 2:4
product over its own dense one, paired in one process.
The `*_over_slope` columns divide PyTorch's times by slope's: both launched eagerly, back to back
(as a program calls them), both replayed from CUDA graphs (PyTorch's faster configuration,
default or searched), and PyTorch's dense product over slope's tuned cuBLASLt (graphs). Those compare two processes that ran at different moments, and the
H200 moves its clock at its power cap, so torch_dense_over_slope shows how far apart the two
runs' conditions were. Prints the geometric means per slope output layout (and writes them to
--json, with a meta block taken from --slope-json: commit, GPU, versions, this command).
Usage: compare_torch.py --slope-csv spmm.csv [--slope-feature-major-csv spmm_feature_major.csv]
                        --torch-csv torch_spmm.csv --out FILE.csv [--json FILE.json --slope-json spmm.json]
"""
import argparse
import csv
import json
import math
import sys

from atomic_file import write_json_atomically
from derived_meta import carried_meta
from torch_common import write_csv

SHAPES = ("attention", "upsample", "downsample")
COLUMNS = ("slope_output", "hidden", "shape", "tokens", "slope_dense_ms", "slope_sparse_ms", "slope_speedup", "slope_eager_sparse_ms",
           "torch_eager_sparse_ms",
           "torch_eager_speedup", "torch_dense_graph_ms", "torch_sparse_graph_ms", "torch_graph_speedup",
           "torch_searched_graph_ms", "torch_searched_graph_speedup", "torch_best_graph_speedup",
           "torch_eager_over_slope", "torch_graph_over_slope", "torch_dense_over_slope")


def number(row, column):
    """The column's value as a float; nan where it is missing or empty."""
    try:
        return float(row.get(column) or "nan")
    except ValueError:
        return math.nan


def finite_min(*values):
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else math.nan


def finite_max(*values):
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan


def comparison_rows(slope_rows, torch_rows, slope_output="token-major"):
    """One dict per shape that both files time at the same token count (COLUMNS' keys)."""
    slope = {(int(r["hidden"]), r["shape"], int(r["tokens"])): r for r in slope_rows}
    out = []
    for t in torch_rows:
        hidden, shape, tokens = int(t["hidden"]), t["shape"], int(t["tokens"])
        if shape not in SHAPES or (hidden, shape, tokens) not in slope:
            continue
        s = slope[(hidden, shape, tokens)]
        tiled = slope.get((hidden, "upsample_tiled", tokens)) if shape == "upsample" else None
        if tiled is not None and number(tiled, "speedup") > number(s, "speedup"):
            s = tiled
        slope_sparse, slope_dense = number(s, "sparse_ms"), number(s, "dense_ms")
        eager_sparse = number(t, "torch_sparse_ms")
        graph_sparse, searched = number(t, "torch_sparse_graph_ms"), number(t, "torch_searched_graph_ms")
        out.append({
            "slope_output": slope_output, "hidden": hidden, "shape": shape, "tokens": tokens,
            "slope_dense_ms": slope_dense, "slope_sparse_ms": slope_sparse, "slope_speedup": number(s, "speedup"),
            "slope_eager_sparse_ms": number(s, "sparse_eager_ms"),
            "torch_eager_sparse_ms": eager_sparse, "torch_eager_speedup": number(t, "torch_speedup"),
            "torch_dense_graph_ms": number(t, "torch_dense_graph_ms"), "torch_sparse_graph_ms": graph_sparse,
            "torch_graph_speedup": number(t, "torch_graph_speedup"), "torch_searched_graph_ms": searched,
            "torch_searched_graph_speedup": number(t, "torch_searched_graph_speedup"),
            "torch_best_graph_speedup": finite_max(number(t, "torch_graph_speedup"),
                                                   number(t, "torch_searched_graph_speedup")),
            "torch_eager_over_slope": eager_sparse / number(s, "sparse_eager_ms"),
            "torch_graph_over_slope": finite_min(graph_sparse, searched) / slope_sparse,
            "torch_dense_over_slope": number(t, "torch_dense_graph_ms") / slope_dense,
        })
    return out


def geometric_mean(values):
    """Of the finite, positive values; nan where there are none."""
    values = [v for v in values if math.isfinite(v) and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def summary(rows):
    """Geometric means over the shapes (and the smallest graph ratio), keyed by column; rows of
    one slope output layout."""
    keys = ("slope_speedup", "torch_eager_speedup", "torch_graph_speedup", "torch_best_graph_speedup",
            "torch_eager_over_slope", "torch_graph_over_slope", "torch_dense_over_slope")
    out = {f"geomean_{k}": geometric_mean([r[k] for r in rows]) for k in keys}
    graph = [r["torch_graph_over_slope"] for r in rows if math.isfinite(r["torch_graph_over_slope"])]
    out["min_torch_graph_over_slope"] = min(graph) if graph else math.nan
    out["shapes"] = len(rows)
    out["shapes_with_graph_times"] = len(graph)
    return out


def meta_for(slope_meta, torch_rows, command):
    """The JSON's meta: slope spmm's (commit, GPU, driver, versions; derived_meta), with the
    PyTorch version and this script's command."""
    meta = carried_meta(slope_meta, "torch_vs_slope", "slope_command")
    meta["torch_version"] = torch_rows[0].get("torch_version", "?") if torch_rows else "?"
    meta["torch_timing"] = ("scripts/bench_torch.py: eager back-to-back calls, and CUDA graph replays over operands "
                            "rotated past the L2 with dense and 2:4 replays alternating")
    meta["command"] = command
    return meta


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--slope-csv", required=True)
    p.add_argument("--slope-feature-major-csv")
    p.add_argument("--torch-csv", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json")
    p.add_argument("--slope-json", help="slope spmm's JSON, whose meta the JSON carries")
    args = p.parse_args()
    try:
        torch_rows = read_csv(args.torch_csv)
        slope_meta = {}
        if args.slope_json:
            with open(args.slope_json) as f:
                slope_meta = json.load(f)["meta"]
        layouts = {"token-major": comparison_rows(read_csv(args.slope_csv), torch_rows, "token-major")}
        if args.slope_feature_major_csv:
            layouts["feature-major"] = comparison_rows(read_csv(args.slope_feature_major_csv), torch_rows,
                                                       "feature-major")
    except (OSError, KeyError, ValueError) as e:
        print(f"compare_torch.py: error: cannot read the two CSV files: {e!r}", file=sys.stderr)
        return 2
    for layout, rows in layouts.items():
        if not rows:
            print(f"compare_torch.py: error: slope's {layout} CSV and {args.torch_csv} share no shape", file=sys.stderr)
            return 2
    write_csv(args.out, ",".join(COLUMNS), [tuple(r[c] for c in COLUMNS) for rows in layouts.values() for r in rows])
    totals = {layout: summary(rows) for layout, rows in layouts.items()}
    if args.json:
        meta = meta_for(slope_meta, torch_rows, " ".join(["compare_torch.py"] + sys.argv[1:]))
        write_json_atomically(args.json, {"meta": meta, "summary": totals})
    for layout, t in totals.items():
        for key, value in t.items():
            print(f"{layout} {key} = {value:.4g}" if isinstance(value, float) else f"{layout} {key} = {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
