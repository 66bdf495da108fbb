"""The rank-agreement statistics of benchmarks/metric_agreement.py (the scoring itself needs real MNIST)."""

from __future__ import annotations

import pytest

from ganaug.cli.bench import _load_benchmark

agreement_benchmark = _load_benchmark("metric_agreement")


def _rows(ours, theirs):
    return [
        {"ganaug_fidelity": a, "knn_fidelity": b, "ganaug_fd": 10 - a, "pca_fd": 10 - b} for a, b in zip(ours, theirs)
    ]


def test_same_order_agrees_fully_and_reversed_order_disagrees():
    same = agreement_benchmark.agreement(_rows([0.9, 0.5, 0.7, 0.2], [0.95, 0.4, 0.8, 0.1]))
    assert all(v["spearman_rho"] == pytest.approx(1) and v["kendall_tau"] == pytest.approx(1) for v in same.values())
    flipped = agreement_benchmark.agreement(_rows([0.9, 0.5, 0.7, 0.2], [0.1, 0.8, 0.4, 0.95]))
    assert all(v["spearman_rho"] == pytest.approx(-1) for v in flipped.values())
    assert flipped["ganaug_fd vs pca_fd"]["generators"] == 4


def test_fewer_than_three_generators_is_refused(tmp_path):
    with pytest.raises(SystemExit) as e:
        agreement_benchmark.main(["a", "b", "--data-root", str(tmp_path), "--evaluator", str(tmp_path)])
    assert e.value.code == 2
