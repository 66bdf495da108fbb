"""benchmarks/d_ranked.py: best-of-K by D keeps its laws (K = 1 is G(t z); the kept image is the candidate D
ranks highest; sample i does not depend on the batch) and the probe scores a run end to end."""

import json

import pytest
import torch

from benchmarks import d_ranked
from ganaug.models.dcgan import Discriminator
from ganaug.train.checkpoint import config_of, load_checkpoint, load_generator
from tests.test_coverage import evaluator_dir  # noqa: F401  (fixture)


@pytest.fixture
def g_and_d(tiny_run):
    g, _ = load_generator(tiny_run)
    state = load_checkpoint(tiny_run)
    d = Discriminator(config_of(state, tiny_run).model)
    d.load_state_dict(state["D"])
    return g, d.eval()


def test_rotations_are_orthogonal_and_distinct():
    q = d_ranked.rotations(16, 3)
    assert torch.equal(q[0], torch.eye(16))
    for j in range(3):
        torch.testing.assert_close(q[j] @ q[j].T, torch.eye(16), atol=1e-5, rtol=0)
    assert not torch.allclose(q[1], q[2])


def test_best_of_one_is_the_generator_at_temperature(g_and_d):
    g, d = g_and_d
    z, y = torch.randn(12, g.config.z_dim), torch.arange(12) % g.config.num_classes
    with torch.no_grad():
        torch.testing.assert_close(d_ranked.best_of_k(g, d, z, y, t=1.3, k=1), g(1.3 * z, y))


def test_best_of_k_keeps_the_candidate_d_ranks_highest_and_ignores_the_batch(g_and_d):
    g, d = g_and_d
    z, y = torch.randn(10, g.config.z_dim), torch.arange(10) % g.config.num_classes
    out = d_ranked.best_of_k(g, d, z, y, t=1.2, k=3)
    q = d_ranked.rotations(g.config.z_dim, 3)
    with torch.no_grad():
        cands = torch.stack([g(1.2 * z @ q[j].T, y) for j in range(3)])  # [3, N, 1, 28, 28]
        logits = torch.stack([d(c, y) for c in cands])
    best = logits.argmax(0)
    assert len(set(best.tolist())) > 1  # the test can tell a picked candidate from candidate 0
    torch.testing.assert_close(out, cands[best, torch.arange(10)], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch.cat([d_ranked.best_of_k(g, d, z[i : i + 1], y[i : i + 1], t=1.2, k=3) for i in range(10)]),
        out,
        atol=1e-5,
        rtol=0,
    )


def test_probe_scores_every_variant_and_refuses_a_file_not_its_own(tmp_path, tiny_run, evaluator_dir):  # noqa: F811
    out = tmp_path / "d_ranked.json"
    argv = [str(tiny_run), "--evaluator", str(evaluator_dir), "--data-root", str(tmp_path), "--per-class", "10"]
    rows = d_ranked.main([*argv, "--variants", "1:1,1.2:2", "--out", str(out)])
    assert [r["variant"] for r in rows] == ["T 1, best of 1", "T 1.2, best of 2"]
    assert all(0 <= r["recall"] <= 1 and r["fd"] > 0 for r in rows)
    assert json.loads(out.read_text())["rows"] == rows
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": 1}')
    with pytest.raises(SystemExit):
        d_ranked.main([*argv, "--out", str(mine)])
    assert mine.read_text() == '{"mine": 1}'
