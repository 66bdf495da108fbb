"""The run's own label check: a small classifier that ``ganaug train`` fits on the run's training images when its
preset's sampling asks for one, and writes beside the generator as ``label_check.onnx``.

Sampling reads it back (:func:`ganaug.sample.resample.model_sampling`): an image the check assigns to another class
than the one it was generated for is drawn again (:class:`ganaug.sample.resample.LabelCheck`). It is a ganaug
evaluator network (:class:`ganaug.classify.evaluator.EvaluatorNet`) of width :data:`CHECK_WIDTH`, exported to ONNX
with its BatchNorm folded by ONNX Runtime, so that checking every image costs a fraction of generating it.

File contract: one input ``images`` float32 [N, 1, 28, 28] in [-1, 1] (the generator's output), one output
``logits`` float32 [N, num_classes]; ``ganaug.``-prefixed metadata: ``kind`` = :data:`CHECK_KIND`, ``schema``,
``classes``, ``training`` (settings and seed), ``data`` (the run's data identity), ``train_accuracy``,
``ganaug_version``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug import __version__
from ganaug.classify.evaluator import Evaluator, EvaluatorConfig, EvaluatorTraining, train_evaluator
from ganaug.errors import InputError
from ganaug.outputs import CHECK_FILE
from ganaug.train.export import ExportParityError

#: ``ganaug.kind`` of a check file.
CHECK_KIND = "ganaug-label-check"
CHECK_SCHEMA = 1
#: Channels of the check's 28x28 stage. Width 8 keeps the check cheap next to the generator (about a seventh of
#: its arithmetic); its agreement with the committed evaluator is measured in benchmarks/results/mnist-preset.
CHECK_WIDTH = 8
#: Passes over the run's training images.
CHECK_EPOCHS = 2
#: The check's seed is the run's seed plus this, so that it is not the run's own stream.
_SEED_OFFSET = 0x5EED


def check_training(seed: int, num_classes: int) -> EvaluatorTraining:
    """How a run's check is trained (fixed: a run records only its seed)."""
    model = EvaluatorConfig(num_classes=num_classes, width=CHECK_WIDTH)
    return EvaluatorTraining(epochs=CHECK_EPOCHS, seed=(int(seed) + _SEED_OFFSET) % 2**63, model=model)


def train_label_check(
    images: torch.Tensor, labels: torch.Tensor, classes: list[str], *, seed: int, data_identity: dict[str, Any]
) -> Evaluator:
    """Fit the check on a run's training images (float32 [N, 1, 28, 28] in [-1, 1], labels int64 [N]).

    Trained on the CPU whatever the run's device (same weights on every machine for the same data and seed, up to
    the CPU's float rounding). The returned evaluator's ``meta`` holds its accuracy on those training images.
    """
    pixels = images.detach().cpu().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)[:, 0]
    labels = labels.detach().cpu().to(torch.int64)
    settings = check_training(seed, len(classes))
    check = train_evaluator(pixels, labels, classes=list(classes), settings=settings, data_identity=data_identity)
    check.meta["train_accuracy"] = check.accuracy(images.detach().cpu().float(), labels)
    return check


def export_label_check(check: Evaluator, out: str | Path) -> Path:
    """Write ``check`` as an ONNX check file (see the module docstring) at ``out``, replacing it whole.

    Raises:
        ExportParityError: ONNX Runtime's logits differ from PyTorch's by more than 1e-3 on a test batch
            (nothing is written).
    """
    import warnings

    import onnx
    import onnxruntime as ort

    from ganaug.outputs import write_bytes_whole
    from ganaug.threads import ort_session_options

    net = check.net.cpu().eval()
    example = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=r".*axis name: batch will not be used")
        program = torch.onnx.export(
            net,
            (example,),
            input_names=["images"],
            output_names=["logits"],
            dynamo=True,
            dynamic_shapes=({0: "batch"},),
            external_data=False,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    metadata = {
        "kind": CHECK_KIND,
        "schema": CHECK_SCHEMA,
        "classes": list(check.classes),
        "config": check.meta.get("training", {}).get("model") or {"width": check.config.width},
        "training": check.meta.get("training"),
        "data": check.meta.get("data"),
        "train_accuracy": check.meta.get("train_accuracy"),
        "ganaug_version": __version__,
    }
    for key, value in metadata.items():
        proto.metadata_props.add(key=f"ganaug.{key}", value=json.dumps(value))
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (64, 1, 28, 28)).astype(np.float32))
    with torch.no_grad():
        want = net(x).numpy()
    got = ort.InferenceSession(data, ort_session_options(None), providers=["CPUExecutionProvider"]).run(
        None, {"images": x.numpy()}
    )[0]
    err = float(np.abs(got - want).max())
    if err > 1e-3:
        raise ExportParityError(
            f"the label check's ONNX logits differ from PyTorch's by {err:.3g}; nothing was written"
        )
    out = Path(out)
    write_bytes_whole(out, data)  # whole or not at all; a full disk is one line
    return out


def write_run_check(
    run_dir: str | Path, data: Any, *, seed: int, name: str = CHECK_FILE, progress: bool = False
) -> Path:
    """Train a run's check on its training images and write it as ``run_dir/name`` (see :func:`train_label_check`,
    :func:`export_label_check`). ``data``: the run's training data (``images`` float32 [N, 1, 28, 28] in [-1, 1],
    ``labels`` int64 [N], ``classes``, ``identity``); ``progress`` says on stderr what is being trained."""
    if len(data.labels) == 0:
        raise InputError("a label check needs training images")
    if progress:
        print(
            f"training its label check ({name}): {CHECK_EPOCHS} passes over the {len(data.labels):,} images",
            file=sys.stderr,
        )
    check = train_label_check(data.images, data.labels, data.classes, seed=seed, data_identity=data.identity)
    return export_label_check(check, Path(run_dir) / name)
