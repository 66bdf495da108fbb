"""``ganaug train``."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ganaug.cli._common import InputProblem, main
from ganaug.config import DATASETS, MAX_SEED, PSEUDO_LABEL_THRESHOLD, ModelConfig, TrainConfig
from ganaug.train.presets import names as preset_names
from ganaug.train.recipe import LOW_BUDGET_BELOW, LOW_BUDGET_STEPS

# What --resume takes from the command line; every other option comes from the run's config.json.
RESUME_OPTIONS = ("resume_dir", "epochs", "data_root", "unlabelled", "quiet", "threads")


def _renamed_per_class(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    """The old name of ``--real-per-class``: refused in one line that names the new one."""
    if value is not None:
        raise InputProblem(
            "train's --per-class is now --real-per-class (real images per class to train on; --per-class counts "
            f"generated images in generate and evaluate): use --real-per-class {value}"
        )


@main.command()
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default=TrainConfig.dataset,
    show_default=True,
    help="Training data; 'digits' is embedded in scikit-learn and needs no files (a quick first run).",
)
@click.option(
    "--preset",
    type=click.Choice(preset_names()),
    default=None,
    help="A measured recipe (ganaug/train/presets/*.json: losses, step budget, sampling); options given here win  "
    "[default: chosen by --dataset and --real-per-class, said on stderr].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='Your own recipe in the presets\' JSON format ("base": NAME extends a preset), instead of --preset: '
    "for the settings that have no option here (loss, r1_gamma, beta1/beta2, ema_decay, z_dim, ...).",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding MNIST/raw, FashionMNIST/raw, or <class>/<image> files.",
)
@click.option("--download", is_flag=True, help="Download MNIST / Fashion-MNIST into --data-root if missing.")
@click.option(
    "--real-per-class",
    "per_class",
    type=click.IntRange(min=1),
    default=None,
    help="When you have few labelled images: train on a seeded stratified subset of N real images per class. "
    f"Below {LOW_BUDGET_BELOW} the few-shot preset ({LOW_BUDGET_STEPS} steps, the dataset's --augment-real, "
    "D half as wide), from there the dataset's preset, whose steps scale with the images.",
)
@click.option("--per-class", "old_per_class", type=int, hidden=True, expose_value=False, callback=_renamed_per_class)
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
    help="Continue an interrupted run in this folder up to its configured total (or --epochs); --data-root if "
    "its data moved.",
)
@click.option("--overwrite", is_flag=True, help="Replace a run folder ganaug wrote before.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Total epochs, to train shorter or longer than the recipe  [default: the preset's step budget].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=TrainConfig.batch_size,
    show_default=True,
    help="Images a step; raise it (with the learning rates) to fill a GPU.",
)
@click.option(
    "--lr-g",
    type=float,
    default=TrainConfig.lr_g,
    show_default=True,
    help="Generator learning rate; lower both rates if the losses diverge.",
)
@click.option(
    "--lr-d",
    type=float,
    default=TrainConfig.lr_d,
    show_default=True,
    help="Discriminator learning rate (see --lr-g).",
)
@click.option(
    "--d-steps",
    type=click.IntRange(min=1),
    default=TrainConfig.d_steps,
    show_default=True,
    help="Discriminator steps per generator step (Goodfellow's k), for a D that falls behind.",
)
@click.option(
    "--augment-real",
    is_flag=False,
    flag_value="affine",
    default=None,
    type=click.Choice(["affine", "shift-flip", "none"]),
    help="For tiny subsets: classical augmentation of the real images only, so G learns new poses. 'affine' "
    "(rotate/shift/scale, digits; the default when bare), 'shift-flip' (clothes) or 'none'  "
    f"[default: the preset's; the dataset's below --real-per-class {LOW_BUDGET_BELOW}].",
)
@click.option(
    "--pseudo-label",
    type=click.FloatRange(0, 1, min_open=True),
    is_flag=False,
    flag_value=PSEUDO_LABEL_THRESHOLD,
    default=None,
    metavar="[THRESHOLD]",
    help="Few labels, many images: also train on the rest of the training split (with --real-per-class) or "
    "--unlabelled DIR, labelled by a classifier trained on the labelled images, keeping those it gives "
    f"probability >= THRESHOLD ({PSEUDO_LABEL_THRESHOLD} when bare, FixMatch's). No other label is read.",
)
@click.option(
    "--unlabelled",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of unlabelled images (any depth) to pseudo-label and train on, when your data really has few "
    f"labels (--pseudo-label {PSEUDO_LABEL_THRESHOLD} unless given). With --resume: where that folder moved.",
)
@click.option(
    "--g-width",
    type=click.IntRange(min=1),
    default=ModelConfig.g_width,
    show_default=True,
    help="Generator channels at 14x14 (4x that at 7x7); wider costs generation speed.",
)
@click.option(
    "--d-width",
    type=click.IntRange(min=1),
    default=ModelConfig.d_width,
    show_default=True,
    help=f"Discriminator width  [the few-shot preset: 32, below --real-per-class {LOW_BUDGET_BELOW}].",
)
@click.option(
    "--amp",
    type=click.Choice(["auto", "off", "bf16", "fp16"]),
    default=TrainConfig.amp,
    show_default=True,
    help="Mixed precision for speed: auto = bf16 on CUDA, off on CPU (presets measure bf16 on the CPU and use "
    "it where it pays: AVX-512 BF16 or AMX); fp16 needs CUDA.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default=TrainConfig.device,
    show_default=True,
    help="Where to train; auto = CUDA when there is a GPU.",
)
@click.option("--channels-last", is_flag=True, help="channels_last memory format: faster with --amp bf16 on a CPU.")
@click.option(
    "--save-every",
    type=click.IntRange(min=1),
    default=TrainConfig.save_every,
    show_default=True,
    help="Epochs between sample grids and checkpoints, the points --resume restarts from (the last is always saved).",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=TrainConfig.seed,
    show_default=True,
    help="Seeds the subset, the weights and every draw (0 to 2**63 - 1): the same seed gives the same run.",
)
@click.option("--no-export", is_flag=True, help="Skip the ONNX export at the end (`ganaug export` does it later).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads, to share the machine  [default: the idle CPUs].",
)
@click.option("--quiet", is_flag=True, help="No progress bar (for logs).")
def train(
    run_dir: Path,
    threads: int | None,
    resume_dir: Path | None,
    overwrite: bool,
    epochs: int | None,
    quiet: bool,
    preset: str | None,
    config_file: Path | None,
    **opts,
) -> None:
    """Train a class-conditional DCGAN; writes a run folder (config, metrics, grids, GIF, checkpoint, ONNX)."""
    from ganaug.threads import check_threads, configure_torch
    from ganaug.train.presets import resolve
    from ganaug.train.trainer import Trainer

    configure_torch(check_threads(threads, name="--threads"))
    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    if resume_dir is not None:
        if overwrite:
            raise click.UsageError("--resume and --overwrite exclude each other; pick one")
        flags = {p.name: p.opts[0] for p in ctx.command.params}
        ignored = [flags[name] for name in ctx.params if name in given and name not in RESUME_OPTIONS]
        if ignored:
            click.echo(
                f"--resume continues with the run's own config.json; ignoring {', '.join(ignored)} "
                f"(only --epochs, --data-root, --unlabelled, --threads and --quiet apply)",
                err=True,
            )
        trainer = Trainer.resume(
            resume_dir, epochs=epochs, data_root=opts["data_root"], unlabelled=opts["unlabelled"], progress=not quiet
        )
    else:
        overrides = _given_fields(ctx.params, given)
        resolved = resolve(  # an InputError is one line, exit 2
            opts["dataset"] if "dataset" in given else None,
            preset=preset,
            config=config_file,
            per_class=opts["per_class"],
            data_root=opts["data_root"],
            **overrides,
        )
        trainer = Trainer.new(resolved.config, run_dir, overwrite=overwrite, progress=not quiet)
        if resolved.said:  # after the run folder is set up, so a bad-input error stays one line
            click.echo(resolved.said, err=True)
    result = trainer.fit()
    done = (  # a finished run resumed: nothing left to train, its outputs written again
        f"{result.run_dir} had trained its {result.steps} steps already; wrote its outputs again"
        if math.isnan(result.images_per_second)
        else f"trained {result.steps} steps ({result.epochs} epochs) in {result.train_seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s)"
    )
    click.echo(
        f"{done}; outputs in {result.run_dir}/: samples.png, samples.gif, "
        f"losses.png, metrics.csv, checkpoint.pt"
        + (", generator.onnx" if trainer.config.export_onnx else "")
        + (
            f", {trainer.config.sampling['label_check']} (its label check)"
            if trainer.config.sampling.get("label_check")
            else ""
        )
    )


#: Options that set a ModelConfig field of the same name.
MODEL_OPTIONS = ("g_width", "d_width")
#: Options that are not TrainConfig fields (or are passed to :func:`ganaug.train.presets.resolve` on their own).
NOT_FIELDS = ("run_dir", "threads", "resume_dir", "overwrite", "quiet", "preset", "config_file", "dataset")
NOT_FIELDS += ("per_class", "data_root")


def _given_fields(params: dict, given: set[str]) -> dict:
    """The TrainConfig fields (``model``: a mapping of ModelConfig fields) the command line gave: they win over
    the preset; the options left at their defaults are the preset's to set."""
    fields: dict = {}
    model: dict = {}
    for name in given - set(NOT_FIELDS):
        value = params[name]
        if name in MODEL_OPTIONS:
            model[name] = value
        elif name == "no_export":
            fields["export_onnx"] = not value
        elif name == "augment_real":
            fields["augment_real"] = False if value in (None, "none") else value
        elif name == "unlabelled":
            fields[name] = None if value is None else str(value)
        else:
            fields[name] = value
    if "unlabelled" in fields and "pseudo_label" not in fields:  # a folder to pseudo-label: the default threshold
        fields["pseudo_label"] = PSEUDO_LABEL_THRESHOLD
    if model:
        fields["model"] = model
    return fields
