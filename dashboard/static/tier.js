/* The three tiers' pages: the village doctor (/first-aid, phone-sized), the hospital's
 * pre-arrival board (/hospital) and the crew terminal (/crew, tablet). One script; the
 * page's <body data-role> says which board it draws, and the login must hold that role.
 *
 * The server decides what the user may see: GET /api/tier/incidents returns only the
 * incidents of the user's post, hospital or unit (and writes the access log). The tier
 * websocket only says that one of them changed; the page then re-reads its board.
 *
 * The crew terminal works on a flaky connection: a status button queues the change (kept in
 * localStorage, with the time it was pressed), the queue is sent in order as soon as the API
 * answers, and what the server has not yet acknowledged stays listed as pending. */
(function () {
  "use strict";

  I18N.extend({
    zh: {
      "tier.first_aid.title": "守望 · 村卫生室",
      "tier.hospital.title": "守望 · 医院急诊预警",
      "tier.crew.title": "守望 · 救护车组",
      "tier.login.first_aid": "村医登录：查看本卫生室的急救任务",
      "tier.login.hospital": "医院急诊登录：查看即将送达的病人",
      "tier.login.crew": "车组登录：查看本车的任务",
      "tier.wrong_role": "此账号（{role}）不能使用本页面。",
      "tier.none.first_aid": "目前没有需要本卫生室先行处置的事件。",
      "tier.none.hospital": "目前没有送往本院的病人。",
      "tier.none.crew": "目前没有任务。",
      "tier.person": "患者", "tier.address": "地址", "tier.fix": "位置", "tier.what": "情况",
      "tier.conditions": "病史", "tier.medications": "用药", "tier.ambulance_eta": "救护车预计 {m} 分钟到达",
      "tier.ambulance_eta.unknown": "救护车预计到达时间未知", "tier.priority": "优先级 {p}",
      "tier.accept": "接受，马上出发", "tier.decline": "无法前往", "tier.on_scene": "已到现场",
      "tier.note": "现场情况（简短）", "tier.note.send": "发送", "tier.note.placeholder": "神志清楚，呼吸正常，出血已控制",
      "tier.state.waiting": "等待村医回复（{s} 秒内）", "tier.state.accepted": "村医已接受", "tier.state.declined": "村医无法前往",
      "tier.state.no_answer": "村医未回复", "tier.state.on_scene": "村医已到现场",
      "tier.doctor_note": "村医记录：{note}",
      "tier.capacity.full": "本院已满（停止接收）", "tier.capacity.open": "本院可接收",
      "tier.capacity.set": "标记为无床位", "tier.capacity.clear": "恢复接收",
      "tier.eta_hospital": "预计 {m} 分钟到院", "tier.handed_over": "已于 {t} 交接",
      "tier.vitals": "手环体征", "tier.reports": "车组报告", "tier.unit": "车辆 {u}：{s}",
      "tier.status.en_route": "出发", "tier.status.on_scene": "到达现场", "tier.status.transporting": "转运中",
      "tier.status.at_hospital": "到达医院", "tier.status.returning": "返回", "tier.status.available": "可用",
      "tier.pending": "未确认的状态：{list}", "tier.pending.none": "所有状态均已确认",
      "tier.report": "病人报告", "tier.report.send": "发送报告", "tier.gcs": "GCS", "tier.avpu": "意识",
      "tier.suspected": "初步判断", "tier.hr": "心率", "tier.spo2": "血氧",
      "tier.eta_scene": "距现场约 {m} 分钟",
    },
    en: {
      "tier.first_aid.title": "Watchpost · First-aid post",
      "tier.hospital.title": "Watchpost · Emergency department",
      "tier.crew.title": "Watchpost · Crew terminal",
      "tier.login.first_aid": "Village doctor: your post's calls",
      "tier.login.hospital": "Emergency department: patients on their way",
      "tier.login.crew": "Crew: your unit's order",
      "tier.wrong_role": "This account ({role}) cannot use this page.",
      "tier.none.first_aid": "No call for your post right now.",
      "tier.none.hospital": "No patient on the way to this hospital.",
      "tier.none.crew": "No order right now.",
      "tier.person": "Patient", "tier.address": "Address", "tier.fix": "Location", "tier.what": "What happened",
      "tier.conditions": "Conditions", "tier.medications": "Medications", "tier.ambulance_eta": "Ambulance in about {m} min",
      "tier.ambulance_eta.unknown": "Ambulance ETA unknown", "tier.priority": "Priority {p}",
      "tier.accept": "Accept, on my way", "tier.decline": "Cannot go", "tier.on_scene": "On scene",
      "tier.note": "Short note", "tier.note.send": "Send", "tier.note.placeholder": "conscious, breathing, bleeding controlled",
      "tier.state.waiting": "Waiting for the doctor ({s} s left)", "tier.state.accepted": "Doctor accepted",
      "tier.state.declined": "Doctor declined", "tier.state.no_answer": "No answer from the doctor",
      "tier.state.on_scene": "Doctor on scene", "tier.doctor_note": "Doctor's note: {note}",
      "tier.capacity.full": "No capacity (diverting)", "tier.capacity.open": "Taking patients",
      "tier.capacity.set": "Flag no capacity", "tier.capacity.clear": "Taking patients again",
      "tier.eta_hospital": "Arrives in about {m} min", "tier.handed_over": "Handed over at {t}",
      "tier.vitals": "Wearable vitals", "tier.reports": "Crew reports", "tier.unit": "Unit {u}: {s}",
      "tier.status.en_route": "En route", "tier.status.on_scene": "On scene", "tier.status.transporting": "Transporting",
      "tier.status.at_hospital": "At hospital", "tier.status.returning": "Returning", "tier.status.available": "Available",
      "tier.pending": "Not yet acknowledged: {list}", "tier.pending.none": "Every status acknowledged",
      "tier.report": "Patient report", "tier.report.send": "Send report", "tier.gcs": "GCS", "tier.avpu": "Consciousness",
      "tier.suspected": "Suspected", "tier.hr": "Heart rate", "tier.spo2": "SpO2",
      "tier.eta_scene": "About {m} min to the scene",
    },
  });

  const t = I18N.t;
  const $ = (id) => document.getElementById(id);
  const ROLE = document.body.dataset.role; // first_aid | hospital | crew
  const SESSION_KEY = `watchpost.${ROLE}.session`;
  const QUEUE_KEY = `watchpost.${ROLE}.queue`;
  const CREW_STATUSES = ["en_route", "on_scene", "transporting", "at_hospital", "available"];
  const probe = (window.__wp = { boards: 0, events: 0, sent: 0 });

  const S = { session: null, board: null, loggedOut: true, queue: [], flushing: false, map: null, layers: null };

  function esc(v) {
    return String(v === null || v === undefined ? "" : v).replace(/&/g, "&amp;").replace(/</g, "&lt;")
      .replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  const minutes = (s) => Math.max(1, Math.round(s / 60));

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, options) {
    options = options || {};
    const headers = { Accept: "application/json" };
    if (S.session) headers.Authorization = `Bearer ${S.session.token}`;
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method: options.method || "GET", headers,
        body: options.json !== undefined ? JSON.stringify(options.json) : options.body });
    } catch (err) {
      throw new ApiError(0, String(err.message || err));
    }
    const text = await response.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch (_e) { data = { detail: text.slice(0, 200) }; } }
    if (!response.ok) {
      if (response.status === 401 && !options.login) logout();
      throw new ApiError(response.status, data && typeof data.detail === "string" ? data.detail : `HTTP ${response.status}`);
    }
    return data;
  }

  function toast(message, error) {
    const el = $("toast");
    el.textContent = message;
    el.className = `toast${error ? " toast-error" : ""}`;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 5000);
  }

  // --- session ------------------------------------------------------------------------------

  async function onLogin(ev) {
    ev.preventDefault();
    const error = $("login-error");
    error.hidden = true;
    try {
      const body = new URLSearchParams({ username: $("login-username").value.trim(), password: $("login-password").value });
      const tok = await api("/api/token", { method: "POST", body, login: true });
      if (tok.role !== ROLE) throw new ApiError(403, t("tier.wrong_role", { role: tok.role }));
      S.session = { token: tok.access_token, expiresAt: Date.now() + tok.expires_in * 1000 };
      try { sessionStorage.setItem(SESSION_KEY, JSON.stringify(S.session)); } catch (_e) { /* ignore */ }
      start();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  function logout() {
    S.loggedOut = true;
    S.session = null;
    try { sessionStorage.removeItem(SESSION_KEY); } catch (_e) { /* ignore */ }
    if (WS.sock) { try { WS.sock.close(1000); } catch (_e) { /* ignore */ } }
    $("app").hidden = true;
    $("login-view").hidden = false;
    $("logout").hidden = true;
  }

  function start() {
    S.loggedOut = false;
    $("login-view").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    connect();
    load();
    if (ROLE === "crew") flush();
  }

  // --- board --------------------------------------------------------------------------------

  async function load() {
    if (S.loggedOut) return;
    try {
      S.board = await api("/api/tier/incidents");
      probe.boards += 1;
      render();
    } catch (err) {
      if (err.status !== 401) toast(err.message, true);
    }
  }

  function scheduleLoad() {
    clearTimeout(scheduleLoad.timer);
    scheduleLoad.timer = setTimeout(load, 250); // a burst of events is one re-read
  }

  function render() {
    const board = S.board;
    const list = $("incidents");
    if (ROLE === "hospital") renderCapacity(board.facility);
    if (ROLE === "crew") renderUnit(board.unit);
    $("none").hidden = board.incidents.length > 0;
    // The board is redrawn on every update: keep what someone is typing (a note, a report)
    // and where the cursor is, so a refresh never eats a half-written message.
    const typed = [...list.querySelectorAll("form input, form textarea")]
      .filter((el) => el.value)
      .map((el) => ({ key: `${el.form.dataset.note || el.form.dataset.report}|${el.name}`, value: el.value, focused: el === document.activeElement }));
    list.innerHTML = board.incidents.map(card).join("");
    for (const { key, value, focused } of typed) {
      const [id, name] = key.split("|");
      const el = list.querySelector(`form[data-note="${CSS.escape(id)}"] [name="${CSS.escape(name)}"], form[data-report="${CSS.escape(id)}"] [name="${CSS.escape(name)}"]`);
      if (!el) continue;
      el.value = value;
      if (focused) el.focus();
    }
    list.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", onAction));
    list.querySelectorAll("form[data-note]").forEach((f) => f.addEventListener("submit", onNote));
    list.querySelectorAll("form[data-report]").forEach((f) => f.addEventListener("submit", onReport));
    if (ROLE === "crew") drawMap(board.incidents[0]);
  }

  function responseLine(r) {
    if (!r) return "";
    const left = Math.max(0, Math.round((Date.parse(r.answer_by) - Date.now()) / 1000));
    const state = r.on_scene_at && r.state === "accepted" ? "on_scene" : r.state;
    const note = r.note ? `<p class="note" data-note-text>${esc(t("tier.doctor_note", { note: r.note }))}</p>` : "";
    return `<p class="responder responder-${esc(state)}" data-responder="${esc(state)}">${esc(t(`tier.state.${state}`, { s: left }))}</p>${note}`;
  }

  function personBlock(p, inc) {
    if (!p) return `<p><b>${esc(t("tier.fix"))}</b> ${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}</p>`;
    const list = (xs) => (xs && xs.length ? xs.map(esc).join("、") : "—");
    return `<dl class="person">
      <dt>${esc(t("tier.person"))}</dt><dd data-person>${esc(p.name)}</dd>
      <dt>${esc(t("tier.address"))}</dt><dd>${esc(p.address || [p.town, p.village].filter(Boolean).join(" ") || "—")}</dd>
      <dt>${esc(t("tier.fix"))}</dt><dd><a href="geo:${inc.lat},${inc.lon}">${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}</a></dd>
      <dt>${esc(t("tier.conditions"))}</dt><dd data-conditions>${list(p.conditions)}</dd>
      <dt>${esc(t("tier.medications"))}</dt><dd data-medications>${list(p.medications)}</dd>
    </dl>`;
  }

  function card(inc) {
    const head = `<header><span class="prio prio-${inc.priority}">${esc(t("tier.priority", { p: inc.priority }))}</span>
      <b>${esc(inc.description || inc.kind)}</b> <small>${esc(I18N.clock(inc.created_at))}</small></header>`;
    if (ROLE === "first_aid") return firstAidCard(inc, head);
    if (ROLE === "hospital") return hospitalCard(inc, head);
    return crewCard(inc, head);
  }

  function firstAidCard(inc, head) {
    const r = inc.first_response || {};
    const eta = typeof inc.eta_to_scene_s === "number" ? t("tier.ambulance_eta", { m: minutes(inc.eta_to_scene_s) }) : t("tier.ambulance_eta.unknown");
    const open = !["closed", "cancelled"].includes(inc.state);
    const buttons = !open ? "" : r.state === "accepted"
      ? (r.on_scene_at ? "" : `<button class="primary big" data-act="on-scene" data-id="${esc(inc.incident_id)}">${esc(t("tier.on_scene"))}</button>`)
      : r.state === "declined" ? "" : `<button class="primary big" data-act="accept" data-id="${esc(inc.incident_id)}">${esc(t("tier.accept"))}</button>
         <button class="big" data-act="decline" data-id="${esc(inc.incident_id)}">${esc(t("tier.decline"))}</button>`;
    const note = open && r.state !== "declined" ? `<form data-note="${esc(inc.incident_id)}" class="note-form">
      <label>${esc(t("tier.note"))}<input name="text" maxlength="500" placeholder="${esc(t("tier.note.placeholder"))}"></label>
      <button type="submit">${esc(t("tier.note.send"))}</button></form>` : "";
    return `<article class="card incident" data-incident="${esc(inc.incident_id)}">${head}
      <p class="eta" data-eta>${esc(eta)}</p>${personBlock(inc.person, inc)}${responseLine(inc.first_response)}
      <div class="actions">${buttons}</div>${note}</article>`;
  }

  function vitalsBlock(inc) {
    const v = (inc.vitals || []).slice(0, 6).map((x) => `<li>${esc(I18N.clock(x.ts))}: ${x.hr_bpm ?? "—"} bpm, SpO2 ${x.spo2_pct ?? "—"} %</li>`).join("");
    const r = (inc.patient_reports || []).map((x) => `<li data-report-row>${esc(I18N.clock(x.ts))}: ${[
      x.hr_bpm != null ? `${x.hr_bpm} bpm` : "", x.spo2_pct != null ? `SpO2 ${x.spo2_pct} %` : "",
      x.sys_bp != null ? `BP ${x.sys_bp}/${x.dia_bp ?? "?"}` : "", x.gcs != null ? `GCS ${x.gcs}` : "",
      x.consciousness || "", x.suspected || "", x.note || ""].filter(Boolean).map(esc).join(" · ")}</li>`).join("");
    return `<div class="cols"><section><h4>${esc(t("tier.vitals"))}</h4><ul>${v || "<li>—</li>"}</ul></section>
      <section><h4>${esc(t("tier.reports"))}</h4><ul data-reports>${r || "<li>—</li>"}</ul></section></div>`;
  }

  function hospitalCard(inc, head) {
    const eta = inc.handed_over_at ? t("tier.handed_over", { t: I18N.clock(inc.handed_over_at) })
      : typeof inc.eta_to_hospital_s === "number" ? t("tier.eta_hospital", { m: minutes(inc.eta_to_hospital_s) }) : "";
    const status = inc.unit && inc.unit.status ? (I18N.has(`tier.status.${inc.unit.status}`) ? t(`tier.status.${inc.unit.status}`) : inc.unit.status) : "";
    const unit = inc.unit ? `<p>${esc(t("tier.unit", { u: inc.unit.unit_id, s: status }))}</p>` : "";
    return `<article class="card incident" data-incident="${esc(inc.incident_id)}">${head}
      <p class="eta" data-eta>${esc(eta)}</p>${unit}${personBlock(inc.person, inc)}${responseLine(inc.first_response)}${vitalsBlock(inc)}</article>`;
  }

  function crewCard(inc, head) {
    const eta = typeof inc.eta_to_scene_s === "number" ? t("tier.eta_scene", { m: minutes(inc.eta_to_scene_s) })
      : typeof inc.eta_to_hospital_s === "number" ? t("tier.eta_hospital", { m: minutes(inc.eta_to_hospital_s) }) : "";
    const hospital = inc.hospital ? `<p>🏥 ${esc(inc.hospital.name || inc.hospital.hospital_id)}</p>` : "";
    const report = `<form data-report="${esc(inc.incident_id)}" class="report-form"><h4>${esc(t("tier.report"))}</h4>
      <label>${esc(t("tier.hr"))}<input name="hr_bpm" type="number" min="0" max="300"></label>
      <label>${esc(t("tier.spo2"))}<input name="spo2_pct" type="number" min="0" max="100"></label>
      <label>${esc(t("tier.gcs"))}<input name="gcs" type="number" min="3" max="15"></label>
      <label>${esc(t("tier.avpu"))}<select name="consciousness"><option value=""></option><option>alert</option><option>voice</option><option>pain</option><option>unresponsive</option></select></label>
      <label>${esc(t("tier.suspected"))}<input name="suspected" maxlength="200"></label>
      <label>${esc(t("tier.note"))}<input name="note" maxlength="1000"></label>
      <button type="submit">${esc(t("tier.report.send"))}</button></form>`;
    return `<article class="card incident" data-incident="${esc(inc.incident_id)}">${head}
      <p class="eta" data-eta>${esc(eta)}</p>${hospital}${personBlock(inc.person, inc)}${responseLine(inc.first_response)}${report}</article>`;
  }

  function renderCapacity(f) {
    const el = $("capacity");
    el.hidden = false;
    el.dataset.full = f.no_capacity ? "1" : "0";
    el.innerHTML = `<span class="${f.no_capacity ? "full" : "open"}">${esc(t(f.no_capacity ? "tier.capacity.full" : "tier.capacity.open"))}</span>
      <button id="capacity-toggle">${esc(t(f.no_capacity ? "tier.capacity.clear" : "tier.capacity.set"))}</button>`;
    $("capacity-toggle").onclick = async () => {
      try {
        const r = await api("/api/tier/capacity", { method: "POST", json: { no_capacity: !f.no_capacity } });
        if (r.diverted.length) toast(r.diverted.map((d) => `${d.incident_id} → ${d.to_hospital || "?"}`).join(", "));
        load();
      } catch (err) { toast(err.message, true); }
    };
  }

  // --- the village doctor's answers -----------------------------------------------------------

  async function onAction(ev) {
    const b = ev.currentTarget;
    const id = b.dataset.id;
    const path = b.dataset.act === "on-scene" ? `/api/tier/incidents/${id}/on-scene` : `/api/tier/incidents/${id}/answer`;
    const json = b.dataset.act === "on-scene" ? undefined : { answer: b.dataset.act === "accept" ? "accepted" : "declined" };
    b.disabled = true;
    try { await api(path, { method: "POST", json }); load(); } catch (err) { toast(err.message, true); b.disabled = false; }
  }

  async function onNote(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const text = form.elements.text.value.trim();
    if (!text) return;
    try {
      await api(`/api/tier/incidents/${form.dataset.note}/note`, { method: "POST", json: { text } });
      form.elements.text.value = "";
      load();
    } catch (err) { toast(err.message, true); }
  }

  // --- the crew: statuses queued until acknowledged ---------------------------------------------

  function loadQueue() {
    try { S.queue = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch (_e) { S.queue = []; }
  }
  function saveQueue() {
    try { localStorage.setItem(QUEUE_KEY, JSON.stringify(S.queue)); } catch (_e) { /* memory only */ }
    renderPending();
  }

  function renderUnit(unit) {
    const el = $("unit-status");
    el.hidden = false;
    el.innerHTML = `<p data-unit-status="${esc(unit.status)}">${esc(t("tier.unit", { u: unit.unit_id, s: t(`tier.status.${unit.status}`) }))}</p>
      <div class="status-buttons">${CREW_STATUSES.map((s) => `<button class="big" data-status="${s}">${esc(t(`tier.status.${s}`))}</button>`).join("")}</div>`;
    el.querySelectorAll("[data-status]").forEach((b) => b.addEventListener("click", () => enqueue(b.dataset.status)));
    renderPending();
  }

  function renderPending() {
    const el = $("pending");
    if (!el) return;
    el.hidden = ROLE !== "crew";
    el.dataset.count = String(S.queue.length);
    el.textContent = S.queue.length ? t("tier.pending", { list: S.queue.map((q) => t(`tier.status.${q.status}`)).join(" → ") }) : t("tier.pending.none");
    el.className = S.queue.length ? "pending pending-some" : "pending";
  }

  function enqueue(status) {
    const current = S.board && S.board.incidents[0];
    S.queue.push({ status, ts: new Date().toISOString(), incident_id: current ? current.incident_id : null });
    saveQueue();
    flush();
  }

  async function flush() {
    if (S.flushing || S.loggedOut) return;
    S.flushing = true;
    try {
      while (S.queue.length) {
        const next = S.queue[0];
        try {
          await api("/api/tier/status", { method: "POST", json: next.incident_id ? next : { status: next.status, ts: next.ts } });
        } catch (err) {
          if (err.status === 0 || err.status >= 500 || err.status === 429) { // the network or the server: try again later
            clearTimeout(flush.timer);
            flush.timer = setTimeout(flush, 3000);
            return;
          }
          toast(err.message, true); // refused for good: drop it, say so
        }
        probe.sent += 1;
        S.queue.shift();
        saveQueue();
      }
    } finally {
      S.flushing = false;
    }
  }

  async function onReport(ev) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const json = { ts: new Date().toISOString(), incident_id: form.dataset.report };
    ["hr_bpm", "spo2_pct", "gcs"].forEach((k) => { if (form.elements[k].value !== "") json[k] = Number(form.elements[k].value); });
    ["consciousness", "suspected", "note"].forEach((k) => { if (form.elements[k].value) json[k] = form.elements[k].value; });
    try { await api("/api/tier/patient", { method: "POST", json }); form.reset(); toast(t("tier.report.send")); } catch (err) { toast(err.message, true); }
  }

  function drawMap(inc) {
    const el = $("map");
    if (!el || typeof L === "undefined") return;
    if (!S.map) {
      // The region's opening view (GET /api/region) until the incident's points frame it.
      S.map = L.map(el, { zoomControl: true }).setView([inc ? inc.lat : 35.0, inc ? inc.lon : 105.0], 11);
      I18N.region.then((region) => {
        if (region && region.map && !S.framed) S.map.setView([region.map.centre.lat, region.map.centre.lon], region.map.zoom);
      });
      S.layers = L.layerGroup().addTo(S.map);
    }
    S.layers.clearLayers();
    if (!inc) return;
    const scene = L.circleMarker([inc.lat, inc.lon], { radius: 9, color: "#b91c1c", fillOpacity: 0.8 }).addTo(S.layers);
    const points = [scene.getLatLng()];
    if (inc.route && inc.route.length > 1) {
      const line = L.polyline(inc.route, { color: "#1d4ed8", weight: 5, opacity: 0.8 }).addTo(S.layers);
      line.getElement && line.getElement() && line.getElement().setAttribute("data-route", String(inc.route.length));
      points.push(...inc.route);
    }
    if (inc.unit_position) L.circleMarker([inc.unit_position.lat, inc.unit_position.lon], { radius: 7, color: "#047857" }).addTo(S.layers);
    if (inc.hospital && inc.hospital.lat) L.marker([inc.hospital.lat, inc.hospital.lon]).addTo(S.layers);
    el.dataset.route = inc.route ? String(inc.route.length) : "0";
    S.map.fitBounds(L.latLngBounds(points).pad(0.2));
    S.framed = true;
  }

  // --- websocket ----------------------------------------------------------------------------

  const WS = { sock: null, attempt: 0, timer: null };

  function connect() {
    clearTimeout(WS.timer);
    if (S.loggedOut) return;
    setConn("connecting");
    const sock = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/tier`, ["watchpost", S.session.token]);
    WS.sock = sock;
    sock.onopen = () => { WS.attempt = 0; setConn("connected"); load(); if (ROLE === "crew") flush(); };
    sock.onmessage = () => { probe.events += 1; scheduleLoad(); };
    sock.onclose = (e) => {
      if (WS.sock !== sock) return;
      WS.sock = null;
      if (S.loggedOut) return;
      if (e.code === 1008) { logout(); return; }
      WS.attempt += 1;
      setConn("reconnecting");
      WS.timer = setTimeout(connect, Math.min(30000, 500 * Math.pow(2, WS.attempt - 1)) * (0.8 + Math.random() * 0.4));
    };
  }

  function setConn(state) {
    $("conn").className = `conn conn-${state}`;
    $("conn").dataset.state = state;
    $("conn-text").textContent = t(`conn.${state === "reconnecting" ? "reconnecting_now" : state}`, { n: WS.attempt });
  }

  // --- start --------------------------------------------------------------------------------

  document.title = t(`tier.${ROLE}.title`);
  I18N.apply(document);
  I18N.onChange(() => { document.title = t(`tier.${ROLE}.title`); });
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", logout);
  document.querySelector(".lang-toggle").addEventListener("click", () => { I18N.setLang(I18N.lang === "zh" ? "en" : "zh"); if (S.board) render(); });
  window.addEventListener("online", () => { if (ROLE === "crew") flush(); });
  setInterval(() => { if (!S.loggedOut) load(); }, 30000); // a missed event is at most this late
  loadQueue();
  try { S.session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null"); } catch (_e) { S.session = null; }
  if (S.session && S.session.expiresAt > Date.now()) start();
})();
