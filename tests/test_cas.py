"""CAS (ganaug.eval.cas): seeded, cached, the ceiling is the same recipe on real data; `ganaug evaluate --cas`."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganaug.classify.classifier import CASClassifier
from ganaug.cli import main
from ganaug.data.sources import load_source
from ganaug.eval import cas
from ganaug.eval.cas import CASData, cas_score, load_cas_data, real_ceiling
from ganaug.sample.generators import LoadedGenerator
from tests.conftest import make_fake_mnist

TINY = CASClassifier(steps=12, batch=16, width=4)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> CASData:
    return load_cas_data("mnist", root=make_fake_mnist(tmp_path_factory.mktemp("data")))


@pytest.fixture
def count_training(monkeypatch):
    calls = []
    train = cas.train_classifier
    monkeypatch.setattr(cas, "train_classifier", lambda *a, **k: calls.append(1) or train(*a, **k))
    return calls


def _replaying(images: torch.Tensor, labels: torch.Tensor, classes, path) -> LoadedGenerator:
    """A 'generator' that hands out the given images of each requested class in order (the real data itself)."""
    queues = {c: list(images[labels == c]) for c in range(len(classes))}

    def run(z, y):
        return torch.stack([queues[int(c)].pop(0) for c in y]).numpy()

    return LoadedGenerator(run, 8, list(classes), None, "onnx", path)


def test_a_generator_that_returns_the_real_training_split_scores_the_ceiling(data, tmp_path):
    # Class-sorted real images, a different number of each class: by default the generator is asked for as many
    # of each class as the real training split holds, so the classifier sees exactly the ceiling's images in
    # the same order and CAS equals the ceiling to the last bit.
    order = torch.argsort(data.train_labels, stable=True)
    least = int(torch.bincount(data.train_labels).min())
    keep = torch.cat([order[data.train_labels[order] == c][: least - c % 3] for c in range(10)])
    real = CASData(
        data.train_images[keep], data.train_labels[keep], data.test_images, data.test_labels, data.classes, {}
    )
    gen = _replaying(real.train_images, real.train_labels, real.classes, tmp_path / "g.onnx")
    score = cas_score(gen, real, classifier=TINY, seed=3)
    ceiling = real_ceiling(real, classifier=TINY, seed=3)
    assert score["accuracy"] == ceiling["accuracy"] and score["per_class"] == ceiling["per_class"]
    assert score["train_images"] == ceiling["train_images"] == len(keep) == 10 * least - 9


def test_a_fixed_amount_per_class_is_what_is_generated(data, tmp_path):
    asked = []
    gen = _replaying(data.train_images, data.train_labels, data.classes, tmp_path / "g.onnx")
    run = gen.run
    gen.run = lambda z, y: asked.extend(y.tolist()) or run(z, y)
    assert cas_score(gen, data, per_class=3, classifier=TINY, seed=0)["train_images"] == 30
    assert sorted(asked) == [c for c in range(10) for _ in range(3)]
    assert cas.generated_counts(data, None) == torch.bincount(data.train_labels, minlength=10).tolist()


def test_the_thread_count_is_part_of_the_score_and_its_cache_key(data, tiny_mnist_run, tmp_path, count_training):
    # The classifier's gradient sums depend on torch's thread count, so a score cached at one count is not
    # handed out for another.
    one = cas_score(tiny_mnist_run, data, per_class=5, classifier=TINY, seed=0, cache_dir=tmp_path)
    torch.set_num_threads(2)
    two = cas_score(tiny_mnist_run, data, per_class=5, classifier=TINY, seed=0, cache_dir=tmp_path)
    assert (one["threads"], two["threads"]) == (1, 2) and len(count_training) == 2
    assert len(list(tmp_path.glob("cas_*.json"))) == 2
    assert cas_score(tiny_mnist_run, data, per_class=5, classifier=TINY, seed=0, cache_dir=tmp_path) == two
    assert len(count_training) == 2


def test_scores_are_seeded_and_cached(data, tiny_mnist_run, tmp_path, count_training):
    a = cas_score(tiny_mnist_run, data, per_class=20, classifier=TINY, seed=1, cache_dir=tmp_path)
    assert len(count_training) == 1
    again = cas_score(tiny_mnist_run, data, per_class=20, classifier=TINY, seed=1, cache_dir=tmp_path)
    assert len(count_training) == 1 and again == a  # from the cache: no training
    fresh = cas_score(tiny_mnist_run, data, per_class=20, classifier=TINY, seed=1)  # no cache: same numbers
    assert len(count_training) == 2 and fresh["accuracy"] == a["accuracy"] and fresh["per_class"] == a["per_class"]
    cas_score(tiny_mnist_run, data, per_class=20, classifier=TINY, seed=2, cache_dir=tmp_path)
    cas_score(tiny_mnist_run, data, per_class=21, classifier=TINY, seed=1, cache_dir=tmp_path)
    assert len(count_training) == 4  # another seed or amount is another score
    ceiling = real_ceiling(data, classifier=TINY, seed=1, cache_dir=tmp_path)
    assert real_ceiling(data, classifier=TINY, seed=1, cache_dir=tmp_path) == ceiling and len(count_training) == 5
    assert len(list(tmp_path.glob("*.json"))) == 4


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_score(data, tiny_mnist_run, tmp_path, monkeypatch):
    # The cache folder's place is taken by a file: the score is computed, returned and warned about.
    blocked = tmp_path / "file"
    blocked.write_text("mine")
    with pytest.warns(cas.CacheNotWritten, match=r"the cas score was not cached in .*file \(FileExistsError"):
        score = cas_score(tiny_mnist_run, data, per_class=5, classifier=TINY, seed=0, cache_dir=blocked)
    assert blocked.read_text() == "mine"
    assert score == cas_score(tiny_mnist_run, data, per_class=5, classifier=TINY, seed=0) | {
        "seconds": score["seconds"]
    }
    # A full disk while writing: the partial temp is removed, no cache entry is left half written.
    import errno

    from ganaug import outputs

    def full(self, text):
        Path.write_bytes(self, text.encode()[:10])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    cache = tmp_path / "cache"
    monkeypatch.setattr(outputs.Path, "write_text", full)
    with pytest.warns(cas.CacheNotWritten, match="no space left on the device while writing"):
        ceiling = real_ceiling(data, classifier=TINY, seed=0, cache_dir=cache)
    monkeypatch.undo()
    assert ceiling["train_images"] == len(data.train_labels) and list(cache.iterdir()) == []


def test_training_leaves_the_global_rng_alone(data):
    torch.manual_seed(7)
    before = torch.get_rng_state()
    cas.train_classifier([(data.test_images, data.test_labels)], classifier=TINY, num_classes=10, seed=0)
    assert torch.equal(torch.get_rng_state(), before)


def test_unknown_classifier_and_empty_source_are_one_line_errors(data, tiny_mnist_run):
    from ganaug.errors import InputError

    with pytest.raises(InputError, match="choose one of full, cpu, smoke"):
        cas_score(tiny_mnist_run, data, classifier="huge")
    with pytest.raises(InputError, match="empty"):
        cas.train_classifier([(data.test_images[:0], data.test_labels[:0])], classifier=TINY, num_classes=10, seed=0)


@pytest.fixture(scope="module")
def tiny_mnist_run(tmp_path_factory, data):
    from ganaug.train.trainer import Trainer
    from tests.conftest import tiny_config

    root = make_fake_mnist(tmp_path_factory.mktemp("gan_data"))
    run = tmp_path_factory.mktemp("run") / "r"
    Trainer.new(tiny_config(dataset="mnist", data_root=str(root), per_class=None), run, progress=False).fit()
    return run


def test_evaluate_cas_prints_cas_beside_the_ceiling_and_writes_json(tmp_path, tiny_mnist_run):
    from ganaug.classify.evaluator import EvaluatorConfig, EvaluatorTraining, train_evaluator_on

    root = make_fake_mnist(tmp_path / "data")
    settings = EvaluatorTraining(epochs=1, batch_size=64, model=EvaluatorConfig(width=4, hidden=16))
    ev = train_evaluator_on("mnist", root=root, settings=settings).save(tmp_path / "ev")
    args = ["evaluate", str(tiny_mnist_run), "--evaluator", str(ev), "--data-root", str(root), "--per-class", "5"]
    args += ["--device", "cpu", "--cas", "--cas-classifier", "smoke", "--cas-per-class", "10"]
    # --threads fixed: the cache key records the thread count, which by default follows the machine's idle CPUs
    args += ["--cas-cache", str(tmp_path / "cache"), "--json", str(tmp_path / "out.json"), "--threads", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out.json").read_text())["cas"]
    assert doc["classifier"] == "smoke" and doc["score"]["train_images"] == 100
    assert doc["gap_pp"] == pytest.approx(100 * (doc["ceiling"]["accuracy"] - doc["score"]["accuracy"]))
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("CAS (smoke classifier, 10/class, seed 0): ")
    assert f"{doc['score']['accuracy']:.2%} vs real ceiling {doc['ceiling']['accuracy']:.2%}" in line
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2
    # Without --cas-per-class: as many of each class as the real training split holds, recorded in the JSON.
    args[args.index("--cas-per-class") : args.index("--cas-per-class") + 2] = []
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "out.json").read_text())["cas"]
    counts = torch.bincount(load_source("mnist", root=root, split="train").labels, minlength=10).tolist()
    assert doc["per_class"] is None and doc["score"]["counts"] == counts and doc["score"]["train_images"] == sum(counts)
    line = res.output.strip().splitlines()[-1]
    assert line.startswith(f"CAS (smoke classifier, {sum(counts):,} images, the training split's counts, seed 0): ")
    assert len(list((tmp_path / "cache").glob("*.json"))) == 3  # the ceiling came from the cache


def test_data_identity_is_the_bytes_of_both_splits(data):
    digits = CASData.from_sources(load_source("digits", split="train"), load_source("digits", split="test"))
    assert digits.identity["dataset"] == "digits" and data.identity["dataset"] == "mnist"
    assert digits.identity["train_sha256"] != data.identity["train_sha256"]
    assert np.isclose(float(data.test_images.min()), -1.0)
