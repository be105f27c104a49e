"""What the PyTorch comparisons (bench_torch.py, bench_torch_lowrank.py, bench_torch_model_rest.py)
share: device timing, how much to rotate past the L2, and writing their CSV files.

`fn(i)` enqueues one call on the current stream; `i` counts calls so that a caller can rotate
through copies of its operands (past the L2, as slope's own benchmarks do). The timing helpers
return the per-call time in ms, the median over `reps` samples of `calls` calls each.
"""
import math

from atomic_file import write_atomically


def eager_ms(fn, reps=15, warmup=5, calls=20):
    """Back-to-back eager calls between CUDA events: device time plus whatever host time the
    GPU work cannot hide. A lone call after a synchronisation runs on an idle, cool GPU: on
    the H200 a d = 9216 upsample took 1.63 ms alone against 1.89 ms back to back, the clock
    the sustained benchmarks in slope see."""
    import torch
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for i in range(calls):
            fn(i)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return sorted(times)[len(times) // 2]


def graph_ms(fn, reps=10, calls=20):
    """The same calls captured once into a CUDA graph and replayed: device time without the
    host's launch cost, the way slope times its own products."""
    return interleaved_graph_ms([fn], reps=reps, calls=calls)[0][0]


def interleaved_graph_ms(fns, reps=15, calls=20):
    """Each of `fns` captured into a CUDA graph of its own (as graph_ms does), then the graphs
    replayed in turn, round after round, the order reversed every other round (A B, B A, ...),
    as slope's bench::time_pair alternates its two sides: the H200 moves its clock within a
    tenth of a second at its power cap, so sides timed one after the other compare badly.
    Returns (medians, ratios, last, rounds): each fn's median per-call ms, for each fn the
    median over the rounds of fns[0]'s time over its own (1.0 for fns[0] itself), what each
    fn's last captured call returned (graph memory, holding the last replay's result), and
    every round's per-call times (paired_ratio takes other pairs from them)."""
    import torch
    graphs, last = [], []
    for fn in fns:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up off the capture stream, as PyTorch asks
            for i in range(calls):
                fn(i)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(calls):
                result = fn(i)
        graph.replay()
        graphs.append(graph)
        last.append(result)
    torch.cuda.synchronize()
    rounds = []
    for rep in range(reps):
        order = range(len(graphs)) if rep % 2 == 0 else reversed(range(len(graphs)))
        times = [0.0] * len(graphs)
        for j in order:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            graphs[j].replay()
            b.record()
            b.synchronize()
            times[j] = a.elapsed_time(b) / calls
        rounds.append(times)
    medians, ratios = medians_and_ratios(rounds)
    return medians, ratios, last, rounds


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def paired_ratio(rounds, a, b):
    """The median over the rounds of side a's time over side b's."""
    return median([r[a] / r[b] for r in rounds])


def medians_and_ratios(rounds):
    """(per-side medians, per-side median of round[0] / round[side]) of rounds of timings."""
    sides = range(len(rounds[0]))
    return [median([r[j] for r in rounds]) for j in sides], [paired_ratio(rounds, 0, j) for j in sides]


def rotation_bytes():
    """As slope's rotation_count: twice the GPU's L2, never under 120 MB."""
    import torch
    l2 = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0)
    return max(120e6, 2.0 * l2)


def rotation_sets(set_bytes, cap):
    """How many copies of a working set of `set_bytes` to rotate through (rotation_bytes()
    together), at least 1 and at most `cap`."""
    return max(1, min(cap, math.ceil(rotation_bytes() / set_bytes)))


def cuda_torch_missing():
    """Why PyTorch with CUDA cannot be used here (a one-line reason), or None where it can."""
    try:
        import torch
    except ImportError as e:
        return str(e)
    return None if torch.cuda.is_available() else "no CUDA device"


def write_csv(path, header, rows):
    """Writes `rows` under `header` to a temporary file, then renames it: a failed run never
    leaves a half-written CSV behind."""
    write_atomically(path, header + "\n" + "".join(
        ",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row) + "\n" for row in rows))
