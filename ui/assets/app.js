// The page of one meshfs mount. Everything shown comes from the server's
// event stream: "status" is the value 'meshfs status --json' prints, "chat"
// the new lines of the chat log. Text from members only ever goes into
// textContent, never into markup.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let status = null;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function rtt(ns) {
  if (!ns) return "-";
  const ms = ns / 1e6;
  return ms < 10 ? ms.toFixed(2) + " ms" : ms.toFixed(0) + " ms";
}

function duration(s) {
  s = Math.round(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}

function ago(t) {
  return duration(Math.max(0, (Date.now() - Date.parse(t)) / 1000)) + " ago";
}

const online = (p) => p.state === "connected";

// The graph: this member in the middle, the others around it, one line
// per link with its kind and round-trip time.
function renderGraph(st) {
  const g = $("graph");
  g.replaceChildren();
  const cx = 180, cy = 112, rx = 124, ry = 78;
  const peers = st.peers || [];
  const n = Math.max(peers.length, 1);
  // Half a step off the vertical, so two members sit left and right and
  // no link runs through a name.
  const spots = peers.map((p, i) => {
    const a = -Math.PI / 2 + Math.PI / n + (2 * Math.PI * i) / n;
    return { p, x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) };
  });
  for (const s of spots) {
    const cls = online(s.p) ? "link up" : "link down";
    g.append(svg("line", { x1: cx, y1: cy, x2: s.x, y2: s.y, class: cls }));
    if (online(s.p)) {
      g.append(svg("text", { x: (cx + s.x) / 2, y: (cy + s.y) / 2 - 4, class: "linklabel" }, "direct · " + rtt(s.p.rtt_ns)));
    }
  }
  g.append(svg("circle", { cx, cy, r: 14, class: "node self" }));
  g.append(svg("text", { x: cx, y: cy + 28, class: "nodelabel" }, st.self.name + " (you)"));
  for (const s of spots) {
    g.append(svg("circle", { cx: s.x, cy: s.y, r: 11, class: online(s.p) ? "node up" : "node down" }));
    g.append(svg("text", { x: s.x, y: s.y + 24, class: "nodelabel" }, s.p.name));
  }
}

function renderMembers(st) {
  const rows = (st.peers || []).map((p) => {
    const li = el("li", online(p) ? "up" : "down");
    li.dataset.member = p.name;
    li.append(el("span", "dot"), el("strong", "", p.name), el("span", "state", online(p) ? "online" : "offline"));
    const how = online(p) ? "direct " + p.addr + " · " + rtt(p.rtt_ns) : "last seen " + (p.last_seen ? ago(p.last_seen) : "never");
    li.append(el("span", "detail", how));
    if (p.problem) li.append(el("span", "problem", p.problem));
    return li;
  });
  if (rows.length === 0) rows.push(el("li", "empty", "No other members yet."));
  $("members").replaceChildren(...rows);
}

// why says what a delivery waits for, or "" while it moves.
function why(t, peers) {
  if (t.state.startsWith("refused")) return "waits: " + t.state;
  if (t.state === "paused") return "waits: " + t.peer + " is offline";
  if (t.state === "queued") {
    const p = peers.find((p) => p.name === t.peer);
    return p && !online(p) ? "waits: " + t.peer + " is offline" : "queued";
  }
  return "";
}

