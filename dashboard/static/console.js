/* The control room's live console.
 *
 * State comes from two places and is merged so that neither can undo the other:
 *  - REST snapshots (/api/alarms, /api/incidents, /api/units, /api/stations), loaded at start,
 *    after every (re)connection, and periodically (units every 5 s for GPS);
 *  - the websocket /ws/console, whose events carry ids; a reconnect passes the last id seen
 *    (last_event_id) and the server replays what was missed.
 * Merging is monotonic: an alarm never goes back from acked to active nor from cleared to
 * open, an incident row older (updated_at) than the one shown is ignored, and closed
 * incidents and cleared alarms are remembered so that a snapshot in flight cannot bring
 * them back.
 */
(function () {
  "use strict";

  const t = I18N.t;
  const $ = (id) => document.getElementById(id);
  const SESSION_KEY = "watchpost.console.session";
  const LAST_EVENT_KEY = "watchpost.console.lastEventId";
  const SOUND_KEY = "watchpost.sound";
  const CONTROL_ROOM = ["operator", "dispatcher", "admin"];
  const CAN_ASSIGN = ["dispatcher", "admin"];
  const UNIT_POLL_MS = 5000;
  const STATION_POLL_MS = 60000;
  const SNAPSHOT_POLL_MS = 30000;
  const OFFLINE_AFTER_MS = 30000;
  const BEEP_REPEAT_MS = 30000;
  const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, warning: 3 };
  const ALARM_STATE_RANK = { active: 0, acked: 1, cleared: 2 };
  const FINAL_INCIDENT = ["closed", "cancelled"];

  // What the tests (and a curious operator's devtools) can look at.
  const probe = (window.__wp = { beeps: 0, shownAt: {}, events: 0, state: null });

  const S = {
    session: null, // {token, role, username, displayName}
    alarms: new Map(), // alarm_id (string) -> row
    incidents: new Map(), // incident_id -> row
    units: new Map(), // unit_id -> row
    stations: new Map(), // station_id -> row
    persons: new Map(), // person_id -> row
    clearedAlarms: new Set(),
    notifications: new Map(), // notification_id -> its latest state (kept bounded)
    closedIncidents: new Set(),
    lastEventId: null,
    banner: [], // alarm ids shown in the critical banner, newest first
    silenced: new Set(),
    sound: true,
    loggedOut: true,
    timers: [],
    map: null,
    layers: {},
    unitMarkers: new Map(),
    incidentMarkers: new Map(),
    incidentCircles: new Map(), // incident_id -> the fix's accuracy circle
    stationMarkers: new Map(),
    pickMarker: null,
    picking: false,
  };
  probe.state = S;

  // --- utilities -------------------------------------------------------------------------

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function ms(iso) {
    const v = Date.parse(iso);
    return isFinite(v) ? v : 0;
  }

  function minutes(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    const m = seconds / 60;
    return m < 10 ? m.toFixed(1) : String(Math.round(m));
  }

  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return v === undefined || v === null ? "" : String(v);
    return Number(v.toFixed(digits === undefined ? 2 : digits)).toString();
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  async function api(path, options) {
    options = options || {};
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (S.session) headers.Authorization = `Bearer ${S.session.token}`;
    let body = options.body;
    if (body !== undefined && !(body instanceof URLSearchParams) && typeof body !== "string") {
      body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(path, { method: options.method || "GET", headers, body });
    } catch (err) {
      throw new ApiError(0, String(err.message || err));
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_e) { data = { detail: text.slice(0, 200) }; }
    }
    if (!response.ok) {
      const detail = data && data.detail !== undefined
        ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))
        : `HTTP ${response.status}`;
      if (response.status === 401 && S.session && !options.login) sessionExpired();
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  let toastTimer = null;
  function toast(message, kind) {
    const el = $("toast");
    el.textContent = message;
    el.className = `toast ${kind === "error" ? "toast-error" : ""}`;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 4000);
  }

  function errorText(err) {
    if (err instanceof ApiError && err.status === 403) return t("error.forbidden", { detail: err.detail });
    return t("error.generic", { detail: err && err.detail ? err.detail : String(err) });
  }

  // --- GB 3838-2002 water class, as ingest/rules/gb3838.py ---------------------------------

  const CEILINGS = {
    codmn_mg_l: [2, 4, 6, 10, 15],
    cod_mg_l: [15, 15, 20, 30, 40],
    nh3n_mg_l: [0.15, 0.5, 1.0, 1.5, 2.0],
  };
  const TP = { river: [0.02, 0.1, 0.2, 0.3, 0.4], lake: [0.01, 0.025, 0.05, 0.1, 0.2] };
  const TN_LAKE = [0.2, 0.5, 1.0, 1.5, 2.0];
  const DO_FLOORS = [7.5, 6.0, 5.0, 3.0, 2.0];
  const GRADED = ["ph", "do_mg_l", "codmn_mg_l", "cod_mg_l", "nh3n_mg_l", "tp_mg_l", "tn_mg_l"];
  const CLASS_LABEL = { 1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "劣V" };
  const CLASS_COLOUR = {
    1: "#1f6fd1", 2: "#139e9e", 3: "#2f9a4a", 4: "#e2bd1c", 5: "#ee8320", 6: "#d4342a", 0: "#aab2bb",
  };

  function classOf(parameter, value, body) {
    if (typeof value !== "number" || !isFinite(value)) return null;
    if (parameter === "ph") return value >= 6 && value <= 9 ? 1 : 6;
    if (parameter === "do_mg_l") {
      const i = DO_FLOORS.findIndex((floor) => value >= floor);
      return i < 0 ? 6 : i + 1;
    }
    let ceilings = CEILINGS[parameter];
    if (parameter === "tp_mg_l") ceilings = TP[body === "lake" ? "lake" : "river"];
    if (parameter === "tn_mg_l") ceilings = body === "lake" ? TN_LAKE : null;
    if (!ceilings) return null;
    const i = ceilings.findIndex((ceiling) => value <= ceiling);
    return i < 0 ? 6 : i + 1;
  }

  /** The station class of its latest reading: the worst graded parameter. */
  function waterClass(latest, body) {
    if (!latest || (latest.flag && latest.flag !== "N")) return null;
    let worst = null;
    for (const p of GRADED) {
      const c = classOf(p, latest[p], body);
      if (c !== null && (worst === null || c > worst.cls)) worst = { cls: c, parameter: p, value: latest[p] };
    }
    return worst;
  }

  // --- session -----------------------------------------------------------------------------

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (s && s.token && CONTROL_ROOM.includes(s.role) && (!s.expiresAt || s.expiresAt > Date.now())) return s;
    } catch (_e) { /* none */ }
    return null;
  }

  async function onLogin(ev) {
    ev.preventDefault();
    ensureAudio(); // the sign-in click is the user gesture that lets the page make sound
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    const error = $("login-error");
    const submit = $("login-submit");
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = t("login.busy");
    try {
      const tok = await api("/api/token", {
        method: "POST", body: new URLSearchParams({ username, password }), login: true,
      });
      if (!CONTROL_ROOM.includes(tok.role)) {
        throw new ApiError(403, t("login.wrong_role.console", { role: tok.role }));
      }
      S.session = {
        token: tok.access_token, role: tok.role, username,
        expiresAt: tok.expires_in ? Date.now() + tok.expires_in * 1000 : null,
      };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(S.session));
      $("login-password").value = "";
      start();
    } catch (err) {
      error.textContent = err.status === 403 ? err.detail : t("login.failed", { detail: err.detail || String(err) });
      error.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = t("login.submit");
    }
  }

  function logout(message) {
    S.loggedOut = true;
    S.session = null;
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(LAST_EVENT_KEY);
    S.timers.forEach((id) => clearInterval(id));
    S.timers = [];
    stopSocket();
    stopBeeping();
    $("app").hidden = true;
    $("login-view").hidden = false;
    document.body.classList.add("is-login");
    const error = $("login-error");
    error.textContent = message || "";
    error.hidden = !message;
    // A fresh start: another user may sign in on this screen.
    S.alarms.clear(); S.incidents.clear(); S.clearedAlarms.clear(); S.closedIncidents.clear();
    S.banner = []; S.silenced.clear(); S.lastEventId = null;
    $("alarm-queue").textContent = "";
    $("incident-queue").textContent = "";
    $("login-username").focus();
  }

  function sessionExpired() {
    if (!S.loggedOut) logout(t("login.expired"));
  }

  // --- sound and the critical banner ---------------------------------------------------------

  let audioCtx = null;
  let beepTimer = null;

  function ensureAudio() {
    try {
      if (!audioCtx) {
        const AC = window.AudioContext || window.webkitAudioContext;
        if (AC) audioCtx = new AC();
      }
      if (audioCtx && audioCtx.state === "suspended") audioCtx.resume().then(renderSoundButton, () => {});
    } catch (_e) { audioCtx = null; }
    renderSoundButton();
  }

  /** Three short tones, made by WebAudio: no audio file to load or to fail. */
  function beep() {
    if (!S.sound) return;
    probe.beeps += 1;
    if (!audioCtx) return;
    try {
      const start = audioCtx.currentTime + 0.02;
      [880, 660, 880].forEach((freq, i) => {
        const at = start + i * 0.22;
        const osc = audioCtx.createOscillator();
        const gain = audioCtx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
        osc.connect(gain).connect(audioCtx.destination);
        osc.start(at);
        osc.stop(at + 0.2);
      });
    } catch (_e) { /* never let sound break the console */ }
  }

  function stopBeeping() {
    clearInterval(beepTimer);
    beepTimer = null;
  }

  function renderSoundButton() {
    const b = $("sound-toggle");
    const blocked = S.sound && audioCtx && audioCtx.state === "suspended";
    b.textContent = blocked ? t("sound.blocked") : t(S.sound ? "sound.on" : "sound.off");
    b.classList.toggle("warn", Boolean(blocked) || !S.sound);
    b.setAttribute("aria-pressed", String(S.sound));
  }

  function isSevere(a) {
    return a.severity === "critical" || a.emergency === true;
  }

  function bannerAlarms() {
    return S.banner
      .map((id) => S.alarms.get(id))
      .filter((a) => a && a.state === "active" && !S.silenced.has(String(a.alarm_id)));
  }

  function addToBanner(alarm, withSound) {
    const id = String(alarm.alarm_id);
    if (!S.banner.includes(id)) S.banner.unshift(id);
    if (withSound) {
      beep();
      if (!beepTimer) {
        beepTimer = setInterval(() => {
          if (bannerAlarms().length) beep(); else stopBeeping();
        }, BEEP_REPEAT_MS);
      }
    }
  }

  function renderBanner() {
    const shown = bannerAlarms();
    const el = $("critical-banner");
    if (!shown.length) {
      el.hidden = true;
      stopBeeping();
      return;
    }
    const a = shown[0];
    $("banner-text").textContent = `${alarmTitle(a)} · ${alarmWho(a)} · ${I18N.clock(a.first_seen)}`;
    $("banner-more").textContent = shown.length > 1 ? t("banner.more", { n: shown.length - 1 }) : "";
    el.dataset.alarmId = String(a.alarm_id);
    el.hidden = false;
  }

  // --- merging state ---------------------------------------------------------------------------

  function applyAlarm(row, live) {
    const id = String(row.alarm_id);
    if (S.clearedAlarms.has(id)) return;
    const cur = S.alarms.get(id);
    if (cur && (ALARM_STATE_RANK[row.state] || 0) < (ALARM_STATE_RANK[cur.state] || 0)) {
      cur.repeat_count = Math.max(cur.repeat_count || 1, row.repeat_count || 1);
      cur._touched = performance.now();
      return;
    }
    if (row.state === "cleared") {
      S.alarms.delete(id);
      S.clearedAlarms.add(id);
      return;
    }
    const next = Object.assign({}, cur || {}, row, { _touched: performance.now() });
    S.alarms.set(id, next);
    if (!cur && next.state === "active" && isSevere(next)) {
      // Sound only for what is new now, not for a replay of an old event after a long gap.
      addToBanner(next, live && Date.now() - ms(next.first_seen) < 5 * 60000);
    }
    if (next.person_id && !S.persons.has(next.person_id)) schedule("persons", loadPersons, 500);
  }

  // Family notifications: one row per SMS or call (its latest state), newest first, kept
  // bounded; who was reached, by which channel, when, and what came of it. The village
  // doctor's SMS and calls (an incident's, to its first-aid post's duty phone) share the
  // panel: the dispatcher sees the post was reached, named by the post, never a person.
  const NOTIFY_KEEP = 50;
  function keepNotification(n, about, ts) {
    const id = String(n.notification_id);
    const cur = S.notifications.get(id) || { first: ts };
    S.notifications.set(id, Object.assign(cur, n, about, { ts }));
    if (S.notifications.size > NOTIFY_KEEP) S.notifications.delete(S.notifications.keys().next().value);
  }
  function applyNotification(alarm, ts) {
    keepNotification(alarm.notification, { alarm_id: alarm.alarm_id, person_id: alarm.person_id,
      source_id: alarm.source_id, alarm_type: alarm.alarm_type }, ts);
  }
  function applyPostNotification(incident, ts) {
    // The doctor's notification's username is the post's facility id.
    keepNotification(incident.notification, { incident_id: incident.incident_id, post_id: incident.notification.username }, ts);
  }

  function notificationRow(n) {
    const when = new Date(n.at || n.ts);
    const callback = (n.keypad || []).includes("9") ? ` · ${t("notify.callback")}` : "";
    const retry = n.attempt > 1 ? ` (#${n.attempt})` : "";
    const error = n.error ? ` · ${n.error}` : "";
    const body = `<div class="notify-body" data-channel="${esc(n.channel)}" data-state="${esc(n.state)}">` +
      `${esc(t("notify.channel." + n.channel))}: ${esc(t("notify.state." + n.state))}${esc(retry + callback + error)}</div>`;
    if (n.incident_id) {
      return {
        cls: `notify-row notify-post notify-${n.state}`,
        html: `<div class="notify-head">${esc(when.toLocaleTimeString())} · ${esc(n.incident_id)} → ` +
          `${esc(t("notify.post", { post: n.post_id }))}${n.phone ? " " + esc(n.phone) : ""}</div>` + body,
      };
    }
    return {
      cls: `notify-row notify-${n.state}`,
      // A partner's duty contact is reached about a station's alarm, not a person's.
      html: `<div class="notify-head">${esc(when.toLocaleTimeString())} · ${esc(n.person_id ? personName(n.person_id) : n.source_id)} → ` +
        `${esc(n.username)}${n.phone ? " " + esc(n.phone) : ""}</div>` + body,
    };
  }

  function applyIncident(row) {
    const id = row.incident_id;
    if (!id || S.closedIncidents.has(id)) return;
    const cur = S.incidents.get(id);
    if (cur && row.updated_at && cur.updated_at && ms(row.updated_at) < ms(cur.updated_at)) return;
    const next = Object.assign({}, cur || {}, row, { _touched: performance.now() });
    delete next.decision;
    if (row.decision && row.decision.chosen && row.unit_id) next.eta_s = row.decision.chosen.eta_s;
    if (row.queued === true) { next.unit_id = null; next.eta_s = null; }
    if (row.decision) next.rule = row.decision.rule;
    if (FINAL_INCIDENT.includes(next.state)) {
      S.incidents.delete(id);
      S.closedIncidents.add(id);
      return;
    }
    S.incidents.set(id, next);
  }

  /** Replace what a snapshot covers; keep rows an event touched after the request left. */
  function mergeSnapshot(map, rows, keyOf, apply, sentAt) {
    const seen = new Set();
    rows.forEach((row) => { seen.add(keyOf(row)); apply(row, false); });
    for (const [key, row] of map) {
      if (!seen.has(key) && (row._touched || 0) < sentAt) map.delete(key);
    }
  }

  // --- loading -------------------------------------------------------------------------------

  const pending = {};
  function schedule(name, fn, delay) {
    if (pending[name]) return;
    pending[name] = setTimeout(() => {
      delete pending[name];
      fn().catch((err) => console.warn(name, err));
    }, delay);
  }

  async function loadAlarms() {
    const sent = performance.now();
    const [active, acked] = await Promise.all([
      api("/api/alarms?state=active&limit=1000"), api("/api/alarms?state=acked&limit=1000"),
    ]);
    mergeSnapshot(S.alarms, active.concat(acked), (r) => String(r.alarm_id), applyAlarm, sent);
    render();
  }

  async function loadIncidents() {
    const sent = performance.now();
    const rows = await api("/api/incidents?state=open&limit=1000");
    mergeSnapshot(S.incidents, rows, (r) => r.incident_id, applyIncident, sent);
    render();
  }

  async function loadUnits() {
    const sent = performance.now();
    const rows = await api("/api/units");
    const seen = new Set();
    rows.forEach((u) => {
      seen.add(u.unit_id);
      const cur = S.units.get(u.unit_id);
      // A status event that arrived after this request left is newer than the snapshot.
      if (cur && cur._statusAt && cur._statusAt > sent) u = Object.assign({}, u, { status: cur.status, incident_id: cur.incident_id });
      S.units.set(u.unit_id, Object.assign({}, cur || {}, u));
    });
    for (const id of [...S.units.keys()]) if (!seen.has(id)) S.units.delete(id);
    renderUnits();
    render();
  }

  async function loadStations() {
    const rows = await api("/api/stations");
    S.stations.clear();
    rows.forEach((s) => S.stations.set(s.station_id, s));
    renderStations();
    render();
  }

  async function loadPersons() {
    const rows = await api("/api/persons");
    rows.forEach((p) => S.persons.set(p.person_id, p));
    render();
  }

  /** Everything, as after a (re)connection: the socket's replay and this together lose nothing. */
  async function loadSnapshot() {
    const tasks = [loadAlarms(), loadIncidents(), loadUnits(), loadStations(), loadPersons()];
    const results = await Promise.allSettled(tasks);
    results.forEach((r) => {
      if (r.status === "rejected" && !(r.reason instanceof ApiError && r.reason.status === 401)) {
        console.warn("snapshot", r.reason);
      }
    });
  }

  // --- the websocket ------------------------------------------------------------------------

  const WS = { sock: null, attempt: 0, timer: null, retryAt: 0, downSince: null, state: "connecting" };
  probe.socket = () => WS.sock;

  function stopSocket() {
    clearTimeout(WS.timer);
    if (WS.sock) {
      const sock = WS.sock;
      WS.sock = null;
      try { sock.close(1000, "bye"); } catch (_e) { /* ignore */ }
    }
  }

  function connect() {
    clearTimeout(WS.timer);
    if (S.loggedOut) return;
    if (navigator.onLine === false) {
      setConn("offline");
      return;
    }
    setConn(WS.attempt ? "reconnecting_now" : "connecting");
    // The token travels in the subprotocol header, never in the URL (URLs end up in logs).
    const q = new URLSearchParams();
    if (S.lastEventId !== null) q.set("last_event_id", String(S.lastEventId));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let sock;
    try {
      sock = new WebSocket(`${scheme}://${location.host}/ws/console?${q}`, ["watchpost", S.session.token]);
    } catch (_e) {
      scheduleReconnect();
      return;
    }
    WS.sock = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      WS.attempt = 0;
      WS.downSince = null;
      setConn("connected");
      loadSnapshot();
    };
    sock.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_e) { return; }
      try { handleEvent(msg); } catch (err) { console.error("event", msg, err); }
    };
    sock.onclose = (e) => {
      if (WS.sock !== sock) return; // replaced or closed on purpose
      WS.sock = null;
      if (S.loggedOut) return;
      if (WS.downSince === null) WS.downSince = Date.now();
      if (e.code === 1008) { sessionExpired(); return; }
      if (!opened) {
        // A refused handshake looks like a network error to a browser: ask whether the
        // token is still good before retrying for ever.
        api("/api/me").catch(() => {});
      }
      // 1013: the server found us too slow; come back at once and catch up from our last id.
      scheduleReconnect(e.code === 1013 ? 200 : null);
    };
  }

  function scheduleReconnect(fixedDelay) {
    clearTimeout(WS.timer);
    WS.attempt += 1;
    const base = Math.min(30000, 500 * Math.pow(2, WS.attempt - 1));
    const delay = fixedDelay !== null && fixedDelay !== undefined ? fixedDelay : Math.round(base * (0.8 + Math.random() * 0.4));
    WS.retryAt = Date.now() + delay;
    WS.timer = setTimeout(connect, delay);
    setConn("reconnecting");
  }

  function setConn(state) {
    WS.state = state;
    renderConn();
  }

  function renderConn() {
    const el = $("conn");
    let state = WS.state;
    let text;
    const down = WS.downSince ? Math.round((Date.now() - WS.downSince) / 1000) : 0;
    if (navigator.onLine === false) {
      state = "offline";
      text = t("conn.offline", { why: t("conn.offline.network") });
    } else if (state === "connected") {
      text = t("conn.connected");
    } else if (state === "connecting") {
      text = t("conn.connecting");
    } else {
      const wait = Math.max(0, Math.ceil((WS.retryAt - Date.now()) / 1000));
      text = state === "reconnecting" && wait > 0
        ? t("conn.reconnecting", { s: wait, n: WS.attempt })
        : t("conn.reconnecting_now", { n: WS.attempt });
      if (WS.downSince && Date.now() - WS.downSince > OFFLINE_AFTER_MS) {
        state = "offline";
        text = `${t("conn.offline", { why: t("conn.offline.server", { s: down }) })} · ${text}`;
      } else {
        state = "reconnecting";
      }
    }
    el.className = `conn conn-${state}`;
    el.dataset.state = state;
    $("conn-text").textContent = text;
    $("conn-retry").hidden = state === "connected" || state === "connecting";
    $("stale-note").hidden = state === "connected" || state === "connecting";
    document.body.classList.toggle("is-stale", state !== "connected" && state !== "connecting");
    $("last-event").textContent = S.lastEventId !== null ? t("conn.last_event", { id: S.lastEventId }) : "";
  }

  function handleEvent(msg) {
    if (typeof msg.id === "number") {
      if (S.lastEventId !== null && msg.id <= S.lastEventId) return; // already applied
      S.lastEventId = msg.id;
      try { sessionStorage.setItem(LAST_EVENT_KEY, String(msg.id)); } catch (_e) { /* ignore */ }
    }
    probe.events += 1;
    const d = msg.data || {};
    switch (msg.type) {
      case "alarm.raised":
      case "alarm.updated":
      case "alarm.cleared":
        if (typeof d.change === "string" && d.change.startsWith("partner_")) {
          // The partner's answer to our CAP alert, or its escalation: a note on the alarm.
          const cur = S.alarms.get(String(d.alarm_id));
          if (cur) { cur.partner = d; cur._touched = performance.now(); }
          break;
        }
        if (msg.type === "alarm.cleared") d.state = "cleared";
        if (d.change === "notification" && d.notification) applyNotification(d, msg.ts);
        applyAlarm(d, true);
        if (d.source_kind === "station") schedule("stations", loadStations, 1000);
        break;
      case "incident.created":
      case "incident.updated":
        if (d.change === "notification" && d.notification) applyPostNotification(d, msg.ts);
        applyIncident(d);
        // Some incident events carry only the incident row: fetch its unit and ETA.
        schedule("incidents", loadIncidents, 400);
        break;
      case "unit.updated":
        if (d.unit_id) {
          const cur = S.units.get(d.unit_id) || { unit_id: d.unit_id };
          S.units.set(d.unit_id, Object.assign({}, cur, {
            status: d.status || cur.status, incident_id: d.incident_id === undefined ? cur.incident_id : d.incident_id,
            _statusAt: performance.now(),
          }, typeof d.lat === "number" && typeof d.lon === "number" ? { lat: d.lat, lon: d.lon, gps_at: msg.ts } : {}));
          renderUnits();
          schedule("units", loadUnits, 600);
          if (d.status && d.status !== cur.status) schedule("coverage", loadCoverage, 800);
        }
        break;
      case "water.status":
        if (d.station_id && S.stations.has(d.station_id)) {
          Object.assign(S.stations.get(d.station_id), d);
          renderStations();
        } else {
          schedule("stations", loadStations, 1000);
        }
        break;
      default:
        break;
    }
    render();
  }

  // --- queues --------------------------------------------------------------------------------

  function personName(id) {
    const p = S.persons.get(id);
    return p ? p.name : "";
  }

  function alarmTitle(a) {
    const key = `atype.${a.alarm_type}`;
    return I18N.has(key) ? t(key) : a.alarm_type;
  }

  function alarmWho(a) {
    if (a.source_kind === "station") {
      const s = S.stations.get(a.source_id);
      return s ? `${s.name} · ${a.source_id}` : `${t("src.station")} ${a.source_id}`;
    }
    if (a.person_id) {
      const name = personName(a.person_id);
      let device = "";
      if (a.source_kind === "device") {
        const part = a.source_id.replace(/^elder:[^/]+\/?/, "").replace(/^home\//, "");
        device = ` · ${part ? `${t("src.device")} ${part}` : t("src.wearable")}`;
      }
      return `${name ? `${name} · ` : ""}${a.person_id}${device}`;
    }
    return `${t("src.device")} ${a.source_id}`;
  }

  function paramLabel(p) {
    return I18N.has(`param.${p}`) ? t(`param.${p}`) : p;
  }

  function alarmDetail(a) {
    // A cross-border alarm also says how the partner answered our CAP alert.
    const base = alarmDetailOf(a);
    const p = a.partner;
    if (!p) return base;
    const note = p.change === "partner_escalated"
      ? t("detail.partner_escalated", { who: p.duty_contact || p.partner_id })
      : t(p.change === "partner_accepted" ? "detail.partner_accepted" : "detail.partner_refused", { who: p.by || p.partner_id });
    return base ? `${base} · ${note}` : note;
  }

  function alarmDetailOf(a) {
    const d = a.detail || {};
    if (a.alarm_type === "water_class_exceeded" && d.class) {
      return t("detail.water", { cls: d.class, target: d.target_class, p: paramLabel(d.parameter), v: num(d.value, 3) });
    }
    if (a.alarm_type === "water_hourly_exceeded" && d.class) {
      // Graded from the station's hourly uploads: say which parameters the class covers, and
      // "≥" when an over-range (T) value is a lower bound.
      const text = t("detail.water", { cls: (d.at_least ? "≥" : "") + d.class, target: d.target_class, p: paramLabel(d.parameter), v: num(d.value, 3) });
      const covers = Array.isArray(d.covers) ? d.covers.map(paramLabel).join(", ") : "";
      return covers ? `${text} · ${t("detail.covers", { ps: covers, h: num(d.hours, 0) })}` : text;
    }
    if (a.alarm_type === "water_anomaly" && Array.isArray(d.parameters)) {
      return d.parameters.map(paramLabel).join(", ");
    }
    if (d.parameter && d.value !== undefined) return t("detail.vital", { p: paramLabel(d.parameter), v: num(d.value, 1) });
    if (a.alarm_type === "battery_low" && d.battery_pct !== undefined) return t("detail.battery", { v: num(d.battery_pct, 0) });
    if (d.sensor_id) return t("detail.sensor", { s: d.sensor_id });
    return "";
  }

  function alarmOrder(a, b) {
    return (ALARM_STATE_RANK[a.state] - ALARM_STATE_RANK[b.state])
      || ((SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9))
      || (Number(b.emergency === true) - Number(a.emergency === true))
      || (ms(a.first_seen) - ms(b.first_seen))
      || (Number(a.alarm_id) - Number(b.alarm_id));
  }

  function incidentOrder(a, b) {
    return (a.priority - b.priority)
      || (ms(a.created_at) - ms(b.created_at))
      || (a.incident_id < b.incident_id ? -1 : a.incident_id > b.incident_id ? 1 : 0);
  }

  function alarmRow(a) {
    const sev = esc(a.severity);
    const emergency = a.emergency ? `<span class="badge badge-emergency">${esc(t("sev.emergency"))}</span>` : "";
    const bits = [
      `<time class="age" data-ts="${esc(a.first_seen)}"></time>`,
      `<span>${esc(I18N.clock(a.first_seen))}</span>`,
      a.state === "acked"
        ? `<span class="acked">${esc(t("alarms.acked_by", { who: a.acked_by || "" }))}</span>`
        : `<span class="unacked">${esc(t("state.active"))}</span>`,
    ];
    if (a.repeat_count > 1) bits.push(`<span>${esc(t("alarms.repeat", { n: a.repeat_count }))}</span>`);
    if (a.person_id && a.control_room) bits.push(`<span>${esc(t("alarms.control_room"))}</span>`);
    const detail = alarmDetail(a);
    if (detail) bits.push(`<span class="detail">${esc(detail)}</span>`);
    const ack = a.state === "active"
      ? `<button type="button" class="primary" data-act="ack">${esc(t("alarms.ack"))}</button>` : "";
    return {
      cls: `q-item alarm sev-${sev} state-${esc(a.state)}${a.emergency ? " emergency" : ""}`,
      html: `<div class="q-main"><span class="badge sev-${sev}">${esc(t(`sev.${a.severity}`))}</span>${emergency}`
        + `<span class="q-title">${esc(alarmTitle(a))}</span><span class="q-who">${esc(alarmWho(a))}</span></div>`
        + `<div class="q-sub">${bits.join('<span class="sep">·</span>')}</div>`
        + `<div class="q-actions">${ack}<button type="button" data-act="locate">${esc(t("alarms.locate"))}</button>`
        + `${a.source_kind === "person" || a.source_kind === "station" ? `<button type="button" class="trend-button" data-chart-${a.source_kind}="${esc(a.source_id)}">${I18N.lang === "en" ? "Trend" : "趋势"}</button>` : ""}</div>`,
    };
  }

  function unitLabel(id) {
    const u = S.units.get(id);
    return u && u.name ? `${id} ${u.name}` : id;
  }

  function incidentRow(i) {
    const canAssign = CAN_ASSIGN.includes(S.session.role);
    const who = i.person_id ? `${personName(i.person_id)} · ${i.person_id}` : i.station_id ? (S.stations.get(i.station_id) || {}).name || i.station_id : "";
    const stateKey = `istate.${i.state}`;
    const bits = [
      `<span class="istate">${esc(I18N.has(stateKey) ? t(stateKey) : i.state)}</span>`,
    ];
    if (i.unit_id) {
      bits.push(`<span class="unit">${esc(t("incidents.unit", { unit: unitLabel(i.unit_id) }))}</span>`);
      if (i.eta_s !== null && i.eta_s !== undefined) bits.push(`<span>${esc(t("incidents.eta", { m: minutes(i.eta_s) }))}</span>`);
    } else if (i.queued) {
      bits.push(`<span class="queued">${esc(t("incidents.queued"))}</span>`);
    } else {
      bits.push(`<span class="no-unit">${esc(t("incidents.no_unit"))}</span>`);
    }
    if (i.loop_stage) bits.push(`<span>${esc(t("incidents.loop", { stage: t(`loop.${i.loop_stage}`) }))}</span>`);
    const fr = i.first_response;
    if (fr && fr.state) { // the village doctor sent ahead: waiting, accepted, on scene, declined, no answer
      const state = fr.on_scene_at && fr.state === "accepted" ? "on_scene" : fr.state;
      bits.push(`<span class="responder responder-${esc(state)}" data-responder="${esc(state)}" title="${esc(fr.note || "")}">`
        + `${esc(t(`responder.${state}`, { post: fr.post_id }))}</span>`);
    }
    if (i.diverted) bits.push(`<span class="diverted">${esc(t("incidents.diverted", { to: i.diverted.to || "?" }))}</span>`);
    // A fix far outside the region was passed over: help goes to the last trusted place.
    if (i.untrusted_fix) bits.push(`<span class="untrusted-fix" data-untrusted="${esc(i.untrusted_fix)}">${esc(t("incidents.untrusted_fix"))}</span>`);
    if (i.verification) bits.push(`<span class="verification" data-verification="${esc(i.verification)}">${esc(t(`verify.${i.verification}`))}</span>`);
    else if (i.verify_by) bits.push(`<span class="verification pending">${esc(t("verify.pending", { t: I18N.clock(i.verify_by) }))}</span>`);
    bits.push(`<time class="age" data-ts="${esc(i.created_at)}"></time>`);
    const desc = i.description ? `<div class="q-desc">${esc(i.description)}</div>` : "";
    const assignLabel = t(i.unit_id ? "incidents.reassign" : "incidents.assign");
    const assign = canAssign
      ? `<button type="button" class="${i.unit_id ? "" : "primary"}" data-act="assign">${esc(assignLabel)}</button>`
      : `<button type="button" disabled title="${esc(t("incidents.dispatcher_only"))}">${esc(assignLabel)}</button>`;
    // The verification call at a fire or gas incident in a person's home: what the person said.
    const verify = i.verify_by && i.verification !== "hurt" && i.verification !== "no_answer"
      ? ["ok", "hurt", "no_answer"].filter((o) => o !== i.verification)
        .map((o) => `<button type="button" data-act="verify" data-outcome="${o}">${esc(t(`verify.button.${o}`))}</button>`).join("")
      : "";
    return {
      cls: `q-item incident prio-${esc(i.priority)} istate-${esc(i.state)}${i.unit_id ? "" : " unassigned"}`,
      html: `<div class="q-main"><span class="badge prio-${esc(i.priority)}">P${esc(i.priority)}</span>`
        + `<span class="q-title">${esc(t(`kind.${i.kind}`))}</span><span class="q-id">${esc(i.incident_id)}</span>`
        + `<span class="q-who">${esc(who)}</span></div>`
        + `<div class="q-sub">${bits.join('<span class="sep">·</span>')}</div>${desc}`
        + `<div class="q-actions">${assign}${verify}${closeButton(i.incident_id)}`
        + `<button type="button" data-act="locate">${esc(t("incidents.locate"))}</button></div>`,
    };
  }

  /** Keyed rendering: rows are reused, moved only when the order changes, rewritten only when
      their content does, so the list stays still under the operator's eyes and pointer. */
  function renderList(list, items, keyOf, rowOf, onNew) {
    const existing = new Map();
    for (const li of list.children) existing.set(li.dataset.key, li);
    let prev = null;
    for (const item of items) {
      const key = keyOf(item);
      let li = existing.get(key);
      const row = rowOf(item);
      if (!li) {
        li = document.createElement("li");
        li.dataset.key = key;
        li._fresh = true;
      }
      if (li._html !== row.html || li._cls !== row.cls) {
        li.innerHTML = row.html;
        li.className = row.cls + (li._fresh ? " fresh" : "");
        li._html = row.html;
        li._cls = row.cls;
        updateAges(li);
      }
      existing.delete(key);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      if (li._fresh) {
        li._fresh = false;
        if (onNew) onNew(item, li);
        setTimeout(() => li.classList.remove("fresh"), 4000);
      }
      prev = li;
    }
    existing.forEach((li) => li.remove());
  }

  function updateAges(root) {
    root.querySelectorAll("time.age").forEach((el) => { el.textContent = I18N.ago(el.dataset.ts); });
  }

  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(renderNow, 0);
  }

  function renderNow() {
    renderQueued = false;
    if (S.loggedOut) return;
    const alarms = [...S.alarms.values()].sort(alarmOrder);
    renderList($("alarm-queue"), alarms, (a) => String(a.alarm_id), alarmRow, (a, li) => {
      li.dataset.alarmId = String(a.alarm_id);
      li.dataset.type = a.alarm_type;
      if (!(a.alarm_id in probe.shownAt)) probe.shownAt[a.alarm_id] = Date.now();
    });
    const notes = [...S.notifications.values()].reverse();
    renderList($("notify-list"), notes, (n) => String(n.notification_id), notificationRow, null);
    $("notify-count").textContent = String(notes.length);
    $("notify-empty").hidden = notes.length > 0;
    const unacked = alarms.filter((a) => a.state === "active").length;
    $("alarm-count").textContent = alarms.length ? t("alarms.counts", { a: unacked, n: alarms.length }) : "0";
    $("alarm-count").classList.toggle("hot", unacked > 0);
    $("alarm-empty").hidden = alarms.length > 0;

    const incidents = [...S.incidents.values()].sort(incidentOrder);
    renderList($("incident-queue"), incidents, (i) => i.incident_id, incidentRow, (i, li) => {
      li.dataset.incidentId = i.incident_id;
    });
    // the unit shown on a row is an attribute tests and scripts can read
    for (const li of $("incident-queue").children) {
      const inc = S.incidents.get(li.dataset.key);
      li.dataset.unitId = inc && inc.unit_id ? inc.unit_id : "";
    }
    $("incident-count").textContent = String(incidents.length);
    $("incident-empty").hidden = incidents.length > 0;
    renderBanner();
    renderIncidentMarkers();
    renderLinks();
    renderConn();
  }

  // --- actions -------------------------------------------------------------------------------

  async function ackAlarm(id, button) {
    if (button) button.disabled = true;
    try {
      const row = await api(`/api/alarms/${encodeURIComponent(id)}/ack`, { method: "POST" });
      applyAlarm(row, false);
      render();
    } catch (err) {
      toast(errorText(err), "error");
      if (button) button.disabled = false;
      schedule("alarms", loadAlarms, 100);
    }
  }

  // Closing asks for a second click within CLOSE_CONFIRM_MS. The row may be rewritten in
  // between (a unit assigned, a position update), so which incidents wait for their second
  // click is kept here and drawn into the row, not left on a button that may be replaced.
  const CLOSE_CONFIRM_MS = 4000;
  const closeArmedUntil = new Map();

  function closeButton(id) {
    const armed = (closeArmedUntil.get(id) || 0) > Date.now();
    return `<button type="button" data-act="close"${armed ? ' class="confirming"' : ""}>`
      + `${esc(t(armed ? "incidents.close_confirm" : "incidents.close"))}</button>`;
  }

  async function closeIncident(id, button) {
    if ((closeArmedUntil.get(id) || 0) <= Date.now()) {
      closeArmedUntil.set(id, Date.now() + CLOSE_CONFIRM_MS);
      button.classList.add("confirming");
      button.textContent = t("incidents.close_confirm");
      setTimeout(() => {
        if ((closeArmedUntil.get(id) || 0) > Date.now()) return; // armed again since
        closeArmedUntil.delete(id);
        render();
      }, CLOSE_CONFIRM_MS + 50);
      return;
    }
    closeArmedUntil.delete(id);
    button.disabled = true;
    try {
      const row = await api(`/api/incidents/${encodeURIComponent(id)}/close`, { method: "POST" });
      applyIncident(row);
      render();
    } catch (err) {
      toast(errorText(err), "error");
      button.disabled = false;
    }
  }

  async function recordVerification(id, outcome, button) {
    button.disabled = true;
    try {
      const body = await api(`/api/incidents/${encodeURIComponent(id)}/verification`, { method: "POST", body: { outcome } });
      applyIncident(body.incident);
      if (body.companion) applyIncident(body.companion);
      render();
    } catch (err) {
      toast(errorText(err), "error");
      button.disabled = false;
    }
  }

  function onQueueClick(ev) {
    const button = ev.target.closest("button[data-act]");
    const li = ev.target.closest("li[data-key]");
    if (!li) return;
    const key = li.dataset.key;
    if (!button) {
      locate(li.parentElement.id === "alarm-queue" ? { alarm: key } : { incident: key }, false);
      return;
    }
    const act = button.dataset.act;
    if (act === "ack") ackAlarm(key, button);
    else if (act === "assign") openAssign(key);
    else if (act === "close") closeIncident(key, button);
    else if (act === "verify") recordVerification(key, button.dataset.outcome, button);
    else if (act === "locate") locate(li.parentElement.id === "alarm-queue" ? { alarm: key } : { incident: key }, true);
  }

  function locationOf(what) {
    if (what.incident) {
      const i = S.incidents.get(what.incident);
      return i && typeof i.lat === "number" ? [i.lat, i.lon] : null;
    }
    const a = S.alarms.get(what.alarm);
    if (!a) return null;
    if (a.detail && typeof a.detail.lat === "number") return [a.detail.lat, a.detail.lon];
    if (a.source_kind === "station") {
      const s = S.stations.get(a.source_id);
      return s ? [s.lat, s.lon] : null;
    }
    const p = a.person_id && S.persons.get(a.person_id);
    if (p && typeof p.lat === "number") return [p.lat, p.lon];
    const unit = /^unit:(.+)$/.exec(a.source_id || "");
    const u = unit && S.units.get(unit[1]);
    return u ? unitPosition(u) : null;
  }

  function locate(what, zoom) {
    if (!S.map) return;
    const at = locationOf(what);
    if (!at) return;
    if (zoom) S.map.flyTo(at, Math.max(S.map.getZoom(), 14), { duration: 0.6 });
    else S.map.panTo(at);
    const ring = L.circleMarker(at, { radius: 22, color: "#111827", weight: 3, fill: false, interactive: false, className: "locate-ring" }).addTo(S.map);
    setTimeout(() => ring.remove(), 2500);
  }

  // --- the assign dialog ----------------------------------------------------------------------

  async function openAssign(incidentId) {
    const inc = S.incidents.get(incidentId);
    if (!inc) return;
    const dialog = $("assign-dialog");
    dialog.dataset.incidentId = incidentId;
    $("assign-title").textContent = t("assign.title", { id: incidentId });
    const who = inc.person_id ? `${personName(inc.person_id)} ${inc.person_id}` : inc.station_id || "";
    $("assign-meta").textContent = [`P${inc.priority}`, t(`kind.${inc.kind}`), who,
      inc.unit_id ? t("assign.current", { unit: unitLabel(inc.unit_id) }) : t("incidents.no_unit")].filter(Boolean).join(" · ");
    $("assign-rule").textContent = "";
    $("assign-error").hidden = true;
    $("assign-body").innerHTML = `<p class="muted">${esc(t("assign.loading"))}</p>`;
    if (!dialog.open) dialog.showModal();
    try {
      const decision = await api(`/api/incidents/${encodeURIComponent(incidentId)}/candidates`);
      if (dialog.dataset.incidentId !== incidentId || !dialog.open) return;
      renderCandidates(inc, decision);
    } catch (err) {
      $("assign-body").textContent = "";
      $("assign-error").textContent = errorText(err);
      $("assign-error").hidden = false;
    }
  }

  /** The dispatcher's rule is English text from the server; say it in Chinese too. */
  function ruleText(rule) {
    if (I18N.lang !== "zh" || !rule) return rule || "";
    return rule
      .replace(/^nearest available by road time/, "按道路行驶时间最近的空闲车辆")
      .replace(/^nearest available or returning by road time \(priority (\d)\)/, "按道路行驶时间最近的空闲或返回中车辆（$1 级事件）")
      .replace(/^no unit with a GPS fix in the last (\S+) s: nearest by last known position/, "$1 秒内没有车辆上报定位：按最后已知位置（或驻地）最近")
      .replace(/^manual override by (.+?)( after |$)/, "调度员 $1 手动指定$2")
      .replace(/^no candidate: no eligible unit/, "无可派车辆")
      .replace(/^no candidate: every eligible unit refused/, "所有可派车辆均已拒绝")
      .replace(/ after (.+) refused$/, "（$1 已拒绝）");
  }

  function gpsText(c) {
    if (c.gps_age_s === null || c.gps_age_s === undefined) return t("assign.never");
    const s = Math.round(c.gps_age_s);
    return t(c.stale ? "assign.stale" : "assign.fresh", { s });
  }

  function renderCandidates(inc, decision) {
    $("assign-rule").textContent = t("assign.rule", { rule: ruleText(decision.rule) });
    const ranked = (decision.ranked || []).filter((c) => c.unit_id !== inc.unit_id);
    const chosen = decision.chosen ? decision.chosen.unit_id : null;
    let html = "";
    if (!ranked.length) {
      html += `<p class="empty">${esc(t("assign.none"))}</p>`;
    } else {
      html += `<table class="candidates"><thead><tr><th>${esc(t("assign.col.rank"))}</th><th>${esc(t("assign.col.unit"))}</th>`
        + `<th>${esc(t("assign.col.status"))}</th><th class="num">${esc(t("assign.col.eta"))}</th><th>${esc(t("assign.col.gps"))}</th><th></th></tr></thead><tbody>`;
      ranked.forEach((c, idx) => {
        const u = S.units.get(c.unit_id) || {};
        html += `<tr data-unit-id="${esc(c.unit_id)}" class="${c.stale ? "stale" : "fresh-gps"}">`
          + `<td>${idx + 1}</td>`
          + `<td><strong>${esc(c.unit_id)}</strong> <span class="muted">${esc(u.name || "")}</span>`
          + `${c.unit_id === chosen ? ` <span class="badge badge-rec">${esc(t("assign.recommended"))}</span>` : ""}</td>`
          + `<td>${esc(t(`ustate.${c.status}`))}</td>`
          + `<td class="num eta">${esc(t("assign.eta_min", { m: minutes(c.eta_s) }))}</td>`
          + `<td class="${c.stale ? "warn-text" : ""}">${esc(gpsText(c))}</td>`
          + `<td><button type="button" class="${idx === 0 ? "primary" : ""}" data-pick="${esc(c.unit_id)}">${esc(t("assign.pick"))}</button></td></tr>`;
      });
      html += "</tbody></table>";
    }
    const excluded = decision.excluded || [];
    if (excluded.length) {
      html += `<details class="excluded"><summary>${esc(t("assign.excluded", { n: excluded.length }))}</summary><ul>`
        + excluded.map((e) => `<li><strong>${esc(e.unit_id)}</strong> — ${esc(e.reason)}</li>`).join("") + "</ul></details>";
    }
    $("assign-body").innerHTML = html;
  }

  async function onPick(ev) {
    const button = ev.target.closest("button[data-pick]");
    if (!button) return;
    const dialog = $("assign-dialog");
    const incidentId = dialog.dataset.incidentId;
    const unitId = button.dataset.pick;
    dialog.querySelectorAll("button[data-pick]").forEach((b) => { b.disabled = true; });
    try {
      const r = await api(`/api/incidents/${encodeURIComponent(incidentId)}/assign`, { method: "POST", body: { unit_id: unitId } });
      const inc = S.incidents.get(incidentId);
      if (inc) Object.assign(inc, { unit_id: r.unit_id, eta_s: r.eta_s, state: "dispatched", queued: false, _touched: performance.now() });
      dialog.close();
      toast(t("assign.done", { unit: r.unit_id, m: minutes(r.eta_s) }));
      render();
      schedule("incidents", loadIncidents, 300);
      schedule("units", loadUnits, 300);
    } catch (err) {
      $("assign-error").textContent = t("assign.failed", { detail: err.detail || String(err) });
      $("assign-error").hidden = false;
      dialog.querySelectorAll("button[data-pick]").forEach((b) => { b.disabled = false; });
    }
  }

  // --- the call-taker's form --------------------------------------------------------------------

  function openCallForm() {
    $("call-form").hidden = false;
    $("new-incident").hidden = true;
    $("call-error").hidden = true;
    S.picking = true;
    document.body.classList.add("picking");
    $("call-description").focus();
  }

  function closeCallForm() {
    $("call-form").hidden = true;
    $("new-incident").hidden = false;
    $("call-form").reset();
    S.picking = false;
    document.body.classList.remove("picking");
    if (S.pickMarker) { S.pickMarker.remove(); S.pickMarker = null; }
  }

  function setPick(lat, lon) {
    $("call-lat").value = lat.toFixed(6);
    $("call-lon").value = lon.toFixed(6);
    if (!S.map) return;
    if (!S.pickMarker) {
      S.pickMarker = L.marker([lat, lon], {
        draggable: true, zIndexOffset: 2000,
        icon: L.divIcon({ className: "pick-marker", html: '<div class="pick-icon">+</div>', iconSize: [30, 30], iconAnchor: [15, 15] }),
      }).addTo(S.map);
      S.pickMarker.on("dragend", () => {
        const p = S.pickMarker.getLatLng();
        setPick(p.lat, p.lng);
      });
    } else {
      S.pickMarker.setLatLng([lat, lon]);
    }
  }

  async function onCallSubmit(ev) {
    ev.preventDefault();
    const lat = parseFloat($("call-lat").value);
    const lon = parseFloat($("call-lon").value);
    const error = $("call-error");
    if (!isFinite(lat) || !isFinite(lon)) {
      error.textContent = t("call.need_location");
      error.hidden = false;
      return;
    }
    const body = {
      lat, lon, kind: $("call-kind").value, priority: parseInt($("call-priority").value, 10),
      description: $("call-description").value.trim(),
    };
    $("call-submit").disabled = true;
    try {
      const row = await api("/api/incidents", { method: "POST", body });
      applyIncident(row);
      render();
      toast(t("call.created", { id: row.incident_id }));
      closeCallForm();
    } catch (err) {
      error.textContent = t("call.failed", { detail: err.detail || String(err) });
      error.hidden = false;
    } finally {
      $("call-submit").disabled = false;
    }
  }

  // --- the map ---------------------------------------------------------------------------------

  const UNIT_COLOURS = {
    available: "#15803d", dispatched: "#1d4ed8", en_route: "#1d4ed8", on_scene: "#b45309",
    transporting: "#7c3aed", at_hospital: "#7c3aed", returning: "#0e7490", out_of_service: "#6b7280",
  };
  const ROAD_STYLE = {
    motorway: { color: "#d9894a", weight: 3.5 }, trunk: { color: "#c9a063", weight: 3 },
    primary: { color: "#b7ae9f", weight: 2.2 }, secondary: { color: "#cdc7bc", weight: 1.6 },
    tertiary: { color: "#d8d3ca", weight: 1.1 }, minor: { color: "#e3dfd8", weight: 0.6 },
  };
  const FACILITY_STYLE = {
    emergency_centre: { radius: 6, color: "#1e3a8a", fillColor: "#1e3a8a" },
    hospital: { radius: 5, color: "#9d174d", fillColor: "#fbcfe8", weight: 2 },
    ambulance_station: { radius: 4, color: "#1d4ed8", fillColor: "#dbeafe" },
    patrol_base: { radius: 4, color: "#0f766e", fillColor: "#ccfbf1" },
    first_aid_post: { radius: 2.5, color: "#7b8794", fillColor: "#e5e7eb" },
  };

  const FALLBACK_VIEW = { centre: [35.0, 105.0], zoom: 8 };

  function initMap() {
    const message = $("map-message");
    if (!window.L) {
      message.textContent = t("map.missing");
      message.hidden = false;
      return;
    }
    const map = L.map("map", {
      zoomControl: true, attributionControl: false, zoomSnap: 0.25, minZoom: 8, maxZoom: 17,
      preferCanvas: false, boxZoom: true,
    });
    S.map = map;
    // Until the county's opening view arrives (GET /api/region): all of China.
    map.setView(FALLBACK_VIEW.centre, FALLBACK_VIEW.zoom);
    [["base", 200], ["towns", 250], ["water", 300], ["roads", 320], ["coverage", 340], ["facilities", 350], ["stations", 420], ["labels", 450], ["links", 480]]
      .forEach(([name, z]) => { map.createPane(name).style.zIndex = String(z); });
    map.getPane("labels").style.pointerEvents = "none";
    S.layers.links = L.layerGroup([], { pane: "links" }).addTo(map);
    S.layers.stations = L.layerGroup().addTo(map);
    S.layers.units = L.layerGroup().addTo(map);
    S.layers.incidents = L.layerGroup().addTo(map);
    S.layers.coverage = L.layerGroup([], { pane: "coverage" }).addTo(map);
    $("move-up-accept").addEventListener("click", onAcceptMoveUp);
    map.on("click", (e) => { if (S.picking) setPick(e.latlng.lat, e.latlng.lng); });
    // The banner and the notices change the map's height: tell Leaflet, or clicks land wrong.
    if (window.ResizeObserver) new ResizeObserver(() => map.invalidateSize({ pan: false })).observe($("map"));
    renderLegend();
    message.textContent = t("map.loading");
    message.hidden = false;
    I18N.region.then((region) => {
      // The region's view first; the loaded boundary (or roads) then frame the map.
      const view = region && region.map;
      if (view) map.setView([view.centre.lat, view.centre.lon], view.zoom);
      return loadMap();
    }).then(() => { message.hidden = true; return loadCoverage().catch((e) => console.warn("coverage", e)); }, (err) => {
      message.textContent = t("map.failed", { detail: err.detail || String(err) });
      message.hidden = false;
    });
  }

  // Coverage: each village coloured by how soon an available ambulance reaches it, redrawn
  // whenever a unit's status changes; an uncovered town brings up the move-up to accept.
  const COVERAGE_COLOURS = ["#16a34a", "#f59e0b", "#dc2626", "#6b7280"];

  async function loadCoverage() {
    if (!S.map || !S.layers.coverage || !S.hasRoads) return;
    const c = await api("/api/coverage");
    S.coverage = c;
    S.layers.coverage.clearLayers();
    Object.entries(c.sites || {}).forEach(([id, site]) => {
      L.circle([site.lat, site.lon], {
        pane: "coverage", radius: 650, weight: 1, color: COVERAGE_COLOURS[site.band], fillColor: COVERAGE_COLOURS[site.band],
        fillOpacity: 0.35, className: `coverage-site band-${site.band}`,
      }).bindTooltip(() => `<strong>${esc(site.name)}</strong><br>${esc(t(`coverage.band${site.band}`))}`
        + (site.seconds === null ? "" : ` · ${Math.round(site.seconds / 60)} min`), { direction: "top" })
        .addTo(S.layers.coverage);
    });
    const box = $("move-up");
    const m = c.move_up;
    if (m) {
      $("move-up-text").textContent = t("coverage.move_up", {
        town: m.town, share: Math.round(100 * (c.towns[m.town] || 0)), unit: m.unit_id, facility: m.facility_id,
        min: Math.round(m.drive_s / 60),
      });
      box.dataset.unitId = m.unit_id;
      box.dataset.facilityId = m.facility_id;
    }
    box.hidden = !m;
  }

  async function onAcceptMoveUp() {
    const box = $("move-up");
    const unitId = box.dataset.unitId, facilityId = box.dataset.facilityId;
    if (!unitId || !facilityId) return;
    try {
      await api(`/api/units/${encodeURIComponent(unitId)}/relocate`, { method: "POST", body: { facility_id: facilityId } });
      box.hidden = true;
      $("move-up-text").textContent = t("coverage.sent", { unit: unitId, facility: facilityId });
      schedule("coverage", loadCoverage, 800);
    } catch (err) {
      $("move-up-text").textContent = String(err.detail || err);
    }
  }

  async function loadMap() {
    const layers = await api("/api/map");
    const map = S.map;
    const svg = (pane) => L.svg({ pane });
    const canvas = (pane) => L.canvas({ pane });
    let host = null;
    L.geoJSON(layers.boundaries, {
      pane: "base", renderer: svg("base"), interactive: false,
      style: (f) => (f.properties.home === true
        ? { color: "#334155", weight: 2.5, fillColor: "#fbfaf5", fillOpacity: 1 }
        : { color: "#9aa5b1", weight: 1, dashArray: "5 4", fillColor: "#e7ebef", fillOpacity: 1 }),
      onEachFeature: (f, layer) => {
        if (f.properties.home === true) host = layer;
        else if (f.properties.centroid) addLabel(f.properties.centroid, f.properties.name, "label-neighbour");
      },
    }).addTo(map);
    L.geoJSON(layers.towns, {
      pane: "towns", renderer: svg("towns"), interactive: false,
      filter: (f) => f.geometry.type !== "Point",
      style: { color: "#a3adb8", weight: 1, dashArray: "3 4", fill: false },
    }).addTo(map);
    (layers.towns.features || []).filter((f) => f.geometry.type === "Point").forEach((f) => {
      addLabel(f.geometry.coordinates, null, "label-town", f.properties);
    });
    L.geoJSON(layers.rivers, {
      pane: "water", renderer: canvas("water"), interactive: false,
      style: { color: "#5b9bd5", weight: 3, opacity: 0.85 },
    }).addTo(map);
    const roads = L.geoJSON(layers.roads, {
      pane: "roads", renderer: canvas("roads"), interactive: false,
      style: (f) => Object.assign({ opacity: 0.95 }, ROAD_STYLE[f.properties.road_class] || ROAD_STYLE.minor),
    }).addTo(map);
    // Coverage is computed on the road network: a deployment that has loaded none has none.
    S.hasRoads = roads.getLayers().length > 0;
    const facRenderer = canvas("facilities");
    L.geoJSON(layers.facilities, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, Object.assign(
        { pane: "facilities", renderer: facRenderer, weight: 1.5, fillOpacity: 1 },
        FACILITY_STYLE[f.properties.kind] || FACILITY_STYLE.first_aid_post,
      )).bindTooltip(() => `<strong>${esc(f.properties.name)}</strong><br>${esc(t(`fac.${f.properties.kind}`))}`, { direction: "top" }),
    }).addTo(map);
    // The area served: the boundary marked home, else wherever the loaded roads run.
    const home = host ? host.getBounds() : roads.getBounds();
    if (home.isValid()) {
      S.homeBounds = home;
      map.fitBounds(S.homeBounds, { padding: [12, 12] });
    }
  }

  const labels = [];
  function addLabel(lonlat, text, cls, props) {
    if (!S.map) return;
    const marker = L.marker([lonlat[1], lonlat[0]], {
      pane: "labels", interactive: false, keyboard: false,
      icon: L.divIcon({ className: `map-label ${cls}`, html: "", iconSize: null }),
    }).addTo(S.map);
    const label = { marker, text, props };
    labels.push(label);
    paintLabel(label);
  }

  function paintLabel(label) {
    const el = label.marker.getElement();
    if (!el) return;
    const p = label.props;
    el.textContent = p ? (I18N.lang === "zh" ? p.name_zh || p.name : p.name) : label.text;
  }

  function renderLegend() {
    const classes = [1, 2, 3, 4, 5, 6].map((c) => `<span class="lg"><i style="background:${CLASS_COLOUR[c]}"></i>${esc(CLASS_LABEL[c])}</span>`).join("");
    const units = ["available", "dispatched", "on_scene", "transporting", "returning"].map((s) =>
      `<span class="lg"><i class="sq" style="background:${UNIT_COLOURS[s]}"></i>${esc(t(`ustate.${s}`))}</span>`).join("");
    $("legend").innerHTML = `<div class="lg-title">${esc(t("legend.title"))}</div><div class="lg-row">${classes}`
      + `<span class="lg"><i style="background:${CLASS_COLOUR[0]}"></i>${esc(t("legend.nodata"))}</span>`
      + `<span class="lg"><i class="ring"></i>${esc(t("legend.alarm"))}</span></div>`
      + `<div class="lg-row">${units}</div>`
      + `<div class="lg-row">${["emergency_centre", "hospital", "ambulance_station", "first_aid_post", "patrol_base"].map((k) => {
        const f = FACILITY_STYLE[k];
        return `<span class="lg"><i class="fac" style="background:${f.fillColor};border-color:${f.color}"></i>${esc(t(`fac.${k}`))}</span>`;
      }).join("")}</div>`;
  }

  function stationTooltip(s) {
    const wc = waterClass(s.latest, s.water_body);
    const target = CLASS_LABEL[s.target_class] || s.target_class;
    const lines = [`<strong>${esc(s.name)}</strong> <span class="muted">${esc(s.station_id)}</span>`,
      wc ? esc(t("station.class", { cls: CLASS_LABEL[wc.cls], target })) : esc(t("station.class_nodata", { target }))];
    if (wc && wc.cls > 1) lines.push(esc(t("station.worst", { p: paramLabel(wc.parameter), v: num(wc.value, 3) })));
    if (s.last_ts) lines.push(esc(t("station.last", { t: I18N.clock(s.last_ts) })));
    const alarms = s.alarms && typeof s.alarms === "object" ? Object.keys(s.alarms) : [];
    if (alarms.length) lines.push(`<span class="warn-text">${alarms.map((a) => esc(t(`atype.${a}`))).join(", ")}</span>`);
    return lines.join("<br>");
  }

  function renderStations() {
    if (!S.map) return;
    const seen = new Set();
    for (const s of S.stations.values()) {
      if (typeof s.lat !== "number") continue;
      seen.add(s.station_id);
      const wc = waterClass(s.latest, s.water_body);
      const alarmed = s.alarms && typeof s.alarms === "object" && Object.keys(s.alarms).length > 0;
      const fill = CLASS_COLOUR[wc ? wc.cls : 0];
      let m = S.stationMarkers.get(s.station_id);
      if (!m) {
        const ring = L.circleMarker([s.lat, s.lon], { pane: "stations", radius: 13, color: "#dc2626", weight: 3, fill: false, interactive: false });
        const dot = L.circleMarker([s.lat, s.lon], { pane: "stations", radius: 8, color: "#1f2937", weight: 1.5, fillOpacity: 1 });
        dot.bindTooltip(() => stationTooltip(S.stations.get(s.station_id) || s), { direction: "top" });
        dot.on("click", () => { dot.openTooltip(); if (window.WPCharts) window.WPCharts.openStation(s.station_id, s.name); });
        m = { ring, dot };
        dot.addTo(S.layers.stations);
        S.stationMarkers.set(s.station_id, m);
      }
      m.dot.setStyle({ fillColor: fill });
      if (alarmed && !S.layers.stations.hasLayer(m.ring)) m.ring.addTo(S.layers.stations);
      if (!alarmed && S.layers.stations.hasLayer(m.ring)) S.layers.stations.removeLayer(m.ring);
      const el = m.dot.getElement && m.dot.getElement();
      if (el) {
        el.setAttribute("data-station", s.station_id);
        el.setAttribute("data-class", wc ? CLASS_LABEL[wc.cls] : "");
      }
    }
    for (const [id, m] of S.stationMarkers) {
      if (!seen.has(id)) {
        S.layers.stations.removeLayer(m.dot);
        S.layers.stations.removeLayer(m.ring);
        S.stationMarkers.delete(id);
      }
    }
  }

  /** "AMB-07" -> "A07", "RP-03" -> "R03": the map is crowded at county scale; the tooltip
      and the queues give the full id. */
  function shortUnit(id) {
    const m = /^([A-Za-z])[A-Za-z]*[-_ ]?(\d+)$/.exec(id);
    return m ? `${m[1].toUpperCase()}${m[2]}` : id;
  }

  function unitPosition(u) {
    if (typeof u.lat === "number" && typeof u.lon === "number") return [u.lat, u.lon];
    if (typeof u.base_lat === "number" && typeof u.base_lon === "number") return [u.base_lat, u.base_lon];
    return null;
  }

  function renderUnits() {
    if (!S.map) return;
    // Units parked at one base would hide each other: fan them out a little on screen.
    const groups = new Map();
    for (const u of S.units.values()) {
      const at = unitPosition(u);
      if (!at) continue;
      const key = `${at[0].toFixed(4)},${at[1].toFixed(4)}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(u.unit_id);
    }
    const seen = new Set();
    for (const u of S.units.values()) {
      const at = unitPosition(u);
      if (!at) continue;
      seen.add(u.unit_id);
      const group = groups.get(`${at[0].toFixed(4)},${at[1].toFixed(4)}`);
      const idx = group.indexOf(u.unit_id);
      let dx = 0;
      let dy = 0;
      if (group.length > 1) {
        const angle = (2 * Math.PI * idx) / group.length - Math.PI / 2;
        dx = Math.round(Math.cos(angle) * 14);
        dy = Math.round(Math.sin(angle) * 11);
      }
      const status = u.status || "available";
      const html = `<div class="unit-icon k-${esc(u.kind)}" data-unit="${esc(u.unit_id)}" data-status="${esc(status)}"`
        + ` style="background:${UNIT_COLOURS[status] || "#374151"};transform:translate(${dx}px,${dy}px)">${esc(shortUnit(u.unit_id))}</div>`;
      let m = S.unitMarkers.get(u.unit_id);
      if (!m) {
        m = L.marker(at, { icon: L.divIcon({ className: "unit-marker", html, iconSize: [34, 18], iconAnchor: [17, 9] }), zIndexOffset: 500, keyboard: false });
        m._html = html;
        m.bindTooltip(() => unitTooltip(S.units.get(u.unit_id)), { direction: "top", offset: [0, -8] });
        m.addTo(S.layers.units);
        S.unitMarkers.set(u.unit_id, m);
      } else {
        const cur = m.getLatLng();
        if (cur.lat !== at[0] || cur.lng !== at[1]) m.setLatLng(at);
        if (m._html !== html) {
          m.setIcon(L.divIcon({ className: "unit-marker", html, iconSize: [34, 18], iconAnchor: [17, 9] }));
          m._html = html;
        }
      }
      const el = m.getElement();
      if (el) {
        el.dataset.lat = String(at[0]);
        el.dataset.lon = String(at[1]);
      }
    }
    for (const [id, m] of S.unitMarkers) {
      if (!seen.has(id)) { S.layers.units.removeLayer(m); S.unitMarkers.delete(id); }
    }
    renderLinks();
  }

  function unitTooltip(u) {
    if (!u) return "";
    const lines = [`<strong>${esc(u.unit_id)}</strong> ${esc(u.name || "")}`,
      `${esc(t(`ukind.${u.kind}`))} · ${esc(t(`ustate.${u.status || "available"}`))}`];
    if (u.incident_id) lines.push(esc(u.incident_id));
    lines.push(esc(u.gps_at ? t("unit.gps_at", { t: `${I18N.clock(u.gps_at)} (${I18N.ago(u.gps_at)})` }) : t("unit.at_base")));
    return lines.join("<br>");
  }

  function renderIncidentMarkers() {
    if (!S.map) return;
    const seen = new Set();
    for (const i of S.incidents.values()) {
      if (typeof i.lat !== "number" || typeof i.lon !== "number") continue;
      seen.add(i.incident_id);
      const html = `<div class="inc-icon prio-${esc(i.priority)}${i.unit_id ? "" : " unassigned"}" data-incident="${esc(i.incident_id)}"><span>P${esc(i.priority)}</span></div>`;
      // A station's incident sits beside the station, whose colour and alarm ring stay visible.
      const anchor = i.station_id ? [-6, 32] : [15, 15];
      let m = S.incidentMarkers.get(i.incident_id);
      if (!m) {
        m = L.marker([i.lat, i.lon], { icon: L.divIcon({ className: "inc-marker", html, iconSize: [30, 30], iconAnchor: anchor }), zIndexOffset: 1000 });
        m._html = html;
        m.bindTooltip(() => incidentTooltip(S.incidents.get(i.incident_id)), { direction: "top", offset: [0, -12] });
        m.on("click", () => {
          const li = document.querySelector(`#incident-queue li[data-key="${CSS.escape(i.incident_id)}"]`);
          if (li) { li.scrollIntoView({ block: "nearest", behavior: "smooth" }); li.classList.add("flash"); setTimeout(() => li.classList.remove("flash"), 1500); }
        });
        m.addTo(S.layers.incidents);
        S.incidentMarkers.set(i.incident_id, m);
      } else {
        m.setLatLng([i.lat, i.lon]);
        if (m._html !== html) {
          m.setIcon(L.divIcon({ className: "inc-marker", html, iconSize: [30, 30], iconAnchor: anchor }));
          m._html = html;
        }
      }
    }
    // The fix's accuracy: a circle of acc_m around a person's incident, moved with it.
    for (const id of seen) {
      const i = S.incidents.get(id);
      let c = S.incidentCircles.get(id);
      const acc = i && Number(i.location_acc_m);
      if (!i || !(acc > 0)) { if (c) { S.layers.incidents.removeLayer(c); S.incidentCircles.delete(id); } continue; }
      if (!c) {
        c = L.circle([i.lat, i.lon], { radius: acc, className: "inc-accuracy", weight: 1, fillOpacity: 0.1 }).addTo(S.layers.incidents);
        S.incidentCircles.set(id, c);
      } else { c.setLatLng([i.lat, i.lon]); c.setRadius(acc); }
    }
    for (const [id, c] of S.incidentCircles) {
      if (!seen.has(id)) { S.layers.incidents.removeLayer(c); S.incidentCircles.delete(id); }
    }
    for (const [id, m] of S.incidentMarkers) {
      if (!seen.has(id)) { S.layers.incidents.removeLayer(m); S.incidentMarkers.delete(id); }
    }
  }

  function incidentTooltip(i) {
    if (!i) return "";
    const lines = [`<strong>${esc(i.incident_id)}</strong> · P${esc(i.priority)} · ${esc(t(`kind.${i.kind}`))}`,
      esc(t(`istate.${i.state}`))];
    if (i.unit_id) lines.push(esc(t("incidents.unit", { unit: unitLabel(i.unit_id) })));
    if (i.description) lines.push(esc(i.description));
    return lines.join("<br>");
  }

  /** A dashed line from each assigned unit to its incident. */
  function renderLinks() {
    if (!S.map) return;
    S.layers.links.clearLayers();
    for (const i of S.incidents.values()) {
      if (!i.unit_id || typeof i.lat !== "number") continue;
      const u = S.units.get(i.unit_id);
      const at = u && unitPosition(u);
      if (!at) continue;
      L.polyline([at, [i.lat, i.lon]], {
        pane: "links", color: UNIT_COLOURS[u.status] || "#1d4ed8", weight: 2.5, dashArray: "6 6", opacity: 0.9, interactive: false,
      }).addTo(S.layers.links);
    }
  }

  // --- start ------------------------------------------------------------------------------------

  function tick() {
    $("clock").textContent = I18N.clock(new Date().toISOString());
    // There is no token refresh: say so before the session ends, not after.
    const left = S.session && S.session.expiresAt ? S.session.expiresAt - Date.now() : Infinity;
    $("expiry").hidden = left > 15 * 60000;
    if (left <= 15 * 60000) $("expiry").textContent = t("session.expires", { t: I18N.clock(new Date(S.session.expiresAt).toISOString()) });
    updateAges(document.getElementById("app"));
    renderConn();
  }

  function start() {
    S.loggedOut = false;
    document.body.classList.remove("is-login");
    $("login-view").hidden = true;
    $("app").hidden = false;
    $("who").textContent = `${S.session.username} · ${S.session.role}`;
    const saved = sessionStorage.getItem(LAST_EVENT_KEY);
    S.lastEventId = saved !== null && /^\d+$/.test(saved) ? Number(saved) : null;
    if (!S.map) initMap();
    else setTimeout(() => S.map.invalidateSize(), 0);
    renderSoundButton();
    connect();
    api("/api/me").then((me) => {
      if (me && me.display_name) $("who").textContent = `${me.display_name} (${S.session.username}) · ${S.session.role}`;
    }, () => {});
    S.timers.push(setInterval(() => { if (!document.hidden || WS.state === "connected") loadUnits().catch(() => {}); }, UNIT_POLL_MS));
    S.timers.push(setInterval(() => loadStations().catch(() => {}), STATION_POLL_MS));
    S.timers.push(setInterval(() => { if (WS.state === "connected") { loadAlarms().catch(() => {}); loadIncidents().catch(() => {}); } }, SNAPSHOT_POLL_MS));
    S.timers.push(setInterval(tick, 1000));
    tick();
    render();
  }

  function init() {
    I18N.apply(document);
    try { S.sound = localStorage.getItem(SOUND_KEY) !== "off"; } catch (_e) { S.sound = true; }
    document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", () => {
      I18N.setLang(I18N.lang === "zh" ? "en" : "zh");
    }));
    I18N.onChange(() => {
      document.title = t("console.title");
      labels.forEach(paintLabel);
      renderLegend();
      renderSoundButton();
      for (const li of document.querySelectorAll(".queue-list li")) { li._html = null; }
      render();
      if ($("assign-dialog").open) openAssign($("assign-dialog").dataset.incidentId);
    });
    document.title = t("console.title");
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", () => logout(""));
    $("alarm-queue").addEventListener("click", onQueueClick);
    $("incident-queue").addEventListener("click", onQueueClick);
    $("assign-body").addEventListener("click", onPick);
    $("new-incident").addEventListener("click", openCallForm);
    $("call-cancel").addEventListener("click", closeCallForm);
    $("call-form").addEventListener("submit", onCallSubmit);
    $("conn-retry").addEventListener("click", () => { WS.attempt = Math.max(0, WS.attempt - 1); connect(); });
    $("sound-toggle").addEventListener("click", () => {
      if (audioCtx && audioCtx.state === "suspended") { ensureAudio(); return; }
      S.sound = !S.sound;
      try { localStorage.setItem(SOUND_KEY, S.sound ? "on" : "off"); } catch (_e) { /* ignore */ }
      ensureAudio();
      if (S.sound) beep();
    });
    $("banner-ack").addEventListener("click", () => {
      const id = $("critical-banner").dataset.alarmId;
      if (id) ackAlarm(id, $("banner-ack")).finally(() => { $("banner-ack").disabled = false; });
    });
    $("banner-silence").addEventListener("click", () => {
      bannerAlarms().forEach((a) => S.silenced.add(String(a.alarm_id)));
      stopBeeping();
      renderBanner();
    });
    // Any click may unlock audio that the browser kept suspended (e.g. after a reload).
    document.addEventListener("pointerdown", () => { if (audioCtx && audioCtx.state === "suspended") ensureAudio(); }, true);
    window.addEventListener("online", () => { if (!S.loggedOut && !WS.sock) { WS.attempt = 0; connect(); } renderConn(); });
    window.addEventListener("offline", renderConn);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !$("call-form").hidden) closeCallForm();
    });

    S.session = loadSession();
    if (S.session) {
      start();
      ensureAudio(); // suspended until the first click: the sound button says so
    } else {
      $("login-view").hidden = false;
      $("login-username").focus();
    }
  }

  init();
})();
