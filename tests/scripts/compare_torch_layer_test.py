#!/usr/bin/env python3
"""Tests of scripts/compare_torch_layer.py (slope's inference layers beside PyTorch's) and of
the shape and rank rules of scripts/bench_torch_layer.py, which must match slope's, on small
files written here (no GPU, no PyTorch)."""
import csv
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_test_support import SCRIPTS, run_script, write_rows  # noqa: E402
sys.path.insert(0, SCRIPTS)
import bench_torch_layer  # noqa: E402
import compare_torch_layer  # noqa: E402


def slope_row(hidden, shape, ratio, rank, dense, sparse, speedup, overhead, form="folded", tokens=2048):
    return {"hidden": str(hidden), "shape": shape, "adapter_ratio": str(ratio), "rank": str(rank),
            "tokens": str(tokens), "dense_ms": str(dense), "sparse_ms": str(sparse), "speedup": str(speedup),
            "form": form, "overhead_vs_r0": str(overhead)}


def torch_row(hidden, shape, ratio, rank, dense, sparse, speedup, overhead, way="addmm_", tokens=2048):
    return {"hidden": str(hidden), "shape": shape, "adapter_ratio": str(ratio), "rank": str(rank),
            "tokens": str(tokens), "dense_ms": str(dense), "sparse_ms": str(sparse), "speedup": str(speedup),
            "way": way, "overhead_vs_r0": str(overhead), "torch_version": "2.11.0"}


class Rules(unittest.TestCase):
    def test_rank_as_slope_rounds_it(self):
        # slope's adapter_rank (src/model/memory_model.cpp): floor(ratio d), down to a multiple of 16
        self.assertEqual(bench_torch_layer.adapter_rank(0.015625, 2048), 32)
        self.assertEqual(bench_torch_layer.adapter_rank(0.015625, 2560), 32)  # 40 -> 32
        self.assertEqual(bench_torch_layer.adapter_rank(0.015625, 4096), 64)
        self.assertEqual(bench_torch_layer.adapter_rank(0.0625, 9216), 576)
        self.assertEqual(bench_torch_layer.adapter_rank(0.015625, 768), 0)   # 12 -> 0
        self.assertEqual(bench_torch_layer.adapter_rank(0.0, 4096), 0)

    def test_shapes_as_slope_builds_them(self):
        self.assertEqual(bench_torch_layer.block_linears("upsample", 1024), [(4096, 1024, False)])
        self.assertEqual(bench_torch_layer.block_linears("downsample", 1024), [(1024, 4096, False)])
        self.assertEqual(bench_torch_layer.block_linears("mlp_block", 1024), [(4096, 1024, True), (1024, 4096, False)])
        self.assertEqual(set(bench_torch_layer.SHAPES), {"attention", "upsample", "downsample", "mlp_block"})


