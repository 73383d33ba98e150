"""The shape of the code, checked: the layers contract holds and would catch a break.

``make test`` runs ruff, mypy and ``lint-imports`` on the tree itself; these tests show that
the contract is not toothless, by planting an upward import and an import circle in a temp
copy and watching ``lint-imports`` fail on each, and check the rules a linter cannot see.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EDGE = REPO / "edge"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Declarative tables (the settings schema) may grow past the limit; nothing else should.
LONG_ALLOWED: set[str] = set()
MAX_LINES = 400



def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(EDGE, root / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)


def _plant(root: Path, module: str, line: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text)


def test_the_tree_keeps_its_contracts(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "planted", "expected"), [
    # an upward import: the database layer reaching for the CLI
    ("edge.db.faces", "import edge.cli  # planted",
     ["edge.db is not allowed to import edge.cli", "edge.db.faces -> edge.cli"]),
    # a circle inside a package: events already imports connection
    ("edge.db.connection", "import edge.db.events  # planted", ["No cycles are allowed in edge.db"]),
    # paho has one owner, edge.mqtt.client
    ("edge.mqtt.topics", "import paho.mqtt.client  # planted", ["edge.mqtt.topics -> paho"]),
], ids=["upward-import", "circle", "paho-owner"])
def test_a_planted_bad_import_breaks_a_contract(tmp_path: Path, module: str, planted: str,
                                                expected: list[str]) -> None:
    root = _copy(tmp_path)
    _plant(root, module, planted)
    result = _lint(root)
    assert result.returncode != 0
    for text in expected:
        assert text in result.stdout


def _sources() -> list[Path]:
    return sorted(EDGE.rglob("*.py"))


def test_no_module_is_loaded_by_name() -> None:
    """importlib would hide an import from the contract."""
    offenders = [str(p.relative_to(REPO)) for p in _sources()
                 if re.search(r"importlib\.import_module|__import__\(", p.read_text())]
    assert offenders == []


def test_only_the_cli_parses_arguments() -> None:
    offenders = [str(p.relative_to(REPO)) for p in _sources()
                 if re.search(r"^\s*import argparse|^\s*from argparse", p.read_text(), re.M)
                 and "edge/cli/" not in p.as_posix()]
    assert offenders == []


def test_sql_runs_only_in_the_db_package() -> None:
    sql = re.compile(r"""\.execute(many|script)?\(\s*f?["'](SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN|DROP)""",
                     re.I)
    offenders = [str(p.relative_to(REPO)) for p in _sources()
                 if "edge/db/" not in p.as_posix() and sql.search(p.read_text())]
    assert offenders == []


def test_modules_stay_small() -> None:
    long = {str(p.relative_to(REPO)): n for p in _sources()
            if (n := len(p.read_text().splitlines())) > MAX_LINES and str(p.relative_to(REPO)) not in LONG_ALLOWED}
    assert long == {}
