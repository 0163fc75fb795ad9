// The command-center page's script (streams/ops/center.py inlines it): renders the figures, and,
// on the worker's live page, fetches them again every REFRESH_MS.
const L = LABELS, fmt = n => (n === null || n === undefined) ? "–" : Number(n).toLocaleString(L._locale);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
// Times arrive in UTC ("2022-11-21 06:21:10", "2022-11-21T06:21:10", with or without "Z" or "+00:00");
// each is shown on the clock of its event's place: the zone (WIB, WITA or WIT, Keppres 41/1987) and
// its hours ahead of UTC that sinks/center.py sets on every event (UTC for an event with no place).
const utcMs = s => { const t = String(s).trim().replace(" ", "T"); return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : t + "Z"); };
const zoneOf = e => ({name: (e && e.time_zone) || "UTC", hours: (e && e.utc_offset_h) || 0});
const clock = (ms, zone) => isNaN(ms) ? "–" : new Date(ms + zone.hours * 3600e3).toISOString().slice(0, 16).replace("T", " ");
const at = (s, zone, named) => (s === null || s === undefined) ? "–" : clock(utcMs(s), zone) + (named ? " " + zone.name : "");
const timeHead = names => L.time.replace("{zone}", names.join(" / "));
const DAMAGE = [["#b71c1c", L.heavy], ["#e46c0a", L.moderate], ["#f2c14e", L.light], ["#90a4ae", L.no_damage]];
function damage(v) {
  if (v.houses_heavy > 0) return 0; if (v.houses_moderate > 0) return 1;
  if (v.houses_light > 0 || v.households_affected > 0) return 2; return 3;
}
function table(head, rows) {
  return "<table><tr>" + head.map(h => "<th>" + esc(h) + "</th>").join("") + "</tr>" +
    rows.map(r => "<tr>" + r.map(c => "<td>" + c + "</td>").join("") + "</tr>").join("") + "</table>";
}
function kpi(label, reported, estimate, id) {
  return `<div><small>${esc(label)}</small><b id="${id}">${fmt(reported)}</b>` +
    (estimate === undefined ? "" : `<span class="est">${esc(estimate)}</span>`) + "</div>";
}
// An estimate is never a bare number: its range (with the range's probability) or its label.
function deathsRange(e) {
  if (e.est_deaths_probability === null || e.est_deaths_probability === undefined) return "–";
  const hi = e.est_deaths_high === null ? "+" : "–" + fmt(e.est_deaths_high - 1);
  return `${L.estimate}, ${L.range} ${fmt(e.est_deaths_low)}${hi} (${L.chance} ${Math.round(100 * e.est_deaths_probability)}%)`;
}
const upperBound = v => `${L.estimate}, ${L.upper_bound} ${fmt(v)}`;
function map(villages) {
  const pts = villages.filter(v => v.lat !== null && v.lon !== null && !isNaN(v.lat));
  const missing = villages.length - pts.length;
  if (!pts.length) return `<p>${esc(L.not_mapped)}: ${missing}</p>`;
  const lats = pts.map(v => v.lat), lons = pts.map(v => v.lon);
  const la0 = Math.min(...lats), la1 = Math.max(...lats), lo0 = Math.min(...lons), lo1 = Math.max(...lons);
  const k = Math.cos((la0 + la1) / 2 * Math.PI / 180), W = 640, pad = 14;
  const sx = (lo1 - lo0) * k || 0.01, sy = (la1 - la0) || 0.01, s = (W - 2 * pad) / Math.max(sx, sy);
  const H = Math.max(160, sy * s + 2 * pad);
  const dots = pts.map(v => {
    const x = pad + (v.lon - lo0) * k * s, y = H - pad - (v.lat - la0) * s, d = damage(v);
    const r = 3 + Math.min(9, Math.sqrt(v.households_affected || 0));
    const est = v.mmi !== null ? `MMI ${Number(v.mmi).toFixed(1)}` : (v.hazard_class || "");
    const tip = `${v.name || v.code} (${v.code})\n${L.households}: ${fmt(v.households_affected)}, ` +
      `${L.heavy}: ${fmt(v.houses_heavy)}, ${L.displaced}: ${fmt(v.displaced)}, ${L.dead}: ${fmt(v.dead)}\n${L.estimate}: ${est}`;
    return `<circle class="village" data-code="${esc(v.code)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(1)}" ` +
      `fill="${DAMAGE[d][0]}" fill-opacity="0.8" stroke="#333" stroke-width="0.4"><title>${esc(tip)}</title></circle>`;
  }).join("");
  const legend = DAMAGE.map(([c, t]) => `<span><i style="background:${c}"></i>${esc(t)}</span>`).join("");
  return `<svg viewBox="0 0 ${W} ${H.toFixed(0)}" role="img">${dots}</svg><div class="legend">${legend}` +
    (missing ? `<span>${esc(L.not_mapped)}: ${missing}</span>` : "") + `</div><p class="est">${esc(L.map_note)}</p>`;
}
function timeline(points, event) {
  if (!points.length) return "<p>–</p>";
  const series = [["households_affected", L.households, "#1565c0"], ["displaced", L.displaced, "#e46c0a"],
                  ["dead", L.dead, "#b71c1c"], ["injured", L.injured, "#6a1b9a"], ["missing", L.missing, "#455a64"]];
  const W = 640, H = 220, pad = 34, ts = points.map(p => utcMs(p.t)), zone = zoneOf(event);
  const t0 = Math.min(...ts), t1 = Math.max(...ts) || t0 + 1;
  const reported = Math.max(1, ...points.map(p => Math.max(p.households_affected, p.displaced, p.dead, p.injured, p.missing)));
  // The estimate shares the scale only when it is of the same order; otherwise it is written out.
  const est = event.est_displaced || 0, top = est && est <= 1.5 * reported ? Math.max(est, reported) : reported;
  const X = t => pad + (t - t0) / Math.max(1, t1 - t0) * (W - 2 * pad), Y = v => H - pad - v / top * (H - 2 * pad);
  let out = `<svg viewBox="0 0 ${W} ${H}" role="img"><line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#999"/>`;
  out += `<text x="${pad}" y="${pad - 8}" font-size="11">${fmt(top)}</text>`;
  if (est && est <= top) {
    out += `<line x1="${pad}" x2="${W - pad}" y1="${Y(est)}" y2="${Y(est)}" stroke="#e46c0a" stroke-dasharray="5 4"/>` +
      `<text x="${W - pad}" y="${Y(est) - 4}" font-size="11" text-anchor="end">${esc(L.displaced)}: ${esc(upperBound(est))}</text>`;
  } else if (est) {
    out += `<text x="${W - pad}" y="${pad - 8}" font-size="11" text-anchor="end" fill="#e46c0a">` +
      `${esc(L.displaced)}: ${esc(upperBound(est))} ▲</text>`;
  }
  for (const [key, , color] of series) {
    out += `<polyline fill="none" stroke="${color}" stroke-width="2" points="` +
      points.map((p, i) => `${X(ts[i]).toFixed(1)},${Y(p[key]).toFixed(1)}`).join(" ") + `"/>`;
  }
  out += `<text x="${pad}" y="${H - 10}" font-size="11">${esc(at(points[0].t, zone))}</text>` +
         `<text x="${W / 2}" y="${H - 10}" font-size="11" text-anchor="middle" fill="#555">${esc(timeHead([zone.name]))}</text>` +
         `<text x="${W - pad}" y="${H - 10}" font-size="11" text-anchor="end">${esc(at(points[points.length - 1].t, zone))}</text></svg>`;
  return out + `<div class="legend">` + series.map(([, t, c]) => `<span><i style="background:${c}"></i>${esc(t)}</span>`).join("") + "</div>";
}
function render(data) {
  const ev = data.event, root = document.getElementById("root");
  const zone = zoneOf(ev), zones = [...new Set(data.events.map(e => zoneOf(e).name))];
  document.getElementById("updated").textContent = `${L.updated}: ${clock(Date.now(), zone)} ${zone.name}`;
  // One zone for all the listed events: named in the heading; several: each row names its own.
  const events = table([L.event, timeHead(zones.length ? zones : [zone.name]), L.level, L.size, L.displaced + " (" + L.estimate + ")", L.displaced + " (" + L.reported + ")", L.dead],
    data.events.map(e => [esc(e.event_id), esc(at(e.event_time, zoneOf(e), zones.length > 1)), `<span class="lvl ${esc(e.pager_level || "none")}">${esc(e.pager_level || "–")}</span>`,
      e.magnitude !== null ? "M" + Number(e.magnitude).toFixed(1) : esc((e.headline || "").slice(0, 40)),
      esc(upperBound(e.est_displaced)), fmt(e.reported_displaced), fmt(e.reported_dead)]));
  let html = `<section class="wide"><h2>${esc(L.events)}</h2>${events}</section>`;
  if (!ev) { root.innerHTML = html + `<section class="wide"><p>${esc(L.none)}</p></section>` + pipeline(data); return; }
  html += `<section class="wide"><h2>${esc(ev.event_id)} · ${esc(ev.headline || "")}</h2>` +
    `<p>${esc(timeHead([zone.name]))}: ${esc(at(ev.event_time, zone))}</p><div class="kpi">` +
    kpi(L.households, ev.reported_households_affected, `${L.exposed}: ${fmt(ev.est_exposed_households)}`, "kpi-households") +
    kpi(L.displaced, ev.reported_displaced, upperBound(ev.est_displaced), "kpi-displaced") +
    kpi(L.dead, ev.reported_dead, deathsRange(ev), "kpi-dead") + kpi(L.injured, ev.reported_injured, undefined, "kpi-injured") +
    kpi(L.missing, ev.reported_missing, undefined, "kpi-missing") + kpi(L.heavy, ev.reported_houses_heavy, undefined, "kpi-heavy") +
    "</div></section>";
  html += `<section class="wide"><h2>${esc(L.ranges)}</h2>` + table([L.model, L.range, L.chance],
    (data.ranges || []).map(r => [esc(r.model), esc(r.label),
      r.probability === null ? "–" : `${(100 * r.probability).toFixed(1)}%`])) + "</section>";
  html += `<section><h2>${esc(L.map)}</h2>${map(data.villages)}</section>`;
  html += `<section><h2>${esc(L.timeline)}</h2>${timeline(data.timeline, ev)}</section>`;
  html += `<section class="wide"><h2>${esc(L.needs)}</h2>` + table([L.regency, L.displaced, L.rice, L.water, L.kits, L.toilets],
    data.needs.map(n => [esc(n.regency_name || n.regency_code),
      ...[["displaced"], ["rice_kg_week"], ["drinking_water_l_week"], ["family_kits_week"], ["toilets"]].map(([k]) =>
        `${fmt(n["reported_" + k])} <span class="est">(${esc(upperBound(n["est_" + k]))})</span>`)])) + "</section>";
  const idr = n => "Rp" + fmt(n);
  const owed = (data.entitlements || []).reduce((t, e) => t + Number(e.amount_idr), 0);
  html += `<section class="wide"><h2>${esc(L.entitlements)}: <span id="entitlements-total">${esc(idr(owed))}</span></h2>` +
    table([L.regency, L.kind, L.basis, L.unit, L.amount], (data.entitlements || []).map(e =>
      [esc(e.regency_name || e.regency_code), esc(L[e.kind] || e.kind), fmt(e.basis_count), esc(idr(e.unit_amount_idr)),
       esc(idr(e.amount_idr))])) + "</section>";
  html += `<section class="wide"><h2>${esc(L.coverage)}</h2>` +
    table([L.district, L.exposed_villages, L.unreported_villages, L.unreported, L.since_last_report],
      (data.coverage || []).map(c => [esc(c.district_name || c.district_code), fmt(c.exposed_villages),
        fmt(c.unreported_villages), esc((c.unreported || []).join(", ")),
        c.hours_since_last_report === null ? "–" : fmt(c.hours_since_last_report) + " " + esc(L.hours)])) + "</section>";
  html += `<section><h2>${esc(L.reassess)}</h2>` + table([L.reason, L.households],
    data.reassess.by_reason.map(r => [esc(L[r.reason] || r.reason), fmt(r.households)])) + "</section>";
  html += `<section><h2>${esc(L.reassess)}: ${esc(L.village)}</h2>` + table([L.village, L.households, L.heavy, L.displaced],
    data.reassess.by_village.map(r => [esc(r.name || r.code), fmt(r.households), fmt(r.heavy_damage), fmt(r.displacement)])) + "</section>";
  root.innerHTML = html + pipeline(data);
}
function pipeline(data) {
  const p = data.pipeline || {};
  return `<section class="wide"><h2>${esc(L.pipeline)}</h2><div class="kpi">` +
    `<div><small>${esc(L.status)}</small><b id="pipeline-status">${esc(p.status || "–")}</b></div>` +
    `<div><small>${esc(L.lag)}</small><b>${fmt(p.lag)}</b></div>` +
    `<div><small>${esc(L.dead_letters)}</small><b id="dead-letters">${fmt(data.dead_letters_last_hour)}</b></div></div></section>`;
}
async function refresh() {
  try {
    const resp = await fetch(DATA_URL, {cache: "no-store"});
    if (resp.ok) render(await resp.json());
  } catch (e) { /* the worker is restarting: try again at the next tick */ }
}
if (DATA !== null) render(DATA); else { refresh(); setInterval(refresh, REFRESH_MS); }
