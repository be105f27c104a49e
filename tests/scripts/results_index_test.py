#!/usr/bin/env python3
"""Tests of scripts/results_index.py on small result trees written here."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import results_index  # noqa: E402

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def write_json(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def meta(**kw):
    base = {"gpu": "NVIDIA H200", "driver": "580.159.04 (CUDA 13.0)", "cusparselt": "0.8.0", "wall_s": "40.7"}
    base.update(kw)
    return {"meta": base, "rows": []}


class ResultsIndexTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        # Written out of date order on purpose: the index sorts by each file's meta date.
        write_json(self.root, "bbbbbbb/lowrank.json",
                   meta(experiment="lowrank", commit="0123456789abcdef0123456789abcdef01234567-dirty",
                        date="2026-11-30T10:00:00Z", command="/x/build/tools/slope/slope lowrank --csv /root/out/r/lowrank.csv",
                        **{"hbm_fraction_geomean_ours_d4096plus_ratio_le_0.05": "0.512"}))
        write_json(self.root, "aaaaaaa/spmm.json",
                   meta(experiment="spmm", commit="aaaaaaa", date="2026-11-29T08:00:00Z", geomean_speedup="1.3612",
                        min_speedup="1.0213", command="/w/slope spmm --samples 10"))
        write_json(self.root, "aaaaaaa/layer_inference.json",
                   meta(experiment="layer_inference", commit="aaaaaaa", date="2026-11-29T08:05:00Z",
                        **{"adapter_overhead_geomean_ratio_0.0156_mlp_d2048plus": "0.0791",
                           "adapter_overhead_geomean_ratio_0.0625_mlp_d2048plus": "0.2301"}))
        write_json(self.root, "aaaaaaa/probes/own.json", {"shape": [1, 2]})

    def tearDown(self):
        self.tmp.cleanup()

    def index_text(self):
        return results_index.render(results_index.read_entries(self.root))

    def test_headlines_against_the_targets(self):
        text = self.index_text()
        run_a = next(line for line in text.splitlines() if line.startswith("| `aaaaaaa/`"))
        # 1.3612 meets >= 1.35; 1.02 misses >= 1.05; 7.9% meets <= 8; 23.0% misses <= 22.
        self.assertIn("| 1.3612 | 1.02* |", run_a)
        self.assertIn("| 7.9 | 23.0* |", run_a)
        run_b = next(line for line in text.splitlines() if line.startswith("| `bbbbbbb/`"))
        self.assertIn("`0123456-dirty`", run_b)
        self.assertIn("| 51.2 |", run_b)
        self.assertIn("| target | | | >= 1.35 | >= 1.05 | >= 50 | <= 8 | <= 22 |", text)
        # A headline no run reports gets no column.
        self.assertNotIn("setup host us", text)

    def test_where_each_figure_stands(self):
        write_json(self.root, "ccccccc/spmm.json",
                   meta(experiment="spmm", commit="ccccccc", date="2026-11-30T12:00:00Z", geomean_speedup="1.3400",
                        min_speedup="1.0600"))
        lines = self.index_text().splitlines()
        row = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and " | " in line}
        # The newest run's value (missing its target), the range over both runs, one of two met.
        self.assertEqual(row["spmm geometric mean"],
                         "| spmm geometric mean | >= 1.35 | `ccccccc/` (`ccccccc`) | 1.3400* | 1.3400 - 1.3612 | 1 of 2 |")
        self.assertEqual(row["spmm slowest shape"],
                         "| spmm slowest shape | >= 1.05 | `ccccccc/` (`ccccccc`) | 1.06 | 1.02 - 1.06 | 1 of 2 |")
        self.assertEqual(row["lowrank % of copy"],
                         "| lowrank % of copy | >= 50 | `bbbbbbb/` (`0123456-dirty`) | 51.2 | 51.2 - 51.2 | 1 of 1 |")
        self.assertLess(lines.index("## Where each figure stands"), lines.index("## Headline figures by run"))

    def test_every_file_in_date_order_with_its_command(self):
        lines = [line for line in self.index_text().splitlines() if line.startswith("| `") and ".json" in line]
        paths = [line.split("`")[1] for line in lines]
        self.assertEqual(paths, ["aaaaaaa/probes/own.json", "aaaaaaa/spmm.json", "aaaaaaa/layer_inference.json",
                                 "bbbbbbb/lowrank.json"])
        self.assertIn("(no meta block", lines[0])
        self.assertIn("`slope lowrank --csv lowrank.csv`", lines[3])
        self.assertIn("NVIDIA H200, 580.159.04 (CUDA 13.0) | 0.8.0 | 40.7", lines[1])

    def test_a_copy_at_the_top_counts_with_its_run_only(self):
        import shutil
        shutil.copy(os.path.join(self.root, "aaaaaaa", "spmm.json"), os.path.join(self.root, "spmm.json"))
        # A file at the top that copies none of the runs' files is a run of its own.
        write_json(self.root, "setup.json", meta(experiment="setup", commit="ddddddd", date="2026-11-28T00:00:00Z",
                                                 host_overhead_us_largest="12.5"))
        lines = self.index_text().splitlines()
        runs = [line.split("`")[1] for line in lines if line.startswith("| `") and ".json" not in line]
        self.assertEqual(runs, ["./", "aaaaaaa/", "bbbbbbb/"])
        self.assertIn("| setup host us per call | <= 20 | `./` (`ddddddd`) | 12.5 | 12.5 - 12.5 | 1 of 1 |", lines)
        self.assertIn("1.3612 | 1.3612 - 1.3612 | 1 of 1 |", next(l for l in lines if l.startswith("| spmm geometric")))
        files = [line for line in lines if line.startswith("| `") and ".json" in line]
        self.assertTrue(any(l.startswith("| `spmm.json` (copy of `aaaaaaa/spmm.json`) | `aaaaaaa` |") for l in files))
        self.assertTrue(any(l.startswith("| `setup.json` | `ddddddd` |") for l in files))

    def test_write_then_check(self):
        if HAVE_MATPLOTLIB:
            self.assertEqual(results_index.main([self.root]), 0)
            self.assertTrue(os.path.exists(os.path.join(self.root, "headlines.png")))
        else:  # scripts/test installs no plotting library: write the index alone
            results_index.write_atomically(os.path.join(self.root, "INDEX.md"), self.index_text())
        self.assertFalse([f for f in os.listdir(self.root) if ".tmp" in f])
        self.assertEqual(results_index.main([self.root, "--check"]), 0)
        write_json(self.root, "ccccccc/setup.json",
                   meta(experiment="setup", commit="ccccccc", date="2026-12-01T00:00:00Z",
                        host_overhead_us_largest="12.5"))
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(results_index.main([self.root, "--check"]), 1)
        self.assertIn("INDEX.md is out of date", err.getvalue())

    def test_a_broken_file_is_named_and_nothing_is_written(self):
        with open(os.path.join(self.root, "aaaaaaa", "cut.json"), "w") as f:
            f.write('{"meta": {"commit": ')
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(results_index.main([self.root]), 2)
        self.assertIn("aaaaaaa/cut.json: not a readable JSON file", err.getvalue())
        self.assertFalse(os.path.exists(os.path.join(self.root, "INDEX.md")))

    def test_a_missing_directory_is_refused(self):
        err = io.StringIO()
        with redirect_stderr(err):
            self.assertEqual(results_index.main([os.path.join(self.root, "nowhere")]), 2)
        self.assertIn("no directory", err.getvalue())


if __name__ == "__main__":
    unittest.main()
