"""``ganaug export``, ``generate``, ``interpolate`` and ``info``: thin wrappers over export and runtime.

Outputs are written under a hidden temporary name beside the target and renamed at the end, so an
interrupted command leaves no half-written file or folder (a killed run's temporaries are removed by the next
run of the same command). An existing target is replaced only with ``--overwrite`` and only if ganaug wrote
it (:func:`ganaug.outputs.check_replaceable`); a second process writing the same target fails at once.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path

import click

from ganaug import __version__
from ganaug.cli._common import cli_sampling, main, sampling_options
from ganaug.outputs import IMAGES_MANIFEST, check_targets, make_folders, remove_made_folders, replace_path
from ganaug.sample.latents import MAX_SEED

FORMATS = ("png", "npz", "pt")
PROVIDER_CHOICE = click.Choice(["auto", "cpu", "cuda", "tensorrt"])
SEED = click.IntRange(min=0, max=MAX_SEED)


@main.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ONNX file to write  [default: RUN_DIR/generator.onnx, or generator_fp16.onnx with --fp16].",
)
@click.option("--fp16", is_flag=True, help="float16 weights and compute (for GPU providers; benchmark before use).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out if it is an ONNX file ganaug wrote.")
@click.option(
    "--center-of-mass",
    is_flag=True,
    help="Move each generated image by whole pixels so its centre of mass is at the centre, as MNIST placed its "
    "digits (also for a generator trained without it).",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads  [default: the idle CPUs]."
)
def export(
    source: Path, out: Path | None, fp16: bool, overwrite: bool, center_of_mass: bool, threads: int | None
) -> None:
    """Export the EMA generator of a run folder or checkpoint to one verified ONNX file.

    The file is checked with onnx.checker and against PyTorch at batch sizes 1, 7, 256 and 4096; if they
    differ by more than 1e-4 (fp32) nothing is written. An existing --out is replaced only with --overwrite
    and only if it is a ganaug ONNX file (never the run's checkpoint.pt or any other file); the default
    RUN_DIR/generator.onnx is the run's own and is refreshed.
    """
    import onnx

    from ganaug.threads import check_threads, configure_torch
    from ganaug.train.export import export_onnx, read_metadata

    configure_torch(check_threads(threads, name="--threads"))

    path = export_onnx(source, out, fp16=fp16, overwrite=overwrite, center_of_mass=center_of_mass)
    parity = read_metadata(onnx.load(str(path), load_external_data=False))["parity"]
    worst = max(parity["max_abs_err"].values())
    click.echo(
        f"wrote {path} (max abs difference from PyTorch {worst:.2g} over batch sizes "
        f"{', '.join(parity['max_abs_err'])}; tolerance {parity['tolerance']:g})"
    )


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--per-class", type=click.IntRange(min=1), required=True, help="Images to generate per class.")
@click.option(
    "--classes",
    "select",
    default=None,
    help="Comma-separated classes to generate, by index or name (e.g. 3,5,8)  [default: all].",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Image i depends only on (model, seed, i).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="A folder (png) or a file (npz, pt); a manifest JSON is written with it.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="png: ImageFolder tree <out>/<class>/<i>.png; npz/pt: one file with uint8 `images` "
    "[N, 28, 28] and int64 `labels`  [default: from the suffix of --out, else png].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Images per ONNX Runtime call (speed only; never changes the images).",
)
@click.option("--provider", type=PROVIDER_CHOICE, default="auto", show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="ONNX Runtime threads  [default: the idle CPUs]."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out that ganaug wrote (never other files).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --unflatten: where the run's training data is now  [default: the folder it recorded].",
)
@sampling_options
def generate(
    model: Path,
    per_class: int,
    select: str | None,
    seed: int,
    temperature: float,
    label_check: Path | None,
    plain: bool,
    unflatten: int,
    data_root: Path | None,
    out: Path,
    fmt: str | None,
    batch_size: int,
    provider: str,
    threads: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Generate labelled images with an exported generator (a .onnx file or a run folder).

    Writes --per-class images of each class as an ImageFolder tree (--format png, with manifest.json
    inside) or one .npz/.pt file (with <name>.manifest.json beside it). The manifest records the model's
    sha256, the seed, the counts, the class folders and the ganaug version. Class names become safe,
    distinct folder names (e.g. T-shirt/top -> T-shirt_top; see manifest "folders").
    """
    from ganaug.data.labels import class_folders
    from ganaug.outputs import clean_stale_temps, exclusive_lock, remove_path, reporting_disk_full, temp_path
    from ganaug.sample.runtime import OnnxGenerator, warn_uncorrected
    from ganaug.sample.unflatten import check_unflatten_room, with_unflatten
    from ganaug.threads import check_threads, choose_threads

    threads = choose_threads(check_threads(threads, name="--threads"))  # first: refused before anything is read
    fmt = fmt or {".npz": "npz", ".pt": "pt"}.get(out.suffix, "png")
    manifest_path = out / IMAGES_MANIFEST if fmt == "png" else out.with_suffix(".manifest.json")
    targets = {out: "images" if fmt == "png" else fmt}
    if fmt != "png":
        targets[manifest_path] = "manifest"
    protect = [model]  # a run folder is read as a whole: nothing is written inside it
    if label_check is not None:
        protect.append(label_check)
    check_targets(targets, overwrite=overwrite, protect=protect)
    gen = OnnxGenerator(model, provider=provider, threads=threads)
    keys = None if select is None else [k.strip() for k in select.split(",") if k.strip()]
    labels = gen.labels(per_class, select=keys)
    _check_room(len(labels), gen.image_shape, fmt=fmt, out=out)
    # Before the run's training images are read: K candidates of every image of a batch are held at once.
    check_unflatten_room(unflatten, batch=min(batch_size, len(labels)), image_shape=gen.image_shape)
    sampling = with_unflatten(
        cli_sampling(gen, temperature, label_check, plain, threads),
        unflatten,
        run=model,
        data_root=data_root,
    )
    sampling.check_classes(gen.classes)
    with warnings.catch_warnings(record=True) as said:  # one line on stderr, not Python's two
        warnings.simplefilter("always")
        warn_uncorrected(gen, unflatten=sampling.unflatten is not None)
    for w in said:
        click.echo(f"Warning: {w.message}", err=True)
    chosen = list(dict.fromkeys(labels.tolist()))
    all_folders = class_folders(gen.classes)
    folders = {gen.classes[c]: all_folders[c] for c in chosen}
    label_folders = {c: all_folders[c] for c in chosen}

    made = make_folders(out.parent.absolute(), out, "--out")
    finished = False
    try:
        with exclusive_lock(out, what="--out"):
            for target in targets:
                clean_stale_temps(target)
            check_targets(targets, overwrite=overwrite, protect=protect)  # again, now that we hold the lock
            tmp, tmp_manifest = temp_path(out), temp_path(manifest_path)
            try:
                with reporting_disk_full(out, temp=tmp):
                    seconds = _generate_into(
                        gen, tmp, tmp_manifest, fmt=fmt, labels=labels, seed=seed, chosen=chosen,
                        folders=folders, label_folders=label_folders, batch_size=batch_size, quiet=quiet,
                        sampling=sampling,
                    )  # fmt: skip
                if fmt != "png":
                    replace_path(tmp_manifest, manifest_path)
                replace_path(tmp, out)
                finished = True
            finally:
                for leftover in (tmp, tmp_manifest):
                    remove_path(leftover)
    finally:
        if not finished:
            remove_made_folders(made, out.parent.absolute())
    click.echo(
        f"wrote {len(labels)} images ({len(chosen)} classes x {per_class}) to {out} in {seconds:.1f} s "
        f"({len(labels) / max(seconds, 1e-9):.0f} images/s, {gen.providers[0]}){_drawn(sampling)}"
    )


def _drawn(sampling) -> str:
    """How the images were drawn, for the closing line (nothing for plain sampling)."""
    if sampling.plain:
        return ""
    parts = [f"temperature {sampling.temperature:g}"] if sampling.temperature != 1.0 else []
    if sampling.check is not None:
        path = getattr(sampling.check.classifier, "path", None)
        parts.append("label check" + (f" {path.name}" if path is not None else ""))
    if sampling.unflatten is not None:
        parts.append(f"unflatten {sampling.unflatten.candidates}")
    return "; sampled with " + ", ".join(parts) + " (--plain for plain sampling)"


def _check_room(n: int, image_shape: tuple[int, ...], *, fmt: str, out: Path) -> None:
    """Refuse up front what cannot fit: npz/pt hold every image in memory (twice, while saving); a png tree
    takes at least one file-system block (4 KiB) per image."""
    from ganaug.outputs import check_room

    pixels = math.prod(image_shape[1:])
    what = f"generating {n:,} images as {fmt}"
    if fmt == "png":
        check_room(what=what, disk=n * 4096, disk_path=out.parent)
    else:
        check_room(what=what, memory=2 * n * (pixels + 8), disk=n * (pixels + 8), disk_path=out.parent)


def _generate_into(
    gen, tmp: Path, tmp_manifest: Path, *, fmt: str, labels, seed: int, chosen: list[int], folders: dict[str, str],
    label_folders: dict[int, str], batch_size: int, quiet: bool, sampling,
) -> float:  # fmt: skip
    """Write the images (and manifest) under the temporary names; return the seconds it took."""
    import numpy as np
    from tqdm.auto import tqdm

    from ganaug.hashing import file_sha256
    from ganaug.outputs import mark_dir

    start_time = time.perf_counter()
    bar = tqdm(total=len(labels), unit="img", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    batches = []
    done = 0
    if fmt == "png":
        tmp.mkdir()
        mark_dir(tmp, "images")
    for images in gen.iter_batches(labels, seed=seed, batch_size=batch_size, sampling=sampling):
        if fmt == "png":
            _write_pngs(tmp, images, labels[done : done + len(images)], start=done, folders=label_folders)
        else:
            batches.append(images)
        done += len(images)
        bar.update(len(images))
    bar.close()
    seconds = time.perf_counter() - start_time
    manifest = {
        "ganaug_version": __version__,
        "model": str(gen.path),
        "model_sha256": file_sha256(gen.path),
        "seed": seed,
        "start": 0,
        "sampling": sampling.identity(),
        "format": fmt,
        "counts": {gen.classes[c]: int((labels == c).sum()) for c in chosen},
        "labels": {gen.classes[c]: c for c in chosen},
        "classes": gen.classes,
        "image": {"dtype": "uint8", "shape": list(gen.image_shape[1:]), "range": [0, 255]},
    }
    if fmt == "png":
        manifest["folders"] = folders
        (tmp / IMAGES_MANIFEST).write_text(json.dumps(manifest, indent=2))
    else:
        images = np.concatenate(batches) if batches else np.zeros((0, *gen.image_shape[1:]), np.uint8)
        _write_array_file(tmp, fmt, images, labels, gen.classes)
        tmp_manifest.write_text(json.dumps(manifest, indent=2))
    return seconds


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--from", "from_class", required=True, help="Start class (index or name).")
@click.option("--to", "to_class", required=True, help="End class (index or name).")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True, help="Frames, ends included.")
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="The walk goes from sample 0 to sample 1 of this seed.",
)
@click.option(
    "--mode",
    type=click.Choice(["slerp", "lerp"]),
    default="slerp",
    show_default=True,
    help="Interpolation of the latent z (the label embedding is always linear).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG strip to write.")
