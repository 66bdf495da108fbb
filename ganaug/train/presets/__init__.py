"""Presets: named, versioned training recipes shipped as small JSON files, and the one function that turns a
preset, a budget and a user's options into a :class:`~ganaug.config.TrainConfig`.

``ganaug train`` and Python resolve alike (:func:`resolve`)::

    from ganaug.train.presets import resolve
    from ganaug.train.trainer import Trainer

    resolved = resolve("mnist", data_root="DATA", seed=1)   # the dataset and budget choose the preset
    Trainer.new(resolved.config, "runs/mnist").fit()

A preset file (``ganaug/train/presets/<name>.json``, or a user's own file given as ``config=``/``--config``) holds:

- ``preset``, ``version``, ``about``: its name, its version (recorded in every run) and one line of what it is;
- ``train``: :class:`~ganaug.config.TrainConfig` fields (``model`` a mapping of
  :class:`~ganaug.config.ModelConfig` fields); ``"augment_real": "dataset"`` means the dataset's classical
  augmentation (:func:`ganaug.data.augment_ops.classical_for`);
- ``steps`` (optional): the G-step budget. With ``steps_images`` and ``least_steps`` it scales with the training
  images ``n``: ``clamp(round(steps * n / steps_images), least_steps, steps)``, so the budget varies smoothly
  with ``per_class`` (no cliff); the epochs follow from it, batches are at most ``n`` images and ``saves`` (40
  unless given) grids and checkpoints are spread over the run;
- ``below_per_class`` (optional): the preset is chosen for ``per_class`` below this (``few-shot``);
- ``cpu_bf16`` (optional, ``"measure"``): on a CPU, bf16 autocast with channels-last tensors when a short
  measurement at start says they train faster (:func:`ganaug.train.hardware.cpu_bf16_pays`), fp32 otherwise;
- ``sampling``: how the run's images are drawn by default (``temperature``; recorded in the run);
- ``base`` (optional): another preset whose fields this one extends;
- ``reference``: where its figures and wall times come from.

Options the user gives win over the preset; without a preset the dataset and budget choose one
(:func:`choose`), and :attr:`Resolved.said` says which in one line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ganaug.config import (
    DEFAULT_SAVES,
    REMOVED_MODEL_KEYS,
    REMOVED_TRAIN_KEYS,
    RENAMED_TRAIN_KEYS,
    ModelConfig,
    TrainConfig,
    epochs_for_steps,
    sampling_problem,
)
from ganaug.errors import InputError

#: TrainConfig fields a preset may not set: they are the user's (where the data is, the seed) or the run's record.
USER_FIELDS = frozenset({"data_root", "download", "per_class", "seed", "preset", "unlabelled"})
#: Training images of the full training splits (the files' headers say so; checked when the data is read).
FULL_TRAIN_IMAGES = {"mnist": 60000, "fashion-mnist": 60000, "digits": 1347}


@dataclass(frozen=True)
class Preset:
    """A parsed preset file (see the module docstring for its keys)."""

    name: str
    version: int
    about: str
    train: dict[str, Any]
    steps: int | None = None
    steps_images: int | None = None
    least_steps: int | None = None
    saves: int = DEFAULT_SAVES
    below_per_class: int | None = None
    cpu_bf16: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def tag(self) -> str:
        """``name@version``, as runs record it."""
        return f"{self.name}@{self.version}"

    def budget(self, n_images: int) -> int | None:
        """G steps for ``n_images`` training images (``None``: the epochs are the preset's or the dataset's)."""
        if self.steps is None:
            return None
        if not self.steps_images:
            return self.steps
        scaled = round(self.steps * n_images / self.steps_images)
        return max(self.least_steps or 1, min(self.steps, scaled))


#: Keys a preset file may hold: the :class:`Preset` fields it spells (``name`` as ``preset``) and ``base``; anything
#: else is refused, so a typo never silently does nothing.
PRESET_KEYS = frozenset({f.name for f in dataclasses.fields(Preset)} - {"name", "source"} | {"preset", "base"})


@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve` decided: the config to train, the preset it came from and what was said about it."""

    config: TrainConfig
    preset: Preset
    said: str
    chosen: dict[str, Any]


