#!/usr/bin/env python3
"""Whole-model inference speedups estimated from measured parts, beside the paper's.

`slope model` measures one decoder block's linear layers per model, dense against SLoPe; the
paper reports whole models. A whole forward pass runs each block's linear layers and the rest
of the block (norms, attention core, activation, residual adds), `layers` times, plus once
the embeddings, final norm and LM head. The rest is dense on both sides and timed by
`bench_torch_model_rest.py`. So, per model and adapter ratio:

    dense model  = layers x (dense linear layers + rest of a block) + once per model
    SLoPe model  = layers x (SLoPe linear layers + rest of a block) + once per model
    speedup      = dense model / SLoPe model

An estimate: the parts were timed apart (each with its operands rotated past the L2), and the
rest as PyTorch runs it, one kernel per operation, so the rest is if anything overstated and
the speedup understated.

    model_whole.py --model-csv model_inference.csv --rest-csv torch_model_rest.csv
                   --out model_whole.csv [--json model_whole.json] [--model-json model_inference.json]

The JSON's meta carries the model experiment's (commit, GPU, versions; from --model-json), the
PyTorch version of the rest, and the geometric-mean speedups per adapter ratio.
"""
import argparse
import csv
import json
import math
import sys

from atomic_file import write_json_atomically
from derived_meta import carried_meta
from torch_common import write_csv

COLUMNS = ["model", "paper_model", "hidden", "layers", "adapter_ratio", "tokens", "linear_dense_ms",
           "linear_sparse_ms", "linear_speedup", "block_rest_ms", "once_ms", "model_dense_ms", "model_sparse_ms",
           "model_speedup", "paper_speedup"]


def read_rows(path, needed):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in needed if not rows or c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: no rows, or no column(s) {', '.join(missing)}")
    return rows


def whole_model_rows(model_rows, rest_rows):
    """One dict per (model, adapter ratio) of `slope model` whose model the rest was timed for,
    at the same token count; in the model experiment's order."""
    rest = {(r["model"], r["tokens"]): r for r in rest_rows}
    out = []
    for m in model_rows:
        r = rest.get((m["model"], m["tokens"]))
        if r is None:
            continue
        layers = int(r["layers"])
        dense, sparse = float(m["dense_ms"]), float(m["sparse_ms"])
        block_rest, once = float(r["block_rest_ms"]), float(r["once_ms"])
        model_dense = layers * (dense + block_rest) + once
        model_sparse = layers * (sparse + block_rest) + once
        out.append({"model": m["model"], "paper_model": m["paper_model"], "hidden": int(m["hidden"]),
                    "layers": layers, "adapter_ratio": float(m["adapter_ratio"]), "tokens": int(m["tokens"]),
                    "linear_dense_ms": dense, "linear_sparse_ms": sparse, "linear_speedup": dense / sparse,
                    "block_rest_ms": block_rest, "once_ms": once, "model_dense_ms": model_dense,
                    "model_sparse_ms": model_sparse, "model_speedup": model_dense / model_sparse,
                    "paper_speedup": float(m.get("paper_speedup") or "nan")})
    return out


def geomeans(rows, key):
    """{adapter ratio: geometric mean of rows[key]} over the rows with a finite value."""
    by_ratio = {}
    for r in rows:
        if math.isfinite(r[key]):
            by_ratio.setdefault(r["adapter_ratio"], []).append(math.log(r[key]))
    return {ratio: math.exp(sum(v) / len(v)) for ratio, v in by_ratio.items()}


def meta_for(rows, model_meta, rest_rows):
    meta = carried_meta(model_meta, "model_whole", "linear_layers_command")
    meta["rest_timed_by"] = "scripts/bench_torch_model_rest.py, PyTorch " + rest_rows[0].get("torch_version", "?")
    meta["estimate"] = ("layers x (block's linear layers + rest of the block) + once per model, each part timed "
                        "apart; the rest as PyTorch runs it, unfused")
    for key in ("linear_speedup", "model_speedup", "paper_speedup"):
        for ratio, value in geomeans(rows, key).items():
            meta[f"{key}_geomean_ratio_{ratio:.4f}"] = f"{value:.4f}"
    return meta


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-csv", required=True, help="slope model's CSV (model_inference.csv)")
    p.add_argument("--rest-csv", required=True, help="bench_torch_model_rest.py's CSV")
    p.add_argument("--out", required=True, help="the CSV to write")
    p.add_argument("--json", help="also write JSON (rows and meta) here")
    p.add_argument("--model-json", help="slope model's JSON, whose meta (commit, GPU, versions) to carry")
    args = p.parse_args()
    try:
        model_rows = read_rows(args.model_csv, ["model", "paper_model", "hidden", "adapter_ratio", "tokens",
                                                "dense_ms", "sparse_ms"])
        rest_rows = read_rows(args.rest_csv, ["model", "layers", "tokens", "block_rest_ms", "once_ms"])
        model_meta = {}
        if args.model_json:
            with open(args.model_json) as f:
                model_meta = json.load(f).get("meta", {})
    except (OSError, ValueError) as e:
        print(f"model_whole.py: error: {e}", file=sys.stderr)
        return 2
    rows = whole_model_rows(model_rows, rest_rows)
    if not rows:
        print("model_whole.py: error: no model of the model CSV was timed in the rest CSV at its token count",
              file=sys.stderr)
        return 2
    write_csv(args.out, ",".join(COLUMNS), [tuple(r[c] for c in COLUMNS) for r in rows])
    if args.json:
        write_json_atomically(args.json, {"meta": meta_for(rows, model_meta, rest_rows), "rows": rows})
    for ratio, value in sorted(geomeans(rows, "model_speedup").items()):
        linear = geomeans(rows, "linear_speedup")[ratio]
        print(f"model_whole: adapter ratio {ratio:.4f}: whole model (estimated) {value:.3f}, "
              f"linear layers {linear:.3f}, geometric means", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
