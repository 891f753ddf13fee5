/* racecheck counterexample viewer. Reads the trace embedded in the page
   (script#trace-data), draws one swimlane per thread, and shows the state
   after the step at the cursor: the trace's initial state with the changes
   of every step up to the cursor applied. No network, no libraries. */
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

  var states = [];
  (function build() {
    var values = {}, locks = {};
    Object.keys(objects).forEach(function (name) {
      var k = objects[name].kind;
      if (k === "mutex" || k === "rwsem") locks[name] = holdersOf(doc.initial[name]);
    });
    Object.keys(doc.initial).forEach(function (name) {
      if (!locks[name]) values[name] = doc.initial[name];
    });
    states.push({ values: values, locks: locks, changed: {} });
    steps.forEach(function (step) {
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
  })();

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

  // -- page ---------------------------------------------------------------------

  var app = document.getElementById("app");
  var cursor = 0;
  var stepBoxes = {};
  var rowCells = [];  // rowCells[k]: the cells of row k (0: initial state)

  var violationText = doc.invariant + ": " + names(doc.message);

  var header = el("header", { class: "top" },
    el("div", { class: "keys" },
      el("kbd", null, "\u2191"), " ", el("kbd", null, "\u2193"), " or ",
      el("kbd", null, "\u2190"), " ", el("kbd", null, "\u2192"), " move the cursor \u00b7 ",
      el("kbd", null, "Home"), " ", el("kbd", null, "End"), " \u00b7 click a step"),
    el("h1", null, doc.scenario.name + ": ", el("span", { class: "verdict" }, "violation"),
       " of " + doc.invariant),
    el("p", { class: "summary" },
      N + " steps, " + threads.length + " threads (" + threads.join(", ") + "), " +
      (doc.preemptions === undefined ? "?" : doc.preemptions) + " preemption" +
      (doc.preemptions === 1 ? "" : "s") +
      (doc.fixes && doc.fixes.length ? ", fixes: " + doc.fixes.join(", ") : ", as posted (no fixes)") +
      (doc.invariant_description ? ". " + doc.invariant + ": " + doc.invariant_description : "")),
    el("p", { class: "message", id: "violation-message" }, violationText));

  // Grid columns: step numbers, then each thread's lane with a gutter after
  // it for the happens-before arrows. Every cell is placed explicitly.
  var columns = ["3.2em"];
  threads.forEach(function (t, i) {
    columns.push("minmax(14em, 1fr)");
    if (i < threads.length - 1) columns.push("78px");
  });
  var lastColumn = columns.length + 1;
  function place(node, row, col, span) {
    node.style.gridRow = String(row);
    node.style.gridColumn = span ? col + " / " + span : String(col);
    return node;
  }
  function laneColumn(i) { return 2 + 2 * i; }
  var lanes = el("div", { class: "lanes", id: "lanes", style: "grid-template-columns: " + columns.join(" ") });
  var edgeLayer = svg("svg", { class: "edges", id: "edges" });
  var inner = el("div", { class: "lanes-inner" }, lanes, edgeLayer);
  var lanesWrap = el("section", { class: "lanes-wrap", id: "lanes-wrap" }, inner);
  var panel = el("aside", { class: "panel", id: "panel", "aria-live": "polite" });
  add(app, [header, el("div", { class: "main" }, lanesWrap, panel)]);

  // Lane heads.
  add(lanes, place(el("div", { class: "corner" }, "#"), 1, 1));
  add(lanes, place(el("div", { class: "corner" }), 1, 2, lastColumn));
  threads.forEach(function (t, i) {
    add(lanes, place(el("div", { class: "lane-head", "data-thread": t }, t, " ",
                        el("span", { class: "tid" }, "thread " + i)), 1, laneColumn(i)));
  });

  // Row 0: the initial state.
  var initNum = el("div", { class: "num", onclick: function () { move(0); } }, "0");
  var initCell = el("div", { class: "initial", onclick: function () { move(0); } },
                    "initial state (before the first step)");
  add(lanes, [place(initNum, 2, 1), place(initCell, 2, 2, lastColumn)]);
  rowCells.push([initNum, initCell]);

  var lastOp = {}, finished = {};
  steps.forEach(function (step, idx) {
    var k = idx + 1;
    var info = DATA.steps[idx];
    var row = [];
    var num = el("div", { class: "num" + (raceSet[k] ? " race-num" : ""), title: "step " + k,
                          onclick: function () { move(k); } }, String(k) + (raceSet[k] ? "*" : ""));
    row.push(num);
    add(lanes, place(num, k + 2, 1));
    var waiting = {};
    (step.waiting || []).forEach(function (w) { waiting[w.thread] = w; });
    threads.forEach(function (t, col) {
      var cell = place(el("div", { class: "cell" }), k + 2, laneColumn(col));
      if (t === step.thread) {
        var box = el("div", { class: "step", "data-step": String(k), "data-thread": t,
                              onclick: function () { move(k); } });
        if (step.op && lastOp[t] !== step.op) {
          add(box, el("div", { class: "op" }, "[" + step.op + "]"));
          lastOp[t] = step.op;
        }
        var label = el("div", { class: "label" }, step.label || "");
        if (raceSet[k]) {
          box.classList.add("race");
          add(label, el("span", { class: "badge race", title: "one of the two conflicting steps that decide the race" },
                        raceSet[k] === "first" ? "race 1st" : "race 2nd"));
        }
        if (k === N) {
          box.classList.add("violating");
          add(label, el("span", { class: "badge violation" }, "violation"));
        }
        add(box, label);
        add(box, el("div", { class: "where" }, info.where || ""));
        var shown = info.changes_text.slice(0, 3);
        if (shown.length) {
          var ch = el("div", { class: "changes" });
          shown.forEach(function (c) { add(ch, el("div", { title: c }, c)); });
          if (info.changes_text.length > 3) add(ch, el("div", null, "+" + (info.changes_text.length - 3) + " more"));
          add(box, ch);
        }
        stepBoxes[k] = box;
        add(cell, box);
        if (step.finished) finished[t] = true;
      } else if (waiting[t]) {
        cell.classList.add("waiting");
        add(cell, el("div", { class: "wait" }, "waits for " + waiting[t]["for"] +
                     (waiting[t].held_by && waiting[t].held_by.length ? " (held by " + waiting[t].held_by.join(", ") + ")" : "")));
      } else if (finished[t]) {
        cell.classList.add("done");
      }
      row.push(cell);
      add(lanes, cell);
    });
    rowCells.push(row);
  });

  add(lanes, place(el("div", { class: "violation-row", id: "violation-row", onclick: function () { move(N); } },
                      el("strong", null, "The invariant breaks after step " + N + ". "), violationText),
                   N + 3, 2, lastColumn));

  // -- happens-before edges -----------------------------------------------------

  function drawEdges() {
    while (edgeLayer.firstChild) edgeLayer.removeChild(edgeLayer.firstChild);
    var base = inner.getBoundingClientRect();
    edgeLayer.setAttribute("width", inner.scrollWidth);
    edgeLayer.setAttribute("height", inner.scrollHeight);
    var defs = svg("defs", {});
    ["plain", "race", "near"].forEach(function (kind) {
      var m = svg("marker", { id: "arrow-" + kind, class: kind, viewBox: "0 0 10 10", refX: "9", refY: "5",
                              markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
      m.appendChild(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
      defs.appendChild(m);
    });
    edgeLayer.appendChild(defs);
    DATA.edges.forEach(function (e) {
      var a = stepBoxes[e.from], b = stepBoxes[e.to];
      if (!a || !b) return;
      var ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      var ax = ra.left - base.left, bx = rb.left - base.left;
      var x1, x2;
      if (ax < bx) { x1 = ax + ra.width; x2 = bx; } else { x1 = ax; x2 = bx + rb.width; }
      var y1 = ra.top - base.top + Math.min(ra.height / 2, 22), y2 = rb.top - base.top + Math.min(rb.height / 2, 22);
      var dx = (x2 - x1) / 2;
      var isRace = race && e.from === race[0] && e.to === race[1];
      var near = e.from === cursor || e.to === cursor;
      var cls = isRace ? "race-edge" : near ? "near" : "";
      var path = svg("path", {
        d: "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2,
        class: cls, "marker-end": "url(#arrow-" + (isRace ? "race" : near ? "near" : "plain") + ")",
        "data-from": String(e.from), "data-to": String(e.to)
      });
      var title = svg("title", {});
      title.textContent = "step " + e.from + " happens before step " + e.to + ": " + e.label;
      path.appendChild(title);
      edgeLayer.appendChild(path);
      var text = svg("text", { x: String((x1 + x2) / 2), y: String((y1 + y2) / 2 - 4), "text-anchor": "middle",
                               class: isRace ? "race-edge" : "" });
      text.textContent = (isRace ? "race: " : "") + e.label;
      edgeLayer.appendChild(text);
    });
  }

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

  function lockSection(st, k) {
    var names_ = Object.keys(st.locks);
    if (!names_.length) return null;
    var waiting = k > 0 ? (steps[k - 1].waiting || []) : [];
    var used = {};
    steps.forEach(function (s) { s.changes.forEach(function (c) { used[c[0]] = true; }); });
    waiting.forEach(function (w) { used[w["for"]] = true; });
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

  function stepSection(k) {
    if (k === 0) {
      return el("section", { class: "stepinfo" }, el("h2", { id: "cursor-title" }, "Initial state"),
                el("div", { class: "none" }, "before the first step; press \u2193 to run step 1"));
    }
    var step = steps[k - 1], info = DATA.steps[k - 1];
    var rows = [
      el("span", { class: "k" }, "where"), el("span", { class: "mono" }, (info.where || "?") +
        (step["function"] ? " in " + step["function"] + "()" : "")),
      el("span", { class: "k" }, "reads"), el("span", { class: "mono" }, info.reads_text.join(", ") || "\u2013"),
      el("span", { class: "k" }, "writes"), el("span", { class: "mono" }, info.writes_text.join(", ") || "\u2013")
    ];
    var changes = info.changes_text.length
      ? el("ul", { class: "mono", style: "font-size:12px" }, info.changes_text.map(function (c) { return el("li", null, c); }))
      : el("div", { class: "none" }, "no state changed");
    return el("section", { class: "stepinfo" },
      el("h2", { id: "cursor-title" }, "Step " + k + " of " + N + " \u00b7 " + step.thread +
         (step.op ? " \u00b7 " + step.op : "")),
      el("div", { class: "label" }, step.label || ""),
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
        el("button", { type: "button", onclick: function () { move(race[1]); } }, "go to step " + race[1])));
  }

  function renderPanel(k) {
    var st = states[k];
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    add(panel, stepSection(k));
    if (k === N) {
      add(panel, el("div", { class: "breaks", id: "breaks" },
        el("strong", null, "The invariant breaks here. "), violationText,
        doc.invariant_description ? el("div", { style: "font-size:12px;color:var(--muted)" },
                                       doc.invariant + " holds when " + doc.invariant_description) : null));
    }
    add(panel, raceSection(k));
    add(panel, [fileSection(st), deviceSection(st), pteSection(st), pageCacheSection(st),
                lockSection(st, k), otherSection(st)]);
    add(panel, section("Legend", legend()));
  }

  // -- the cursor ---------------------------------------------------------------

  function move(k) {
    k = Math.max(0, Math.min(N, k));
    rowCells[cursor].forEach(function (c) { c.classList.remove("at-cursor"); });
    if (stepBoxes[cursor]) stepBoxes[cursor].classList.remove("cursor");
    cursor = k;
    rowCells[k].forEach(function (c) { c.classList.add("at-cursor"); });
    var box = stepBoxes[k];
    if (box) {
      box.classList.add("cursor");
      box.scrollIntoView({ block: "nearest", inline: "nearest" });
    } else if (k === 0) {
      lanesWrap.scrollTop = 0;
    }
    document.body.setAttribute("data-cursor", String(k));
    renderPanel(k);
    drawEdges();
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var k = null;
    switch (e.key) {
      case "ArrowDown": case "ArrowRight": case "j": case "n": k = cursor + 1; break;
      case "ArrowUp": case "ArrowLeft": case "k": case "p": k = cursor - 1; break;
      case "Home": k = 0; break;
      case "End": k = N; break;
      default: return;
    }
    e.preventDefault();
    move(k);
  });
  window.addEventListener("resize", drawEdges);

  var start = /^#(\d+)$/.exec(window.location.hash);
  move(start ? +start[1] : 0);
})();
