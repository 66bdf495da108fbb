"""benchmarks/sampling_choice.py: the rule picks on the choice figures alone, and the script runs end to end
without the test split taking part in the choice."""

import json

import pytest

from benchmarks import sampling_choice


def _row(t, recall, fd, fidelity, test_recall=0.5):
    figures = {"recall": recall, "fd": fd, "fidelity": fidelity}
    return {"temperature": t, "choice": figures, "test": {**figures, "recall": test_recall}}


def test_rule_takes_the_highest_recall_within_the_limits_from_the_choice_figures_only():
    rows = [
        _row(1.0, 0.80, 1.0, 0.995, test_recall=0.99),  # plain sampling: the FD reference
        _row(1.1, 0.84, 1.7, 0.993),
        _row(1.2, 0.86, 1.9, 0.994),  # FD grew past 1.8x
        _row(1.3, 0.88, 1.5, 0.985),  # fidelity under the limit
    ]
    assert sampling_choice.choose(rows, fd_growth=1.8, fidelity_min=0.99)["temperature"] == 1.1
    assert sampling_choice.choose(rows, fd_growth=2.0, fidelity_min=0.99)["temperature"] == 1.2
    # Nothing passing (not even plain sampling): plain sampling, not the highest test recall.
    assert sampling_choice.choose(rows, fd_growth=1.8, fidelity_min=0.999)["temperature"] == 1.0
    # A tie in recall goes to the lower temperature.
    tie = [_row(1.0, 0.80, 1.0, 0.995), _row(1.2, 0.84, 1.0, 0.995), _row(1.1, 0.84, 1.0, 0.995)]
    assert sampling_choice.choose(tie, fd_growth=1.8, fidelity_min=0.99)["temperature"] == 1.1


def test_end_to_end_on_digits(tiny_run, tmp_path):
    import dataclasses

    from ganaug.classify.evaluator import train_evaluator_on
    from tests.test_resample import TINY

    judge = train_evaluator_on("digits", settings=TINY).save(tmp_path / "judge")
    check = train_evaluator_on("digits", settings=dataclasses.replace(TINY, seed=1)).save(tmp_path / "check")
    args = [str(tiny_run), "--evaluator", str(judge), "--label-check", str(check), "--temperatures", "1,1.3"]
    args += ["--reference-per-class", "20", "--per-class", "10", "--threads", "1", "--choice-epochs", "1"]
    args += ["--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "out")]
    results = sampling_choice.main(args)
    assert [r["temperature"] for r in results["rows"]] == [1.0, 1.3]
    assert results["chosen_temperature"] in (1.0, 1.3)
    assert all(r["sampling"]["label_check"]["rounds"] == 8 for r in results["rows"])
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["chosen_temperature"] == results["chosen_temperature"]
    assert "Chosen: **T = " in (tmp_path / "out" / "report.md").read_text()
    # The choice evaluator is reused when its held-out reference is the same.
    stamp = (tmp_path / "work" / "choice-evaluator" / "model.safetensors").stat().st_mtime_ns
    sampling_choice.main(args)
    assert (tmp_path / "work" / "choice-evaluator" / "model.safetensors").stat().st_mtime_ns == stamp
    # --rows-from applies another rule to the scored rows without scoring again.
    again = sampling_choice.main(args + ["--rows-from", str(tmp_path / "out" / "results.json"), "--fd-growth", "100"])
    assert again["rows"] == results["rows"] and again["scored_by"] == results["scored_by"]
    passing = [r for r in results["rows"] if r["choice"]["fidelity"] >= 0.99]
    best = max(passing, key=lambda r: (r["choice"]["recall"], -r["temperature"])) if passing else results["rows"][0]
    assert again["chosen_temperature"] == best["temperature"]


def test_bad_temperatures_are_refused():
    with pytest.raises(SystemExit):
        sampling_choice.parse_args(["run", "--evaluator", "e", "--temperatures", "1,0"])
    with pytest.raises(SystemExit):
        sampling_choice.parse_args(["run", "--evaluator", "e", "--temperatures", "1,x"])
    with pytest.raises(SystemExit):  # the first must be plain sampling, the FD reference
        sampling_choice.parse_args(["run", "--evaluator", "e", "--temperatures", "1.1,1"])


def test_sampling_cost_times_the_three_side_by_side(tiny_run, tmp_path):
    import dataclasses
    import shutil

    from benchmarks import sampling_cost
    from ganaug.classify.evaluator import train_evaluator_on
    from ganaug.train.export import export_onnx
    from tests.test_resample import TINY

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    export_onnx(run)
    check = train_evaluator_on("digits", settings=dataclasses.replace(TINY, seed=1)).save(tmp_path / "check")
    out = tmp_path / "cost.json"
    args = [str(run), "--label-check", str(check), "--images", "300", "--repeats", "2", "--threads", "1"]
    result = sampling_cost.main(args + ["--out", str(out)])
    assert json.loads(out.read_text())["images"] == 300
    assert len(result["rows"]) == 3 and all(len(r["seconds"]) == 2 for r in result["rows"].values())
    assert result["rows"]["plain"]["speed_vs_plain"] == 1.0
    assert 0 <= result["redrawn_share_first_try"] <= 1


def test_foreign_folders_and_files_are_refused(tmp_path):
    from benchmarks import sampling_cost

    foreign = tmp_path / "work" / "choice-evaluator"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not a choice evaluator this script wrote"):
        sampling_choice.choice_evaluator(foreign, None, None, reference_seed=1)
    assert (foreign / "notes.txt").read_text() == "mine"
    mine = tmp_path / "mine.json"
    mine.write_text('{"a": 1}')
    with pytest.raises(SystemExit):
        sampling_cost.main(["run", "--label-check", "c", "--out", str(mine)])
    assert mine.read_text() == '{"a": 1}'
