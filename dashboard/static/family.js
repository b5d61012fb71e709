/* A family member's page: their relative(s)' latest state and live alerts, phone-sized.
 * The server decides what this account may see (GET /api/me lists the linked persons; the
 * family websocket carries only their alarm and incident events); the page never asks
 * about anyone else. */
(function () {
  "use strict";

  const t = I18N.t;
  const $ = (id) => document.getElementById(id);
  const SESSION_KEY = "watchpost.family.session";
  const LAST_EVENT_KEY = "watchpost.family.lastEventId";
  const REFRESH_MS = 30000;
  const STATE_RANK = { active: 0, acked: 1, cleared: 2 };
  const SEVERITY_RANK = { critical: 0, major: 1, minor: 2, warning: 3 };

  const probe = (window.__wp = { beeps: 0, events: 0 });

  const S = {
    session: null,
    me: null,
    persons: new Map(), // person_id -> /api/persons/{id} document
    vitals: new Map(), // person_id -> {field: {value, ts}}: the newest known value of each
    announced: null, // the alarm the "new alert" notice is about
    alarms: new Map(), // alarm_id -> row (open ones of the linked persons)
    notified: new Map(), // alarm_id -> Map(notification_id -> the latest state of an SMS or call)
    incidents: new Map(), // incident_id -> the family's view: whether help is on its way
    cleared: new Set(),
    lastEventId: null,
    loggedOut: true,
    timers: [],
  };

  function esc(value) {
    return String(value === null || value === undefined ? "" : value)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  function ms(iso) {
    const v = Date.parse(iso);
    return isFinite(v) ? v : 0;
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; this.detail = detail; }
  }

  async function api(path, options) {
    options = options || {};
    const headers = { Accept: "application/json" };
    if (S.session) headers.Authorization = `Bearer ${S.session.token}`;
    let response;
    try {
      response = await fetch(path, { method: options.method || "GET", headers, body: options.body });
    } catch (err) {
      throw new ApiError(0, String(err.message || err));
    }
    const text = await response.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_e) { data = { detail: text.slice(0, 200) }; } }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`;
      if (response.status === 401 && S.session && !options.login) expired();
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  let toastTimer = null;
  function toast(message, error) {
    const el = $("toast");
    el.textContent = message;
    el.className = `toast${error ? " toast-error" : ""}`;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  // --- sound ------------------------------------------------------------------------------

  let audioCtx = null;
  function ensureAudio() {
    try {
      if (!audioCtx) {
        const AC = window.AudioContext || window.webkitAudioContext;
        if (AC) audioCtx = new AC();
      }
      if (audioCtx && audioCtx.state === "suspended") audioCtx.resume().catch(() => {});
    } catch (_e) { audioCtx = null; }
  }

  function alertCue() {
    probe.beeps += 1;
    try { if (navigator.vibrate) navigator.vibrate([300, 150, 300]); } catch (_e) { /* ignore */ }
    if (!audioCtx) return;
    try {
      const start = audioCtx.currentTime + 0.02;
      [880, 660, 880].forEach((freq, i) => {
        const at = start + i * 0.22;
        const osc = audioCtx.createOscillator();
        const gain = audioCtx.createGain();
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
        osc.connect(gain).connect(audioCtx.destination);
        osc.start(at);
        osc.stop(at + 0.2);
      });
    } catch (_e) { /* sound is a bonus */ }
  }

  // --- session ----------------------------------------------------------------------------

  async function onLogin(ev) {
    ev.preventDefault();
    ensureAudio();
    const username = $("login-username").value.trim();
    const error = $("login-error");
    const submit = $("login-submit");
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = t("login.busy");
    try {
      const tok = await api("/api/token", {
        method: "POST", body: new URLSearchParams({ username, password: $("login-password").value }), login: true,
      });
      if (tok.role !== "family") throw new ApiError(403, t("login.wrong_role.family", { role: tok.role }));
      S.session = { token: tok.access_token, role: tok.role, username, expiresAt: tok.expires_in ? Date.now() + tok.expires_in * 1000 : null };
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
    S.timers.forEach(clearInterval);
    S.timers = [];
    closeSocket();
    S.persons.clear(); S.vitals.clear(); S.alarms.clear(); S.cleared.clear(); S.lastEventId = null; S.announced = null;
    $("persons").textContent = "";
    if ($("trends")) $("trends").textContent = "";
    $("app").hidden = true;
    $("logout").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
    $("login-error").hidden = !message;
  }

  function expired() {
    if (!S.loggedOut) logout(t("login.expired"));
  }

  // --- state ------------------------------------------------------------------------------

  function applyAlarm(row) {
    const id = String(row.alarm_id);
    if (S.cleared.has(id)) return null;
    const cur = S.alarms.get(id);
    if (cur && (STATE_RANK[row.state] || 0) < (STATE_RANK[cur.state] || 0)) return null;
    if (row.state === "cleared") {
      S.alarms.delete(id);
      S.cleared.add(id);
      return null;
    }
    const next = Object.assign({}, cur || {}, row, { _touched: performance.now() });
    S.alarms.set(id, next);
    return cur ? null : next;
  }

  async function loadPerson(id) {
    const sent = performance.now();
    const doc = await api(`/api/persons/${encodeURIComponent(id)}`);
    S.persons.set(id, doc);
    mergeVitals(id, doc.vitals);
    // The person's open alarms as the server has them now; one that an event brought in
    // after this request left is kept.
    const open = new Set((doc.alarms || []).map((a) => String(a.alarm_id)));
    (doc.alarms || []).forEach(applyAlarm);
    for (const [aid, a] of S.alarms) if (a.person_id === id && !open.has(aid) && a._touched < sent) S.alarms.delete(aid);
    render();
  }

  const VITALS = ["hr_bpm", "spo2_pct", "skin_temp_c", "steps", "battery_pct"];

  /** Keep the newest known value of each vital and when it was measured. The API gives each
      field as {value, ts} (its newest non-empty value); a live row gives plain values. */
  function mergeVitals(id, row) {
    const known = S.vitals.get(id) || {};
    if (row && row.ts) {
      if (!known.ts || ms(row.ts) >= ms(known.ts.value)) known.ts = { value: row.ts, ts: row.ts };
      for (const f of VITALS) {
        const v = row[f];
        if (v === null || v === undefined) continue;
        const entry = typeof v === "object" ? { value: v.value, ts: v.ts } : { value: v, ts: row.ts };
        if (!known[f] || ms(entry.ts) >= ms(known[f].ts)) known[f] = entry;
      }
    }
    S.vitals.set(id, known);
  }

  async function loadAll() {
    const me = await api("/api/me");
    S.me = me;
    const ids = me.persons || [];
    $("none").hidden = ids.length > 0;
    for (const id of [...S.persons.keys()]) if (!ids.includes(id)) S.persons.delete(id);
    await Promise.allSettled([...ids.map(loadPerson), loadIncidents()]);
    render();
    if (window.WPCharts) window.WPCharts.family($("trends"), ids);
  }

  async function loadIncidents() {
    const rows = await api("/api/incidents?state=open");
    S.incidents.clear();
    rows.forEach((r) => S.incidents.set(r.incident_id, r));
  }

  function applyIncident(d) {
    if (!d.incident_id) return;
    const next = Object.assign({}, S.incidents.get(d.incident_id) || {}, d);
    if (["closed", "cancelled"].includes(next.state)) S.incidents.delete(d.incident_id);
    else S.incidents.set(d.incident_id, next);
  }

  /** Who is on the way: an ambulance (with its ETA) and, when alerted, the village doctor. */
  function helpLine(personId) {
    const inc = [...S.incidents.values()].find((i) => i.person_id === personId);
    if (!inc) return "";
    const parts = [];
    if (inc.doctor_on_scene) parts.push(t("family.doctor_on_scene"));
    else if (inc.doctor_on_the_way) parts.push(t("family.doctor_coming"));
    if (inc.help_on_the_way) {
      parts.push(typeof inc.eta_s === "number" ? t("family.ambulance_eta", { m: Math.max(1, Math.round(inc.eta_s / 60)) }) : t("family.ambulance_coming"));
    }
    return parts.length ? `<p class="help-coming" data-help>${parts.map(esc).join(" · ")}</p>` : "";
  }

  const pending = {};
  function later(key, fn, delay) {
    if (pending[key]) return;
    pending[key] = setTimeout(() => { delete pending[key]; fn().catch(() => {}); }, delay);
  }

  // --- websocket --------------------------------------------------------------------------

  const WS = { sock: null, attempt: 0, timer: null, retryAt: 0, state: "connecting" };

  function closeSocket() {
    clearTimeout(WS.timer);
    if (WS.sock) { const s = WS.sock; WS.sock = null; try { s.close(1000); } catch (_e) { /* ignore */ } }
  }

  function connect() {
    clearTimeout(WS.timer);
    if (S.loggedOut) return;
    setConn(WS.attempt ? "reconnecting" : "connecting");
    // The token travels in the subprotocol header, never in the URL (URLs end up in logs).
    const q = new URLSearchParams();
    if (S.lastEventId !== null) q.set("last_event_id", String(S.lastEventId));
    const sock = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/family?${q}`, ["watchpost", S.session.token]);
    WS.sock = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      WS.attempt = 0;
      setConn("connected");
      loadAll().catch(() => {});
    };
    sock.onmessage = (e) => {
      try { onEvent(JSON.parse(e.data)); } catch (err) { console.error(err); }
    };
    sock.onclose = (e) => {
      if (WS.sock !== sock) return;
      WS.sock = null;
      if (S.loggedOut) return;
      if (e.code === 1008) { expired(); return; }
      if (!opened) api("/api/me").catch(() => {});
      WS.attempt += 1;
      const delay = e.code === 1013 ? 200 : Math.round(Math.min(30000, 500 * Math.pow(2, WS.attempt - 1)) * (0.8 + Math.random() * 0.4));
      WS.retryAt = Date.now() + delay;
      WS.timer = setTimeout(connect, delay);
      setConn("reconnecting");
    };
  }

  function setConn(state) {
    WS.state = state;
    renderConn();
  }

  function renderConn() {
    let state = WS.state;
    let text;
    if (navigator.onLine === false) {
      state = "offline";
      text = t("conn.offline", { why: t("conn.offline.network") });
    } else if (state === "connected") {
      text = t("conn.connected");
    } else if (state === "connecting") {
      text = t("conn.connecting");
    } else {
      const wait = Math.max(0, Math.ceil((WS.retryAt - Date.now()) / 1000));
      text = wait > 0 ? t("conn.reconnecting", { s: wait, n: WS.attempt }) : t("conn.reconnecting_now", { n: WS.attempt });
    }
    $("conn").className = `conn conn-${state}`;
    $("conn").dataset.state = state;
    $("conn-text").textContent = text;
  }

  function onEvent(msg) {
    if (typeof msg.id === "number") {
      if (S.lastEventId !== null && msg.id <= S.lastEventId) return;
      S.lastEventId = msg.id;
      try { sessionStorage.setItem(LAST_EVENT_KEY, String(msg.id)); } catch (_e) { /* ignore */ }
    }
    probe.events += 1;
    const d = msg.data || {};
    if (msg.type && msg.type.startsWith("alarm.")) {
      if (msg.type === "alarm.cleared") d.state = "cleared";
      if (d.change === "notification" && d.notification) {
        // Who of the family was texted or called for this alarm, and what came of it.
        const calls = S.notified.get(String(d.alarm_id)) || new Map();
        calls.set(String(d.notification.notification_id), d.notification);
        S.notified.set(String(d.alarm_id), calls);
      }
      const fresh = applyAlarm(d);
      if (d.alarm_id !== undefined && String(d.alarm_id) === S.announced && d.state !== "active") S.announced = null;
      if (fresh && msg.type === "alarm.raised" && Date.now() - ms(d.first_seen) < 5 * 60000) {
        announce(fresh);
      }
    }
    if (msg.type && msg.type.startsWith("incident.")) {
      applyIncident(d);
      later("incidents", () => loadIncidents().then(render), 500); // some events carry only part of the incident
    }
    const pid = d.person_id;
    if (pid && S.persons.has(pid)) later(`p:${pid}`, () => loadPerson(pid), 200);
    render();
  }

  function announce(alarm) {
    if ((SEVERITY_RANK[alarm.severity] ?? 9) <= 1 || alarm.emergency) alertCue();
    S.announced = String(alarm.alarm_id);
    renderNotice();
    setTimeout(() => {
      const card = document.querySelector(`.alert[data-alarm-id="${alarm.alarm_id}"]`);
      if (card) card.scrollIntoView({ block: "center", behavior: "smooth" });
    }, 50);
  }

  // --- rendering --------------------------------------------------------------------------

  function alarmTitle(a) {
    const key = `atype.${a.alarm_type}`;
    return I18N.has(key) ? t(key) : a.alarm_type;
  }

  function value(v, unit, digits) {
    if (v === null || v === undefined) return "—";
    const n = typeof v === "number" ? Number(v.toFixed(digits || 0)) : v;
    return `${esc(n)}<small>${esc(unit)}</small>`;
  }

  function alertCard(a) {
    const active = a.state === "active";
    const acked = a.state === "acked"
      ? `<p class="acked">${esc(a.acked_by === S.session.username ? t("family.on_way_sent", { who: S.me && S.me.display_name ? S.me.display_name : a.acked_by }) : t("family.acked_by", { who: a.acked_by || "" }))}</p>` : "";
    return `<li class="alert sev-${esc(a.severity)} state-${esc(a.state)}" data-alarm-id="${esc(a.alarm_id)}" data-person="${esc(a.person_id)}" data-type="${esc(a.alarm_type)}">`
      + `<div class="alert-head"><span class="alert-title">${esc(alarmTitle(a))}</span>`
      + `<span class="alert-time">${esc(I18N.clock(a.first_seen))} · <time class="age" data-ts="${esc(a.first_seen)}">${esc(I18N.ago(a.first_seen))}</time></span></div>`
      + (active ? `<button type="button" class="primary big onway" data-ack="${esc(a.alarm_id)}">${esc(t("family.on_my_way"))}</button>` : acked)
      + notifiedList(a)
      + "</li>";
  }

  function notifiedList(a) {
    const calls = [...(S.notified.get(String(a.alarm_id)) || new Map()).values()].filter((n) => n.channel !== "app");
    if (!calls.length) return "";
    return `<ul class="notified">${calls.map((n) => `<li data-channel="${esc(n.channel)}" data-state="${esc(n.state)}">`
      + `${esc(I18N.clock(n.at))} · ${esc(n.username)} · ${esc(t("notify.channel." + n.channel))}: ${esc(t("notify.state." + n.state))}</li>`).join("")}</ul>`;
  }

  function sensorText(s) {
    if (!s.ts) return esc(t("sensor.none"));
    let v;
    if (s.value_num !== null && s.value_num !== undefined) v = s.kind === "temperature" ? `${Number(s.value_num.toFixed(1))} °C` : String(s.value_num);
    else v = t(s.value_bool ? "sensor.on" : "sensor.off");
    return `${esc(v)} <span class="muted">· ${esc(I18N.ago(s.ts))}</span>`;
  }

  function personCard(p) {
    const alarms = [...S.alarms.values()].filter((a) => a.person_id === p.person_id)
      .sort((a, b) => (STATE_RANK[a.state] - STATE_RANK[b.state]) || ((SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9)) || (ms(b.first_seen) - ms(a.first_seen)));
    const known = S.vitals.get(p.person_id) || {};
    const v = { ts: known.ts && known.ts.value };
    VITALS.forEach((f) => { v[f] = known[f] ? known[f].value : null; });
    const place = [p.address, p.village, p.town].filter(Boolean).join(" · ");
    const active = alarms.some((a) => a.state === "active");
    let html = `<section class="card person${active ? " has-alert" : ""}" data-person="${esc(p.person_id)}">`
      + `<h2>${esc(p.name)}</h2><p class="muted place">${esc(place)}</p>${helpLine(p.person_id)}`
      + `<p class="seen"><span>${esc(t("family.last_seen"))}</span> <strong>${v && v.ts ? `${esc(I18N.ago(v.ts))}` : esc(t("family.never"))}</strong>`
      + `${v && v.ts ? ` <span class="muted">(${esc(I18N.clock(v.ts))})</span>` : ""}</p>`;
    html += `<h3>${esc(t("family.alerts"))}</h3>`;
    html += alarms.length ? `<ul class="alerts">${alarms.map(alertCard).join("")}</ul>` : `<p class="ok">${esc(t("family.no_alerts"))}</p>`;
    html += `<h3>${esc(t("family.vitals"))}</h3><dl class="vitals">`
      + `<div><dt>${esc(t("family.hr"))}</dt><dd>${value(v && v.hr_bpm, " bpm")}</dd></div>`
      + `<div><dt>${esc(t("family.spo2"))}</dt><dd>${value(v && v.spo2_pct, " %")}</dd></div>`
      + `<div><dt>${esc(t("family.skin"))}</dt><dd>${value(v && v.skin_temp_c, " °C", 1)}</dd></div>`
      + `<div><dt>${esc(t("family.steps"))}</dt><dd>${value(v && v.steps, "")}</dd></div>`
      + `<div><dt>${esc(t("family.battery"))}</dt><dd>${value(v && v.battery_pct, " %")}</dd></div></dl>`;
    const sensors = p.home_sensors || [];
    html += `<h3>${esc(t("family.home"))}</h3>`;
    html += sensors.length
      ? `<ul class="sensors">${sensors.map((s) => `<li><span>${esc(I18N.has(`sensor.${s.kind}`) ? t(`sensor.${s.kind}`) : s.kind)}</span><span>${sensorText(s)}</span></li>`).join("")}</ul>`
      : `<p class="muted">${esc(t("family.no_sensors"))}</p>`;
    return `${html}</section>`;
  }

  /** The red notice on top: the newest alert, until someone acknowledges it. */
  function renderNotice() {
    const el = $("new-alert");
    const a = S.announced && S.alarms.get(S.announced);
    if (!a || a.state !== "active") {
      el.hidden = true;
      return;
    }
    const person = S.persons.get(a.person_id);
    el.textContent = t("family.new_alert", { what: `${person ? person.name : ""} · ${alarmTitle(a)}` });
    el.hidden = false;
  }

  function render() {
    if (S.loggedOut) return;
    renderNotice();
    const persons = [...S.persons.values()].sort((a, b) => (a.person_id < b.person_id ? -1 : 1));
    const html = persons.map(personCard).join("");
    const host = $("persons");
    if (host._html !== html) {
      host.innerHTML = html;
      host._html = html;
    }
    renderConn();
  }

  async function onAck(ev) {
    const button = ev.target.closest("button[data-ack]");
    if (!button) return;
    ensureAudio();
    button.disabled = true;
    try {
      const row = await api(`/api/alarms/${encodeURIComponent(button.dataset.ack)}/ack`, { method: "POST" });
      applyAlarm(row);
      render();
      toast(t("family.on_way_sent", { who: S.me && S.me.display_name ? S.me.display_name : S.session.username }));
    } catch (err) {
      toast(t("error.generic", { detail: err.detail || String(err) }), true);
      button.disabled = false;
      const pid = button.closest("[data-person]").dataset.person;
      loadPerson(pid).catch(() => {});
    }
  }

  function start() {
    S.loggedOut = false;
    $("login-view").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    const saved = sessionStorage.getItem(LAST_EVENT_KEY);
    S.lastEventId = saved !== null && /^\d+$/.test(saved) ? Number(saved) : null;
    connect();
    S.timers.push(setInterval(() => loadAll().catch(() => {}), REFRESH_MS));
    S.timers.push(setInterval(() => {
      document.querySelectorAll("time.age").forEach((el) => { el.textContent = I18N.ago(el.dataset.ts); });
      renderConn();
    }, 1000));
  }

  function init() {
    I18N.apply(document);
    document.title = t("family.title");
    document.querySelectorAll(".lang-toggle").forEach((b) => b.addEventListener("click", () => I18N.setLang(I18N.lang === "zh" ? "en" : "zh")));
    I18N.onChange(() => { document.title = t("family.title"); $("persons")._html = null; render(); });
    $("login-form").addEventListener("submit", onLogin);
    $("logout").addEventListener("click", () => logout(""));
    $("persons").addEventListener("click", onAck);
    document.addEventListener("pointerdown", ensureAudio, { capture: true, once: true });
    window.addEventListener("online", () => { if (!S.loggedOut && !WS.sock) { WS.attempt = 0; connect(); } renderConn(); });
    window.addEventListener("offline", renderConn);
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (s && s.token && s.role === "family" && (!s.expiresAt || s.expiresAt > Date.now())) {
        S.session = s;
        start();
        return;
      }
    } catch (_e) { /* sign in */ }
    $("login-username").focus();
  }

  init();
})();
