"""Checkpoint and config.json files: schema versions, damaged files, one-line errors."""

import json
import shutil

import pytest
import torch

from ganaug.checkpoint import CHECKPOINT, CHECKPOINT_SCHEMA, load_checkpoint, load_generator
from ganaug.errors import InputError
from ganaug.runfolder import CONFIG_SCHEMA
from ganaug.training import Trainer


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def _rewrite_checkpoint(run, change):
    state = torch.load(run / CHECKPOINT, weights_only=True)
    change(state)
    torch.save(state, run / CHECKPOINT)


def _one_line(e):
    assert "\n" not in str(e.value), str(e.value)
    return str(e.value)


def test_checkpoint_and_config_carry_their_schema(tiny_run):
    assert torch.load(tiny_run / CHECKPOINT, weights_only=True)["schema"] == CHECKPOINT_SCHEMA == 1
    assert json.loads((tiny_run / "config.json").read_text())["schema"] == CONFIG_SCHEMA == 1
    assert load_generator(tiny_run)[1]["schema"] == 1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.pop("schema"), r"no checkpoint schema version .*reads schema 1"),
        (lambda s: s.update(schema=99), r"checkpoint schema 99 .*reads schema 1"),
        (lambda s: s.pop("opt_d"), r"\(checkpoint schema 1\) lacks opt_d"),
        (lambda s: s["config"].update(warp_drive=True), r"unknown TrainConfig key\(s\) warp_drive"),
        (lambda s: s["config"]["model"].update(depth=3), r"unknown ModelConfig key\(s\) depth"),
    ],
)
def test_unknown_or_missing_checkpoint_version_or_key_is_one_line(run_copy, change, message):
    _rewrite_checkpoint(run_copy, change)
    with pytest.raises(InputError, match=message) as e:
        load_generator(run_copy)
    _one_line(e)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.pop("schema"), r"no schema version .*reads config schema 1"),
        (lambda m: m.update(schema=2), r"config schema 2 .*reads schema 1"),
        (lambda m: m.pop("data"), r"lacks data"),
        (lambda m: m["config"].update(warp_drive=True), r"unknown TrainConfig key\(s\) warp_drive"),
    ],
)
def test_unknown_or_missing_config_version_or_key_is_one_line_on_resume(run_copy, change, message):
    meta = json.loads((run_copy / "config.json").read_text())
    change(meta)
    (run_copy / "config.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=message) as e:
        Trainer.resume(run_copy, epochs=3, progress=False)
    _one_line(e)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_or_truncated_checkpoint_is_one_line(run_copy, damage):
    path = run_copy / CHECKPOINT
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint" * 10, "empty": b""}[damage])
    for load in (lambda: load_checkpoint(path), lambda: Trainer.resume(run_copy, epochs=3, progress=False)):
        with pytest.raises(InputError, match="corrupt or truncated") as e:
            load()
        _one_line(e)


def test_corrupt_config_json_is_one_line(run_copy):
    (run_copy / "config.json").write_text('{"schema": 1, "config": ')
    with pytest.raises(InputError, match="config.json is corrupt") as e:
        Trainer.resume(run_copy, epochs=3, progress=False)
    _one_line(e)


def test_a_full_disk_while_checkpointing_is_one_line_and_leaves_no_temp(run_copy, monkeypatch):
    import errno

    from ganaug import checkpoint
    from ganaug.errors import GanaugError

    state = torch.load(run_copy / CHECKPOINT, weights_only=True)
    state.pop("schema")
    before = (run_copy / CHECKPOINT).read_bytes()

    def full(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(GanaugError, match="no space left on the device while writing .*checkpoint.pt") as e:
        checkpoint.save_checkpoint(state, run_copy / CHECKPOINT)
    _one_line(e)
    assert (run_copy / CHECKPOINT).read_bytes() == before
    assert not [p.name for p in run_copy.iterdir() if ".tmp" in p.name]
