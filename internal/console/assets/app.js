// Weir console: plain JavaScript, no framework. Each page fetches its JSON
// from /api/ and redraws its live part every POLL_MS; forms (message
// browser, offset reset) sit outside the live part and keep their input.
"use strict";

const POLL_MS = 2000;

// esc escapes text for HTML.
function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function num(n) { return n < 0 ? "–" : Number(n).toLocaleString("en-US"); }
function ids(v) { return (v || []).join(", "); }
function bytes(n) {
  if (n < 0) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function ms(n) {
  n = Number(n);
  if (!(n >= 0)) return "never";
  if (n < 1000) return n + " ms";
  if (n < 120000) return (n / 1000).toFixed(1) + " s";
  return Math.round(n / 60000) + " min";
}
const $ = sel => document.querySelector(sel);

async function api(path, opts) {
  const r = await fetch("/api/" + path, opts);
  let body;
  try { body = await r.json(); } catch (e) { throw new Error(path + ": " + r.status + " " + r.statusText); }
  if (!r.ok) throw new Error(body && body.error ? body.error : path + ": " + r.status);
  return body;
}

function showError(err) {
  const e = $("#error");
  if (err) { e.textContent = String(err.message || err); e.hidden = false; } else { e.hidden = true; }
  const s = $("#status");
  s.className = "status" + (err ? " down" : "");
  s.textContent = err ? "not answering: retrying every " + POLL_MS / 1000 + " s" : "updated " + new Date().toLocaleTimeString();
}

// Routing: #/cluster, #/topics, #/topic/NAME, #/groups, #/group/NAME, #/apps.
const pages = {};
let generation = 0;
let timer = null;

function route() {
  const h = location.hash.replace(/^#\/?/, "") || "cluster";
  const i = h.indexOf("/");
  const name = i < 0 ? h : h.slice(0, i);
  const arg = i < 0 ? "" : decodeURIComponent(h.slice(i + 1));
  return {name: pages[name] ? name : "cluster", arg, key: h};
}

function navigate() {
  const r = route();
  const gen = ++generation;
  // The first page's draw is timed from the navigation that loaded the
  // console (performance's time origin), later ones from the hash change.
  const origin = initialLoad ? 0 : performance.now();
  initialLoad = false;
  clearTimeout(timer);
  document.querySelectorAll("[data-nav]").forEach(a => {
    const n = a.dataset.nav;
    a.classList.toggle("active", n === r.name || n === r.name + "s");
  });
  delete document.body.dataset.rendered;
  const page = pages[r.name];
  const view = $("#view");
  view.innerHTML = page.frame(r.arg);
  if (page.setup) page.setup(r.arg);
  let first = true;
  // A page with a #filter box redraws its last data as one types.
  let last = null;
  const filter = $("#filter");
  if (filter) filter.addEventListener("input", () => { if (last) $("#live").innerHTML = page.render(last, r.arg); });
  const tick = async () => {
    try {
      const data = await page.load(r.arg);
      if (gen !== generation) return;
      last = data;
      $("#live").innerHTML = page.render(data, r.arg);
      if (page.after) page.after(data, r.arg);
      showError(null);
      if (first) {
        first = false;
        window.weirRendered = {route: r.key, ms: performance.now() - origin};
        document.body.dataset.rendered = r.key;
      }
    } catch (err) {
      if (gen !== generation) return;
      showError(err);
    }
    if (gen === generation) timer = setTimeout(tick, POLL_MS);
  };
  tick();
}
let initialLoad = true;

// ---- Cluster ----
pages.cluster = {
  frame: () => `<h1>Cluster</h1><div id="live"></div>`,
  load: () => api("cluster"),
  render(c) {
    const ur = c.under_replicated.length, off = c.offline.length;
    let h = `<div class="cards">
      <div class="card"><div class="n" id="cluster-id">${esc(c.cluster_id || "–")}</div><div class="l">cluster id</div></div>
      <div class="card"><div class="n" id="controller">${c.controller < 0 ? "none" : c.controller}</div><div class="l">controller</div></div>
      <div class="card"><div class="n">${c.nodes.filter(n => n.broker && !n.fenced).length}</div><div class="l">live brokers</div></div>
      <div class="card"><div class="n">${c.topics}</div><div class="l">topics</div></div>
      <div class="card"><div class="n">${num(c.partitions)}</div><div class="l">partitions</div></div>
      <div class="card ${ur ? "bad" : ""}"><div class="n" id="under-replicated-count">${ur}</div><div class="l">under-replicated</div></div>
      <div class="card ${off ? "bad" : ""}"><div class="n" id="offline-count">${off}</div><div class="l">offline</div></div>
    </div>`;
    h += `<h2>Brokers and quorum</h2><table id="brokers"><thead><tr><th>Node</th><th>Address</th><th>Rack</th><th>Role</th>
      <th class="num">Leads</th><th>Raft leader</th><th class="num">Term</th><th class="num">Commit</th><th class="num">Applied</th><th>State</th></tr></thead><tbody>`;
    for (const n of c.nodes) {
      const role = [n.voter ? "voter" : "", n.broker ? "broker" : "", n.controller ? "controller" : ""].filter(Boolean).join(", ");
      // A live broker whose quorum view failed (a single broker has no
      // metadata quorum) is still up; a voter that is not a live broker is not.
      const down = !n.broker || n.fenced;
      const state = (n.fenced ? `<span class="pill warn">fenced</span>` : down ? `<span class="pill bad">not a live broker</span>` : `<span class="pill ok">up</span>`) +
        (n.error && !n.fenced ? ` <span class="muted">quorum: ${esc(n.error)}</span>` : "");
      h += `<tr data-node="${n.id}" class="${down ? "bad" : ""}"><td>${n.id}</td><td data-k="addr">${esc(n.broker || "–")}</td>
        <td data-k="rack">${esc(n.rack || "–")}</td><td data-k="role">${role}</td><td class="num" data-k="leaders">${n.leaders}</td>
        <td data-k="leader">${n.leader < 0 ? "–" : n.leader}</td><td class="num">${num(n.term)}</td><td class="num">${num(n.commit)}</td>
        <td class="num">${num(n.applied)}</td><td>${state}</td></tr>`;
    }
    h += `</tbody></table>`;
    const parts = (title, id, list) => {
      let s = `<h2>${title}</h2>`;
      if (!list.length) return s + `<p class="muted" id="${id}">None.</p>`;
      s += `<table id="${id}"><thead><tr><th>Topic</th><th class="num">Partition</th><th>Leader</th><th>Replicas</th><th>ISR</th><th>Error</th></tr></thead><tbody>`;
      for (const p of list) {
        s += `<tr data-t="${esc(p.topic)}" data-p="${p.partition}"><td><a href="#/topic/${encodeURIComponent(p.topic)}">${esc(p.topic)}</a></td>
          <td class="num">${p.partition}</td><td>${p.leader < 0 ? "none" : p.leader}</td><td>${ids(p.replicas)}</td><td>${ids(p.isr)}</td><td>${esc(p.error || "")}</td></tr>`;
      }
      return s + `</tbody></table>`;
    };
    h += parts("Under-replicated partitions", "under-replicated", c.under_replicated);
    h += parts("Offline partitions", "offline", c.offline);
    h += `<h2>Disk use</h2>`;
    if (!c.disk.available) {
      h += `<p class="muted" id="disk">Not available: ${esc(c.disk.reason)}</p>`;
    } else {
      h += `<table id="disk"><thead><tr><th>Broker</th><th>Directory</th><th class="num">Logs</th><th class="num">Volume used</th><th>Error</th></tr></thead><tbody>`;
      for (const d of c.disk.dirs) {
        const used = d.total_bytes > 0 ? Math.round(100 * (d.total_bytes - d.usable_bytes) / d.total_bytes) + "% of " + bytes(d.total_bytes) : "–";
        h += `<tr><td>${d.broker}</td><td>${esc(d.dir)}</td><td class="num">${bytes(d.bytes)}</td><td class="num">${used}</td><td>${esc(d.error || "")}</td></tr>`;
      }
      h += `</tbody></table>`;
    }
    return h;
  },
};

// matches reports whether name contains the #filter box's text.
function matches(name) {
  const f = $("#filter");
  return !f || !f.value || name.toLowerCase().includes(f.value.toLowerCase());
}

// ---- Topics ----
pages.topics = {
  frame: () => `<h1>Topics <input id="filter" placeholder="filter by name" size="24" style="font-size:13px;margin-left:12px"></h1><div id="live"></div>`,
  load: () => api("topics"),
  render(ts) {
    const shown = ts.filter(t => matches(t.topic));
    let h = `<p class="muted">${shown.length} of ${ts.length} topics.</p><table id="topics"><thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">Replication</th>
      <th class="num">Under-replicated</th><th class="num">Offline</th><th class="num">Records</th></tr></thead><tbody>`;
    for (const t of shown) {
      h += `<tr data-topic="${esc(t.topic)}" class="${t.offline ? "bad" : ""}"><td><a href="#/topic/${encodeURIComponent(t.topic)}">${esc(t.topic)}</a>
        ${t.internal ? '<span class="pill">internal</span>' : ""} ${t.error ? `<span class="pill bad">${esc(t.error)}</span>` : ""}</td>
        <td class="num">${t.partitions}</td><td class="num">${t.replication_factor}</td><td class="num">${t.under_replicated}</td>
        <td class="num">${t.offline}</td><td class="num">${num(t.records)}</td></tr>`;
    }
    return h + `</tbody></table>`;
  },
};

pages.topic = {
  frame: name => `<h1>Topic ${esc(name)} <a class="muted" href="#/topics" style="font-size:13px">all topics</a></h1>
    <div id="live"></div>
    <h2>Messages</h2>
    <form class="inline" id="browse">
      <label>Partition <input name="partition" value="all" size="5"></label>
      <label>From <select name="from"><option value="offset">offset</option><option value="time">time (UTC)</option></select></label>
      <label>Offset or time <input name="at" value="0" size="22" placeholder="0 or 2026-01-02T15:04:05Z"></label>
      <label>Key contains <input name="key" size="14"></label>
      <label>Show as <select name="format"><option>auto</option><option>json</option><option>msgpack</option><option>text</option><option>hex</option></select></label>
      <label>Limit <input name="limit" value="50" size="4"></label>
      <button class="primary" type="submit">Read</button>
    </form>
    <div id="messages"></div>`,
  setup(name) {
    $("#browse").addEventListener("submit", async ev => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const q = new URLSearchParams();
      q.set("partition", f.get("partition") || "all");
      if (f.get("from") === "time") q.set("time", f.get("at")); else q.set("offset", f.get("at") || "0");
      if (f.get("key")) q.set("key", f.get("key"));
      q.set("format", f.get("format")); q.set("limit", f.get("limit") || "50");
      read(q);
    });
    // read shows one page of messages; "Read on" asks for the next one,
    // from where each partition's scan stopped.
    const read = async q => {
      const out = $("#messages");
      out.innerHTML = `<p class="muted">Reading…</p>`;
      try {
        const m = await api("topics/" + encodeURIComponent(name) + "/messages?" + q);
        out.innerHTML = renderMessages(m);
        const more = $("#read-on");
        if (more) more.addEventListener("click", () => {
          const next = new URLSearchParams(q);
          next.delete("offset"); next.delete("time");
          next.set("resume", Object.entries(m.next).map(([p, o]) => p + ":" + o).join(","));
          read(next);
        });
      } catch (err) {
        out.innerHTML = `<p class="error">${esc(err.message)}</p>`;
      }
    };
  },
  load: name => api("topics/" + encodeURIComponent(name)),
  render(t) {
    let records = 0, under = 0;
    for (const p of t.partitions) { if (p.end >= 0 && p.start >= 0) records += p.end - p.start; if (p.isr.length < p.replicas.length) under++; }
    let h = `<div class="cards"><div class="card"><div class="n">${t.partitions.length}</div><div class="l">partitions</div></div>
      <div class="card"><div class="n">${num(records)}</div><div class="l">records</div></div>
      <div class="card ${under ? "bad" : ""}"><div class="n">${under}</div><div class="l">under-replicated</div></div></div>
      <div class="cols"><div><h2>Partitions</h2>
      <table id="partitions"><thead><tr><th class="num">Partition</th><th>Leader</th><th class="num">Epoch</th><th>Replicas</th><th>ISR</th>
      <th class="num">Start</th><th class="num">End</th><th class="num">Records</th><th class="num">Size</th></tr></thead><tbody>`;
    const rows = [];
    for (const p of t.partitions) {
      const bad = p.leader < 0 || p.error || p.isr.length < p.replicas.length;
      rows.push(`<tr data-p="${p.partition}"${bad ? ' class="bad"' : ""}><td class="num">${p.partition}</td><td data-k="leader">${p.leader < 0 ? "none" : p.leader}</td>
        <td class="num">${p.leader_epoch}</td><td data-k="replicas">${ids(p.replicas)}</td><td data-k="isr">${ids(p.isr)}</td>
        <td class="num" data-k="start">${p.start}</td><td class="num" data-k="end">${p.end}</td>
        <td class="num">${p.start >= 0 && p.end >= 0 ? num(p.end - p.start) : "–"}</td><td class="num">${t.sizes_available ? bytes(p.bytes) : "n/a"}</td></tr>`);
    }
    h += rows.join("") + `</tbody></table>`;
    if (!t.sizes_available) h += `<p class="muted">Sizes: not available (the brokers do not answer DescribeLogDirs).</p>`;
    h += `</div><div><h2>Configs</h2>`;
    if (t.configs_error) h += `<p class="error">${esc(t.configs_error)}</p>`;
    h += `<table id="configs"><thead><tr><th>Name</th><th>Value</th><th>Source</th></tr></thead><tbody>`;
    for (const c of t.configs) {
      h += `<tr data-config="${esc(c.name)}"><td>${esc(c.name)}</td><td data-k="value">${c.sensitive ? "(sensitive)" : esc(c.value)}</td><td class="muted">${esc(c.source)}</td></tr>`;
    }
    return h + `</tbody></table></div></div>`;
  },
};

function renderMessages(m) {
  const next = Object.entries(m.next).map(([p, o]) => `${p}: ${o}`).join(", ");
  let h = `<p class="muted" id="messages-summary">${m.messages.length} shown, ${m.scanned} scanned${m.idle ? " (no record came for 2 s before the end offsets: the rest may be compacted away or transaction markers)" : m.truncated ? " (stopped at a bound: more follow)" : ""}. Next offsets: ${esc(next || "–")}.
    ${m.truncated ? '<button type="button" id="read-on">Read on</button>' : ""}</p>`;
  if (!m.messages.length) return h;
  h += `<table id="message-list"><thead><tr><th class="num">Partition</th><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead><tbody>`;
  const cell = r => r.null ? `<span class="muted">null</span>` :
    `<span class="pill">${r.format}</span>${r.truncated ? ` <span class="muted">first ${num(r.text.length)} characters of ${num(r.bytes)} bytes</span>` : ""}<pre>${esc(r.text)}</pre>`;
  for (const r of m.messages) {
    h += `<tr data-p="${r.partition}" data-o="${r.offset}"><td class="num">${r.partition}</td><td class="num">${r.offset}</td>
      <td>${esc(r.timestamp)}</td><td data-k="key">${cell(r.key)}</td><td data-k="value" data-format="${r.value.format}">${cell(r.value)}</td>
      <td>${(r.headers || []).map(x => esc(x.key) + "=" + esc(x.value.text)).join("<br>")}</td></tr>`;
  }
  return h + `</tbody></table>`;
}

// ---- Consumer groups ----
pages.groups = {
  frame: () => `<h1>Consumer groups <input id="filter" placeholder="filter by name" size="24" style="font-size:13px;margin-left:12px"></h1><div id="live"></div>`,
  load: () => api("groups"),
  render(all) {
    if (!all.length) return `<p class="muted">No consumer groups.</p>`;
    const gs = all.filter(g => matches(g.group));
    let h = `<p class="muted">${gs.length} of ${all.length} groups.</p><table id="groups"><thead><tr><th>Group</th><th>State</th><th>Protocol</th><th class="num">Coordinator</th><th class="num">Members</th><th class="num">Total lag</th></tr></thead><tbody>`;
    for (const g of gs) {
      h += `<tr data-group="${esc(g.group)}"><td><a href="#/group/${encodeURIComponent(g.group)}">${esc(g.group)}</a></td><td>${esc(g.state)}
        ${g.error ? `<span class="pill bad">${esc(g.error)}</span>` : ""}</td><td>${esc(g.protocol_type)}</td><td class="num">${g.coordinator}</td>
        <td class="num">${g.members}</td><td class="num" data-k="lag">${num(g.total_lag)}</td></tr>`;
    }
    return h + `</tbody></table>`;
  },
};

pages.group = {
  frame: name => `<h1>Group ${esc(name)} <a class="muted" href="#/groups" style="font-size:13px">all groups</a></h1>
    <div id="live"></div>
    <h2>Reset offsets</h2>
    <form class="inline" id="reset">
      <label>Topic <input name="topic" size="16" required></label>
      <label>To <select name="to"><option>earliest</option><option>latest</option><option>offset</option><option>time</option></select></label>
      <label>Offset <input name="offset" value="0" size="8"></label>
      <label>Time (UTC) <input name="time" size="20" placeholder="2026-01-02T15:04:05Z"></label>
      <button class="primary" type="submit" name="dry">Dry run</button>
      <button class="danger" type="submit" name="apply" id="reset-apply">Apply</button>
    </form>
    <p class="muted">A dry run shows what would change and commits nothing; Apply commits (refused while the group has members).</p>
    <div id="reset-result"></div>`,
  setup(name) {
    const form = $("#reset");
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const f = new FormData(form);
      const execute = ev.submitter && ev.submitter.name === "apply";
      if (execute && !confirm(`Commit the new offsets of group ${name} for topic ${f.get("topic")}?`)) return;
      const body = {topic: f.get("topic"), to: f.get("to"), execute};
      if (body.to === "offset") body.offset = Number(f.get("offset"));
      if (body.to === "time") body.time = f.get("time");
      const out = $("#reset-result");
      try {
        const plan = await api("groups/" + encodeURIComponent(name) + "/reset", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
        let h = `<p id="reset-state">${plan.executed ? "Committed these offsets." : "Dry run: nothing committed."}</p>
          <table id="reset-plan"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Current</th><th class="num">New</th></tr></thead><tbody>`;
        for (const o of plan.offsets) {
          h += `<tr data-p="${o.partition}"><td>${esc(o.topic)}</td><td class="num">${o.partition}</td><td class="num" data-k="current">${o.current}</td><td class="num" data-k="new">${o.new}</td></tr>`;
        }
        out.innerHTML = h + `</tbody></table>`;
      } catch (err) {
        out.innerHTML = `<p class="error" id="reset-error">${esc(err.message)}</p>`;
      }
    });
  },
  load: name => api("groups/" + encodeURIComponent(name)),
  render(g) {
    let h = `<div class="cards"><div class="card"><div class="n">${esc(g.state)}</div><div class="l">state</div></div>
      <div class="card"><div class="n">${g.members.length}</div><div class="l">members</div></div>
      <div class="card"><div class="n" id="total-lag">${num(g.total_lag)}</div><div class="l">total lag</div></div>
      <div class="card"><div class="n">${g.coordinator}</div><div class="l">coordinator</div></div></div>
      <h2>Members</h2>`;
    if (!g.members.length) h += `<p class="muted">No members.</p>`;
    else {
      h += `<table id="members"><thead><tr><th>Member</th><th>Client</th><th>Host</th><th>Assigned</th></tr></thead><tbody>`;
      for (const m of g.members) {
        h += `<tr><td>${esc(m.member_id)}${m.instance_id ? " (" + esc(m.instance_id) + ")" : ""}</td><td>${esc(m.client_id)}</td><td>${esc(m.client_host)}</td><td>${esc(m.assigned.join(", "))}</td></tr>`;
      }
      h += `</tbody></table>`;
    }
    h += `<h2>Lag per partition</h2><table id="lag"><thead><tr><th>Topic</th><th class="num">Partition</th><th class="num">Committed</th>
      <th class="num">End</th><th class="num">Lag</th><th>Member</th></tr></thead><tbody>`;
    for (const p of g.partitions) {
      h += `<tr data-t="${esc(p.topic)}" data-p="${p.partition}"><td>${esc(p.topic)}</td><td class="num">${p.partition}</td>
        <td class="num" data-k="committed">${p.committed < 0 ? "–" : p.committed}</td><td class="num" data-k="end">${p.end}</td>
        <td class="num" data-k="lag">${p.error ? `<span class="pill bad">${esc(p.error)}</span>` : p.lag}</td><td>${esc(p.client_id || p.member_id || "–")}</td></tr>`;
    }
    return h + `</tbody></table>`;
  },
};

