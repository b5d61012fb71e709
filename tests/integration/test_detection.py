"""The detection table in CI: a short accelerated county run on realistic wearables, through
the real broker, ingest and alert lane; what the simulator injected against what the
platform raised."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kernel.broker import SIMULATOR_USER
from simulators.cli import build_parser, run
from tests.fix_broker import TEST_ROOT, Broker

pytestmark = pytest.mark.slow


def test_the_platform_detects_what_the_simulator_injects(
    broker: Broker, start_ingest, start_alerts, jiashan_url: str, jiashan_registry: dict, tmp_path: Path
) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(jiashan_registry, allow_unicode=True))
    start_ingest(db_url=jiashan_url)
    start_alerts(db_url=jiashan_url)
    args = build_parser().parse_args([
        "--mqtt-url", broker.url(SIMULATOR_USER), "--root", TEST_ROOT, "--quiet", "--scenario", "detection-ci",
        "--registry", str(registry_file), "--database-url", jiashan_url, "--settle", "120",
    ])
    summary = run(args)
    print(summary.format())
    table = summary.detection
    assert table is not None
    detected, injected = table.life_safety
    assert injected >= 6, table.format()
    assert table.missed_sos == 0, table.format()
    assert table.detection_pct is not None and table.detection_pct >= 99.0, table.format()
    assert table.false_per_person_week is not None
