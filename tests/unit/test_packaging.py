"""What the wheel installs: the top-level packages are the known ones, so that a new
top-level folder (which lands in every environment Watchpost is installed into) is a
decision, not an accident; and the command with what it runs comes along."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests.fix_wheel import watchpost_wheel  # noqa: F401  (the fixture)

# docs/operations.md, "Packaging", says why these names stay top-level.
TOP_LEVEL = {"watchpost", "kernel", "ingest", "dispatch", "notify", "dashboard", "simulators"}


def test_the_wheel_installs_only_the_known_top_level_packages(watchpost_wheel: Path) -> None:  # noqa: F811
    with zipfile.ZipFile(watchpost_wheel) as wheel:
        names = wheel.namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level <= TOP_LEVEL, f"new top-level names in the wheel: {sorted(top_level - TOP_LEVEL)}"
    assert {"watchpost", "ingest", "dispatch", "dashboard", "simulators"} <= top_level


def test_the_wheel_carries_the_command_and_its_backups(watchpost_wheel: Path) -> None:  # noqa: F811
    with zipfile.ZipFile(watchpost_wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "watchpost = watchpost.cli:main" in wheel.read(entry_points).decode()
    assert "watchpost/backup.py" in names


def test_the_wheel_carries_the_console_pages_and_their_vendor_libraries(watchpost_wheel: Path) -> None:  # noqa: F811
    with zipfile.ZipFile(watchpost_wheel) as wheel:
        names = set(wheel.namelist())
    assert {"dashboard/static/console.html", "dashboard/static/vendor/leaflet/leaflet.js",
            "dashboard/static/vendor/uplot/uPlot.iife.min.js"} <= names