function transferRow(t, peers, now) {
  const li = el("li", "transfer");
  li.dataset.path = t.path;
  li.dataset.peer = t.peer;
  li.dataset.state = t.state;
  const arrow = t.direction === "receive" ? " ← " : " → ";
  li.append(el("span", "name", t.path), el("span", "peer", arrow + t.peer));
  const done = t.state === "verified";
  const frac = done ? 1 : t.size > 0 ? t.done / t.size : 0;
  const bar = el("div", "bar"), fill = el("div", done ? "fill done" : "fill");
  fill.style.width = (100 * frac).toFixed(1) + "%";
  bar.append(fill);
  li.append(bar);
  let text;
  if (done) {
    text = "delivered, verified · " + bytes(t.size) + " · " + ago(t.finished_at);
  } else if (why(t, peers)) {
    text = why(t, peers);
  } else {
    const secs = (now - Date.parse(t.started_at)) / 1000;
    const rate = secs > 0 ? t.done / secs : 0;
    text = (100 * frac).toFixed(0) + "% of " + bytes(t.size) + " · " + t.state;
    if (rate > 0) text += " · " + bytes(rate) + "/s · ETA " + duration((t.size - t.done) / rate);
  }
  li.append(el("span", done ? "detail ok" : "detail", text));
  return li;
}

function renderTransfers(st) {
  const now = Date.now(), peers = st.peers || [];
  const rows = (st.transfers || []).map((t) => transferRow(t, peers, now));
  for (const u of st.unsent || []) {
    const li = el("li", "transfer");
    li.dataset.path = u.path;
    li.append(el("span", "name", u.path), el("span", "detail", "not sent: " + u.why));
    rows.push(li);
  }
  rows.push(...(st.delivered || []).map((t) => transferRow(t, peers, now)));
  $("transfers").replaceChildren(...rows);
  $("no-transfers").hidden = rows.length > 0;
}

// inboxHref links a file in inbox/ through the page's /inbox/ route.
function inboxHref(path) {
  return "/" + path.split("/").map(encodeURIComponent).join("/");
}

function renderArrivals(st) {
  const rows = (st.arrivals || []).map((a) => {
    const li = el("li", "arrival");
    const link = el("a", "", a.path.replace(/^inbox\//, ""));
    link.href = inboxHref(a.path);
    link.target = "_blank";
    link.rel = "noopener";
    li.append(link, el("span", "detail", "from " + a.peer + " · " + ago(a.at)));
    return li;
  });
  $("arrivals").replaceChildren(...rows);
  $("no-arrivals").hidden = rows.length > 0;
}

function render() {
  if (!status) return;
  $("self").textContent = status.self.name;
  document.title = "meshfs · " + status.self.name;
  renderGraph(status);
  renderMembers(status);
  renderTransfers(status);
  renderArrivals(status);
}

// A chat log line is "[2006-01-02 15:04:05] name: text" or "[...] * event".
const chatLine = /^\[([^\]]*)\] (.*)$/;
const maxChatLines = 500;

function appendChat(lines) {
  const box = $("chat");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  for (const line of lines) {
    const m = chatLine.exec(line);
    const li = el("li", m && m[2].startsWith("* ") ? "event" : "");
    if (m) {
      li.append(el("time", "", m[1].slice(11, 16)), el("span", "", m[2]));
      li.title = m[1];
    } else {
      li.textContent = line;
    }
    box.append(li);
  }
  while (box.children.length > maxChatLines) box.firstChild.remove();
  if (atEnd) box.scrollTop = box.scrollHeight;
}

async function say(ev) {
  ev.preventDefault();
  const input = $("line"), err = $("say-error");
  const text = input.value;
  if (!text.trim()) return;
  const resp = await fetch("/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  }).catch(() => null);
  if (resp && resp.ok) {
    input.value = "";
    err.hidden = true;
    return;
  }
  err.textContent = resp ? "Not sent: " + (await resp.text()) : "Not sent: the node does not answer.";
  err.hidden = false;
}

function connect() {
  const es = new EventSource("/events");
  es.onopen = () => { $("live").textContent = "live"; $("live").className = "badge up"; };
  es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "badge down"; };
  es.addEventListener("status", (e) => { status = JSON.parse(e.data); render(); });
  es.addEventListener("chat", (e) => appendChat(JSON.parse(e.data)));
}

$("say").addEventListener("submit", say);
connect();
setInterval(render, 1000); // ages, rates and ETAs move on between events; no request
