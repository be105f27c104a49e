#!/usr/bin/env python3
"""Plots slope's result files (the CSV/JSON the `slope` CLI writes) as PNG figures.

  plot.py memory  --exact FILE.csv --paper FILE.csv --out FILE.png
  plot.py spmm    --csv FILE.csv --out FILE.png
  plot.py spmm_sweep --csv FILE.csv [--csv FILE.csv]... --out FILE.png [--title TEXT]
  plot.py setup   --csv FILE.csv --out FILE.png
  plot.py lowrank --csv FILE.csv --out FILE.png
  plot.py layer   --csv FILE.csv --out FILE.png [--title TEXT]
  plot.py step    --csv FILE.csv --out FILE.png [--title TEXT]
  plot.py model   --csv FILE.csv --out FILE.png [--title TEXT]
  plot.py model_training --csv FILE.csv --out FILE.png [--title TEXT]
  plot.py torch   --csv FILE.csv --out FILE.png [--title TEXT]   (compare_torch.py's CSV)
  plot.py decode  --spmm-csv FILE.csv --spmm-json FILE.json --model-csv FILE.csv --out FILE.png
                  [--title TEXT]   (spmm and model at a decode step's few tokens)

The paper's A100 values (data/paper/figures_read_off.csv) are drawn as faint reference
lines where the paper has a matching figure (for SpMM: only beside fp16 at 2048 tokens, the
paper's setting).
"""
import argparse
import csv
import json
import math
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from figure_file import save_figure  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_FIGURES = os.path.join(ROOT, "data", "paper", "figures_read_off.csv")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(row for row in f if not row.startswith("#")))


def paper_points(figure):
    """{series: {hidden: value}} for one figure of the paper."""
    out = defaultdict(dict)
    with open(PAPER_FIGURES) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fig, series, hidden, value = line.strip().split(",")
            if fig == figure:
                out[series][int(hidden)] = float(value)
    return out


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def save(fig, path):
    fig.tight_layout()
    save_figure(fig, path, dpi=130)  # a palette PNG, never half-written
    plt.close(fig)


def plot_memory(args):
    exact = read_csv(args.exact)
    paper = read_csv(args.paper)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), sharey=True)
    columns = [("training", 0.0, "training"), ("inference", 0.0, "inference r=0"),
               ("inference", 1 / 64, "inference 1.56%"), ("inference", 1 / 16, "inference 6.25%")]
    for ax, rows, title in ((axes[0], paper, "paper protocol (reduced layers) vs paper"),
                            (axes[1], exact, "exact accounting, whole models")):
        models = list(dict.fromkeys(r["model"] for r in rows))
        width = 0.8 / (len(columns) + 1)
        for i, (mode, ratio, label) in enumerate(columns):
            xs, ys, ps = [], [], []
            for m, model in enumerate(models):
                hit = [r for r in rows if r["model"] == model and r["method"] == "slope"
                       and r["mode"] == mode and abs(num(r["adapter_ratio"]) - ratio) < 1e-6]
                if hit:
                    xs.append(m + (i - len(columns) / 2) * width)
                    ys.append(num(hit[0]["ratio"]))
                    ps.append(num(hit[0].get("paper_ratio")))
            ax.bar(xs, ys, width, label="SLoPe " + label)
            if any(not math.isnan(p) for p in ps):
                ax.scatter(xs, ps, marker="_", s=120, color="black", zorder=3,
                           label="paper" if i == 0 else None)
        fst = [(m, num(r["ratio"])) for m, model in enumerate(models) for r in rows
               if r["model"] == model and r["method"] == "fst" and r["mode"] == "training"]
        ax.bar([m + (len(columns) / 2) * width for m, _ in fst], [v for _, v in fst], width,
               color="lightgray", label="FST training")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.axhline(9 / 16, color="gray", lw=0.8, ls=":")
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, rotation=25, ha="right")
        ax.set_title(title)
    axes[0].set_ylabel("memory / dense memory")
    # Headroom above the tallest bar (FST's, about 1.2) so that the legend's rows sit over
    # the data rather than on it. A row without a ratio (NaN) draws no bar, so it must not
    # set the limit either: matplotlib refuses a NaN limit. With no ratio at all there is no bar
    # to clear, and the axes keep a limit of their own.
    tallest = max((v for v in (num(r["ratio"]) for r in paper + exact) if not math.isnan(v)), default=1.0)
    axes[0].set_ylim(0, tallest * 1.3)
    axes[0].legend(fontsize=8, loc="upper left", ncol=3)
    save(fig, args.out)


