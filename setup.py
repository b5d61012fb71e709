"""The wheel must carry what the console pages load: the map and chart libraries that
scripts/frontend.sh installs into dashboard/static/vendor (generated, not in git). A wheel
built without them installs and starts, and then serves a console without a map — so the
build stops instead, saying what to run. (An editable install serves the checkout's own
folder and is not held to it.) Everything else is in pyproject.toml."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

VENDOR_FILES = ("leaflet/leaflet.js", "leaflet/leaflet.css", "uplot/uPlot.iife.min.js", "uplot/uPlot.min.css")


class BuildWithVendorAssets(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            vendor = Path(__file__).resolve().parent / "dashboard" / "static" / "vendor"
            missing = [f for f in VENDOR_FILES if not (vendor / f).is_file()]
            if missing:
                raise SystemExit(f"dashboard/static/vendor lacks {', '.join(missing)}: run scripts/frontend.sh before building the wheel")
        super().run()


setup(cmdclass={"build_py": BuildWithVendorAssets})
