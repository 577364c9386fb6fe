"""Each folder keeps to its job: the domain imports no infrastructure."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_DOMAIN = (
    "telegram",
    "aiosqlite",
    "sqlite3",
    "aiohttp",
    "apscheduler",
    "storage",
    "handlers",
    "scheduler",
    "httpx",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_domain_imports_no_infrastructure():
    files = sorted((ROOT / "bot" / "domain").glob("*.py"))
    assert files
    for path in files:
        bad = imported_modules(path) & set(FORBIDDEN_IN_DOMAIN)
        assert not bad, f"{path.name} imports {bad}"


def test_the_domain_never_reads_the_clock():
    for path in (ROOT / "bot" / "domain").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert ".now(" not in text and "time.time(" not in text, path.name


def test_storage_knows_nothing_of_telegram():
    for path in (ROOT / "storage").glob("*.py"):
        assert "telegram" not in imported_modules(path), path.name
