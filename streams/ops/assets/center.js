// The command-center page's script (streams/ops/center.py inlines it): renders the figures with
// Leaflet (the map) and plotly.js (the charts) and, on the worker's live page, fetches them again
// REFRESH_MS after each answer. `#layer=mmi` or `#layer=coverage` (and `#event=ID`, live) in the
// URL pick the map's colouring and the event.
const L_ = LABELS, fmt = n => (n === null || n === undefined || Number.isNaN(Number(n))) ? "–" : Number(n).toLocaleString(L_._locale);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
// Times arrive in UTC ("2022-11-21 06:21:10", "2022-11-21T06:21:10", with or without "Z" or "+00:00");
// each is shown on the clock of its event's place: the zone (WIB, WITA or WIT, Keppres 41/1987) and
// its hours ahead of UTC that sinks/center.py sets on every event (UTC for an event with no place).
const utcMs = s => { const t = String(s).trim().replace(" ", "T"); return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(t) ? t : t + "Z"); };
const zoneOf = e => ({name: (e && e.time_zone) || "UTC", hours: (e && e.utc_offset_h) || 0});
const clock = (ms, zone) => isNaN(ms) ? "–" : new Date(ms + zone.hours * 3600e3).toISOString().slice(0, 16).replace("T", " ");
const at = (s, zone, named) => (s === null || s === undefined) ? "–" : clock(utcMs(s), zone) + (named ? " " + zone.name : "");
// BNPB dates its figures by day ("2022-11-26"), or by day and time.
const asOf = (s, zone) => /^\d{4}-\d\d-\d\d$/.test(String(s)) ? String(s) : at(s, zone, true);
const timeHead = names => L_.time.replace("{zone}", names.join(" / "));
// Every village is named with its kecamatan: two villages of one regency may share a name.
function vname(v) {
  if (typeof v === "string") return VILLAGES[v] ? vname(VILLAGES[v]) : v;
  const name = v.name || v.code;
  return v.district_name ? `${name} (${L_.kec} ${v.district_name})` : name;
}
let VILLAGES = {};
function table(head, rows, attrs) {
  return "<table><tr>" + head.map(h => "<th>" + esc(h) + "</th>").join("") + "</tr>" +
    rows.map((r, i) => `<tr${attrs ? attrs(i) : ""}>` + r.map(c => "<td>" + c + "</td>").join("") + "</tr>").join("") + "</table>";
}

