"""benchmarks/mix_overhead.py and benchmarks/fp16_parity.py run end to end on the CPU (tiny sizes)."""

from __future__ import annotations

import re
from pathlib import Path

from ganaug.cli.bench import _load_benchmark


def test_mix_overhead_prints_a_row_per_batch_with_the_generator_stubbed(capsys) -> None:
    _load_benchmark("mix_overhead").main(["--batches", "8,20", "--blocks", "1", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split("|")[1:3] for row in rows] == [[" 8 ", " 4 "], [" 20 ", " 10 "]]
    assert all(float(row.split("|")[3]) > 0 for row in rows)  # microseconds per step


def test_fp16_parity_reports_every_split_against_the_bar(tiny_run: Path, capsys) -> None:
    _load_benchmark("fp16_parity").main([str(tiny_run), "--batch", "16"])
    out = capsys.readouterr().out
    for label in ("none (all float16)", "embedding + first Linear + last layer", "| input |", "| output |"):
        assert label in out
    errors = [float(e) for e in re.findall(r"\| (\d\.\d+e[-+]\d+) \|", out)]
    assert len(errors) == 7 and all(0 < e < 0.05 for e in errors)
