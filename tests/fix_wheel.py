"""Watchpost's wheel, built once per session from a clean copy of this checkout (setuptools
reuses a `build/` directory, which could carry modules that no longer exist)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from: pyproject.toml, README.md and the packages it includes.
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "node_modules",
                                      ".cache", "test-artifacts", ".env.local", "bench", "tests", "docs")


@pytest.fixture(scope="session")
def watchpost_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = (work / "dist").glob("watchpost-*.whl")
    return wheel