class ComparisonRows(unittest.TestCase):
    def test_rows_pair_by_shape_ratio_and_rank(self):
        slope = [slope_row(2048, "upsample", 0.015625, 32, 0.1, 0.08, 1.25, 0.10),
                 slope_row(2048, "downsample", 0.015625, 32, 0.1, 0.08, 1.25, 0.10),
                 slope_row(2048, "attention", 0.015625, 32, 0.1, 0.08, 1.25, 0.10)]
        torch = [torch_row(2048, "upsample", 0.015625, 32, 0.11, 0.1, 1.1, 0.21),
                 torch_row(2048, "downsample", 0.015625, 16, 0.11, 0.1, 1.1, 0.21)]  # another rank: left out
        rows = compare_torch_layer.comparison_rows(slope, torch, "feature-major")
        self.assertEqual([(r["hidden"], r["shape"]) for r in rows], [(2048, "upsample")])
        r = rows[0]
        self.assertAlmostEqual(r["torch_over_slope"], 1.25)
        self.assertAlmostEqual(r["torch_dense_over_slope"], 1.1)
        self.assertEqual((r["slope_form"], r["torch_way"]), ("folded", "addmm_"))

    def test_overheads_over_mlp_shapes_from_2048(self):
        slope, torch = [], []
        for d, shape, so, to in ((2048, "upsample", 0.05, 0.21), (2048, "mlp_block", 0.05, 0.21),
                                 (1024, "upsample", 0.90, 0.90), (2048, "attention", 0.90, 0.90)):
            slope.append(slope_row(d, shape, 0.015625, 32, 1, 1, 1.2, so))
            torch.append(torch_row(d, shape, 0.015625, 32, 1, 1, 1.0, to))
        totals = compare_torch_layer.summary(compare_torch_layer.comparison_rows(slope, torch, "feature-major"))
        self.assertAlmostEqual(totals["ratio_0.0156_slope_overhead_mlp_d2048plus"], 0.05)
        self.assertAlmostEqual(totals["ratio_0.0156_torch_overhead_mlp_d2048plus"], 0.21)
        self.assertAlmostEqual(totals["ratio_0.0156_geomean_slope_speedup"], 1.2)


class CommandLine(unittest.TestCase):
    def write(self, folder, name, rows):
        return write_rows(folder, name, rows)

    def run_script(self, *args):
        return run_script("compare_torch_layer.py", *args)

    def test_writes_csv_and_json_with_meta(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "layer.csv", [slope_row(4096, "upsample", 0.015625, 64, 0.4, 0.3, 1.3, 0.07)])
            tm = self.write(folder, "layer_tm.csv", [slope_row(4096, "upsample", 0.015625, 64, 0.4, 0.2, 1.3, 0.1)])
            t = self.write(folder, "torch.csv", [torch_row(4096, "upsample", 0.015625, 64, 0.4, 0.36, 1.1, 0.2)])
            sj = os.path.join(folder, "layer.json")
            with open(sj, "w") as f:
                json.dump({"meta": {"commit": "abc", "command": "slope layer", "wall_s": "9",
                                    "adapter_overhead_geomean_ratio_0.0156_mlp_d2048plus": "0.07"}}, f)
            out, js = os.path.join(folder, "out.csv"), os.path.join(folder, "out.json")
            done = self.run_script("--slope-csv", s, "--slope-token-major-csv", tm, "--torch-csv", t, "--out", out,
                                   "--json", js, "--slope-json", sj)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("feature-major ratio_0.0156_torch_overhead_mlp_d2048plus = 0.2", done.stdout)
            with open(out) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual([r["slope_output"] for r in rows], ["feature-major", "token-major"])
            self.assertAlmostEqual(float(rows[1]["torch_over_slope"]), 1.8)
            with open(js) as f:
                doc = json.load(f)
            self.assertEqual(doc["meta"]["commit"], "abc")
            self.assertEqual(doc["meta"]["experiment"], "torch_vs_slope_layer")
            self.assertNotIn("wall_s", doc["meta"])
            self.assertNotIn("adapter_overhead_geomean_ratio_0.0156_mlp_d2048plus", doc["meta"])
            self.assertAlmostEqual(doc["summary"]["token-major"]["ratio_0.0156_slope_overhead_mlp_d2048plus"], 0.1)

    def test_no_shared_layer_is_an_error(self):
        with tempfile.TemporaryDirectory() as folder:
            s = self.write(folder, "layer.csv", [slope_row(4096, "upsample", 0.015625, 64, 0.4, 0.3, 1.3, 0.07)])
            t = self.write(folder, "torch.csv", [torch_row(2048, "upsample", 0.015625, 32, 0.4, 0.36, 1.1, 0.2)])
            out = os.path.join(folder, "out.csv")
            done = self.run_script("--slope-csv", s, "--torch-csv", t, "--out", out)
            self.assertEqual(done.returncode, 2)
            self.assertEqual(len(done.stderr.strip().splitlines()), 1)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
