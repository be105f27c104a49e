#!/usr/bin/env python3
"""scripts/figure_file.py writes a figure as a palette PNG that looks like matplotlib's own
rendering, in fewer bytes, and leaves no temporary file behind. Exits 77 (skipped) where
matplotlib is missing; scripts/test installs it."""
import importlib.util
import io
import os
import random
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def busy_figure(plt):
    """A figure like the project's plots: several coloured lines, markers, a legend, text."""
    rng = random.Random(7)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax in axes:
        for series in range(8):
            xs = list(range(12))
            ys = [rng.uniform(0.5, 1.6) for _ in xs]
            ax.plot(xs, ys, marker="o", ls=("-", "--", ":")[series % 3], label=f"series {series}")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("speedup over dense")
    fig.tight_layout()
    return fig


class FigureFileTest(unittest.TestCase):
    def test_palette_png_looks_like_matplotlibs_rendering_in_fewer_bytes(self):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from PIL import Image, ImageChops, ImageStat

        from figure_file import save_figure

        fig = busy_figure(plt)
        plain = io.BytesIO()
        fig.savefig(plain, format="png", dpi=100)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "figure.png")
            save_figure(fig, out, dpi=100)
            plt.close(fig)
            self.assertEqual(os.listdir(tmp), ["figure.png"])  # the temporary file was renamed
            plain.seek(0)
            with Image.open(plain) as reference, Image.open(out) as saved:
                self.assertEqual(saved.format, "PNG")
                self.assertEqual(saved.mode, "P")
                self.assertEqual(saved.size, reference.size)
                difference = ImageChops.difference(reference.convert("RGB"), saved.convert("RGB"))
                # Mean per channel over the whole image, 0-255: the quantisation only moves
                # anti-aliased edge pixels to a near colour.
                self.assertLess(max(ImageStat.Stat(difference).mean), 1.0)
            self.assertLess(os.path.getsize(out), 0.6 * len(plain.getvalue()))


if __name__ == "__main__":
    if importlib.util.find_spec("matplotlib") is None:
        print("skipped: matplotlib is not installed", file=sys.stderr)
        sys.exit(77)
    unittest.main()