// ---- Stream applications ----
// The --apps instances are grouped by application id: one card per
// application, with its instances, topology, tasks (of every instance
// reporting) and stores; an instance that does not answer gets a card of
// its own saying so. lastProcessed keeps the previous poll's processed
// counts per application, for a throughput per sub-topology.
const lastProcessed = {};

pages.apps = {
  frame: () => `<h1>Stream applications</h1><div id="live"></div>
    <h2>Key lookup</h2><form class="inline" id="lookup">
      <label>Store<select id="lookup-store"><option value="">no application with a query endpoint</option></select></label>
      <label>Key<input id="lookup-key" size="28" placeholder="a string, or JSON for other key types"></label>
      <button class="primary" type="submit">Look up</button></form>
    <div id="lookup-result" class="muted">Reads through the instance's query endpoint (runtime QueryAddr), which forwards to the instance holding the key.</div>`,
  setup() {
    $("#lookup").addEventListener("submit", ev => { ev.preventDefault(); lookupKey(); });
  },
  // after fills the store list from the instances that have a query
  // endpoint, keeping the choice made.
  after(apps) {
    const opts = [];
    const seen = new Set();
    apps.forEach((a, i) => {
      if (!a.up || !a.application.query_addr) return;
      const queryable = a.application.query_stores || [];
      for (const s of a.application.topology.stores) {
        if (!queryable.includes(s.name)) continue;
        const label = a.application.application + ": " + s.name + " (" + s.kind + ")";
        if (seen.has(label)) continue;
        seen.add(label);
        opts.push({value: JSON.stringify([i, s.name]), label});
      }
    });
    const sel = $("#lookup-store");
    const sig = JSON.stringify(opts);
    if (sel.dataset.sig === sig) return;
    const keep = sel.value;
    sel.dataset.sig = sig;
    sel.innerHTML = opts.length ? opts.map(o => `<option value="${esc(o.value)}">${esc(o.label)}</option>`).join("")
      : `<option value="">no application with a query endpoint</option>`;
    if (opts.some(o => o.value === keep)) sel.value = keep;
  },
  load: () => api("apps"),
  render(apps) {
    if (!apps.length) return `<p class="muted">No application given: start the console with --apps http://HOST:PORT (an application's MetricsAddr).</p>`;
    const byApp = new Map();
    for (const a of apps) {
      if (!a.up) continue;
      const id = a.application.application;
      if (!byApp.has(id)) byApp.set(id, []);
      byApp.get(id).push(a);
    }
    let h = "";
    for (const [id, instances] of byApp) h += renderApp(id, instances);
    apps.forEach((a, i) => {
      if (!a.up) h += `<div class="app" data-down="${i}"><h2>${esc(a.url)} <span class="pill bad" data-k="state">down</span></h2><p class="error">${esc(a.error)}</p></div>`;
    });
    return h;
  },
};

