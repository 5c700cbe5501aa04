"""Regenerate the README's headline figure, docs/images/eos_sharpness.png, from the main experiment.

    python tools/make_readme_figure.py                  # runs the default experiment (~2 min on 2 CPU cores)
    python tools/make_readme_figure.py runs/eos         # or reads a finished workdir of it

The experiment (``python -m experiments.eos_weight_decay``) writes ``eos_sharpness.png``: the sharpness λ1 against
step, dashed 2/η, one panel per weight decay. This script copies that figure downsized (at most --width pixels
wide, a 256-colour palette) so the README stays light (< 150 KB). Run it from the repository root.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "docs", "images", "eos_sharpness.png")
FIGURE = "eos_sharpness.png"
MAX_BYTES = 150_000


def run_experiment(workdir: str) -> None:
    """The README's command 1, into ``workdir``."""
    cmd = [sys.executable, "-m", "experiments.eos_weight_decay", "--workdir", workdir, "--overwrite"]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=ROOT, check=True)


def downsize(src: str, dst: str, width: int) -> int:
    """Write ``src`` to ``dst`` at most ``width`` pixels wide, palette-quantised; -> bytes written."""
    from PIL import Image  # matplotlib's own dependency

    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    img.save(dst, optimize=True)
    return os.path.getsize(dst)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/make_readme_figure.py", description=__doc__.split("\n")[0])
    p.add_argument("workdir", nargs="?", default=None,
                   help="a finished `python -m experiments.eos_weight_decay` workdir (default: run it now)")
    p.add_argument("--out", default=DEFAULT_OUT, help="where to write the figure (default: %(default)s)")
    p.add_argument("--width", type=int, default=1100, help="maximum width in pixels (default: %(default)s)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="jaxlab_eos_") as tmp:
        workdir = args.workdir
        if workdir is None:
            workdir = os.path.join(tmp, "eos")
            run_experiment(workdir)
        src = os.path.join(workdir, FIGURE)
        if not os.path.exists(src):
            print(f"error: {src} does not exist (is {workdir} a finished eos_weight_decay run?)", file=sys.stderr)
            return 2
        size = downsize(src, args.out, args.width)
    print(f"wrote {args.out} ({size / 1000:.0f} KB)")
    if size > MAX_BYTES:
        print(f"warning: {size} bytes > {MAX_BYTES}; pass a smaller --width", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