def plot_spmm(args):
    rows = read_csv(args.csv)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    paper = paper_points("spmm_speedup") if spmm_setting(rows) == ("fp16", 2048) else {}
    colors = {"attention": "C0", "upsample": "C1", "downsample": "C2", "upsample_tiled": "C3"}
    for shape, color in colors.items():
        pts = sorted((int(r["hidden"]), num(r["speedup"])) for r in rows if r["shape"] == shape)
        if pts:
            ax.plot(*zip(*pts), marker="o", color=color, label=f"{shape} (slope)")
        if shape in paper:
            pp = sorted(paper[shape].items())
            ax.plot(*zip(*pp), ls="--", alpha=0.35, color=color, label=f"{shape} (paper, A100)")
    # Shapes where the engine split W into wave bands (row_parts like "2048+512").
    banded = [(int(r["hidden"]), num(r["speedup"])) for r in rows if "+" in r.get("row_parts", "")]
    if banded:
        ax.scatter(*zip(*banded), s=110, facecolors="none", edgecolors="black", lw=1.0, zorder=3,
                   label="W in two wave bands")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xlabel("hidden dimension d")
    ax.set_ylabel("speedup of 2:4 SpMM over dense GEMM")
    ax.set_title(args.title or "cuSPARSELt SpMM speedup")
    ax.legend(fontsize=7, ncol=2)
    save(fig, args.out)


def plot_torch(args):
    """compare_torch.py's CSV: per shape, each library's 2:4 product over its own dense one, by
    hidden size; slope's token- and feature-major outputs, PyTorch's 2:4 path replayed from CUDA
    graphs with its default kernel configuration and with the one cuSPARSELt's search picks,
    and launched eagerly (host work included)."""
    rows = read_csv(args.csv)
    shapes = ("attention", "upsample", "downsample")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharey=True)
    for ax, shape in zip(axes, shapes):
        def series(layout, column):
            return sorted((int(r["hidden"]), num(r[column])) for r in rows
                          if r["shape"] == shape and r["slope_output"] == layout and not math.isnan(num(r[column])))
        lines = [("token-major", "slope_speedup", dict(color="C0", marker="o"), "slope, Y token-major"),
                 ("feature-major", "slope_speedup", dict(color="C0", marker="s", ls="-."), "slope, Y^T"),
                 ("token-major", "torch_searched_graph_speedup", dict(color="C3", marker="^", ls="--"),
                  "PyTorch, graphs, searched configuration"),
                 ("token-major", "torch_graph_speedup", dict(color="C1", marker="v", ls=":"),
                  "PyTorch, graphs, default configuration"),
                 ("token-major", "torch_eager_speedup", dict(color="gray", marker=".", ls=":", alpha=0.6),
                  "PyTorch, eager")]
        for layout, column, style, label in lines:
            pts = series(layout, column)
            if pts:
                ax.plot(*zip(*pts), label=label, **style)
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_title(shape)
        ax.set_xlabel("hidden dimension d")
    axes[0].set_ylabel("2:4 product's speedup over its own dense")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(args.title or "slope's 2:4 products and PyTorch's, each over its own dense GEMM")
    save(fig, args.out)


def spmm_setting(rows):
    """(dtype, tokens) of an spmm file, which holds one of each."""
    settings = {(r["dtype"], int(r["tokens"])) for r in rows}
    if len(settings) != 1:
        raise ValueError(f"expected one dtype and token count per spmm file, found {sorted(settings)}")
    return settings.pop()


