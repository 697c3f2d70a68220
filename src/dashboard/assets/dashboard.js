// The dashboard's script: it signs the analyst in with an API key (kept in
// this tab's sessionStorage, sent as a Bearer header, never put in a URL),
// keeps the selection in the page's URL, reads three v2 reports for it (the
// period, the period before it, a page of members), and draws them. Every text
// from the service goes into the page as text, never as markup.
"use strict";

const KEY_STORE = "coworking-analytics.api-key";
const MEMBERS_PER_PAGE = 20;
const PERIODS = ["last-7-days", "last-30-days", "last-90-days", "this-month", "last-month", "custom"];
// Sorting a column the first time, and again.
const SORTS = {
  visits: ["-visits", "visits"],
  last_visit: ["-last_visit"],
  joined_at: ["-joined_at", "joined_at"],
};

const $ = (id) => document.getElementById(id);

function show(element, visible) {
  element.hidden = !visible;
}

// ---- The selection, in the URL ----

function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function readSelection() {
  const query = new URLSearchParams(location.search);
  const pick = (name, allowed, fallback) => {
    const value = query.get(name);
    return allowed.includes(value) ? value : fallback;
  };
  const custom = query.has("from") || query.has("to");
  const sort = query.get("sort");
  return {
    period: custom ? "custom" : pick("period", PERIODS, "last-30-days"),
    from: query.get("from") || "",
    to: query.get("to") || "",
    granularity: pick("granularity", ["day", "week", "month"], "day"),
    tz: query.get("tz") || browserZone(),
    weekStart: pick("week_start", ["monday", "sunday"], "monday"),
    sort: Object.values(SORTS).flat().includes(sort) ? sort : "-visits",
    offset: Math.max(0, parseInt(query.get("offset") || "0", 10) || 0),
  };
}

function writeSelection(selection) {
  const query = new URLSearchParams();
  if (selection.period === "custom") {
    query.set("from", selection.from);
    query.set("to", selection.to);
  } else {
    query.set("period", selection.period);
  }
  query.set("granularity", selection.granularity);
  query.set("tz", selection.tz);
  query.set("week_start", selection.weekStart);
  if (selection.sort !== "-visits") query.set("sort", selection.sort);
  if (selection.offset > 0) query.set("offset", String(selection.offset));
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

function showSelection(selection) {
  $("period").value = selection.period;
  $("from").value = selection.from;
  $("to").value = selection.to;
  $("granularity").value = selection.granularity;
  $("tz").value = selection.tz;
  $("week-start").value = selection.weekStart;
  for (const label of document.querySelectorAll(".custom")) {
    show(label, selection.period === "custom");
  }
}

function selectionFromControls(previous) {
  return {
    period: $("period").value,
    from: $("from").value,
    to: $("to").value,
    granularity: $("granularity").value,
    tz: $("tz").value.trim(),
    weekStart: $("week-start").value,
    sort: previous.sort,
    offset: 0,
  };
}

// ---- Dates: calendar dates as UTC midnights; today from the zone's clock ----

function todayIn(tz) {
  try {
    // en-CA writes dates as YYYY-MM-DD.
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date());
  } catch {
    return null;
  }
}

function parseDate(text) {
  const [year, month, day] = text.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day));
}

function formatDate(date) {
  return date.toISOString().slice(0, 10);
}

function addDays(text, days) {
  const date = parseDate(text);
  date.setUTCDate(date.getUTCDate() + days);
  return formatDate(date);
}

function addMonths(text, months) {
  const date = parseDate(text);
  return formatDate(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1)));
}

function daysBetween(from, to) {
  return Math.round((parseDate(to) - parseDate(from)) / 86400000);
}

// The range [from, to) of a selection, in its zone; `null` for an unknown zone
// (the service then says what is wrong with it).
function rangeOf(selection) {
  if (selection.period === "custom") return { from: selection.from, to: selection.to };
  const today = todayIn(selection.tz) || todayIn("UTC");
  const tomorrow = addDays(today, 1);
  const month = today.slice(0, 8) + "01";
  switch (selection.period) {
    case "last-7-days": return { from: addDays(tomorrow, -7), to: tomorrow };
    case "last-90-days": return { from: addDays(tomorrow, -90), to: tomorrow };
    case "this-month": return { from: month, to: tomorrow };
    case "last-month": return { from: addMonths(month, -1), to: month };
    default: return { from: addDays(tomorrow, -30), to: tomorrow };
  }
}

// ---- The API ----

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `the service answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, accept) {
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE)}`, Accept: accept },
      cache: "no-cache",
    });
  } catch {
    throw new ApiError(0, { detail: "the service cannot be reached" });
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      // Not a problem document: its status says enough.
    }
    throw new ApiError(response.status, problem);
  }
  return response;
}

