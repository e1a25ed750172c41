// Draws the scopebus matrix from the JSON embedded in the page: the table
// (rules x implementations), then per implementation its problems, its
// recorded deviations with their ground truth, and one timeline per failure.
// No network, no library. On success the body's data-status attribute is
// set to ok; on an error, to "error: ..." (the browser test reads it).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const LOOP = "(loop)";
  const doc = JSON.parse(document.getElementById("matrix-data").textContent);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : String(c));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const anchor = (impl, rule) => "f-" + impl + "-" + rule;
  const WORDS = {
    passed: "passed", failed: "FAILED", expected_failure: "recorded", unexpected_pass: "UNEXPECTED PASS",
    not_tested: "not tested", not_applicable: "n/a", not_exercised: "not exercised",
  };

  function runLine() {
    const n = doc.implementations.length;
    document.getElementById("run").textContent =
      n + " implementations from " + doc.file + ", " + doc.seeds + " seeds of " + doc.ops_per_seed +
      " ops each; each run read under both profiles (docs: what the seed and Haiway's docs promise; strict: every rule).";
  }

  // A compact column head: the name (linking to its section), then one
  // badge per profile; what it is and what it runs on are in the tooltip.
  function header(impl) {
    const r = impl.report || {};
    const about = [impl.about, r.version && (r.name || r.implementation) + " " + r.version, r.runtime && "runtime: " + r.runtime]
      .filter(Boolean).join("\n");
    const th = el("th", { title: about });
    th.append(el("a", { href: "#i-" + impl.name }, impl.name), el("br"));
    for (const p of impl.profiles) {
      const word = p.conforming ? "conforming" : p.success ? "as recorded" : "not conforming";
      th.append(el("span", { class: "badge " + (p.conforming ? "yes" : p.success ? "rec" : "no"), title: p.profile + ": " + word },
        p.profile + (p.conforming ? " \u2713" : p.success ? " rec." : " \u2717")));
    }
    if (impl.error) th.append(el("br"), el("span", { class: "problem" }, "not judged"));
    return th;
  }

  function cell(impl, rule, index) {
    if (!impl.report) return el("td", { class: "none" }, "-");
    const r = impl.report.rules[index];
    const td = el("td", { class: r.verdict });
    const word = WORDS[r.verdict] || r.verdict;
    const drawn = impl.timelines.some((t) => t.rule === rule.id);
    td.append(drawn ? el("a", { href: "#" + anchor(impl.name, rule.id) }, word) : word);
    if (r.verdict === "failed") {
      td.append(" ", el("span", { class: "unconfirmed", title: "the suite's finding, not a recorded deviation: no ground-truth script shows it in plain code yet" }, "unconfirmed"));
    }
    const levels = impl.profiles.map((p) => p.levels[index]);
    td.append(" ", el("span", { class: "level", title: "level under docs / strict" }, levels.join("/")));
    const emulated = (impl.report.emulates || []).filter((e) => (doc.emulated[e] || []).includes(rule.id));
    if (emulated.length) {
      td.append(" ", el("span", { class: "emu", title: "the adapter emulates " + emulated.join(", ") + ": this verdict is about its code as much as the library's" }, "emu"));
    }
    td.title = rule.id + " on " + impl.name + ": " + r.checks + " checks" + (r.failing_seeds ? ", " + r.failing_seeds + " failing seeds" : "");
    return td;
  }

  function table() {
    const t = el("table", { class: "matrix" });
    const head = el("tr", {}, el("th", { class: "rule" }, "rule"));
    for (const impl of doc.implementations) head.append(header(impl));
    t.append(el("thead", {}, head));
    const body = el("tbody");
    doc.rules.forEach((rule, i) => {
      const row = el("tr", {}, el("th", { class: "rule", title: rule.summary }, rule.id));
      for (const impl of doc.implementations) row.append(cell(impl, rule, i));
      body.append(row);
    });
    t.append(body);
    document.getElementById("matrix").append(t);
  }

  function legend() {
    document.getElementById("legend").append(el("p", {},
      "Cells: the rule's verdict (recorded: a deviation the implementation's expectations file records and its ground-truth script shows; " +
      "FAILED unconfirmed: the suite's finding, which no ground-truth script shows yet), " +
      "then its level under docs/strict; emu: the adapter emulates a feature this rule is about. " +
      "Column heads: one badge per profile, green \u2713 conforming, amber rec. as recorded, red \u2717 not conforming. " +
      "Timelines: one lane per scope, subscription and task (a subscription pulled by two tasks has a lane per task); " +
      "blue squares are ops, joined by a line across the lanes they touch, grey squares polls, green circles what the implementation reported; " +
      "the first disagreement with the model is red."));
  }

  // Lanes an entry or observation touches: scope#N, sub#N, task#N.
  function lanesOf(value) {
    const lanes = [];
    const add = (l) => { if (!lanes.includes(l)) lanes.push(l); };
    const visit = (v) => {
      if (!v || typeof v !== "object") return;
      for (const [k, x] of Object.entries(v)) {
        if ((k === "scope" || k === "parent") && Number.isInteger(x)) add("scope#" + x);
        else if ((k === "sub" || k === "puller") && Number.isInteger(x)) add("sub#" + x);
        else if (k === "task" && Number.isInteger(x)) add("task#" + x);
        else if (typeof x === "string" && /^(scope|sub|task)#\d+$/.test(x)) add(x);
        else if (typeof x === "object" && k !== "error") visit(x);
      }
    };
    visit(value);
    return lanes;
  }
  function laneOrder(a, b) {
    const rank = (l) => ["scope", "sub", "task"].indexOf(l.split("#")[0]);
    return rank(a) - rank(b) || parseInt(a.split("#")[1]) - parseInt(b.split("#")[1]);
  }

  function timeline(t) {
    const lanes = [];
    for (const s of t.steps) {
      for (const l of lanesOf(s.entry)) if (!lanes.includes(l)) lanes.push(l);
      for (const o of s.observations) for (const l of lanesOf(o)) if (!lanes.includes(l)) lanes.push(l);
    }
    lanes.sort(laneOrder);
    // Entries that name no handle (settle, a poll of the implementation's
    // own choosing) go on a lane of their own, on top.
    if (t.steps.some((s) => !lanesOf(s.entry).length)) lanes.unshift(LOOP);
    const X0 = 90, DX = 34, Y0 = 22, DY = 22;
    const width = X0 + DX * (t.steps.length + 1), height = Y0 + DY * lanes.length + 10;
    const root = svg("svg", { class: "timeline", width, height, viewBox: "0 0 " + width + " " + height, role: "img" });
    root.append(svg("title", {}, t.rule + " (" + t.mode + "): " + t.message));
    const y = (lane) => Y0 + DY * lanes.indexOf(lane);
    t.steps.forEach((s, i) => {
      const x = X0 + DX * i;
      if (s.index === t.first) root.append(svg("rect", { class: "first", x: x - DX / 2, y: 4, width: DX, height: height - 8 }));
      root.append(svg("text", { x: x - 4, y: 14 }, String(s.index)));
    });
    lanes.forEach((l) => {
      root.append(svg("line", { class: "lane", x1: X0 - 10, x2: width - 10, y1: y(l), y2: y(l) }));
      root.append(svg("text", { x: 4, y: y(l) + 4 }, l));
    });
    t.steps.forEach((s, i) => drawStep(root, s, X0 + DX * i, y, s.index === t.first, lanes));
    return root;
  }

  function drawStep(root, s, x, y, first, lanes) {
    const own = lanesOf(s.entry);
    const poll = "poll" in (s.entry || {});
    const ys = own.map(y);
    if (ys.length > 1) root.append(svg("line", { class: "link", x1: x - 6, x2: x - 6, y1: Math.min(...ys), y2: Math.max(...ys) }));
    for (const l of own.length ? own : [LOOP]) {
      const mark = svg("rect", { class: first ? "first-mark" : poll ? "poll" : "op", x: x - 11, y: y(l) - 5, width: 10, height: 10 });
      mark.append(svg("title", {}, s.index + "  " + s.text + (s.reply ? "  => " + s.reply : "")));
      root.append(mark);
    }
    s.observations.forEach((o, k) => {
      for (const l of lanesOf(o)) {
        const dot = svg("circle", { class: first ? "first-mark" : "obs", cx: x + 4 + (k % 3) * 5, cy: y(l), r: 4 });
        dot.append(svg("title", {}, s.index + "  -> " + o.text));
        root.append(dot);
      }
    });
  }

  function stepsList(t) {
    const list = el("ol", { class: "steps", start: "0" });
    for (const s of t.steps) {
      const li = el("li", { value: String(s.index), class: s.index === t.first ? "first" : "" }, s.text + (s.reply ? "  => " + s.reply : ""));
      for (const o of s.observations) li.append(el("div", {}, "-> " + o.text));
      list.append(li);
    }
    return list;
  }

  function failures(impl) {
    const box = el("div");
    for (const t of impl.timelines) {
      const title = t.rule + (t.recorded ? " (recorded deviation)" : "") + ": " + t.mode + (t.seed !== null ? ", seed " + t.seed : "");
      box.append(el("h3", { id: anchor(impl.name, t.rule) }, title));
      box.append(el("p", {}, t.message));
      if (t.first === null) box.append(el("p", { class: "problem" }, "this replay did not fail: the implementation is not deterministic here"));
      else box.append(el("p", {}, "first disagreement at step " + t.first + ": " + t.first_message));
      box.append(el("div", { class: "timeline-box" }, timeline(t)));
      const details = el("details", {}, el("summary", {}, "steps (" + t.trace + ")"), stepsList(t));
      box.append(details);
    }
    return box;
  }

  function groundTruth(impl) {
    const g = impl.ground_truth;
    const box = el("div");
    if (!g) return box;
    box.append(el("h3", {}, "Recorded deviations and their ground truth"));
    const ul = el("ul");
    for (const d of g.deviations) {
      ul.append(el("li", { class: d.shown ? "" : "problem" }, d.rule + ": " + (d.shown ? "shown: " : "NOT SHOWN: ") + d.what));
    }
    box.append(ul, el("p", {}, "$ " + g.command + "   (" + g.status + ")"), el("pre", {}, g.output));
    return box;
  }

  function sections() {
    const root = document.getElementById("implementations");
    for (const impl of doc.implementations) {
      const s = el("section", { id: "i-" + impl.name });
      s.append(el("h2", {}, impl.name), el("p", {}, impl.about), el("p", { class: "level" }, "--impl " + impl.command));
      if (impl.report && impl.report.emulates && impl.report.emulates.length) {
        s.append(el("p", { class: "emu" }, "emulated by the adapter: " + impl.report.emulates.join(", ")));
      }
      for (const p of impl.problems) s.append(el("p", { class: "problem" }, p));
      s.append(groundTruth(impl), failures(impl));
      root.append(s);
    }
  }

  try {
    runLine();
    table();
    legend();
    sections();
    document.body.setAttribute("data-status", "ok");
  } catch (e) {
    document.body.setAttribute("data-status", "error: " + e);
    throw e;
  }
})();
