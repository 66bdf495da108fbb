"""ganaug: synthetic data augmentation with class-conditional DCGANs.

Train (:mod:`ganaug.training`), export to ONNX (:mod:`ganaug.export`), generate fast with ONNX Runtime
(:mod:`ganaug.runtime`) and hand the images to training code as a torchvision dataset
(:mod:`ganaug.dataset`). Heavy modules load lazily, so ``import ganaug`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "ganaug.config",
    "TrainConfig": "ganaug.config",
    "Generator": "ganaug.models",
    "Discriminator": "ganaug.models",
    "Trainer": "ganaug.training",
    "load_generator": "ganaug.checkpoint",
    "load_training_data": "ganaug.data",
    "load_source": "ganaug.data",
    "export_onnx": "ganaug.export",
    "OnnxGenerator": "ganaug.runtime",
    "GeneratedDataset": "ganaug.dataset",
    "SourceDataset": "ganaug.dataset",
    "augment": "ganaug.mixing",
    "draw_synthetic": "ganaug.mixing",
    "Sampling": "ganaug.resample",
    "LabelCheck": "ganaug.resample",
    "Manifold": "ganaug.resample",
    "Unflatten": "ganaug.unflatten",
    "AugmentedDataset": "ganaug.mixing",
    "SyntheticMix": "ganaug.batchmix",
    "InputError": "ganaug.errors",
    "TrainingDiverged": "ganaug.errors",
    "GanaugError": "ganaug.errors",
    "Evaluator": "ganaug.evaluator",
    "train_evaluator": "ganaug.evaluator",
    "load_evaluator": "ganaug.evaluator",
    "evaluate_generator": "ganaug.metrics",
    "frechet_distance": "ganaug.metrics",
    "precision_recall": "ganaug.metrics",
    "class_fidelity": "ganaug.metrics",
}

__all__ = ["__version__"]
__all__ += list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name == "LabelFilter":
        raise AttributeError(
            "ganaug.LabelFilter is now ganaug.LabelCheck(classifier, input_range=..., normalize=...), passed as label_check="
        )
    raise AttributeError(f"module 'ganaug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
