"""``docs/options.md``: every command's ``--help``, rendered from the commands themselves so it cannot drift.

    python -m ganaug.cli.helpdoc > docs/options.md

A test renders it again and compares it with the committed file.
"""

from __future__ import annotations

import click

HEADER = """# Every option

Generated from each command's `--help` (`python -m ganaug.cli.helpdoc > docs/options.md`); a test keeps it equal
to what the installed commands print. The presets (`ganaug/train/presets/*.json`) set most training options: a
`--config FILE` of your own holds any of them, and whatever you give on the command line wins.
"""


def _commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    out = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix} {name}")
        else:
            out.append((f"{prefix} {name}", command))
    return out


def render() -> str:
    """The markdown of every command's help as a user's terminal of 100 columns shows it, in a stable order."""
    from click.testing import CliRunner

    from ganaug.cli import main

    parts = [HEADER]
    runner = CliRunner(env={"COLUMNS": "100"})
    for path, _ in _commands(main, "ganaug"):
        words = path.split()[1:]
        result = runner.invoke(main, [*words, "--help"], terminal_width=100, prog_name="ganaug")
        if result.exit_code != 0:
            raise RuntimeError(f"`{path} --help` failed: {result.output or result.exception}")
        parts.append(f"## `{path}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