function renderApp(id, instances) {
  const ds = instances.map(a => a.application);
  const d0 = ds[0];
  const sum = f => ds.reduce((n, d) => n + f(d), 0);
  const processed = {}, dropped = {};
  for (const d of ds) {
    for (const [k, v] of Object.entries(d.processed)) processed[k] = (processed[k] || 0) + v;
    for (const [k, v] of Object.entries(d.dropped)) dropped[k] = (dropped[k] || 0) + v;
  }
  const now = Math.max(...ds.map(d => Date.parse(d.now)));
  const prev = lastProcessed[id];
  lastProcessed[id] = {at: now, processed};
  const rate = sub => {
    if (!prev || now <= prev.at) return "–";
    return (((processed[sub] || 0) - (prev.processed[sub] || 0)) / ((now - prev.at) / 1000)).toFixed(1);
  };
  const tasks = [];
  instances.forEach((a, i) => a.application.tasks.forEach(t => tasks.push({...t, instance: i})));
  tasks.sort((x, y) => x.id.replace(/-standby$/, "").localeCompare(y.id.replace(/-standby$/, ""), "en", {numeric: true}) || x.type.localeCompare(y.type));
  const active = tasks.filter(t => t.type === "active").length;
  const droppedTotal = Object.values(dropped).reduce((x, y) => x + y, 0);
  const stalled = ds.some(d => d.commit_stalled);
  const since = Math.max(...ds.map(d => d.since_commit_ms));
  let h = `<div class="app" data-app="${esc(id)}"><h2>${esc(id)} <span class="pill ok" data-k="state">up</span>
    <span class="muted" style="font-weight:normal">${instances.length} instance${instances.length > 1 ? "s" : ""} reporting</span></h2>
    <div class="cards"><div class="card"><div class="n">${active}</div><div class="l">active tasks</div></div>
    <div class="card"><div class="n">${tasks.length - active}</div><div class="l">standby tasks</div></div>
    <div class="card ${stalled ? "bad" : ""}"><div class="n">${ms(since)}</div><div class="l">since the oldest last commit attempt${stalled ? " (stalled)" : ""}</div></div>
    <div class="card"><div class="n">${num(sum(d => d.commits))}</div><div class="l">commits completed</div></div>
    <div class="card ${droppedTotal ? "bad" : ""}"><div class="n" data-k="dropped">${num(droppedTotal)}</div><div class="l">late/dropped records${droppedTotal ? ": " + esc(Object.entries(dropped).map(([k, v]) => k + " " + v).join(", ")) : ""}</div></div>
    <div class="card"><div class="n">${num(sum(d => d.deserialization_errors))}</div><div class="l">deserialization errors</div></div></div>
    <h2>Instances</h2><table data-k="reporting"><thead><tr><th>#</th><th>Instance</th><th>Metrics</th><th class="num">Active</th><th class="num">Standby</th><th class="num">Since last commit</th><th class="num">Commits</th></tr></thead><tbody>`;
  instances.forEach((a, i) => {
    const d = a.application, act = d.tasks.filter(t => t.type === "active").length;
    h += `<tr data-instance="${i}"><td>${i + 1}</td><td>${esc(d.instance)}${d.busy ? ' <span class="pill warn">busy: tasks not listed</span>' : ""}</td><td>${esc(a.url)}</td>
      <td class="num">${act}</td><td class="num">${d.tasks.length - act}</td><td class="num">${ms(d.since_commit_ms)}${d.commit_stalled ? ' <span class="pill bad">stalled</span>' : ""}</td><td class="num">${num(d.commits)}</td></tr>`;
  });
  h += `</tbody></table>${renderAppGroup(instances[0].group)}
    <h2>Topology</h2><div class="graph">${topologySVG(d0.topology)}</div>
    <details><summary>Topology.Describe()</summary><pre data-k="describe">${esc(d0.topology.text)}</pre></details>
    <h2>Tasks</h2>`;
  h += `<table data-k="tasks"><thead><tr><th>Task</th><th>Type</th><th>#</th><th>Partitions</th><th class="num">Input lag</th><th class="num">Processed</th><th class="num">Dropped</th><th>Restore</th></tr></thead><tbody>`;
  for (const t of tasks) {
    const st = t.stores.map(s => {
      const total = s.restored + s.remaining;
      const pct = total ? Math.round(100 * s.restored / total) : 100;
      return `<div class="nowrap">${esc(s.name)} <span class="bar"><i style="width:${pct}%"></i></span> ${s.remaining ? num(s.remaining) + " left" : "restored"}</div>`;
    }).join("");
    h += `<tr data-task="${esc(t.id)}" data-instance="${t.instance}"><td>${esc(t.id.replace(/-standby$/, ""))}</td><td>${t.type === "active" ? '<span class="pill ok">active</span>' : '<span class="pill">standby</span>'}</td>
      <td>${t.instance + 1}</td><td>${esc(t.partitions.join(", "))}</td><td class="num">${t.type === "active" ? num(t.input_lag) : "–"}</td><td class="num">${num(t.processed)}</td>
      <td class="num">${num(t.dropped)}</td><td>${st || '<span class="muted">no stores</span>'}</td></tr>`;
  }
  h += `</tbody></table><div class="cols"><div><h2>State stores</h2><table data-k="stores"><thead><tr><th>Store</th><th>Kind</th><th>Changelog</th></tr></thead><tbody>`;
  for (const s of d0.topology.stores) {
    h += `<tr data-store="${esc(s.name)}"><td>${esc(s.name)}</td><td>${esc(s.kind)}${s.in_memory ? " (in memory)" : ""}${s.global ? " (global)" : ""}</td><td>${esc(s.changelog || "none")}</td></tr>`;
  }
  h += `</tbody></table></div><div><h2>Throughput per sub-topology</h2><table data-k="throughput"><thead><tr><th>Sub-topology</th><th class="num">Processed</th><th class="num">Records/s</th></tr></thead><tbody>`;
  for (const s of d0.topology.subtopologies) {
    h += `<tr><td>${esc(s.id)}${s.global ? " (global)" : ""}</td><td class="num">${num(processed[s.id] || 0)}</td><td class="num">${rate(String(s.id))}</td></tr>`;
  }
  return h + `</tbody></table></div></div></div>`;
}

