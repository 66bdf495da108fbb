"""benchmarks/onnx_speed.py: exported generators timed side by side, and its refusals."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks import onnx_speed
from ganaug.config import ModelConfig
from ganaug.models.dcgan import Generator
from ganaug.train.export import export_generator


@pytest.fixture(scope="module")
def two_generators(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gens")
    torch.manual_seed(0)
    plain = export_generator(Generator(ModelConfig(z_dim=8, embed_dim=4, g_width=8)), folder / "plain.onnx")
    centred = Generator(ModelConfig(z_dim=8, embed_dim=4, g_width=8), center_of_mass=True)
    return plain, export_generator(centred, folder / "centred.onnx")


def test_times_every_file_in_turn_and_reports_medians_and_ratios(two_generators, tmp_path, capsys):
    out = tmp_path / "speed"
    args = [*map(str, two_generators), "--batch-sizes", "1,8", "--repeats", "2", "--min-time", "0.01"]
    doc = onnx_speed.main([*args, "--out", str(out)])
    plain, centred = (doc["models"][str(p)] for p in two_generators)
    for by_batch in (plain, centred):
        assert list(by_batch) == ["1", "8"]
        assert all(
            len(row["images_per_second"]) == 2 and min(row["images_per_second"]) > 0 for row in by_batch.values()
        )
    assert plain["8"]["ratio_to_first"] == 1.0
    assert centred["8"]["ratio_to_first"] == pytest.approx(centred["8"]["median"] / plain["8"]["median"], abs=2e-3)
    assert json.loads(out.with_suffix(".json").read_text()) == doc
    assert f"| `{two_generators[1]}` |" in out.with_suffix(".md").read_text()
    assert "repeat 2/2 done" in capsys.readouterr().err
    onnx_speed.main(
        [str(two_generators[0]), "--batch-sizes", "2", "--repeats", "1", "--min-time", "0.01", "--out", str(out)]
    )
    assert list(json.loads(out.with_suffix(".json").read_text())["models"]) == [str(two_generators[0])]  # replaced


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--batch-sizes", "a"], "--batch-sizes"),
        (["--repeats", "0"], ">= 1"),
        (["--out", "."], "is a folder"),
        (["--out", "missing/speed"], "does not exist"),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(two_generators, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        onnx_speed.main([str(two_generators[0]), *extra])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_file_it_did_not_write_is_not_replaced(two_generators, tmp_path, capsys):
    theirs = tmp_path / "speed.md"
    theirs.write_text("someone's notes\n")
    with pytest.raises(SystemExit):
        onnx_speed.main([str(two_generators[0]), "--out", str(tmp_path / "speed")])
    assert "not written by this benchmark" in capsys.readouterr().err and theirs.read_text() == "someone's notes\n"
    with pytest.raises(SystemExit):  # a stem named after someone's file would write beside it
        onnx_speed.main([str(two_generators[0]), "--out", str(two_generators[0])])
    assert "is an existing file" in capsys.readouterr().err
    assert sorted(p.name for p in two_generators[0].parent.iterdir()) == ["centred.onnx", "plain.onnx"]
    with pytest.raises(SystemExit):
        onnx_speed.main([str(tmp_path / "nothing.onnx"), "--out", str(tmp_path / "other")])
    assert "no such file" in capsys.readouterr().err