function reportQuery(selection, range, extra) {
  const query = new URLSearchParams({ from: range.from, to: range.to, tz: selection.tz, ...extra });
  return query.toString();
}

function usagePath(selection, range) {
  return `/api/v2/usage?${reportQuery(selection, range, {
    granularity: selection.granularity,
    week_start: selection.weekStart,
  })}`;
}

function membersPath(selection, range) {
  return `/api/v2/members?${reportQuery(selection, range, {
    sort: selection.sort,
    limit: String(MEMBERS_PER_PAGE),
    offset: String(selection.offset),
  })}`;
}

// ---- Rendering ----

const NUMBER = new Intl.NumberFormat("en");
const PERCENT = new Intl.NumberFormat("en", { style: "percent", maximumFractionDigits: 1 });

function usedShare(totals) {
  return totals.tokens_issued > 0 ? totals.visits / totals.tokens_issued : null;
}

// How a figure moved against the period before: a relative change, or for a
// share, the difference in percentage points.
function change(now, before, days, isShare) {
  if (now === null || before === null) return "";
  const period = `the ${days} days before`;
  if (now === before) return `no change on ${period}`;
  const sign = now > before ? "+" : "−";
  if (isShare) return `${sign}${Math.abs((now - before) * 100).toFixed(1)} points on ${period}`;
  if (before === 0) return `up from 0 in ${period}`;
  return `${sign}${PERCENT.format(Math.abs((now - before) / before))} on ${period}`;
}

function showFigures(report, previous, days) {
  const figures = [
    ["visits", report.totals.visits, previous.totals.visits, NUMBER.format],
    ["active", report.totals.active_members, previous.totals.active_members, NUMBER.format],
    ["new", report.totals.new_members, previous.totals.new_members, NUMBER.format],
    ["used", usedShare(report.totals), usedShare(previous.totals), PERCENT.format],
  ];
  for (const [name, now, before, format] of figures) {
    $(`figure-${name}`).textContent = now === null ? "no tokens issued" : format(now);
    $(`change-${name}`).textContent = change(now, before, days, name === "used");
  }
}

function element(name, attributes, text) {
  const node = document.createElement(name);
  for (const [attribute, value] of Object.entries(attributes || {})) {
    node.setAttribute(attribute, String(value));
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- The chart ----
// uPlot (vendored from npm: src/dashboard/vendor) draws the two series on a
// canvas, one x step per bucket. A canvas says nothing to a screen reader, so
// the chart is one focusable image whose arrow keys move uPlot's cursor from
// bucket to bucket; the bucket under the cursor, the pointer's or the keys',
// is told in the tooltip (a live region), and every figure is in the table
// below it.

let plot = null;
let plotted = null; // the report that the plot shows

// Round steps for the value axis: 1, 2 or 5 times a power of ten; counts
// never get fractional ticks.
const COUNT_STEPS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].flatMap((power) => [1, 2, 5].map((factor) => factor * 10 ** power));

function ceiling(max, ticks) {
  const step = COUNT_STEPS.find((candidate) => candidate >= Math.max(max, 1) / ticks);
  return Math.ceil(Math.max(max, 1) / step) * step;
}

function bucketLabel(granularity, start, visits, activeMembers) {
  const prefix = { day: "", week: "Week of ", month: "Month of " }[granularity];
  return `${prefix}${start}: ${NUMBER.format(visits)} visits, ${NUMBER.format(activeMembers)} active members`;
}

function chartWidth() {
  const box = $("chart");
  const style = getComputedStyle(box);
  return Math.max(200, box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight));
}

function showChart(report) {
  const buckets = report.buckets;
  const colour = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const options = {
    width: chartWidth(),
    height: 260,
    legend: { show: false },
    cursor: { drag: { x: false, y: false, setScale: false }, y: false, points: { size: 8 } },
    scales: {
      x: { time: false, range: () => [-0.5, buckets.length - 0.5] },
      y: { range: (u, min, max) => [0, ceiling(max, 4)] },
    },
    axes: [
      { incrs: COUNT_STEPS, space: 90, values: (u, splits) => splits.map((index) => buckets[index]?.start ?? "") },
      { incrs: COUNT_STEPS, size: 56, values: (u, splits) => splits.map((value) => NUMBER.format(value)) },
    ],
    series: [
      {},
      { label: "Visits", stroke: colour("--visits"), width: 2 },
      { label: "Active members", stroke: colour("--active"), width: 2, dash: [5, 3] },
    ],
    hooks: { setCursor: [showBucket] },
  };
  const data = [
    buckets.map((_, index) => index),
    buckets.map((bucket) => bucket.visits),
    buckets.map((bucket) => bucket.active_members),
  ];
  plot?.destroy();
  $("chart").replaceChildren();
  plotted = report;
  plot = new uPlot(options, data, $("chart"));
  $("chart").setAttribute("aria-label",
    `Chart of visits and active members per ${report.granularity}, from ${report.from} to ${report.to} in ${report.tz}. ` +
    "The arrow keys move between the periods; the figures are also in the table below.");
}

