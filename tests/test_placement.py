"""benchmarks/placement.py: centre-of-mass and size figures, and the probe end to end."""

import json

import pytest

from benchmarks import placement
from tests.test_center_of_mass import bars
from tests.test_coverage import evaluator_dir  # noqa: F401  (fixture)


def test_placement_of_centred_bars_and_of_the_same_bars_moved():
    x = bars(40)
    p = placement.placement(x)
    assert p["com_row"] == {"mean": pytest.approx(14.0), "std": pytest.approx(0.0)}
    assert p["com_within_half_pixel"] == 1.0
    sides = {max(2 * h + 1, 2 * w + 1) for h in range(2, 6) for w in range(1, 4)}  # the bars' possible sizes
    assert set(p["larger_side_share"]) <= sides and sum(p["larger_side_share"].values()) == pytest.approx(1.0)
    moved = placement.placement(x.roll(2, dims=3))
    assert moved["com_col"]["mean"] == pytest.approx(16.0) and moved["com_within_half_pixel"] == 0.0
    assert moved["larger_side_share"] == p["larger_side_share"]  # a move keeps the size


def test_size_selection_takes_the_first_candidate_of_the_target_size_else_the_closest():
    import torch

    def square(side: int) -> torch.Tensor:  # [1, 1, 28, 28]: a side x side square of ink at the top left
        x = -torch.ones(1, 1, 28, 28)
        x[..., :side, :side] = 1.0
        return x

    a = torch.cat([square(22), square(19), square(20), square(0)])
    b = torch.cat([square(20), square(21), square(20), square(18)])
    c = torch.cat([square(20), square(20), square(17), square(23)])
    assert placement.larger_side(a).tolist() == [22, 19, 20, 0]
    chosen = placement.size_selected([a, b, c])
    # sample 0: b (the first at 20); 1: c (the only 20); 2: a (first of two at 20); 3: b (18 is the closest)
    expected = torch.cat([b[0:1], c[1:2], a[2:3], b[3:4]])
    assert torch.equal(chosen, expected)


def test_probe_scores_a_run_and_refuses_a_file_not_its_own(tmp_path, tiny_run, evaluator_dir, capsys):  # noqa: F811
    out = tmp_path / "placement.json"
    argv = [str(tiny_run), "--evaluator", str(evaluator_dir), "--dataset", "digits", "--per-class", "10"]
    doc = placement.main([*argv, "--out", str(out), "--size-candidates", "2"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    changed = doc["real_floor_changed"]
    assert len(changed) == 5 and "moved 1 px right" in changed
    pr = lambda v: (v["precision"], v["recall"])
    assert all(pr(v) != pr(changed["as they are"]) for k, v in changed.items() if k != "as they are")
    row = doc["generators"][str(tiny_run)]
    assert 0 <= row["as sampled"]["recall"] <= 1 and row["moved to the centre"]["fd"] > 0
    chosen = row["larger side 20, first of 2"]
    assert 0 <= chosen["larger_side_20_share"] <= 1 and chosen["fd"] > 0
    assert "| real test split |" in capsys.readouterr().out
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": 1}')
    with pytest.raises(SystemExit):
        placement.main([*argv, "--out", str(mine)])
    assert mine.read_text() == '{"mine": 1}'
    with pytest.raises(SystemExit):
        placement.main([*argv[:3], "--dataset", "mnist", "--out", str(tmp_path / "new.json")])  # no --data-root
