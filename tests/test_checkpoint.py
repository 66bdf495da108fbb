"""Checkpoint and config.json files: schema versions, damaged files, one-line errors."""

import json
import shutil

import pytest
import torch

from ganaug.errors import InputError
from ganaug.train.checkpoint import CHECKPOINT, CHECKPOINT_SCHEMA, load_checkpoint, load_generator
from ganaug.train.runfolder import CONFIG_SCHEMA
from ganaug.train.trainer import Trainer


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

    from ganaug.errors import GanaugError
    from ganaug.train import checkpoint

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


def _pickled_globals(data: bytes) -> set[str]:
    """``module.name`` of every class or function a pickle refers to (its GLOBAL and STACK_GLOBAL opcodes)."""
    import pickletools

    found, memo, pushed = set(), {}, []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed.append(arg)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            pushed.append(memo.get(arg))
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
            pushed.append(None)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{pushed[-2]}.{pushed[-1]}")
            pushed.append(None)
        else:
            pushed.append(None)
    return found


def test_a_checkpoint_names_no_ganaug_module_so_run_folders_outlive_module_moves(tiny_run, tmp_path):
    """checkpoint.pt holds tensors, plain containers and the config as a dict, never a pickled ganaug class: it
    loads with ``weights_only=True``, whatever module ganaug's code lives in, so a run folder written before
    the package was reorganised still resumes, exports and generates."""
    import zipfile

    with zipfile.ZipFile(tiny_run / CHECKPOINT) as z:
        (pkl,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        names = _pickled_globals(z.read(pkl))
    assert names and not [n for n in names if n.startswith("ganaug")], names
    assert {n.split(".")[0] for n in names} <= {"collections", "torch"}, names
    state = load_checkpoint(tiny_run / CHECKPOINT)  # weights_only=True: refuses any class not allowed by name
    assert isinstance(state["config"], dict) and state["classes"]

    # and the checkpoint of such a run continues: resume one more epoch from a copy
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    trainer = Trainer.resume(run, epochs=3, progress=False)
    assert trainer.step == state["step"]
    trainer.fit()
    assert load_checkpoint(run / CHECKPOINT)["step"] > state["step"]
