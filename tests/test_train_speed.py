"""benchmarks/train_speed.py: interleaved timed runs of the coverage levers, and its refusals."""

from __future__ import annotations

import json
import tempfile

import pytest

from benchmarks import train_speed


def test_times_every_lever_in_turn_and_reports_medians_and_ratios(tmp_path, capsys, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the lever runs go
    out = tmp_path / "speed"
    args = ["--dataset", "digits", "--levers", "baseline,g-wider", "--repeats", "2", "--epochs", "1"]
    doc = train_speed.main([*args, "--real-per-class", "20", "--threads", "1", "--out", str(out)])
    assert list(doc["levers"]) == ["baseline", "g-wider"]
    for row in doc["levers"].values():
        assert len(row["images_per_second"]) == 2 and all(v > 0 for v in row["images_per_second"])
    assert doc["levers"]["baseline"]["ratio_to_first"] == 1.0
    cond = doc["levers"]["g-wider"]
    assert cond["ratio_to_first"] == pytest.approx(cond["median"] / doc["levers"]["baseline"]["median"], abs=2e-3)
    assert "--g-width 64" in doc["train_commands"]["g-wider"]
    assert "--g-width 64" not in doc["train_commands"]["baseline"]
    assert json.loads(out.with_suffix(".json").read_text()) == doc
    assert "| `g-wider` |" in out.with_suffix(".md").read_text()
    assert "repeat 2/2 g-wider" in capsys.readouterr().err
    assert list(scratch.iterdir()) == []  # the runs are removed: only OUT.json and OUT.md are left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch", "speed.json", "speed.md"]
    again = ["--dataset", "digits", "--levers", "baseline", "--repeats", "1", "--epochs", "1", "--real-per-class", "20"]
    train_speed.main([*again, "--threads", "1", "--out", str(out)])
    assert list(json.loads(out.with_suffix(".json").read_text())["levers"]) == ["baseline"]  # its own file: replaced


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--levers", "baseline,nope"], "unknown lever(s) nope"),
        (["--dataset", "mnist"], "--dataset mnist needs --data-root"),
        (["--repeats", "0"], "must be >= 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        train_speed.parse_args(["--dataset", "digits", "--out", str(tmp_path / "speed"), *extra])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_never_replaces_a_file_it_did_not_write(tmp_path, capsys):
    (tmp_path / "speed.json").write_text('{"mine": 1}')
    (tmp_path / "notes.md").write_text("keep me")
    for out in ("speed", "notes"):
        with pytest.raises(SystemExit):
            train_speed.parse_args(["--dataset", "digits", "--out", str(tmp_path / out)])
        assert "was not written by this benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_speed.parse_args(["--dataset", "digits", "--out", str(tmp_path / "missing" / "speed")])
    assert "does not exist" in capsys.readouterr().err
    assert (tmp_path / "speed.json").read_text() == '{"mine": 1}' and (tmp_path / "notes.md").read_text() == "keep me"


@pytest.mark.parametrize("out", [".", "..", "/", "FOLDER"])
def test_a_folder_as_out_is_refused(tmp_path, capsys, out):
    out = str(tmp_path) if out == "FOLDER" else out
    with pytest.raises(SystemExit):
        train_speed.parse_args(["--dataset", "digits", "--out", out])
    assert "is a folder; give a file stem inside it" in capsys.readouterr().err


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    import errno
    from pathlib import Path

    doc = {"kind": train_speed.KIND, "command": "python -m benchmarks.train_speed", "levers": {}, "machine": {}}
    monkeypatch.setattr(train_speed, "measure", lambda args: doc)
    real_write = Path.write_text

    def full(self, text, *a, **k):
        real_write(self, text[:10], *a, **k)  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SystemExit, match=r"^error: no space left on the device while writing .*speed\.json"):
        train_speed.main(["--dataset", "digits", "--out", str(tmp_path / "speed")])
    assert list(tmp_path.iterdir()) == []