def names() -> list[str]:
    """The presets shipped with ganaug."""
    folder = resources.files(__name__)
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load(name: str | None = None, *, path: str | Path | None = None) -> Preset:
    """The shipped preset ``name``, or a user's preset file at ``path`` (one of the two).

    Raises:
        InputError: an unknown name (the message lists the known ones), a missing or unreadable file, an
            unknown key, a value of the wrong type. One line.
    """
    if (name is None) == (path is None):
        raise InputError("give a preset name or a preset file, not both")
    if name is not None:
        if name not in names():
            raise InputError(f"unknown preset {name!r}; choose one of {', '.join(names())} or pass --config FILE")
        text, source = resources.files(__name__).joinpath(f"{name}.json").read_text(), f"ganaug:{name}"
    else:
        try:
            text, source = Path(path).read_text(), str(path)
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read the preset file {path} ({e.__class__.__name__}); give a JSON file") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source} is not valid JSON ({e}); fix it or give another --config") from None
    return _parse(doc, source)


def _parse(doc: Any, source: str) -> Preset:
    if not isinstance(doc, dict):
        raise InputError(f"{source} holds a JSON {type(doc).__name__}; a preset is an object with a 'train' mapping")
    unknown = sorted(set(doc) - PRESET_KEYS)
    if unknown:
        raise InputError(
            f"{source}: unknown preset key(s) {', '.join(unknown)}; known: {', '.join(sorted(PRESET_KEYS))}"
        )
    if "base" in doc:
        base_name = _typed(doc, "base", str, source)
        base = load(base_name) if base_name != doc.get("preset") else None
        if base is None:
            raise InputError(f"{source}: a preset cannot be its own base")
        merged = {**_as_doc(base), **{k: v for k, v in doc.items() if k not in ("base", "train", "sampling")}}
        merged["train"] = {**base.train, **_typed(doc, "train", dict, source, {})}
        if "model" in base.train and "model" in doc.get("train", {}):
            merged["train"]["model"] = {**base.train["model"], **doc["train"]["model"]}
        merged["sampling"] = {**base.sampling, **_typed(doc, "sampling", dict, source, {})}
        doc = merged
    name = _typed(doc, "preset", str, source, Path(source).stem)
    version = _typed(doc, "version", int, source, 1)
    train = dict(_typed(doc, "train", dict, source, {}))
    bad = sorted(set(train) & USER_FIELDS)
    if bad:
        raise InputError(f"{source}: {', '.join(bad)} belong to the user, not to a preset; remove them from 'train'")
    _check_train(train, source)
    sampling = dict(_typed(doc, "sampling", dict, source, {}))
    problem = sampling_problem(sampling)
    if problem:
        raise InputError(f"{source}: {problem}")
    cpu_bf16 = _typed(doc, "cpu_bf16", str, source, None)
    if cpu_bf16 not in (None, "measure", "off"):
        raise InputError(f'{source}: cpu_bf16 must be "measure" or "off", got {cpu_bf16!r}')
    counts = {k: _typed(doc, k, int, source, None) for k in ("steps", "steps_images", "least_steps", "below_per_class")}
    for key, value in counts.items():
        if value is not None and value < 1:
            raise InputError(f"{source}: {key} must be >= 1, got {value}")
    saves = _typed(doc, "saves", int, source, DEFAULT_SAVES)
    if saves < 1:
        raise InputError(f"{source}: saves must be >= 1, got {saves}")
    return Preset(
        name=name,
        version=version,
        about=_typed(doc, "about", str, source, ""),
        train=train,
        saves=saves,
        cpu_bf16=cpu_bf16,
        sampling=sampling,
        reference=_typed(doc, "reference", dict, source, {}),
        source=source,
        **counts,
    )


def _as_doc(p: Preset) -> dict[str, Any]:
    doc = {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.name not in ("name", "source")}
    return {"preset": p.name, **{k: v for k, v in doc.items() if v is not None}}


def _typed(doc: dict, key: str, kind: type, source: str, default: Any = ...) -> Any:
    if key not in doc or doc[key] is None:
        if default is ...:
            raise InputError(f"{source}: '{key}' is missing")
        return default
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(f"{source}: '{key}' must be a JSON {kind.__name__}, got {type(value).__name__} {value!r:.40}")
    return value


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
_MODEL_TYPES = {f.name: f.type for f in dataclasses.fields(ModelConfig)}


