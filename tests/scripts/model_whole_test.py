#!/usr/bin/env python3
"""Tests of scripts/model_whole.py (whole-model estimates from measured parts), of the model
lookup of scripts/bench_torch_model_rest.py and of the CSV writer the PyTorch comparisons share
(scripts/torch_common.py), on small files written here (no GPU, no PyTorch)."""
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
import bench_torch_model_rest  # noqa: E402
import model_whole  # noqa: E402
import torch_common  # noqa: E402

MODEL_HEADER = "model,paper_model,hidden,adapter_ratio,rank,tokens,dense_ms,sparse_ms,speedup,paper_speedup"
REST_HEADER = "model,family,hidden,layers,tokens,block_rest_ms,attention_ms,once_ms,lm_head_ms,sets,torch_version,gpu"


def model_row(model, ratio, dense, sparse, tokens=2048, paper="1.4"):
    return {"model": model, "paper_model": model.replace("7B", "6B"), "hidden": "4096", "adapter_ratio": str(ratio),
            "tokens": str(tokens), "dense_ms": str(dense), "sparse_ms": str(sparse), "paper_speedup": paper}


def rest_row(model, layers, rest, once, tokens=2048):
    return {"model": model, "layers": str(layers), "tokens": str(tokens), "block_rest_ms": str(rest),
            "once_ms": str(once), "torch_version": "2.11.0"}


class WholeModelRows(unittest.TestCase):
    def test_layers_times_block_plus_once(self):
        rows = model_whole.whole_model_rows([model_row("A-7B", 0, 3.0, 2.0)], [rest_row("A-7B", 2, 1.0, 4.0)])
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertAlmostEqual(r["model_dense_ms"], 2 * (3 + 1) + 4)   # 12
        self.assertAlmostEqual(r["model_sparse_ms"], 2 * (2 + 1) + 4)  # 10
        self.assertAlmostEqual(r["model_speedup"], 1.2)
        self.assertAlmostEqual(r["linear_speedup"], 1.5)
        self.assertEqual(r["paper_model"], "A-6B")
        self.assertEqual(r["layers"], 2)

    def test_the_rest_pulls_the_speedup_towards_one(self):
        linear_only = model_whole.whole_model_rows([model_row("A", 0, 3.0, 2.0)], [rest_row("A", 10, 0.0, 0.0)])
        with_rest = model_whole.whole_model_rows([model_row("A", 0, 3.0, 2.0)], [rest_row("A", 10, 0.5, 2.0)])
        self.assertAlmostEqual(linear_only[0]["model_speedup"], 1.5)
        self.assertLess(with_rest[0]["model_speedup"], 1.5)
        self.assertGreater(with_rest[0]["model_speedup"], 1.0)

    def test_models_without_a_rest_or_at_other_token_counts_are_left_out(self):
        rows = model_whole.whole_model_rows(
            [model_row("A", 0, 3.0, 2.0), model_row("B", 0, 3.0, 2.0), model_row("C", 0, 3.0, 2.0, tokens=4096)],
            [rest_row("A", 2, 1.0, 1.0), rest_row("C", 2, 1.0, 1.0)])
        self.assertEqual([r["model"] for r in rows], ["A"])

    def test_geometric_means_per_ratio_skip_missing_values(self):
        rows = model_whole.whole_model_rows(
            [model_row("A", 0, 4.0, 2.0, paper=""), model_row("B", 0, 1.0, 1.0), model_row("A", 0.0625, 3.0, 2.0)],
            [rest_row("A", 1, 0.0, 0.0), rest_row("B", 1, 0.0, 0.0)])
        means = model_whole.geomeans(rows, "model_speedup")
        self.assertAlmostEqual(means[0.0], math.sqrt(2.0))
        self.assertAlmostEqual(means[0.0625], 1.5)
        self.assertAlmostEqual(model_whole.geomeans(rows, "paper_speedup")[0.0], 1.4)  # A's is missing


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, header, rows):
        return write_rows(self.dir.name, name, rows, header.split(","))

    def run_script(self, *args):
        return run_script("model_whole.py", *args)

    def test_writes_csv_and_json_with_the_model_runs_meta(self):
        model_csv = self.write("m.csv", MODEL_HEADER, [model_row("A", 0, 3.0, 2.0), model_row("A", 0.0156, 3.0, 2.5)])
        rest_csv = self.write("r.csv", REST_HEADER, [rest_row("A", 2, 1.0, 4.0)])
        model_json = os.path.join(self.dir.name, "m.json")
        with open(model_json, "w") as f:
            json.dump({"meta": {"commit": "abc1234", "gpu": "NVIDIA H200", "command": "slope model",
                                "speedup_geomean_ratio_0.0000": "1.5"}, "rows": []}, f)
        out, out_json = os.path.join(self.dir.name, "w.csv"), os.path.join(self.dir.name, "w.json")
        r = self.run_script("--model-csv", model_csv, "--rest-csv", rest_csv, "--out", out, "--json", out_json,
                            "--model-json", model_json)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(list(rows[0].keys()), model_whole.COLUMNS)
        self.assertAlmostEqual(float(rows[0]["model_speedup"]), 1.2)
        with open(out_json) as f:
            data = json.load(f)
        meta = data["meta"]
        self.assertEqual(meta["commit"], "abc1234")
        self.assertEqual(meta["experiment"], "model_whole")
        self.assertEqual(meta["linear_layers_command"], "slope model")
        self.assertNotIn("speedup_geomean_ratio_0.0000", meta)  # the model run's own figures are not this file's
        self.assertEqual(meta["model_speedup_geomean_ratio_0.0000"], "1.2000")
        self.assertIn("PyTorch 2.11.0", meta["rest_timed_by"])
        self.assertEqual(len(data["rows"]), 2)
        self.assertFalse(any(name.endswith(".tmp") for name in os.listdir(self.dir.name)))

    def test_bad_input_exits_two_with_one_line_and_writes_nothing(self):
        model_csv = self.write("m.csv", MODEL_HEADER, [model_row("A", 0, 3.0, 2.0)])
        no_layers = self.write("r.csv", "model,tokens,block_rest_ms,once_ms", [rest_row("A", 2, 1.0, 4.0)])
        other = self.write("o.csv", REST_HEADER, [rest_row("B", 2, 1.0, 4.0)])
        out = os.path.join(self.dir.name, "w.csv")
        for rest, needle in ((no_layers, "layers"), (other, "no model"), ("/nonexistent.csv", "nonexistent")):
            r = self.run_script("--model-csv", model_csv, "--rest-csv", rest, "--out", out)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertIn(needle, r.stderr)
            self.assertFalse(os.path.exists(out))


