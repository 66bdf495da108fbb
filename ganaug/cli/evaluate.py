"""``ganaug evaluator train`` and ``ganaug evaluate``: thin wrappers over :mod:`ganaug.classify.evaluator` and :mod:`ganaug.eval.metrics`."""

from __future__ import annotations

import json
import math
import shutil
import sys
import warnings
from pathlib import Path

import click

from ganaug.cli._common import cli_sampling, main, sampling_options
from ganaug.config import DATASETS
from ganaug.errors import InputError
from ganaug.outputs import check_own_folder, check_report_target, write_text_whole

DEVICE_CHOICE = click.Choice(["auto", "cpu", "cuda"])
EVALUATOR_KIND = "evaluator"
"""The :data:`ganaug.outputs.MARKER` kind of a folder `ganaug evaluator train` wrote."""
SEED = click.IntRange(0, 2**63 - 1)
"""A seed: torch and numpy take [0, 2**63)."""


class _FinitePositive(click.ParamType):
    """A float > 0 that is finite (click's FloatRange lets ``inf`` through and turns ``nan`` into a traceback)."""

    name = "float"

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(number) and number > 0):
            self.fail(f"{value!r} is not a finite number > 0", param, ctx)
        return number


FINITE_POSITIVE = _FinitePositive()


def _check_out(out: Path, *, overwrite: bool) -> set[str]:
    """Refuse an ``evaluator train --out`` that may not be written (:func:`ganaug.outputs.check_own_folder`); the
    names of the evaluator's files it holds (those an ``--overwrite`` replaces)."""
    from ganaug.classify.evaluator import CONFIG, WEIGHTS, is_evaluator_file
    from ganaug.classify.manifold import MANIFOLD, is_manifold

    own = {CONFIG: is_evaluator_file, WEIGHTS: is_evaluator_file, MANIFOLD: is_manifold}
    return check_own_folder(
        out, kind=EVALUATOR_KIND, own=own, overwrite=overwrite, what="an evaluator", optional=frozenset({MANIFOLD})
    )


def _device(name: str) -> str:
    from ganaug.train.hardware import resolve_device

    return str(resolve_device(name))


@main.group()
def evaluator() -> None:
    """The evaluation classifier that `ganaug evaluate` judges generators with."""


