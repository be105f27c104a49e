#!/usr/bin/env python3
"""Summarizes the GPU state that scripts/gpu-experiments samples while an experiment runs.

The H200 caps its board power at 700 W. Large products reach the cap and run below the top
SM clock (1980 MHz), down to ~1200 MHz, so absolute times move between runs and even between
neighbouring samples of one run; ratios of interleaved samples do not. The sampled clocks
and limit reasons let a reader see which of the two a result's spread came from.

    gpu_state.py summarize FILE    one line: clocks, power, and how often a limit was active

FILE (or FILE.gz, as gpu_state_stop leaves it) is the output of
    nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,
               clocks_throttle_reasons.active --format=csv,nounits -lms 100
"""
import csv
import gzip
import statistics
import sys

# Bits of nvmlClocksThrottleReasons (clocks_throttle_reasons.active).
IDLE = 0x1
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80


def column(header, *prefixes):
    """Index of the first column whose name starts with one of prefixes."""
    for i, name in enumerate(header):
        name = name.strip()
        if any(name.startswith(p) for p in prefixes):
            return i
    raise ValueError(f"no column named {' or '.join(prefixes)} in the header: {', '.join(header)}")


def number(text):
    """A float from a field such as '1980', '1980 MHz' or '690.12 W'; None for '[N/A]'."""
    try:
        return float(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def read_samples(path):
    """(sm_mhz, power_w, reasons) per sample line; lines that do not parse are skipped."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"{path} is empty")
    header = rows[0]
    sm = column(header, "clocks.current.sm")
    power = column(header, "power.draw")
    reasons = column(header, "clocks_event_reasons.active", "clocks_throttle_reasons.active")
    samples = []
    for row in rows[1:]:
        if len(row) != len(header):
            continue  # a line cut short when the sampler was stopped
        mhz, watts = number(row[sm]), number(row[power])
        try:
            bits = int(row[reasons].strip(), 16)
        except ValueError:
            continue
        if mhz is None:
            continue
        samples.append((mhz, watts, bits))
    return samples


def summarize(samples):
    """One line over the samples where the GPU was not idle."""
    busy = [s for s in samples if not s[2] & IDLE]
    if not busy:
        return f"gpu state: {len(samples)} samples, none busy"
    clocks = sorted(s[0] for s in busy)
    watts = [s[1] for s in busy if s[1] is not None]

    def share(mask):
        return 100.0 * sum(1 for s in busy if s[2] & mask) / len(busy)

    p10 = clocks[len(clocks) // 10]
    line = (f"gpu state: {len(busy)} busy samples of {len(samples)}; SM clock median {statistics.median(clocks):.0f} MHz"
            f" (10th percentile {p10:.0f}, min {clocks[0]:.0f}, max {clocks[-1]:.0f})")
    if watts:
        line += f"; power median {statistics.median(watts):.0f} W, max {max(watts):.0f} W"
    line += (f"; power cap active in {share(SW_POWER_CAP | HW_POWER_BRAKE):.0f}% of them,"
             f" thermal or hardware slowdown in {share(SW_THERMAL | HW_THERMAL | HW_SLOWDOWN):.0f}%")
    return line


def main(argv):
    if len(argv) != 3 or argv[1] != "summarize":
        print("usage: gpu_state.py summarize FILE", file=sys.stderr)
        return 2
    try:
        print(summarize(read_samples(argv[2])))
    except (OSError, ValueError) as e:
        print(f"gpu_state.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
