#!/usr/bin/env python3
"""PyTorch's plain low-rank product on this GPU, for comparison with `slope lowrank`.

For hidden d and rank ratio p (rank r = floor(p d), as the paper and `slope lowrank` use),
times (X L) R in fp16 with X tokens x d, two ways a PyTorch model states it: `x @ L @ R`
(L: d x r, R: r x d) and LoRA's `F.linear(F.linear(x, A), B)` (A: r x d, B: d x r), and keeps
the faster. Operands are rotated past the L2 and the calls replayed from a CUDA graph, as
slope times its own; the eager time is recorded too. Bytes and bandwidth are counted as
`slope lowrank` counts them (X, L, T written and read, R, Y), against a copy measured here.
CSV columns:
  hidden,rank_ratio,rank,tokens,method,layout,ms,matmul_ms,linear_ms,eager_ms,gbps,
  hbm_fraction,copy_gbps,speedup_vs_full,torch_version,gpu
Usage: bench_torch_lowrank.py --out FILE.csv [--tokens 2048] [--hidden D ...] [--rank-ratio P ...]
"""
import argparse
import math
import sys

from torch_common import cuda_torch_missing, eager_ms, graph_ms, rotation_sets, write_csv


def copy_gbps():
    """A 1 GiB device-to-device copy, eager: the ceiling slope's lowrank also divides by."""
    import torch
    n = 1 << 30
    a = torch.ones(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = eager_ms(lambda i: b.copy_(a), reps=10, warmup=2, calls=1)
    return 2.0 * n / (ms * 1e6)


def lowrank_bytes(t, d, r):
    return 2.0 * (t * d + d * r + 2.0 * t * r + r * d + t * d)


def time_lowrank(t, d, r):
    """(matmul_ms, linear_ms, eager_ms of the faster) for one (t, d, r)."""
    import torch
    import torch.nn.functional as F
    sets = rotation_sets(lowrank_bytes(t, d, r), cap=32)
    def rand(*shape):
        return torch.rand(*shape, device="cuda", dtype=torch.float16) * 2 - 1
    xs = [rand(t, d) for _ in range(sets)]
    ls = [rand(d, r) / math.sqrt(d) for _ in range(sets)]
    rs = [rand(r, d) for _ in range(sets)]
    lts = [l.t().contiguous() for l in ls]  # LoRA's A: r x d
    rts = [m.t().contiguous() for m in rs]  # LoRA's B: d x r
    ts = [torch.empty(t, r, device="cuda", dtype=torch.float16) for _ in range(sets)]
    ys = [torch.empty(t, d, device="cuda", dtype=torch.float16) for _ in range(sets)]

    def matmul(i):
        k = i % sets
        torch.matmul(xs[k], ls[k], out=ts[k])
        torch.matmul(ts[k], rs[k], out=ys[k])

    def linear(i):
        k = i % sets
        F.linear(F.linear(xs[k], lts[k]), rts[k])

    calls = sets * max(1, math.ceil(20 / sets))
    mm = graph_ms(matmul, calls=calls)
    lin = graph_ms(linear, calls=calls)
    eager = eager_ms(matmul if mm <= lin else linear, calls=calls)
    # The two statements must agree, or one of them is not the product meant.
    matmul(0)
    ref = ys[0].float()
    got = F.linear(F.linear(xs[0], lts[0]), rts[0]).float()
    err = ((got - ref).norm() / ref.norm()).item()
    if not err < 1e-2:
        raise RuntimeError(f"x @ L @ R and the F.linear chain disagree at d={d}, r={r}: {err:.3g}")
    return mm, lin, eager


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--hidden", type=int, nargs="*", default=[768, 1024, 2048, 2560, 4096, 5120, 7168, 9216])
    p.add_argument("--rank-ratio", type=float, nargs="*", default=[1.0, 0.1, 0.05, 0.02, 0.01])
    args = p.parse_args()
    if args.tokens <= 0 or any(d <= 0 for d in args.hidden) or any(not 0 < q <= 1 for q in args.rank_ratio):
        print("bench_torch_lowrank.py: error: tokens and hidden must be positive, rank ratios in (0, 1]",
              file=sys.stderr)
        return 2
    missing = cuda_torch_missing()
    if missing:
        print(f"bench_torch_lowrank.py: error: PyTorch with CUDA is not available: {missing}", file=sys.stderr)
        return 2
    import torch
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False  # fp32 accumulation, as slope
    gpu = torch.cuda.get_device_name(0)
    ceiling = copy_gbps()
    print(f"torch lowrank: copy {ceiling:.0f} GB/s on {gpu}, torch {torch.__version__}", file=sys.stderr)
    t = args.tokens
    rows = []
    for d in args.hidden:
        full_ms = None
        for ratio in sorted(args.rank_ratio, reverse=True):
            r = max(1, math.floor(ratio * d))
            mm, lin, eager = time_lowrank(t, d, r)
            ms = min(mm, lin)
            if ratio == 1.0:
                full_ms = ms
            gbps = lowrank_bytes(t, d, r) / ms * 1e-6
            speedup = full_ms / ms if full_ms else float("nan")
            layout = "matmul" if mm <= lin else "linear"
            rows.append((d, ratio, r, t, "torch", layout, ms, mm, lin, eager, gbps, gbps / ceiling, ceiling, speedup,
                         torch.__version__, gpu))
            print(f"torch lowrank d={d:5} ratio {ratio:<5g} r={r:5}  {ms * 1e3:8.1f} us ({layout})  "
                  f"{gbps:6.0f} GB/s  {100 * gbps / ceiling:4.1f}% of copy", file=sys.stderr)
    small = [row[11] for row in rows if row[0] >= 4096 and row[1] <= 0.05 + 1e-9]
    if small:
        gm = math.exp(sum(math.log(f) for f in small) / len(small))
        print(f"torch lowrank: geometric mean over d >= 4096, ratio <= 0.05: {100 * gm:.1f}% of the copy bandwidth",
              file=sys.stderr)
    write_csv(args.out, "hidden,rank_ratio,rank,tokens,method,layout,ms,matmul_ms,linear_ms,eager_ms,gbps,"
              "hbm_fraction,copy_gbps,speedup_vs_full,torch_version,gpu", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