def _check_train(train: dict[str, Any], source: str) -> None:
    """Unknown TrainConfig/ModelConfig keys and values of the wrong JSON type, in one line each."""
    for key, value in train.items():
        if key == "model":
            if not isinstance(value, dict):
                raise InputError(f"{source}: train.model must be a mapping of ModelConfig fields")
            for mkey, mvalue in value.items():
                if mkey in REMOVED_MODEL_KEYS:
                    raise InputError(f"{source}: train.model.{mkey} is a lever ganaug no longer has; remove it")
                if mkey not in _MODEL_TYPES:
                    raise InputError(f"{source}: unknown model key {mkey!r}; known: {', '.join(sorted(_MODEL_TYPES))}")
                _check_value(f"train.model.{mkey}", mvalue, getattr(ModelConfig(), mkey), source)
            continue
        if key in RENAMED_TRAIN_KEYS:
            raise InputError(f"{source}: train.{key} is now train.{RENAMED_TRAIN_KEYS[key]}; rename it")
        if key in REMOVED_TRAIN_KEYS:
            raise InputError(f"{source}: train.{key} is a lever ganaug no longer has; remove it")
        if key not in _FIELD_TYPES:
            known = ", ".join(sorted(set(_FIELD_TYPES) - USER_FIELDS))
            raise InputError(f"{source}: unknown train key {key!r}; known: {known}")
        if key == "augment_real" and value == "dataset":
            continue
        default = getattr(TrainConfig(), key)
        _check_value(f"train.{key}", value, default, source)


def _check_value(where: str, value: Any, default: Any, source: str) -> None:
    """A JSON value of the same kind as the field's default (numbers for numbers, strings for strings...)."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool) or (where == "train.augment_real" and isinstance(value, str))
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (isinstance(value, int) or isinstance(default, float))
    elif isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise InputError(f"{source}: {where} must be like {default!r}, got {type(value).__name__} {value!r:.40}")


def choose(dataset: str, *, per_class: int | None = None, pool: bool = False) -> tuple[str, str]:
    """The preset the dataset and budget pick when none is named, and why (for the one line on stderr)."""
    few = load("few-shot")
    if pool:
        return "pool", "few labels and an unlabelled pool"
    if per_class is not None and few.below_per_class and per_class < few.below_per_class:
        return "few-shot", f"--real-per-class {per_class} is below {few.below_per_class}"
    # The boundary, said so that it cannot be read as this run's budget: "MNIST, 1000 a class; the few-shot preset
    # below --real-per-class 200".
    budget = f", {per_class} a class" if per_class is not None else ""
    below = f"; the few-shot preset below --real-per-class {few.below_per_class}" if few.below_per_class else ""
    if dataset == "digits":
        return "digits", f"the embedded digits{budget}{below}"
    if dataset == "mnist":
        return "mnist", f"MNIST{budget}{below}"
    name = "Fashion-MNIST" if dataset == "fashion-mnist" else "an image folder"
    return "fashion-mnist", f"{name}{budget}{below}"


def n_train_images(dataset: str, data_root: str | Path | None, per_class: int | None) -> int:
    """Training images a run will see (before a pseudo-labelled pool joins): ``per_class`` times the classes, or
    the whole training split (an image folder's files are counted, not read)."""
    from ganaug.data.sources import class_count

    if per_class is not None:
        return per_class * class_count(dataset, data_root)
    if dataset in ("mnist", "fashion-mnist") and data_root is not None:
        from ganaug.data.sources import check_idx_file

        labels = (
            Path(data_root) / ("MNIST" if dataset == "mnist" else "FashionMNIST") / "raw" / "train-labels-idx1-ubyte"
        )
        if labels.is_file():  # a user's own subset in the idx format counts as what it holds
            try:
                return check_idx_file(labels, "labels")
            except InputError:
                pass  # reported when the data is read, with the file's name
    if dataset in FULL_TRAIN_IMAGES:
        return FULL_TRAIN_IMAGES[dataset]
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from ganaug.data.sources import _root, imagefolder_split

    folder = imagefolder_split(_root(dataset, data_root), "train")
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())