class ModelLookup(unittest.TestCase):
    def test_models_by_zoo_or_paper_name_and_unknown_ones_named(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "models.csv")
            with open(path, "w") as f:
                f.write("model,paper_model,family\nOPT-2.7B,OPT-2.6B,opt\nLLaMA-3-8B,LLaMA-3-8B,llama\n")
            self.assertEqual(len(bench_torch_model_rest.read_models(path, [])), 2)
            self.assertEqual([m["model"] for m in bench_torch_model_rest.read_models(path, ["opt-2.6b"])], ["OPT-2.7B"])
            with self.assertRaisesRegex(ValueError, "unknown model.*OPT-1T"):
                bench_torch_model_rest.read_models(path, ["OPT-1T"])


class TorchCommonCsv(unittest.TestCase):
    def test_rows_under_the_header_floats_to_six_digits_and_no_temporary_left(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.csv")
            torch_common.write_csv(path, "model,ms,sets", [("A", 1.0 / 3, 2), ("B", 2.5e-5, 1)])
            with open(path) as f:
                self.assertEqual(f.read(), "model,ms,sets\nA,0.333333,2\nB,2.5e-05,1\n")
            self.assertEqual(os.listdir(d), ["t.csv"])


class TorchCommonRotation(unittest.TestCase):
    def test_sets_cover_the_rotation_target_within_one_and_the_cap(self):
        target = 300e6
        original = torch_common.rotation_bytes
        torch_common.rotation_bytes = lambda: target  # the GPU's L2 is asked for here only
        try:
            self.assertEqual(torch_common.rotation_sets(100e6, cap=8), 3)
            self.assertEqual(torch_common.rotation_sets(101e6, cap=8), 3)
            self.assertEqual(torch_common.rotation_sets(99e6, cap=8), 4)
            self.assertEqual(torch_common.rotation_sets(1e9, cap=8), 1)
            self.assertEqual(torch_common.rotation_sets(1e6, cap=8), 8)
        finally:
            torch_common.rotation_bytes = original


if __name__ == "__main__":
    unittest.main()