def plot_spmm_sweep(args):
    """Speedup over dense per hidden size for several spmm files (token counts, dtypes), one
    panel per shape. The upsample panel takes the engine's layout: the faster of tiled and
    untiled, as the summary's geometric mean does."""
    runs = []
    for path in args.csv:
        rows = read_csv(path)
        runs.append((spmm_setting(rows), rows))
    runs.sort(key=lambda run: (run[0][0] != "fp16", run[0][0], run[0][1]))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), sharey=True)
    for ax, shape in zip(axes, ("attention", "upsample", "downsample")):
        for i, ((dtype, tokens), rows) in enumerate(runs):
            best = defaultdict(float)
            for r in rows:
                if r["shape"] == shape or (shape == "upsample" and r["shape"] == "upsample_tiled"):
                    best[int(r["hidden"])] = max(best[int(r["hidden"])], num(r["speedup"]))
            if best:
                ax.plot(*zip(*sorted(best.items())), marker="o", color=f"C{i}",
                        ls="-" if dtype == "fp16" else "--", label=f"{dtype}, {tokens} tokens")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.axhline(1.05, color="gray", lw=0.6, ls=":")
        ax.set_xlabel("hidden dimension d")
        ax.set_title(shape)
    axes[0].set_ylabel("speedup of 2:4 SpMM over dense GEMM")
    axes[0].legend(fontsize=8)
    fig.suptitle(args.title or "2:4 SpMM speedup by token count and dtype")
    save(fig, args.out)


