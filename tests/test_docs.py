"""The README and docs/ speak to users: no work-log references, every results link exists and holds its command,
docs/options.md is what the commands print, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Work-log words: issue and round numbers, sessions, dated experiments ("on 2026-11-29 ...").
WORK_LOG = re.compile(
    r"\b(issue|round|session|stop)s?[- _]?#?\d+|\b20\d\d-\d\d-\d\d\b|\b(this|last|next|earlier|previous) session\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("path", USER_DOCS, ids=lambda p: p.name)
def test_user_docs_hold_no_work_log(path):
    hits = [
        f"{i}: {line.strip()[:100]}" for i, line in enumerate(path.read_text().splitlines(), 1) if WORK_LOG.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_results_link_exists_and_holds_its_command():
    links = set()
    for path in USER_DOCS:
        links |= set(re.findall(r"(benchmarks/results/[\w./-]+)", path.read_text()))
    assert links, "the README states figures: each links to the results folder that holds its command"
    results = ROOT / "benchmarks" / "results"
    for link in sorted(links):
        target = ROOT / link.rstrip(".")
        assert target.exists(), link
        if target.parent == results and target.is_file():  # RESULTS.md, HISTORY.md: the index and the history
            continue
        top = results / target.relative_to(results).parts[0]  # the figure's folder: its README says how
        readme = top / "README.md"
        assert readme.is_file(), f"{top} has no README.md saying its command and machine"
        assert re.search(r"(python|ganaug|bash) ", readme.read_text()), f"{readme} states no command"


def test_no_script_under_results():
    assert not list((ROOT / "benchmarks" / "results").rglob("*.py"))
    assert (ROOT / "benchmarks" / "results" / "RESULTS.md").is_file()


def test_options_doc_is_what_the_commands_print():
    from ganaug.cli.helpdoc import render

    assert (ROOT / "docs" / "options.md").read_text() == render(), (
        "regenerate it: python -m ganaug.cli.helpdoc > docs/options.md"
    )