@evaluator.command("train")
@click.option("--dataset", type=click.Choice(DATASETS), default="mnist", show_default=True)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding MNIST/raw (torchvision layout); not needed for digits.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write (model.safetensors + evaluator.json).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True)
@click.option(
    "--lr",
    type=FINITE_POSITIVE,
    default=3e-3,
    show_default=True,
    help="Peak learning rate of the one-cycle schedule.",
)
@click.option("--no-augment", is_flag=True, help="No random-affine augmentation.")
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Channels of the first stage (the second has twice as many); narrower is faster, e.g. for a --label-check.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--manifold-per-class",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also store the real manifold of N training images per class in its features (manifold.safetensors): "
    "used as a --label-check, it then also redraws images that lie off that manifold. 0: none.",
)
@click.option("--device", type=DEVICE_CHOICE, default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing evaluator folder.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads  [default: the idle CPUs].",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(
    dataset: str,
    data_root: Path | None,
    out: Path,
    epochs: int,
    batch_size: int,
    lr: float,
    no_augment: bool,
    width: int,
    seed: int,
    manifold_per_class: int,
    device: str,
    overwrite: bool,
    quiet: bool,
    threads: int | None,
) -> None:
    """Train the evaluation CNN on the train split and report its accuracy on the untouched test split.

    On MNIST the defaults reach about 99.5% (4 epochs: 7 s on an H100, about 4 minutes on one CPU thread).
    """
    from ganaug.classify.evaluator import WEIGHTS, EvaluatorConfig, EvaluatorNet, EvaluatorTraining, train_evaluator_on
    from ganaug.classify.manifold import MANIFOLD, Manifold, manifold_images
    from ganaug.hashing import file_sha256
    from ganaug.outputs import check_room, clean_stale_temps, exclusive_lock, make_folders, mark_dir
    from ganaug.threads import check_threads, configure_torch

    configure_torch(check_threads(threads, name="--threads"))
    ours = _check_out(out, overwrite=overwrite)
    settings = EvaluatorTraining(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        augment=not no_augment,
        seed=seed,
        model=EvaluatorConfig(width=width),
    )
    # Before training: the weights (float32), the config and a manifold must fit on the disk.
    weights = 4 * sum(p.numel() for p in EvaluatorNet(settings.model).parameters())
    check_room(what="the evaluator", disk=2 * weights + 2**16, disk_path=out, fix="choose another --out")
    with exclusive_lock(out, what="--out"):
        # Checked again under the lock: another process may have written the folder since.
        ours = _check_out(out, overwrite=overwrite)
        # A class too small for --manifold-per-class is refused before training.
        real = (
            manifold_images(dataset, root=data_root, per_class=manifold_per_class, seed=seed)
            if manifold_per_class
            else None
        )
        ev = train_evaluator_on(
            dataset,
            root=data_root,
            settings=settings,
            device=_device(device),
            progress=not quiet and sys.stderr.isatty(),
        )
        manifold = None if real is None else Manifold.build(ev, *real)
        made = make_folders(out.absolute(), out, "--out")
        try:
            clean_stale_temps(out)
            mark_dir(out, EVALUATOR_KIND)
            ev.save(out)
            if manifold is None:
                if MANIFOLD in ours:  # an earlier evaluator's manifold would belong to other weights
                    (out / MANIFOLD).unlink()
            else:
                manifold.save(out / MANIFOLD, weights_sha256=file_sha256(out / WEIGHTS))
        except BaseException:
            if made is not None:  # a folder this run created holds nothing of the user's: leave nothing behind
                shutil.rmtree(made, ignore_errors=True)
            raise
    worst = min(ev.meta["test_accuracy_per_class"].items(), key=lambda kv: kv[1])
    click.echo(
        f"test accuracy {ev.meta['test_accuracy']:.2%} (lowest class {worst[0]}: {worst[1]:.2%}); "
        f"trained in {ev.meta['train_seconds']:.0f} s on {ev.meta['device']}; saved to {out}/"
    )


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--evaluator",
    "evaluator_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Folder written by `ganaug evaluator train`.",
)
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default=None,
    help="Real dataset to judge against; must be the evaluator's and the generator's  [default: the evaluator's].",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Real data folder  [default: the one the evaluator was trained from].",
)
@click.option(
    "--per-class",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Samples per class (the real-vs-real floors use as many real images).",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--k", type=click.IntRange(min=1), default=3, show_default=True, help="Neighbourhood of precision/recall."
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "onnx", "pytorch"]),
    default="auto",
    show_default=True,
    help="auto: ONNX Runtime when MODEL is or holds generator.onnx, else the run's PyTorch checkpoint.",
)
@click.option("--device", type=DEVICE_CHOICE, default="auto", show_default=True, help="Where the evaluator runs.")
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default=None,
    help="Also write every number as JSON to this file ('-' for stdout, instead of the table).",
)
@click.option(
    "--cas",
    is_flag=True,
    help="Also the classification accuracy score: the fixed classifier trained on generated images only, "
    "beside its real-data ceiling (seeded, cached; minutes on a CPU the first time).",
)
@click.option(
    "--cas-classifier",
    type=click.Choice(["full", "cpu", "smoke"]),
    default="full",
    show_default=True,
    help="CAS classifier settings (ganaug.classify.classifier.CLASSIFIERS); compare only scores of one setting.",
)
@click.option(
    "--cas-per-class",
    type=click.IntRange(min=1),
    default=None,
    help="Generated images per class for CAS  [default: as many of each class as the real training split holds, "
    "the ceiling's set].",
)
@click.option(
    "--cas-cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of cached CAS scores  [default: $XDG_CACHE_HOME/ganaug/cas].",
)
@sampling_options
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads  [default: the idle CPUs]."
)
def evaluate(
    model: Path,
    temperature: float,
    label_check: Path | None,
    plain: bool,
    unflatten: int,
    threads: int | None,
    evaluator_path: Path,
    dataset: str | None,
    data_root: Path | None,
    per_class: int,
    seed: int,
    k: int,
    backend: str,
    device: str,
    json_out: Path | None,
    cas: bool,
    cas_classifier: str,
    cas_per_class: int | None,
    cas_cache: Path | None,
) -> None:
    """Measure a generator (run folder or .onnx): class fidelity, Fréchet distance in the evaluator's feature
    space, k-NN precision/recall, each beside its real-vs-real floor, and a memorization check.

    The generator, the evaluator and the real data must be of one dataset with the same class names; the
    real data's test split is the reference (an image folder needs a test/ folder)."""
    from ganaug.classify.evaluator import load_evaluator
    from ganaug.data.labels import check_same_classes
    from ganaug.data.sources import load_source, training_images
    from ganaug.eval.report import evaluate_on_sources, evaluation_data
    from ganaug.sample.generators import open_generator
    from ganaug.sample.unflatten import check_unflatten_room, with_unflatten
    from ganaug.threads import check_threads, configure_torch

    check_threads(threads, name="--threads")
    if json_out is not None and str(json_out) != "-":
        check_report_target(json_out)
    configure_torch(threads)
    ev = load_evaluator(evaluator_path, device=_device(device))
    gen = open_generator(model, backend=backend)
    dataset, root = evaluation_data(gen, ev, dataset=dataset, data_root=data_root)
    check_same_classes(gen.classes, ev.classes)
    # evaluate_generator checks it against ev
    sampling = cli_sampling(gen, temperature, label_check, plain, threads)
    # Before the run's training images are read: K candidates of each image of a 1,000-image batch at once.
    samples = per_class * len(gen.classes)
    shape = getattr(gen, "image_shape", (1, 28, 28))  # the PyTorch backend's generator makes 28x28 grey images
    check_unflatten_room(unflatten, batch=min(1000, samples), image_shape=shape, option="--per-class")
    sampling = with_unflatten(sampling, unflatten, run=model, data_root=data_root)
    train, test = load_source(dataset, root=root, split="train"), load_source(dataset, root=root, split="test")
    gen_train = None
    if gen.data and gen.data.get("dataset") == dataset:
        gen_train = training_images(gen.data, root=root)
    report = evaluate_on_sources(
        gen, ev, train, test, generator_train_images=gen_train, per_class=per_class, seed=seed, k=k, sampling=sampling
    )
    doc = {"model": str(model), "evaluator": str(evaluator_path), "dataset": dataset, **report.to_dict()}
    if cas:
        from ganaug.eval.cas import CacheNotWritten, CASData, cas_score, default_cache_dir, real_ceiling

        data = CASData.from_sources(train, test)
        options = {"seed": seed, "device": ev.device, "classifier": cas_classifier}
        options["cache_dir"] = cas_cache or default_cache_dir()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CacheNotWritten)
            score = cas_score(gen, data, per_class=cas_per_class, sampling=sampling, **options)
            ceiling = real_ceiling(data, **options)
        for w in caught:
            click.echo(f"Warning: {w.message}", err=True)
        gap = 100 * (ceiling["accuracy"] - score["accuracy"])
        doc["cas"] = {"classifier": cas_classifier, "per_class": cas_per_class, "seed": seed, "score": score}
        doc["cas"] |= {"ceiling": ceiling, "gap_pp": gap}
    if str(json_out) == "-":
        click.echo(json.dumps(doc, indent=2, default=float))
        return
    click.echo(format_report(report, classes=ev.classes))
    if cas:
        amount = (
            f"{cas_per_class}/class"
            if cas_per_class
            else f"{score['train_images']:,} images, the training split's counts"
        )
        click.echo(
            f"CAS ({cas_classifier} classifier, {amount}, seed {seed}): {score['accuracy']:.2%} vs real "
            f"ceiling {ceiling['accuracy']:.2%} (gap {gap:.2f} pp)"
        )
    if json_out is not None:  # after the table: a file that cannot be written costs the file, not the figures
        try:
            write_text_whole(json_out, json.dumps(doc, indent=2, default=float) + "\n")
        except OSError as e:
            raise InputError(
                f"cannot write {json_out} ({e.strerror or e}); the figures are above; choose another --json"
            ) from None


