#!/usr/bin/env python3
"""PyTorch's own 2:4 path on this GPU, for comparison with `slope spmm`.

For the paper's shapes (W: m x k, X: tokens x k, fp16), times dense F.linear and F.linear on
a weight converted with torch.sparse.to_sparse_semi_structured (cuSPARSELt backend) three ways:
- eager, back-to-back calls between CUDA events (torch_common.eager_ms), as a PyTorch program
  runs them: PyTorch builds cuSPARSELt's descriptors and plan on the host at every call;
- replayed from CUDA graphs (torch_common.interleaved_graph_ms), operands rotated past the L2
  and dense and sparse replays alternating, as `slope spmm` times its own: what is left once
  the host's work is out of the way;
- the same with the kernel configuration cuSPARSELt's search picks
  (torch._cslt_sparse_mm_search; its default is configuration 0), PyTorch at its best.
Writes CSV:
  hidden,shape,m,k,tokens,torch_dense_ms,torch_sparse_ms,torch_speedup,torch_dense_graph_ms,
  torch_sparse_graph_ms,torch_graph_speedup,torch_searched_alg,torch_searched_graph_ms,
  torch_searched_graph_speedup,sets,rel_error,torch_version,gpu
(the graph speedups are medians of per-round ratios; rel_error: the 2:4 products, eager and
replayed, against the dense one; nan where a way failed, with its reason on stderr). scripts/compare_torch.py sets them beside `slope spmm`'s.
Usage: bench_torch.py --out FILE.csv [--tokens 2048] [--hidden D ...]
"""
import argparse
import math
import sys

from torch_common import eager_ms, interleaved_graph_ms, rotation_sets, write_csv

COLUMNS = ("hidden,shape,m,k,tokens,torch_dense_ms,torch_sparse_ms,torch_speedup,torch_dense_graph_ms,"
           "torch_sparse_graph_ms,torch_graph_speedup,torch_searched_alg,torch_searched_graph_ms,"
           "torch_searched_graph_speedup,sets,rel_error,torch_version,gpu")