@click.option("--gif", is_flag=True, help="Also write an animated GIF (there and back) beside --out.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads  [default: the idle CPUs]."
)
def interpolate(
    model: Path,
    from_class: str,
    to_class: str,
    steps: int,
    seed: int,
    mode: str,
    out: Path,
    gif: bool,
    overwrite: bool,
    threads: int | None,
) -> None:
    """Walk the latent and the label embedding from one class to another (e.g. a 4 turning into an 8).

    The blended label embedding is not an integer label, so this uses the PyTorch generator in the run's
    checkpoint: MODEL is a run folder, its checkpoint.pt, or a generator.onnx inside a run folder.
    """
    from PIL import Image, PngImagePlugin

    from ganaug.data.labels import to_uint8
    from ganaug.outputs import (
        PNG_STAMP_KEY,
        clean_stale_temps,
        exclusive_lock,
        remove_path,
        reporting_disk_full,
        stamp_info,
        temp_path,
    )
    from ganaug.sample.runtime import interpolate as walk
    from ganaug.threads import check_threads, configure_torch

    configure_torch(check_threads(threads, name="--threads"))
    if out.suffix.lower() != ".png":
        raise click.BadParameter(f"expected a .png file name, got {out.name}", param_hint="--out")
    gif_path = out.with_suffix(".gif")
    targets = {out: "png", **({gif_path: "gif"} if gif else {})}
    checkpoint = (model if model.is_dir() else model.parent) / "checkpoint.pt" if model.suffix != ".pt" else model
    protect = [model, checkpoint.parent]  # the run folder the checkpoint lives in, as a whole
    check_targets(targets, overwrite=overwrite, protect=protect)
    _check_walk_room(steps, run=checkpoint.parent, gif=gif)
    images, (a, b) = walk(model, from_class=from_class, to_class=to_class, steps=steps, seed=seed, mode=mode)
    made = make_folders(out.parent.absolute(), out, "--out")
    finished = False
    try:
        with exclusive_lock(out, what="--out"):
            for target in targets:
                clean_stale_temps(target)
            check_targets(targets, overwrite=overwrite, protect=protect)
            tmp_png, tmp_gif = temp_path(out), temp_path(gif_path)
            try:
                with reporting_disk_full(out, temp=tmp_png):
                    info = PngImagePlugin.PngInfo()
                    for key, value in stamp_info().items():
                        info.add_text(key, value)
                    _grid_image(images, nrow=steps).save(tmp_png, format="PNG", pnginfo=info)
                if gif:
                    with reporting_disk_full(gif_path, temp=tmp_gif):
                        frames = [
                            Image.fromarray(f).resize((112, 112), Image.NEAREST) for f in to_uint8(images.numpy())
                        ]
                        frames += frames[-2:0:-1]  # there and back
                        comment = f"{PNG_STAMP_KEY} {__version__}".encode()
                        frames[0].save(
                            tmp_gif, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0,
                            comment=comment,
                        )  # fmt: skip
                    replace_path(tmp_gif, gif_path)
                replace_path(tmp_png, out)
                finished = True
            finally:
                remove_path(tmp_png)
                remove_path(tmp_gif)
    finally:
        if not finished:
            remove_made_folders(made, out.parent.absolute())
    click.echo(f"wrote {out}" + (f" and {gif_path}" if gif else "") + f": {steps} frames from {a!r} to {b!r} ({mode})")


