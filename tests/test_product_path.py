"""benchmarks/product_path.py: its refusals (the measurement itself needs the benchmark's cached GANs)."""

from __future__ import annotations

import pytest

from benchmarks import product_path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--seeds", "1", "--out", "r"], "--seeds must be >= 2"),
        (["--out", "."], "is a folder"),
        (["--out", "missing/r"], "does not exist"),
    ],
)
def test_bad_arguments_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        product_path.main(["--data-root", "data", "--cache", "cache", *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_gan_is_a_one_line_error_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:  # the smoke profile reads scikit-learn's digits: no files needed
        product_path.main(["--profile", "smoke", "--data-root", "data", "--cache", "cache", "--out", "r"])
    assert "no GAN for budget 10, seed 0 in cache; run the benchmark first" in str(e.value)
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []
