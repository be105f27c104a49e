#!/usr/bin/env python3
"""SLoPe's inference layer written in PyTorch, as the paper's own code runs it, for comparison
with `slope layer --mode inference` on the same GPU.

The paper's implementation keeps the 2:4 weight as a torch.sparse semi-structured tensor and
adds the lazy low-rank adapter as two dense matmuls on the layer's output. This script times
that for slope's layer shapes (attention d -> d, upsample d -> 4d, downsample 4d -> d, and the
MLP block: upsample, ReLU, downsample), 2048 tokens, fp16, adapters of rank
floor(ratio d) rounded down to a multiple of 16 as slope's are, against dense F.linear, with
PyTorch at its best: replayed from CUDA graphs over operands rotated past the L2, the 2:4
products on the kernel configuration cuSPARSELt's search picks (bench_torch.searched_alg),
and the adapter added the faster of two ways:
- `add`: y + (x @ L) @ R, as a PyTorch model writes it;
- `addmm_`: F.linear's 2:4 result is the transpose of a contiguous W X^T, so the adapter can
  be accumulated into it in place, y.t().addmm_(R^T, (x @ L)^T): one GEMM with beta = 1, no
  extra pass over Y (what slope's pre-add form does).
Dense, r = 0 and every adapter variant are replayed in turn, round after round
(torch_common.interleaved_graph_ms): the speedups over dense and the overheads over r = 0 are
medians of per-round ratios. CSV columns:
  hidden,shape,adapter_ratio,rank,tokens,dense_ms,sparse_ms,speedup,way,overhead_vs_r0,
  add_ms,addmm_ms,alg,rel_error,torch_version,gpu
Usage: bench_torch_layer.py --out FILE.csv [--tokens 2048] [--hidden D ...] [--adapter-ratio R ...]
"""
import argparse
import math
import sys

from bench_torch import prune_2to4, relative_error, searched_alg
from torch_common import cuda_torch_missing, interleaved_graph_ms, paired_ratio, rotation_sets, write_csv

COLUMNS = ("hidden,shape,adapter_ratio,rank,tokens,dense_ms,sparse_ms,speedup,way,overhead_vs_r0,add_ms,addmm_ms,"
           "alg,rel_error,torch_version,gpu")
SHAPES = ("attention", "upsample", "downsample", "mlp_block")


def adapter_rank(ratio, hidden):
    """As slope's adapter_rank: floor(ratio d), rounded down to a multiple of 16."""
    return int(math.floor(ratio * hidden + 1e-9)) // 16 * 16


def block_linears(shape, d):
    """(d_out, d_in, relu after it) of each linear layer of a shape, as slope's block_linears."""
    return {"attention": [(d, d, False)], "upsample": [(4 * d, d, False)], "downsample": [(d, 4 * d, False)],
            "mlp_block": [(4 * d, d, True), (d, 4 * d, False)]}[shape]


def make_sets(torch, to_sparse, linears, tokens, ranks, sets):
    """`sets` copies of the block: input, pruned dense weights, their 2:4 tensors, and L, R of
    every rank."""
    def rand(*shape, scale=1.0):
        return (torch.rand(*shape, device="cuda", dtype=torch.float16) * 2 - 1) * scale
    out = []
    for _ in range(sets):
        layers = []
        for d_out, d_in, relu in linears:
            w = prune_2to4(rand(d_out, d_in, scale=0.05))
            adapters = {r: (rand(d_in, r, scale=1 / math.sqrt(d_in)), rand(r, d_out, scale=0.05)) for r in ranks if r}
            layers.append({"w": w, "ws": to_sparse(w), "relu": relu, "adapters": adapters})
        out.append({"x": rand(tokens, linears[0][1]), "layers": layers})
    return out


def forward(torch, F, block, rank, way, dense=False, reference=False):
    """One forward through the block: dense F.linear (dense=True); the 2:4 weights with the
    rank's adapter added `way` ("add" or "addmm_"); or, reference=True, the dense weights with
    the adapter added in fp32 (what both must compute)."""
    h = block["x"]
    for layer in block["layers"]:
        if dense or reference:
            y = F.linear(h, layer["w"])
        else:
            y = F.linear(h, layer["ws"])
        if rank and not dense:
            lo, hi = layer["adapters"][rank]
            if reference:
                y = (y.float() + (h.float() @ lo.float()) @ hi.float()).half()
            elif way == "add":
                y = y + (h @ lo) @ hi
            else:  # y is the transpose of a contiguous W X^T: accumulate into it in place
                y.t().addmm_(hi.t(), (h @ lo).t())
        if layer["relu"]:
            y = F.relu(y)
        h = y
    return h