def _check_walk_room(steps: int, *, run: Path, gif: bool) -> None:
    """Refuse up front a walk whose frames cannot fit in memory (``interpolate --steps``).

    All frames go through the generator at once and the strip is drawn whole, so the peak grows with ``steps``:
    per frame the latent walk (float64), the largest two of the generator's activations, the frame, and then
    the strip (:func:`_grid_image`: a float RGB copy, its scaled copy, the 8-bit strip and PIL's copy) or the
    GIF's 112 x 112 frames. The generator's widths are read from the run's config.json (defaults if unreadable).
    """
    from ganaug.config import ModelConfig
    from ganaug.models.dcgan import IMAGE_SHAPE
    from ganaug.outputs import check_room

    z_dim, embed_dim, width = ModelConfig.z_dim, ModelConfig.embed_dim, ModelConfig.g_width
    try:
        model = json.loads((run / "config.json").read_text())["config"]["model"]
        z_dim, embed_dim, width = (max(1, int(model[k])) for k in ("z_dim", "embed_dim", "g_width"))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    _, height, breadth = IMAGE_SHAPE
    pixels = height * breadth
    frame = 4 * pixels  # float32 [1, H, W], held to the end
    walk = 5 * 8 * z_dim + 4 * (z_dim + 3 * embed_dim) + 2 * 4 * max(4 * width * 49, width * 196, pixels)
    cell = 3 * (height + 2) * (breadth + 2)  # one frame's RGB cell of the strip
    strip = 2 * 4 * 3 * pixels + 2 * 4 * cell + cell + cell // 3 * 4  # make_grid's RGB copy and clone, ..., PIL
    animation = 2 * pixels + 2 * 112 * 112 if gif else 0
    memory = steps * (frame + max(walk, strip, animation))
    check_room(
        what=f"--steps {steps:,} (every frame generated and drawn at once)", memory=memory, fix="ask for fewer --steps"
    )