def format_report(report, *, classes: list[str]) -> str:
    """The human-readable table of a :class:`~ganaug.eval.report.GeneratorReport`."""
    pr, prf, mem = report.precision_recall, report.precision_recall_floor, report.memorization
    rows = [
        ("class fidelity", f"{report.fidelity.overall:.4f}", f"{report.fidelity_floor:.4f}", "higher is better"),
        (
            "Frechet distance",
            f"{report.frechet_distance:.3f}",
            f"{report.frechet_distance_floor:.3f}",
            "lower; evaluator penultimate features",
        ),
        (f"precision (k={pr.k})", f"{pr.precision:.4f}", f"{prf.precision:.4f}", "realism"),
        (f"recall (k={pr.k})", f"{pr.recall:.4f}", f"{prf.recall:.4f}", "coverage"),
    ]
    drawn = ""
    unflatten = report.sampling.get("unflatten")
    if report.sampling["temperature"] != 1.0 or report.sampling["label_check"] or unflatten:
        drawn = f", temperature {report.sampling['temperature']:g}"
        drawn += ", label-checked" if report.sampling["label_check"] else ""
        drawn += f", unflattened ({unflatten['candidates']} candidates)" if unflatten else ""
    lines = [
        f"{report.samples} samples (seed {report.seed}{drawn}) vs the real test set; floor = as many real training images",
        f"{'metric':<20}{'generator':>12}{'real floor':>12}  note",
    ]
    lines += [f"{a:<20}{b:>12}{c:>12}  {d}" for a, b, c, d in rows]
    lines.append(
        "per-class fidelity: "
        + "  ".join(f"{name.split(' ')[0]}:{v:.3f}" for name, v in zip(classes, report.fidelity.per_class))
    )
    if pr.per_class_recall is not None and prf.per_class_recall is not None:
        lines.append(
            "per-class recall (generator/floor; share of the class's real test images inside the generated manifold): "
            + "  ".join(
                f"{name.split(' ')[0]}:{g:.2f}/{f:.2f}"
                for name, g, f in zip(classes, pr.per_class_recall, prf.per_class_recall)
            )
        )
    lines.append(
        f"memorization (pixel L2 to nearest of {mem.train_size} images, {report.memorization_reference}): "
        f"median samples {mem.sample_median:.2f} vs real test {mem.test_median:.2f} (ratio {mem.ratio:.2f}; "
        f"well below 1 means copying); near copies {mem.near_copy_share:.1%} (about 1% expected)"
    )
    return "\n".join(lines)
