"""The county the pages name and the map opens on comes from the region settings."""

from __future__ import annotations

from kernel.settings import load_settings
from dashboard.region import region_document
from tests.unit.test_settings import SECOND_COUNTY


def test_the_region_document_names_the_configured_county_and_its_opening_view() -> None:
    doc = region_document(load_settings(SECOND_COUNTY).region)
    assert doc["name"] == {"zh": "雷山", "en": "Leishan"} and doc["adcode"] == "522634"
    assert doc["map"] == {"centre": {"lat": 26.38, "lon": 108.08}, "zoom": 11}
    zh, en = doc["strings"]["zh"], doc["strings"]["en"]
    assert zh["console.title"] == "雷山应急指挥 · 值班台" and en["console.title"] == "Leishan Emergency Control Room"
    assert zh["family.title"] == "雷山守望 · 家人" and zh["tier.crew.title"] == "雷山守望 · 救护车组"
    assert set(zh) == set(en) == {"app.name", "console.title", "family.title", "tier.first_aid.title",
                                  "tier.hospital.title", "tier.crew.title"}
    assert "嘉善" not in str(doc) and "Jiashan" not in str(doc)


def test_the_demo_county_is_the_default() -> None:
    doc = region_document(load_settings({}).region)
    assert doc["strings"]["zh"]["console.title"] == "嘉善应急指挥 · 值班台" and doc["adcode"] == "330421"


def test_no_page_or_script_names_a_county() -> None:
    """The titles come from /api/region: the static files are the same for every county."""
    from pathlib import Path

    import dashboard

    static = Path(dashboard.__file__).parent / "static"
    for path in [*static.glob("*.html"), *static.glob("*.js")]:
        text = path.read_text(encoding="utf-8")
        assert "嘉善" not in text and "jiashan" not in text.lower(), path.name


def test_region_load_without_a_file_needs_the_boundary_file_setting() -> None:
    from typer.testing import CliRunner

    from watchpost.cli import app

    result = CliRunner().invoke(app, ["region", "load", "boundary"], env={"WATCHPOST_REGION__BOUNDARY_FILE": ""})
    assert result.exit_code == 2 and "WATCHPOST_REGION__BOUNDARY_FILE" in result.output
    result = CliRunner().invoke(app, ["region", "load", "rivers"])
    assert result.exit_code == 2 and "give the rivers layer's file" in result.output
