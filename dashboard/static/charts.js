/* Trend charts (uPlot, from vendor/uplot): a station's parameter with GB 3838 class bands,
 * its target-class limit, exceedance episodes and flagged buckets; a person's heart rate and
 * SpO2 with thresholds and alarms, plus the home day strip; and the service dashboard.
 *
 * The pages call WPCharts.openStation(id, name) / openPerson(id) / openService() (console) or
 * WPCharts.family(hostEl, personIds) (family page). Data comes from /api/.../trend and
 * /api/service with the page's own session token. Drawn charts are kept in
 * window.__wpCharts (tests read their data there).
 */
(function () {
  "use strict";

  const charts = (window.__wpCharts = {});
  const zh = () => (document.documentElement.lang || "zh").startsWith("zh");
  const L = (cn, en) => (zh() ? cn : en);
  const esc = (v) => String(v === null || v === undefined ? "" : v)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const sec = (iso) => Date.parse(iso) / 1000;
  const CLASSES = ["I", "II", "III", "IV", "V"];
  const BAND = { I: "rgba(37,99,235,0.10)", II: "rgba(14,165,233,0.10)", III: "rgba(22,163,74,0.10)",
    IV: "rgba(234,179,8,0.14)", V: "rgba(249,115,22,0.14)", "劣V": "rgba(220,38,38,0.14)" };
  const PARAMS = ["nh3n_mg_l", "do_mg_l", "codmn_mg_l", "cod_mg_l", "tp_mg_l", "tn_mg_l", "ph", "temp_c", "turbidity_ntu", "cond_us_cm"];
  // Lakes' chlorophyll-a and transparency (SD) come in the station's own uploads only.
  const UPLOAD_PARAMS = ["chla_ug_l", "sd_m"];

  function token() {
    for (const key of ["watchpost.console.session", "watchpost.family.session"]) {
      try { const s = JSON.parse(sessionStorage.getItem(key) || "null"); if (s && s.token) return s.token; } catch (_e) { /* ignore */ }
    }
    return null;
  }

  async function get(path) {
    const r = await fetch(path, { headers: { Accept: "application/json", Authorization: `Bearer ${token()}` } });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || `HTTP ${r.status}`);
    return data;
  }

  // --- the panel (console) --------------------------------------------------------------

  function panel() {
    let el = document.getElementById("chart-panel");
    if (!el) {
      el = document.createElement("section");
      el.id = "chart-panel";
      el.className = "chart-panel";
      el.innerHTML = `<header><h2 id="chart-title"></h2><span class="spacer"></span>`
        + `<button type="button" class="chip" id="chart-service">${esc(L("服务指标", "Service"))}</button>`
        + `<button type="button" class="chip" id="chart-close" aria-label="close">×</button></header>`
        + `<div id="chart-controls" class="chart-controls"></div><div id="chart-body" class="chart-body"></div>`;
      document.body.appendChild(el);
      el.querySelector("#chart-close").addEventListener("click", close);
      el.querySelector("#chart-service").addEventListener("click", () => openService());
    }
    el.hidden = false;
    return el;
  }

  function close() {
    const el = document.getElementById("chart-panel");
    if (el) el.hidden = true;
    destroy();
  }

  function destroy(prefix) {
    for (const k of Object.keys(charts)) {
      if (prefix && !k.startsWith(prefix)) continue;
      if (charts[k] && charts[k].destroy) charts[k].destroy();
      delete charts[k];
    }
  }

  function rangeButtons(ranges, current, onPick) {
    return `<span class="seg" role="group">${ranges.map((r) => `<button type="button" data-range="${r}" class="${r === current ? "on" : ""}">${r}</button>`).join("")}</span>`;
  }

  function width(host) {
    return Math.max(320, Math.floor((host.clientWidth || 640) - 8));
  }

  // --- drawing helpers --------------------------------------------------------------------

  function rect(u, x0, x1, y0, y1, fill) {
    const { left, top, width: w, height: h } = u.bbox;
    const px0 = x0 === null ? left : Math.max(left, u.valToPos(x0, "x", true));
    const px1 = x1 === null ? left + w : Math.min(left + w, u.valToPos(x1, "x", true));
    const py0 = y1 === null ? top : Math.max(top, u.valToPos(y1, "y", true));
    const py1 = y0 === null ? top + h : Math.min(top + h, u.valToPos(y0, "y", true));
    if (px1 <= px0 || py1 <= py0) return;
    u.ctx.fillStyle = fill;
    u.ctx.fillRect(px0, py0, px1 - px0, py1 - py0);
  }

  function hline(u, y, colour, dash, label) {
    if (y === null || y === undefined) return;
    const { left, width: w } = u.bbox;
    const py = u.valToPos(y, "y", true);
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colour; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash(dash || []);
    ctx.beginPath(); ctx.moveTo(left, py); ctx.lineTo(left + w, py); ctx.stroke();
    if (label) { ctx.fillStyle = colour; ctx.font = `${11 * devicePixelRatio}px sans-serif`; ctx.fillText(label, left + 4, py - 4); }
    ctx.restore();
  }

  /** The class bands of a parameter as [class, low, high] (null: open end). */
  function classBands(limits) {
    const c = limits.classes || {};
    if (limits.kind === "ceiling") {
      const out = []; let low = null;
      CLASSES.forEach((k) => { out.push([k, low, c[k]]); low = c[k]; });
      out.push(["劣V", low, null]);
      return out;
    }
    if (limits.kind === "floor") {
      const out = []; let high = null;
      CLASSES.forEach((k) => { out.push([k, c[k], high]); high = c[k]; });
      out.push(["劣V", null, high]);
      return out;
    }
    if (limits.kind === "range") {
      const [lo, hi] = c.I || [6, 9];
      return [["劣V", null, lo], ["III", lo, hi], ["劣V", hi, null]];
    }
    return [];
  }

  // --- station ------------------------------------------------------------------------------

  // series: "realtime" (Watchpost's rollup of real-time readings) or "hour" (the station's own
  // hourly uploads, where the wet-chemistry parameters come from).
  const stationView = { id: null, name: "", param: "nh3n_mg_l", range: "24h", series: "realtime" };

  async function openStation(id, name) {
    Object.assign(stationView, { id, name: name || id });
    const el = panel();
    el.dataset.view = "station";
    el.querySelector("#chart-title").textContent = `${stationView.name} · ${id}`;
    const controls = el.querySelector("#chart-controls");
    const seriesOptions = [["realtime", L("实时数据", "real-time")], ["hour", L("站点小时数据", "station hourly")]];
    const params = stationView.series === "hour" ? PARAMS.concat(UPLOAD_PARAMS) : PARAMS;
    if (!params.includes(stationView.param)) stationView.param = PARAMS[0];
    controls.innerHTML = `<select id="chart-param">${params.map((p) => `<option value="${p}"${p === stationView.param ? " selected" : ""}>${p}</option>`).join("")}</select>`
      + `<select id="chart-series">${seriesOptions.map(([v, label]) => `<option value="${v}"${v === stationView.series ? " selected" : ""}>${esc(label)}</option>`).join("")}</select>`
      + rangeButtons(["24h", "7d", "30d"], stationView.range);
    controls.querySelector("#chart-param").addEventListener("change", (e) => { stationView.param = e.target.value; drawStation(); });
    controls.querySelector("#chart-series").addEventListener("change", (e) => { stationView.series = e.target.value; openStation(stationView.id, stationView.name); });
    controls.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => {
      stationView.range = b.dataset.range;
      controls.querySelectorAll("[data-range]").forEach((x) => x.classList.toggle("on", x === b));
      drawStation();
    }));
    await drawStation();
  }

  async function drawStation() {
    const body = document.getElementById("chart-body");
    let doc;
    try {
      doc = await get(`/api/stations/${encodeURIComponent(stationView.id)}/trend?param=${stationView.param}&range=${stationView.range}&series=${stationView.series}`);
    } catch (err) { body.innerHTML = `<p class="chart-error">${esc(err.message)}</p>`; return; }
    destroy("station");
    body.innerHTML = `<div id="chart-station"></div><p class="chart-legend">${esc(L("色带：GB 3838 水质类别；虚线：目标类别限值", "Bands: GB 3838 classes; dashed: target class limit"))}`
      + ` <span class="lg ep"></span>${esc(L("超标时段", "exceedance"))} <span class="lg fl"></span>${esc(L("含标记数据", "flagged data"))}`
      + (stationView.series === "hour" ? ` ▲ ${esc(L("超量程（T，至少该值）", "over range (T, at least this value)"))}` : "") + "</p>";
    stationChart(document.getElementById("chart-station"), doc);
    body.insertAdjacentHTML("beforeend", `<section id="station-classes"></section>`);
    await drawClasses();
  }

  // --- a station's class per day and per month (the 2011 evaluation method) -------------------

  // Days and months are China Standard Time's, as the county's bulletins count them.
  const CST_MS = 8 * 3600e3;
  const CLASS_ORDER = ["I", "II", "III", "IV", "V", "劣V"];
  const classView = { period: "day" };

  function cstStart(period, offset) {
    const d = new Date(Date.now() + CST_MS);
    d.setUTCHours(0, 0, 0, 0);
    if (period === "month") { d.setUTCDate(1); d.setUTCMonth(d.getUTCMonth() + offset); } else d.setUTCDate(d.getUTCDate() + offset);
    return `${d.toISOString().slice(0, 10)}T00:00:00+08:00`;
  }

  function cstLabel(iso, period) {
    return new Date(Date.parse(iso) + CST_MS).toISOString().slice(0, period === "month" ? 7 : 10);
  }

  function paramName(p) {
    return window.I18N && window.I18N.has(`param.${p}`) ? window.I18N.t(`param.${p}`) : p;
  }

  async function drawClasses() {
    const host = document.getElementById("station-classes");
    if (!host) return;
    const period = classView.period;
    // The last 14 days, or the last 12 months, up to the end of today / this month.
    const from = period === "month" ? cstStart("month", -11) : cstStart("day", -13);
    const to = period === "month" ? cstStart("month", 1) : cstStart("day", 1);
    let doc;
    try {
      doc = await get(`/api/stations/${encodeURIComponent(stationView.id)}/grade?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&period=${period}`);
    } catch (err) { host.innerHTML = `<p class="chart-error">${esc(err.message)}</p>`; return; }
    const target = CLASS_ORDER.indexOf(doc.target_class);
    const lake = doc.water_body === "lake";
    const rows = doc.periods.slice().reverse().map((p) => {
      const label = cstLabel(p.start, period);
      const worse = p.class !== null && CLASS_ORDER.indexOf(p.class) > target;
      const cls = p.class === null ? "—" : `${p.at_least ? "≥ " : ""}${p.class}`;
      const leftOut = Object.entries(p.left_out).map(([k, why]) => `${paramName(k)} (${why})`).join(", ");
      return `<tr data-period="${esc(label)}" class="${worse ? "worse" : ""}"><td>${esc(label)}</td><td class="cls">${esc(cls)}</td>`
        + `<td>${esc(p.worst_parameter ? paramName(p.worst_parameter) : "—")}</td>`
        + `<td class="covers">${esc(p.covers.map(paramName).join(", ") || "—")}</td><td>${esc(leftOut || "—")}</td><td>${p.hours}</td>`
        + (lake ? `<td>${esc(p.tn_class || "—")}</td><td>${p.tli === null ? "—" : esc(`${p.tli} ${p.trophic_state}`)}</td>` : "") + "</tr>";
    });
    host.innerHTML = `<div class="chart-controls"><h3 class="chart-h">${esc(L("水质类别（2011 评价办法，站点小时数据均值）", "Water class (2011 method, mean of the station's hourly uploads)"))}</h3>`
      + `<span class="seg" role="group"><button type="button" data-class-period="day" class="${period === "day" ? "on" : ""}">${esc(L("日", "daily"))}</button>`
      + `<button type="button" data-class-period="month" class="${period === "month" ? "on" : ""}">${esc(L("月", "monthly"))}</button></span>`
      + `<span>${esc(L("目标", "target"))} ${esc(doc.target_class)}</span></div>`
      + `<table class="chart-table class-table" data-period="${period}"><thead><tr><th>${esc(period === "month" ? L("月份", "month") : L("日期", "day"))}</th>`
      + `<th>${esc(L("类别", "class"))}</th><th>${esc(L("定类指标", "worst"))}</th><th>${esc(L("评价指标", "graded from"))}</th>`
      + `<th>${esc(L("未计入", "left out"))}</th><th>${esc(L("小时数", "hours"))}</th>`
      + (lake ? `<th>${esc(L("总氮（单独评价）", "TN (apart)"))}</th><th>TLI</th>` : "") + "</tr></thead>"
      + `<tbody>${rows.join("") || `<tr><td colspan="8">${esc(L("无小时数据", "no hourly uploads"))}</td></tr>`}</tbody></table>`;
    host.querySelectorAll("[data-class-period]").forEach((b) => b.addEventListener("click", () => {
      classView.period = b.dataset.classPeriod;
      drawClasses();
    }));
  }

  function stationChart(host, doc) {
    const xs = doc.points.map((p) => sec(p.t));
    const avg = doc.points.map((p) => p.avg);
    const mn = doc.points.map((p) => p.min);
    const mx = doc.points.map((p) => p.max);
    const flagged = doc.points.map((p) => (p.flagged > 0 ? p.flagged : null));
    // An over-range (T) value is a lower bound: marked on the average where it counts.
    const overRange = doc.points.map((p) => (p.over_range > 0 ? p.avg : null));
    const bands = classBands(doc.limits);
    const episodes = doc.episodes.map((e) => [sec(e.first_seen), e.cleared_at ? sec(e.cleared_at) : sec(doc.to)]);
    const values = [...mn, ...mx].filter((v) => v !== null);
    const limitTop = doc.target_limit === null ? null : (Array.isArray(doc.target_limit) ? doc.target_limit[1] : doc.target_limit);
    const hiV = Math.max(values.length ? Math.max(...values) : 1, limitTop === null ? 0 : limitTop * 1.3);
    const loV = Math.min(values.length ? Math.min(...values) : 0, doc.limits.kind === "range" ? 5.5 : 0);
    const u = new uPlot({
      width: width(host), height: 300,
      scales: { x: { time: true }, y: { range: [loV, hiV * 1.05] }, flag: { range: [0, Math.max(1, ...flagged.filter(Boolean)) * 4] } },
      series: [
        {},
        { label: L("平均", "avg"), stroke: "#1f2937", width: 2, spanGaps: false },
        { label: L("最小", "min"), stroke: "rgba(31,41,55,0.35)", width: 1 },
        { label: L("最大", "max"), stroke: "rgba(31,41,55,0.35)", width: 1 },
        { label: L("标记数", "flagged"), scale: "flag", stroke: "#c2410c", width: 0, paths: () => null,
          points: { show: true, size: 8, fill: "#f97316", stroke: "#c2410c" } },
        { label: L("超量程", "over range"), stroke: "#7c2d12", width: 0, paths: () => null,
          points: { show: true, size: 10, fill: "#dc2626", stroke: "#7c2d12" } },
      ],
      bands: [{ series: [3, 2], fill: "rgba(31,41,55,0.08)" }],
      axes: [{}, { label: doc.param }, { show: false, scale: "flag" }],
      hooks: {
        drawClear: [(uu) => {
          bands.forEach(([cls, lo, hi]) => rect(uu, null, null, lo, hi, BAND[cls]));
          episodes.forEach(([a, b]) => rect(uu, a, b, null, null, "rgba(220,38,38,0.16)"));
        }],
        draw: [(uu) => {
          const tl = doc.target_limit;
          if (Array.isArray(tl)) { hline(uu, tl[0], "#b91c1c", [6, 4]); hline(uu, tl[1], "#b91c1c", [6, 4], `${L("目标", "target")} ${doc.target_class}`); }
          else hline(uu, tl, "#b91c1c", [6, 4], `${L("目标", "target")} ${doc.target_class}`);
        }],
      },
    }, [xs, avg, mn, mx, flagged, overRange], host);
    u.wp = { kind: "station", series: doc.series, bands, episodes, target_limit: doc.target_limit, limits: doc.limits, param: doc.param, range: doc.range };
    charts.station = u;
    return u;
  }

  // --- person ---------------------------------------------------------------------------------

  const personView = { id: null, range: "24h" };

  async function openPerson(id) {
    personView.id = id;
    const el = panel();
    el.dataset.view = "person";
    el.querySelector("#chart-title").textContent = `${L("老人", "Person")} ${id}`;
    const controls = el.querySelector("#chart-controls");
    controls.innerHTML = rangeButtons(["24h", "7d"], personView.range);
    controls.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => {
      personView.range = b.dataset.range;
      controls.querySelectorAll("[data-range]").forEach((x) => x.classList.toggle("on", x === b));
      personCharts(document.getElementById("chart-body"), id, personView.range, "person");
    }));
    await personCharts(el.querySelector("#chart-body"), id, personView.range, "person");
  }

  async function personCharts(host, id, range, key) {
    let doc;
    try { doc = await get(`/api/persons/${encodeURIComponent(id)}/trend?range=${range}`); } catch (err) {
      host.innerHTML = `<p class="chart-error">${esc(err.message)}</p>`; return null;
    }
    destroy(key);
    host.innerHTML = `<h3 class="chart-h">${esc(doc.person.name)} · ${esc(L("心率", "Heart rate"))} (bpm)</h3><div class="c-hr"></div>`
      + `<h3 class="chart-h">${esc(L("血氧", "SpO2"))} (%)</h3><div class="c-spo2"></div>`
      + `<h3 class="chart-h">${esc(L("居家活动（近24小时，每10分钟）", "Home activity (last 24 h, per 10 min)"))}</h3><div class="home-strip"></div>`;
    const xs = doc.points.map((p) => sec(p.t));
    const th = doc.thresholds;
    const alarms = doc.alarms.map((a) => ({ t: sec(a.first_seen), type: a.alarm_type, severity: a.severity }));
    const markAlarms = (uu) => {
      const ctx = uu.ctx; const { top, height: h } = uu.bbox;
      alarms.forEach((a) => {
        const px = uu.valToPos(a.t, "x", true);
        ctx.save(); ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 2 * devicePixelRatio; ctx.beginPath();
        ctx.moveTo(px, top); ctx.lineTo(px, top + h); ctx.stroke();
        ctx.fillStyle = "#dc2626"; ctx.font = `${11 * devicePixelRatio}px sans-serif`; ctx.fillText(a.type, px + 3, top + 12 * devicePixelRatio);
        ctx.restore();
      });
    };
    const mk = (el, field, lines, range_) => new uPlot({
      width: width(host), height: 200,
      scales: { x: { time: true }, y: { range: range_ } },
      series: [{},
        { label: L("平均", "avg"), stroke: field === "hr" ? "#be123c" : "#1d4ed8", width: 2 },
        { label: L("最小", "min"), stroke: "rgba(0,0,0,0.25)", width: 1 },
        { label: L("最大", "max"), stroke: "rgba(0,0,0,0.25)", width: 1 }],
      bands: [{ series: [3, 2], fill: "rgba(0,0,0,0.06)" }],
      hooks: { draw: [(uu) => { lines.forEach(([v, lab]) => hline(uu, v, "#b45309", [6, 4], lab)); markAlarms(uu); }] },
    }, [xs, doc.points.map((p) => p[`${field}_avg`]), doc.points.map((p) => p[`${field}_min`]), doc.points.map((p) => p[`${field}_max`])], el);
    const hr = mk(host.querySelector(".c-hr"), "hr", [[th.hr_low_bpm, `< ${th.hr_low_bpm}`], [th.hr_high_bpm, `> ${th.hr_high_bpm}`]], (_u, lo, hi) => [Math.min(30, lo ?? 30), Math.max(th.hr_high_bpm + 20, hi ?? 0)]);
    const spo2 = mk(host.querySelector(".c-spo2"), "spo2", [[th.spo2_low_pct, `< ${th.spo2_low_pct}`]], (_u, lo) => [Math.min(th.spo2_low_pct - 5, lo ?? 100), 100]);
    hr.wp = spo2.wp = { kind: "person", thresholds: th, alarms, range: doc.range };
    charts[`${key}.hr`] = hr;
    charts[`${key}.spo2`] = spo2;
    const strip = host.querySelector(".home-strip");
    strip.innerHTML = doc.home_strip.points.map((p) => {
      const n = p.motion + p.door + p.bed;
      const level = n === 0 ? 0 : n < 2 ? 1 : n < 4 ? 2 : 3;
      const when = new Date(p.t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      return `<span class="cell l${level}${p.door ? " door" : ""}${p.bed ? " bed" : ""}" title="${esc(when)} · motion ${p.motion} · door ${p.door} · bed ${p.bed}"></span>`;
    }).join("");
    charts[`${key}.strip`] = { data: doc.home_strip.points, destroy() {} };
    return doc;
  }

  // --- service ---------------------------------------------------------------------------------

  async function openService(hours) {
    const el = panel();
    el.dataset.view = "service";
    el.querySelector("#chart-title").textContent = L("服务指标", "Service dashboard");
    const controls = el.querySelector("#chart-controls");
    const span = hours || 24;
    controls.innerHTML = rangeButtons(["24h", "7d", "30d"], span === 24 ? "24h" : span === 168 ? "7d" : "30d");
    controls.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => openService({ "24h": 24, "7d": 168, "30d": 720 }[b.dataset.range])));
    const to = new Date(); const from = new Date(to.getTime() - span * 3600e3);
    const body = el.querySelector("#chart-body");
    let doc;
    try { doc = await get(`/api/service?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`); } catch (err) {
      body.innerHTML = `<p class="chart-error">${esc(err.message)}</p>`; return;
    }
    destroy("service");
    const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)} %`);
    const s = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} s`);
    const table = (title, groups, target) => `<table class="chart-table"><caption>${esc(title)}</caption><tr><th></th><th>n</th><th>p50</th><th>p90</th><th>p95</th><th>≤ ${target} s</th></tr>`
      + Object.entries(groups).map(([k, d]) => `<tr><th>${esc(k)}</th><td>${d.count}</td><td>${s(d.p50_s)}</td><td>${s(d.p90_s)}</td><td>${s(d.p95_s)}</td><td>${pct(d.within_target)}</td></tr>`).join("") + "</table>";
    const T = doc.targets;
    const ds = doc.dispatch; const rs = doc.response;
    const units = Object.entries(doc.availability.units);
    const comp = doc.completeness.stations.filter((c) => c.share !== null && c.share < 0.95);
    body.innerHTML = `<div class="svc-kpis">`
      + `<div><b>${pct(ds.all.within_target)}</b><span>${esc(L("3分钟内派车", "dispatched ≤ 3 min"))} (${esc(L("目标", "target"))} 95 %)</span></div>`
      + `<div><b>${pct(rs.all.within_target)}</b><span>${esc(L("8分钟内到达", "on scene ≤ 480 s"))} (${esc(L("目标", "target"))} 90 %)</span></div>`
      + `<div><b>${s(rs.p1_mean_s)}</b><span>${esc(L("一级平均到达", "P1 mean response"))} (${esc(L("目标", "target"))} 420 s)</span></div></div>`
      + `<h3 class="chart-h">${esc(L("派车时间分布", "Dispatch time"))}</h3><div class="c-dispatch"></div>`
      + `<h3 class="chart-h">${esc(L("到达时间分布", "Response time"))}</h3><div class="c-response"></div>`
      + table(L("派车 · 按优先级", "Dispatch by priority"), ds.by_priority, T.dispatch.seconds)
      + table(L("到达 · 按镇", "Response by town"), rs.by_town, T.response.seconds)
      + `<h3 class="chart-h">${esc(L("可用车辆比例（每小时）", "Units available (hourly share)"))}</h3><div class="c-avail"></div>`
      + `<table class="chart-table"><caption>${esc(L("车辆状态时间占比", "Unit time per status"))}</caption>`
      + units.map(([u, st]) => `<tr><th>${esc(u)}</th><td>${Object.entries(st).map(([k, v]) => `${esc(k)} ${pct(v)}`).join(" · ")}</td></tr>`).join("") + "</table>"
      + `<p class="muted">${esc(L("数据完整率低于95%的站点", "Stations under 95 % data completeness"))}: ${comp.map((c) => `${esc(c.id)} ${pct(c.share)}`).join(", ") || "–"}</p>`;
    const bars = (el, dist, target, key) => {
      const h = dist.histogram;
      const xs = h.map((_b, i) => i);
      const u = new uPlot({
        width: width(body), height: 160,
        scales: { x: { time: false, range: [-0.6, h.length - 0.4] }, y: { range: (_u, _lo, hi) => [0, Math.max(1, hi)] } },
        axes: [{ values: (_u, ticks) => ticks.map((i) => (h[i] ? `${h[i].from_s}${h[i].to_s === null ? "+" : ""}` : "")) }, {}],
        series: [{}, { label: "n", fill: "rgba(29,78,216,0.5)", stroke: "#1d4ed8", paths: uPlot.paths.bars({ size: [0.8] }), points: { show: false } }],
        hooks: { draw: [(uu) => {
          const idx = h.findIndex((b) => b.from_s >= target);
          if (idx < 0) return;
          const px = uu.valToPos(idx - 0.5, "x", true);
          const ctx = uu.ctx; ctx.save(); ctx.strokeStyle = "#b91c1c"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath(); ctx.moveTo(px, uu.bbox.top); ctx.lineTo(px, uu.bbox.top + uu.bbox.height); ctx.stroke(); ctx.restore();
        }] },
      }, [xs, h.map((b) => b.count)], el);
      u.wp = { kind: "histogram", target, histogram: h };
      charts[key] = u;
    };
    bars(body.querySelector(".c-dispatch"), ds.all, T.dispatch.seconds, "service.dispatch");
    bars(body.querySelector(".c-response"), rs.all, T.response.seconds, "service.response");
    const fl = doc.availability.fleet_hourly;
    charts["service.avail"] = new uPlot({
      width: width(body), height: 140, scales: { x: { time: true }, y: { range: [0, 1] } },
      series: [{}, { label: L("可用", "available"), stroke: "#15803d", fill: "rgba(21,128,61,0.12)", width: 2 }],
    }, [fl.map((p) => sec(p.t)), fl.map((p) => p.available_share)], body.querySelector(".c-avail"));
  }

  // --- family page -------------------------------------------------------------------------------

  async function family(host, ids) {
    if (!host) return;
    const known = new Set(ids);
    host.querySelectorAll("[data-trend-person]").forEach((el) => { if (!known.has(el.dataset.trendPerson)) el.remove(); });
    for (const id of ids) {
      let card = host.querySelector(`[data-trend-person="${CSS.escape(id)}"]`);
      if (!card) {
        card = document.createElement("section");
        card.className = "card trend-card";
        card.dataset.trendPerson = id;
        card.dataset.range = "24h";
        card.innerHTML = `<div class="trend-head"><h2>${esc(L("近期趋势", "Trends"))}</h2>${rangeButtons(["24h", "7d"], "24h")}</div><div class="trend-body"></div>`;
        card.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => {
          card.dataset.range = b.dataset.range;
          card.querySelectorAll("[data-range]").forEach((x) => x.classList.toggle("on", x === b));
          personCharts(card.querySelector(".trend-body"), id, card.dataset.range, `family.${id}`);
        }));
        host.appendChild(card);
        await personCharts(card.querySelector(".trend-body"), id, "24h", `family.${id}`);
      }
    }
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("[data-chart-person], [data-chart-station], #open-service");
    if (!b) return;
    if (b.id === "open-service") openService();
    else if (b.dataset.chartPerson) openPerson(b.dataset.chartPerson);
    else openStation(b.dataset.chartStation);
  });

  window.WPCharts = { openStation, openPerson, openService, close, family, classBands };
})();
