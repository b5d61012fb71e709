"""Village doctors: the first-aid posts' doctors answering their alerts on the post's page.

A crew's order names the incident's first-aid post. Its doctor's page (`/api/tier/incidents`,
logged in as the post's `first_aid` user) shows the incident if the dispatcher alerted the
post. The doctor then, as planned by `plan`: accepts after a short delay and drives there by
road (the platform's road time from the post, slower than an ambulance: their own car or
e-bike, no siren, and first they leave the surgery), reports on scene and sends a short
note; or declines; or never answers (with a patient, the phone in a coat).

`plan` is pure (the rng comes in). `VillageDoctors` carries the plans out against the API on
its own thread, in real time: simulated seconds divided by the run's acceleration, since the
platform stamps a doctor's steps with its own clock, as it stamps the crews' reports.
"""

from __future__ import annotations

import heapq
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from .jiashan_registry import doctor_username

log = logging.getLogger(__name__)

NOTES = ("conscious, breathing, bleeding controlled", "conscious, hip pain, kept still", "alert, BP taken, waiting with family",
         "responsive to voice, breathing, recovery position")


@dataclass(frozen=True, slots=True)
class DoctorProfile:
    accept_p: float = 0.75
    decline_p: float = 0.10  # the rest never answer
    answer_s: tuple[float, float] = (15.0, 75.0)  # alert to answer
    leave_s: tuple[float, float] = (60.0, 180.0)  # accepted to on the road
    road_factor: tuple[float, float] = (1.15, 1.5)  # × the platform's road time from the post


@dataclass(frozen=True, slots=True)
class DoctorPlan:
    answer: str | None  # accepted, declined, or None: no answer
    answer_after_s: float
    on_scene_after_s: float | None  # from the alert, when accepted


def plan(rng: random.Random, post_eta_s: float, profile: DoctorProfile = DoctorProfile()) -> DoctorPlan:
    """What one doctor does with one alert, in simulated seconds from the alert."""
    roll = rng.random()
    answer_after = rng.uniform(*profile.answer_s)
    if roll >= profile.accept_p + profile.decline_p:
        return DoctorPlan(None, answer_after, None)
    if roll >= profile.accept_p:
        return DoctorPlan("declined", answer_after, None)
    drive = post_eta_s * rng.uniform(*profile.road_factor)
    return DoctorPlan("accepted", answer_after, answer_after + rng.uniform(*profile.leave_s) + drive)


@dataclass
class DoctorTally:
    alerted: int = 0
    accepted: int = 0
    declined: int = 0
    on_scene: int = 0
    errors: int = 0


class VillageDoctors:
    """The doctors of the posts named in crew orders, answering on the post's page."""

    def __init__(self, api_url: str, password: str, *, acceleration: float, seed: int,
                 profile: DoctorProfile = DoctorProfile(), look_s: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._http = httpx.Client(base_url=api_url.rstrip("/"), timeout=10)
        self._password = password
        # As fast as possible (0) still leaves the doctors a real second or two to act in.
        self._scale = 1.0 / acceleration if acceleration > 0 else 0.002
        self._rng = random.Random(seed)
        self._profile = profile
        self._look_s = look_s  # how long (real) a post's page is watched for the alert
        self._monotonic = monotonic
        self._tokens: dict[str, str] = {}
        self._orders: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._agenda: list[tuple[float, int, str, str, str]] = []  # (real due, seq, what, post, incident)
        self._seq = 0
        self._seen: set[str] = set()
        self._first_look: dict[str, float] = {}  # incident → when its post's page was first looked at
        self.tally = DoctorTally()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="village-doctors", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, drain_s: float = 0.0) -> None:
        """Stop; with `drain_s`, first let what is due within that many real seconds happen."""
        deadline = self._monotonic() + drain_s
        while drain_s and self._agenda and self._monotonic() < deadline:
            time.sleep(0.1)
        self._stop.set()
        self._thread.join(5)
        self._http.close()

    def order(self, payload: bytes) -> None:
        """A crew's order (the broker's thread): its post's page is worth a look."""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict) and isinstance(doc.get("first_aid_post_id"), str) and isinstance(doc.get("incident_id"), str):
            self._orders.put((doc["first_aid_post_id"], doc["incident_id"]))

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                post, incident = self._orders.get(timeout=0.05)
                if incident not in self._seen:
                    self._schedule(self._monotonic(), "look", post, incident)
                    self._seen.add(incident)
            except queue.Empty:
                pass
            while self._agenda and self._agenda[0][0] <= self._monotonic() and not self._stop.is_set():
                _, _, what, post, incident = heapq.heappop(self._agenda)
                try:
                    self._act(what, post, incident)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    self.tally.errors += 1
                    log.warning("village doctor of %s: %s on %s failed: %s", post, what, incident, exc)

    def _schedule(self, due: float, what: str, post: str, incident: str) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (due, self._seq, what, post, incident))

    def _act(self, what: str, post: str, incident: str) -> None:
        now = self._monotonic()
        if what == "look":
            response = self._alert(post, incident)
            if response is None:
                if now - self._first_look.setdefault(incident, now) < self._look_s:
                    self._schedule(now + 0.3, "look", post, incident)
                return
            self.tally.alerted += 1
            p = plan(self._rng, float(response["post_eta_s"]), self._profile)
            if p.answer is not None:
                self._schedule(now + p.answer_after_s * self._scale, p.answer, post, incident)
            if p.on_scene_after_s is not None:
                self._schedule(now + p.on_scene_after_s * self._scale, "on_scene", post, incident)
        elif what in ("accepted", "declined"):
            r = self._post(post, f"/api/tier/incidents/{incident}/answer", {"answer": what})
            if r.status_code == 200:
                setattr(self.tally, what, getattr(self.tally, what) + 1)
        elif what == "on_scene":
            if self._post(post, f"/api/tier/incidents/{incident}/on-scene", None).status_code == 200:
                self.tally.on_scene += 1
                self._post(post, f"/api/tier/incidents/{incident}/note", {"text": self._rng.choice(NOTES)})

    def _alert(self, post: str, incident: str) -> dict[str, Any] | None:
        r = self._get(post, "/api/tier/incidents")
        for item in r.json().get("incidents", []):
            response = item.get("first_response")
            if item.get("incident_id") == incident and isinstance(response, dict) and response.get("state") == "waiting":
                return response
        return None

    def _token(self, post: str) -> str:
        if post not in self._tokens:
            r = self._http.post("/api/token", data={"username": doctor_username(post), "password": self._password})
            r.raise_for_status()
            self._tokens[post] = r.json()["access_token"]
        return self._tokens[post]

    def _get(self, post: str, path: str) -> httpx.Response:
        r = self._http.get(path, headers={"Authorization": f"Bearer {self._token(post)}"})
        r.raise_for_status()
        return r

    def _post(self, post: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        return self._http.post(path, json=body, headers={"Authorization": f"Bearer {self._token(post)}"})
