"""The county the pages are for, as the region settings name it: `GET /api/region` gives the
pages their titles and the map its opening view, so no page or script carries a county's
name and one build serves any county.

Public (no token): the login screens show the titles before anyone has logged in, and
nothing here is more than a county's name and where it lies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
import orjson

from dashboard.context import ApiContext, context
from kernel.settings import RegionSettings

router = APIRouter(prefix="/api")
Ctx = Annotated[ApiContext, Depends(context)]

# The settings change only with a restart; a page loaded meanwhile may keep the old titles
# this long.
CACHE_S = 300

# Each page's i18n key of a title, and the words it adds to the region's names.
_TIER_TITLES = {
    "zh": {"first_aid": "村卫生室", "hospital": "医院急诊预警", "crew": "救护车组"},
    "en": {"first_aid": "First-aid post", "hospital": "Emergency department", "crew": "Crew terminal"},
}
_CONSOLE = {"zh": "值班台", "en": ""}
_FAMILY = {"zh": "家人", "en": "Family"}


def page_strings(region: RegionSettings) -> dict[str, dict[str, str]]:
    """The pages' strings that name the county, by language: they take precedence over the
    pages' own (static/i18n.js)."""
    out: dict[str, dict[str, str]] = {}
    for lang in ("zh", "en"):
        app, room = region.app_name(lang), region.control_room(lang)
        strings = {
            "app.name": app,
            "console.title": f"{room} · {_CONSOLE[lang]}" if _CONSOLE[lang] else room,
            "family.title": f"{app} · {_FAMILY[lang]}",
        }
        strings |= {f"tier.{role}.title": f"{app} · {words}" for role, words in _TIER_TITLES[lang].items()}
        out[lang] = strings
    return out


def region_document(region: RegionSettings) -> dict[str, Any]:
    return {
        "name": {"zh": region.name_zh, "en": region.name_en},
        "adcode": region.adcode or None,
        "map": {"centre": {"lat": region.centre_lat, "lon": region.centre_lon}, "zoom": region.zoom},
        "strings": page_strings(region),
    }


@router.get("/region", summary="The county served: names, page titles, the map's opening view (public)")
async def region(ctx: Ctx) -> Response:
    return Response(orjson.dumps(region_document(ctx.region)), media_type="application/json",
                    headers={"Cache-Control": f"max-age={CACHE_S}"})
