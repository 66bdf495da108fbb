"""The run's own label check: `ganaug train` writes label_check.onnx when the preset's sampling names it, and every
consumer (`ganaug generate` / `evaluate`, GeneratedDataset, augment, SyntheticMix) applies it by default, the same
way, unless told to sample plainly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from ganaug.cli import main
from ganaug.config import sampling_problem
from ganaug.errors import InputError
from ganaug.feed.batchmix import SyntheticMix
from ganaug.feed.dataset import GeneratedDataset, SourceDataset
from ganaug.feed.mixing import augment
from ganaug.sample.resample import LabelCheck, OnnxCheck
from ganaug.sample.runtime import OnnxGenerator
from ganaug.train.export import export_onnx
from ganaug.train.trainer import Trainer
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLING = {"temperature": 1.0, "label_check": "label_check.onnx"}


@pytest.fixture(scope="module")
def checked_run(tmp_path_factory):
    """A tiny run whose preset samples through its own label check, exported."""
    run_dir = tmp_path_factory.mktemp("checked") / "run"
    Trainer.new(tiny_config(sampling=SAMPLING, preset="test@1"), run_dir, overwrite=True, progress=False).fit()
    export_onnx(run_dir)
    return run_dir


def _generate(model, out, *extra, code=0):
    result = CliRunner().invoke(
        main,
        ["generate", str(model), "--per-class", "4", "--format", "npz", "--out", str(out), "--threads", "1", *extra],
    )
    assert result.exit_code == code, result.output
    if code:
        return result.output
    with np.load(out) as f:
        images, labels = f["images"], f["labels"]
    return images, labels, json.loads(out.with_suffix(".manifest.json").read_text())


def test_train_writes_the_check_and_the_onnx_file_names_it(checked_run):
    assert (checked_run / "label_check.onnx").is_file()
    assert OnnxGenerator(checked_run / "generator.onnx").sampling == SAMPLING
    check = OnnxCheck(checked_run / "label_check.onnx")
    assert check.classes == json.loads((checked_run / "config.json").read_text())["classes"]
    logits = check(torch.zeros(3, 1, 28, 28))
    assert logits.shape == (3, len(check.classes)) and logits.dtype == torch.float32


def test_generate_applies_the_models_check_unless_plain(checked_run, tmp_path):
    default, labels, manifest = _generate(checked_run, tmp_path / "default.npz")
    spelled, _, _ = _generate(
        checked_run, tmp_path / "spelled.npz", "--label-check", str(checked_run / "label_check.onnx")
    )
    plain, plain_labels, plain_manifest = _generate(checked_run, tmp_path / "plain.npz", "--plain")
    assert np.array_equal(default, spelled) and np.array_equal(labels, plain_labels)
    assert manifest["sampling"]["label_check"]["sha256"] == OnnxCheck(checked_run / "label_check.onnx").sha256
    assert plain_manifest["sampling"]["label_check"] is None
    # the law: a plain image the check accepts is kept as it is; every other one was drawn again or is the best try
    check = LabelCheck.load(checked_run / "label_check.onnx")
    as_float = plain.astype(np.float32)[:, None] / 127.5 - 1.0
    accepted, _ = check.judge(as_float, plain_labels)
    assert np.array_equal(default[accepted], plain[accepted])
    if not accepted.all():
        assert not np.array_equal(default[~accepted], plain[~accepted])
    checked, _ = check.judge(default.astype(np.float32)[:, None] / 127.5 - 1.0, labels)
    assert checked.mean() >= accepted.mean()


def test_the_dataset_yields_what_generate_writes_on_both_defaults(checked_run, tmp_path):
    default, labels, _ = _generate(checked_run, tmp_path / "default.npz", "--seed", "5")
    plain, _, _ = _generate(checked_run, tmp_path / "plain.npz", "--seed", "5", "--plain")
    for sampling, want in (("model", default), ("plain", plain)):
        ds = GeneratedDataset(checked_run, per_class=4, seed=5, order="sorted", output="tensor", sampling=sampling)
        items = [ds[i] for i in range(len(ds))]
        got = np.stack([(x.numpy()[0] * 255).round().astype(np.uint8) for x, _ in items])
        assert np.array_equal(got, want.reshape(got.shape)), sampling
        assert [int(y) for _, y in items] == labels.tolist()
    assert GeneratedDataset(checked_run, per_class=1).sampling.check is not None
    assert GeneratedDataset(checked_run, per_class=1, sampling="plain").sampling.check is None


def test_the_mixers_apply_the_same_check(checked_run, tmp_path, fake_mnist_root):
    mix = SyntheticMix(checked_run, share=0.5, threads=1)
    assert mix.label_check is not None and mix.label_check.sha256 == OnnxCheck(checked_run / "label_check.onnx").sha256
    assert SyntheticMix(checked_run, share=0.5, threads=1, sampling="plain").label_check is None
    real = SourceDataset("digits", split="train")
    mixed = augment(real, checked_run, per_class=2)
    assert mixed.mix.sampling["label_check"]["sha256"] == mix.label_check.sha256
    assert augment(real, checked_run, per_class=2, sampling="plain").mix.sampling["label_check"] is None


def test_a_bare_onnx_file_without_its_check_fails_in_one_line(checked_run, tmp_path):
    bare = tmp_path / "elsewhere" / "generator.onnx"
    bare.parent.mkdir()
    shutil.copy(checked_run / "generator.onnx", bare)
    with pytest.raises(InputError, match="label_check.onnx"):
        GeneratedDataset(bare, per_class=1)
    assert GeneratedDataset(bare, per_class=1, sampling="plain").sampling.check is None
    output = _generate(bare, tmp_path / "x.npz", code=2)
    assert "label_check.onnx" in output and len(output.strip().splitlines()) == 1
    shutil.copy(checked_run / "label_check.onnx", bare.parent)  # copied along, it works
    assert GeneratedDataset(bare, per_class=1).sampling.check is not None


def test_a_file_that_is_not_a_check_is_refused(checked_run, tmp_path):
    with pytest.raises(InputError, match="not a ganaug label check"):
        OnnxCheck(checked_run / "generator.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(InputError, match="not a readable ONNX file"):
        OnnxCheck(tmp_path / "junk.onnx")


def test_the_check_survives_pickling_into_workers(checked_run):
    import pickle

    check = OnnxCheck(checked_run / "label_check.onnx")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    before = check(x)
    copy = pickle.loads(pickle.dumps(check))
    assert torch.equal(copy(x), before)


@pytest.mark.parametrize("name", ["../label_check.onnx", "check.pt", "a/b.onnx", 3, ".onnx"])
def test_a_sampling_check_must_be_a_file_name_beside_the_model(name):
    assert "label_check" in sampling_problem({"label_check": name})


def test_overwrite_replaces_a_run_that_holds_its_check(checked_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(checked_run, copy)
    Trainer.new(tiny_config(), copy, overwrite=True, progress=False).fit()
    assert not (copy / "label_check.onnx").exists()


def test_the_check_is_kept_out_of_the_onnx_contract_checks(checked_run):
    proto = onnx.load(str(checked_run / "label_check.onnx"))
    names = [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    assert names == (["images"], ["logits"])


def test_evaluate_scores_the_models_default_sampling_unless_plain(checked_run, tmp_path):
    from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator_on

    tiny = EvaluatorTraining(epochs=1, model=EvaluatorConfig(width=4, hidden=16))
    evaluator = train_evaluator_on("digits", settings=tiny).save(tmp_path / "ev")
    reports = {}
    for name, extra in (("model", []), ("plain", ["--plain"])):
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(
            main,
            [
                "evaluate",
                str(checked_run),
                "--evaluator",
                str(evaluator),
                "--per-class",
                "10",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--json",
                str(out),
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())
    sha = OnnxCheck(checked_run / "label_check.onnx").sha256
    assert reports["model"]["sampling"]["label_check"]["sha256"] == sha
    assert reports["plain"]["sampling"]["label_check"] is None


def test_item_i_does_not_depend_on_the_chunk_size_with_the_models_check(checked_run):
    whole = GeneratedDataset(checked_run, per_class=6, seed=2, output="tensor", chunk_size=1024)
    small = GeneratedDataset(checked_run, per_class=6, seed=2, output="tensor", chunk_size=7)
    idx = np.arange(len(whole))
    assert np.array_equal(whole.arrays(idx), small.arrays(idx[::-1])[::-1])


def test_cas_trains_on_the_models_checked_images(checked_run, fake_mnist_root, monkeypatch):
    """CAS of the model's default sampling trains on exactly the images GeneratedDataset(RUN) yields (checked),
    and plain sampling's CAS on other images."""
    from ganaug.eval import cas
    from ganaug.sample.generators import open_generator
    from ganaug.sample.resample import model_sampling

    data = cas.load_cas_data("mnist", root=fake_mnist_root)
    gen = open_generator(checked_run, backend="onnx")
    tiny = cas.CASClassifier(steps=12, batch=16, width=4)
    seen = []
    score = cas._score
    monkeypatch.setattr(cas, "_score", lambda images, *a, **k: seen.append(images.clone()) or score(images, *a, **k))
    for sampling in ("model", "plain"):
        cas.cas_score(
            gen, data, per_class=5, classifier=tiny, sampling=model_sampling(gen.sampling, gen.path, sampling=sampling)
        )
    expected = GeneratedDataset(
        checked_run, per_class=5, order="sorted", output="tensor", value_range=(-1, 1), threads=1
    )
    assert np.array_equal(seen[0].numpy(), expected.arrays(np.arange(len(expected))))
    assert not torch.equal(seen[0], seen[1])