def plot_setup(args):
    rows = read_csv(args.csv)
    hidden = sorted({int(r["hidden"]) for r in rows})
    row_of = {int(r["hidden"]): r for r in rows}
    phases = [c for c in rows[0].keys() if c.endswith("_ms")]
    # Left: the one-time and per-call costs in ms (log scale); right: the host's cost of one
    # call in us, which is what a small product's launch rate depends on.
    fig, (ax, host) = plt.subplots(1, 2, figsize=(15, 4.8), gridspec_kw={"width_ratios": [3, 1.3]})
    width = 0.8 / len(phases)
    for i, phase in enumerate(phases):
        vals = [num(row_of[h][phase]) for h in hidden]
        ax.bar([j + (i - len(phases) / 2 + 0.5) * width for j in range(len(hidden))], vals, width,
               label=phase[:-3])
    paper = paper_points("setup_overhead_ms")
    for series, style in (("setup", "k--"), ("multiplication", "k:")):
        if series in paper:
            ax.plot(range(len(hidden)), [paper[series].get(h, math.nan) for h in hidden], style,
                    alpha=0.5, label=f"paper A100 {series}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(hidden)))
    ax.set_xticklabels(hidden)
    ax.set_xlabel("hidden dimension d (d x d weight, 2048 tokens)")
    ax.set_ylabel("milliseconds (log)")
    ax.set_title(args.title or "cuSPARSELt setup overhead")
    # Beside the axes: the tall bars (selection, search) reach the top at every d.
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plot_host_cost(host, hidden, row_of)
    save(fig, args.out)


def plot_host_cost(ax, hidden, row_of):
    """Host microseconds per call, sparse beside cuBLASLt; whiskers: the fastest and slowest
    batch where the CSV has them (since 2782e23)."""
    x = range(len(hidden))
    sparse = [num(row_of[h].get("host_overhead_us")) for h in hidden]
    dense = [num(row_of[h].get("dense_host_overhead_us")) for h in hidden]
    low = [num(row_of[h].get("host_overhead_min_us")) for h in hidden]
    high = [num(row_of[h].get("host_overhead_max_us")) for h in hidden]
    errors = None
    if not any(math.isnan(v) for v in low + high):
        errors = [[s - lo for s, lo in zip(sparse, low)], [hi - s for s, hi in zip(sparse, high)]]
    ax.bar([j - 0.2 for j in x], sparse, 0.4, yerr=errors, capsize=2, label="cuSPARSELt (slope)")
    ax.bar([j + 0.2 for j in x], dense, 0.4, color="0.6", label="cuBLASLt")
    ax.axhline(20, color="k", ls="--", lw=0.8, label="target: 20 us")
    ax.set_xticks(list(x))
    ax.set_xticklabels(hidden, fontsize=7)
    ax.set_xlabel("hidden dimension d")
    ax.set_ylabel("host microseconds per call")
    ax.set_ylim(0, max(25, max(v for v in sparse + dense + high if not math.isnan(v)) * 1.15))
    ax.set_title("host cost of one call", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def plot_lowrank(args):
    rows = read_csv(args.csv)
    fig, (ax, bw) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    paper = paper_points("lowrank_speedup")
    ratios = sorted({num(r["rank_ratio"]) for r in rows if num(r["rank_ratio"]) < 1}, reverse=True)
    for i, ratio in enumerate(ratios):
        for method, ls in (("plain", "-"), ("ours", "-.")):
            pts = sorted((int(r["hidden"]), num(r["speedup_vs_full"])) for r in rows
                         if num(r["rank_ratio"]) == ratio and r["method"] == method)
            if pts:
                ax.plot(*zip(*pts), ls=ls, marker="o", color=f"C{i}", label=f"r={ratio:g} {method}")
        key = f"rank_{ratio:g}"
        if key in paper:
            pp = sorted(paper[key].items())
            ax.scatter(*zip(*pp), marker="x", s=60, linewidths=2, color=f"C{i}", zorder=3,
                       label=f"r={ratio:g} paper, A100")
        ax.axhline(1 / ratio, color=f"C{i}", lw=0.6, ls=":", alpha=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("hidden dimension d")
    ax.set_ylabel("speedup over rank = d (log); dotted: ideal 1/ratio; x: paper")
    ax.set_title(args.title or "Low-rank product (X L) R")
    ax.legend(fontsize=7, ncol=3, loc="upper left")  # the small hidden sizes leave that corner empty
    # Right: how close the small ranks come to the hardware, per method.
    small = [r for r in rows if num(r["rank_ratio"]) <= 0.05 + 1e-9]
    for i, ratio in enumerate(ratios):
        if ratio > 0.05 + 1e-9:
            continue
        for method, ls in (("plain", "-"), ("ours", "-.")):
            pts = sorted((int(r["hidden"]), num(r["hbm_fraction"])) for r in small
                         if num(r["rank_ratio"]) == ratio and r["method"] == method)
            if pts:
                bw.plot(*zip(*pts), ls=ls, marker="o", color=f"C{i}", label=f"r={ratio:g} {method}")
        if "roofline_fraction" in small[0]:
            pts = sorted((int(r["hidden"]), num(r["roofline_fraction"])) for r in small
                         if num(r["rank_ratio"]) == ratio and r["method"] == "ours")
            if pts:
                bw.plot(*zip(*pts), ls=":", marker=".", color=f"C{i}", alpha=0.6)
    if getattr(args, "torch_csv", None):  # PyTorch's plain matmuls on the same GPU, if measured
        torch_rows = read_csv(args.torch_csv)
        for i, ratio in enumerate(ratios):
            pts = sorted((int(r["hidden"]), num(r["hbm_fraction"])) for r in torch_rows
                         if abs(num(r["rank_ratio"]) - ratio) < 1e-9 and ratio <= 0.05 + 1e-9)
            if pts:
                bw.plot(*zip(*pts), ls="--", marker="s", ms=3, color=f"C{i}", alpha=0.7,
                        label=f"r={ratio:g} PyTorch")
    bw.axhline(0.5, color="grey", lw=0.6, ls="--")
    bw.set_ylim(0, 1)
    bw.set_xlabel("hidden dimension d")
    bw.set_ylabel("fraction of copy bandwidth; dotted: of the roofline (ours)")
    bw.set_title("Rank ratio <= 0.05: achieved vs ceiling")
    if small:
        bw.legend(fontsize=7, ncol=2)
    save(fig, args.out)


def plot_layer(args):
    """Speedup over dense per shape (one colour each) and variant (one line style each: the
    adapter ratio, or the token count for training). Inference files also get a right panel:
    each adapter's overhead over the r = 0 layer, against the targets."""
    rows = read_csv(args.csv)
    if "phase" in rows[0]:  # training: the whole step per shape; per-phase numbers stay in the csv
        rows = [r for r in rows if r["phase"] == "total"]
    variant_col = next((c for c in ("adapter_ratio", "tokens") if c in rows[0] and len({r[c] for r in rows}) > 1),
                       None)
    shapes = sorted({r.get("shape", "mlp_block") for r in rows})
    colors = {shape: f"C{i}" for i, shape in enumerate(shapes)}
    variants = sorted({num(r[variant_col]) for r in rows}) if variant_col else [None]
    styles = {v: ("-", "--", ":", "-.")[i % 4] for i, v in enumerate(variants)}

    def variant_label(v):
        if variant_col == "adapter_ratio":
            return f"adapter {100 * v:.2f}%" if v > 0 else "no adapter"
        return f"{v:g} tokens" if variant_col else ""

    groups = defaultdict(list)
    for r in rows:
        groups[(r.get("shape", "mlp_block"), num(r[variant_col]) if variant_col else None)].append(
            (int(r["hidden"]), num(r["speedup"])))
    overhead = "overhead_vs_r0" in rows[0]
    fig, axes = plt.subplots(1, 2 if overhead else 1, figsize=(14 if overhead else 9, 5), squeeze=False)
    left = axes[0][0]
    for (shape, v), pts in sorted(groups.items()):
        left.plot(*zip(*sorted(pts)), marker="o", ms=4, color=colors[shape], ls=styles[v],
                  label=f"{shape}, {variant_label(v)}" if variant_col else shape)
    left.axhline(1.0, color="gray", lw=0.8)
    if args.ceiling:
        left.axhline(args.ceiling, color="black", lw=0.8, ls="--", label=f"ceiling {args.ceiling:g}x")
    left.set_xlabel("hidden dimension d")
    left.set_ylabel("speedup over dense")
    left.set_title("Speedup over dense")
    left.legend(fontsize=6, ncol=2)
    if overhead:
        right = axes[0][1]
        over = defaultdict(list)
        for r in rows:
            v = num(r["adapter_ratio"])
            if v > 0 and int(r["rank"]) > 0 and not math.isnan(num(r["overhead_vs_r0"])):
                over[(r["shape"], v)].append((int(r["hidden"]), 100 * num(r["overhead_vs_r0"])))
        for (shape, v), pts in sorted(over.items()):
            right.plot(*zip(*sorted(pts)), marker="o", ms=4, color=colors[shape], ls=styles[v],
                       label=f"{shape}, {variant_label(v)}")
        for target, v in ((8, 1 / 64), (22, 1 / 16)):
            if v in styles:
                right.axhline(target, color="black", lw=0.8, ls=styles[v],
                              label=f"target at {100 * v:.2f}%: {target}% (mean over MLP shapes, d >= 2048)")
        right.axhline(0, color="gray", lw=0.8)
        right.set_xlabel("hidden dimension d")
        right.set_ylabel("adapter overhead over r = 0, % (interleaved samples)")
        right.set_title("Cost of the lazy low-rank adapter")
        right.legend(fontsize=6, ncol=2)
    fig.suptitle(args.title or "SLoPe layer speedup")
    save(fig, args.out)


def plot_step(args):
    """Left: end-to-end step speedup per (accumulation, adapter); right: the optimizer +
    refresh bandwidth against the re-compress baseline and the copy ceiling."""
    rows = read_csv(args.csv)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    groups = defaultdict(list)  # (accumulation, adapter ratio) -> points
    for r in rows:
        groups[(int(r["accumulation"]), num(r["adapter_ratio"]))].append((int(r["hidden"]), num(r["speedup"])))
    colors = {acc: f"C{i}" for i, acc in enumerate(sorted({acc for acc, _ in groups}))}
    for (acc, ratio), pts in sorted(groups.items()):
        label = f"accumulation {acc}" + (f", adapter {100 * ratio:.2f}%" if ratio > 0 else "")
        left.plot(*zip(*sorted(pts)), marker="o", color=colors[acc], ls="--" if ratio > 0 else "-", label=label)
    left.axhline(1.0, color="gray", lw=0.8)
    left.axhline(1.15, color="black", lw=0.8, ls=":", label="target 1.15x (accumulation 4, d >= 4096)")
    left.set_xlabel("hidden dimension d (MLP block d -> 4d -> d)")
    left.set_ylabel("step speedup over dense + fused AdamW")
    left.set_title("Whole training step")
    left.legend(fontsize=7)
    base = {}
    for r in rows:
        if num(r["adapter_ratio"]) == 0:
            base[int(r["hidden"])] = r
    hidden = sorted(base)
    for col, label in (("optimizer_refresh_gbps", "AdamW in place + W^{R,C} refresh"),
                       ("recompress_baseline_gbps", "AdamW + cuSPARSELt re-compress"),
                       ("hbm_gbps", "device copy (ceiling)")):
        right.plot(hidden, [num(base[d][col]) for d in hidden], marker="o", label=label)
    right.plot(hidden, [0.4 * num(base[d]["hbm_gbps"]) for d in hidden], color="black", lw=0.8, ls=":",
               label="target: 40% of copy")
    right.set_xlabel("hidden dimension d")
    right.set_ylabel("GB/s (counted bytes / time)")
    right.set_title("Optimizer step + refresh of the sparse weights")
    right.legend(fontsize=7)
    fig.suptitle(args.title or "SLoPe training step")
    save(fig, args.out)


def group_positions(i, groups, count):
    """x positions of bar group i (of `groups`) beside each of `count` models, and the width."""
    width = 0.8 / groups
    return [m + (i - (groups - 1) / 2) * width for m in range(count)], width


def mark_paper(ax, xs, width, values, label):
    """The paper's values as black marks across the bars at xs."""
    ax.hlines(values, [x - width * 0.45 for x in xs], [x + width * 0.45 for x in xs], color="black", lw=2,
              zorder=3, label=label)


def label_models(ax, rows):
    """One tick per model, in the run's order, named as the paper names it."""
    names = dict((r["model"], r["paper_model"]) for r in rows)
    models = list(dict.fromkeys(r["model"] for r in rows))
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([names[m] for m in models], rotation=30, ha="right", fontsize=8)


def plot_model(args):
    """Per model, the decoder block's linear-layer speedup over dense at each adapter ratio
    (bars) beside the paper's end-to-end speedup (black marks), with adapters the same speedup
    from side-by-side ratios only (grey rings: r = 0's speedup over 1 + the adapter's overhead),
    and, given model_whole.py's CSV, the whole model's estimated speedup (white diamonds);
    right: each adapter's overhead over the r = 0 block."""
    rows = read_csv(args.csv)
    whole = {(r["model"], num(r["adapter_ratio"])): num(r["model_speedup"])
             for r in (read_csv(args.whole_csv) if args.whole_csv else [])}
    models = list(dict.fromkeys(r["model"] for r in rows))  # the run's order
    ratios = sorted({num(r["adapter_ratio"]) for r in rows})
    cell = {(r["model"], num(r["adapter_ratio"])): r for r in rows}
    adapters = [v for v in ratios if v > 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    for i, v in enumerate(ratios):
        xs, width = group_positions(i, len(ratios), len(models))
        got = [num(cell[(m, v)]["speedup"]) if (m, v) in cell else math.nan for m in models]
        label = f"adapter {100 * v:.2f}%" if v > 0 else "no adapter"
        left.bar(xs, got, width * 0.95, color=f"C{i}", label=f"measured, {label}")
        paper = [num(cell[(m, v)].get("paper_speedup")) if (m, v) in cell else math.nan for m in models]
        mark_paper(left, xs, width, paper, "paper's whole model, same adapter (A100)" if i == 0 else None)
        if v > 0 and "speedup_via_r0" in rows[0]:  # files before the column have none
            via = [num(cell[(m, v)]["speedup_via_r0"]) if (m, v) in cell else math.nan for m in models]
            left.scatter(xs, via, marker="o", s=16, facecolor="none", edgecolor="dimgray", zorder=4,
                         label="r = 0's speedup / (1 + adapter overhead)" if v == min(adapters) else None)
        if whole:
            est = [whole.get((m, v), math.nan) for m in models]
            left.scatter(xs, est, marker="D", s=22, facecolor="white", edgecolor="black", zorder=4,
                         label="whole model, estimated (+ rest of the blocks, LM head)" if i == 0 else None)
        if v > 0:
            over = [100 * num(cell[(m, v)]["overhead_vs_r0"]) if (m, v) in cell else math.nan for m in models]
            right.bar(xs, over, width * 0.95, color=f"C{i}", label=label)
    for ax in (left, right):
        label_models(ax, rows)
    left.legend(fontsize=7, loc="lower center", ncol=2, framealpha=0.9)
    right.legend(fontsize=7)
    left.axhline(1.0, color="gray", lw=0.8)
    left.set_ylabel("speedup over dense")
    left.set_title("Block's linear layers" + (" and whole model (estimated)" if whole else " (measured)")
                   + " vs the paper's whole model", fontsize=10)
    right.axhline(0, color="gray", lw=0.8)
    right.set_ylabel("adapter overhead over r = 0, %")
    right.set_title("Cost of the lazy low-rank adapters")
    fig.suptitle(args.title or "SLoPe inference per model")
    save(fig, args.out)


def plot_model_training(args):
    """Per model, the decoder block's linear-layer speedup over dense in each training phase
    and whole step (bars), the paper's end-to-end training speedup marked on the total and
    the step, and the total's ceiling (two of three products sparse at twice dense's rate)."""
    rows = read_csv(args.csv)
    models = list(dict.fromkeys(r["model"] for r in rows))  # the run's order
    phases = list(dict.fromkeys(r["phase"] for r in rows))
    cell = {(r["model"], r["phase"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(11, 5))
    marked = False
    for i, phase in enumerate(phases):
        xs, width = group_positions(i, len(phases), len(models))
        got = [num(cell[(m, phase)]["speedup"]) if (m, phase) in cell else math.nan for m in models]
        label = phase.replace("_", " ")
        if phase == "step":
            label = f"step ({cell[(models[0], phase)]['accumulation']} micro-batches + optimizer)"
        ax.bar(xs, got, width * 0.95, color=f"C{i}", label=f"measured, {label}")
        paper = [num(cell[(m, phase)].get("paper_speedup")) if (m, phase) in cell else math.nan for m in models]
        if not all(math.isnan(v) for v in paper):
            mark_paper(ax, xs, width, paper, None if marked else "paper's whole model (A100)")
            marked = True
        if phase == "total":
            ceiling = num(cell[(models[0], phase)]["ceiling"]) if (models[0], phase) in cell else math.nan
            if not math.isnan(ceiling):
                ax.axhline(ceiling, color="gray", ls="--", lw=0.8, label=f"total's ceiling ({ceiling:g})")
    label_models(ax, rows)
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_ylabel("speedup over dense")
    ax.legend(fontsize=7, loc="lower center", ncol=3, framealpha=0.9)
    ax.set_title("Decoder block's linear layers in training (measured) vs the paper's whole model")
    fig.suptitle(args.title or "SLoPe training per model")
    save(fig, args.out)


def plot_decode(args):
    """A decode step's products (few tokens, W-bound): left, each shape's speedup over dense
    per hidden size beside the speedup that reading W as stored alone would give; middle, the
    bandwidth dense and sparse products reach against the device-to-device copy's; right, each
    model's decoder-block speedup at each adapter ratio. The paper has no decode figure."""
    rows = [r for r in read_csv(args.spmm_csv) if r["shape"] != "upsample_tiled"]
    with open(args.spmm_json) as f:
        copy_gbps = num(json.load(f)["meta"].get("hbm_copy_gbps"))
    dtype, tokens = spmm_setting(rows)
    fig, (speed, rate, models) = plt.subplots(1, 3, figsize=(18, 4.8), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    for i, shape in enumerate(("attention", "upsample", "downsample")):
        mine = sorted((int(r["hidden"]), r) for r in rows if r["shape"] == shape)
        if not mine:
            continue
        hidden = [h for h, _ in mine]
        speed.plot(hidden, [num(r["speedup"]) for _, r in mine], marker="o", color=f"C{i}", label=shape)
        # Bytes moved dense over bytes moved sparse: the speedup a product bound by them gets.
        bound = [num(r["sparse_gbps"]) * num(r["sparse_ms"]) / (num(r["dense_gbps"]) * num(r["dense_ms"]))
                 for _, r in mine]
        speed.plot(hidden, [1 / b for b in bound], color=f"C{i}", ls=":", alpha=0.7)
        rate.plot(hidden, [num(r["sparse_gbps"]) for _, r in mine], marker="o", color=f"C{i}", label=f"{shape}, 2:4")
        rate.plot(hidden, [num(r["dense_gbps"]) for _, r in mine], marker="x", ls="--", color=f"C{i}",
                  label=f"{shape}, dense")
    speed.plot([], [], color="gray", ls=":", label="bytes moved, dense / 2:4")
    speed.axhline(1.0, color="gray", lw=0.8)
    speed.set_xlabel("hidden dimension d")
    speed.set_ylabel("speedup of 2:4 over dense")
    speed.set_title(f"Products at {tokens} tokens ({dtype})", fontsize=10)
    speed.legend(fontsize=7)
    if not math.isnan(copy_gbps):
        rate.axhline(copy_gbps, color="black", lw=0.8, ls="--", label=f"device copy, {copy_gbps:.0f} GB/s")
    rate.set_xlabel("hidden dimension d")
    rate.set_ylabel("GB/s (X, W as stored and Y over the product's time)")
    rate.set_title("Bandwidth reached", fontsize=10)
    rate.legend(fontsize=6, ncol=2)
    model_rows = read_csv(args.model_csv)
    names = list(dict.fromkeys(r["model"] for r in model_rows))
    ratios = sorted({num(r["adapter_ratio"]) for r in model_rows})
    cell = {(r["model"], num(r["adapter_ratio"])): r for r in model_rows}
    for i, v in enumerate(ratios):
        xs, width = group_positions(i, len(ratios), len(names))
        got = [num(cell[(m, v)]["speedup"]) if (m, v) in cell else math.nan for m in names]
        models.bar(xs, got, width * 0.95, color=f"C{i}", label=f"adapter {100 * v:.2f}%" if v > 0 else "no adapter")
    label_models(models, model_rows)
    models.axhline(1.0, color="gray", lw=0.8)
    models.set_ylabel("speedup over dense")
    models.set_title("A decoder block's linear layers per model", fontsize=10)
    models.legend(fontsize=7, loc="lower center", ncol=3, framealpha=0.9)
    fig.suptitle(args.title or f"2:4 at {tokens} tokens against dense")
    save(fig, args.out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="kind", required=True)
    p = sub.add_parser("memory")
    p.add_argument("--exact", required=True)
    p.add_argument("--paper", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("decode")
    p.add_argument("--spmm-csv", required=True)
    p.add_argument("--spmm-json", required=True, help="the same run's JSON, for the copy bandwidth")
    p.add_argument("--model-csv", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--title")
    p = sub.add_parser("spmm_sweep")
    p.add_argument("--csv", required=True, action="append")
    p.add_argument("--out", required=True)
    p.add_argument("--title")
    for kind in ("spmm", "setup", "lowrank", "layer", "step", "model", "model_training", "torch"):
        p = sub.add_parser(kind)
        p.add_argument("--csv", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--title")
        p.add_argument("--ceiling", type=float)
        if kind == "lowrank":
            p.add_argument("--torch-csv", help="bench_torch_lowrank.py's CSV, drawn beside ours")
        if kind == "model":
            p.add_argument("--whole-csv", help="model_whole.py's CSV: whole-model estimates, marked on the bars")
    args = parser.parse_args()
    try:
        {"memory": plot_memory, "spmm": plot_spmm, "spmm_sweep": plot_spmm_sweep, "setup": plot_setup,
         "lowrank": plot_lowrank, "layer": plot_layer, "step": plot_step, "model": plot_model,
         "model_training": plot_model_training, "torch": plot_torch, "decode": plot_decode}[args.kind](args)
    except (OSError, KeyError, ValueError, StopIteration) as e:
        print(f"plot.py: error: cannot plot {args.kind}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
