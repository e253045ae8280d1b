// The pilot report: reads /api/v1/analytics/* and shows every value with textContent.
// The chart is inline SVG made with DOM methods; no library, no innerHTML.

import { api } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const BAR = "#4a7fd6"; // readable on the light and the dark theme
const BASELINE = "#d0443a";
const root = document.getElementById("report");
const $ = (id) => document.getElementById(id);

function text(id, value) {
  $(id).textContent = value;
}

function minutes(seconds) {
  return seconds === null || seconds === undefined ? "none yet" : `${(seconds / 60).toFixed(1)} min`;
}

function number(value, digits) {
  return value === null || value === undefined ? "none yet" : value.toFixed(digits);
}

function showFigures(data) {
  const ttfa = data.time_to_first_action_seconds;
  text("ttfa-median", minutes(ttfa.median));
  text("ttfa-n", `n = ${ttfa.n} escalation${ttfa.n === 1 ? "" : "s"} claimed and acted on`);
  text("ttfa-p90", ttfa.p90 === null ? "" : `90th percentile: ${minutes(ttfa.p90)}`);

  const base = data.baseline;
  const recovered = data.minutes_recovered_per_escalation;
  text("recovered-value", recovered.value === null ? "Not yet" : `${recovered.value.toFixed(1)} min`);
  const baseMedian = base.median_minutes === null ? "none yet" : `${base.median_minutes.toFixed(1)} min`;
  text("recovered-n", `baseline n = ${base.n} (median ${baseMedian}); in-product n = ${ttfa.n}`);
  text("recovered-reason", recovered.reason ? `Why not yet: ${recovered.reason}` : "");

  const verdict = data.verdict;
  const outcomes = { keep: "Keep", revisit: "Revisit", too_early: "Too early", not_enough_data: "Not enough data" };
  text("verdict-outcome", outcomes[verdict.outcome] || verdict.outcome);
  text("verdict-reason", verdict.reason);
  const saved = data.hours_saved_per_week;
  text(
    "hours-saved",
    saved.value === null
      ? `Hours saved a week: not yet (${saved.reason})`
      : `Hours saved a week: ${Number(saved.value.toPrecision(3))} (threshold ${verdict.threshold_hours})`,
  );
  text("per-week", `${data.count} escalations in ${data.days} days (${data.escalations_per_week.toFixed(2)} a week), ${data.claimed} claimed`);

  const ai = data.ai;
  text("ai-input", number(ai.input_tokens_per_escalation, 0));
  text("ai-output", number(ai.output_tokens_per_escalation, 0));
  text("ai-cost", ai.cost_per_escalation_usd === null ? (ai.cost_note || "none yet") : `$${ai.cost_per_escalation_usd.toFixed(4)}`);
  const purposes = Object.entries(ai.calls_per_escalation);
  text("ai-calls", purposes.length ? purposes.map(([p, n]) => `${p}: ${n.toFixed(2)}`).join(", ") : "none yet");
  text("ai-fallback", ai.fallback_rate === null ? "none yet" : `${(ai.fallback_rate * 100).toFixed(0)}% of ${ai.terminal_handoffs} handoffs`);
  const ready = data.time_to_ready_seconds;
  const part = (name, r) => `${name}: p50 ${number(r.p50, 1)} s, p95 ${number(r.p95, 1)} s (n = ${r.n})`;
  text("ready", [part("all", ready.all), part("AI", ready.ai), part("fallback", ready.fallback)].join("; "));
}

function el(name, attrs, content) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (content !== undefined) node.textContent = content;
  return node;
}

function drawChart(weeks, baseline) {
  const box = $("chart");
  box.replaceChildren();
  const width = 640, height = 260, left = 48, right = 16, top = 24, bottom = 40;
  const plotW = width - left - right, plotH = height - top - bottom;
  const values = weeks.map((w) => (w.median_seconds === null ? 0 : w.median_seconds / 60));
  const baseMinutes = baseline.median_minutes;
  const max = Math.max(1, ...values, baseMinutes || 0) * 1.15;
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", "aria-hidden": "true" });
  svg.appendChild(el("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), stroke: "currentColor" }));
  svg.appendChild(el("text", { x: 4, y: top - 8, "font-size": 11, fill: "currentColor" }, "minutes"));
  for (const tick of [0, max / 2, max]) {
    svg.appendChild(el("text", { x: 4, y: y(tick) + 4, "font-size": 11, fill: "currentColor" }, tick.toFixed(1)));
  }
  const slot = plotW / Math.max(weeks.length, 1);
  weeks.forEach((week, i) => {
    const x = left + i * slot + slot * 0.2;
    const barW = slot * 0.6;
    if (week.median_seconds !== null) {
      const v = week.median_seconds / 60;
      const bar = el("rect", { x, y: y(v), width: barW, height: y(0) - y(v), fill: BAR, class: "bar" });
      bar.appendChild(el("title", {}, `${week.week}: ${v.toFixed(1)} min, n = ${week.n}`));
      svg.appendChild(bar);
    }
    svg.appendChild(el("text", { x: x + barW / 2, y: (week.median_seconds === null ? y(0) : y(values[i])) - 4, "text-anchor": "middle", "font-size": 10, fill: "currentColor" }, `n=${week.n}`));
    svg.appendChild(el("text", { x: x + barW / 2, y: height - bottom + 16, "text-anchor": "middle", "font-size": 10, fill: "currentColor" }, week.week.slice(5)));
  });
  if (baseMinutes !== null) {
    svg.appendChild(el("line", { x1: left, y1: y(baseMinutes), x2: width - right, y2: y(baseMinutes), stroke: BASELINE, "stroke-width": 2, "stroke-dasharray": "6 4", class: "baseline" }));
    svg.appendChild(el("text", { x: width - right, y: y(baseMinutes) - 6, "text-anchor": "end", "font-size": 11, fill: BASELINE, id: "baseline-label" }, `manual baseline median ${baseMinutes.toFixed(1)} min (n = ${baseline.n})`));
  }
  box.appendChild(svg);

  const body = $("weeks").tBodies[0];
  body.replaceChildren();
  for (const week of weeks) {
    const row = body.insertRow();
    row.insertCell().textContent = week.week;
    row.insertCell().textContent = minutes(week.median_seconds);
    row.insertCell().textContent = String(week.n);
  }
}

async function load() {
  const days = Number($("days").value || root.dataset.days);
  $("csv").setAttribute("href", `/api/v1/analytics/escalations.csv?days=${days}`);
  text("status", "Loading the figures…");
  try {
    const [data, weeks] = await Promise.all([
      api(`/api/v1/analytics/escalations?days=${days}`),
      api(`/api/v1/analytics/weekly?weeks=${Math.max(1, Math.min(52, Math.ceil(days / 7)))}`),
    ]);
    showFigures(data);
    drawChart(weeks, data.baseline);
    text("status", `Computed from ${data.count} escalations received in the last ${data.days} days.`);
    root.dataset.loaded = "true";
  } catch (error) {
    text("status", `Could not load the figures: ${error.message}`);
  }
}

$("days").addEventListener("change", load);
load();
