#!/usr/bin/env python3
"""Tests of scripts/gpu_state.py on small sample files written here."""
import gzip
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import gpu_state  # noqa: E402

HEADER = ("timestamp, clocks.current.sm [MHz], clocks.current.memory [MHz], power.draw [W], temperature.gpu, "
          "clocks_event_reasons.active\n")


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    f.write(text)
    f.close()
    return f.name


class GpuStateTest(unittest.TestCase):
    def test_busy_samples_only_and_the_power_cap_share(self):
        path = write(HEADER +
                     "2026/11/29 16:34:49.409, 345 MHz, 3201 MHz, 79.99 W, 31, 0x0000000000000001\n"
                     "2026/11/29 16:34:49.509, 1980 MHz, 3201 MHz, 300.00 W, 40, 0x0000000000000000\n"
                     "2026/11/29 16:34:49.609, 1230 MHz, 3201 MHz, 699.00 W, 52, 0x0000000000000004\n"
                     "2026/11/29 16:34:49.709, 1500 MHz, 3201 MHz, 701.00 W, 53, 0x0000000000000004\n"
                     "2026/11/29 16:34:49.809, 1600 MHz, 3201 MHz, 690.00 W, 53, 0x0000000000000024\n"
                     "2026/11/29 16:34:49.909, 16")  # cut short when the sampler stopped
        samples = gpu_state.read_samples(path)
        os.unlink(path)
        self.assertEqual(len(samples), 5)
        line = gpu_state.summarize(samples)
        self.assertIn("4 busy samples of 5", line)
        self.assertIn("SM clock median 1550 MHz", line)
        self.assertIn("min 1230, max 1980", line)
        self.assertIn("max 701 W", line)
        self.assertIn("power cap active in 75% of them", line)
        self.assertIn("slowdown in 25%", line)

    def test_values_without_units_and_the_older_column_name(self):
        path = write("timestamp, clocks.current.sm [MHz], power.draw [W], clocks_throttle_reasons.active\n"
                     "t, 1755, [N/A], 0x0000000000000000\n")
        line = gpu_state.summarize(gpu_state.read_samples(path))
        os.unlink(path)
        self.assertIn("SM clock median 1755 MHz", line)
        self.assertNotIn("power median", line)
        self.assertIn("power cap active in 0%", line)

    def test_a_compressed_file_reads_the_same(self):
        text = HEADER + "t, 1600 MHz, 3201 MHz, 690.00 W, 53, 0x0000000000000004\n"
        plain = write(text)
        packed = plain + ".gz"
        with gzip.open(packed, "wt") as f:
            f.write(text)
        self.assertEqual(gpu_state.read_samples(packed), gpu_state.read_samples(plain))
        self.assertIn("power cap active in 100%", gpu_state.summarize(gpu_state.read_samples(packed)))
        os.unlink(plain)
        os.unlink(packed)

    def test_an_idle_gpu_says_so(self):
        path = write(HEADER + "t, 345 MHz, 3201 MHz, 80 W, 31, 0x0000000000000001\n")
        line = gpu_state.summarize(gpu_state.read_samples(path))
        os.unlink(path)
        self.assertEqual(line, "gpu state: 1 samples, none busy")

    def test_a_file_without_the_columns_is_an_error(self):
        path = write("timestamp, name\nt, H200\n")
        with self.assertRaisesRegex(ValueError, "no column named clocks.current.sm"):
            gpu_state.read_samples(path)
        self.assertEqual(gpu_state.main(["gpu_state.py", "summarize", path]), 1)
        os.unlink(path)
        self.assertEqual(gpu_state.main(["gpu_state.py"]), 2)


if __name__ == "__main__":
    unittest.main()
