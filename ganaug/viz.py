"""Pictures of a run: sample grids (one row per class), an animated GIF of them, and a loss plot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int) -> None:
    """Write images float [N, 1, H, W] in [-1, 1] as one PNG grid with ``nrow`` images per row."""
    from torchvision.utils import save_image

    save_image(images.float().cpu(), str(path), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)


def save_gif(frames: Sequence[str | Path], path: str | Path, *, duration_ms: int = 200) -> None:
    """Animate PNG ``frames`` into ``path`` (looping forever; the last frame is held 1 s)."""
    from PIL import Image

    images = [Image.open(f).convert("P") for f in frames]
    if not images:
        raise ValueError("save_gif needs at least one frame")
    durations = [duration_ms] * (len(images) - 1) + [1000]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)


def plot_losses(metrics_csv: str | Path, path: str | Path) -> None:
    """Plot D and G losses and D(x), D(G(z)) against step from a run's ``metrics.csv`` into a PNG.

    Draws on a :class:`matplotlib.figure.Figure` with the Agg canvas directly: no pyplot, no global backend
    switch, nothing left open.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    step = [int(r["step"]) for r in rows]
    fig = Figure(figsize=(10, 3.5))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(step, [float(r["d_loss"]) for r in rows], label="D loss")
    ax1.plot(step, [float(r["g_loss"]) for r in rows], label="G loss")
    ax1.set_xlabel("step")
    ax1.set_title("losses")
    ax1.legend()
    ax2.plot(step, [float(r["d_real"]) for r in rows], label="D(x)")
    ax2.plot(step, [float(r["d_fake"]) for r in rows], label="D(G(z))")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("step")
    ax2.set_title("discriminator outputs (sigmoid)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
