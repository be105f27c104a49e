#!/usr/bin/env python3
"""The committed results stay compact, because the whole working tree travels with every GPU
run and the device tool refuses a tree over 64 MiB (it did at c736189):
- logs and GPU state samples are stored gzipped (`gzip -9 -n FILE`; read with zcat);
- plots are palette PNGs (scripts/plot.py draws them so; scripts/figure_file.py FILE.png
  converts one drawn otherwise);
- the tracked files, where git can list them, stay under TREE_LIMIT_MIB, leaving room for the
  runs of a few sessions before the limit.
Each finding names the file and the fix."""
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "results")
TREE_LIMIT_MIB = 56
PNG_PALETTE = 3  # the IHDR colour type of a palette PNG


def result_files():
    for folder, _, names in os.walk(RESULTS):
        for name in names:
            yield os.path.relpath(os.path.join(folder, name), ROOT)


def png_colour_type(path):
    """The colour type in a PNG's IHDR chunk: signature (8 bytes), chunk length and type (8),
    width and height (8), bit depth (1), then the colour type."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(b"\x89PNG\r\n\x1a\n") or head[12:16] != b"IHDR":
        return None
    return head[25]


class ResultsCompactTest(unittest.TestCase):
    def test_logs_and_gpu_state_samples_are_gzipped(self):
        plain = [p for p in result_files() if p.endswith(".log") or p.endswith("_gpu_state.csv")]
        self.assertEqual(plain, [], "store these gzipped: gzip -9 -n " + " ".join(plain))

    def test_plots_are_palette_pngs(self):
        others = [p for p in result_files()
                  if p.endswith(".png") and png_colour_type(os.path.join(ROOT, p)) != PNG_PALETTE]
        self.assertEqual(others, [], "not palette PNGs: python3 scripts/figure_file.py " + " ".join(others))

    def test_tracked_tree_leaves_room_under_the_gpu_runs_limit(self):
        try:
            listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            self.skipTest("not a git checkout: the tracked files cannot be listed")
        paths = [p for p in listed.stdout.decode().split("\0") if p]
        size = sum(os.path.getsize(os.path.join(ROOT, p)) for p in paths
                   if os.path.isfile(os.path.join(ROOT, p)))
        self.assertLess(size / 2**20, TREE_LIMIT_MIB,
                        f"the tracked files take {size / 2**20:.1f} MiB; a GPU run carries at most 64: "
                        "compress or move out older runs' files (results/h200/README.md says how they are kept)")


if __name__ == "__main__":
    unittest.main()
