"""ganaug: synthetic data augmentation with class-conditional DCGANs.

The subpackages follow the path a generated image takes, each importing only from those before it:

- :mod:`ganaug.data`: the real images (MNIST, Fashion-MNIST, digits, ImageFolder), labels, classical augmentations;
- :mod:`ganaug.models`: the generator and the discriminator;
- :mod:`ganaug.classify`: the small classifiers (the evaluator, the fixed CAS classifier, the real manifold);
- :mod:`ganaug.train`: the GAN step, the Trainer, run folders, checkpoints, presets, ONNX export;
- :mod:`ganaug.sample`: drawing images from a trained generator (ONNX Runtime, latents, the label check);
- :mod:`ganaug.feed`: handing them to a training loop (``GeneratedDataset``, ``augment``, ``SyntheticMix``);
- :mod:`ganaug.eval`: scoring them (metrics, the generator report, CAS);
- :mod:`ganaug.downstream` (the benchmark) and :mod:`ganaug.cli` (the commands) on top.

The modules directly in ``ganaug/`` (config, errors, outputs, threads, viz, hashing) are the shared ground every
group may use. The public names below load lazily, so ``import ganaug`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "ganaug.config",
    "TrainConfig": "ganaug.config",
    "Generator": "ganaug.models.dcgan",
    "Discriminator": "ganaug.models.dcgan",
    "Trainer": "ganaug.train.trainer",
    "load_generator": "ganaug.train.checkpoint",
    "load_training_data": "ganaug.data.sources",
    "load_source": "ganaug.data.sources",
    "export_onnx": "ganaug.train.export",
    "OnnxGenerator": "ganaug.sample.runtime",
    "GeneratedDataset": "ganaug.feed.dataset",
    "SourceDataset": "ganaug.feed.dataset",
    "augment": "ganaug.feed.mixing",
    "draw_synthetic": "ganaug.feed.mixing",
    "Sampling": "ganaug.sample.resample",
    "LabelCheck": "ganaug.sample.resample",
    "Manifold": "ganaug.classify.manifold",
    "Unflatten": "ganaug.sample.unflatten",
    "AugmentedDataset": "ganaug.feed.mixing",
    "SyntheticMix": "ganaug.feed.batchmix",
    "InputError": "ganaug.errors",
    "TrainingDiverged": "ganaug.errors",
    "GanaugError": "ganaug.errors",
    "Evaluator": "ganaug.classify.evaluator",
    "train_evaluator": "ganaug.classify.evaluator",
    "load_evaluator": "ganaug.classify.evaluator",
    "evaluate_generator": "ganaug.eval.report",
    "frechet_distance": "ganaug.eval.metrics",
    "precision_recall": "ganaug.eval.metrics",
    "class_fidelity": "ganaug.eval.metrics",
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
