#!/usr/bin/env python3
"""Tests of scripts/compare_torch.py (slope's 2:4 products beside PyTorch's) and of the
round-by-round medians of scripts/torch_common.py, on small files written here (no GPU, no
PyTorch)."""
import csv
import json
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_test_support import SCRIPTS, run_script, write_rows  # noqa: E402
sys.path.insert(0, SCRIPTS)
import compare_torch  # noqa: E402
import torch_common  # noqa: E402


def slope_row(hidden, shape, dense, sparse, eager_sparse, tokens=2048):
    return {"hidden": str(hidden), "shape": shape, "tokens": str(tokens), "dense_ms": str(dense),
            "sparse_ms": str(sparse), "speedup": str(dense / sparse), "sparse_eager_ms": str(eager_sparse)}


def torch_row(hidden, shape, eager_sparse, eager_speedup, dense_graph, sparse_graph, searched_graph, tokens=2048):
    return {"hidden": str(hidden), "shape": shape, "tokens": str(tokens), "torch_sparse_ms": str(eager_sparse),
            "torch_speedup": str(eager_speedup), "torch_dense_graph_ms": str(dense_graph),
            "torch_sparse_graph_ms": str(sparse_graph), "torch_graph_speedup": str(dense_graph / sparse_graph),
            "torch_searched_graph_ms": str(searched_graph),
            "torch_searched_graph_speedup": "nan" if searched_graph == "" else str(dense_graph / searched_graph)}


class ComparisonRows(unittest.TestCase):
    def test_ratios_divide_torch_by_slope(self):
        rows = compare_torch.comparison_rows(
            [slope_row(1024, "attention", 2.0, 1.6, 3.0)],
            [torch_row(1024, "attention", 12.0, 0.2, 2.2, 2.0, 1.76)])
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertAlmostEqual(r["slope_speedup"], 1.25)
        self.assertAlmostEqual(r["torch_eager_over_slope"], 4.0)     # eager against eager
        self.assertAlmostEqual(r["torch_graph_over_slope"], 1.1)     # the faster of 2.0 and 1.76
        self.assertAlmostEqual(r["torch_dense_over_slope"], 1.1)
        self.assertAlmostEqual(r["torch_best_graph_speedup"], 1.25)  # 2.2 / 1.76

    def test_upsample_takes_the_faster_of_whole_and_tiled(self):
        slope = [slope_row(4096, "upsample", 4.0, 3.2, 3.3), slope_row(4096, "upsample_tiled", 4.0, 2.5, 2.6)]
        rows = compare_torch.comparison_rows(slope, [torch_row(4096, "upsample", 5.0, 0.8, 4.0, 3.0, "")])
        self.assertEqual(len(rows), 1)
        self.assertAlmostEqual(rows[0]["slope_sparse_ms"], 2.5)
        self.assertAlmostEqual(rows[0]["torch_graph_over_slope"], 1.2)
        # no searched configuration: the default's speedup is the best
        self.assertAlmostEqual(rows[0]["torch_best_graph_speedup"], 4.0 / 3.0)

    def test_shapes_left_out_where_the_other_file_lacks_them(self):
        rows = compare_torch.comparison_rows(
            [slope_row(768, "attention", 1.0, 1.0, 1.0), slope_row(768, "downsample", 1.0, 1.0, 1.0, tokens=512)],
            [torch_row(768, "attention", 1, 1, 1, 1, 1), torch_row(768, "downsample", 1, 1, 1, 1, 1),
             torch_row(9216, "attention", 1, 1, 1, 1, 1)])
        self.assertEqual([(r["hidden"], r["shape"]) for r in rows], [(768, "attention")])

    def test_summary_skips_missing_graph_times(self):
        rows = compare_torch.comparison_rows(
            [slope_row(768, "attention", 2.0, 1.0, 1.0), slope_row(1024, "attention", 2.0, 1.0, 1.0)],
            [torch_row(768, "attention", 4.0, 0.5, 2.0, 2.0, 1.0),
             {**torch_row(1024, "attention", 16.0, 0.5, 2.0, 2.0, 1.0),
              "torch_sparse_graph_ms": "nan", "torch_searched_graph_ms": "nan"}])
        totals = compare_torch.summary(rows)
        self.assertEqual(totals["shapes"], 2)
        self.assertEqual(totals["shapes_with_graph_times"], 1)
        self.assertAlmostEqual(totals["geomean_torch_eager_over_slope"], 8.0)  # sqrt(4 * 16)
        self.assertAlmostEqual(totals["geomean_torch_graph_over_slope"], 1.0)
        self.assertAlmostEqual(totals["min_torch_graph_over_slope"], 1.0)
        self.assertAlmostEqual(totals["geomean_slope_speedup"], 2.0)


class MediansAndRatios(unittest.TestCase):
    def test_median_of_each_side_and_of_per_round_ratios(self):
        rounds = [[1.0, 2.0], [3.0, 1.0], [2.0, 2.0]]
        medians, ratios = torch_common.medians_and_ratios(rounds)
        self.assertEqual(medians, [2.0, 2.0])
        self.assertEqual(ratios, [1.0, 1.0])  # per round: 0.5, 3, 1 -> median 1
        medians, ratios = torch_common.medians_and_ratios([[4.0, 2.0], [6.0, 2.0]])
        self.assertEqual(medians, [5.0, 2.0])  # an even count: the mean of the middle two
        self.assertEqual(ratios, [1.0, 2.5])

    def test_paired_ratio_of_any_two_sides(self):
        rounds = [[1.0, 2.0, 4.0], [1.0, 1.0, 3.0], [2.0, 1.0, 8.0]]
        self.assertEqual(torch_common.paired_ratio(rounds, 2, 1), 3.0)  # 2, 3, 8
        self.assertEqual(torch_common.paired_ratio(rounds, 1, 0), 1.0)  # 2, 1, 0.5


