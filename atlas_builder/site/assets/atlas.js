/* ErrorAtlas site scripts: the failure browser and the model comparison.
 * All text from the data files is inserted with textContent, never as HTML. */
(function () {
  "use strict";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function getJSON(url) {
    return fetch(url).then(function (response) {
      if (!response.ok) { throw new Error("could not load " + url + " (HTTP " + response.status + ")"); }
      return response.json();
    });
  }

  function params() { return new URLSearchParams(window.location.search); }

  function pct(value, digits) {
    if (value === null || value === undefined || isNaN(value)) { return "–"; }
    return (value * 100).toFixed(digits === undefined ? 1 : digits) + "\u00a0%";
  }

  /* Adjusted p-value as text: "< 0.001" below 0.001, otherwise three decimals. */
  function pValue(p) {
    if (p === null || p === undefined || isNaN(p)) { return "–"; }
    return p < 0.001 ? "<\u00a00.001" : p.toFixed(3);
  }

  /* Difference of two rates in percentage points, with an explicit sign. */
  function points(difference) {
    var text = (difference * 100).toFixed(1);
    if (text === "-0.0") { text = "0.0"; }
    return (difference > 0 && text !== "0.0" ? "+" : "") + text.replace("-", "\u2212") + "\u00a0pts";
  }

  /* ---- failure browser ------------------------------------------------------------------ */

  var PAGE = 50;

  function highlighted(text, spans) {
    var pre = el("pre", { "class": "atlas-text" });
    var at = 0;
    spans.slice().sort(function (a, b) { return a.start - b.start; }).forEach(function (span) {
      var start = Math.max(span.start, at), end = Math.min(span.end, text.length);
      if (end <= start) { return; }
      pre.appendChild(document.createTextNode(text.slice(at, start)));
      pre.appendChild(el("mark", { text: text.slice(start, end), title: "evidence" }));
      at = end;
    });
    pre.appendChild(document.createTextNode(text.slice(at)));
    return pre;
  }

  function textBlock(label, text, spans, dataset) {
    var box = el("div", { "class": "atlas-field" }, [el("p", { "class": "atlas-label", text: label })]);
    if (text === null || text === undefined) {
      box.appendChild(el("p", { "class": "atlas-hidden", text: "Hidden by the dataset's publishing rule" + (dataset.reason ? ": " + dataset.reason : "") + "." }));
    } else {
      box.appendChild(highlighted(text, spans));
    }
    return box;
  }

  /* details.first_error of a judge diagnosis: {criterion (1-based), criterion_text, evidence, explanation, span}. */
  function firstErrorBlock(first) {
    if (typeof first !== "object" || first === null) {
      return el("p", { "class": "atlas-first-error", text: "First error: " + String(first) });
    }
    var box = el("div", { "class": "atlas-first-error" });
    var heading = "First error";
    if (first.criterion !== null && first.criterion !== undefined) { heading += ": criterion " + first.criterion; }
    if (first.criterion_text) { heading += " (" + first.criterion_text + ")"; }
    box.appendChild(el("p", {}, [el("strong", { text: heading })]));
    if (first.explanation) { box.appendChild(el("p", { text: first.explanation })); }
    if (first.evidence) { box.appendChild(el("p", {}, [document.createTextNode("Evidence: "), el("q", { text: first.evidence })])); }
    return box;
  }

  function diagnosisBlock(item, meta) {
    var category = item.category ? (meta.categoryName[item.category] || item.category) : meta.unclassified_label;
    var box = el("div", { "class": "atlas-diagnosis" + (item.primary ? " atlas-primary" : "") }, [
      el("p", {}, [
        el("strong", { text: item.title }), document.createTextNode(" — " + category + " "),
        el("span", { "class": "atlas-diagnoser", text: "(" + item.diagnoser + ", " + item.kind + (item.primary ? ", decides the category" : "") + ")" })
      ]),
      el("p", { text: item.summary })
    ]);
    var details = item.details || {};
    if (details.criteria && details.criteria.length) {
      var table = el("table", {}, [el("thead", {}, [el("tr", {}, [
        el("th", { text: "Criterion" }), el("th", { text: "Met" }), el("th", { text: "Evidence" })])])]);
      var body = el("tbody");
      details.criteria.forEach(function (c) {
        body.appendChild(el("tr", {}, [el("td", { text: c.criterion }), el("td", { text: c.met === true ? "yes" : c.met === false ? "no" : "–" }),
          el("td", { text: c.evidence || "" })]));
      });
      table.appendChild(body);
      box.appendChild(table);
    }
    if (details.first_error) { box.appendChild(firstErrorBlock(details.first_error)); }
    if (details.reference_flag) { box.appendChild(el("p", { text: "The judge flagged the reference answer as possibly wrong." })); }
    return box;
  }

  function failureCard(entry, record, meta) {
    var dataset = meta.datasets[entry.d], model = meta.models[entry.m];
    var anchor = "f-" + dataset.id + "--" + model.id + "--" + record.id;
    var query = new URLSearchParams({ dataset: dataset.id, model: model.id, id: record.id });
    var card = el("article", { "class": "atlas-failure", id: anchor });
    card.appendChild(el("h3", {}, [
      el("a", { href: "?" + query.toString(), title: "Permanent link to this failure", text: model.name + " · " + dataset.name + " · " + record.id })
    ]));
    var spans = { input: [], output: [], reference: [] };
    record.diagnoses.forEach(function (d) { (d.evidence || []).forEach(function (s) { if (spans[s.field]) { spans[s.field].push(s); } }); });
    card.appendChild(el("p", { "class": "atlas-score", text: "Score " + record.score + (record.cut ? (dataset.publishing === "excerpt" ? " · texts cut to " + dataset.excerpt_chars + " characters by the publishing rule" : " · long texts cut; the result file has them whole") : "") }));
    var texts = el("div");
    texts.appendChild(textBlock("Input", record.input, spans.input, dataset));
    texts.appendChild(textBlock("Output", record.output, spans.output, dataset));
    texts.appendChild(textBlock("Reference", record.reference === null ? null : (record.reference || []).join("\n— or —\n"), spans.reference, dataset));
    if (dataset.warning) {
      card.appendChild(el("details", { "class": "atlas-warning" }, [el("summary", { text: "Content warning: " + dataset.warning + " Select to show the texts." }), texts]));
    } else {
      card.appendChild(texts);
    }
    if (record.diagnoses.length) {
      record.diagnoses.forEach(function (d) { card.appendChild(diagnosisBlock(d, meta)); });
    } else {
      card.appendChild(el("p", { "class": "atlas-undiagnosed", text: "Not diagnosed yet." }));
    }
    return card;
  }

  function select(name, label, options, value) {
    var node = el("select", { name: name, "aria-label": label });
    options.forEach(function (option) {
      var o = el("option", { value: option[0], text: option[1] });
      if (option[0] === value) { o.selected = true; }
      node.appendChild(o);
    });
    return el("label", { "class": "atlas-filter" }, [document.createTextNode(label + " "), node]);
  }

  function startBrowser(root) {
    var base = root.getAttribute("data-base");
    var status = root.querySelector(".atlas-browser-status");
    var q = params();
    getJSON(base + "meta.json").then(function (meta) {
      meta.categoryName = {};
      meta.categories.forEach(function (c) { meta.categoryName[c.id] = c.name; });
      var scope = q.get("model") ? "model" : q.get("dataset") ? "dataset" : q.get("category") ? "category" : null;
      var controls = el("form", { "class": "atlas-controls" });
      controls.appendChild(select("model", "Model", [["", "any model"]].concat(meta.models.map(function (m) { return [m.id, m.name]; })), q.get("model") || ""));
      controls.appendChild(select("dataset", "Dataset", [["", "any dataset"]].concat(meta.datasets.map(function (d) { return [d.id, d.name]; })), q.get("dataset") || ""));
      controls.appendChild(select("category", "Category", [["", "any category"], ["none", "not diagnosed"], ["unclassified", meta.unclassified_label]].concat(meta.categories.map(function (c) { return [c.id, c.name]; })), q.get("category") || ""));
      controls.appendChild(select("diagnoser", "Diagnoser", [["", "any diagnoser"], ["none", "none"]].concat(meta.diagnosers.map(function (g) { return [g, g]; })), q.get("diagnoser") || ""));
      controls.addEventListener("change", function () {
        var next = new URLSearchParams();
        Array.prototype.forEach.call(controls.elements, function (field) { if (field.value) { next.set(field.name, field.value); } });
        window.location.search = next.toString();
      });
      root.insertBefore(controls, status);
      if (!scope || (scope === "category" && (q.get("category") === "none" || q.get("category") === "unclassified") && !q.get("model") && !q.get("dataset"))) {
        status.textContent = "Choose a model, a dataset or a category to list its failures.";
        return;
      }
      var scopeId = q.get(scope);
      return getJSON(base + "index/" + scope + "/" + encodeURIComponent(scopeId) + ".json").then(function (index) {
        showIndex(root, status, base, meta, index, q);
      });
    }).catch(function (error) { status.textContent = "The failure browser could not load its data: " + error.message; });
  }

  function showIndex(root, status, base, meta, index, q) {
    var modelIndex = {}, datasetIndex = {}, diagIndex = {};
    meta.models.forEach(function (m, i) { modelIndex[m.id] = i; });
    meta.datasets.forEach(function (d, i) { datasetIndex[d.id] = i; });
    meta.diagnosers.forEach(function (g, i) { diagIndex[g] = i; });
    var within = null;
    var category = q.get("category");
    if (category && category !== "none" && category !== "unclassified") {
      within = {};
      meta.categories.forEach(function (c, i) { if (c.id === category) { c.within.forEach(function (id) { within[id] = true; }); } });
    }
    var entries = [];
    for (var n = 0; n < index.i.length; n++) {
      var e = { d: index.d[n], m: index.m[n], i: index.i[n], c: index.c[n], g: index.g[n], s: index.s[n], o: index.o[n] };
      if (q.get("model") && e.m !== modelIndex[q.get("model")]) { continue; }
      if (q.get("dataset") && e.d !== datasetIndex[q.get("dataset")]) { continue; }
      if (category === "none" && e.c !== -1) { continue; }
      if (category === "unclassified" && e.c !== meta.unclassified_code) { continue; }
      if (within && (e.c < 0 || !within[meta.categories[e.c].id])) { continue; }
      if (q.get("diagnoser") === "none" && e.g !== -1) { continue; }
      if (q.get("diagnoser") && q.get("diagnoser") !== "none" && e.g !== diagIndex[q.get("diagnoser")]) { continue; }
      if (q.get("id") && e.i !== q.get("id")) { continue; }
      entries.push(e);
    }
    var pages = Math.max(1, Math.ceil(entries.length / PAGE));
    var page = Math.min(Math.max(parseInt(q.get("page") || "1", 10) || 1, 1), pages);
    var shown = entries.slice((page - 1) * PAGE, page * PAGE);
    status.textContent = entries.length ? "Failures " + ((page - 1) * PAGE + 1) + "–" + ((page - 1) * PAGE + shown.length) + " of " + entries.length + " (page " + page + " of " + pages + ")." : "No failure matches these filters.";
    var shardUrls = {};
    shown.forEach(function (e) {
      var key = meta.datasets[e.d].id + "/" + meta.models[e.m].id + "/" + ("000" + e.s).slice(-4);
      shardUrls[key] = true;
    });
    var loads = Object.keys(shardUrls).map(function (key) {
      return getJSON(base + "shards/" + key + ".json").then(function (records) { shardUrls[key] = records; });
    });
    Promise.all(loads).then(function () {
      var list = el("div", { "class": "atlas-failures" });
      shown.forEach(function (e) {
        var key = meta.datasets[e.d].id + "/" + meta.models[e.m].id + "/" + ("000" + e.s).slice(-4);
        list.appendChild(failureCard(e, shardUrls[key][e.o], meta));
      });
      root.appendChild(list);
      root.appendChild(pager(page, pages));
      if (window.location.hash) {
        var target = document.getElementById(decodeURIComponent(window.location.hash.slice(1)));
        if (target) { target.scrollIntoView(); }
      }
    }).catch(function (error) { status.textContent = "Could not load failures: " + error.message; });
  }

  function pager(page, pages) {
    var nav = el("nav", { "class": "atlas-pager", "aria-label": "Pages of failures" });
    function go(n, label) {
      var q = params(); q.set("page", String(n));
      return el("a", { href: "?" + q.toString(), text: label });
    }
    if (page > 1) { nav.appendChild(go(page - 1, "← previous")); }
    nav.appendChild(el("span", { text: " page " + page + " of " + pages + " " }));
    if (page < pages) { nav.appendChild(go(page + 1, "next →")); }
    return nav;
  }

  /* ---- model comparison ----------------------------------------------------------------- */

  function startCompare(root) {
    var base = root.getAttribute("data-base");
    var q = params();
    getJSON(base + "meta.json").then(function (meta) {
      var names = {};
      meta.models.forEach(function (m) { names[m.id] = m.name; });
      var options = meta.models.map(function (m) { return [m.id, m.name]; });
      var unknown = ["a", "b"].filter(function (key) { return q.get(key) && names[q.get(key)] === undefined; });
      var a = names[q.get("a")] !== undefined ? q.get("a") : (meta.models[0] || {}).id;
      var b = names[q.get("b")] !== undefined ? q.get("b") : (meta.models[1] || meta.models[0] || {}).id;
      var form = el("form", { "class": "atlas-controls" }, [select("a", "Model A", options, a), select("b", "Model B", options, b)]);
      var result = el("div", { "class": "atlas-compare-result" });
      root.appendChild(form);
      root.appendChild(result);
      var latest = 0;
      function show() {
        var left = form.elements.a.value, right = form.elements.b.value;
        var request = ++latest;
        var next = new URLSearchParams({ a: left, b: right });
        window.history.replaceState(null, "", "?" + next.toString());
        result.textContent = "";
        if (left === right) { result.appendChild(el("p", { text: "Pick two different models." })); return; }
        getJSON(base + left + ".json").then(function (pairs) {
          if (request !== latest) { return; }  // a newer choice replaced this one
          var pair = pairs[right];
          if (!pair) { result.appendChild(el("p", { text: names[left] + " and " + names[right] + " share no instance, so they cannot be compared." })); return; }
          result.appendChild(el("p", { "class": "atlas-shared", text: pair.n.toLocaleString("en") + " shared instances." }));
          var table = el("table", { "class": "atlas-table" });
          table.appendChild(el("thead", {}, [el("tr", {}, ["Category", names[left], names[right], "Difference", "Adjusted p", ""].map(function (h, i) {
            return el("th", i >= 1 && i <= 4 ? { "class": "atlas-number", text: h } : { text: h });
          }))]));
          var body = el("tbody");
          meta.categories.forEach(function (c, i) {
            var ra = pair.a[i] / pair.n, rb = pair.b[i] / pair.n, p = pair.p[i];
            var significant = p !== null && p < meta.alpha;
            var row = el("tr", significant ? { "class": "atlas-significant" } : {}, [
              el("td", { text: c.name }), el("td", { "class": "atlas-number", text: pair.a[i].toLocaleString("en") + " (" + pct(ra) + ")" }),
              el("td", { "class": "atlas-number", text: pair.b[i].toLocaleString("en") + " (" + pct(rb) + ")" }),
              el("td", { "class": "atlas-number", text: points(ra - rb) }), el("td", { "class": "atlas-number", text: pValue(p) }),
              el("td", { text: significant ? (ra > rb ? names[left] : names[right]) + " fails more" : "" })
            ]);
            row.setAttribute("data-category", c.id);
            body.appendChild(row);
          });
          table.appendChild(body);
          result.appendChild(el("div", { "class": "atlas-table-wrap" }, [table]));
        }).catch(function (error) { result.appendChild(el("p", { text: "Could not load the comparison: " + error.message })); });
      }
      form.addEventListener("change", show);
      if (unknown.length) {
        // The link named a model this atlas does not have: say so instead of silently comparing others.
        result.appendChild(el("p", { "class": "atlas-compare-error", text: unknown.map(function (key) {
          return "Model " + key.toUpperCase() + " \u201c" + q.get(key) + "\u201d is not in this atlas.";
        }).join(" ") + " Pick two models above." }));
        return;
      }
      show();
    }).catch(function (error) { root.appendChild(el("p", { text: "Could not load the model list: " + error.message })); });
  }

  function start() {
    var browser = document.getElementById("atlas-browser");
    if (browser) { startBrowser(browser); }
    var compare = document.getElementById("atlas-compare");
    if (compare) { startCompare(compare); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
