"""The installed package, not the checkout: a wheel built from the sources, installed into a folder of its own,
runs the README's commands from a folder outside the checkout (each made tiny), the benchmark included.

Offline and without a second environment: the wheel is built without build isolation (the setuptools of this
environment), installed with ``pip install --no-deps --no-index --target SITE``, and its console script runs on
this interpreter with ``PYTHONPATH=SITE``, so its dependencies are this environment's while ``ganaug`` is the
wheel's. ``-m 'not wheel'`` skips it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_fake_mnist

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

pytestmark = pytest.mark.wheel


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert res.returncode == 0, f"{' '.join(map(str, args))} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the console script, the environment that runs it, a working folder outside the checkout)."""
    # Offline, the wheel is built with this environment's setuptools and pip (a venv of Python 3.12+ has no
    # setuptools unless it was installed).
    pytest.importorskip("setuptools", minversion="68", reason="building the wheel offline needs setuptools >= 68")
    pytest.importorskip("pip", reason="building and installing the wheel needs pip")
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the wheel is made of, so no build/ or egg-info of the checkout (stale modules in
    # build/lib would end up in the wheel) is read or written.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "ganaug", src / "ganaug", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", OMP_NUM_THREADS="1")
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp / "dist"), str(src)],
        cwd=tmp,
        env=env,
    )
    (wheel,) = (tmp / "dist").glob("ganaug-*.whl")
    site = tmp / "site"
    _run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)], cwd=tmp, env=env)
    work = tmp / "work"
    work.mkdir()
    env["PYTHONPATH"] = str(site)
    return site / "bin" / "ganaug", env, work


def test_the_wheel_is_what_runs_and_it_carries_the_benchmark(installed):
    script, env, work = installed
    code = (
        "import importlib.util, ganaug, ganaug.downstream.cli; print(ganaug.__file__); "
        "print(importlib.util.find_spec('benchmarks'))"
    )
    out = _run([sys.executable, "-c", code], cwd=work, env=env).stdout.splitlines()
    site = Path(env["PYTHONPATH"])
    assert Path(out[0]).is_relative_to(site), out  # the wheel's ganaug, not the checkout's
    assert out[1] == "None"  # the checkout's benchmarks/ is nowhere on the path
    assert script.is_file()
    version = _run([str(script), "--version"], cwd=work, env=env).stdout
    assert re.search(r"\d+\.\d+", version), version


def test_the_readme_commands_run_from_the_installed_package(installed):
    script, env, work = installed

    def ganaug(*args: str) -> str:
        return _run([str(script), *map(str, args)], cwd=work, env=env).stdout

    readme = README.read_text()
    # The README's commands, each as small as it goes: the first is the quick start, on the embedded digits.
    assert ".venv/bin/ganaug train --out runs/digits" in readme
    ganaug("train", "--out", "runs/digits", "--epochs", "1", "--quiet", "--threads", "1")
    run = work / "runs" / "digits"
    for name in ("samples.png", "config.json", "checkpoint.pt", "generator.onnx"):
        assert (run / name).is_file(), name
    assert "ganaug generate runs/mnist --per-class 1000 --out synth/" in readme
    ganaug("generate", run, "--per-class", "3", "--out", "synth/", "--quiet")
    assert len(list((work / "synth").rglob("*.png"))) == 30
    assert "ganaug interpolate runs/mnist --from 4 --to 8 --steps 10 --out walk.png --gif" in readme
    ganaug("interpolate", run, "--from", "4", "--to", "8", "--steps", "3", "--out", "walk.png", "--gif")
    assert (work / "walk.png").is_file()
    assert "`ganaug info`" in readme and "`ganaug evaluate`" in readme
    assert "generator" in ganaug("info", run / "generator.onnx").lower()
    ganaug("evaluator", "train", "--dataset", "digits", "--out", "ev", "--epochs", "1", "--width", "4", "--quiet")
    ganaug("evaluate", run, "--evaluator", "ev", "--per-class", "10", "--json", "eval.json")
    assert (work / "eval.json").is_file()


def test_the_readme_python_blocks_run_on_the_installed_package(installed):
    _, env, work = installed
    blocks = [
        b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL) if "lightning" not in b
    ]
    assert blocks
    run = work / "runs" / "digits"
    if not (run / "generator.onnx").is_file():
        pytest.skip("needs the run the README commands test trains")
    data = make_fake_mnist(work / "DATA", n_train=100, n_test=20)
    code = "\n\n".join(b.replace("runs/mnist", str(run)).replace('"DATA"', repr(str(data))) for b in blocks)
    (work / "readme_blocks.py").write_text(code)
    _run([sys.executable, "readme_blocks.py"], cwd=work, env=env)


def test_the_benchmark_runs_on_an_image_folder_from_the_installed_package(installed):
    from tests.test_downstream_imagefolder import write_folder

    script, env, work = installed
    data = write_folder(work / "photos", train=3, test=2)
    args = ["bench", "downstream", "--profile", "smoke", "--dataset", "imagefolder", "--data-root", "photos"]
    args += ["--augment", "shift-flip", "--budgets", "2", "--seeds", "2", "--threads", "1"]
    out = _run([str(script), *args], cwd=work, env=env).stdout
    report = work / "runs" / "benchmarks" / "downstream" / "smoke-imagefolder-photos" / "report.md"
    assert f"wrote {report.relative_to(work)} (8 classifier runs)" in out
    text = report.read_text()
    assert "(d) real + classical aug. + generated" in text and "95% CI" in text and "FAIL" not in text
    assert "at `photos` (3 classes" in text and data.is_dir()