@main.command()
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(model: Path, as_json: bool) -> None:
    """Show an exported generator's metadata, inputs and outputs, and the providers available here."""
    import onnxruntime as ort

    from ganaug.hashing import file_sha256
    from ganaug.sample.runtime import OnnxGenerator, gpu_present

    gen = OnnxGenerator(model, provider="cpu")
    report = {
        "path": str(gen.path),
        "sha256": file_sha256(gen.path),
        "size_bytes": gen.path.stat().st_size,
        "metadata": gen.metadata,
        "inputs": gen.inputs,
        "outputs": gen.outputs,
        "onnxruntime": ort.__version__,
        "providers_available": ort.get_available_providers(),
        "gpu_present": gpu_present(),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key in ("path", "sha256", "size_bytes"):
        click.echo(f"{key}: {report[key]}")
    click.echo("metadata:")
    for key, value in gen.metadata.items():
        click.echo(f"  {key}: {json.dumps(value)}")
    for kind in ("inputs", "outputs"):
        click.echo(f"{kind}:")
        for name, spec in report[kind].items():
            click.echo(f"  {name}: {spec['dtype']} {spec['shape']}")
    gpu = "an NVIDIA GPU is visible" if report["gpu_present"] else "no NVIDIA GPU visible: auto runs on the CPU"
    click.echo(f"onnxruntime {ort.__version__} providers: {', '.join(report['providers_available'])} ({gpu})")


def _grid_image(images, *, nrow: int):
    """float [N, 1, H, W] in [-1, 1] as one PIL grid, exactly as :func:`ganaug.viz.save_grid` draws it."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images.float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return Image.fromarray(grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy())


def _write_pngs(root: Path, images, labels, *, start: int, folders: dict[int, str]) -> None:
    from PIL import Image

    for k, (image, label) in enumerate(zip(images, labels.tolist())):
        folder = root / folders[label]  # class_folders: one path component, never "." or ".."
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{start + k:07d}.png")  # outputs.IMAGE_FILE


def _write_array_file(path: Path, fmt: str, images, labels, classes: list[str]) -> None:
    import numpy as np

    if fmt == "npz":
        with open(path, "wb") as f:  # a file object: np.savez would otherwise append .npz to the temp name
            np.savez(f, images=images, labels=labels, classes=np.array(classes))
    else:
        import torch

        torch.save({"images": torch.from_numpy(images), "labels": torch.from_numpy(labels), "classes": classes}, path)
