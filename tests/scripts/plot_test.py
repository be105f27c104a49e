#!/usr/bin/env python3
"""scripts/plot.py draws every kind of figure from the result files the project commits (the
same files the GPU experiments write), and refuses bad input with one line and exit code 2.
On the GPU machine a plot that fails only logs "plot failed", so this is where its errors show.
Exits 77 (skipped) where matplotlib is missing; scripts/test installs it."""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLOT = os.path.join(ROOT, "scripts", "plot.py")
H200 = os.path.join(ROOT, "results", "h200")


def h200(*parts):
    return os.path.join(H200, *parts)


# kind -> the arguments besides --out, all files committed under results/.
FIGURES = {
    "memory": ["--exact", os.path.join(ROOT, "results", "memory", "memory_exact.csv"),
               "--paper", os.path.join(ROOT, "results", "memory", "memory_paper.csv")],
    "spmm": ["--csv", h200("spmm.csv")],
    "spmm_sweep": ["--csv", h200("d109cac", "spmm.csv"), "--csv", h200("d109cac", "spmm_tokens_512.csv"),
                   "--csv", h200("d109cac", "spmm_tokens_8192.csv"), "--csv", h200("d109cac", "spmm_dtype_bf16.csv")],
    "setup": ["--csv", h200("setup.csv")],
    "lowrank": ["--csv", h200("lowrank.csv"), "--torch-csv", h200("torch_lowrank.csv")],
    "layer": ["--csv", h200("layer_inference.csv")],
    "step": ["--csv", h200("layer_step.csv")],
    "model": ["--csv", h200("model_inference.csv"), "--whole-csv", h200("model_whole.csv")],
    "model_training": ["--csv", h200("model_training.csv")],
    "torch": ["--csv", h200("447daa8", "torch_vs_slope.csv")],
    "decode": ["--spmm-csv", h200("9267604", "decode_spmm.csv"), "--spmm-json", h200("9267604", "decode_spmm.json"),
               "--model-csv", h200("9267604", "decode_model.csv")],
}


def plot(kind, args, out):
    return subprocess.run([sys.executable, PLOT, kind, *args, "--out", out], capture_output=True, text=True)


class PlotTest(unittest.TestCase):
    def test_every_kind_draws_a_png_from_committed_results(self):
        with tempfile.TemporaryDirectory() as tmp:
            for kind, args in FIGURES.items():
                with self.subTest(kind=kind):
                    out = os.path.join(tmp, f"{kind}.png")
                    done = plot(kind, args, out)
                    self.assertEqual(done.returncode, 0, done.stderr)
                    with open(out, "rb") as f:
                        data = f.read()
                    self.assertTrue(data.startswith(b"\x89PNG"), kind)
                    self.assertGreater(len(data), 10000, kind)  # axes, lines and labels, not an empty canvas

    def test_a_missing_file_is_one_line_and_exit_code_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "spmm.png")
            done = plot("spmm", ["--csv", os.path.join(tmp, "none.csv")], out)
            self.assertEqual(done.returncode, 2)
            self.assertRegex(done.stderr, r"^plot.py: error: cannot plot spmm: .*none\.csv")
            self.assertEqual(len(done.stderr.strip().splitlines()), 1)
            self.assertFalse(os.path.exists(out))

    def test_memory_rows_without_a_ratio_draw_no_bar_and_do_not_stop_the_plot(self):
        # A NaN ratio must not become the y limit (matplotlib refuses one): one such row, then
        # every row.
        def copy_without_ratio(source, target, rows):
            """source's CSV written to target with the ratio of its first `rows` rows NaN (all
            of them where rows is None)."""
            with open(source) as f:
                header, *lines = f.read().splitlines()
            ratio = header.split(",").index("ratio")
            for i, line in enumerate(lines[:rows]):
                cells = line.split(",")
                cells[ratio] = "nan"
                lines[i] = ",".join(cells)
            with open(target, "w") as f:
                f.write("\n".join([header, *lines]) + "\n")
            return target

        with tempfile.TemporaryDirectory() as tmp:
            for name, rows in (("one", 1), ("all", None)):
                with self.subTest(rows=name):
                    args = list(FIGURES["memory"])
                    args[1] = copy_without_ratio(args[1], os.path.join(tmp, f"{name}_exact.csv"), rows)
                    if name == "all":
                        args[3] = copy_without_ratio(args[3], os.path.join(tmp, "all_paper.csv"), rows)
                    out = os.path.join(tmp, f"{name}.png")
                    done = plot("memory", args, out)
                    self.assertEqual(done.returncode, 0, done.stderr)
                    with open(out, "rb") as f:
                        self.assertTrue(f.read().startswith(b"\x89PNG"))

    def test_decode_refuses_an_spmm_file_of_several_token_counts(self):
        with tempfile.TemporaryDirectory() as tmp:
            mixed = os.path.join(tmp, "mixed.csv")
            with open(h200("9267604", "decode_spmm.csv")) as f:
                lines = f.read().splitlines()
            header = lines[0].split(",")
            tokens = header.index("tokens")
            second = lines[1].split(",")
            second[tokens] = "2048"
            with open(mixed, "w") as f:
                f.write("\n".join([lines[0], *lines[1:], ",".join(second)]) + "\n")
            args = list(FIGURES["decode"])
            args[args.index("--spmm-csv") + 1] = mixed
            done = plot("decode", args, os.path.join(tmp, "decode.png"))
            self.assertEqual(done.returncode, 2)
            self.assertIn("expected one dtype and token count", done.stderr)


if __name__ == "__main__":
    if importlib.util.find_spec("matplotlib") is None:
        print("skipped: matplotlib is not installed", file=sys.stderr)
        sys.exit(77)
    unittest.main()
