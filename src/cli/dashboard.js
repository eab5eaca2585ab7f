// dashboard.js — the dashboard page's script (dashboard.html; the JSON it
// reads: src/cli/dashboard.c).
"use strict";
// Everything shown comes from the node and is set as text (textContent),
// never as markup: a process registered as "<script>" shows as text.
const REFRESH_MS = 1000, HISTORY = 120;
let sortKey = "reductions";
const history = { spawn: [], crash: [], msg: [] };
let last = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// Prometheus text format: "name{labels} value" lines; sum per name, and
// keep labelled values as name|label=value.
function parseMetrics(text) {
  const m = {};
  for (const line of text.split("\n")) {
    if (line === "" || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const key = line.slice(0, sp), v = Number(line.slice(sp + 1));
    const brace = key.indexOf("{");
    const name = brace < 0 ? key : key.slice(0, brace);
    m[name] = (m[name] || 0) + v;
    if (brace >= 0) m[key] = v;
  }
  return m;
}

function human(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}
function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}
function age(ms) {
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(1) + " h";
}

function chart(id, values) {
  const svg = document.getElementById(id);
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) =>
    (i * w / (HISTORY - 1)).toFixed(1) + "," + (h - 2 - v * (h - 4) / max).toFixed(1));
  svg.textContent = "";
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", id === "crash-chart" ? "#c33" : "#36c");
  svg.appendChild(line);
}

function push(series, v) {
  series.push(v);
  if (series.length > HISTORY) series.shift();
}

// m: /metrics parsed; crashed: the crashes the node counted (/api/crashes'
// total: every end its crash reports cover, as the list below shows them,
// whatever the reason's kind: a panic, a limit, a kill, `wisp kill PID boom`).
function showMetrics(m, crashed) {
  const now = performance.now() / 1000;
  const spawned = m.wisp_processes_spawned_total || 0;
  const sent = m.wisp_messages_sent_total || 0;
  const busy = m.wisp_scheduler_busy_seconds_total;
  let busyPct = null;
  if (last !== null) {
    const dt = Math.max(1e-3, now - last.t);
    busyPct = Math.round(100 * (busy - last.busy) / (m.wisp_schedulers || 1) / dt);
    push(history.spawn, Math.max(0, spawned - last.spawned) / dt);
    push(history.crash, Math.max(0, crashed - last.crashed) / dt);
    push(history.msg, Math.max(0, sent - last.sent) / dt);
  }
  last = { t: now, spawned, crashed, sent, busy };
  chart("spawn-chart", history.spawn);
  chart("crash-chart", history.crash);
  chart("msg-chart", history.msg);
  const tail = s => s.length ? human(s[s.length - 1]) : "–";
  document.getElementById("spawn-now").textContent = tail(history.spawn);
  document.getElementById("crash-now").textContent = tail(history.crash);
  document.getElementById("msg-now").textContent = tail(history.msg);

  const cards = document.getElementById("cards");
  cards.textContent = "";
  const card = (label, value) => {
    const c = el("div", label, "card");
    c.id = "card-" + label.replace(/ /g, "-");
    c.appendChild(el("b", value));
    cards.appendChild(c);
  };
  card("processes", human(m.wisp_processes || 0));
  card("spawned", human(spawned));
  card("crashed", human(crashed));
  card("memory", bytes(m.wisp_memory_bytes || 0));
  if (busyPct !== null) card("schedulers busy", busyPct + "%");
}

function showTop(list) {
  const body = document.querySelector("#top tbody");
  body.textContent = "";
  for (const p of list) {
    const tr = el("tr");
    tr.appendChild(el("td", p.pid));
    tr.appendChild(el("td", p.name || ""));
    tr.appendChild(el("td", p.wait ? p.state + " (" + p.wait + ")" : p.state));
    tr.appendChild(el("td", human(p.reductions)));
    tr.appendChild(el("td", bytes(p.memory)));
    tr.appendChild(el("td", p.mailbox));
    tr.appendChild(el("td", age(p.age_ms)));
    body.appendChild(tr);
  }
  for (const th of document.querySelectorAll("#top th[data-sort]"))
    th.classList.toggle("on", th.dataset.sort === sortKey);
}

// The tree: the oldest processes, each under its parent (the process that
// spawned it; one whose parent is not among them is a root). A process
// with children is shown in bold.
function showTree(t) {
  const byParent = new Map(), byPid = new Map();
  for (const p of t.processes) byPid.set(p.pid, p);
  for (const p of t.processes) {
    const up = byPid.has(p.parent) ? p.parent : "";
    if (!byParent.has(up)) byParent.set(up, []);
    byParent.get(up).push(p);
  }
  const build = (parent, depth) => {
    const ul = el("ul");
    for (const p of byParent.get(parent) || []) {
      const kids = byParent.has(p.pid);
      const li = el("li", p.pid + (p.name ? " " + p.name : "") + " — " + p.state,
                    kids ? "sup" : "");
      if (kids && depth < 32) li.appendChild(build(p.pid, depth + 1));
      ul.appendChild(li);
    }
    return ul;
  };
  const tree = document.getElementById("tree");
  tree.textContent = "";
  for (const li of Array.from(build("", 0).children)) tree.appendChild(li);
  document.getElementById("tree-note").textContent =
    t.alive > t.processes.length ?
      "the oldest " + t.processes.length + " of " + t.alive + " processes" : "";
}

// The last crashes the node kept (newest first), and how many there were.
function showCrashes(c) {
  const ul = document.getElementById("crashes");
  ul.textContent = "";
  for (const x of c.crashes) {
    const what = x.reason + (x.text ? ": " + x.text : "");
    ul.appendChild(el("li", x.pid + (x.name ? " " + x.name : "") + " — " + what +
                             " (" + age(x.ago_ms) + " ago)", "dead"));
  }
  document.getElementById("crash-total").textContent =
    c.total > c.crashes.length ? "(the last " + c.crashes.length + " of " + c.total + ")" : "";
}

async function json(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [metrics, top, tree, crashes] = await Promise.all([
      fetch("/metrics", { cache: "no-store" }).then(r => r.text()),
      json("/api/processes?sort=" + sortKey + "&limit=20"),
      json("/api/tree?limit=200"),
      json("/api/crashes"),
    ]);
    showMetrics(parseMetrics(metrics), crashes.total || 0);
    showTop(top.processes);
    showTree(tree);
    showCrashes(crashes);
    document.getElementById("node").textContent = top.node || "";
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "";
  } catch (e) {
    status.textContent = "node unreachable: " + e.message;
    status.className = "down";
  }
}

// One refresh at a time: the next is due a second after the last one
// ended, so a node slow to list (a million processes) is never asked
// again before it answered.
for (const th of document.querySelectorAll("#top th[data-sort]"))
  th.addEventListener("click", () => { sortKey = th.dataset.sort; showTop([]); });
async function loop() {
  await refresh();
  setTimeout(loop, REFRESH_MS);
}
loop();