// An estimate is never a bare number: its range, labelled as an estimate ("perkiraan, rentang 1–10").
const range = (lo, hi) => `${L_.estimate_lc}, ${L_.range} ${fmt(Math.round(lo))}–${hi === null || hi === undefined ? "∞" : fmt(Math.round(hi))}`;
function deathsRange(e) {
  if (e.est_deaths_probability === null || e.est_deaths_probability === undefined) return null;
  const hi = e.est_deaths_high === null ? null : Math.max(e.est_deaths_low, e.est_deaths_high - 1);
  return `${range(e.est_deaths_low, hi)} (PAGER, ${L_.chance} ${Math.round(100 * e.est_deaths_probability)}%)`;
}
const upperBound = v => `${L_.estimate_lc}, ${L_.range} 0–${fmt(v)} (${L_.upper_bound})`;
const rangesOf = (data, outcome) => (data.ranges || []).filter(r => r.outcome === outcome && r.range_high !== r.range_low);
// BNPB's figures are named by their publisher in the figures; the headline gives the full source.
const sourceName = off => String(off.source || "").split(/[,(]/)[0].trim() || "BNPB";
function kpi(key, label, reported, estimates, official, data) {
  const off = official && official[key] !== undefined && official[key] !== null
    ? `<span class="off">${esc(sourceName(official))}: <b id="off-${key}">${fmt(official[key])}</b></span>` : "";
  return `<div><small>${esc(label)}</small><b id="kpi-${key}">${fmt(reported)}</b>${off}` +
    estimates.filter(e => e).map(e => `<span class="est">${esc(e)}</span>`).join("") + "</div>";
}

// Map colours: ColorBrewer YlOrRd (Brewer, colorbrewer2.org) for the share of registered households
// with heavily damaged houses; the USGS ShakeMap intensity colours for MMI; a diverging pair for coverage.
const GREY = "#d9d9d9";
const DAMAGE = [[0, "#ffffb2", "0%"], [0.05, "#fecc5c", "< 5%"], [0.2, "#fd8d3c", "5–20%"],
                [0.5, "#f03b20", "20–50%"], [Infinity, "#bd0026", "≥ 50%"]];
const MMI = ["#ffffff", "#ffffff", "#bfccff", "#bfccff", "#a0e6ff", "#80ffff", "#7aff93", "#ffff00", "#ffc800", "#ff9100", "#ff0000"];
const ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"];
const HAZARD = {rendah: "#fee08b", low: "#fee08b", sedang: "#fdae61", medium: "#fdae61", moderate: "#fdae61", tinggi: "#d73027", high: "#d73027"};
const COVER = {gap: "#d7301f", done: "#2b8cbe", extra: "#a6bddb", none: "#eeeeee"};
const mmiLevel = m => Math.max(1, Math.min(10, Math.round(m)));
const isExposed = v => v.exposed ?? ((v.mmi !== null && v.mmi >= 5.5) || (v.mmi === null && !!v.hazard_class));
const isReported = v => v.reported ?? (v.households_affected > 0 || v.houses_heavy + v.houses_moderate + v.houses_light > 0);
const heavyShare = v => v.registered_households > 0 ? v.houses_heavy / v.registered_households : null;
const COLOURING = {
  damage: {
    fill(v) {
      if (!isReported(v)) return GREY;
      const s = heavyShare(v);
      if (s === null) return v.houses_heavy > 0 ? "#8c6bb1" : DAMAGE[0][1];
      return s === 0 ? DAMAGE[0][1] : DAMAGE.find(([top]) => s < top)[1];
    },
    legend: () => [[L_.heavy_share, null], ...DAMAGE.map(([, c, t]) => [t, c]), [L_.heavy_unregistered, "#8c6bb1"], [L_.no_damage, GREY]],
  },
  mmi: {
    fill(v) {
      if (v.mmi !== null && v.mmi !== undefined) return MMI[mmiLevel(v.mmi)];
      const word = String(v.hazard_class || "").toLowerCase().split(/\s+/).find(w => HAZARD[w]);
      return word ? HAZARD[word] : GREY;
    },
    legend: data => {
      const levels = [...new Set(data.villages.filter(v => v.mmi !== null).map(v => mmiLevel(v.mmi)))].sort((a, b) => a - b);
      const classes = [...new Set(data.villages.filter(v => v.mmi === null && v.hazard_class).map(v => v.hazard_class))];
      return [[L_.intensity, null], ...levels.map(l => ["MMI " + ROMAN[l], MMI[l]]),
              ...classes.map(c => [c, COLOURING.mmi.fill({mmi: null, hazard_class: c})]), [L_.no_estimate, GREY]];
    },
  },
  coverage: {
    fill: v => COVER[isExposed(v) ? (isReported(v) ? "done" : "gap") : (isReported(v) ? "extra" : "none")],
    legend: () => [[L_.coverage_layer, null], [L_.cov_gap, COVER.gap], [L_.cov_done, COVER.done], [L_.cov_extra, COVER.extra], [L_.cov_none, COVER.none]],
  },
};

const hashParams = () => new URLSearchParams(location.hash.slice(1));
const STATE = {layer: COLOURING[hashParams().get("layer")] ? hashParams().get("layer") : "damage", event: hashParams().get("event")};
function writeHash() {
  const p = new URLSearchParams();
  if (STATE.event) p.set("event", STATE.event);
  if (STATE.layer !== "damage") p.set("layer", STATE.layer);
  history.replaceState(null, "", p.toString() ? "#" + p.toString() : location.pathname + location.search);
}

let MAP = null, MAP_EVENT = null, DRAWN = [], OVERLAYS = null, LEGEND = null, LAST = null;
function tooltip(v) {
  const est = v.mmi !== null && v.mmi !== undefined ? `MMI ${Number(v.mmi).toLocaleString(L_._locale, {maximumFractionDigits: 1})} (${ROMAN[mmiLevel(v.mmi)]})` : (v.hazard_class || "–");
  const share = heavyShare(v);
  return `<b>${esc(vname(v))}</b>` + (v.regency_name ? `<br>${esc(v.regency_name)}` : "") +
    `<br>${esc(L_.households)}: ${fmt(v.households_affected)} · ${esc(L_.registered)}: ${fmt(v.registered_households)}` +
    `<br>${esc(L_.heavy)}: ${fmt(v.houses_heavy)}` + (share === null ? "" : ` (${(100 * share).toLocaleString(L_._locale, {maximumFractionDigits: 1})}% ${esc(L_.of_registered)})`) +
    `, ${esc(L_.moderate)}: ${fmt(v.houses_moderate)}, ${esc(L_.light)}: ${fmt(v.houses_light)}` +
    `<br>${esc(L_.displaced)}: ${fmt(v.displaced)} · ${esc(L_.dead)}: ${fmt(v.dead)} · ${esc(L_.injured)}: ${fmt(v.injured)} · ${esc(L_.missing)}: ${fmt(v.missing)}` +
    `<br>${esc(L_.estimate)}: ${esc(est)}` + (isExposed(v) && !isReported(v) ? `<br><b>${esc(L_.cov_gap)}</b>` : "") +
    (v.position_source === "district" ? `<br><i>${esc(L_.at_district)}</i>` : "");
}
function legendHtml(data) {
  const entries = COLOURING[STATE.layer].legend(data).map(([t, c]) => c === null ? `<b>${esc(t)}</b>` :
    `<span><i style="background:${c}"></i>${esc(t)}</span>`);
  // An event reaching more villages than the map draws says so (sinks.center.MAP_VILLAGES).
  const drawn = (data.villages || []).length, total = data.villages_total || drawn;
  if (total > drawn) entries.push(`<span id="villages-left-out">${esc(L_.villages_left_out.replace("{drawn}", fmt(drawn)).replace("{total}", fmt(total)))}</span>`);
  return entries.join("");
}
function restyle(data) {
  const fill = COLOURING[STATE.layer].fill;
  for (const d of DRAWN) { const c = fill(d.v); d.layer.setStyle({fillColor: c}); d.fill = c; }
  if (LEGEND) LEGEND.getContainer().innerHTML = legendHtml(data);
  document.querySelectorAll("#layer-switch button").forEach(b => b.classList.toggle("on", b.dataset.layer === STATE.layer));
  record();
}
// What Leaflet drew, per village, for the test (and anyone checking the map): the code, the kind of
// layer, the position it was drawn at (a marker's point, a polygon's bounds) and its fill colour.
function record() {
  const out = document.getElementById("drawn");
  if (!out || !MAP) return;
  out.innerHTML = DRAWN.map(d => {
    const p = d.kind === "marker" ? d.layer.getLatLng() : d.layer.getBounds().getCenter();
    const px = MAP.latLngToContainerPoint(p), b = d.kind === "polygon" ? d.layer.getBounds() : null;
    return `<i data-code="${esc(d.v.code)}" data-kind="${d.kind}" data-lat="${p.lat}" data-lon="${p.lng}"` +
      (b ? ` data-bounds="${b.getSouth()},${b.getWest()},${b.getNorth()},${b.getEast()}"` : "") +
      ` data-x="${px.x.toFixed(1)}" data-y="${px.y.toFixed(1)}" data-fill="${d.fill}"></i>`;
  }).join("") + `<b data-layer="${STATE.layer}" data-width="${MAP.getSize().x}" data-height="${MAP.getSize().y}"></b>`;
}
function drawMap(data) {
  const ev = data.event, geo = data.geo || {}, el = document.getElementById("map");
  const features = {};
  for (const f of (geo.villages || {}).features || []) features[f.properties.code] = f;
  if (!MAP) {
    MAP = L.map(el, {zoomSnap: 0.25, preferCanvas: false, attributionControl: true});
    MAP.attributionControl.setPrefix(false);
    L.control.scale({imperial: false, metric: true}).addTo(MAP);
    LEGEND = L.control({position: "bottomright"});
    LEGEND.onAdd = () => L.DomUtil.create("div", "legend map-legend");
    LEGEND.addTo(MAP);
  }
  if (OVERLAYS) OVERLAYS.remove();
  OVERLAYS = L.featureGroup().addTo(MAP);
  DRAWN = [];
  const fill = COLOURING[STATE.layer].fill;
  const style = {color: "#444", weight: 0.6, fillOpacity: 0.75};
  for (const v of data.villages) {
    let layer, kind;
    if (features[v.code]) {
      kind = "polygon";
      layer = L.geoJSON(features[v.code], {style: {...style, fillColor: fill(v)}});
    } else if (v.lat !== null && v.lat !== undefined && v.lon !== null) {
      kind = "marker";
      layer = L.circleMarker([v.lat, v.lon], {...style, weight: v.position_source === "district" ? 1.5 : 0.8,
        dashArray: v.position_source === "district" ? "2 2" : null, fillColor: fill(v), fillOpacity: 0.9,
        radius: 4 + Math.min(8, Math.sqrt(v.households_affected || 0) / 2)});
    } else continue;
    layer.bindTooltip(tooltip(v), {sticky: true}).addTo(OVERLAYS);
    DRAWN.push({v, layer, kind, fill: fill(v)});
  }
  // Outlines above the villages, not interactive so that the villages' tooltips stay reachable.
  L.geoJSON(geo.districts || [], {style: {color: "#555", weight: 1, dashArray: "4 3", fill: false}, interactive: false}).addTo(OVERLAYS);
  L.geoJSON(geo.regencies || [], {style: {color: "#111", weight: 2.2, fill: false}, interactive: false}).addTo(OVERLAYS);
  L.geoJSON(data.contours || [], {style: f => ({color: "#6a3d9a", weight: 1.4, dashArray: "6 4", fill: false}),
    onEachFeature: (f, layer) => layer.bindTooltip(`${L_.contour} MMI ${ROMAN[f.properties.mmi] || f.properties.mmi}`, {sticky: true})}).addTo(OVERLAYS);
  if (ev && ev.epicentre) {
    L.circleMarker([ev.epicentre.lat, ev.epicentre.lon], {radius: 7, color: "#000", weight: 2.5, fillColor: "#ff0000", fillOpacity: 1})
      .bindTooltip(`${esc(L_.epicentre)}: ${esc(ev.event_id)}` + (ev.magnitude !== null ? ` M${Number(ev.magnitude).toFixed(1)}` : ""))
      .addTo(OVERLAYS);
  }
  const empty = !DRAWN.length;
  document.getElementById("map-empty").textContent = empty ? L_.not_mapped : "";
  el.classList.toggle("empty", empty);
  if (!empty && (MAP_EVENT !== (ev && ev.event_id) || !MAP._loaded)) {
    MAP.fitBounds(L.featureGroup(DRAWN.map(d => d.layer)).getBounds(), {padding: [12, 12]});
    MAP_EVENT = ev && ev.event_id;
  } else if (empty && !MAP._loaded) MAP.setView([-2.5, 118], 4);
  restyle(data);
}

// The charts: one panel per figure, each with its own y axis (small multiples), the reported
// totals as lines, each estimate as a band (its range, labelled) that never sets the scale, and
// BNPB's figure, where the event has one, as a point at its date.
const BANDS = ["rgba(228,108,10,.18)", "rgba(21,101,192,.15)", "rgba(106,27,154,.15)", "rgba(46,125,50,.15)"];
function drawCharts(data) {
  const ev = data.event, el = document.getElementById("chart"), zone = zoneOf(ev), off = ev.official;
  if (!data.timeline.length) { Plotly.purge(el); el.textContent = "–"; return; }
  if (el.textContent === "–") el.textContent = "";
  const local = s => clock(utcMs(s), zone);
  const xs = data.timeline.map(p => local(p.t)), x0 = local(ev.event_time < data.timeline[0].t ? ev.event_time : data.timeline[0].t), x1 = xs[xs.length - 1];
  const panels = [
    {title: L_.households, series: [["households_affected", L_.households, "#1565c0"]], bands: rangesOf(data, "households_affected"), off: []},
    {title: L_.displaced, series: [["displaced", L_.displaced, "#e46c0a"]], bands: rangesOf(data, "displaced"), off: [["displaced", L_.displaced]]},
    {title: L_.dead, series: [["dead", L_.dead, "#b71c1c"]], off: [["dead", L_.dead]],
     bands: ev.est_deaths_probability !== null && ev.est_deaths_probability !== undefined
       ? [{model: "PAGER", range_low: ev.est_deaths_low, range_high: ev.est_deaths_high === null ? null : Math.max(ev.est_deaths_low, ev.est_deaths_high - 1)}] : []},
    {title: L_.injured, series: [["injured", L_.injured, "#6a1b9a"]], bands: rangesOf(data, "injured"), off: [["injured", L_.injured]]},
    {title: L_.missing, series: [["missing", L_.missing, "#455a64"]], bands: rangesOf(data, "missing"), off: [["missing", L_.missing]]},
  ];
  const n = panels.length, gap = 0.045, h = (1 - gap * (n - 1)) / n, traces = [], layout = {
    height: 135 * n + 70, margin: {l: 64, r: 250, t: 10, b: 50}, showlegend: true, hovermode: "x unified",
    separators: L_._locale === "id-ID" ? ",." : ".,", font: {size: 11, family: "system-ui, sans-serif"},
    paper_bgcolor: "#fff", plot_bgcolor: "#fafbfc",
  };
  panels.forEach((p, i) => {
    const ax = i ? String(i + 1) : "", top = 1 - i * (h + gap), legend = i ? "legend" + (i + 1) : "legend";
    const cols = p.series.map(([k]) => Math.max(...data.timeline.map(t => t[k] || 0)));
    const offs = off ? p.off.filter(([k]) => off[k] !== null && off[k] !== undefined) : [];
    let ymax = Math.max(1, ...cols, ...offs.map(([k]) => off[k]), ...p.bands.map(b => b.range_low || 0));
    layout["yaxis" + ax] = {domain: [top - h, top], anchor: "x", rangemode: "tozero", range: [0, ymax * 1.12], title: {text: p.title, font: {size: 11}},
                            tickformat: ",d", fixedrange: true, nticks: 4, gridcolor: "#e4e6ea"};
    layout[legend] = {y: top, yanchor: "top", x: 1.01, xanchor: "left", font: {size: 10}, bgcolor: "rgba(255,255,255,0)"};
    p.bands.forEach((b, j) => {
      const hi = b.range_high === null ? ymax * 10 : b.range_high;
      traces.push({x: [x0, x1, x1, x0, x0], y: [b.range_low, b.range_low, hi, hi, b.range_low], yaxis: "y" + ax, legend,
        type: "scatter", mode: "lines", fill: "toself", fillcolor: BANDS[j % BANDS.length], line: {width: 0}, hoverinfo: "skip",
        name: `${range(b.range_low, b.range_high)} (${b.model})`});
    });
    for (const [k, label, color] of p.series) {
      traces.push({x: xs, y: data.timeline.map(t => t[k]), yaxis: "y" + ax, legend, type: "scatter", mode: "lines+markers",
        marker: {size: 4}, line: {color, width: 2}, name: `${label} (${L_.reported_lc})`});
    }
    for (const [k, label] of offs) {
      traces.push({x: [off.as_of ? (/^\d{4}-\d\d-\d\d$/.test(off.as_of) ? off.as_of : local(off.as_of)) : x1], y: [off[k]], yaxis: "y" + ax, legend, type: "scatter", mode: "markers",
        marker: {symbol: "diamond", size: 10, color: "#000"}, name: `${label}: ${sourceName(off)}${off.as_of ? " " + String(off.as_of).slice(0, 10) : ""}`});
    }
  });
  layout.xaxis = {type: "date", anchor: "y" + (n > 1 ? n : ""), title: {text: timeHead([zone.name])}, tickformat: "%d/%m %H:%M", gridcolor: "#e4e6ea"};
  Plotly.react(el, traces, layout, {displayModeBar: false, responsive: true, staticPlot: false});
}

function incidentHtml(data) {
  const inc = data.incident;
  if (!inc || !inc.events || !inc.events.length) return "";
  return `<section class="wide"><h2>${esc(L_.incident)} ${esc(inc.incident_id)}</h2>` +
    table([L_.event, L_.hazard, timeHead([zoneOf(data.event).name]), L_.size, L_.rule], inc.events.map(e =>
      [esc(e.event_id), esc(e.hazard), esc(at(e.event_time, zoneOf(data.event))),
       e.magnitude !== null && e.magnitude !== undefined ? "M" + Number(e.magnitude).toFixed(1) : esc((e.headline || "").slice(0, 40)), esc(e.rule || "")]),
      i => ` class="ev${inc.events[i].event_id === data.event.event_id ? " sel" : ""}" data-event="${esc(inc.events[i].event_id)}"`) + "</section>";
}
function render(data) {
  LAST = data;
  const ev = data.event, zone = zoneOf(ev), zones = [...new Set(data.events.map(e => zoneOf(e).name))];
  VILLAGES = Object.fromEntries((data.villages || []).map(v => [v.code, v]));
  // When the figures were read (a shared answer can be a few seconds older than its arrival).
  document.getElementById("updated").textContent = `${L_.updated}: ${clock(data.as_of ? utcMs(data.as_of) : Date.now(), zone)} ${zone.name}`;
  const picker = document.getElementById("event-picker");
  if (picker) {
    picker.innerHTML = data.events.map(e => `<option value="${esc(e.event_id)}"${ev && e.event_id === ev.event_id ? " selected" : ""}>` +
      `${esc(at(e.event_time, zoneOf(e), true))} · ${esc(e.event_id)}</option>`).join("");
  }
  // One zone for all the listed events: named in the heading; several: each row names its own.
  const events = table([L_.event, timeHead(zones.length ? zones : [zone.name]), L_.level, L_.size, L_.displaced + " (" + L_.estimate_lc + ")", L_.displaced + " (" + L_.reported_lc + ")", L_.dead],
    data.events.map(e => [esc(e.event_id), esc(at(e.event_time, zoneOf(e), zones.length > 1)), `<span class="lvl ${esc(e.pager_level || "none")}">${esc(e.pager_level || "–")}</span>`,
      e.magnitude !== null ? "M" + Number(e.magnitude).toFixed(1) : esc((e.headline || "").slice(0, 40)),
      esc(upperBound(e.est_displaced)), fmt(e.reported_displaced), fmt(e.reported_dead)]),
    i => ` class="ev${ev && data.events[i].event_id === ev.event_id ? " sel" : ""}" data-event="${esc(data.events[i].event_id)}"`);
  const eventsHtml = `<section class="wide" id="events"><h2>${esc(L_.events)}</h2>${events}</section>`;
  const headline = document.getElementById("headline"), rest = document.getElementById("rest");
  const parts = document.querySelectorAll(".event-only");
  if (!ev) {
    headline.innerHTML = `<p>${esc(L_.none)}</p>`;
    parts.forEach(p => { p.hidden = true; });
    rest.innerHTML = eventsHtml + pipeline(data);
    return;
  }
  parts.forEach(p => { p.hidden = false; });
  const off = ev.official || null;
  headline.innerHTML = `<h2>${esc(ev.event_id)} · ${esc(ev.headline || "")}</h2>` +
    `<p>${esc(timeHead([zone.name]))}: ${esc(at(ev.event_time, zone))}` + (ev.magnitude !== null ? ` · M${Number(ev.magnitude).toFixed(1)}` : "") +
    ` · ${esc(L_.level)}: <span class="lvl ${esc(ev.pager_level || "none")}">${esc(ev.pager_level || "–")}</span>` +
    (off ? ` · ${esc(off.source)}${off.as_of ? ", " + esc(asOf(off.as_of, zone)) : ""}` : "") + `</p><div class="kpi">` +
    kpi("households", L_.households, ev.reported_households_affected, [`${L_.exposed}: ${upperBound(ev.est_exposed_households)}`], off, data) +
    kpi("displaced", L_.displaced, ev.reported_displaced, rangesOf(data, "displaced").map(r => `${range(r.range_low, r.range_high)} (${r.model})`), off, data) +
    kpi("dead", L_.dead, ev.reported_dead, [deathsRange(ev)], off, data) + kpi("injured", L_.injured, ev.reported_injured, [], off, data) +
    kpi("missing", L_.missing, ev.reported_missing, [], off, data) + kpi("heavy", L_.heavy, ev.reported_houses_heavy, [], off && {...off, heavy: off.houses_heavy}, data) +
    "</div>";
  drawMap(data);
  drawCharts(data);
  let html = incidentHtml(data) + eventsHtml;
  html += `<section class="wide"><h2>${esc(L_.ranges)}</h2>` + table([L_.model, L_.outcome, L_.range, L_.chance, L_.label],
    (data.ranges || []).map(r => [esc(r.model), esc(L_[r.outcome] || r.outcome),
      `<span class="range">${esc(range(r.range_low, r.range_high))}</span>`,
      r.probability === null ? "–" : `${(100 * r.probability).toLocaleString(L_._locale, {maximumFractionDigits: 1})}%`, `<span class="label">${esc(r.label)}</span>`]),
    i => ` data-model="${esc(data.ranges[i].model)}" data-outcome="${esc(data.ranges[i].outcome)}" data-low="${data.ranges[i].range_low}" data-high="${data.ranges[i].range_high}"`) + "</section>";
  html += `<section class="wide"><h2>${esc(L_.needs)}</h2>` + table([L_.regency, L_.displaced, L_.rice, L_.water, L_.kits, L_.toilets],
    data.needs.map(n => [esc(n.regency_name || n.regency_code),
      ...["displaced", "rice_kg_week", "drinking_water_l_week", "family_kits_week", "toilets"].map(k =>
        `${fmt(n["reported_" + k])} <span class="est">(${esc(upperBound(n["est_" + k]))})</span>`)])) + "</section>";
  const idr = n => "Rp" + fmt(n);
  const owed = (data.entitlements || []).reduce((t, e) => t + Number(e.amount_idr), 0);
  html += `<section class="wide"><h2>${esc(L_.entitlements)}: <span id="entitlements-total">${esc(idr(owed))}</span></h2>` +
    table([L_.regency, L_.kind, L_.basis, L_.unit, L_.amount], (data.entitlements || []).map(e =>
      [esc(e.regency_name || e.regency_code), esc(L_[e.kind] || e.kind), fmt(e.basis_count), esc(idr(e.unit_amount_idr)),
       esc(idr(e.amount_idr))])) + "</section>";
  html += `<section class="wide"><h2>${esc(L_.coverage)}</h2>` +
    table([L_.district, L_.exposed_villages, L_.unreported_villages, L_.unreported, L_.since_last_report],
      (data.coverage || []).map(c => [esc(c.district_name || c.district_code), fmt(c.exposed_villages),
        fmt(c.unreported_villages), esc((c.unreported || []).map(vname).join(", ")),
        c.hours_since_last_report === null ? "–" : fmt(c.hours_since_last_report) + " " + esc(L_.hours)])) + "</section>";
  html += `<section><h2>${esc(L_.reassess)}</h2>` + table([L_.reason, L_.households],
    data.reassess.by_reason.map(r => [esc(L_[r.reason] || r.reason), fmt(r.households)])) + "</section>";
  html += `<section><h2>${esc(L_.reassess)}: ${esc(L_.village)}</h2>` + table([L_.village, L_.households, L_.heavy, L_.displaced],
    data.reassess.by_village.map(r => [esc(vname(r)), fmt(r.households), fmt(r.heavy_damage), fmt(r.displacement)])) + "</section>";
  rest.innerHTML = html + pipeline(data);
}
function pipeline(data) {
  const p = data.pipeline || {};
  return `<section class="wide"><h2>${esc(L_.pipeline)}</h2><div class="kpi">` +
    `<div><small>${esc(L_.status)}</small><b id="pipeline-status">${esc(p.status || "–")}</b></div>` +
    `<div><small>${esc(L_.lag)}</small><b>${fmt(p.lag)}</b></div>` +
    `<div><small>${esc(L_.dead_letters)}</small><b id="dead-letters">${fmt(data.dead_letters_last_hour)}</b></div></div></section>`;
}
async function refresh() {
  const asked = STATE.event;
  try {
    const url = asked ? `${DATA_URL}?event=${encodeURIComponent(asked)}` : DATA_URL;
    const resp = await fetch(url, {cache: "no-store"});
    // An answer for an event no longer chosen (one was picked meanwhile) is not drawn.
    if (resp.ok && STATE.event === asked) render(await resp.json());
  } catch (e) { /* the worker is restarting: try again at the next tick */ }
}
// The next refresh is due REFRESH_MS after the last answer, never while one is awaited: a read can
// take longer than REFRESH_MS at national scale, and an interval would pile requests up.
async function poll() { await refresh(); setTimeout(poll, REFRESH_MS); }
function choose(eventId) {
  if (DATA !== null || !eventId || (LAST && LAST.event && LAST.event.event_id === eventId && STATE.event === eventId)) return;
  STATE.event = eventId;
  writeHash();
  refresh();
}
function setup() {
  const root = document.getElementById("root");
  root.innerHTML = `<section class="wide" id="headline"></section>` +
    `<section class="wide event-only" id="map-section"><h2>${esc(L_.map)}</h2><div id="layer-switch">` +
    Object.keys(COLOURING).map(k => `<button type="button" data-layer="${k}">${esc(L_["layer_" + k])}</button>`).join("") +
    `</div><div id="map"></div><p class="est" id="map-empty"></p><p class="est">${esc(L_.map_note)}</p></section>` +
    `<section class="wide event-only" id="chart-section"><h2>${esc(L_.timeline)}</h2><div id="chart"></div></section>` +
    `<div id="rest"></div><div id="drawn" hidden></div>`;
  document.getElementById("layer-switch").addEventListener("click", e => {
    const k = e.target.dataset && e.target.dataset.layer;
    if (k && COLOURING[k]) { STATE.layer = k; writeHash(); if (LAST) restyle(LAST); }
  });
  root.addEventListener("click", e => { const tr = e.target.closest("tr.ev"); if (tr) choose(tr.dataset.event); });
  const picker = document.getElementById("event-picker");
  if (picker) picker.addEventListener("change", () => choose(picker.value));
  window.addEventListener("hashchange", () => {
    const p = hashParams();
    if (COLOURING[p.get("layer") || "damage"] && (p.get("layer") || "damage") !== STATE.layer) { STATE.layer = p.get("layer") || "damage"; if (LAST) restyle(LAST); }
    if (p.get("event") && p.get("event") !== STATE.event) choose(p.get("event"));
  });
  // Printing lays the page out at the paper's width: the map and the charts are fitted to it.
  const fit = () => { if (MAP) { MAP.invalidateSize(false); if (DRAWN.length) MAP.fitBounds(L.featureGroup(DRAWN.map(d => d.layer)).getBounds(), {padding: [8, 8], animate: false}); record(); }
                      const c = document.getElementById("chart"); if (c && c.data) Plotly.Plots.resize(c); };
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);
}
setup();
if (DATA !== null) render(DATA); else poll();
