"""Shared CLI plumbing: library errors and full disks become one-line click errors with the right exit code."""

from __future__ import annotations

import click

from ganaug import __version__
from ganaug.errors import GanaugError, InputError, TrainingDiverged
from ganaug.outputs import disk_full_error


class InputProblem(click.ClickException):
    """Bad input: printed as ``Error: <message>``, exit code 2 (click's usage-error code)."""

    exit_code = 2


class GanaugGroup(click.Group):
    """A group whose commands turn ganaug's own exceptions into click errors."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (InputError, TrainingDiverged) as e:
            raise InputProblem(str(e)) from None
        except GanaugError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a full disk anywhere a write is not already reported: one line, not a traceback
            error = disk_full_error(e, e.filename)
            if error is None:
                raise
            raise click.ClickException(str(error)) from None


def parse_int_list(value: str | None, *, name: str) -> list[int] | None:
    """``"3,5,8"`` -> ``[3, 5, 8]``; ``None`` stays ``None``."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers such as 3,5,8, got {value!r}", param_hint=name
        ) from None


@click.group(cls=GanaugGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganaug")
def main() -> None:
    """Synthetic data augmentation with class-conditional DCGANs."""
    from ganaug.threads import prepare_environment

    prepare_environment()  # before any command imports torch: idle OpenMP threads spin briefly, then sleep


def sampling_options(command):
    """``--temperature``, ``--label-check`` and ``--unflatten``: how latents are drawn
    (:class:`ganaug.resample.Sampling`)."""
    from pathlib import Path

    command = click.option(
        "--unflatten",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="For a run trained with --flatten-density A (MODEL must be its folder): draw each image as this many "
        "candidates and keep one with probability proportional to d^-A (d: distance to the 5th nearest training "
        "image of its class), so samples follow the real density again while G keeps the rare styles it learned. "
        "Reads the run's training images (--data-root if they moved); 0 = off. Image i still depends only on "
        "(model, seed, i).",
    )(command)
    command = click.option(
        "--label-check",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="An evaluator folder (`ganaug evaluator train --seed 1`, trained on the generator's training split): "
        "an image it assigns to another class (or, when the folder holds a manifold, that lies off its class's "
        "real manifold) is drawn again from a fresh latent, up to 8 tries, else the try it liked best is kept. "
        "Image i still depends only on (model, seed, i).",
    )(command)
    return click.option(
        "--temperature",
        type=click.FloatRange(min=0, min_open=True),
        default=1.0,
        show_default=True,
        help="Latents are temperature x N(0, I): above 1 more variety (and more off-class images), below 1 less.",
    )(command)