class CommandLine(unittest.TestCase):
    def write(self, folder, name, rows):
        return write_rows(folder, name, rows)

    def run_script(self, *args):
        return run_script("compare_torch.py", *args)

    def test_writes_csv_and_json(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "spmm.csv", [slope_row(768, "attention", 2.0, 1.0, 1.0)])
            t = self.write(folder, "torch.csv", [torch_row(768, "attention", 4.0, 0.5, 2.0, 2.0, "")])
            out, js = os.path.join(folder, "out.csv"), os.path.join(folder, "out.json")
            done = self.run_script("--slope-csv", s, "--torch-csv", t, "--out", out, "--json", js)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("token-major geomean_torch_graph_over_slope = 2", done.stdout)
            with open(out) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 1)
            self.assertEqual(list(rows[0].keys()), list(compare_torch.COLUMNS))
            with open(js) as f:
                summary = json.load(f)["summary"]["token-major"]
            self.assertAlmostEqual(summary["geomean_torch_eager_over_slope"], 4.0)
            self.assertAlmostEqual(summary["geomean_torch_graph_over_slope"], 2.0)

    def test_json_meta_from_slope_spmm(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "spmm.csv", [slope_row(768, "attention", 2.0, 1.0, 1.0)])
            t = self.write(folder, "torch.csv", [{**torch_row(768, "attention", 4.0, 0.5, 2.0, 2.0, ""),
                                                  "torch_version": "2.11.0"}])
            sj = os.path.join(folder, "spmm.json")
            with open(sj, "w") as f:
                json.dump({"meta": {"commit": "abc", "gpu": "H200", "command": "slope spmm", "wall_s": "5",
                                    "geomean_speedup": "1.3", "min_speedup": "0.9", "experiment": "spmm"},
                           "rows": []}, f)
            js = os.path.join(folder, "out.json")
            done = self.run_script("--slope-csv", s, "--torch-csv", t, "--out", os.path.join(folder, "o.csv"),
                                   "--json", js, "--slope-json", sj)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(js) as f:
                meta = json.load(f)["meta"]
            self.assertEqual(meta["commit"], "abc")
            self.assertEqual(meta["gpu"], "H200")
            self.assertEqual(meta["experiment"], "torch_vs_slope")
            self.assertEqual(meta["slope_command"], "slope spmm")
            self.assertEqual(meta["torch_version"], "2.11.0")
            self.assertTrue(meta["command"].startswith("compare_torch.py --slope-csv"))
            for gone in ("wall_s", "geomean_speedup", "min_speedup"):
                self.assertNotIn(gone, meta)

    def test_json_stays_strict_without_graph_times(self):
        def no_nan(name):
            raise ValueError(f"{name} in the JSON")
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "spmm.csv", [slope_row(768, "attention", 2.0, 1.0, 1.0)])
            t = self.write(folder, "torch.csv", [{**torch_row(768, "attention", 4.0, 0.5, 2.0, 2.0, ""),
                                                  "torch_sparse_graph_ms": "nan", "torch_graph_speedup": ""}])
            js = os.path.join(folder, "out.json")
            done = self.run_script("--slope-csv", s, "--torch-csv", t, "--out", os.path.join(folder, "o.csv"),
                                   "--json", js)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(js) as f:
                summary = json.load(f, parse_constant=no_nan)["summary"]["token-major"]
            self.assertIsNone(summary["geomean_torch_graph_over_slope"])
            self.assertTrue(math.isnan(compare_torch.number({"x": ""}, "x")))

    def test_feature_major_rows_beside_token_major_ones(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "spmm.csv", [slope_row(768, "attention", 2.0, 1.0, 1.0)])
            fm = self.write(folder, "fm.csv", [slope_row(768, "attention", 2.0, 1.6, 1.0)])
            t = self.write(folder, "torch.csv", [torch_row(768, "attention", 4.0, 0.5, 2.0, 2.0, "")])
            out, js = os.path.join(folder, "out.csv"), os.path.join(folder, "out.json")
            done = self.run_script("--slope-csv", s, "--slope-feature-major-csv", fm, "--torch-csv", t,
                                   "--out", out, "--json", js)
            self.assertEqual(done.returncode, 0, done.stderr)
            with open(out) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual([r["slope_output"] for r in rows], ["token-major", "feature-major"])
            self.assertAlmostEqual(float(rows[1]["torch_graph_over_slope"]), 1.25)  # 2.0 / 1.6
            with open(js) as f:
                summary = json.load(f)["summary"]
            self.assertAlmostEqual(summary["feature-major"]["geomean_slope_speedup"], 1.25)
            self.assertAlmostEqual(summary["token-major"]["geomean_slope_speedup"], 2.0)

    def test_no_shared_shape_is_an_error(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "spmm.csv", [slope_row(768, "attention", 2.0, 1.0, 1.0)])
            t = self.write(folder, "torch.csv", [torch_row(1024, "attention", 4.0, 0.5, 2.0, 2.0, 1.0)])
            out = os.path.join(folder, "out.csv")
            done = self.run_script("--slope-csv", s, "--torch-csv", t, "--out", out)
            self.assertEqual(done.returncode, 2)
            self.assertEqual(len(done.stderr.strip().splitlines()), 1)
            self.assertFalse(os.path.exists(out))

    def test_missing_file_is_an_error(self):
        done = self.run_script("--slope-csv", "/nonexistent.csv", "--torch-csv", "/nonexistent.csv", "--out", "/tmp/x")
        self.assertEqual(done.returncode, 2)
        self.assertIn("cannot read", done.stderr)


if __name__ == "__main__":
    unittest.main()
