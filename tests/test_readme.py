"""The README stays true: its configuration table and quick-start commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import FIELDS, settings_table_markdown

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_configuration_table_is_current() -> None:
    block = re.search(
        r"<!-- settings-table:start -->\n(.*?)<!-- settings-table:end -->", README, re.S
    )
    assert block, "README lacks the settings-table markers"
    assert block.group(1).strip() == settings_table_markdown().strip(), (
        "README configuration table is stale: run `python run.py settings --write-readme` "
        "to regenerate it"
    )
    for name in FIELDS:
        assert f"CENTER_{name.upper()}" in block.group(1)


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_second() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    fence = re.search(r"```sh\n(.*?)```", quick, re.S)
    assert fence
    commands = [ln for ln in fence.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2
    assert "python run.py --demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1].strip() in ci