// The cursor's bucket, in the tooltip; none when the cursor left the chart.
function showBucket(u) {
  const tooltip = $("tooltip");
  const index = u.cursor.idx;
  if (index === null || index === undefined) {
    show(tooltip, false);
    return;
  }
  const [start, visits, activeMembers] = [plotted.buckets[index].start, u.data[1][index], u.data[2][index]];
  tooltip.textContent = bucketLabel(plotted.granularity, start, visits, activeMembers);
  Object.assign(tooltip.dataset, { start, visits, activeMembers });
  show(tooltip, true);
  const box = tooltip.parentElement.getBoundingClientRect();
  const left = u.over.getBoundingClientRect().left - box.left + u.valToPos(index, "x");
  tooltip.style.left = `${Math.max(0, Math.min(left - tooltip.offsetWidth / 2, box.width - tooltip.offsetWidth))}px`;
}

function moveCursor(index) {
  plot.setCursor({ left: plot.valToPos(index, "x"), top: plot.valToPos(plot.data[1][index], "y") });
}

function onChartKey(event) {
  if (!plot) return;
  const last = plot.data[0].length - 1;
  const at = plot.cursor.idx ?? 0;
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: last }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  moveCursor(Math.max(0, Math.min(to, last)));
}

function showSeriesTable(report) {
  const rows = report.buckets.map((bucket) => {
    const row = element("tr");
    row.append(element("th", { scope: "row" }, bucket.start));
    for (const field of ["visits", "active_members", "new_members", "tokens_issued"]) {
      row.append(element("td", {}, NUMBER.format(bucket[field])));
    }
    return row;
  });
  $("series-table").tBodies[0].replaceChildren(...rows);
}

// `2024-03-01T14:05:00+05:30` as `2024-03-01 14:05`, in a <time> that keeps it whole.
function timeCell(value) {
  const cell = element("td");
  if (value) cell.append(element("time", { datetime: value }, value.slice(0, 16).replace("T", " ")));
  else cell.textContent = "—";
  return cell;
}

function showMembers(page, selection) {
  const rows = page.members.map((member) => {
    const row = element("tr", { "data-member-id": member.member_id });
    const name = [member.first_name, member.last_name].filter(Boolean).join(" ");
    row.append(element("th", { scope: "row" }, name || `Member ${member.member_id} (no record)`));
    row.append(element("td", {}, NUMBER.format(member.visits)));
    row.append(timeCell(member.last_visit), timeCell(member.joined_at));
    return row;
  });
  $("members-table").tBodies[0].replaceChildren(...rows);
  for (const header of $("members-table").querySelectorAll("th[data-sort]")) {
    const sorts = SORTS[header.dataset.sort];
    const at = sorts.indexOf(selection.sort);
    header.setAttribute("aria-sort", at < 0 ? "none" : selection.sort.startsWith("-") ? "descending" : "ascending");
  }
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.members.length;
  $("page-position").textContent = `${first}–${last} of ${NUMBER.format(page.total)}`;
  $("previous-page").disabled = page.offset === 0;
  $("next-page").disabled = last >= page.total;
}

// ---- The flow ----

let selection = readSelection();
let shown = null;
// How many loads have ended, and how the last one ended, on #report (as
// `data-loads` and `data-state`): what a script or a test waits on.
let loads = 0;
// The newest load asked for: an older one that ends later is dropped.
let newest = 0;

function showProblem(error) {
  const messages = {
    0: "The service cannot be reached.",
    503: "The database is not answering right now.",
  };
  let text = messages[error.status] || `The service could not answer (${error.status}).`;
  if (error.status === 400) {
    const errors = (error.problem.errors || []).map((e) => `${e.parameter}: ${e.detail}`);
    text = `The selection cannot be shown. ${errors.join(" ") || error.message}`;
  } else if (error.problem.detail && error.status !== 0) {
    text += ` ${error.problem.detail}.`;
  }
  $("problem-text").textContent = text;
  show($("problem"), true);
  show($("retry"), error.status !== 400);
}

function signedOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  $("report").dataset.state = "signed-out";
  show($("report"), false);
  show($("sign-out"), false);
  show($("sign-in"), true);
  $("sign-in-error").textContent = message || "";
  show($("sign-in-error"), Boolean(message));
  $("api-key").value = "";
  $("api-key").focus();
}

