"""The README's Python examples run unchanged on the defaults: each block is executed as written, with `runs/mnist`
pointing at a tiny trained run and `DATA` at fake MNIST files in the real format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import exported_copy, make_fake_mnist

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def places(tmp_path_factory, tiny_run):
    root = tmp_path_factory.mktemp("readme")
    (root / "runs").mkdir()
    run = exported_copy(tiny_run, root / "runs" / "mnist")
    data = make_fake_mnist(root / "DATA")
    return {"runs/mnist": str(run), '"DATA"': repr(str(data))}


def test_the_readme_has_the_three_quickstarts():
    assert len(BLOCKS) >= 3
    assert any("GeneratedDataset" in b for b in BLOCKS) and any("SyntheticMix" in b for b in BLOCKS)
    assert any("lightning" in b for b in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_as_written(places, index, monkeypatch, tmp_path):
    code = BLOCKS[index]
    if "import lightning" in code:
        pytest.importorskip("lightning")
    for placeholder, path in places.items():
        code = code.replace(placeholder, path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"readme_block_{index}"}
    if index > 0:  # later blocks may use what earlier ones imported, as a reader's session would
        for earlier in BLOCKS[:index]:
            if "import lightning" not in earlier:
                exec(compile(_imports(earlier), "<readme imports>", "exec"), namespace)  # noqa: S102
    exec(compile(code, f"<README block {index}>", "exec"), namespace)  # noqa: S102 (running the README is the test)


def _imports(code: str) -> str:
    return "\n".join(line for line in code.splitlines() if line.startswith(("import ", "from ")))
