"use strict";
// The devhost dashboard. Everything an app stored (ids, names, inputs, outputs, statuses,
// reasons, entities' states and operations) reaches the page as JSON and is put in as
// text, never as markup. Reads come from the dashboard's data routes; every action goes
// to the Durable Functions HTTP API.
(() => {
  const DATA = "/runtime/devhost/dashboard/data";
  const API = "/runtime/webhooks/durabletask";
  const STATUSES = ["Running", "Pending", "Suspended", "Completed", "Failed", "Terminated", "Canceled",
                    "ContinuedAsNew"];
  const ACTIVE = ["Running", "Pending", "Suspended", "ContinuedAsNew"];
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);

  // An element whose children are elements or text; attributes are set, never parsed.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "checked" || name === "value") node[name] = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  async function getJson(url) {
    const reply = await fetch(url, {headers: {Accept: "application/json"}, cache: "no-store"});
    const body = await reply.json().catch(() => null);
    return {status: reply.status, body, headers: reply.headers};
  }

  // One request to the Durable HTTP API: what was sent and what it answered.
  async function send(method, path, body, contentType) {
    const headers = contentType ? {"Content-Type": contentType} : {};
    const reply = await fetch(API + path, {method, headers, body, cache: "no-store"});
    const text = await reply.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    return {method, path, status: reply.status, statusText: reply.statusText, text, json};
  }

  function answerLine(answer) {
    return `${answer.method} ${API}${answer.path} \u2192 ${answer.status} ${answer.statusText}`.trim();
  }

  function showAnswer(box, answer, extra) {
    box.replaceChildren(el("div", {class: "mono"}, answerLine(answer)),
                        answer.text ? el("pre", {}, answer.text) : null, extra || null);
    box.classList.toggle("refused", answer.status >= 400);
    show(box, true);
  }

  // -- times ----------------------------------------------------------------------------
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
           `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function timeCell(iso) { return el("td", {title: iso}, localTime(iso)); }
  function toInputValue(iso) {  // ISO (UTC) -> a datetime-local value, local time
    const d = new Date(iso);
    if (!iso || isNaN(d)) return "";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
           `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fromInputValue(value) {  // a datetime-local value (local time) -> ISO (UTC)
    if (!value) return "";
    const d = new Date(value);
    return isNaN(d) ? "" : d.toISOString();
  }
  function duration(ms) {
    if (ms < 1) return "< 1 ms";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m - h * 60} min`;
    const days = Math.floor(h / 24);
    return `${days} d ${h - days * 24} h`;
  }

  // A stored value, as the Durable HTTP API shows it: JSON, indented. A string is shown as
  // its text, and when that text is itself JSON (an SDK client sends its inputs that way),
  // indented and said so.
  function offset(ms) { return ms < 1000 ? `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms` : duration(ms); }

  function pretty(value) {
    if (typeof value !== "string") return value === undefined ? "" : JSON.stringify(value, null, 2);
    try {
      const parsed = JSON.parse(value);
      if (parsed !== null && typeof parsed === "object") {
        return JSON.stringify(parsed, null, 2) + "\n\n(a string holding JSON, shown parsed)";
      }
    } catch (_) { /* text that is not JSON */ }
    return value;
  }

  function badge(status) { return el("span", {class: `badge ${status}`}, status); }

  // -- live updates --------------------------------------------------------------------
  let mark = null;
  let summary = {counts: [], orchestrators: [], entities: [], taskHub: ""};
  let current = null;  // the view shown: {refresh()}

  async function refreshSummary() {
    const {status, body} = await getJson(`${DATA}/summary?since=${encodeURIComponent(mark || "")}`);
    if (status !== 200) throw new Error(`summary: ${status}`);
    const changed = body.changed;
    mark = body.mark;
    if (changed) {
      summary = body;
      $("hub").textContent = `task hub ${body.taskHub}`;
    }
    return changed;
  }

  async function poll() {
    if ($("live").checked && document.visibilityState === "visible") {
      try {
        if (await refreshSummary() && current) await current.refresh();
        else if (current && current.tick) current.tick();
        $("live-state").textContent = `updated ${localTime(new Date().toISOString()).slice(11)}`;
      } catch (error) {
        $("live-state").textContent = "cannot reach the devhost";
      }
    } else {
      $("live-state").textContent = $("live").checked ? "" : "paused";
    }
    setTimeout(poll, POLL_MS);
  }

  // -- routing ---------------------------------------------------------------------------
  function parseHash() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?");
    const params = new URLSearchParams(query || "");
    if (path.startsWith("instance/")) return {view: "instance", id: decodeURIComponent(path.slice(9))};
    if (path === "entities") return {view: "entities", params};
    return {view: "instances", params};
  }

  async function route() {
    const where = parseHash();
    for (const name of ["instances", "instance", "entities"]) show($(`view-${name}`), name === where.view);
    $("nav-instances").classList.toggle("current", where.view !== "entities");
    $("nav-entities").classList.toggle("current", where.view === "entities");
    current = {instances: instancesView, instance: instanceView, entities: entitiesView}[where.view];
    await current.open(where);
  }

  // -- instances -------------------------------------------------------------------------
  const instancesView = {
    filters: {}, cursors: [""], next: "", selected: new Set(), shownIds: [],

    async open(where) {
      const p = where.params;
      const filters = {status: (p.get("status") || "").split(",").filter(s => STATUSES.includes(s)),
                       name: p.get("name") || "", from: p.get("from") || "", to: p.get("to") || "",
                       prefix: p.get("prefix") || "", top: p.get("top") || "50"};
      if (JSON.stringify(filters) !== JSON.stringify(this.filters)) {
        this.filters = filters;
        this.cursors = [""];
        this.selected.clear();
      }
      this.fillForm();
      await this.refresh();
    },

    fillForm() {
      const f = this.filters;
      $("status-choices").replaceChildren(...STATUSES.map(s => el("label", {class: "check"},
        el("input", {type: "checkbox", value: s, checked: f.status.includes(s), "data-status": s}), s)));
      $("filter-from").value = toInputValue(f.from);
      $("filter-to").value = toInputValue(f.to);
      if (document.activeElement !== $("filter-prefix")) $("filter-prefix").value = f.prefix;
      $("filter-top").value = f.top;
      this.fillNames();
    },

    fillNames() {
      const totals = new Map();
      for (const c of summary.counts) totals.set(c.name, (totals.get(c.name) || 0) + c.count);
      const names = [...new Set([...summary.orchestrators, ...totals.keys(), this.filters.name].filter(Boolean))].sort();
      $("filter-name").replaceChildren(el("option", {value: ""}, "All"),
        ...names.map(n => el("option", {value: n}, `${n} (${(totals.get(n) || 0).toLocaleString()})`)));
      $("filter-name").value = this.filters.name;
    },

    renderCounts() {
      const byStatus = new Map();
      let all = 0;
      for (const c of summary.counts) {
        if (this.filters.name && c.name !== this.filters.name) continue;
        byStatus.set(c.runtimeStatus, (byStatus.get(c.runtimeStatus) || 0) + c.count);
        all += c.count;
      }
      const chip = (label, count, statuses) => {
        const on = JSON.stringify(statuses) === JSON.stringify(this.filters.status);
        return el("button", {type: "button", class: `count quiet${on ? " on" : ""}`, "data-chip": label},
                  el("b", {}, count.toLocaleString()), label);
      };
      $("counts").replaceChildren(chip("All", all, []),
        ...STATUSES.filter(s => byStatus.get(s)).map(s => chip(s, byStatus.get(s), [s])));
    },

    query(cursor) {
      const f = this.filters, q = new URLSearchParams();
      if (f.status.length) q.set("status", f.status.join(","));
      for (const [key, value] of [["name", f.name], ["createdFrom", f.from], ["createdTo", f.to],
                                  ["prefix", f.prefix], ["top", f.top], ["continuation", cursor]]) {
        if (value) q.set(key, value);
      }
      return q.toString();
    },

    async refresh() {
      this.renderCounts();
      this.fillNames();
      const cursor = this.cursors[this.cursors.length - 1];
      const {status, body} = await getJson(`${DATA}/instances?${this.query(cursor)}`);
      if (status !== 200) {
        $("instance-rows").replaceChildren(el("tr", {}, el("td", {colspan: 6}, (body && body.message) || `error ${status}`)));
        return;
      }
      this.next = body.continuation;
      this.shownIds = body.instances.map(i => i.instanceId);
      for (const id of [...this.selected]) if (!this.shownIds.includes(id)) this.selected.delete(id);
      $("instance-rows").replaceChildren(...body.instances.map(i => el("tr", {"data-id": i.instanceId},
        el("td", {class: "pick"}, el("input", {type: "checkbox", "data-pick": i.instanceId,
                                               checked: this.selected.has(i.instanceId),
                                               "aria-label": `Select ${i.instanceId}`})),
        el("td", {class: "id"}, el("a", {href: `#/instance/${encodeURIComponent(i.instanceId)}`}, i.instanceId)),
        el("td", {}, i.name), el("td", {}, badge(i.runtimeStatus)),
        timeCell(i.createdTime), timeCell(i.lastUpdatedTime))));
      show($("list-empty"), body.instances.length === 0);
      $("page-number").textContent = `page ${this.cursors.length}`;
      $("page-newer").disabled = $("page-first").disabled = this.cursors.length === 1;
      $("page-older").disabled = !this.next;
      this.renderSelection();
    },

    renderSelection() {
      const count = this.selected.size;
      $("selected-count").textContent = `${count} selected`;
      $("bulk-terminate").disabled = $("bulk-purge").disabled = count === 0;
      $("pick-all").checked = count > 0 && count === this.shownIds.length;
    },

    setFilters(changes) {
      const f = {...this.filters, ...changes}, q = new URLSearchParams();
      if (f.status.length) q.set("status", f.status.join(","));
      for (const key of ["name", "from", "to", "prefix"]) if (f[key]) q.set(key, f[key]);
      if (f.top !== "50") q.set("top", f.top);
      const hash = `#/instances${q.toString() ? "?" + q : ""}`;
      if (location.hash !== hash) location.hash = hash;
    },

    async bulk(verb) {
      const ids = [...this.selected];
      const reason = $("bulk-reason").value;
      const what = verb === "purge" ? "Purge" : "Terminate";
      if (!confirm(`${what} ${ids.length} instance(s)?`)) return;
      const answers = [];
      for (const id of ids) {
        const path = `/instances/${encodeURIComponent(id)}`;
        answers.push([id, verb === "purge" ? await send("DELETE", path)
                                          : await send("POST", `${path}/terminate?reason=${encodeURIComponent(reason)}`)]);
      }
      const done = answers.filter(([, a]) => a.status < 300).length;
      const box = $("bulk-result");
      box.replaceChildren(el("div", {}, `${what}: ${done} of ${ids.length} accepted by the Durable HTTP API.`),
        el("ul", {}, answers.map(([id, a]) => el("li", {class: "mono"}, `${id}: ${a.status} ${a.statusText}` +
                                                   (a.status >= 300 && a.text ? ` ${a.text}` : "")))));
      box.classList.toggle("refused", done < ids.length);
      show(box, true);
      this.selected.clear();
      await this.refresh();
    },

    bind() {
      $("filters").addEventListener("change", (event) => {
        const target = event.target;
        if (target.dataset.status !== undefined) {
          const chosen = [...document.querySelectorAll("[data-status]")].filter(i => i.checked).map(i => i.value);
          this.setFilters({status: chosen});
        } else if (target.id === "filter-name") this.setFilters({name: target.value});
        else if (target.id === "filter-from") this.setFilters({from: fromInputValue(target.value)});
        else if (target.id === "filter-to") this.setFilters({to: fromInputValue(target.value)});
        else if (target.id === "filter-top") this.setFilters({top: target.value});
      });
      let typing = null;
      $("filter-prefix").addEventListener("input", (event) => {
        clearTimeout(typing);
        typing = setTimeout(() => this.setFilters({prefix: event.target.value.trim()}), 250);
      });
      $("filters").addEventListener("submit", (event) => event.preventDefault());
      $("filter-clear").addEventListener("click", () => { location.hash = "#/instances"; });
      $("counts").addEventListener("click", (event) => {
        const chip = event.target.closest("[data-chip]");
        if (chip) this.setFilters({status: chip.dataset.chip === "All" ? [] : [chip.dataset.chip]});
      });
      $("instance-rows").addEventListener("change", (event) => {
        const id = event.target.dataset.pick;
        if (id === undefined) return;
        if (event.target.checked) this.selected.add(id); else this.selected.delete(id);
        this.renderSelection();
      });
      $("pick-all").addEventListener("change", (event) => {
        for (const id of this.shownIds) if (event.target.checked) this.selected.add(id); else this.selected.delete(id);
        for (const box of document.querySelectorAll("[data-pick]")) box.checked = event.target.checked;
        this.renderSelection();
      });
      $("page-older").addEventListener("click", () => { this.cursors.push(this.next); this.refresh(); });
      $("page-newer").addEventListener("click", () => { this.cursors.pop(); this.refresh(); });
      $("page-first").addEventListener("click", () => { this.cursors = [""]; this.refresh(); });
      $("bulk-terminate").addEventListener("click", () => this.bulk("terminate"));
      $("bulk-purge").addEventListener("click", () => this.bulk("purge"));
    },
  };

  // -- one instance ----------------------------------------------------------------------
  const instanceView = {
    id: "", data: null, fetchedAt: 0, chosen: null, restartedFrom: "",

    async open(where) {
      if (where.id !== this.id) {
        // A restart's answer stays in view on the page of the instance it started.
        show($("action-result"), where.id === this.restartedFrom);
        show($("purge-result"), false);
        this.restartedFrom = "";
        this.id = where.id;
        this.chosen = null;
        show($("bar-detail"), false);
        $("history").open = false;
      }
      $("instance-id").textContent = this.id;
      await this.refresh();
    },

    path() { return `/instances/${encodeURIComponent(this.id)}`; },

    async refresh() {
      const {status, body} = await getJson(`${DATA}/instance?id=${encodeURIComponent(this.id)}`);
      show($("instance-missing"), status === 404);
      if (status === 200) show($("purge-result"), false);
      show($("instance-body"), status === 200);
      if (status !== 200) {
        $("instance-status").replaceChildren();
        return;
      }
      this.data = body;
      this.fetchedAt = Date.now();
      this.render();
    },

    tick() { if (this.data && !this.data.timeline.execution.end) this.renderTimeline(); },

    render() {
      const {status, timeline} = this.data;
      const state = status.runtimeStatus;
      $("instance-status").replaceChildren(badge(state));
      $("instance-name").textContent = status.name;
      $("instance-created").textContent = localTime(this.data.createdTime);
      $("instance-updated").textContent = localTime(this.data.lastUpdatedTime);
      const generation = timeline.generations.current.generation;
      $("instance-execution").textContent = `${timeline.execution.id}` +
        (generation ? ` (generation ${generation})` : " (continued as new)");
      show($("instance-parent-row"), Boolean(this.data.parentInstanceId));
      $("instance-parent").replaceChildren(this.data.parentInstanceId ? el("a",
        {href: `#/instance/${encodeURIComponent(this.data.parentInstanceId)}`}, this.data.parentInstanceId) : "");
      const active = ACTIVE.includes(state);
      $("raise").disabled = $("terminate").disabled = !active;
      $("suspend").disabled = !["Running", "Pending"].includes(state);
      $("resume").disabled = state !== "Suspended";
      show($("rewind-note"), state === "Failed");
      show($("failure"), state === "Failed");
      $("failure-text").textContent = state === "Failed" ? pretty(status.output) : "";
      const failedAt = timeline.bars.map((bar, index) => [bar, index]).filter(([bar]) => bar.state === "failed").pop();
      $("failed-step").replaceChildren(...(failedAt ? ["Failed step: ", el("a", {href: "#", "data-show-lane": failedAt[1]},
                                                                          this.barLabel(failedAt[0]))] : []));
      $("instance-input").textContent = pretty(status.input);
      $("instance-output").textContent = pretty(status.output);
      $("instance-custom").textContent = pretty(status.customStatus);
      this.renderGenerations();
      this.renderTimeline();
      this.renderHistory();
    },

    renderGenerations() {
      const g = this.data.timeline.generations;
      const chips = g.earlier.map(e => el("span", {class: "generation", title: `execution ${e.executionId}`},
        `Generation ${e.generation}: ${localTime(e.start)} \u2013 ${localTime(e.end)} ` +
        `(${duration(Date.parse(e.end) - Date.parse(e.start))}, continued as new)`));
      if (g.earlierNotRecorded) chips.push(el("span", {class: "generation"},
        "Continued as new before this devhost noted its generations"));
      if (chips.length) {
        chips.push(el("span", {class: "generation current", title: `execution ${g.current.executionId}`},
          `${g.current.generation ? "Generation " + g.current.generation : "Current execution"}: ` +
          `since ${localTime(g.current.start)} (shown below)`));
        chips.push(el("span", {class: "hint"}, "Only the current execution's history is kept."));
      }
      $("generations").replaceChildren(...chips);
    },

    // Now, on the devhost's clock: the server's time when the data was read, plus the time since.
    now() { return Date.parse(this.data.timeline.now) + (Date.now() - this.fetchedAt); },

    renderTimeline() {
      const t = this.data.timeline;
      const execution = t.execution;
      const now = this.now();
      const start = Math.min(Date.parse(execution.start), ...t.bars.map(b => Date.parse(b.start)));
      let end = execution.end ? Date.parse(execution.end) : now;
      for (const bar of t.bars) if (bar.end) end = Math.max(end, Date.parse(bar.end));
      const span = Math.max(end - start, 1);
      const at = (ms) => `${((ms - start) / span) * 100}%`;
      const lane = (index, bar, label, note, classes, from, to, open) => {
        const block = el("div", {class: `bar ${classes}${open ? " open" : ""}`});
        block.style.left = at(from);
        block.style.width = `${((to - from) / span) * 100}%`;
        return el("div", {class: `lane${this.chosen === index ? " chosen" : ""}`, role: "listitem",
                          "data-lane": index, "data-kind": bar.kind, "data-state": bar.state},
                  el("div", {class: "label", title: label}, label),
                  el("div", {class: "track"}, block),
                  el("div", {class: `duration${bar.state === "failed" || bar.state === "stuck" ? " failed" : ""}`}, note));
      };
      const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => el("span", {},
        f === 0 ? localTime(new Date(start).toISOString()).slice(11) : `+${offset(span * f)}`));
      ticks.forEach((tick, i) => { tick.style.left = `${[0, 25, 50, 75, 100][i]}%`; });
      const rows = [el("div", {class: "axis"}, el("span", {}, ""), el("div", {class: "ticks"}, ticks), el("span", {}, ""))];
      const executionEnd = execution.end ? Date.parse(execution.end) : now;
      rows.push(lane(-1, {kind: "orchestration", state: execution.runtimeStatus},
        `${this.data.status.name} (orchestration)`,
        `${execution.end ? "" : "running, "}${duration(executionEnd - Date.parse(execution.start))}`,
        "orchestration", Date.parse(execution.start), executionEnd, !execution.end));
      t.bars.forEach((bar, index) => {
        const from = Date.parse(bar.start);
        const open = !bar.end;
        const to = open ? end : Date.parse(bar.end);
        const classes = [bar.kind, bar.waiting ? "waiting" : "", bar.state.replace(" ", "-")].join(" ");
        rows.push(lane(index, bar, this.barLabel(bar), this.barNote(bar, to - from, now), classes, from, to, open));
      });
      $("gantt").replaceChildren(...rows);
      $("gantt-omitted").textContent = t.omitted ? `${t.omitted} more bars are not drawn.` : "";
      show($("gantt-omitted"), t.omitted > 0);
      if (this.chosen !== null) this.renderDetail();
    },

    barLabel(bar) {
      const number = bar.taskId !== null ? ` #${bar.taskId}` : "";
      const retry = bar.retry ? " (retry)" : "";
      switch (bar.kind) {
        case "timer": return `${bar.name}${number}`;
        case "event": return `event ${bar.name}`;
        case "entity": return `${bar.instanceId} ${bar.name}${number}`;
        default: return `${bar.name}${retry} \u00b7 ${bar.kind}${number}`;
      }
    },

    barNote(bar, ms, now) {
      switch (bar.state) {
        case "failed": return `failed after ${duration(ms)}`;
        case "stuck": return "never scheduled: the app has no such function";
        case "sent": return "signal sent";
        case "received": return `waited ${duration(ms)}`;
        case "fired": return `waited ${duration(ms)}`;
        case "cancelled": return `cancelled (due ${localTime(bar.fireAt)})`;
        case "not fired": return "ended before it fired";
        case "not finished": return "still open when the execution ended";
        case "waiting":
          if (bar.kind === "timer") {
            const due = Date.parse(bar.fireAt);
            return due > now ? `waiting ${duration(ms)}, fires in ${duration(due - now)}` : `waiting ${duration(ms)}, due now`;
          }
          return `waiting ${duration(ms)}`;
        case "running": return `running ${duration(ms)}`;
        default: return duration(ms);
      }
    },

    renderDetail() {
      const box = $("bar-detail");
      if (this.chosen === -1) {
        const e = this.data.timeline.execution;
        box.replaceChildren(el("div", {}, `Orchestration ${this.data.status.name}, execution ${e.id}: ` +
          `started ${localTime(e.start)}${e.end ? ", ended " + localTime(e.end) + " (" + e.status + ")" : ", still running"}.`));
        show(box, true);
        return;
      }
      const bar = this.data.timeline.bars[this.chosen];
      if (!bar) { show(box, false); return; }
      const parts = [el("div", {}, `${this.barLabel(bar)}: ${bar.state}, from ${localTime(bar.start)}` +
                                   (bar.end ? ` to ${localTime(bar.end)}` : ", still open") +
                                   (bar.fireAt ? `; due ${localTime(bar.fireAt)}` : ""))];
      if (bar.instanceId && bar.kind === "sub-orchestration") {
        parts.push(el("div", {}, "Child instance: ", el("a", {href: `#/instance/${encodeURIComponent(bar.instanceId)}`}, bar.instanceId)));
      } else if (bar.instanceId) {
        parts.push(el("div", {}, `Entity: ${bar.instanceId}`));
      }
      if (bar.failure) {
        parts.push(el("div", {}, "Reason:"), el("pre", {class: "failure-reason"}, bar.failure.reason || ""));
        if (bar.failure.details) parts.push(el("div", {}, "Details:"), el("pre", {}, pretty(bar.failure.details)));
      }
      box.replaceChildren(...parts);
      show(box, true);
    },

    renderHistory() {
      const events = this.data.historyEvents;
      $("history-count").textContent = events.length;
      $("history-rows").replaceChildren(...events.map((e, i) => el("tr", {},
        el("td", {}, i + 1), el("td", {}, e.EventType), timeCell(e.Timestamp),
        el("td", {}, e.FunctionName || e.Name || ""),
        el("td", {}, el("details", {}, el("summary", {}, "JSON"), el("pre", {}, JSON.stringify(e, null, 2)))))));
    },

    async act(method, path, body, contentType) {
      const answer = await send(method, path, body, contentType);
      const restartedAs = path.includes("/restart?") && answer.json && answer.json.id;
      showAnswer($("action-result"), answer, restartedAs ? el("div", {}, "Restarted as ",
        el("a", {href: `#/instance/${encodeURIComponent(restartedAs)}`, id: "restarted-as"}, restartedAs)) : null);
      return answer;
    },

    bind() {
      $("failed-step").addEventListener("click", (event) => {
        const link = event.target.closest("[data-show-lane]");
        if (!link) return;
        event.preventDefault();
        this.chosen = Number(link.dataset.showLane);
        this.renderTimeline();
        $("bar-detail").scrollIntoView({block: "nearest"});
      });
      $("gantt").addEventListener("click", (event) => {
        const laneNode = event.target.closest("[data-lane]");
        if (!laneNode) return;
        this.chosen = Number(laneNode.dataset.lane);
        this.renderTimeline();
      });
      const reason = () => encodeURIComponent($("reason").value);
      $("raise-form").addEventListener("submit", async (event) => {
        event.preventDefault();
        await this.act("POST", `${this.path()}/raiseEvent/${encodeURIComponent($("event-name").value)}`,
                       $("event-data").value, "application/json");
        await this.refresh();
      });
      $("terminate").addEventListener("click", async () => {
        if (!confirm(`Terminate ${this.id}?`)) return;
        await this.act("POST", `${this.path()}/terminate?reason=${reason()}`);
        await this.refresh();
      });
      $("suspend").addEventListener("click", async () => {
        await this.act("POST", `${this.path()}/suspend?reason=${reason()}`);
        await this.refresh();
      });
      $("resume").addEventListener("click", async () => {
        await this.act("POST", `${this.path()}/resume?reason=${reason()}`);
        await this.refresh();
      });
      $("restart").addEventListener("click", async () => {
        const same = $("restart-same-id").checked;
        const answer = await this.act("POST", `${this.path()}/restart?restartWithNewInstanceId=${!same}`);
        if (answer.status === 202 && answer.json && answer.json.id) {
          this.restartedFrom = answer.json.id;
          location.hash = `#/instance/${encodeURIComponent(answer.json.id)}`;
          if (same) await this.refresh();
        }
      });
      $("purge").addEventListener("click", async () => {
        if (!confirm(`Purge ${this.id} and its history?`)) return;
        const answer = await this.act("DELETE", this.path());
        if (answer.status !== 200) return;
        // The page of an instance that is gone hides its actions and their answer box, so
        // the purge's answer is shown again above, with the note that says it is gone.
        showAnswer($("purge-result"), answer);
        await this.refresh();
      });
    },
  };

  // -- entities --------------------------------------------------------------------------
  const entitiesView = {
    tokens: [""], next: "",

    async open() {
      this.fillNames();
      await this.refresh();
    },

    fillNames() {
      const chosen = $("entity-name").value;
      $("entity-name").replaceChildren(el("option", {value: ""}, "All"),
        ...summary.entities.map(n => el("option", {value: n}, n)));
      $("entity-name").value = summary.entities.includes(chosen) ? chosen : "";
      $("entity-names").replaceChildren(...summary.entities.map(n => el("option", {value: n})));
    },

    async refresh() {
      const q = new URLSearchParams({top: "50"});
      const name = $("entity-name").value;
      const token = this.tokens[this.tokens.length - 1];
      if (name) q.set("name", name);
      if (token) q.set("continuation", token);
      const {status, body} = await getJson(`${DATA}/entities?${q}`);
      if (status !== 200) {
        $("entity-rows").replaceChildren(el("tr", {}, el("td", {colspan: 6}, (body && body.message) || `error ${status}`)));
        return;
      }
      this.next = body.continuation;
      // An entity last operated before the devhost kept the operation's name has none.
      $("entity-rows").replaceChildren(...body.entities.map(e => el("tr", {},
        el("td", {}, e.name), el("td", {class: "id"}, e.key),
        e.lastOperationName === null ? el("td", {class: "hint"}, "not recorded") : el("td", {class: "mono"}, e.lastOperationName),
        timeCell(e.lastOperationTime), el("td", {}, el("pre", {}, pretty(e.state))),
        el("td", {}, el("button", {type: "button", class: "quiet", "data-signal-name": e.name,
                                   "data-signal-key": e.key}, "Signal\u2026")))));
      show($("entities-empty"), body.entities.length === 0);
      $("entities-next").disabled = !this.next;
      $("entities-first").disabled = this.tokens.length === 1;
    },

    bind() {
      $("entity-name").addEventListener("change", () => { this.tokens = [""]; this.refresh(); });
      $("entity-rows").addEventListener("click", (event) => {
        const button = event.target.closest("[data-signal-name]");
        if (!button) return;
        $("signal-name").value = button.dataset.signalName;
        $("signal-key").value = button.dataset.signalKey;
        $("signal-op").focus();
      });
      $("entities-next").addEventListener("click", () => { this.tokens.push(this.next); this.refresh(); });
      $("entities-first").addEventListener("click", () => { this.tokens = [""]; this.refresh(); });
      $("signal-form").addEventListener("submit", async (event) => {
        event.preventDefault();
        const key = $("signal-key").value;
        let input = $("signal-input").value.trim();
        if (input && $("signal-as-sdk").checked) {
          try {
            input = JSON.stringify(JSON.stringify(JSON.parse(input)));  // json.dumps, sent as JSON
          } catch (_) {
            $("signal-result").replaceChildren("The input is not JSON, so the SDK's client could not send it.");
            $("signal-result").classList.add("refused");
            show($("signal-result"), true);
            return;
          }
        }
        const path = `/entities/${encodeURIComponent($("signal-name").value)}` +
                     `${key ? "/" + encodeURIComponent(key) : ""}?op=${encodeURIComponent($("signal-op").value)}`;
        const answer = await send("POST", path, input || undefined, input ? "application/json" : undefined);
        showAnswer($("signal-result"), answer);
        await this.refresh();
      });
    },
  };

  async function start() {
    instancesView.bind();
    instanceView.bind();
    entitiesView.bind();
    window.addEventListener("hashchange", route);
    $("live").addEventListener("change", () => { if ($("live").checked) $("live-state").textContent = ""; });
    try { await refreshSummary(); } catch (_) { $("live-state").textContent = "cannot reach the devhost"; }
    await route();
    setTimeout(poll, POLL_MS);
  }
  start();
})();
