/* racecheck counterexample viewer. Reads the trace embedded in the page
   (script#trace-data), draws one swimlane per thread, and shows the state
   after the step at the cursor: the trace's initial state with the changes
   of every step up to the cursor applied. Beside it, when the trace carries
   them: the racing pair's other order and a deadlock's wait-for graph.
   No network, no libraries. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("trace-data").textContent);
  var doc = DATA.doc;
  var threads = doc.threads;
  var steps = doc.steps;
  var N = steps.length;
  var objects = doc.objects || {};
  var geometry = doc.geometry || null;
  var race = doc.race || null;
  var raceSet = {};
  if (race) { raceSet[race[0]] = "first"; raceSet[race[1]] = "second"; }

  // -- small DOM helpers --------------------------------------------------

  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k === "style") node.setAttribute("style", v);
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v);
      }
    }
    for (var i = 2; i < arguments.length; i++) add(node, arguments[i]);
    return node;
  }
  function add(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(node, c); }); return; }
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    return node;
  }

  // -- values ---------------------------------------------------------------

  function names(text) {
    return String(text).replace(/(thread|reader) (\d+)/g, function (m, what, n) {
      var t = threads[+n];
      if (t === undefined) return m;
      return what === "reader" ? "reader " + t : t;
    });
  }
  function fmt(v) {
    if (v === null || v === undefined) return "\u2013";
    if (Array.isArray(v)) return "(" + v.map(fmt).join(", ") + ")";
    if (typeof v === "object") return JSON.stringify(v);
    return names(v);
  }
  function splitName(name) {
    var m = /^(.*)\[(.*)\]$/.exec(name);
    if (!m || objects[name]) return null;
    return { base: m[1], key: m[2] };
  }
  function baseOf(name) {
    if (objects[name]) return name;
    var s = splitName(name);
    return s ? s.base : name;
  }
  function kindOf(name) {
    var o = objects[baseOf(name)];
    return o ? o.kind : "var";
  }
  function keyLabel(key) { return key.replace(/^'(.*)'$/, "$1"); }
  function naturalCompare(a, b) {
    var na = +a, nb = +b;
    if (!isNaN(na) && !isNaN(nb)) return na - nb;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // -- locks: holders from the lock's state ----------------------------------
  // A lock's value is its state as data: {"held_by": tid} for a mutex,
  // {"readers": [tid, ...], "writer": tid} for a reader-writer semaphore.

  function holdersOf(v) {
    var out = [];
    if (v === null || typeof v !== "object" || Array.isArray(v)) return out;
    if (typeof v.held_by === "number") out.push({ tid: v.held_by, mode: "holds" });
    if (Array.isArray(v.readers)) {
      v.readers.forEach(function (t) { if (typeof t === "number") out.push({ tid: t, mode: "reads" }); });
    }
    if (typeof v.writer === "number") out.push({ tid: v.writer, mode: "holds" });
    return out;
  }

  // -- the state after every step -------------------------------------------

  // The states of a run of ``list`` steps: [0] initial, [k] after step k.
  function buildStates(list) {
    var states = [];
    var values = {}, locks = {};
    Object.keys(objects).forEach(function (name) {
      var k = objects[name].kind;
      if (k === "mutex" || k === "rwsem") locks[name] = holdersOf(doc.initial[name]);
    });
    Object.keys(doc.initial).forEach(function (name) {
      if (!locks[name]) values[name] = doc.initial[name];
    });
    states.push({ values: values, locks: locks, changed: {} });
    list.forEach(function (step) {
      var prev = states[states.length - 1];
      var v = Object.assign({}, prev.values), l = Object.assign({}, prev.locks), changed = {};
      step.changes.forEach(function (c) {
        var name = c[0], newV = c[2];
        changed[name] = true;
        var kind = kindOf(name);
        if (kind === "mutex" || kind === "rwsem") {
          l[name] = holdersOf(newV);
        } else if (kind === "map" && newV === null) {
          delete v[name];
        } else {
          v[name] = newV;
        }
      });
      states.push({ values: v, locks: l, changed: changed });
    });
    return states;
  }
  var states = buildStates(steps);

  // Entries of a map or array object in a state, as [key, value] sorted.
  function entries(state, base) {
    var out = [];
    var prefix = base + "[";
    Object.keys(state.values).forEach(function (name) {
      if (name.slice(0, prefix.length) === prefix && name.charAt(name.length - 1) === "]" && !objects[name]) {
        out.push([name.slice(prefix.length, -1), state.values[name], name]);
      }
    });
    out.sort(function (a, b) { return naturalCompare(a[0], b[0]); });
    return out;
  }
  function arrayLength(base) { return objects[base] && objects[base].length || 0; }

  // -- colours of unit tags -----------------------------------------------------

  var PALETTE = ["#3d6fb0", "#1b9e77", "#7570b3", "#d95f02", "#66a61e", "#a6761d", "#e7298a", "#4c9bb5"];
  var writerColour = {};
  var tagsSeen = [];
  function noteTag(tag) {
    if (typeof tag !== "string") return;
    if (tagsSeen.indexOf(tag) < 0 && /^(STALE|ZERO|DATA\(.*\))$/.test(tag)) tagsSeen.push(tag);
    var m = /^DATA\((.*),(\d+)\)$/.exec(tag);
    if (m && !(m[1] in writerColour)) {
      writerColour[m[1]] = PALETTE[Object.keys(writerColour).length % PALETTE.length];
    }
  }
  function noteAll(v) { if (Array.isArray(v)) v.forEach(noteAll); else noteTag(v); }
  Object.keys(doc.initial).forEach(function (n) { noteAll(doc.initial[n]); });
  steps.forEach(function (s) { s.changes.forEach(function (c) { noteAll(c[2]); }); });

  function unitBox(tag, title) {
    var m = typeof tag === "string" ? /^DATA\((.*),(\d+)\)$/.exec(tag) : null;
    if (tag === "STALE") return el("span", { class: "unit stale", title: title + "STALE" }, "S");
    if (tag === "ZERO") return el("span", { class: "unit zero", title: title + "ZERO" }, "0");
    if (m) {
      return el("span", { class: "unit data", style: "background:" + writerColour[m[1]],
                          title: title + tag }, m[1].charAt(0) + m[2]);
    }
    return el("span", { class: "unit other", title: title + fmt(tag) }, "?");
  }

  // -- code text: break lines between tokens, never inside an identifier ------

  // An identifier with its member accesses and subscripts (pte.shared[1],
  // commit_transaction->t_state, page_cache['*']) is one unbreakable token.
  var TOKEN = /[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|->)[A-Za-z_][A-Za-z0-9_]*|\[[^\]\s]*\])*/g;
  function code(text) {
    var out = [], last = 0, m;
    text = String(text);
    TOKEN.lastIndex = 0;
    while ((m = TOKEN.exec(text)) !== null) {
      if (m.index > last) between(out, text.slice(last, m.index));
      out.push(el("span", { class: "id" }, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) between(out, text.slice(last));
    return out;
  }
  // Text between identifiers may also break after an opening parenthesis.
  function between(out, text) {
    text.split("(").forEach(function (part, i) {
      if (i) out.push("(", el("wbr"));
      if (part) out.push(part);
    });
  }

  // -- page ---------------------------------------------------------------------

  var app = document.getElementById("app");
  var cursor = 0;
  var violationText = doc.invariant + ": " + names(doc.message);
  var finalThreads = doc.final_threads || null;
  // The racing pair's other order, replayed when the trace was saved, with
  // the text of its steps worked out as the trace's.
  var other = race && doc.race_reversed ? Object.assign({ texts: DATA.reversed_steps }, doc.race_reversed) : null;

  var header = el("header", { class: "top" },
    el("div", { class: "keys" },
      el("kbd", null, "Tab"), " to the steps, ",
      el("kbd", null, "\u2191"), " ", el("kbd", null, "\u2193"), " or ",
      el("kbd", null, "\u2190"), " ", el("kbd", null, "\u2192"), " move the cursor \u00b7 ",
      el("kbd", null, "Home"), " ", el("kbd", null, "End"), " \u00b7 click a step \u00b7 the address (#N) follows"),
    el("h1", null, doc.scenario.name + ": ", el("span", { class: "verdict" }, "violation"),
       " of " + doc.invariant),
    el("p", { class: "summary" },
      N + " steps, " + threads.length + " threads (" + threads.join(", ") + "), " +
      (doc.preemptions === undefined ? "?" : doc.preemptions) + " preemption" +
      (doc.preemptions === 1 ? "" : "s") +
      (doc.fixes && doc.fixes.length ? ", fixes: " + doc.fixes.join(", ") : ", as posted (no fixes)") +
      (doc.invariant_description ? ". " + doc.invariant + ": " + doc.invariant_description : "")),
    el("p", { class: "message", id: "violation-message" }, code(violationText)));

  // Every object name a step touched, for the watch box's suggestions.
  var touchedNames = {};
  steps.forEach(function (s) {
    (s.reads || []).concat(s.writes || [], s.changes.map(function (c) { return c[0]; }))
      .forEach(function (n) { touchedNames[n] = true; if (splitName(n)) touchedNames[splitName(n).base] = true; });
  });
  var watchInput = el("input", { type: "search", id: "watch", list: "watch-names", autocomplete: "off",
                                 spellcheck: "false", placeholder: "i_size, pte.shared[1] \u2026",
                                 "aria-label": "Watch an object: show only the steps that touch it, and its value after each" });
  var watchNote = el("span", { id: "watch-note", class: "watch-note" });
  var otherButton = other ? el("button", { type: "button", id: "other-toggle", "aria-pressed": "false",
                                          onclick: function () { showOther(!document.body.classList.contains("split")); } },
                               "Show the other order beside") : null;
  var toolbar = el("div", { class: "toolbar" },
    el("div", { class: "watch", role: "search" },
      el("label", { for: "watch" }, "Watch"), watchInput,
      el("datalist", { id: "watch-names" }, Object.keys(touchedNames).sort().map(function (n) {
        return el("option", { value: n });
      })),
      watchNote),
    otherButton);

  // One trace drawn as swimlanes: one grid column per thread with a gutter
  // after it for the happens-before arrows and their labels, a column of
  // step numbers before and, while an object is watched, its value after.
  // Every cell is placed explicitly. ``run``: {steps, texts, race, edges,
  // main}; the main trace's steps are the cursor's list box.
  var GUTTER = 88;
  function drawLanes(run) {
    var columns = ["2.6em"];
    threads.forEach(function (t, i) {
      columns.push("minmax(min-content, 1fr)");
      if (i < threads.length - 1) columns.push(GUTTER + "px");
    });
    columns.push("auto");  // the watch column
    var watchCol = columns.length;
    var lastColumn = watchCol;
    function place(node, row, col, span) {
      node.style.gridRow = String(row);
      node.style.gridColumn = span ? col + " / " + span : String(col);
      return node;
    }
    function laneColumn(i) { return 2 + 2 * i; }
    var lanes = el("div", { class: "lanes", style: "grid-template-columns: " + columns.join(" ") });
    var edgeLayer = svg("svg", { class: "edges", "aria-hidden": "true" });
    var labelLayer = el("div", { class: "edge-labels", "aria-hidden": "true" });
    var inner = el("div", { class: "lanes-inner" }, edgeLayer, lanes, labelLayer);
    var out = { prefix: run.main ? "" : "other-", lanes: lanes, inner: inner, edgeLayer: edgeLayer, labelLayer: labelLayer,
                boxes: {}, rows: [], watchCells: [], run: run };
    var raceAt = {};
    if (run.race) { raceAt[run.race[0]] = "first"; raceAt[run.race[1]] = "second"; }
    out.raceAt = raceAt;
    var n = run.steps.length;

    add(lanes, place(el("div", { class: "corner" }, "#"), 1, 1));
    add(lanes, place(el("div", { class: "corner" }), 1, 2, lastColumn));
    threads.forEach(function (t, i) {
      add(lanes, place(el("div", { class: "lane-head", "data-thread": t }, t, " ",
                          el("span", { class: "tid" }, "thread " + i)), 1, laneColumn(i)));
    });
    var watchHead = place(el("div", { class: "corner watch-head" }), 1, watchCol);
    add(lanes, watchHead);
    out.watchHead = watchHead;

    function box(attrs, k) {
      attrs.role = "option";
      attrs.tabindex = run.main || k ? "-1" : "0";
      attrs["aria-selected"] = "false";
      if (run.main) {
        attrs.onclick = function () { move(k); };
        attrs.onfocus = function () { if (cursor !== k) move(k, true); };
      } else {
        attrs.onclick = function () { selectOther(k); };
        attrs.onfocus = function () { if (otherCursor !== k) selectOther(k, true); };
      }
      return el("div", attrs);
    }

    var initNum = el("div", { class: "num", onclick: run.main ? function () { move(0); } : null }, "0");
    var initCell = box({ class: "initial", "data-step": "0", "aria-label": "Initial state, before the first step" }, 0);
    add(initCell, "initial state (before the first step)");
    var initWatch = place(el("div", { class: "watch-cell" }), 2, watchCol);
    add(lanes, [place(initNum, 2, 1), place(initCell, 2, 2, watchCol), initWatch]);
    out.boxes[0] = initCell;
    out.rows.push([initNum, initCell, initWatch]);
    out.watchCells.push(initWatch);

    var lastOp = {}, finished = {}, perThread = {};
    run.steps.forEach(function (step, idx) {
      var k = idx + 1;
      var info = run.texts[idx];
      var row = [];
      perThread[step.thread] = (perThread[step.thread] || 0) + 1;
      var num = el("div", { class: "num" + (raceAt[k] ? " race-num" : ""), title: "step " + k,
                            onclick: function () { if (run.main) move(k); } }, String(k) + (raceAt[k] ? "*" : ""));
      row.push(num);
      add(lanes, place(num, k + 2, 1));
      var waiting = {};
      (step.waiting || []).forEach(function (w) { waiting[w.thread] = w; });
      threads.forEach(function (t, col) {
        var cell = place(el("div", { class: "cell" }), k + 2, laneColumn(col));
        if (t === step.thread) {
          var words = ["Step " + k + " of " + n, t];
          var b = box({ class: "step", "data-step": String(k), "data-thread": t,
                        "data-nth": String(perThread[t]) }, k);
          if (step.op && lastOp[t] !== step.op) {
            add(b, el("div", { class: "op" }, "[" + step.op + "]"));
            lastOp[t] = step.op;
          }
          if (step.op) words.push(step.op);
          words.push(step.label || "");
          var label = el("div", { class: "label" }, code(step.label || ""));
          if (raceAt[k]) {
            b.classList.add("race");
            add(label, el("span", { class: "badge race", title: "one of the two conflicting steps that decide the race" },
                          run.main ? (raceAt[k] === "first" ? "race 1st" : "race 2nd")
                                   : "race: was step " + race[raceAt[k] === "first" ? 0 : 1]));
            words.push("one of the racing pair");
          }
          if (run.main && k === n) {
            b.classList.add("violating");
            add(label, el("span", { class: "badge violation" }, "violation"));
            words.push("the invariant breaks here");
          }
          add(b, label);
          add(b, el("div", { class: "where" }, info.where || ""));
          var shown = info.changes_text.slice(0, 3);
          if (shown.length) {
            var ch = el("div", { class: "changes" });
            shown.forEach(function (c) { add(ch, el("div", { title: c }, c)); });
            if (info.changes_text.length > 3) add(ch, el("div", null, "+" + (info.changes_text.length - 3) + " more"));
            add(b, ch);
            words.push("changes " + info.changes_text.join("; "));
          }
          if (info.waits_text.length) words.push(info.waits_text.join("; "));
          b.setAttribute("aria-label", words.join(", "));
          out.boxes[k] = b;
          add(cell, b);
          if (step.finished) finished[t] = true;
        } else if (waiting[t]) {
          cell.classList.add("waiting");
          add(cell, el("div", { class: "wait" }, code("waits for " + waiting[t]["for"] +
                       (waiting[t].held_by && waiting[t].held_by.length ? " (held by " + waiting[t].held_by.join(", ") + ")" : ""))));
        } else if (finished[t]) {
          cell.classList.add("done");
        }
        row.push(cell);
        add(lanes, cell);
      });
      var wc = place(el("div", { class: "watch-cell" }), k + 2, watchCol);
      row.push(wc);
      out.watchCells.push(wc);
      add(lanes, wc);
      out.rows.push(row);
    });
    return out;
  }

  // In the listbox only the options speak: the lane heads, step numbers,
  // waits and watched values say again, for the eye, what the options'
  // labels say.
  function quietAround(lanes) {
    Array.prototype.forEach.call(lanes.children, function (child) {
      if (child.getAttribute("role") !== "option" && !child.querySelector('[role="option"]')) {
        child.setAttribute("aria-hidden", "true");
      }
    });
  }

  // The step of ``run`` that is the other run's (the main trace's) same
  // step: the same thread's same-numbered step, or null.
  function nthOf(list, k) {
    var t = list[k - 1].thread, nth = 0;
    for (var i = 0; i < k; i++) if (list[i].thread === t) nth++;
    return { thread: t, nth: nth };
  }
  function findNth(list, where) {
    var nth = 0;
    for (var i = 0; i < list.length; i++) {
      if (list[i].thread === where.thread && ++nth === where.nth) return i + 1;
    }
    return null;
  }
  function matching(run, k) { return k ? findNth(steps, nthOf(run.steps, k)) : 0; }

  // A click in the other order selects its step there: the panel shows that
  // run's state after it, until the cursor of the trace as found moves again.
  var otherCursor = null;
  function selectOther(k, fromFocus) {
    k = Math.max(0, Math.min(other.steps.length, k));
    if (otherCursor !== null) unselect(otherRun.boxes[otherCursor], "other-cursor");
    otherCursor = k;
    var box = otherRun.boxes[k];
    otherRun.boxes[0].setAttribute("tabindex", "-1");
    box.classList.add("other-cursor");
    box.setAttribute("aria-selected", "true");
    box.setAttribute("tabindex", "0");
    if (!fromFocus && document.activeElement && otherRun.lanes.contains(document.activeElement)) {
      box.focus({ preventScroll: true });
    }
    box.scrollIntoView({ block: "nearest", inline: "nearest" });
    document.body.setAttribute("data-other-cursor", String(k));
    renderPanel(k, otherView);
    live.textContent = "The other order: " + (k ? otherRun.boxes[k].getAttribute("aria-label") : "initial state");
  }

  var mainRun = drawLanes({ steps: steps, texts: DATA.steps, race: race, edges: DATA.edges, main: true });
  var mainView = { steps: steps, texts: DATA.steps, states: states, main: true };
  var otherView = other ? { steps: other.steps, texts: other.texts, states: buildStates(other.steps), main: false } : null;
  var stepBoxes = mainRun.boxes, rowCells = mainRun.rows;
  mainRun.lanes.id = "lanes";
  mainRun.edgeLayer.id = "edges";
  mainRun.labelLayer.id = "edge-labels";
  mainRun.lanes.setAttribute("role", "listbox");
  mainRun.lanes.setAttribute("aria-label", "Steps in schedule order, one lane per thread");
  add(mainRun.lanes, el("div", { class: "violation-row", id: "violation-row", onclick: function () { move(N); },
                               style: "grid-row: " + (N + 3) + "; grid-column: 2 / " + (2 * threads.length + 1) },
                        el("strong", null, "The invariant breaks after step " + N + ". "), code(violationText)));
  quietAround(mainRun.lanes);
  var lanesWrap = el("section", { class: "lanes-wrap", id: "lanes-wrap", "aria-label": "The counterexample" },
                     el("h2", { class: "pane-title" }, "As found: the invariant breaks"), mainRun.inner);

  // The racing pair the other way round, replayed when the trace was saved.
  var otherRun = null, otherWrap = null;
  if (other) {
    var pair = null;
    if (race) {
      pair = [findNth(other.steps, nthOf(steps, race[0])), findNth(other.steps, nthOf(steps, race[1]))];
      if (pair[0] === null || pair[1] === null) pair = null;
    }
    otherRun = drawLanes({ steps: other.steps, texts: other.texts, race: pair, edges: [], main: false });
    otherRun.inner.id = "other-lanes";
    otherRun.lanes.setAttribute("role", "listbox");
    otherRun.lanes.setAttribute("aria-label", "The other order's steps");
    quietAround(otherRun.lanes);
    var outcome = other.outcome === "clean" ? "no invariant breaks" : other.outcome + ": " + names(other.message);
    otherWrap = el("section", { class: "lanes-wrap other", id: "other-order", "aria-label": "The racing pair the other way round" },
      el("h2", { class: "pane-title" }, "Had steps " + race[0] + " and " + race[1] + " gone the other way"),
      el("p", { class: "pane-note", id: "other-outcome" }, other.steps.length + " steps (schedule " + DATA.reversed_runs +
        "): " + outcome + ". Click a step to see the state after it there."),
      otherRun.inner);
  }

  var panel = el("aside", { class: "panel", id: "panel", "aria-label": "The state after the selected step" });
  var live = el("div", { id: "live", class: "visually-hidden", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  add(app, [header, toolbar, el("div", { class: "main" }, lanesWrap, otherWrap, panel), live]);

  function showOther(on) {
    if (!otherWrap) return;
    document.body.classList.toggle("split", on);
    otherButton.setAttribute("aria-pressed", on ? "true" : "false");
    otherButton.textContent = on ? "Hide the other order" : "Show the other order beside";
    markSame(cursor);
    redraw();
  }

  // -- happens-before edges -----------------------------------------------------
  // The arrows run behind the step cards; each label sits in the gutter next
  // to the step the edge ends at, so that it never covers a card.

  function drawEdges(view) {
    var layer = view.edgeLayer, labels = view.labelLayer, inner = view.inner;
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    while (labels.firstChild) labels.removeChild(labels.firstChild);
    var base = inner.getBoundingClientRect();
    layer.setAttribute("width", inner.scrollWidth);
    layer.setAttribute("height", inner.scrollHeight);
    var defs = svg("defs", {});
    ["plain", "race", "near"].forEach(function (kind) {
      var m = svg("marker", { id: view.prefix + "arrow-" + kind, class: kind, viewBox: "0 0 10 10", refX: "9", refY: "5",
                              markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
      m.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
      defs.appendChild(m);
    });
    layer.appendChild(defs);
    var r = view.run.race, placed = {};
    view.run.edges.forEach(function (e) {
      var a = view.boxes[e.from], b = view.boxes[e.to];
      if (!a || !b || hidden(a) || hidden(b)) return;
      var ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      var rc = b.parentNode.getBoundingClientRect();
      var ax = ra.left - base.left, bx = rb.left - base.left;
      var x1, x2, rightward = ax < bx;
      if (rightward) { x1 = ax + ra.width; x2 = bx; } else { x1 = ax; x2 = bx + rb.width; }
      var y1 = ra.top - base.top + Math.min(ra.height / 2, 22), y2 = rb.top - base.top + Math.min(rb.height / 2, 22);
      var dx = (x2 - x1) / 2;
      var isRace = r && e.from === r[0] && e.to === r[1];
      var near = view.run.main && (e.from === cursor || e.to === cursor);
      var cls = isRace ? "race-edge" : near ? "near" : "";
      var path = svg("path", {
        d: "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2,
        class: cls, "marker-end": "url(#" + view.prefix + "arrow-" + (isRace ? "race" : near ? "near" : "plain") + ")",
        "data-from": String(e.from), "data-to": String(e.to)
      });
      var title = svg("title", {});
      title.textContent = "step " + e.from + " happens before step " + e.to + ": " + e.label;
      path.appendChild(title);
      layer.appendChild(path);
      // The gutter beside the target card, on the side the edge comes from.
      var left = rightward ? rc.left - base.left - GUTTER + 3 : rc.right - base.left + 3;
      var label = el("div", {
        class: "edge-label" + (isRace ? " race-edge" : "") + (rightward ? " rightward" : ""),
        "data-from": String(e.from), "data-to": String(e.to), title: title.textContent,
        style: "left:" + left + "px; top:" + (y2 - 4) + "px; width:" + (GUTTER - 6) + "px"
      }, isRace ? el("strong", null, "race ") : null, code(e.label));
      labels.appendChild(label);
      // Labels in one gutter do not cover each other: a later one moves down.
      var top = y2 - 4, h = label.offsetHeight, taken = placed[left] || (placed[left] = []);
      taken.sort(function (p, q) { return p[0] - q[0]; }).forEach(function (span) {
        if (top < span[1] && span[0] < top + h) top = span[1] + 1;
      });
      label.style.top = top + "px";
      taken.push([top, top + h]);
    });
  }
  function hidden(node) { return node.offsetParent === null; }

  // -- the state panel ----------------------------------------------------------

  function section(title, body, id) {
    return el("section", { id: id || null }, el("h3", null, title), body);
  }
  function mark(node, isChanged) { if (isChanged) node.classList.add("changed"); return node; }

  function ownerText(o) {
    if (o === "free") return "free";
    if (o === "other file") return "another file's";
    if (typeof o === "number") return "file block " + o;
    return fmt(o);
  }

  function fileSection(st) {
    var out = [];
    var blockSize = geometry ? geometry.block_size : null;
    var size = st.values.i_size;
    if (size !== undefined) {
      var kv = el("div", { class: "kv" },
        el("span", { class: "k" }, "i_size"),
        mark(el("span", { class: "mono", id: "i-size" }, fmt(size) +
             (blockSize && typeof size === "number" ? " bytes (" + Math.ceil(size / blockSize) + (Math.ceil(size / blockSize) === 1 ? " block)" : " blocks)") : "")),
             st.changed.i_size));
      out.push(kv);
    }
    var nb = arrayLength("i_blocks");
    if (nb) {
      var row = el("div", { class: "extents", id: "block-map" });
      for (var b = 0; b < nb; b++) {
        var name = "i_blocks[" + b + "]";
        var v = st.values[name] || ["?", null];
        var state = v[0], pblk = v[1];
        var past = blockSize && typeof size === "number" && b * blockSize >= size;
        var ext = el("div", { class: "extent " + state + (past ? " past-eof" : ""), "data-block": String(b),
                              title: name + " = " + fmt(v) + (past ? " (past EOF)" : "") },
          el("div", { class: "what" }, "block " + b + ": " + state),
          el("div", null, pblk === null || pblk === undefined ? "no device block" : "\u2192 device block " + pblk),
          past ? el("div", { class: "eof" }, "past EOF") : null);
        row.appendChild(mark(ext, st.changed[name]));
      }
      out.push(el("div", { style: "margin-top:6px" }, row));
    }
    return out.length ? section("File", out, "file") : null;
  }

  function deviceSection(st) {
    var nunits = arrayLength("dev");
    if (!nunits) return null;
    var nblocks = arrayLength("owner");
    var upb = geometry ? geometry.units_per_block : (nblocks ? nunits / nblocks : nunits);
    nblocks = Math.ceil(nunits / upb);
    var rows = [];
    for (var d = 0; d < nblocks; d++) {
      var owner = st.values["owner[" + d + "]"];
      var units = el("div", { class: "units" });
      for (var u = d * upb; u < Math.min((d + 1) * upb, nunits); u++) {
        var name = "dev[" + u + "]";
        units.appendChild(mark(unitBox(st.values[name], name + " = "), st.changed[name]));
      }
      var ownerNode = owner === undefined ? null :
        mark(el("span", { class: "owner" + (owner === "other file" ? " bad" : "") }, ownerText(owner)),
             st.changed["owner[" + d + "]"]);
      rows.push(el("div", { class: "devrow", "data-device-block": String(d) },
                   el("span", { class: "name mono" }, "block " + d), ownerNode, units));
    }
    return section("Device (units by tag)", rows, "device");
  }

  function pteText(page, v, st) {
    var blockSize = geometry ? geometry.block_size : null;
    var size = st.values.i_size;
    var problems = [];
    var target;
    if (Array.isArray(v) && v[0] === "block") {
      target = "device block " + v[1];
      var owner = st.values["owner[" + v[1] + "]"];
      if (owner !== undefined && owner !== +page) {
        problems.push(owner === "free" || owner === "other file"
          ? "freed block still mapped (now " + (owner === "free" ? "free" : "another file's") + ")"
          : "block now backs file block " + owner);
      }
    } else if (Array.isArray(v) && v[0] === "page") {
      target = "page-cache page " + v[1];
    } else if (Array.isArray(v) && v[0] === "anon") {
      target = "private copy " + fmt(v[1]);
    } else {
      target = fmt(v);
    }
    if (blockSize && typeof size === "number" && +page * blockSize >= size) problems.push("beyond EOF");
    return { text: "page " + page + " \u2192 " + target, problems: problems };
  }

  function pteSection(st) {
    var maps = Object.keys(objects).filter(function (n) { return n.slice(0, 4) === "pte." && objects[n].kind === "map"; });
    if (!maps.length) return null;
    var body = maps.map(function (m) {
      var list = entries(st, m).filter(function (e) { return e[0] !== "'*'"; });
      var items = list.map(function (e) {
        var t = pteText(keyLabel(e[0]), e[1], st);
        var node = el("div", { class: "pte" + (t.problems.length ? " bad" : ""), "data-entry": e[2] }, t.text,
                      t.problems.length ? el("span", { class: "why" }, ": " + t.problems.join("; ")) : null);
        return mark(node, st.changed[e[2]]);
      });
      var deleted = Object.keys(st.changed).filter(function (n) {
        return n.slice(0, m.length + 1) === m + "[" && !(n in st.values);
      });
      deleted.forEach(function (n) {
        items.push(mark(el("div", { class: "pte" }, "page " + keyLabel(n.slice(m.length + 1, -1)) + " unmapped"), true));
      });
      return el("div", { style: "margin:2px 0 6px" }, el("div", { class: "mono" }, m.slice(4) + " mapping"),
                items.length ? items : el("div", { class: "none" }, "nothing mapped"));
    });
    return section("Page tables", body, "page-tables");
  }

  function pageCacheSection(st) {
    if (!objects.page_cache) return null;
    var list = entries(st, "page_cache").filter(function (e) { return e[0] !== "'*'"; });
    var body = list.map(function (e) {
      var page = keyLabel(e[0]);
      var units = el("div", { class: "units" });
      (Array.isArray(e[1]) ? e[1] : [e[1]]).forEach(function (tag, i) {
        units.appendChild(unitBox(tag, e[2] + " unit " + i + " = "));
      });
      var up = st.values["PageUptodate[" + e[0] + "]"];
      var bufs = st.values["page_buffers[" + e[0] + "]"];
      return mark(el("div", { class: "devrow", "data-entry": e[2] },
                     el("span", { class: "name mono" }, "page " + page), units,
                     el("span", { class: "owner" }, (up === undefined ? "" : up ? "uptodate" : "not uptodate") +
                        (bufs === undefined ? "" : " \u00b7 buffers " + fmt(bufs)))),
                  st.changed[e[2]] || st.changed["PageUptodate[" + e[0] + "]"] || st.changed["page_buffers[" + e[0] + "]"]);
    });
    return section("Page cache", body.length ? body : el("div", { class: "none" }, "empty"), "page-cache");
  }

  function lockSection(st, k, view) {
    var names_ = Object.keys(st.locks);
    if (!names_.length) return null;
    var waiting = k > 0 ? (view.steps[k - 1].waiting || []) : [];
    var busy = [], idle = [];
    names_.forEach(function (n) {
      var holders = st.locks[n];
      var waiters = waiting.filter(function (w) { return w["for"] === n; });
      if (!holders.length && !waiters.length) { idle.push(n); return; }
      var who = holders.map(function (h) {
        return (threads[h.tid] || "thread " + h.tid) + (h.mode === "reads" ? " (read)" : "");
      });
      busy.push(mark(el("div", { class: "lock", "data-lock": n },
        el("span", { class: "mono" }, n), ": ",
        holders.length ? "held by " + who.join(", ") : "free",
        waiters.length ? el("span", { class: "waiters" }, "; waited for by " +
                            waiters.map(function (w) { return w.thread; }).join(", ")) : null),
        st.changed[n]));
    });
    var body = busy.slice();
    if (idle.length) {
      body.push(el("div", { class: "lock free" }, "free: " + idle.map(function (n) {
        return n + (st.changed[n] ? " (released now)" : "");
      }).join(", ")));
    }
    return section("Locks", body, "locks");
  }

  var SHOWN = /^(i_size|i_blocks\[|owner\[|dev\[|pte\.|page_cache\[|PageUptodate\[|page_buffers\[)/;
  function otherSection(st) {
    var rows = Object.keys(st.values).filter(function (n) { return !SHOWN.test(n); }).sort();
    if (!rows.length) return null;
    var table = el("table", { class: "other" });
    rows.forEach(function (n) {
      table.appendChild(mark(el("tr", null, el("td", { class: "k mono" }, n.replace("['*']", "[*]")),
                                el("td", { class: "mono" }, fmt(st.values[n]))), st.changed[n]));
    });
    return section("Other state", table, "other");
  }

  function legend() {
    var items = [];
    if (arrayLength("i_blocks")) ["hole", "unwritten", "written"].forEach(function (s) {
      items.push(el("span", { class: "sw" }, el("span", { class: "extent " + s }, s)));
    });
    tagsSeen.forEach(function (tag) { items.push(el("span", { class: "sw" }, unitBox(tag, ""), tag)); });
    items.push(el("span", { class: "sw" }, el("span", { class: "changed", style: "padding:0 6px" }, "changed"), "by this step"));
    return el("div", { class: "legend" }, items);
  }

  function stepSection(k, view) {
    var which = view.main ? "" : "The other order: ";
    if (k === 0) {
      return el("section", { class: "stepinfo" }, el("h2", { id: "cursor-title" }, which + "Initial state"),
                el("div", { class: "none" }, "before the first step" +
                   (view.main ? "; press \u2193 to run step 1" : "")));
    }
    var step = view.steps[k - 1], info = view.texts[k - 1];
    var rows = [
      el("span", { class: "k" }, "where"), el("span", { class: "mono" }, (info.where || "?") +
        (step["function"] ? " in " + step["function"] + "()" : "")),
      el("span", { class: "k" }, "reads"), el("span", { class: "mono" }, code(info.reads_text.join(", ") || "\u2013")),
      el("span", { class: "k" }, "writes"), el("span", { class: "mono" }, code(info.writes_text.join(", ") || "\u2013"))
    ];
    var changes = info.changes_text.length
      ? el("ul", { class: "mono", style: "font-size:12px" }, info.changes_text.map(function (c) { return el("li", null, code(c)); }))
      : el("div", { class: "none" }, "no state changed");
    return el("section", { class: "stepinfo" },
      el("h2", { id: "cursor-title" }, which + "Step " + k + " of " + view.steps.length + " \u00b7 " + step.thread +
         (step.op ? " \u00b7 " + step.op : "")),
      el("div", { class: "label" }, code(step.label || "")),
      el("div", { class: "kv", style: "margin-top:6px" }, rows),
      el("h3", null, "Changed"), changes,
      info.waits_text.length ? el("div", { style: "color:var(--wait);font-size:12.5px;margin-top:4px" },
                                  info.waits_text.join("; ")) : null);
  }

  function raceSection(k) {
    if (!race) {
      return el("div", { class: "racebox", id: "race" }, DATA.race_text ||
                "This trace does not name a racing pair.");
    }
    var words = DATA.race_words || "";
    return el("div", { class: "racebox", id: "race" },
      el("strong", null, "Racing pair: steps " + race[0] + " and " + race[1] + ". "),
      words.charAt(0).toUpperCase() + words.slice(1) + ". ",
      "With step " + race[1] + " run before step " + race[0] + " (schedule " + DATA.reversed_runs +
      ") no invariant breaks.",
      el("div", null,
        el("button", { type: "button", onclick: function () { move(race[0]); } }, "go to step " + race[0]),
        el("button", { type: "button", onclick: function () { move(race[1]); } }, "go to step " + race[1]),
        other ? el("button", { type: "button", class: "other-open", onclick: function () { showOther(true); } },
                   "show that run beside") : null));
  }

  function renderPanel(k, view) {
    if (!panel) return;
    var st = view.states[k];
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    add(panel, stepSection(k, view));
    if (!view.main) {
      add(panel, otherBox(k));
    } else if (k === N) {
      add(panel, el("div", { class: "breaks", id: "breaks" },
        el("strong", null, "The invariant breaks here. "), violationText,
        doc.invariant_description ? el("div", { style: "font-size:12px;color:var(--muted)" },
                                       doc.invariant + " holds when " + doc.invariant_description) : null));
    }
    if (view.main && k === N) add(panel, waitForSection());
    if (view.main) add(panel, raceSection(k));
    add(panel, [fileSection(st), deviceSection(st), pteSection(st), pageCacheSection(st),
                lockSection(st, k, view), otherSection(st)]);
    add(panel, section("Legend", legend()));
  }

  // What the panel says at a step of the other order: how that run ends,
  // and the way back to the trace as found.
  function otherBox(k) {
    var found = matching(otherView, k);
    var end = other.outcome === "clean" ? "it ends with no invariant broken" : "it ends: " + names(other.message);
    return el("div", { class: "racebox", id: "other-box" },
      el("strong", null, "The racing pair the other way round. "),
      "Step " + k + " of " + other.steps.length + " of that run; " + end + ".",
      el("div", null,
        found !== null ? el("button", { type: "button", id: "find-as-found", onclick: function () { move(found); } },
                            "this step as found (step " + found + ")") : null,
        el("button", { type: "button", id: "back-as-found", onclick: function () { move(cursor); } },
           "back to the trace as found")));
  }

  // -- the wait-for graph at the end ----------------------------------------------
  // From the trace's final_threads: each thread, the locks it holds and what
  // it waits for (a lock, held by its holders; a condition, kept false by
  // the threads that last wrote what it reads). thread -> what it waits for
  // -> who holds or set it: a cycle of these is the deadlock.

  function waitGraph() {
    if (!finalThreads || !finalThreads.some(function (t) { return t.waits_for; })) return null;
    var nodes = {}, order = [], edges = [];
    function node(id, kind, text, title) {
      if (!nodes[id]) { nodes[id] = { id: id, kind: kind, text: text, title: title || text }; order.push(id); }
      return id;
    }
    finalThreads.forEach(function (t) { node("t:" + t.thread, "thread", t.thread, t.thread + (t.finished ? " (finished)" : "")); });
    finalThreads.forEach(function (t) {
      var w = t.waits_for;
      if (w) {
        var rid = w.kind === "lock" ? "l:" + w.name : "c:" + t.thread;
        if (w.kind === "lock") node(rid, "lock", w.name);
        else node(rid, "condition", "until " + ((w.objects || []).join(", ") || "a condition"), "until " + w.name);
        edges.push({ from: "t:" + t.thread, to: rid, kind: "waits" });
        w.on.forEach(function (h) {
          edges.push({ from: rid, to: "t:" + h, kind: w.kind === "lock" ? "held" : "set" });
        });
      }
    });
    finalThreads.forEach(function (t) {
      t.holds.forEach(function (name) {
        var rid = node("l:" + name, "lock", name);
        if (!edges.some(function (e) { return e.from === rid && e.to === "t:" + t.thread; })) {
          edges.push({ from: rid, to: "t:" + t.thread, kind: "held" });
        }
      });
    });
    var cycle = findCycle(order, edges);
    if (!cycle.length && doc.invariant !== "deadlock_free") return null;
    return { nodes: nodes, order: order, edges: edges, cycle: cycle };
  }

  // A cycle of the graph (depth-first search), as its node ids in order, or [].
  function findCycle(order, edges) {
    var out = {}, colour = {}, stack = [];
    order.forEach(function (id) { out[id] = []; });
    edges.forEach(function (e) { if (out[e.to]) out[e.from].push(e.to); });
    var found = [];
    function visit(id) {
      colour[id] = 1; stack.push(id);
      for (var i = 0; i < out[id].length && !found.length; i++) {
        var to = out[id][i];
        if (colour[to] === 1) { found = stack.slice(stack.indexOf(to)); return; }
        if (!colour[to]) visit(to);
      }
      stack.pop(); colour[id] = 2;
    }
    order.forEach(function (id) { if (!colour[id] && !found.length) visit(id); });
    return found;
  }

  function waitForSection() {
    var g = waitGraph();
    if (!g) return null;
    var inCycle = {};
    g.cycle.forEach(function (id, i) { inCycle[id] = g.cycle[(i + 1) % g.cycle.length]; });
    // The cycle round an ellipse, in its order; the rest in a row below.
    var W = 540, rx = 175, ry = g.cycle.length > 4 ? 105 : 70, cx = W / 2, cy = ry + 26;
    var pos = {};
    g.cycle.forEach(function (id, i) {
      var a = -Math.PI / 2 + 2 * Math.PI * i / g.cycle.length;
      pos[id] = { x: cx + rx * Math.cos(a), y: cy + ry * Math.sin(a) };
    });
    var rest = g.order.filter(function (id) { return !pos[id]; });
    var restY = g.cycle.length ? cy + ry + 60 : 30;
    rest.forEach(function (id, i) {
      pos[id] = { x: (W / (rest.length + 1)) * (i + 1), y: restY + (i % 2) * 44 };
    });
    var H = (rest.length ? restY + (rest.length > 1 ? 44 : 0) : cy + ry) + 30;
    var pic = svg("svg", { id: "wait-graph", class: "wait-graph", viewBox: "0 0 " + W + " " + H, width: "100%",
                           role: "img", "aria-label": "Wait-for graph at the end of the trace" });
    var defs = svg("defs", {});
    ["waits", "held", "cycle"].forEach(function (kind) {
      var m = svg("marker", { id: "wfm-" + kind, class: kind, viewBox: "0 0 10 10", refX: "9", refY: "5",
                              markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
      m.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
      defs.appendChild(m);
    });
    pic.appendChild(defs);
    var boxes = {};
    g.order.forEach(function (id) {
      var n = g.nodes[id], p = pos[id];
      var w = Math.max(64, n.text.length * 7 + 18), h = 26;
      boxes[id] = { x: p.x - w / 2, y: p.y - h / 2, w: w, h: h };
    });
    // Each edge from border to border of its two boxes.
    function border(b, toX, toY) {
      var x = b.x + b.w / 2, y = b.y + b.h / 2, dx = toX - x, dy = toY - y;
      var s = Math.min(Math.abs(dx) > 0 ? (b.w / 2) / Math.abs(dx) : Infinity,
                       Math.abs(dy) > 0 ? (b.h / 2) / Math.abs(dy) : Infinity);
      return { x: x + dx * s, y: y + dy * s };
    }
    g.edges.forEach(function (e) {
      var a = boxes[e.from], b = boxes[e.to];
      if (!a || !b) return;
      var p1 = border(a, b.x + b.w / 2, b.y + b.h / 2), p2 = border(b, a.x + a.w / 2, a.y + a.h / 2);
      var cyc = inCycle[e.from] === e.to;
      var line = svg("path", { d: "M" + p1.x + "," + p1.y + " L" + p2.x + "," + p2.y,
                               class: "wf-edge " + e.kind + (cyc ? " cycle" : ""),
                               "data-from": e.from, "data-to": e.to,
                               "marker-end": "url(#wfm-" + (cyc ? "cycle" : e.kind === "waits" ? "waits" : "held") + ")" });
      var title = svg("title", {});
      title.textContent = g.nodes[e.from].text + (e.kind === "waits" ? " waits for " : e.kind === "held" ? " is held by " : " was last set by ") + g.nodes[e.to].text;
      line.appendChild(title);
      pic.appendChild(line);
      var mid = svg("text", { x: String((p1.x + p2.x) / 2), y: String((p1.y + p2.y) / 2 - 3), class: "wf-edge-label",
                              "text-anchor": "middle" });
      mid.textContent = e.kind === "waits" ? "waits" : e.kind === "held" ? "held by" : "set by";
      pic.appendChild(mid);
    });
    g.order.forEach(function (id) {
      var n = g.nodes[id], b = boxes[id];
      var grp = svg("g", { class: "wf-node " + n.kind + (inCycle[id] ? " cycle" : ""), "data-node": id });
      grp.appendChild(svg(n.kind === "thread" ? "rect" : "rect",
        { x: b.x, y: b.y, width: b.w, height: b.h, rx: n.kind === "thread" ? 13 : 3 }));
      var t = svg("text", { x: String(b.x + b.w / 2), y: String(b.y + 17), "text-anchor": "middle" });
      t.textContent = n.text;
      grp.appendChild(t);
      var title = svg("title", {});
      title.textContent = n.title;
      grp.appendChild(title);
      pic.appendChild(grp);
    });
    var words = finalThreads.map(function (t) {
      var w = t.waits_for, parts = [];
      if (t.finished) parts.push("has finished");
      if (t.holds.length) parts.push("holds " + t.holds.join(", "));
      if (w && w.kind === "lock") parts.push("waits for " + w.name + (w.on.length ? " (held by " + w.on.join(", ") + ")" : ""));
      if (w && w.kind === "condition") {
        parts.push("waits until " + w.name + (w.on.length ? " (" + (w.objects || []).join(", ") + " last set by " + w.on.join(", ") + ")" : ""));
      }
      if (!parts.length) parts.push("can run");
      return el("li", { "data-thread": t.thread }, el("strong", null, t.thread), " ", code(parts.join("; ")));
    });
    var cycleText = g.cycle.length
      ? "Cycle: " + g.cycle.concat([g.cycle[0]]).map(function (id) { return g.nodes[id].text; }).join(" \u2192 ")
      : "No cycle: a thread waits on a condition nobody holds";
    return section("Wait-for graph after step " + N, [pic, el("p", { class: "wf-cycle", id: "wf-cycle" }, cycleText),
                                                     el("ul", { class: "wf-list" }, words)], "wait-for");
  }

  // -- watching an object ------------------------------------------------------
  // As the watches of TLC's trace explorer: only the steps whose footprint
  // (reads, writes, changes) touched the object stay, and a column shows its
  // value after each. A name is an entry (pte.shared[1]: also touched by a
  // step that reads the whole map, pte.shared['*']) or a whole object
  // (pte.shared: any of its entries).

  var watched = "";
  function touches(name, q) {
    if (name === q) return true;
    if (name.slice(0, q.length + 1) === q + "[") return true;
    var s = splitName(q);
    return !!s && name === s.base + "['*']";
  }
  function stepTouches(step, q) {
    var all = (step.reads || []).concat(step.writes || [], step.changes.map(function (c) { return c[0]; }));
    return all.some(function (n) { return touches(n, q); });
  }
  function watchValue(st, q) {
    if (q in st.locks) return lockText(st.locks[q]);
    if (q in st.values) return fmt(st.values[q]);
    var parts = Object.keys(st.values).filter(function (n) { return n.slice(0, q.length + 1) === q + "["; })
      .sort(function (a, b) { return naturalCompare(a.slice(q.length + 1, -1), b.slice(q.length + 1, -1)); })
      .map(function (n) { return keyLabel(n.slice(q.length + 1, -1)) + ": " + fmt(st.values[n]); });
    Object.keys(st.locks).forEach(function (n) {
      if (n.slice(0, q.length + 1) === q + "[") parts.push(keyLabel(n.slice(q.length + 1, -1)) + ": " + lockText(st.locks[n]));
    });
    return parts.length ? parts.join(", ") : "\u2013";
  }
  function lockText(holders) {
    return holders.length ? "held by " + holders.map(function (h) { return threads[h.tid] || "thread " + h.tid; }).join(", ") : "free";
  }
  function changedBy(k, q) {
    return k > 0 && steps[k - 1].changes.some(function (c) { return touches(c[0], q); });
  }

  function setWatch(q) {
    watched = q.trim();
    document.body.classList.toggle("watching", !!watched);
    var shown = 0;
    rowCells.forEach(function (row, k) {
      var keep = !watched || k === 0 || stepTouches(steps[k - 1], watched);
      row.forEach(function (c) { c.classList.toggle("filtered-out", !keep); });
      if (keep && k) shown++;
      var cell = mainRun.watchCells[k];
      cell.textContent = "";
      if (watched && keep) {
        add(cell, code(watchValue(states[k], watched)));
        cell.classList.toggle("changed", changedBy(k, watched));
      } else {
        cell.classList.remove("changed");
      }
    });
    mainRun.watchHead.textContent = watched ? watched + " after" : "";
    watchNote.textContent = watched ? shown + " of " + N + " steps touch " + watched : "";
    if (watchInput.value.trim() !== watched) watchInput.value = watched;
    redraw();
  }
  watchInput.addEventListener("input", function () { setWatch(watchInput.value); });

  function visibleStep(k, dir) {
    while (k > 0 && k <= N && rowCells[k][0].classList.contains("filtered-out")) k += dir;
    return Math.max(0, Math.min(N, k));
  }

  function unselect(box, cls) {
    box.classList.remove(cls);
    box.setAttribute("aria-selected", "false");
    box.setAttribute("tabindex", "-1");
  }

  // -- the cursor ---------------------------------------------------------------
  // The main trace's steps are a listbox: the selected step is its one tab
  // stop (roving tabindex), arrow keys move the selection, the live region
  // says what the selected step did, and the address (#N) follows it.

  function move(k, fromFocus) {
    k = Math.max(0, Math.min(N, k));
    if (otherCursor !== null) {
      unselect(otherRun.boxes[otherCursor], "other-cursor");
      otherRun.boxes[otherCursor].setAttribute("tabindex", "0");  // the other list's tab stop stays
      otherCursor = null;
      document.body.removeAttribute("data-other-cursor");
    }
    rowCells[cursor].forEach(function (c) { c.classList.remove("at-cursor"); });
    var before = stepBoxes[cursor];
    before.classList.remove("cursor");
    before.setAttribute("aria-selected", "false");
    before.setAttribute("tabindex", "-1");
    cursor = k;
    rowCells[k].forEach(function (c) { c.classList.add("at-cursor"); });
    var box = stepBoxes[k];
    box.classList.add("cursor");
    box.setAttribute("aria-selected", "true");
    box.setAttribute("tabindex", "0");
    if (box.offsetParent !== null) box.scrollIntoView({ block: "nearest", inline: "nearest" });
    if (k === 0) lanesWrap.scrollTop = 0;
    var inList = document.activeElement && document.activeElement.getAttribute("role") === "option";
    if (!fromFocus && inList) box.focus({ preventScroll: true });
    document.body.setAttribute("data-cursor", String(k));
    if (window.location.hash !== "#" + k) {
      try { history.replaceState(null, "", "#" + k); } catch (err) { /* a page opened from disk may refuse */ }
    }
    live.textContent = (k === 0 ? "Initial state, before the first step"
      : stepBoxes[k].getAttribute("aria-label") + (k === N ? ". " + violationText : "")) +
      (watched ? ". " + watched + " after it: " + watchValue(states[k], watched) : "");
    markSame(k);
    renderPanel(k, mainView);
    redraw();
  }

  // In the other order's lanes, outline the step that is the cursor's step.
  function markSame(k) {
    if (!otherRun) return;
    Object.keys(otherRun.boxes).forEach(function (j) { otherRun.boxes[j].classList.remove("same"); });
    var j = k ? findNth(other.steps, nthOf(steps, k)) : 0;
    var box = j !== null ? otherRun.boxes[j] : null;
    if (!box) return;
    box.classList.add("same");
    if (box.offsetParent !== null) box.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function redraw() {
    drawEdges(mainRun);
    if (otherRun && document.body.classList.contains("split")) drawEdges(otherRun);
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;  // the arrows edit text there
    var k = null;
    if (otherRun && t && otherRun.lanes.contains(t)) {  // moving in the other order's list
      var at = otherCursor === null ? 0 : otherCursor, last = other.steps.length;
      switch (e.key) {
        case "ArrowDown": case "ArrowRight": case "j": case "n": k = at + 1; break;
        case "ArrowUp": case "ArrowLeft": case "k": case "p": k = at - 1; break;
        case "Home": k = 0; break;
        case "End": k = last; break;
        default: return;
      }
      e.preventDefault();
      selectOther(k);
      return;
    }
    switch (e.key) {
      case "ArrowDown": case "ArrowRight": case "j": case "n": k = visibleStep(cursor + 1, 1); break;
      case "ArrowUp": case "ArrowLeft": case "k": case "p": k = visibleStep(cursor - 1, -1); break;
      case "Home": k = 0; break;
      case "End": k = visibleStep(N, -1); break;
      default: return;
    }
    e.preventDefault();
    move(k);
  });
  window.addEventListener("resize", redraw);
  function fromHash() {
    var m = /^#(\d+)$/.exec(window.location.hash);
    return m ? Math.min(N, +m[1]) : null;
  }
  window.addEventListener("hashchange", function () {
    var k = fromHash();
    if (k !== null && k !== cursor) move(k);
  });

  var start = fromHash();
  move(start === null ? 0 : start);
})();
