#!/usr/bin/env python3
"""Writing a matplotlib figure as a PNG of at most 256 colours, atomically.

    figure_file.py FILE.png...   rewrites each PNG in place as such a palette PNG

Why a palette: the committed plots under results/ travel with every GPU run, whose working
tree is limited to 64 MiB. A plot has a few dozen flat colours plus their anti-aliased edges;
as a 256-colour palette (no dithering) it looks the same and takes about a third of the
bytes of matplotlib's RGBA file (a layer plot: 298 -> 93 kB).
"""
import io
import sys

from PIL import Image  # matplotlib's own dependency: present wherever matplotlib is

from atomic_file import replace_atomically


def palette_png(image):
    """image (any mode) as a 256-colour palette image, its edges kept sharp (no dithering)."""
    return image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE)


def write_palette_png(image, path):
    """image written to path as a palette PNG; a reader never sees a half-written file."""
    palette = palette_png(image)
    replace_atomically(path, lambda tmp: palette.save(tmp, format="PNG", optimize=True))


def save_figure(fig, path, dpi):
    """fig rendered at dpi and written to path as a palette PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        write_palette_png(rendered, path)


def main(paths):
    """Rewrites each PNG in paths as a palette PNG (the committed plots of earlier runs)."""
    if not paths:
        print("usage: figure_file.py FILE.png...", file=sys.stderr)
        return 2
    for path in paths:
        try:
            with Image.open(path) as image:
                write_palette_png(image, path)
        except OSError as e:
            print(f"figure_file.py: {path}: not converted ({e})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
