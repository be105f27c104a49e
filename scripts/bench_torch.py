#!/usr/bin/env python3
"""PyTorch's own 2:4 path on this GPU, for comparison with `slope spmm`.

For the paper's shapes (W: m x k, X: tokens x k, fp16), times dense F.linear and F.linear on
a weight converted with torch.sparse.to_sparse_semi_structured (cuSPARSELt backend), steady
state, CUDA events around back-to-back calls (torch_common.eager_ms), and writes CSV:
  hidden,shape,m,k,tokens,torch_dense_ms,torch_sparse_ms,torch_speedup,torch_version,gpu
Usage: bench_torch.py --out FILE.csv [--tokens 2048] [--hidden D ...]
"""
import argparse
import sys

from torch_common import eager_ms, write_csv


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
            x = torch.rand(args.tokens, k, device="cuda", dtype=torch.float16) * 2 - 1
            w = prune_2to4(torch.rand(m, k, device="cuda", dtype=torch.float16) * 2 - 1)
            try:
                ws = to_sparse_semi_structured(w)
                sparse_ms = eager_ms(lambda i: F.linear(x, ws))
            except Exception as e:  # an unsupported shape or backend: record it, go on
                print(f"bench_torch.py: {shape} d={d}: {e}", file=sys.stderr)
                sparse_ms = float("nan")
            dense_ms = eager_ms(lambda i: F.linear(x, w))
            rows.append((d, shape, m, k, args.tokens, dense_ms, sparse_ms, dense_ms / sparse_ms, torch.__version__, gpu))
            print(f"torch d={d:5} {shape:10} dense {dense_ms:8.4f} ms  2:4 {sparse_ms:8.4f} ms  "
                  f"speedup {dense_ms / sparse_ms:5.2f}", file=sys.stderr)
    write_csv(args.out, "hidden,shape,m,k,tokens,torch_dense_ms,torch_sparse_ms,torch_speedup,torch_version,gpu", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
