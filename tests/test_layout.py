"""The package's layout follows the pipeline: every module belongs to one group, and no group imports a group
above it (at the top of a module or inside a function alike), so a reader who changes how images are sampled, fed
or scored opens one folder and nothing below it depends on what they change."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ganaug

PACKAGE = Path(ganaug.__file__).resolve().parent

#: The groups, lowest first: a group imports only from its own and lower levels; the groups of one level are
#: siblings and do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("shared",),  # ganaug/*.py: config, errors, outputs, threads, viz, hashing (and ganaug.__version__)
    ("data",),  # the real images: sources, labels, classical augmentations, density
    ("models", "classify"),  # the GAN's networks; the small classifiers (evaluator, CAS classifier, manifold)
    ("train",),  # the GAN step, Trainer, weighting, run folder, checkpoint, export, presets, pseudo-labels
    ("sample",),  # latents, the label check, unflatten, ONNX Runtime, opening generators
    ("feed", "eval"),  # GeneratedDataset, augment, SyntheticMix; metrics, the generator report, CAS
    ("downstream",),  # the benchmark
    ("cli",),  # the commands
)
LEVEL = {group: level for level, groups in enumerate(LAYERS) for group in groups}
#: The modules directly in ganaug/ that any group may use: each is declared here, so a new one is a decision.
SHARED = {
    "ganaug",
    "ganaug.config",
    "ganaug.errors",
    "ganaug.hashing",
    "ganaug.outputs",
    "ganaug.threads",
    "ganaug.viz",
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def group_of(module: str) -> str:
    """The group of a ganaug module; a KeyError for a top-level module that is not declared shared."""
    if module in SHARED:
        return "shared"
    if module == "ganaug.__main__":
        return "cli"  # ``python -m ganaug``: the commands' entry point
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LEVEL and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    raise KeyError(module)


def imports(source: str, module: str, known: set[str], *, is_package: bool = False) -> list[tuple[str, int]]:
    """``(ganaug module, line)`` of every import in ``source`` (module ``module``): module level, inside functions
    and under ``TYPE_CHECKING`` alike; ``from ganaug.x import y`` counts as ``ganaug.x.y`` when that is a module,
    and relative imports are resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "ganaug"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ganaug":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if sub in known else target, node.lineno))
    return found


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def upward_imports(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """One line per import that reaches a group above its module's own level (or a sibling group of that level);
    ``modules`` maps a module name to ``(source, is_package)``."""
    known = set(modules)
    problems = []
    for module, (source, is_package) in sorted(modules.items()):
        mine = group_of(module)
        for target, line in imports(source, module, known, is_package=is_package):
            theirs = group_of(target)
            if theirs == mine or LEVEL[theirs] < LEVEL[mine]:
                continue
            where = "a sibling group" if LEVEL[theirs] == LEVEL[mine] else "a group above"
            problems.append(f"{module} ({mine}) imports {target} ({theirs}, {where}) at line {line}")
    return problems


def test_every_module_belongs_to_a_group():
    unplaced = []
    for module in package_modules():
        try:
            group_of(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"put these modules in a group folder or declare them SHARED: {unplaced}"
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LEVEL) - {"shared"}


def test_nothing_below_imports_back_up():
    files = package_modules()
    modules = {name: (path.read_text(), path.name == "__init__.py") for name, path in files.items()}
    problems = upward_imports(modules)
    assert not problems, "imports that run up the layers:\n" + "\n".join(problems)


def test_an_upward_import_is_caught():
    fake = {
        "ganaug.data.sources": ("def f():\n    from ganaug.eval.metrics import class_fidelity\n", False),
        "ganaug.eval.metrics": ("from ..data import sources\n", False),
        "ganaug.feed.dataset": ("from ganaug.eval import metrics\n", False),
        "ganaug.eval": ("from . import metrics\n", True),
    }
    assert upward_imports(fake) == [
        "ganaug.data.sources (data) imports ganaug.eval.metrics (eval, a group above) at line 2",
        "ganaug.feed.dataset (feed) imports ganaug.eval.metrics (eval, a sibling group) at line 1",
    ]


@pytest.mark.parametrize("name", sorted(ganaug.__all__))
def test_public_names_load_from_the_module_that_defines_them(name):
    value = getattr(ganaug, name)
    if name == "__version__":
        return
    target = ganaug._EXPORTS[name]
    assert getattr(importlib.import_module(target), name) is value
    defined = getattr(value, "__module__", target)
    assert defined == target, f"ganaug.{name} is defined in {defined}, but the lazy map loads it from {target}"
