"""Shared CLI plumbing: library errors and full disks become one-line click errors with the right exit code."""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path

import click

from ganaug import __version__
from ganaug.errors import GanaugError, InputError, TrainingDiverged
from ganaug.outputs import disk_full_error


class InputProblem(click.ClickException):
    """Bad input: printed as ``Error: <message>``, exit code 2 (click's usage-error code)."""

    exit_code = 2


_PATH_ERRORS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY}
)
"""What an ``OSError`` naming a file says about that path (missing, forbidden, read-only, of the wrong type):
reported in one line with the path when no check before the work caught it."""
TERMINATED_EXIT = 128 + signal.SIGTERM
"""Exit code after SIGTERM (143, as a shell reports a process the signal ended)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by :func:`_on_sigterm`: a KeyboardInterrupt, so every ``finally``,
    context manager and ``except KeyboardInterrupt`` that cleans up after Ctrl-C (temps, locks, half-made
    folders) runs for it too."""


def _on_sigterm(signum: int, frame: object) -> None:
    # A second SIGTERM while the first is cleaning up would cut the clean-up short: ignore it (SIGKILL still works).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _handle_sigterm(ctx: click.Context) -> None:
    """Turn SIGTERM into :class:`Terminated` for the command about to run; the previous handler comes back
    when it ends. Only the main thread may set handlers (elsewhere, SIGTERM keeps its default)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))


class GanaugGroup(click.Group):
    """A group whose commands turn ganaug's own exceptions into click errors."""

    def invoke(self, ctx: click.Context):
        if ctx.parent is None:
            _handle_sigterm(ctx)
        try:
            return super().invoke(ctx)
        except Terminated:  # what the command held is released and its temps are gone by now
            click.echo("Aborted: terminated by SIGTERM", err=True)
            ctx.exit(TERMINATED_EXIT)
        except (InputError, TrainingDiverged) as e:
            raise InputProblem(str(e)) from None
        except GanaugError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a full disk anywhere a write is not already reported: one line, not a traceback
            error = disk_full_error(e, e.filename)
            if error is not None:
                raise click.ClickException(str(error)) from None
            if e.filename is not None and e.errno in _PATH_ERRORS:  # a path no check caught (/proc/sub/x): one line
                where = f"{e.filename} -> {e.filename2}" if e.filename2 is not None else e.filename
                raise click.ClickException(f"cannot use {where}: {e.strerror}; choose another path") from None
            raise


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
    (:class:`ganaug.sample.resample.Sampling`)."""
    command = click.option(
        "--unflatten",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="For a run trained with density weighting (flatten_density A: the mnist preset; MODEL must be its "
        "folder): draw each image as this many candidates and keep one with probability proportional to d^-A (d: distance to the 5th nearest training "
        "image of its class), so samples follow the real density again while G keeps the rare styles it learned. "
        "Reads the run's training images (--data-root if they moved); 0 = off. Image i still depends only on "
        "(model, seed, i).",
    )(command)
    command = click.option(
        "--plain",
        is_flag=True,
        help="Sample plainly: temperature 1 and no label check unless given, instead of the model's default "
        "sampling (its preset's; the mnist preset's label check costs about a third of plain sampling's speed).",
    )(command)
    command = click.option(
        "--label-check",
        type=click.Path(path_type=Path),
        default=None,
        help="An evaluator folder (`ganaug evaluator train --seed 1`, trained on the generator's training split) or "
        "a run's label_check.onnx: an image it assigns to another class (or, when the folder holds a manifold, that "
        "lies off its class's real manifold) is drawn again from a fresh latent, up to 8 tries, else the try it "
        "liked best is kept. Image i still depends only on (model, seed, i)  [default: the model's own, when its "
        "preset has one].",
    )(command)
    return click.option(
        "--temperature",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Latents are temperature x N(0, I): above 1 more variety (and more off-class images), below 1 less  "
        "[default: the model's, from its preset (1: plain)].",
    )(command)


def cli_sampling(generator, temperature: float | None, label_check: Path | None, plain: bool, threads=None):
    """The :class:`~ganaug.sample.resample.Sampling` of ``--temperature``, ``--label-check`` and ``--plain`` for a
    model opened from a file or run folder (``generator.sampling``, ``generator.path``): what is given, else the
    model's default sampling (:func:`ganaug.sample.resample.model_sampling`)."""
    from ganaug.sample.resample import model_sampling

    return model_sampling(
        getattr(generator, "sampling", None),
        generator.path,
        sampling="plain" if plain else "model",
        temperature=temperature,
        label_check=label_check,
        threads=threads,
    )
