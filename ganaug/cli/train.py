"""``ganaug train``."""

from __future__ import annotations

from pathlib import Path

import click

from ganaug.cli import main
from ganaug.config import DATASETS, DIFFAUGMENT_POLICIES, MAX_SEED, ModelConfig, TrainConfig

# What --resume takes from the command line; every other option comes from the run's config.json.
RESUME_OPTIONS = ("resume_dir", "epochs", "data_root", "quiet", "threads")


@main.command()
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default=TrainConfig.dataset,
    show_default=True,
    help="Training data; 'digits' is embedded in scikit-learn and needs no files.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding MNIST/raw, FashionMNIST/raw, or <class>/<image> files.",
)
@click.option("--download", is_flag=True, help="Download MNIST / Fashion-MNIST into --data-root if missing.")
@click.option(
    "--per-class",
    type=click.IntRange(min=1),
    default=None,
    help="Train on a seeded stratified subset of N images per class.",
)
@click.option(
    "--out",
    "run_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/digits"),
    show_default=True,
    help="Run folder to create.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue the run in this folder up to its configured total (or --epochs); --data-root if its data moved.",
)
@click.option("--overwrite", is_flag=True, help="Replace a non-empty run folder.")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=None, help="Total epochs  [default: 100 for digits, else 15]."
)
@click.option("--batch-size", type=click.IntRange(min=2), default=TrainConfig.batch_size, show_default=True)
@click.option("--lr-g", type=float, default=TrainConfig.lr_g, show_default=True, help="Generator learning rate.")
@click.option("--lr-d", type=float, default=TrainConfig.lr_d, show_default=True, help="Discriminator learning rate.")
@click.option(
    "--d-steps",
    type=click.IntRange(min=1),
    default=TrainConfig.d_steps,
    show_default=True,
    help="Discriminator steps per generator step (Goodfellow's k).",
)
@click.option(
    "--label-smoothing",
    type=click.FloatRange(0, 0.5, max_open=True),
    default=TrainConfig.label_smoothing,
    show_default=True,
    help="One-sided: real targets become 1 - s.",
)
@click.option("--spectral-norm", is_flag=True, help="Spectral normalization on every discriminator layer.")
@click.option(
    "--diffaugment",
    default="",
    show_default=True,
    help=f"Comma-separated DiffAugment policies from {', '.join(DIFFAUGMENT_POLICIES)}.",
)
@click.option(
    "--augment-real",
    is_flag=True,
    help="Random affine (rotate/shift/scale) on the real images only: G learns digits in new poses; for tiny subsets.",
)
@click.option(
    "--ema-decay", type=click.FloatRange(0, 1, max_open=True), default=TrainConfig.ema_decay, show_default=True
)
@click.option("--z-dim", type=click.IntRange(min=1), default=ModelConfig.z_dim, show_default=True)
@click.option(
    "--g-width",
    type=click.IntRange(min=1),
    default=ModelConfig.g_width,
    show_default=True,
    help="Generator channels at 14x14 (4x that at 7x7).",
)
@click.option(
    "--upsample",
    type=click.Choice(["subpixel", "deconv"]),
    default=ModelConfig.upsample,
    show_default=True,
    help="Generator 7x7->14x14 step: 3x3 conv + PixelShuffle, or ConvTranspose2d.",
)
@click.option("--d-width", type=click.IntRange(min=1), default=ModelConfig.d_width, show_default=True)
@click.option(
    "--amp",
    type=click.Choice(["auto", "off", "bf16", "fp16"]),
    default=TrainConfig.amp,
    show_default=True,
    help="Mixed precision; auto = bf16 on CUDA, off on CPU.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=TrainConfig.device, show_default=True)
@click.option("--channels-last", is_flag=True, help="channels_last memory format for the convolutions.")
@click.option("--compile", is_flag=True, help="torch.compile G and D for the training steps (pays on CUDA).")
@click.option(
    "--save-every",
    type=click.IntRange(min=1),
    default=TrainConfig.save_every,
    show_default=True,
    help="Epochs between sample grids and checkpoints (the last epoch is always saved).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=TrainConfig.seed,
    show_default=True,
    help="Seeds the subset, the weights and every draw (0 to 2**63 - 1).",
)
@click.option("--no-export", is_flag=True, help="Skip the ONNX export at the end.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads  [default: the idle CPUs]."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    run_dir: Path,
    threads: int | None,
    resume_dir: Path | None,
    overwrite: bool,
    epochs: int | None,
    diffaugment: str,
    quiet: bool,
    no_export: bool,
    spectral_norm: bool,
    z_dim: int,
    g_width: int,
    d_width: int,
    upsample: str,
    **opts,
) -> None:
    """Train a class-conditional DCGAN; writes a run folder (config, metrics, grids, GIF, checkpoint, ONNX)."""
    from ganaug.threads import configure_torch
    from ganaug.training import Trainer

    configure_torch(threads)
    if resume_dir is not None:
        if overwrite:
            raise click.UsageError("--resume and --overwrite exclude each other; pick one")
        ctx = click.get_current_context()
        ignored = [
            f"--{name.replace('_', '-') if name != 'run_dir' else 'out'}"
            for name in ctx.params
            if name not in RESUME_OPTIONS and ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
        ]
        if ignored:
            click.echo(
                f"--resume continues with the run's own config.json; ignoring {', '.join(ignored)} "
                f"(only --epochs, --data-root, --threads and --quiet apply)",
                err=True,
            )
        trainer = Trainer.resume(resume_dir, epochs=epochs, data_root=opts["data_root"], progress=not quiet)
    else:
        policies = tuple(p.strip() for p in diffaugment.split(",") if p.strip())
        model = ModelConfig(
            z_dim=z_dim, g_width=g_width, d_width=d_width, spectral_norm=spectral_norm, upsample=upsample
        )
        data_root = opts.pop("data_root")
        try:
            config = TrainConfig(
                **opts,
                data_root=None if data_root is None else str(data_root),
                epochs=epochs,
                diffaugment=policies,
                export_onnx=not no_export,
                model=model,
            )
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        trainer = Trainer.new(config, run_dir, overwrite=overwrite, progress=not quiet)
    result = trainer.fit()
    click.echo(
        f"trained {result.steps} steps ({result.epochs} epochs) in {result.train_seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s); outputs in {result.run_dir}/: samples.png, samples.gif, "
        f"losses.png, metrics.csv, checkpoint.pt" + ("" if no_export else ", generator.onnx")
    )
