"""The layer contract (pyproject.toml [tool.importlinter]) holds, and it does fail on an upward
import: a copy of the package with one added is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(LINT), "--no-cache", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=src,
        env=env,
        timeout=300,
    )


def test_the_tree_keeps_both_contracts() -> None:
    done = lint(ROOT / "src")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / "tunelab", tmp_path / "tunelab")
    schema = tmp_path / "tunelab" / "config" / "schema.py"
    schema.write_text(
        schema.read_text(encoding="utf-8")
        + "\n\ndef _upward():\n    from tunelab.workflows import train\n",
        encoding="utf-8",
    )
    done = lint(tmp_path)
    assert done.returncode != 0
    assert "tunelab.config is not allowed to import tunelab.workflows" in done.stdout
    assert "tunelab.config.schema -> tunelab.workflows" in done.stdout
