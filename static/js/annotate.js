// The annotation workspace: keyboard labelling, autosave through a persistent outbox, conflicts,
// flags and submit. Vanilla ES2020 without dependencies; CSP-safe (no eval, no inline handlers,
// no markup built from data: every text goes in through textContent). Interface text comes from
// the root element's data-msg-* attributes, so it is translated by the server.
//
// Saving: every change is written to an outbox in localStorage *before* it is sent, and leaves it
// only when the server acknowledged it (200) or definitively refused it (409/422, shown to the
// annotator). One request is in flight at a time; changes to one value go in order, each based
// on the version the previous one returned. A change not yet sent absorbs later changes of the
// same value; a change already sent keeps its change_id on every retry, so the server can answer
// a retry with its first answer instead of applying it twice.
(function () {
  "use strict";

  const root = document.getElementById("workspace");
  if (!root) return;

  const ws = JSON.parse(document.getElementById("ws-data").textContent);
  ws.codebook = JSON.parse(document.getElementById("ws-codebook").textContent);
  const slug = root.dataset.slug;
  const zh = root.dataset.lang === "zh";
  const API = "/api/v1/projects/" + encodeURIComponent(slug) + "/assignments/" + ws.assignment.id;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF = csrfMeta ? csrfMeta.getAttribute("content") || "" : "";
  const STORE_KEY = "psy-annotator:outbox:" + slug + ":" + ws.assignment.id;
  const TEXT_DELAY = 600; // ms of quiet before a text field is sent
  const RETRY_FIRST = 500;
  const RETRY_MAX = 15000;
  const REQUEST_TIMEOUT = 20000; // a hung request is retried (same change_id)
  const IDLE_AFTER = 5 * 60 * 1000; // time without any input does not count as time spent

  const $ = (id) => document.getElementById(id);
  const statusEl = $("save-status");
  const messageEl = $("ws-message");
  const guidelines = $("guidelines");
  const units = Array.from(root.querySelectorAll(".unit")); // the session panel, then the turns
  const unitByPos = new Map(units.map((u) => [Number(u.dataset.position), u]));
  const dims = new Map(ws.codebook.dimensions.map((d) => [d.key, d]));

  let readOnly = root.dataset.readOnly === "true";
  let current = null; // the unit (turn or session panel) the keys act on

  // --- text -------------------------------------------------------------------------------------

  function msg(name, params) {
    const text = root.dataset["msg" + name] || "";
    if (!params) return text;
    return text.replace(/%\((\w+)\)s/g, (all, k) => (k in params ? String(params[k]) : all));
  }

  function dimName(d) {
    return zh ? d.name_zh : d.name_en;
  }

  function labelName(d, value) {
    const label = d.labels.find((l) => l.value === value);
    return label ? (zh ? label.name_zh : label.name_en) : value;
  }

  function unitName(u) {
    if (!u) return "";
    const named = u.getAttribute("aria-label");
    if (named) return named;
    const heading = $(u.getAttribute("aria-labelledby") || "");
    return heading ? heading.textContent.trim() : "";
  }

  function formatValue(d, v) {
    if (!v) return msg("Empty");
    if (d && d.kind === "label") {
      const names = (v.labels || []).map((x) => labelName(d, x));
      return names.length ? names.join(zh ? "、" : ", ") : msg("Empty");
    }
    return v.text ? v.text : msg("Empty");
  }

  function detailText(data) {
    if (!data || data.detail == null) return "";
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((x) => (x && x.msg) || "").join("; ");
    return String(data.detail);
  }

  function announce(text) {
    // The same message twice in a row is still a change, so screen readers say it again.
    messageEl.textContent = messageEl.textContent === text ? text + "\u00a0" : text;
  }

  // --- values: acknowledged by the server, and the outbox on top ---------------------------------

  const keyOf = (pos, dim) => pos + "|" + dim;
  const acked = new Map();
  for (const v of ws.values) {
    acked.set(keyOf(v.position, v.dimension), { labels: v.labels, text: v.text, version: v.version });
  }
  const ackedVersion = (k) => (acked.get(k) || { version: 0 }).version;

  function newId() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    // Plain-http deployments are not a secure context and have no randomUUID.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function validEntry(e) {
    if (!e || typeof e.id !== "string" || typeof e.position !== "number") return false;
    if (e.kind === "note") return !!e.note;
    return e.kind === "value" && typeof e.dimension === "string" && typeof e.key === "string";
  }

  function loadBox() {
    try {
      const raw = localStorage.getItem(STORE_KEY);
      const stored = raw ? JSON.parse(raw) : null;
      if (stored && Array.isArray(stored.entries)) {
        return {
          entries: stored.entries.filter(validEntry),
          conflicts: Array.isArray(stored.conflicts) ? stored.conflicts : [],
        };
      }
    } catch (err) {
      // unreadable storage: start empty
    }
    return { entries: [], conflicts: [] };
  }

  const box = loadBox();

  function saveBox() {
    try {
      if (!box.entries.length && !box.conflicts.length) localStorage.removeItem(STORE_KEY);
      else localStorage.setItem(STORE_KEY, JSON.stringify(box));
    } catch (err) {
      // Private mode or a full quota: the in-memory outbox still sends and retries.
    }
  }

  function lastEntry(k) {
    for (let i = box.entries.length - 1; i >= 0; i--) {
      const e = box.entries[i];
      if (e.kind === "value" && e.key === k) return e;
    }
    return null;
  }

  function shownValue(k) {
    // A read-only page shows what the server holds; stored changes wait for a reopen.
    if (readOnly) return acked.get(k) || null;
    const e = lastEntry(k);
    if (e) return e;
    const c = box.conflicts.find((x) => x.key === k);
    if (c) return c.mine;
    return acked.get(k) || null;
  }

  function groupOf(pos, dimKey) {
    const u = unitByPos.get(pos);
    if (!u) return null;
    for (const g of u.querySelectorAll(".dim")) if (g.dataset.dimension === dimKey) return g;
    return null;
  }

  function render(pos, dimKey) {
    const g = groupOf(pos, dimKey);
    const d = dims.get(dimKey);
    if (!g || !d) return;
    const v = shownValue(keyOf(pos, dimKey));
    if (d.kind === "label") {
      const on = new Set((v && v.labels) || []);
      for (const b of g.querySelectorAll("button.lbl")) {
        const pressed = on.has(b.dataset.value) ? "true" : "false";
        if (b.getAttribute("aria-pressed") !== pressed) b.setAttribute("aria-pressed", pressed);
      }
    } else {
      const ta = g.querySelector("textarea");
      const text = (v && v.text) || "";
      if (ta && ta.value !== text && document.activeElement !== ta) ta.value = text;
    }
  }

  function enqueue(pos, dimKey, labels, text, delay) {
    const k = keyOf(pos, dimKey);
    const last = lastEntry(k);
    const due = Date.now() + delay;
    if (last && !last.sent) {
      // Not sent yet: the newer value replaces it (same change id, same base).
      last.labels = labels;
      last.text = text;
      last.due = due;
    } else {
      box.entries.push({
        kind: "value", id: newId(), key: k, position: pos, dimension: dimKey,
        labels: labels, text: text,
        // Behind a change still on its way, the base is the version that change will get.
        base: last ? null : ackedVersion(k),
        sent: false, due: due,
      });
    }
    saveBox();
    clearMissing(pos, dimKey);
    showStatus();
    schedule(delay);
  }

  function flushText(ta) {
    const u = ta.closest(".unit");
    if (!u) return;
    const e = lastEntry(keyOf(Number(u.dataset.position), ta.dataset.dimension));
    if (e && !e.sent && e.due > Date.now()) {
      e.due = Date.now();
      saveBox();
      schedule(0);
    }
  }

  function flushAll() {
    const now = Date.now();
    for (const e of box.entries) if (!e.sent && e.due > now) e.due = now;
    saveBox();
    retryAt = 0;
    schedule(0);
  }

  // --- sending ---------------------------------------------------------------------------------

  let inFlight = false;
  let timer = 0;
  let attempt = 0;
  let retryAt = 0;
  let failing = null; // null, "network" or "auth"

  function schedule(ms) {
    if (inFlight) return; // the running send schedules the next one when it ends
    const wait = Math.max(ms, retryAt - Date.now(), 0);
    clearTimeout(timer);
    timer = setTimeout(pump, wait);
  }

  function post(path, data, keepalive) {
    const abort = new AbortController();
    const timeout = setTimeout(() => abort.abort(), REQUEST_TIMEOUT);
    return fetch(API + path, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      keepalive: !!keepalive,
      signal: keepalive ? undefined : abort.signal,
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": CSRF,
      },
      body: JSON.stringify(data),
    }).finally(() => clearTimeout(timeout));
  }

  function nextEntry(now) {
    // The first entry whose value has nothing before it in the outbox and no open conflict.
    const blocked = new Set(box.conflicts.map((c) => c.key));
    let soonest = Infinity;
    for (const e of box.entries) {
      const k = e.kind === "value" ? e.key : "note:" + e.id;
      if (blocked.has(k) || (readOnly && e.kind === "value")) continue;
      blocked.add(k);
      if (!e.sent && e.due > now) {
        soonest = Math.min(soonest, e.due);
        continue;
      }
      return { entry: e, soonest: now };
    }
    return { entry: null, soonest: soonest };
  }

  function payload(e) {
    if (e.kind === "note") return Object.assign({}, e.note, { client_id: e.id });
    return {
      change_id: e.id, position: e.position, dimension: e.dimension,
      labels: e.labels, text: e.text, base_version: e.base,
    };
  }

  async function pump() {
    timer = 0;
    if (inFlight) return;
    const now = Date.now();
    if (now < retryAt) {
      schedule(0);
      return;
    }
    const { entry, soonest } = nextEntry(now);
    if (!entry) {
      if (soonest < Infinity) schedule(soonest - now);
      showStatus();
      return;
    }
    inFlight = true;
    if (entry.kind === "value" && entry.base === null) entry.base = ackedVersion(entry.key);
    entry.sent = true; // from now on this exact change (id, base, value) is what gets retried
    saveBox();
    showStatus();
    let outcome;
    try {
      const res = await post(entry.kind === "value" ? "/values" : "/notes", payload(entry));
      outcome = await handle(entry, res);
    } catch (err) {
      outcome = "network";
    }
    inFlight = false;
    if (outcome === "done") {
      attempt = 0;
      retryAt = 0;
      failing = null;
    } else {
      rotate(entry);
      attempt += 1;
      failing = outcome;
      const backoff = RETRY_FIRST * 2 ** Math.min(attempt - 1, 10);
      retryAt = Date.now() + Math.min(RETRY_MAX, backoff * (0.8 + Math.random() * 0.4));
    }
    showStatus();
    schedule(0);
  }

  function rotate(entry) {
    // A change that keeps failing goes to the back (with the later changes of its value, in
    // order), so one bad request cannot hold up the others.
    const k = entry.kind === "value" ? entry.key : null;
    const moved = box.entries.filter((e) => e === entry || (k !== null && e.kind === "value" && e.key === k));
    if (moved.length === box.entries.length) return;
    box.entries = box.entries.filter((e) => !moved.includes(e)).concat(moved);
    saveBox();
  }

  async function handle(entry, res) {
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (res.ok) {
      // An answer that is not the expected JSON (a proxy page?) is no acknowledgement.
      if (!data || (entry.kind === "value" && !Number.isInteger(data.version))) return "network";
      if (entry.kind === "value") acknowledge(entry, data);
      else noteSaved(entry);
      return "done";
    }
    if (res.status === 401 || res.status === 403) return "auth";
    if (res.status === 408 || res.status === 429 || res.status >= 500) return "network";
    if (entry.kind === "value" && res.status === 409 && data && data.current) {
      conflict(entry, data.current);
    } else if (res.status === 409) {
      becameReadOnly();
    } else {
      refused(entry, data);
    }
    return "done";
  }

  function removeEntry(entry) {
    const i = box.entries.indexOf(entry);
    if (i >= 0) box.entries.splice(i, 1);
  }

  function chainNext(k, version) {
    const next = box.entries.find((e) => e.kind === "value" && e.key === k);
    if (next && next.base === null) next.base = version;
  }

  function acknowledge(entry, data) {
    removeEntry(entry);
    const prev = acked.get(entry.key);
    // A replayed change answers with its first answer, which may be older than what we hold.
    if (!prev || data.version >= prev.version) {
      acked.set(entry.key, { labels: data.labels, text: data.text, version: data.version });
    }
    chainNext(entry.key, data.version);
    saveBox();
    render(entry.position, entry.dimension);
    const state = $("assignment-status");
    if (state.dataset.status === "assigned") {
      state.dataset.status = "in_progress"; // the server starts the assignment on the first save
      state.textContent = msg("StatusInProgress");
    }
  }

  function refused(entry, data) {
    removeEntry(entry);
    if (entry.kind === "value") {
      chainNext(entry.key, ackedVersion(entry.key));
      saveBox();
      render(entry.position, entry.dimension);
    } else {
      saveBox();
      const shown = root.querySelector('[data-pending="' + entry.id + '"]');
      if (shown) shown.remove();
    }
    announce(msg("Refused", { reason: detailText(data) }));
  }

  function sameValue(a, b) {
    if (!a || !b) return !a && !b;
    if (a.labels || b.labels) {
      const x = (a.labels || []).slice().sort();
      const y = (b.labels || []).slice().sort();
      return x.length === y.length && x.every((v, i) => v === y[i]);
    }
    return (a.text || "") === (b.text || "");
  }

  function conflict(entry, current) {
    const k = entry.key;
    const latest = shownValue(k);
    const mine = { labels: latest.labels == null ? null : latest.labels, text: latest.text == null ? null : latest.text };
    box.entries = box.entries.filter((e) => !(e.kind === "value" && e.key === k));
    if (sameValue(mine, current)) {
      // Both sides saved the same value: nothing to choose.
      acked.set(k, { labels: current.labels, text: current.text, version: current.version });
    } else {
      box.conflicts.push({ key: k, position: entry.position, dimension: entry.dimension, mine: mine, current: current });
    }
    saveBox();
    render(entry.position, entry.dimension);
    openConflict();
  }

  function becameReadOnly() {
    // Submitted meanwhile (another tab, another browser): the changes not saved stay in the
    // outbox, and are sent if a lead reopens the dialogue; the screen shows the saved values.
    setReadOnly();
    for (const e of box.entries.concat(box.conflicts)) {
      if (e.dimension !== undefined) render(e.position, e.dimension);
    }
    announce(msg("NowReadOnly"));
  }

  function pending() {
    return readOnly ? box.entries.some((e) => e.kind === "note") : box.entries.length > 0;
  }

  function showStatus() {
    let state = "saved";
    if (pending() || inFlight || (!readOnly && box.conflicts.length)) {
      state = failing === "auth" ? "signed-out" : failing ? "retrying" : "saving";
    }
    if (statusEl.dataset.state === state) return;
    statusEl.dataset.state = state;
    statusEl.textContent = {
      saved: msg("Saved"), saving: msg("Saving"), retrying: msg("Retrying"), "signed-out": msg("SignedOut"),
    }[state];
  }

  function whenIdle(ms) {
    const until = Date.now() + ms;
    return new Promise((resolve) => {
      (function check() {
        if (!pending() && !inFlight) resolve(true);
        else if (Date.now() > until) resolve(false);
        else setTimeout(check, 100);
      })();
    });
  }

  // --- conflicts -------------------------------------------------------------------------------

  const conflictDialog = $("conflict-dialog");
  let resolving = false;

  function openConflict() {
    if (readOnly || conflictDialog.open || !box.conflicts.length) return;
    for (const other of root.querySelectorAll("dialog[open]")) other.close();
    const c = box.conflicts[0];
    const d = dims.get(c.dimension);
    $("conflict-where").textContent =
      unitName(unitByPos.get(c.position)) + " — " + (d ? dimName(d) : c.dimension);
    $("conflict-mine").textContent = formatValue(d, c.mine);
    $("conflict-theirs").textContent = formatValue(d, c.current);
    conflictDialog.showModal();
  }

  function resolve(keepMine) {
    const c = box.conflicts.shift();
    if (!c) return;
    const prev = acked.get(c.key);
    if (!prev || c.current.version >= prev.version) {
      acked.set(c.key, { labels: c.current.labels, text: c.current.text, version: c.current.version });
    }
    if (keepMine) {
      box.entries.push({
        kind: "value", id: newId(), key: c.key, position: c.position, dimension: c.dimension,
        labels: c.mine.labels, text: c.mine.text, base: ackedVersion(c.key), sent: false, due: 0,
      });
    }
    saveBox();
    resolving = true;
    conflictDialog.close();
    resolving = false;
    render(c.position, c.dimension);
    const g = groupOf(c.position, c.dimension);
    const focusable = g && g.querySelector("button, textarea");
    if (focusable) focusable.focus();
    showStatus();
    schedule(0);
    openConflict();
  }

  // A conflict must be decided: Escape does not dismiss it.
  conflictDialog.addEventListener("cancel", (e) => e.preventDefault());
  conflictDialog.addEventListener("close", () => {
    if (!resolving && box.conflicts.length) setTimeout(openConflict, 0);
  });

  // --- labels, text and suggestions ---------------------------------------------------------------

  function toggle(btn, byKey) {
    if (readOnly || btn.disabled) return;
    const g = btn.closest(".dim");
    const u = btn.closest(".unit");
    const d = g && dims.get(g.dataset.dimension);
    if (!u || !d) return;
    const pos = Number(u.dataset.position);
    const cur = shownValue(keyOf(pos, d.key));
    let labels = cur && cur.labels ? cur.labels.slice() : [];
    const value = btn.dataset.value;
    const name = labelName(d, value);
    const max = d.max_labels || 1;
    if (labels.includes(value)) {
      labels = labels.filter((x) => x !== value);
      if (byKey) announce(msg("Removed", { label: name }));
    } else if (max === 1) {
      labels = [value]; // radio-like: the new label replaces the old one
      if (byKey) announce(msg("Selected", { label: name }));
    } else if (labels.length >= max) {
      announce(msg("TooMany", { n: max, dimension: dimName(d) }));
      return;
    } else {
      labels.push(value);
      if (byKey) announce(msg("Selected", { label: name }));
    }
    enqueue(pos, d.key, labels, null, 0);
    render(pos, d.key);
  }

  function hotkey(key) {
    const u = activeUnit();
    if (!u || readOnly) return false;
    const groups = Array.from(u.querySelectorAll(".dim--label"));
    // Where two dimensions share a key, the one holding the focus wins, else the first.
    const focused = document.activeElement && document.activeElement.closest(".dim--label");
    if (focused && groups.includes(focused)) groups.unshift(focused);
    for (const g of groups) {
      for (const b of g.querySelectorAll("button.lbl")) {
        if (b.dataset.hotkey === key) {
          toggle(b, true);
          return true;
        }
      }
    }
    return false;
  }

  function acceptSuggestions() {
    const u = activeUnit();
    if (!u || readOnly) return;
    const pos = Number(u.dataset.position);
    const mine = (ws.suggestions || []).filter((s) => s.position === pos && groupOf(pos, s.dimension));
    for (const s of mine) {
      const d = dims.get(s.dimension);
      const cur = shownValue(keyOf(pos, d.key));
      if (d.kind === "label" && s.labels) {
        const known = s.labels.filter((v) => d.labels.some((l) => l.value === v));
        const wanted = known.slice(0, d.max_labels || 1);
        if (wanted.length && !sameValue({ labels: wanted }, { labels: (cur && cur.labels) || [] })) {
          enqueue(pos, d.key, wanted, null, 0);
        }
      } else if (d.kind === "text" && s.text && !(cur && cur.text)) {
        enqueue(pos, d.key, null, s.text, 0);
      }
      render(pos, d.key);
    }
    announce(mine.length ? msg("Accepted") : msg("NoSuggestions"));
  }

  // --- missing values, submit, read-only -----------------------------------------------------------

  const problems = $("submit-problems");
  const missingList = $("missing-list");

  function showMissing(missing) {
    missingList.replaceChildren();
    for (const m of missing) {
      const d = dims.get(m.dimension);
      const a = document.createElement("a");
      a.href = m.position === -1 ? "#session-panel" : "#turn-" + (m.position + 1);
      a.textContent = unitName(unitByPos.get(m.position)) + " — " + (d ? dimName(d) : m.dimension);
      a.dataset.position = String(m.position);
      a.dataset.dimension = m.dimension;
      const li = document.createElement("li");
      li.append(a);
      missingList.append(li);
      const g = groupOf(m.position, m.dimension);
      if (g) g.classList.add("is-missing");
    }
    problems.hidden = false;
    $("h-missing").focus();
  }

  function clearMissing(pos, dimKey) {
    const g = groupOf(pos, dimKey);
    if (g) g.classList.remove("is-missing");
    for (const a of missingList.querySelectorAll("a")) {
      if (a.dataset.position === String(pos) && a.dataset.dimension === dimKey) a.parentElement.remove();
    }
    if (!problems.hidden && !missingList.children.length) problems.hidden = true;
  }

  function goToMissing(a) {
    const pos = Number(a.dataset.position);
    const u = unitByPos.get(pos);
    if (!u) return;
    setCurrent(u);
    const g = groupOf(pos, a.dataset.dimension);
    const target = (g && g.querySelector("button, textarea")) || u;
    target.focus({ preventScroll: true });
    (g || u).scrollIntoView({ block: "nearest" });
  }

  let submitting = false;

  async function submit() {
    if (readOnly || submitting) return;
    submitting = true;
    try {
      flushAll();
      if (!(await whenIdle(10000)) || box.conflicts.length) {
        announce(msg("Unsaved"));
        return;
      }
      let res;
      try {
        res = await post("/submit", {});
      } catch (err) {
        announce(msg("Unsaved"));
        return;
      }
      let data = null;
      try {
        data = await res.json();
      } catch (err) {
        data = null;
      }
      if (res.ok || res.status === 409) {
        setReadOnly();
        const note = $("read-only-note");
        note.tabIndex = -1;
        note.focus();
      } else if (res.status === 422 && data && Array.isArray(data.missing)) {
        showMissing(data.missing);
      } else {
        announce(msg("SubmitFailed", { reason: detailText(data) || String(res.status) }));
      }
    } finally {
      submitting = false;
    }
  }

  function setReadOnly() {
    readOnly = true;
    root.dataset.readOnly = "true";
    root.classList.add("is-readonly");
    for (const b of root.querySelectorAll("button.lbl, #btn-submit")) b.disabled = true;
    for (const t of root.querySelectorAll("textarea.dim-text")) t.readOnly = true;
    const state = $("assignment-status");
    state.dataset.status = "submitted";
    state.textContent = msg("StatusSubmitted");
    $("read-only-note").hidden = false;
    problems.hidden = true;
  }

  // --- flags and comments ------------------------------------------------------------------------

  const flagDialog = $("flag-dialog");
  const flagNames = { unclear: msg("FlagUnclear"), risk: msg("FlagRisk") };
  let flagUnit = null;

  function showNote(u, note, pendingId) {
    if (!u) return;
    let shown;
    if (note.kind === "flag") {
      const holder = u.querySelector(".note-flags");
      if (!holder) return;
      shown = document.createElement("span");
      shown.className = "note-flag";
      shown.dataset.flag = note.flag;
      shown.textContent = flagNames[note.flag] || note.flag;
      holder.append(shown);
    } else {
      const holder = u.querySelector(".notes");
      if (!holder) return;
      shown = document.createElement("li");
      shown.className = "note-comment";
      shown.textContent = note.text;
      holder.append(shown);
    }
    if (pendingId) shown.dataset.pending = pendingId;
  }

  function noteSaved(entry) {
    removeEntry(entry);
    saveBox();
    const shown = root.querySelector('[data-pending="' + entry.id + '"]');
    if (shown) delete shown.dataset.pending;
  }

  function addNote(u, kind, flag, text) {
    const note = { position: Number(u.dataset.position), kind: kind, flag: flag, text: text };
    const entry = { kind: "note", id: newId(), position: note.position, note: note, sent: false, due: 0 };
    box.entries.push(entry);
    saveBox();
    showNote(u, note, entry.id);
    showStatus();
    schedule(0);
  }

  function openFlag() {
    const u = activeUnit();
    if (!u || readOnly || !u.classList.contains("turn")) return;
    flagUnit = u;
    $("flag-target").textContent = unitName(u);
    $("flag-comment").value = "";
    flagDialog.showModal();
  }

  function flag(kind) {
    const u = flagUnit;
    flagDialog.close();
    if (!u) return;
    focusUnit(u);
    const already = Array.from(u.querySelectorAll(".note-flag")).some((f) => f.dataset.flag === kind);
    if (!already) addNote(u, "flag", kind, "");
    announce(unitName(u) + " — " + (flagNames[kind] || kind));
  }

  function addComment() {
    const u = flagUnit;
    const text = $("flag-comment").value.trim();
    if (!u || !text) return;
    flagDialog.close();
    focusUnit(u);
    addNote(u, "comment", "", text);
  }

  flagDialog.addEventListener("keydown", (e) => {
    if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (e.key === "u" || e.key === "r") {
      e.preventDefault();
      flag(e.key === "u" ? "unclear" : "risk");
    }
  });
  flagDialog.addEventListener("close", () => {
    // Closing a modal dialog gives the focus back to where it was; make sure it is the turn.
    // (The event comes a task later: keys pressed meanwhile may have moved on already.)
    if (flagUnit && (document.activeElement === document.body || !document.activeElement)) {
      focusUnit(flagUnit);
    }
  });

  // --- moving around -----------------------------------------------------------------------------

  function setCurrent(u) {
    if (current === u) return;
    if (current) {
      current.classList.remove("is-current");
      current.removeAttribute("aria-current");
    }
    current = u;
    if (u) {
      u.classList.add("is-current");
      u.setAttribute("aria-current", "true");
    }
  }

  function activeUnit() {
    const inside = document.activeElement && document.activeElement.closest(".unit");
    return inside || current;
  }

  function focusUnit(u) {
    if (!u) return;
    setCurrent(u);
    u.focus({ preventScroll: true });
    u.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const at = units.indexOf(activeUnit());
    let target;
    if (at === -1) target = step > 0 ? units[1] || units[0] : units[0];
    else target = units[Math.min(units.length - 1, Math.max(0, at + step))];
    focusUnit(target);
  }

  function focusText() {
    const u = activeUnit();
    const ta = u && u.querySelector("textarea.dim-text");
    if (!ta) return false;
    setCurrent(u);
    ta.focus();
    return true;
  }

  function toggleGuidelines(open) {
    const show = open === undefined ? guidelines.hidden : open;
    guidelines.hidden = !show;
    $("btn-guidelines").setAttribute("aria-expanded", show ? "true" : "false");
    root.classList.toggle("guidelines-open", show);
  }

  function openHelp() {
    $("help-dialog").showModal();
  }

  function isTyping(t) {
    return (
      t instanceof HTMLElement &&
      (t.isContentEditable ||
        t.matches("textarea, select, input:not([type=button]):not([type=submit]):not([type=checkbox]):not([type=radio])"))
    );
  }

  function arrowsMove(t) {
    return t === document.body || t === document.documentElement || !!(t.closest && t.closest(".unit"));
  }

  function onKey(e) {
    if (e.defaultPrevented || e.isComposing || e.keyCode === 229) return;
    const t = e.target;
    const dialogOpen = !!root.querySelector("dialog[open]");
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !dialogOpen) {
      e.preventDefault();
      submit();
      return;
    }
    if (dialogOpen) return; // the open dialog has its own keys
    if (isTyping(t)) {
      if (e.key === "Escape" && t.classList.contains("dim-text")) {
        e.preventDefault();
        flushText(t);
        focusUnit(t.closest(".unit"));
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const interactive = t instanceof HTMLElement && t.matches("a[href], button, summary, [role=button]");
    let done = true;
    switch (e.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "ArrowDown":
      case "ArrowUp":
        if (!arrowsMove(t)) return;
        move(e.key === "ArrowDown" ? 1 : -1);
        break;
      case "Enter":
        if (interactive) return; // Enter still presses the focused button
        done = focusText();
        break;
      case "t":
        done = focusText();
        break;
      case "s":
        focusUnit(unitByPos.get(-1));
        break;
      case "a":
        acceptSuggestions();
        break;
      case "f":
        openFlag();
        break;
      case "g":
        toggleGuidelines();
        break;
      case "?":
        openHelp();
        break;
      case "Escape":
        if (guidelines.hidden) return;
        toggleGuidelines(false);
        break;
      default:
        done = e.key.length === 1 && hotkey(e.key);
    }
    if (done) e.preventDefault();
  }

  document.addEventListener("keydown", onKey);

  root.addEventListener("focusin", (e) => {
    const u = e.target.closest && e.target.closest(".unit");
    if (u) setCurrent(u);
  });

  root.addEventListener("click", (e) => {
    const link = e.target.closest("#missing-list a");
    if (link) {
      e.preventDefault();
      goToMissing(link);
      return;
    }
    const b = e.target.closest("button");
    if (!b || !root.contains(b)) return;
    if (b.classList.contains("lbl")) toggle(b, false);
    else if (b.id === "btn-submit") submit();
    else if (b.id === "btn-help") openHelp();
    else if (b.id === "btn-guidelines" || b.id === "guidelines-close") toggleGuidelines();
    else if (b.id === "conflict-keep") resolve(true);
    else if (b.id === "conflict-use-theirs") resolve(false);
    else if (b.id === "flag-comment-add") addComment();
    else if (b.dataset.flag) flag(b.dataset.flag);
    else if (b.classList.contains("dialog-close")) b.closest("dialog").close();
  });

  function textChanged(t) {
    if (readOnly || !t.classList || !t.classList.contains("dim-text")) return;
    const u = t.closest(".unit");
    if (u) enqueue(Number(u.dataset.position), t.dataset.dimension, null, t.value, TEXT_DELAY);
  }

  // While an input method composes (pinyin), the field holds letters that are not text yet.
  root.addEventListener("input", (e) => {
    if (!e.isComposing) textChanged(e.target);
  });
  root.addEventListener("compositionend", (e) => textChanged(e.target));

  root.addEventListener("focusout", (e) => {
    if (e.target.classList && e.target.classList.contains("dim-text")) flushText(e.target);
  });

  // --- time spent --------------------------------------------------------------------------------

  let visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  let lastActivity = Date.now();
  let spentMs = 0;

  function collect() {
    const now = Date.now();
    if (visibleSince !== null && now - lastActivity < IDLE_AFTER) spentMs += now - visibleSince;
    visibleSince = visibleSince === null ? null : now;
  }

  function reportTime(keepalive) {
    if (readOnly) return;
    collect();
    const seconds = Math.floor(spentMs / 1000);
    if (seconds < 1) return;
    spentMs -= seconds * 1000;
    post("/time", { seconds: Math.min(seconds, 3600) }, keepalive)
      .then((res) => {
        if (res.status >= 500) spentMs += seconds * 1000;
      })
      .catch(() => {
        spentMs += seconds * 1000;
      });
  }

  for (const type of ["keydown", "pointerdown", "input"]) {
    document.addEventListener(type, () => (lastActivity = Date.now()), { passive: true, capture: true });
  }
  setInterval(() => reportTime(false), 30000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      reportTime(true);
      visibleSince = null;
    } else {
      visibleSince = Date.now();
      retryAt = 0;
      schedule(0);
    }
  });
  window.addEventListener("pagehide", () => reportTime(true));
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) schedule(0); // back from the back-forward cache: resume sending
  });
  window.addEventListener("online", () => {
    retryAt = 0; // the network is back: retry now rather than at the end of the backoff
    schedule(0);
  });

  // --- start: replay the outbox on top of what the server sent -------------------------------------

  for (const c of box.conflicts) {
    const server = acked.get(c.key);
    if (server && server.version > c.current.version) c.current = server;
  }
  for (const e of box.entries) {
    if (e.kind === "value") render(e.position, e.dimension);
    else showNote(unitByPos.get(e.position), e.note, e.id);
  }
  for (const c of box.conflicts) render(c.position, c.dimension);
  if (readOnly && box.entries.some((e) => e.kind === "value")) announce(msg("NowReadOnly"));
  showStatus();
  schedule(0);
  openConflict();
  root.dataset.ready = "true";
})();
