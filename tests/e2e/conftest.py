"""Browser fixtures for the end-to-end tests: Debian's Chromium driven by Playwright, and a
screenshot helper writing to test-artifacts/.

The pages load Leaflet from dashboard/static/vendor/leaflet/, which scripts/frontend.sh
installs (from the npm registry, once; a second run is a no-op)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def frontend_assets() -> Path:
    vendor = ROOT / "dashboard" / "static" / "vendor" / "leaflet"
    result = subprocess.run([str(ROOT / "scripts" / "frontend.sh")], check=False, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not (vendor / "leaflet.js").is_file():
        pytest.fail(f"scripts/frontend.sh could not install Leaflet:\n{result.stdout}\n{result.stderr}")
    return vendor


@pytest.fixture(scope="module")
def browser(frontend_assets: Path) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """shot(page, "name") saves test-artifacts/e2e/<test>/<NN>-<name>.png and returns its path."""
    folder = ARTIFACTS / "e2e" / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    counter = iter(range(1, 100))

    def take(page, name: str, **kwargs) -> Path:
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), **kwargs)
        return path

    return take


@pytest.fixture
def page_errors() -> list[str]:
    """Errors the pages threw or logged; a test attaches it with watch(page, page_errors)."""
    return []


def watch(page, errors: list[str]) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