def prune_2to4(w):
    """Keeps the two largest magnitudes of every four along k, as slope prunes. A fixed
    [1, 1, 0, 0] mask is not neutral for dense GEMM: its regular zeros let the H200 run the
    d = 9216 upsample 9-20% faster than the same GEMM on magnitude-pruned weights."""
    import torch
    m, k = w.shape
    groups = w.reshape(m, k // 4, 4)
    keep = groups.abs().topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return (groups * mask).reshape(m, k)


def relative_error(got, want):
    """||got - want|| / ||want|| in fp32."""
    got, want = got.float(), want.float()
    return ((got - want).norm() / want.norm()).item()


def searched_alg(ws, x):
    """The kernel configuration cuSPARSELt's search picks for F.linear(x, ws), which PyTorch
    runs as ws @ x^T (torch/sparse/_semi_structured_ops.py), or None where the search fails."""
    import torch
    try:
        return int(torch._cslt_sparse_mm_search(ws.packed, x.t()))
    except Exception as e:  # not in this PyTorch, or refused: leave the default
        print(f"bench_torch.py: cuSPARSELt search: {e}", file=sys.stderr)
        return None


def time_shape(torch, F, to_sparse_semi_structured, tokens, m, k):
    """One row's timings (see the module's docstring)."""
    nan = float("nan")
    set_bytes = 2.0 * (tokens * k + m * k + m * k * 9 / 16 + tokens * m)
    sets = rotation_sets(set_bytes, cap=32)
    calls = sets * max(1, math.ceil(20 / sets))
    xs = [torch.rand(tokens, k, device="cuda", dtype=torch.float16) * 2 - 1 for _ in range(sets)]
    ws = [prune_2to4(torch.rand(m, k, device="cuda", dtype=torch.float16) * 2 - 1) for _ in range(sets)]
    dense = lambda i: F.linear(xs[i % sets], ws[i % sets])  # noqa: E731
    dense_ms = eager_ms(lambda i: F.linear(xs[0], ws[0]))
    try:
        sparse_ws = [to_sparse_semi_structured(w) for w in ws]
    except Exception as e:  # an unsupported shape or backend: record it, go on
        print(f"bench_torch.py: m={m} k={k}: {e}", file=sys.stderr)
        return (dense_ms, nan, nan, nan, nan, None, nan, nan, sets, nan)
    sparse = lambda i: F.linear(xs[i % sets], sparse_ws[i % sets])  # noqa: E731
    sparse_ms = eager_ms(lambda i: F.linear(xs[0], sparse_ws[0]))
    rel = relative_error(sparse(0), dense(0))
    if not rel < 1e-2:  # a wrong product's times mean nothing
        print(f"bench_torch.py: m={m} k={k}: PyTorch's 2:4 product is off its dense one by {rel:.3g}", file=sys.stderr)
        return (dense_ms, nan, nan, nan, nan, None, nan, nan, sets, rel)
    fns = [dense, sparse]
    alg = searched_alg(sparse_ws[0], xs[0])
    if alg is not None:
        searched_ws = [to_sparse_semi_structured(w) for w in ws]
        for w in searched_ws:
            w.alg_id_cusparselt = alg  # what F.linear passes to torch._cslt_sparse_mm
        fns.append(lambda i: F.linear(xs[i % sets], searched_ws[i % sets]))
    try:
        medians, ratios, last, _ = interleaved_graph_ms(fns, calls=calls)
    except Exception as e:  # capture refused: the eager times still stand
        print(f"bench_torch.py: m={m} k={k}: CUDA graphs: {e}", file=sys.stderr)
        return (dense_ms, sparse_ms, nan, nan, nan, alg, nan, nan, sets, rel)
    # The replayed products must agree too (each graph's last call read the same operands).
    graph_rel = max(relative_error(out, last[0]) for out in last[1:])
    if not graph_rel < 1e-2:
        print(f"bench_torch.py: m={m} k={k}: replayed 2:4 products are off the dense one by {graph_rel:.3g}",
              file=sys.stderr)
        return (dense_ms, sparse_ms, nan, nan, nan, alg, nan, nan, sets, max(rel, graph_rel))
    searched_ms, searched_speedup = (medians[2], ratios[2]) if alg is not None else (nan, nan)
    return (dense_ms, sparse_ms, medians[0], medians[1], ratios[1], alg, searched_ms, searched_speedup, sets,
            max(rel, graph_rel))

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--hidden", type=int, nargs="*", default=[768, 1024, 2048, 2560, 4096, 5120, 7168, 9216])
    args = p.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured
    except ImportError as e:
        print(f"bench_torch.py: error: PyTorch is not available: {e}", file=sys.stderr)
        return 2
    SparseSemiStructuredTensor._FORCE_CUTLASS = False  # the cuSPARSELt backend
    gpu = torch.cuda.get_device_name(0)
    rows = []
    for d in args.hidden:
        for shape, m, k in (("attention", d, d), ("upsample", 4 * d, d), ("downsample", d, 4 * d)):
            (dense_ms, sparse_ms, dense_graph, sparse_graph, graph_speedup, alg, searched_graph, searched_speedup,
             sets, rel) = time_shape(torch, F, to_sparse_semi_structured, args.tokens, m, k)
            rows.append((d, shape, m, k, args.tokens, dense_ms, sparse_ms, dense_ms / sparse_ms, dense_graph,
                         sparse_graph, graph_speedup, "" if alg is None else alg, searched_graph, searched_speedup,
                         sets, rel, torch.__version__, gpu))
            print(f"torch d={d:5} {shape:10} eager: dense {dense_ms:8.4f} ms  2:4 {sparse_ms:8.4f} ms  "
                  f"speedup {dense_ms / sparse_ms:5.2f}; graphs: dense {dense_graph:8.4f} ms  2:4 {sparse_graph:8.4f} ms  "
                  f"speedup {graph_speedup:5.2f}, searched (configuration {alg}) {searched_speedup:5.2f}",
                  file=sys.stderr)
            torch.cuda.empty_cache()
    write_csv(args.out, COLUMNS, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
