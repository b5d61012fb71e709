"""The Chinese documentation is reachable from the English and its links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHINESE = [ROOT / "README.zh-CN.md", ROOT / "docs" / "zh-CN" / "部署指南.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_and_the_operators_guide_link_their_chinese_versions() -> None:
    readme, operations = (ROOT / "README.md").read_text(), (ROOT / "docs" / "operations.md").read_text()
    assert "(README.zh-CN.md)" in readme and "(docs/zh-CN/部署指南.md)" in readme
    assert "(zh-CN/部署指南.md)" in operations and "change together" in operations


@pytest.mark.parametrize("path", CHINESE, ids=lambda p: p.name)
def test_every_relative_link_of_the_chinese_docs_leads_to_a_file(path: Path) -> None:
    targets = [t for t in LINK.findall(path.read_text()) if not t.startswith(("http://", "https://"))]
    assert targets
    missing = [t for t in targets if not (path.parent / t).exists()]
    assert missing == [], f"{path.name} links to missing files: {missing}"