// lookupKey reads the chosen store's key through the console's
// /api/apps/I/lookup and shows the answer: the value (or the windows,
// or the sessions), where it came from, or why there is none.
async function lookupKey() {
  const out = $("#lookup-result");
  const v = $("#lookup-store").value;
  if (!v) { out.textContent = "No store to look up: give --apps an instance started with a query endpoint."; return; }
  const [i, store] = JSON.parse(v);
  const key = $("#lookup-key").value;
  out.className = "muted";
  out.textContent = "Looking up…";
  delete out.dataset.status;
  try {
    const r = await api(`apps/${i}/lookup?store=${encodeURIComponent(store)}&key=${encodeURIComponent(key)}`);
    const a = r.answer || {};
    out.dataset.status = r.status;
    let h = "";
    if (r.status === 200) {
      const where = `from ${esc(a.instance)}, partition ${a.partition}` + (a.forwarded ? " (forwarded)" : "") +
        (a.standby ? `, a standby ${a.lag} records behind` : "");
      const value = a.windows ? a.windows.map(w => ({start: w.start, value: w.value}))
        : a.sessions ? a.sessions : a.value;
      h = `<p><b>${esc(store)}</b> [${esc(JSON.stringify(a.key))}] <span class="muted">${where}</span></p><pre id="lookup-value">${esc(JSON.stringify(value, null, 1))}</pre>`;
    } else if (r.status === 404) {
      h = `<p id="lookup-missing"><b>${esc(store)}</b> has no key ${esc(JSON.stringify(a.key))} <span class="muted">(asked ${esc(a.instance)}, partition ${a.partition})</span></p>`;
    } else if (r.status === 503) {
      h = `<p class="error">Not available right now (${esc(a.reason || "retry")}): ${esc(a.error)}</p>`;
    } else {
      h = `<p class="error">${r.status}: ${esc(a.error || JSON.stringify(a))}</p>`;
    }
    out.className = "";
    out.innerHTML = h;
  } catch (err) {
    out.className = "error";
    out.dataset.status = "error";
    out.textContent = String(err.message || err);
  }
}