def time_shape(torch, F, to_sparse, tokens, d, shape, ratios):
    """The rows of one (d, shape): one per ratio."""
    linears = block_linears(shape, d)
    ranks = sorted({adapter_rank(r, d) for r in ratios})
    weight_bytes = sum(2.0 * o * i * (1 + 9 / 16) for o, i, _ in linears)
    act_bytes = sum(2.0 * tokens * (o + i) for o, i, _ in linears)
    sets = rotation_sets(weight_bytes + act_bytes, cap=32)
    calls = sets * max(1, math.ceil(20 / sets))
    blocks = make_sets(torch, to_sparse, linears, tokens, ranks, sets)
    # cuSPARSELt's pick for each weight's product, set on every copy of that weight.
    algs = []
    for j in range(len(linears)):
        h = blocks[0]["x"] if j == 0 else forward(torch, F, {**blocks[0], "layers": blocks[0]["layers"][:j]}, 0, "add")
        alg = searched_alg(blocks[0]["layers"][j]["ws"], h)
        algs.append(alg)
        if alg is not None:
            for b in blocks:
                b["layers"][j]["ws"].alg_id_cusparselt = alg
    variants = [("dense", 0, None), ("sparse", 0, None)]
    variants += [("sparse", r, way) for r in ranks if r for way in ("add", "addmm_")]
    fns = [(lambda i, kind=kind, r=r, way=way: forward(torch, F, blocks[i % sets], r, way, dense=kind == "dense"))
           for kind, r, way in variants]
    # Each 2:4 variant must compute the dense reference's result for its rank, eagerly on the
    # first copy, then replayed (each graph's last call read copy last_block).
    last_block = (calls - 1) % sets
    def references(block):
        return {r: forward(torch, F, blocks[block], r, None, reference=True) for r in ranks}
    want = references(0)
    rel = max(relative_error(fn(0), want[r]) for (kind, r, _), fn in zip(variants, fns) if kind == "sparse")
    if not rel < 1e-2:
        raise RuntimeError(f"d={d} {shape}: PyTorch's 2:4 layer is off the dense reference by {rel:.3g}")
    medians, _, last, rounds = interleaved_graph_ms(fns, calls=calls)
    if last_block != 0:
        want = references(last_block)
    rel = max([rel] + [relative_error(got, want[r]) for (kind, r, _), got in zip(variants, last) if kind == "sparse"])
    if not rel < 1e-2:
        raise RuntimeError(f"d={d} {shape}: PyTorch's replayed 2:4 layer is off the dense reference by {rel:.3g}")
    index = {v: k for k, v in enumerate(variants)}
    rows = []
    for ratio in ratios:
        r = adapter_rank(ratio, d)
        if r == 0:
            best, way, add_ms, addmm_ms = index[("sparse", 0, None)], "none", math.nan, math.nan
        else:
            add, addmm = index[("sparse", r, "add")], index[("sparse", r, "addmm_")]
            add_ms, addmm_ms = medians[add], medians[addmm]
            best, way = (add, "add") if add_ms <= addmm_ms else (addmm, "addmm_")
        overhead = paired_ratio(rounds, best, index[("sparse", 0, None)]) - 1.0
        rows.append((d, shape, ratio, r, tokens, medians[0], medians[best], paired_ratio(rounds, 0, best), way,
                     overhead, add_ms, addmm_ms, "+".join(str(a) for a in algs), rel))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--hidden", type=int, nargs="*", default=[768, 1024, 2048, 2560, 4096, 5120, 7168, 9216])
    p.add_argument("--adapter-ratio", type=float, nargs="*", default=[0.0, 0.015625, 0.0625])
    args = p.parse_args()
    missing = cuda_torch_missing()
    if missing:
        print(f"bench_torch_layer.py: error: PyTorch with CUDA is not available: {missing}", file=sys.stderr)
        return 2
    for ratio in args.adapter_ratio:
        if not 0 <= ratio < 1:
            print(f"bench_torch_layer.py: error: adapter ratio must be >= 0 and < 1 (got {ratio})", file=sys.stderr)
            return 2
    import torch
    import torch.nn.functional as F
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured
    SparseSemiStructuredTensor._FORCE_CUTLASS = False  # the cuSPARSELt backend
    gpu = torch.cuda.get_device_name(0)
    rows = []
    for d in args.hidden:
        for shape in SHAPES:
            for row in time_shape(torch, F, to_sparse_semi_structured, args.tokens, d, shape, args.adapter_ratio):
                rows.append(row + (torch.__version__, gpu))
                print(f"torch layer d={d:5} {shape:10} r={row[3]:4} dense {row[5]:8.4f} ms  2:4 {row[6]:8.4f} ms "
                      f"({row[8]})  speedup {row[7]:5.2f}  adapter overhead {100 * row[9]:+5.1f}%", file=sys.stderr)
            torch.cuda.empty_cache()
    write_csv(args.out, COLUMNS, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
