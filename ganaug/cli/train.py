"""``ganaug train``."""

from __future__ import annotations

from pathlib import Path

import click

from ganaug.cli._common import main
from ganaug.config import (
    DATASETS,
    DIFFAUGMENT_POLICIES,
    LOSSES,
    LR_DECAYS,
    MAX_SEED,
    PSEUDO_LABEL_THRESHOLD,
    SELECT_METRICS,
    ModelConfig,
    TrainConfig,
)
from ganaug.presets import names as preset_names
from ganaug.recipe import LOW_BUDGET_BELOW, LOW_BUDGET_STEPS

# What --resume takes from the command line; every other option comes from the run's config.json.
RESUME_OPTIONS = ("resume_dir", "epochs", "data_root", "unlabelled", "quiet", "threads")


def _weight_option(flag: str, default: float, help: str):
    """A loss term's weight: a number >= 0, 0 = off."""
    return click.option(flag, type=click.FloatRange(min=0), default=default, show_default=True, help=help)


def _count_option(flag: str, default: int, help: str):
    """A count or a period: an integer >= 1."""
    return click.option(flag, type=click.IntRange(min=1), default=default, show_default=True, help=help)


@main.command()
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default=TrainConfig.dataset,
    show_default=True,
    help="Training data; 'digits' is embedded in scikit-learn and needs no files.",
)
@click.option(
    "--preset",
    type=click.Choice(preset_names()),
    default=None,
    help="A named recipe (ganaug/presets/*.json): its options and sampling; options given here win  "
    "[default: chosen by --dataset and --per-class, said on stderr].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='Your own preset file (the presets\' JSON format; "base": NAME extends a preset), instead of --preset.',
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
    help="Train on a seeded stratified subset of N images per class. Below "
    f"{LOW_BUDGET_BELOW}, the few-shot preset (as the downstream benchmark's GANs): {LOW_BUDGET_STEPS} steps, "
    "--augment-real the dataset's, batches <= 64, --d-width 32; from there the dataset's preset, whose steps "
    "scale smoothly with the images.",
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
    "--epochs", type=click.IntRange(min=1), default=None, help="Total epochs  [default: the preset's step budget]."
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
    is_flag=False,
    flag_value="affine",
    default=None,
    type=click.Choice(["affine", "shift-flip", "none"]),
    help="Classical augmentation on the real images only, for tiny subsets: 'affine' (rotate/shift/scale; the "
    "default when given bare: G learns digits in new poses), 'shift-flip' (2-pixel shifts and horizontal "
    f"flips; for clothes) or 'none'. --per-class below {LOW_BUDGET_BELOW} picks the dataset's (the low-budget recipe).",
)
@click.option(
    "--pseudo-label",
    type=click.FloatRange(0, 1, min_open=True),
    is_flag=False,
    flag_value=PSEUDO_LABEL_THRESHOLD,
    default=None,
    metavar="[THRESHOLD]",
    help="Few labels, many images: also train on a pool of unlabelled images (the rest of the training split "
    "with --per-class, or --unlabelled DIR), labelled by a classifier trained on the labelled ones; an image "
    "is kept when that classifier's probability is >= THRESHOLD (0.95 when given bare: FixMatch's, and the "
    "downstream benchmark's pool protocol). No other label is read.",
)
@click.option(
    "--unlabelled",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of unlabelled images (any depth) to pseudo-label and train on, instead of the rest of the "
    f"training split (with --pseudo-label {PSEUDO_LABEL_THRESHOLD} unless --pseudo-label says otherwise). With "
    "--resume: where the run's folder moved.",
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
@click.option(
    "--d-width",
    type=click.IntRange(min=1),
    default=ModelConfig.d_width,
    show_default=True,
    help=f"Discriminator width (32 with --per-class below {LOW_BUDGET_BELOW}).",
)
@click.option(
    "--g-depth",
    type=click.IntRange(min=0),
    default=ModelConfig.g_depth,
    show_default=True,
    help="Extra 3x3 conv blocks at the generator's 7x7 stage (deeper instead of wider).",
)
@click.option(
    "--d-depth",
    type=click.IntRange(min=0),
    default=ModelConfig.d_depth,
    show_default=True,
    help="Extra 3x3 conv blocks at the discriminator's 7x7 stage.",
)
@_weight_option(
    "--ac-weight",
    TrainConfig.ac_weight,
    "Auxiliary-classifier term (AC-GAN): D gets a class head trained on the real images, G is pushed to "
    "images it files under the asked class; 0 = off. Stronger conditioning for tiny subsets.",
)
@click.option("--mbstd", is_flag=True, help="Minibatch standard-deviation feature in D (ProGAN, groups of 4).")
@click.option(
    "--cond-bn",
    is_flag=True,
    help="Class-conditional BatchNorm in G: each BatchNorm gets a per-class scale and shift (as in BigGAN).",
)
@click.option(
    "--center-of-mass",
    type=click.Choice(["off", "sample", "train"]),
    default="off",
    show_default=True,
    help="Move each generated image by whole pixels so its centre of mass is at the centre, as MNIST placed its "
    "digits: 'sample' in the run's samples and export only (the MNIST recipe), 'train' also where D sees them "
    "in training (measured worse). For data placed that way (refused for other data).",
)
@click.option(
    "--d-coords",
    is_flag=True,
    help="CoordConv in D: two maps with each pixel's row and column are added to D's input (D sees where "
    "strokes lie to the pixel).",
)
@click.option(
    "--d-pack",
    type=click.IntRange(min=1),
    default=ModelConfig.d_pack,
    show_default=True,
    help="PacGAN: D judges packs of this many images (all real or all fake) at once, which makes a generator that "
    "repeats itself easier to catch; 1 = off. The batch per process must be a multiple of it.",
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    default=TrainConfig.loss,
    show_default=True,
    help="bce: non-saturating GAN loss; hinge: hinge loss (pair it with --spectral-norm); rpgan: relativistic "
    "pairing loss (R3GAN; pair it with --r1-gamma and --r2-gamma).",
)
@_weight_option(
    "--r1-gamma",
    TrainConfig.r1_gamma,
    "R1 penalty gamma/2 E|grad D(x)|^2 on the real images (0 = off).",
)
@_weight_option(
    "--r2-gamma",
    TrainConfig.r2_gamma,
    "R2 penalty weight: R1's gradient penalty on the generated images D sees (with --loss rpgan, as in "
    "R3GAN); 0 = off.",
)
@_count_option(
    "--r1-every",
    TrainConfig.r1_every,
    "Lazy R1 and R2: apply them every N discriminator steps, weighted by N.",
)
@_weight_option(
    "--mode-seeking",
    TrainConfig.mode_seeking,
    "Mode-seeking term (MSGAN) with this weight: G pays when two latents of one class give the same image; 0 = off.",
)
@_weight_option(
    "--coverage-weight",
    TrainConfig.coverage_weight,
    "Coverage term (IMLE beside the GAN loss, as in Inclusive GAN) with this weight: each real image pulls the "
    "nearest recent fake of its class towards it in pixels; 0 = off.",
)
@_weight_option(
    "--flatten-density",
    TrainConfig.flatten_density,
    "Draw training images with probability (distance to their 5th nearest same-class image)^A, so rare "
    "styles are seen more often; A = 0 = off (each image once an epoch).",
)
@click.option(
    "--density-clip",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=TrainConfig.density_clip,
    show_default=True,
    help="With --flatten-density: cap each image's distance at this quantile of its class's distances.",
)
@_count_option(
    "--coverage-bank",
    TrainConfig.coverage_bank,
    "How many recent fakes the coverage term searches for each real image's nearest.",
)
@_count_option(
    "--coverage-every",
    TrainConfig.coverage_every,
    "Apply the coverage term every N generator steps, weighted by N.",
)
@click.option(
    "--lr-decay",
    type=click.Choice(LR_DECAYS),
    default=TrainConfig.lr_decay,
    show_default=True,
    help="Both learning rates decay to 0 over the configured total of steps.",
)
@click.option(
    "--betas",
    default=f"{TrainConfig.beta1},{TrainConfig.beta2}",
    show_default=True,
    help="Adam's beta1,beta2 for both optimizers, each in [0, 1).",
)
@click.option(
    "--ema-warmup",
    type=click.FloatRange(min=1, min_open=True),
    default=TrainConfig.ema_warmup,
    show_default=True,
    help="EMA decay at update n is min(--ema-decay, (1 + n) / (W + n)); larger W warms up longer.",
)
@click.option(
    "--select-by",
    type=click.Choice(SELECT_METRICS),
    default=TrainConfig.select_by,
    show_default=True,
    help="Export the EMA snapshot (scored after every epoch) with the best Frechet distance or recall against "
    "--holdout images held out of the training split; needs --select-evaluator.",
)
@click.option(
    "--holdout",
    type=click.IntRange(min=0),
    default=TrainConfig.holdout,
    show_default=True,
    help="Images per class held out of the training split (not trained on) for --select-by.",
)
@click.option(
    "--select-evaluator",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Evaluator folder (`ganaug evaluator train`) whose features --select-by scores in.",
)
@click.option(
    "--amp",
    type=click.Choice(["auto", "off", "bf16", "fp16"]),
    default=TrainConfig.amp,
    show_default=True,
    help="Mixed precision; auto = bf16 on CUDA, off on CPU. bf16 also runs on a CPU (fastest with AVX-512 BF16 or AMX); fp16 needs CUDA.",
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
    quiet: bool,
    preset: str | None,
    config_file: Path | None,
    **opts,
) -> None:
    """Train a class-conditional DCGAN; writes a run folder (config, metrics, grids, GIF, checkpoint, ONNX)."""
    from ganaug.presets import resolve
    from ganaug.threads import check_threads, configure_torch
    from ganaug.training import Trainer

    configure_torch(check_threads(threads, name="--threads"))
    ctx = click.get_current_context()
    given = {name for name in ctx.params if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    if resume_dir is not None:
        if overwrite:
            raise click.UsageError("--resume and --overwrite exclude each other; pick one")
        ignored = [
            f"--{name.replace('_', '-') if name != 'run_dir' else 'out'}"
            for name in ctx.params
            if name in given and name not in RESUME_OPTIONS
        ]
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
    click.echo(
        f"trained {result.steps} steps ({result.epochs} epochs) in {result.train_seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s); outputs in {result.run_dir}/: samples.png, samples.gif, "
        f"losses.png, metrics.csv, checkpoint.pt" + (", generator.onnx" if trainer.config.export_onnx else "")
    )


#: Options that set a ModelConfig field of the same name.
MODEL_OPTIONS = ("spectral_norm", "z_dim", "g_width", "upsample", "d_width", "g_depth", "d_depth", "mbstd", "cond_bn")
MODEL_OPTIONS += ("d_coords", "d_pack")
#: Options that are not TrainConfig fields (or are passed to :func:`ganaug.presets.resolve` on their own).
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
        elif name == "diffaugment":
            fields["diffaugment"] = tuple(p.strip() for p in value.split(",") if p.strip())
        elif name == "betas":
            fields["beta1"], fields["beta2"] = _parse_betas(value)
        elif name == "no_export":
            fields["export_onnx"] = not value
        elif name == "center_of_mass":
            model["center_of_mass"] = value == "train"
            fields["sample_center_of_mass"] = value == "sample"
        elif name == "ac_weight":
            fields["ac_weight"] = value
            model["aux_classifier"] = value > 0
        elif name == "augment_real":
            fields["augment_real"] = False if value in (None, "none") else value
        elif name in ("select_evaluator", "unlabelled"):
            fields[name] = None if value is None else str(value.resolve() if name == "select_evaluator" else value)
        else:
            fields[name] = value
    if "unlabelled" in fields and "pseudo_label" not in fields:  # a folder to pseudo-label: the default threshold
        fields["pseudo_label"] = PSEUDO_LABEL_THRESHOLD
    if model:
        fields["model"] = model
    return fields


def _parse_betas(value: str) -> tuple[float, float]:
    """``"0.5,0.999"`` -> ``(0.5, 0.999)``; the range check is TrainConfig's."""
    try:
        beta1, beta2 = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"expected two numbers such as 0.5,0.999, got {value!r}", param_hint="--betas"
        ) from None
    return beta1, beta2
