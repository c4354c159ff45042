"""Dependencies point one way (DESIGN.md §3): ``center`` imports no HTTP, no WebRTC and no
package above it; ``alerts`` and ``media`` do not import each other nor ``web``.

Read from the source (every ``import`` and ``from … import``, at any depth, including
those inside functions), so a lazy import cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "center": ("aiohttp", "aiortc", "av", "web", "alerts", "media"),
    "config": ("aiohttp", "aiortc", "web", "alerts", "media", "center"),
    "alerts": ("web", "media", "aiortc"),
    "media": ("web", "alerts"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_arrow_runs_back_up(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            top = name.split(".", 1)[0]
            if top in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_no_import_error_guards() -> None:
    """Optional wiring is the composition root's job, not a ``try: import`` in a module."""
    bad = []
    for package in ("center", "alerts", "media", "web", "config"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ExceptHandler)
                    and isinstance(node.type, ast.Name)
                    and node.type.id in ("ImportError", "ModuleNotFoundError")
                ):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad
