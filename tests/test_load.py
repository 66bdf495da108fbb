"""benchmarks/load.py: its medians, shares of quiet throughput and the issue's bar, on made-up runs."""

from __future__ import annotations

import pytest

from ganaug.cli.bench import _load_benchmark

load = _load_benchmark("load")


def _runs(policy: str, by_load: dict[int, list[float]]) -> list[dict]:
    return [
        {"policy": policy, "busy": n, "repeat": r, "images_per_second": v, "torch_threads": 2}
        for n, values in by_load.items()
        for r, v in enumerate(values)
    ]


def test_medians_shares_and_the_bar():
    runs = _runs("old", {0: [700, 724, 750], 1: [225, 200, 230], 3: [104, 100, 110]})
    runs += _runs("new", {0: [690, 720, 800], 1: [402, 380, 390], 3: [180, 225, 190]})
    s = load.summarize(runs)
    assert s["medians"]["old"] == {0: 724, 1: 225, 3: 104}
    assert s["medians"]["new"] == {0: 720, 1: 390, 3: 190}
    assert s["share_of_quiet"]["old"][1] == pytest.approx(225 / 724)
    checks = {c["check"]: c for c in s["checks"]}
    assert [c["pass"] for c in s["checks"]] == [True, True, True]
    assert checks["new quiet throughput >= 95% of old"]["value"] == pytest.approx(720 / 724)
    slow_quiet = load.summarize(_runs("old", {0: [724]}) + _runs("new", {0: [680], 1: [300], 3: [100]}))
    assert [c["pass"] for c in slow_quiet["checks"]] == [False, False, False]  # 44%, 15%, 94%


def test_markdown_names_every_policy_and_the_verdicts(tmp_path):
    runs = _runs("old", {0: [724], 1: [225]}) + _runs("new", {0: [720], 1: [402]})
    policies = load.policies(2)
    doc = {
        "command": "python benchmarks/load.py",
        "ganaug_version": "0",
        "finished": "now",
        "load_average_at_start": [0.0, 0.0, 0.0],
        "machine": {"cpu": "test"},
        "settings": {"epochs": 3, "repeats": 1, "loads": [0, 1], "busy_kind": "matmul"},
        "policies": {n: vars(policies[n]) for n in ("old", "new")},
        "runs": runs,
        "summary": load.summarize(runs),
    }
    load.write_markdown(doc, tmp_path / "load.md")
    text = (tmp_path / "load.md").read_text()
    assert "| 1 | 225 (31%) | 402 (56%) |" in text
    assert "PASS: new keeps >= 50% of its quiet throughput beside 1 busy (56%)" in text
    assert "`old`: libgomp default wait, 2 threads" in text
