"""Text the database cannot store never becomes a 500: every route of the OpenAPI
description, called with NUL characters, lone surrogates and over-long strings in its path
parameters, query parameters and JSON body, answers 4xx with a message. The API runs in
process on a real database (the routes' SQL is what would fail)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from dashboard.app import create_app
from tests.fix_api import TEST_PASSWORD, set_passwords
from tests.fix_db import copy_database

NUL = "P-0001\x00'; --"
SURROGATE = "P-\ud800-0001"
LONG = "x" * 20_000  # over PostgreSQL's index row size (about 2.7 kB): a lookup key may not reach it

BAD_VALUES = {"nul": NUL, "surrogate": SURROGATE, "long": LONG}


@pytest.fixture(scope="module")
def api(template_database: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    # One database and one app for the module: the requests here are refused or leave nothing the others read.
    with copy_database(template_database) as database_url:
        yield from _api(database_url)


def _api(database_url: str) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO users (username, display_name, role) VALUES ('disp1', 'Dispatcher One', 'dispatcher')")
    set_passwords(database_url)
    app = create_app(database_url=database_url, token_secret="bad-input-test-secret-0123456789", docs=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post("/api/token", data={"username": "disp1", "password": TEST_PASSWORD}).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, client.get("/openapi.json").json()


def _example(schema: dict[str, Any], spec: dict[str, Any], bad: str, depth: int = 0) -> Any:
    """A value of `schema` with `bad` in every string (numbers and booleans left valid, so
    the request gets as far as the route)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            options = [s for s in schema[combined] if s.get("type") != "null"] or schema[combined]
            return _example(options[0], spec, bad, depth)
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        return {name: _example(sub, spec, bad, depth + 1) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items", {}), spec, bad, depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 30.8
    if kind == "boolean":
        return True
    return bad


def _quote(value: Any) -> str:
    # As a client would send it: UTF-8, percent-encoded (a lone surrogate as its UTF-8-like bytes).
    return quote(str(value), safe="", errors="surrogatepass")


def _requests(spec: dict[str, Any], bad: str) -> Iterator[tuple[str, str, str | None]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            url = path
            query = []
            for p in operation.get("parameters", []):
                value = _example(p.get("schema", {}), spec, bad)
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", _quote(value))
                elif p["in"] == "query":
                    query.append(f"{p['name']}={_quote(value)}")
            if query:
                url += "?" + "&".join(query)
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                payload = json.dumps(_example(body["application/json"]["schema"], spec, bad))
            elif "application/x-www-form-urlencoded" in body:
                payload = "form"
            else:
                payload = None
            yield method.upper(), url, payload


@pytest.mark.parametrize("kind", BAD_VALUES)
def test_every_route_answers_unstorable_text_with_a_4xx(api: tuple[TestClient, dict[str, Any]], kind: str) -> None:
    client, spec = api
    bad = BAD_VALUES[kind]
    failures = []
    walked = 0
    for method, url, payload in _requests(spec, bad):
        if payload == "form":
            form = f"username={_quote(bad)}&password={_quote(bad)}"
            response = client.request(method, url, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        elif payload is not None:
            response = client.request(method, url, content=payload, headers={"Content-Type": "application/json"})
        else:
            response = client.request(method, url)
        walked += 1
        if response.status_code >= 500:
            failures.append(f"{method} {url[:80]} -> {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            assert response.json().get("detail"), f"{method} {url[:80]}: a {response.status_code} without a message"
    assert walked > 30, "the OpenAPI description lists the API's routes"
    assert not failures, "\n".join(failures)


def test_a_nul_in_a_json_body_is_refused_naming_the_field(api: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = api
    r = client.post("/api/incidents", content=json.dumps({"lat": 30.8, "lon": 120.9, "kind": "medical", "priority": 1,
                                                          "description": "fell\u0000down"}),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "body.description" in r.json()["detail"] and "NUL" in r.json()["detail"]


def test_a_nul_in_a_login_form_is_refused_before_the_database_and_counted(api: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = api

    def refused() -> float:
        metrics = client.get("/metrics").text
        return float(next(line.split()[-1] for line in metrics.splitlines()
                          if line.startswith("watchpost_api_unstorable_requests_total")))

    before = refused()
    r = client.post("/api/token", data={"username": "op1\x00", "password": "whatever-it-is"})
    assert r.status_code == 422 and "username" in r.json()["detail"]
    assert refused() == before + 1


def test_a_nul_in_a_body_sent_without_a_content_type_is_refused_too(api: tuple[TestClient, dict[str, Any]]) -> None:
    client, _ = api
    body = json.dumps({"lat": 30.8, "lon": 120.9, "kind": "medical", "priority": 1, "description": "a\u0000b"})
    r = client.post("/api/incidents", content=body, headers={"Content-Type": ""})
    assert r.status_code == 422 and r.json()["detail"].startswith("body.description: contains a NUL")
