"""Migrations are frozen history: none imports the code's tables (or anything of ours).

A revision that builds its tables from today's modules would create different tables
when replayed after those modules change. tests/integration/test_schema.py checks that
the frozen revisions and the code still describe one schema.
"""

import ast
from pathlib import Path

import shared.migrations.versions

VERSIONS = Path(shared.migrations.versions.__file__).parent
OURS = ("shared", "services")


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_no_revision_imports_our_modules() -> None:
    revisions = sorted(VERSIONS.glob("[0-9]*.py"))
    assert len(revisions) >= 4
    importing = {
        path.name: sorted(m for m in imported_modules(path) if m.split(".")[0] in OURS)
        for path in revisions
    }
    assert {name: found for name, found in importing.items() if found} == {}