def test_a_run_that_lost_its_check_says_how_to_get_it_back_and_resume_writes_it_again(checked_run, tmp_path):
    """A full disk at the end of training, or a deleted file: `generate` names the fix, `train --resume` of the
    finished run trains nothing and writes the same check again."""
    run = tmp_path / "run"
    shutil.copytree(checked_run, run)
    before = OnnxCheck(run / "label_check.onnx")
    images = OnnxGenerator(run / "generator.onnx").generate(np.arange(200) % 10, seed=3, dtype="float")
    verdicts = before(images).argmax(1)  # read before the file goes
    (run / "label_check.onnx").unlink()
    output = _generate(run, tmp_path / "x.npz", code=2)
    assert f"ganaug train --resume {run}" in output and len(output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["train", "--resume", str(run), "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "had trained its" in result.output and "nan" not in result.output
    # The same check trained again: its recipe, seed and data as recorded, its verdicts the same on generated
    # images (not its bytes: the thread count at training may differ from the fixture's, and with it the rounding).
    after = OnnxCheck(run / "label_check.onnx")
    assert {k: v for k, v in after.metadata.items() if k != "train_accuracy"} == {
        k: v for k, v in before.metadata.items() if k != "train_accuracy"
    }
    agree = (after(images).argmax(1) == verdicts).float().mean()
    assert agree >= 0.9, agree
    _, _, manifest = _generate(run, tmp_path / "y.npz")
    assert manifest["sampling"]["label_check"]["sha256"] == OnnxCheck(run / "label_check.onnx").sha256