def resolve(
    dataset: str | None = None,
    *,
    preset: str | None = None,
    config: str | Path | None = None,
    per_class: int | None = None,
    data_root: str | Path | None = None,
    cpu_bf16: Callable[[ModelConfig, int], bool] | bool | None = None,
    **options: Any,
) -> Resolved:
    """The :class:`~ganaug.config.TrainConfig` that ``ganaug train`` trains for these arguments.

    Args:
        dataset: the training data (default: the preset's ``train.dataset``, else ``"digits"``).
        preset: a shipped preset's name; ``config``: a user's preset file instead. Neither: :func:`choose`.
        per_class: a seeded stratified subset of that many images per class.
        data_root: where the data is.
        cpu_bf16: for a preset with ``cpu_bf16: "measure"`` on a CPU: the decision (a bool), or the function
            that measures it (default :func:`ganaug.train.hardware.cpu_bf16_pays`). Ignored when ``amp`` or
            ``channels_last`` is given.
        options: further TrainConfig fields; each wins over the preset (``model`` a mapping of ModelConfig fields
            that win one by one, or a whole ModelConfig).

    Raises:
        InputError: an unknown preset or option, a value of the wrong type or range; one line.
    """
    if preset is not None and config is not None:
        raise InputError("give --preset NAME or --config FILE, not both")
    pool = bool(options.get("pseudo_label")) or options.get("unlabelled") is not None
    if preset is None and config is None:
        named, why = choose(dataset or "digits", per_class=per_class, pool=pool)
        chosen_preset = load(named)
    else:
        chosen_preset, why = (load(preset) if preset is not None else load(path=config)), ""
    p = chosen_preset
    dataset = dataset or p.train.get("dataset", "digits")
    fields = {k: v for k, v in p.train.items() if k != "model"}
    fields["dataset"] = dataset
    if fields.get("augment_real") == "dataset":
        from ganaug.data.augment_ops import classical_for

        fields["augment_real"] = classical_for(dataset)
    model = dict(p.train.get("model", {}))
    user_model = options.pop("model", None)
    if isinstance(user_model, ModelConfig):
        model = dataclasses.asdict(user_model)
    elif user_model is not None:
        model.update(user_model)
    chosen: dict[str, Any] = {}
    unknown = sorted(set(options) - set(_FIELD_TYPES))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} for a training config")
    if fields.get("pseudo_label") and per_class is None and options.get("unlabelled") is None:
        raise InputError(
            f"preset {p.name} needs a pool: give per_class (--real-per-class N: the rest of the split) or an unlabelled folder"
        )
    if p.steps is not None and pool and "epochs" not in options:
        # The pool's size is known only after pseudo-labelling: Trainer.new derives the epochs from the budget.
        chosen["steps"] = p.budget(n_train_images(dataset, data_root, per_class))
    elif p.steps is not None and not pool:
        n_images = n_train_images(dataset, data_root, per_class)
        batch = options.get("batch_size", fields.get("batch_size", TrainConfig.batch_size))
        if "batch_size" not in options and n_images < batch:
            batch = max(2, n_images)
            chosen["batch_size"] = batch
        epochs = options.get("epochs")
        if epochs is None:
            epochs = chosen["epochs"] = epochs_for_steps(p.budget(n_images), n_images, batch)
        if "save_every" not in options:
            chosen["save_every"] = max(1, epochs // p.saves)
    if p.cpu_bf16 == "measure" and "amp" not in options and "channels_last" not in options:
        from ganaug.train.hardware import resolve_device

        device = options.get("device", fields.get("device", TrainConfig.device))
        if resolve_device(device).type == "cpu":
            if cpu_bf16 is None:
                from ganaug.train.hardware import cpu_bf16_pays

                cpu_bf16 = cpu_bf16_pays
            pays = cpu_bf16 if isinstance(cpu_bf16, bool) else cpu_bf16(ModelConfig(**model), TrainConfig.batch_size)
            chosen |= {"amp": "bf16", "channels_last": True} if pays else {"amp": "auto", "channels_last": False}
    fields |= chosen
    fields |= options
    try:
        config = TrainConfig(
            **fields,
            per_class=per_class,
            data_root=None if data_root is None else str(data_root),
            preset=p.tag,
            sampling=dict(p.sampling),
            model=ModelConfig(**model),
        )
    except (TypeError, ValueError) as e:
        raise InputError(f"preset {p.name}: {e}") from None
    said = ""
    if why:
        shown = [
            f"--{k.replace('_', '-')} {v}" for k, v in chosen.items() if k not in ("amp", "channels_last", "steps")
        ]
        if "steps" in chosen:
            shown.append(f"{chosen['steps']} steps (the epochs follow from the pool's size)")
        if "amp" in chosen:
            shown.append("--amp bf16 --channels-last (faster on this CPU)" if chosen["amp"] == "bf16" else "fp32")
        said = f"preset {p.tag} ({why}): {' '.join(shown) or 'as it is'}; --preset NAME or any option changes it"
    return Resolved(config=config, preset=p, said=said, chosen=chosen)
