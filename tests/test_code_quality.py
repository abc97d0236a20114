"""Lint, format and strict typing are part of the test suite, so one command checks all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.config import ROOT_DIR

CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "."],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "."],
    "mypy --strict": [sys.executable, "-m", "mypy"],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_code_quality(name: str) -> None:
    result = subprocess.run(
        CHECKS[name], cwd=ROOT_DIR, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