// renderAppGroup lists the application's instances as its consumer group
// shows them: those the console was not given too.
function renderAppGroup(g) {
  if (!g) return "";
  if (g.error) return `<p class="error">group ${esc(g.group)}: ${esc(g.error)}</p>`;
  let h = `<p class="muted">Consumer group <a href="#/group/${encodeURIComponent(g.group)}">${esc(g.group)}</a>: ${esc(g.state)}, ${g.members.length} members.</p>`;
  if (!g.members.length) return h;
  h += `<table data-k="instances"><thead><tr><th>Member</th><th>Host</th><th>Input partitions</th></tr></thead><tbody>`;
  for (const m of g.members) {
    h += `<tr data-member="${esc(m.member_id)}"><td>${esc(m.member_id)}</td><td>${esc(m.client_host)}</td><td data-k="assigned">${esc(m.assigned.join(", "))}</td></tr>`;
  }
  return h + `</tbody></table>`;
}

// topologySVG draws each sub-topology left to right: a node's column is
// its longest distance from a source. Its stores sit in a row beneath,
// each under the first processor using it, joined to their processors by
// dashed lines.
let svgCount = 0;
function topologySVG(topo) {
  const appIndex = ++svgCount;
  const W = 180, H = 40, GX = 60, GY = 16, PAD = 16;
  const byName = {};
  for (const n of topo.nodes) byName[n.name] = n;
  const pos = {};
  let y0 = PAD, width = 0;
  const parts = [];
  for (const st of topo.subtopologies) {
    const inSub = new Set(st.nodes);
    const depth = {};
    const d = name => {
      if (depth[name] !== undefined) return depth[name];
      depth[name] = 0; // guards a cycle, which a built topology has not
      const ps = (byName[name].parents || []).filter(p => inSub.has(p));
      depth[name] = ps.length ? Math.max(...ps.map(d)) + 1 : 0;
      return depth[name];
    };
    const cols = [];
    for (const name of st.nodes) { const c = d(name); (cols[c] = cols[c] || []).push(name); }
    const rows = Math.max(1, ...cols.map(c => (c || []).length));
    parts.push(`<text x="${PAD}" y="${y0 + 12}" class="sub">${st.global ? "Global sub-topology" : "Sub-topology"} ${esc(st.id)}</text>`);
    const top = y0 + 20;
    cols.forEach((names, c) => (names || []).forEach((name, r) => { pos[name] = {x: PAD + c * (W + GX), y: top + r * (H + GY)}; }));
    let ncols = cols.length;
    const storeY = top + rows * (H + GY) + 10;
    const taken = new Set();
    for (const s of st.stores) {
      const users = st.nodes.filter(n => (byName[n].stores || []).includes(s)).map(n => pos[n].x);
      let c = users.length ? Math.round((Math.min(...users) - PAD) / (W + GX)) : 0;
      while (taken.has(c)) c++;
      taken.add(c);
      ncols = Math.max(ncols, c + 1);
      pos["store:" + s] = {x: PAD + c * (W + GX), y: storeY};
    }
    const h = (st.stores.length ? storeY + H : top + rows * (H + GY) - GY) - top;
    const w = ncols * (W + GX) - GX;
    parts.push(`<rect class="frame" x="${PAD - 8}" y="${top - 8}" width="${w + 16}" height="${h + 16}" rx="6"/>`);
    width = Math.max(width, w + 2 * PAD);
    y0 = top + h + 28;
  }
  const edges = [], boxes = [];
  const short = s => s.length > 26 ? s.slice(0, 25) + "…" : s;
  for (const n of topo.nodes) {
    const p = pos[n.name]; if (!p) continue;
    for (const c of n.children || []) {
      const q = pos[c]; if (!q) continue;
      const x1 = p.x + W, y1 = p.y + H / 2, x2 = q.x, y2 = q.y + H / 2;
      edges.push(`<path class="edge" data-from="${esc(n.name)}" data-to="${esc(c)}" marker-end="url(#arrow${appIndex})" d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2 - 2},${y2}"/>`);
    }
    for (const s of n.stores || []) {
      const q = pos["store:" + s]; if (!q) continue;
      const x1 = p.x + W / 2, y1 = p.y + H, x2 = q.x + W / 2, y2 = q.y;
      edges.push(`<path class="storeedge" data-from="${esc(n.name)}" data-store="${esc(s)}" d="M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2}"/>`);
    }
    const sub = n.kind === "Processor" ? "processor" : (n.kind === "Source" ? "from " : "to ") + (n.topics.length ? n.topics.join(", ") : "a topic chosen per record");
    boxes.push(`<g class="node ${esc(n.kind)}" data-name="${esc(n.name)}" data-kind="${esc(n.kind)}"><title>${esc(n.name)}: ${esc(sub)}</title>
      <rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="5"/><text x="${p.x + 8}" y="${p.y + 16}">${esc(short(n.name))}</text>
      <text class="sub" x="${p.x + 8}" y="${p.y + 31}">${esc(short(sub))}</text></g>`);
  }
  for (const s of topo.stores) {
    const p = pos["store:" + s.name]; if (!p) continue;
    boxes.push(`<g class="store" data-store="${esc(s.name)}"><title>${esc(s.name)} (${esc(s.kind)})</title><rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="14"/>
      <text x="${p.x + 10}" y="${p.y + 16}">${esc(short(s.name))}</text><text class="sub" x="${p.x + 10}" y="${p.y + 31}">${esc(s.kind)} store</text></g>`);
  }
  const height = y0;
  return `<svg data-k="topology" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
    <defs><marker id="arrow${appIndex}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#7a8aa0"/></marker></defs>
    ${parts.join("")}${edges.join("")}${boxes.join("")}</svg>`;
}

window.addEventListener("hashchange", navigate);
navigate();