async function load() {
  const ticket = ++newest;
  showSelection(selection);
  writeSelection(selection);
  const range = rangeOf(selection);
  const days = daysBetween(range.from, range.to);
  const previous = { from: addDays(range.from, -days), to: range.from };
  $("status").textContent = "Loading…";
  $("report").dataset.state = "loading";
  $("content").setAttribute("aria-busy", "true");
  show($("problem"), false);
  try {
    const [report, before, page] = await Promise.all([
      api(usagePath(selection, range), "application/json").then((r) => r.json()),
      api(`/api/v2/usage?${reportQuery(selection, previous, { granularity: "month" })}`, "application/json").then((r) => r.json()),
      api(membersPath(selection, range), "application/json").then((r) => r.json()),
    ]);
    if (ticket !== newest) return;
    shown = { selection: { ...selection }, range, report, page };
    $("range").textContent = `From ${report.from} to ${report.to} (exclusive), in ${report.tz}, by ${report.granularity}`;
    showFigures(report, before, days);
    showChart(report);
    showSeriesTable(report);
    showMembers(page, selection);
    const empty = report.totals.visits === 0;
    show($("empty"), empty);
    $("status").textContent = empty ? "No visits in this period." : "Up to date.";
    $("report").dataset.state = empty ? "empty" : "ready";
    // The browser's timing of the first full render, which the benchmark reads.
    if (loads === 0) performance.mark("dashboard-rendered");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (ticket !== newest) return;
    if (error.status === 401) {
      signedOut(`The key was not accepted: ${error.message}.`);
      return;
    }
    $("status").textContent = "";
    $("report").dataset.state = "failed";
    showProblem(error);
  } finally {
    if (ticket === newest) {
      $("content").removeAttribute("aria-busy");
      $("report").dataset.loads = String(++loads);
    }
  }
}

function fileZone(tz) {
  return tz.replaceAll("/", "-");
}

async function download(path, filename) {
  try {
    const response = await api(path, "text/csv");
    const url = URL.createObjectURL(await response.blob());
    const link = element("a", { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) signedOut(`The key was not accepted: ${error.message}.`);
    else showProblem(error);
  }
}

function startReport() {
  show($("sign-in"), false);
  show($("report"), true);
  show($("sign-out"), true);
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const zones = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
  $("zones").replaceChildren(...["UTC", ...zones].map((zone) => element("option", { value: zone })));

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("api-key").value = "";
    startReport();
  });
  $("sign-out").addEventListener("click", () => signedOut(""));
  $("selection").addEventListener("submit", (event) => {
    event.preventDefault();
    selection = selectionFromControls(selection);
    if (selection.period === "custom" && !(selection.from && selection.to)) {
      const range = rangeOf({ ...selection, period: "last-30-days" });
      selection.from = selection.from || range.from;
      selection.to = selection.to || range.to;
    }
    load();
  });
  $("period").addEventListener("change", () => {
    for (const label of document.querySelectorAll(".custom")) show(label, $("period").value === "custom");
  });
  $("retry").addEventListener("click", load);
  $("members-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-sort]");
    if (!button) return;
    const sorts = SORTS[button.dataset.sort];
    const at = sorts.indexOf(selection.sort);
    selection = { ...selection, sort: sorts[(at + 1) % sorts.length], offset: 0 };
    load();
  });
  $("previous-page").addEventListener("click", () => {
    selection = { ...selection, offset: Math.max(0, selection.offset - MEMBERS_PER_PAGE) };
    load();
  });
  $("next-page").addEventListener("click", () => {
    selection = { ...selection, offset: selection.offset + MEMBERS_PER_PAGE };
    load();
  });
  $("download-series").addEventListener("click", () => {
    if (!shown) return;
    const { selection: s, range } = shown;
    download(`${usagePath(s, range)}&format=csv`,
      `coworking-usage_${range.from}_${range.to}_${s.granularity}_${fileZone(s.tz)}.csv`);
  });
  $("download-members").addEventListener("click", () => {
    if (!shown) return;
    const { selection: s, range, page } = shown;
    const rows = `${s.offset + 1}-${s.offset + page.members.length}`;
    download(`${membersPath(s, range)}&format=csv`,
      `coworking-members_${range.from}_${range.to}_${s.granularity}_${fileZone(s.tz)}_${s.sort.replace("-", "desc-")}_rows-${rows}.csv`);
  });
  const chart = $("chart");
  chart.addEventListener("keydown", onChartKey);
  chart.addEventListener("focus", () => plot && moveCursor(plot.cursor.idx ?? 0));
  chart.addEventListener("blur", () => plot?.setCursor({ left: -10, top: -10 }));
  new ResizeObserver(() => {
    if (plot && plot.width !== chartWidth()) plot.setSize({ width: chartWidth(), height: 260 });
  }).observe(chart);

  if (sessionStorage.getItem(KEY_STORE)) startReport();
  else signedOut("");
});
