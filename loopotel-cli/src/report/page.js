// loopotel report: the run list (sort, filter, pages) and a run's detail (span waterfall,
// scores and tokens per iteration, a span's attributes, events and captured content).
// Data comes from the page's inline JSON; nothing is fetched. Text is set with textContent,
// never parsed as HTML.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  // List row fields (see data.rs, `row`).
  const SEQ = 0, ID = 1, ENV = 2, TASK = 3, SEED = 4, OUTCOME = 5, REASON = 6, ITS = 7,
    SCORE = 8, LES = 9, TOKENS = 10, COST = 11, DUR = 12, ERRS = 13, BATCH = 14, SOURCE = 15,
    DETAIL = 16;
  const SVG = "http://www.w3.org/2000/svg";
  const COLUMNS = [
    ["#", SEQ, "r"], ["run", ID, ""], ["env", ENV, ""], ["task", TASK, ""], ["seed", SEED, "r"],
    ["outcome", OUTCOME, ""], ["termination", REASON, ""], ["its", ITS, "r"],
    ["score", SCORE, "r"], ["LES", LES, "r"], ["tokens", TOKENS, "r"], ["cost", COST, "r"],
    ["duration", DUR, "r"], ["errors", ERRS, "r"],
  ];
  const KINDS = ["loop", "iteration", "worker", "evaluator", "llm", "tool", "agent",
    "embeddings", "env", "http"];
  const state = { sort: SEQ, asc: true, page: 0, size: 200, selected: null };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms >= 60000) return (ms / 60000).toFixed(1) + "m";
    if (ms >= 1000) return (ms / 1000).toFixed(2) + "s";
    if (ms >= 1) return ms.toFixed(ms >= 100 ? 0 : 1) + "ms";
    return (ms * 1000).toFixed(0) + "µs";
  }
  function fmtNum(x, digits) {
    return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
  }
  function fmtCost(x) {
    return x === null || x === undefined ? "–" : "$" + Number(x).toFixed(x >= 1 ? 2 : 4);
  }
  function outcomeClass(o) {
    return o === "success" ? "ok" : o === "failure" ? "bad" :
      (o === "cancelled" || o === "timeout" || o === "error") ? "warn" : "other";
  }
  function short(id) {
    return String(id).replace(/^ltf-/, "").slice(0, 8);
  }

  // ---- run list -------------------------------------------------------------------------
  const rows = D.rows;
  function fillSelect(id, label, values) {
    const s = document.getElementById(id);
    s.appendChild(el("option", { value: "" }, "all " + label));
    for (const v of values) s.appendChild(el("option", { value: v }, v));
  }
  const distinct = (i) => [...new Set(rows.map((r) => String(r[i])))].sort();
  fillSelect("f-env", "envs", distinct(ENV));
  fillSelect("f-task", "tasks", distinct(TASK));
  fillSelect("f-outcome", "outcomes", distinct(OUTCOME));
  // Tens of thousands of table rows at once would make the page slow: pages only, then.
  if (rows.length > 5000) document.querySelector("#f-size option[value=all]").remove();

  const thead = document.querySelector("#runs thead");
  const headRow = el("tr");
  for (const [label, i, cls] of COLUMNS) {
    const th = el("th", { "data-col": i, class: cls }, label);
    th.addEventListener("click", () => {
      if (state.sort === i) state.asc = !state.asc;
      else { state.sort = i; state.asc = i === SEQ || i === ENV || i === TASK || i === ID; }
      state.page = 0;
      renderList();
    });
    headRow.appendChild(th);
  }
  thead.appendChild(headRow);

  function filtered() {
    const text = document.getElementById("f-text").value.trim().toLowerCase();
    const env = document.getElementById("f-env").value;
    const task = document.getElementById("f-task").value;
    const outcome = document.getElementById("f-outcome").value;
    const seed = document.getElementById("f-seed").value.trim();
    const detailOnly = document.getElementById("f-detail").checked;
    return rows.filter((r) =>
      (!env || r[ENV] === env) && (!task || r[TASK] === task) &&
      (!outcome || r[OUTCOME] === outcome) && (!seed || String(r[SEED]) === seed) &&
      (!detailOnly || r[DETAIL] !== null) &&
      (!text || [r[ID], r[ENV], r[TASK], r[REASON], r[BATCH], r[SOURCE]].some(
        (v) => v !== null && String(v).toLowerCase().includes(text))));
  }
  function compare(a, b) {
    const x = a[state.sort], y = b[state.sort];
    if (x === y) return a[SEQ] - b[SEQ];
    if (x === null) return 1;
    if (y === null) return -1;
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return state.asc ? c : -c;
  }
  function renderList() {
    const list = filtered().sort(compare);
    const size = state.size === "all" ? Math.max(list.length, 1) : state.size;
    const pages = Math.max(1, Math.ceil(list.length / size));
    state.page = Math.min(state.page, pages - 1);
    const shown = list.slice(state.page * size, (state.page + 1) * size);
    const tbody = document.querySelector("#runs tbody");
    tbody.replaceChildren();
    for (const r of shown) {
      const tr = el("tr", { "data-run-id": r[ID], "data-detail": r[DETAIL] === null ? "no" : "yes" });
      if (state.selected === r[ID]) tr.classList.add("selected");
      const cells = [
        [r[SEQ] + 1, "r"], [short(r[ID]), "id"], [r[ENV], ""], [r[TASK], ""],
        [r[SEED] === null ? "–" : r[SEED], "r"], [null, ""], [r[REASON], ""], [r[ITS], "r"],
        [fmtNum(r[SCORE], 2), "r"], [fmtNum(r[LES], 2), "r"], [r[TOKENS], "r"],
        [fmtCost(r[COST]), "r"], [fmtMs(r[DUR]), "r"], [r[ERRS] || "", "r"],
      ];
      cells.forEach(([v, cls], i) => {
        const td = el("td", cls ? { class: cls } : {}, v);
        if (i === 5) td.appendChild(el("span", { class: "pill " + outcomeClass(r[OUTCOME]) }, r[OUTCOME]));
        if (i === 1) td.title = r[ID];
        tr.appendChild(td);
      });
      tr.addEventListener("click", () => showRun(r));
      tbody.appendChild(tr);
    }
    for (const th of headRow.children) {
      const on = Number(th.dataset.col) === state.sort;
      th.classList.toggle("sorted", on);
      th.classList.toggle("asc", on && state.asc);
    }
    const count = document.getElementById("count");
    count.textContent = list.length + " of " + rows.length + " listed runs match" +
      (rows.length < D.runs_total ? " (" + D.runs_total + " runs in all; the list holds problem runs first, then a sample)" : "") +
      "; click a run for its detail.";
    count.dataset.matching = String(list.length);
    const pager = document.getElementById("pager");
    pager.replaceChildren();
    const prev = el("button", {}, "‹ previous"), next = el("button", {}, "next ›");
    prev.disabled = state.page === 0;
    next.disabled = state.page >= pages - 1;
    prev.addEventListener("click", () => { state.page--; renderList(); });
    next.addEventListener("click", () => { state.page++; renderList(); });
    pager.append(prev, el("span", { class: "meta" }, "page " + (state.page + 1) + " of " + pages), next);
  }
  for (const id of ["f-text", "f-seed"]) {
    document.getElementById(id).addEventListener("input", () => { state.page = 0; renderList(); });
  }
  for (const id of ["f-env", "f-task", "f-outcome", "f-detail"]) {
    document.getElementById(id).addEventListener("change", () => { state.page = 0; renderList(); });
  }
  document.getElementById("f-size").addEventListener("change", (e) => {
    state.size = e.target.value === "all" ? "all" : Number(e.target.value);
    state.page = 0;
    renderList();
  });

  // ---- one run --------------------------------------------------------------------------
  function showRun(r) {
    state.selected = r[ID];
    for (const tr of document.querySelectorAll("#runs tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.runId === r[ID]);
    }
    const sec = document.getElementById("run");
    sec.hidden = false;
    sec.replaceChildren();
    sec.dataset.runId = r[ID];
    const name = r[DETAIL] === null ? "" : D.details[r[DETAIL]].name + " · ";
    const h = el("h2", {}, "Run " + (r[SEQ] + 1) + " · " + name + r[ENV] + " / " + r[TASK] +
      (r[SEED] === null ? "" : " / seed " + r[SEED]));
    h.appendChild(el("code", {}, r[ID]));
    sec.appendChild(h);
    sec.appendChild(el("p", { class: "meta" },
      r[OUTCOME] + " (" + (r[REASON] || "no reason") + ") · " + r[ITS] + " iterations · score " +
      fmtNum(r[SCORE], 2) + " · LES " + fmtNum(r[LES], 2) + " · " + r[TOKENS] + " tokens · " +
      fmtCost(r[COST]) + " · " + fmtMs(r[DUR]) + (r[ERRS] ? " · " + r[ERRS] + " span(s) with errors" : "") +
      " · " + r[SOURCE] + (r[BATCH] ? " · batch " + r[BATCH] : "")));
    if (r[DETAIL] === null) {
      sec.appendChild(el("p", { class: "note", id: "no-detail" },
        "This run's spans are not embedded in the report (at most " + D.limits.detail +
        " runs are: problem runs first, then a sample). `loopotel show FILE --run " + r[ID] +
        "` draws it in the terminal, or make the report with a larger --detail-limit."));
      sec.scrollIntoView({ block: "start" });
      return;
    }
    const d = D.details[r[DETAIL]];
    if (d.spans.length < d.spans_total) {
      sec.appendChild(el("p", { class: "note" }, "Showing " + d.spans.length + " of " +
        d.spans_total + " spans (the loop and iteration spans first, then the earliest others)."));
    }
    const charts = el("div", { class: "run-charts" });
    charts.appendChild(scoreChart(d));
    charts.appendChild(tokenChart(d));
    sec.appendChild(charts);
    sec.appendChild(el("h3", {}, "Timeline"));
    const legend = el("div", { class: "legend" });
    const used = new Set(d.spans.map((s) => s.c));
    for (const k of KINDS) {
      if (!used.has(k)) continue;
      const item = el("span", {});
      item.appendChild(el("i", { class: "k-" + k }));
      item.appendChild(document.createTextNode(k));
      legend.appendChild(item);
    }
    legend.appendChild(el("span", {}, "● event   ✗ error   ✂ ended early (dropped, cancelled, panic)"));
    sec.appendChild(legend);
    sec.appendChild(waterfall(d, Math.max(900, sec.clientWidth - 36)));
    const insp = el("div", { id: "inspector" });
    sec.appendChild(insp);
    if (d.spans.length) inspect(d, 0);
    sec.scrollIntoView({ block: "start" });
    if (location.hash !== "#run=" + r[ID]) history.replaceState(null, "", "#run=" + r[ID]);
  }

  // Spans in tree order (parents before children, siblings by start), with their depth.
  function treeOrder(spans) {
    const kids = new Map();
    const roots = [];
    spans.forEach((s, i) => {
      if (s.p === null || s.p === undefined || s.p === i) roots.push(i);
      else { if (!kids.has(s.p)) kids.set(s.p, []); kids.get(s.p).push(i); }
    });
    const out = [];
    const seen = new Set();
    const stack = roots.slice().reverse().map((i) => [i, 0]);
    while (stack.length) {
      const [i, depth] = stack.pop();
      if (seen.has(i)) continue;
      seen.add(i);
      out.push([i, depth]);
      const k = kids.get(i) || [];
      for (let j = k.length - 1; j >= 0; j--) stack.push([k[j], depth + 1]);
    }
    spans.forEach((_, i) => { if (!seen.has(i)) out.push([i, 0]); });
    return out;
  }

  function waterfall(d, W) {
    const box = el("div", { class: "waterfall" });
    const order = treeOrder(d.spans);
    const NAME = 300, PAD = 64, ROW = 18, TOP = 22;
    const plot = W - NAME - PAD;
    const total = Math.max(d.dur, ...d.spans.map((s) => s.s + (s.d || 0)), 1e-6);
    const x = (t) => NAME + (t / total) * plot;
    const svg = sv("svg", { width: W, height: TOP + order.length * ROW + 4, viewBox: "0 0 " + W + " " + (TOP + order.length * ROW + 4), class: "waterfall-svg" });
    for (let q = 0; q <= 4; q++) {
      const t = (total * q) / 4;
      svg.appendChild(sv("line", { class: "grid-line", x1: x(t), x2: x(t), y1: 14, y2: TOP + order.length * ROW }));
      svg.appendChild(sv("text", { x: x(t), y: 11, "text-anchor": q === 0 ? "start" : q === 4 ? "end" : "middle" }, fmtMs(t)));
    }
    order.forEach(([i, depth], row) => {
      const s = d.spans[i];
      const y = TOP + row * ROW;
      const g = sv("g", { class: "row", "data-span": i });
      g.appendChild(sv("rect", { class: "hit", x: 0, y: y, width: W, height: ROW }));
      const label = "  ".repeat(Math.min(depth, 12)) + s.n;
      const name = sv("text", { class: "name", x: 4 + Math.min(depth, 12) * 12, y: y + 13 }, s.n.length > 44 - depth * 2 ? s.n.slice(0, Math.max(8, 43 - depth * 2)) + "…" : s.n);
      name.appendChild(sv("title", {}, label.trim()));
      g.appendChild(name);
      const open = s.d === null || s.d === undefined;
      const end = open ? total : s.s + s.d;
      const bx = x(s.s), bw = Math.max(x(end) - bx, 2);
      const cls = ["span", "k-" + s.c];
      if (s.err !== null && s.err !== undefined) cls.push("err");
      if (open) cls.push("open");
      if (s.end !== null && s.end !== undefined) cls.push("cut");
      const bar = sv("rect", { class: cls.join(" "), x: bx, y: y + 3, width: bw, height: ROW - 6 });
      bar.appendChild(sv("title", {}, s.n + " · " + (open ? "never ended" : fmtMs(s.d)) +
        (s.err ? " · error " + s.err : "") + (s.end ? " · ended: " + s.end : "")));
      g.appendChild(bar);
      for (const ev of s.ev) {
        const c = sv("circle", { class: "event", cx: x(ev[0]), cy: y + ROW / 2, r: 3 });
        c.appendChild(sv("title", {}, ev[1] + " at " + fmtMs(ev[0])));
        g.appendChild(c);
      }
      let mark = open ? "open" : fmtMs(s.d);
      let tx = Math.min(bx + bw + 4, W - PAD + 2);
      g.appendChild(sv("text", { class: "dur", x: tx, y: y + 13 }, mark));
      if (s.err !== null && s.err !== undefined) {
        g.appendChild(sv("text", { class: "mark-err", x: W - 14, y: y + 13 }, "✗"));
      } else if (s.end !== null && s.end !== undefined) {
        g.appendChild(sv("text", { class: "mark-cut", x: W - 14, y: y + 13 }, "✂"));
      }
      g.addEventListener("click", () => inspect(d, i));
      svg.appendChild(g);
    });
    box.appendChild(svg);
    return box;
  }

  function valueText(v) {
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function attrTable(pairs) {
    const t = el("table");
    for (const [k, v] of pairs) {
      const tr = el("tr");
      tr.appendChild(el("td", {}, k));
      tr.appendChild(el("td", {}, valueText(v)));
      t.appendChild(tr);
    }
    return t;
  }
  function inspect(d, i) {
    const s = d.spans[i];
    for (const g of document.querySelectorAll(".waterfall .row")) {
      g.classList.toggle("selected", Number(g.dataset.span) === i);
    }
    const box = document.getElementById("inspector");
    box.replaceChildren();
    box.dataset.span = s.id;
    box.appendChild(el("h3", {}, s.n + " · " + s.k + (s.c !== s.k ? " (" + s.c + ")" : "") + " · " +
      (s.d === null || s.d === undefined ? "never ended" : fmtMs(s.d)) + " · starts at " + fmtMs(s.s) +
      " · span " + s.id));
    if (s.err) box.appendChild(el("p", { class: "skipped" }, "error: " + valueText(s.err)));
    if (s.end) box.appendChild(el("p", { class: "note" }, "ended early: " + valueText(s.end)));
    box.appendChild(el("h3", {}, "Attributes (" + s.a.length + ")"));
    box.appendChild(attrTable(s.a));
    if (s.ct.length) {
      const det = el("details", { class: "content" });
      det.appendChild(el("summary", {}, "Captured content (" + s.ct.length + ")"));
      det.appendChild(attrTable(s.ct));
      box.appendChild(det);
    }
    box.appendChild(el("h3", {}, "Events (" + s.evn + (s.evn > s.ev.length ? ", first " + s.ev.length + " shown" : "") + ")"));
    for (const [t, name, attrs] of s.ev) {
      const det = el("details", {});
      det.appendChild(el("summary", {}, fmtMs(t) + " · " + name));
      det.appendChild(attrTable(attrs));
      box.appendChild(det);
    }
  }

  // Goal score and LES per iteration.
  function scoreChart(d) {
    const fig = el("figure", { class: "chart", "data-chart": "scores" });
    fig.appendChild(el("figcaption", {}, "Goal score and LES per iteration"));
    const pts = d.its;
    if (!pts.length) { fig.appendChild(el("p", { class: "none" }, "no iterations recorded")); return fig; }
    const W = 400, H = 170, L = 34, R = 10, T = 10, B = 24;
    const vals = pts.flatMap((p) => [p[1], p[2]]).filter((v) => v !== null);
    if (d.target !== null && d.target !== undefined) vals.push(d.target);
    const hi = Math.max(1, ...vals), lo = Math.min(0, ...vals);
    const n0 = pts[0][0], n1 = pts[pts.length - 1][0];
    const x = (n) => L + (n1 === n0 ? (W - L - R) / 2 : ((n - n0) / (n1 - n0)) * (W - L - R));
    const y = (v) => T + (1 - (v - lo) / (hi - lo || 1)) * (H - T - B);
    const svg = sv("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    for (const v of [lo, (lo + hi) / 2, hi]) {
      svg.appendChild(sv("line", { class: "grid-line", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.appendChild(sv("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, v.toFixed(2)));
    }
    if (d.target !== null && d.target !== undefined) {
      svg.appendChild(sv("line", { class: "line-target", x1: L, x2: W - R, y1: y(d.target), y2: y(d.target) }));
      svg.appendChild(sv("text", { x: W - R, y: y(d.target) - 3, "text-anchor": "end" }, "target " + d.target));
    }
    for (const [col, cls, label] of [[1, "goal", "goal score"], [2, "les", "LES"]]) {
      const p = pts.filter((q) => q[col] !== null);
      if (!p.length) continue;
      svg.appendChild(sv("path", { class: "line-" + cls, d: p.map((q, i) => (i ? "L" : "M") + x(q[0]).toFixed(1) + " " + y(q[col]).toFixed(1)).join(" ") }));
      for (const q of p) {
        const c = sv("circle", { class: "pt-" + cls, cx: x(q[0]), cy: y(q[col]), r: 3 });
        c.appendChild(sv("title", {}, "iteration " + q[0] + ": " + label + " " + q[col]));
        svg.appendChild(c);
      }
    }
    svg.appendChild(sv("text", { x: L, y: H - 6 }, "iteration " + n0));
    svg.appendChild(sv("text", { x: W - R, y: H - 6, "text-anchor": "end" }, "iteration " + n1));
    fig.appendChild(svg);
    const legend = el("div", { class: "legend" });
    legend.appendChild(el("span", {}, "— goal score   - - LES (cumulative, normalized)" + (d.target !== null && d.target !== undefined ? "   ··· target" : "")));
    fig.appendChild(legend);
    return fig;
  }

  // Tokens (bars) and cost per iteration.
  function tokenChart(d) {
    const fig = el("figure", { class: "chart", "data-chart": "tokens" });
    fig.appendChild(el("figcaption", {}, "Tokens and cost per iteration"));
    const pts = d.its;
    if (!pts.length) { fig.appendChild(el("p", { class: "none" }, "no iterations recorded")); return fig; }
    const W = 400, H = 170, L = 44, R = 10, T = 10, B = 24;
    const hi = Math.max(1, ...pts.map((p) => p[3] || 0));
    const bw = (W - L - R) / pts.length;
    const svg = sv("svg", { viewBox: "0 0 " + W + " " + H, role: "img" });
    svg.appendChild(sv("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, String(Math.round(hi))));
    svg.appendChild(sv("text", { x: L - 4, y: H - B, "text-anchor": "end" }, "0"));
    svg.appendChild(sv("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    pts.forEach((p, i) => {
      const h = ((p[3] || 0) / hi) * (H - T - B);
      const r = sv("rect", { class: "bar tokens", x: L + i * bw + 1, y: H - B - h, width: Math.max(bw - 2, 1), height: Math.max(h, p[3] ? 1 : 0) });
      r.appendChild(sv("title", {}, "iteration " + p[0] + ": " + (p[3] === null ? "no" : p[3]) + " tokens" + (p[4] === null ? "" : ", " + fmtCost(p[4]))));
      svg.appendChild(r);
    });
    svg.appendChild(sv("text", { x: L, y: H - 6 }, "iteration " + pts[0][0]));
    svg.appendChild(sv("text", { x: W - R, y: H - 6, "text-anchor": "end" }, "iteration " + pts[pts.length - 1][0]));
    fig.appendChild(svg);
    const cost = pts.reduce((a, p) => a + (p[4] || 0), 0);
    const tokens = pts.reduce((a, p) => a + (p[3] || 0), 0);
    fig.appendChild(el("p", { class: "stats" }, tokens + " tokens over " + pts.length + " iterations" +
      (cost > 0 ? " · " + fmtCost(cost) + " (per iteration in each bar's tooltip)" : " · no priced calls")));
    return fig;
  }

  renderList();
  const m = /^#run=(.+)$/.exec(location.hash);
  if (m) {
    const r = rows.find((q) => q[ID] === decodeURIComponent(m[1]));
    if (r) showRun(r);
  }
  document.body.dataset.ready = "true";
})();
