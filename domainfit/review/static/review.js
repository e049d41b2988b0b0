// domainfit review page: keyboard-first decisions on server-rendered pairs.
// Document text is untrusted: this script only ever sets textContent, never HTML.
"use strict";

(() => {
  const FILTERS = ["unreviewed", "accepted", "rejected", "edited", "auto-rejected", "all"];
  const UNDECIDED = new Set(["unreviewed", "auto-rejected"]);
  const body = document.body;
  const token = body.dataset.token;
  const tokenHeader = body.dataset.tokenHeader || "X-Review-Token";
  const queue = document.getElementById("queue");
  const entries = Array.from(queue.querySelectorAll(".entry"));
  const entryById = new Map(entries.map((entry) => [entry.dataset.id, entry]));
  const detailById = new Map(
    Array.from(document.querySelectorAll(".detail")).map((detail) => [detail.dataset.id, detail])
  );
  const search = document.getElementById("search");
  const empty = document.getElementById("empty");
  const toast = document.getElementById("toast");
  const help = document.getElementById("help");
  const haystacks = new Map();

  let filter = FILTERS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "unreviewed";
  let current = null;
  let editing = null;
  let writing = null;
  let busy = false;
  let toastTimer = null;

  const role = (root, name) => root.querySelector(`[data-role="${name}"]`);

  function haystack(entry) {
    const id = entry.dataset.id;
    if (!haystacks.has(id)) {
      const detail = detailById.get(id);
      const parts = [entry, ...detail.querySelectorAll(".chunk-text, .reasons li, .original")];
      haystacks.set(id, parts.map((node) => node.textContent).join(" ").toLowerCase());
    }
    return haystacks.get(id);
  }

  function matches(entry) {
    if (!entry.dataset.filters.split(" ").includes(filter)) return false;
    const terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    return terms.every((term) => haystack(entry).includes(term));
  }

  const visible = () => entries.filter((entry) => !entry.hidden);

  function applyFilter() {
    for (const entry of entries) entry.hidden = !matches(entry);
    for (const tab of document.querySelectorAll(".filter")) {
      tab.setAttribute("aria-selected", String(tab.dataset.filter === filter));
    }
    const shown = visible();
    empty.hidden = shown.length > 0;
    if (!shown.length) {
      role(empty, "empty-hint").textContent =
        filter === "unreviewed" && !search.value
          ? "Every generated pair has a decision. Export the JSONL or go on with `domainfit mine`."
          : "Try another filter or clear the search.";
    }
    if (current && current.hidden) select(null);
    if (!current && shown.length) select(shown[0]);
    updatePosition();
  }

  function setFilter(name) {
    filter = name;
    history.replaceState(null, "", `${location.pathname}${location.search}#${name}`);
    select(null);
    applyFilter();
  }

  function updatePosition() {
    if (!current) return;
    const shown = visible();
    role(detailById.get(current.dataset.id), "position").textContent =
      `${shown.indexOf(current) + 1} of ${shown.length}`;
  }

  function select(entry) {
    if (editing) closeEditor();
    if (writing) closeWriter();
    if (current) {
      current.classList.remove("current");
      current.removeAttribute("aria-current");
      detailById.get(current.dataset.id).hidden = true;
    }
    current = entry;
    if (!entry) return;
    entry.classList.add("current");
    entry.setAttribute("aria-current", "true");
    const detail = detailById.get(entry.dataset.id);
    detail.hidden = false;
    detail.parentElement.scrollTop = 0;
    entry.scrollIntoView({ block: "nearest" });
    updatePosition();
  }

  function move(step) {
    const shown = visible();
    if (!shown.length) return;
    const index = shown.indexOf(current);
    const next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), shown.length - 1);
    select(shown[next]);
  }

  function showToast(message, kind) {
    toast.textContent = message;
    toast.className = `toast ${kind || ""}`;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, kind === "error" ? 6000 : 1800);
  }

  function render(state) {
    const entry = entryById.get(state.pair_id);
    const detail = detailById.get(state.pair_id);
    for (const node of [entry, detail]) {
      node.dataset.status = state.status;
      role(node, "badge").textContent = state.status;
      role(node, "query").textContent = state.query;
    }
    entry.dataset.filters = state.filters.join(" ");
    role(detail, "original").hidden = state.status !== "edited";
    haystacks.delete(state.pair_id);
  }

  function renderCounts(counts) {
    for (const node of document.querySelectorAll("[data-count]")) {
      const value = counts[node.dataset.count];
      if (value !== undefined) node.textContent = String(value);
    }
    const progress = document.getElementById("progress");
    progress.max = Math.max(counts.all, 1);
    progress.value = counts.reviewed;
  }

  // POST a JSON body with the session token: the parsed answer, or null once the failure is shown.
  async function postJson(url, payload) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", [tokenHeader]: token },
        body: JSON.stringify(payload),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!response.ok) {
        showToast(`Not saved: ${(await response.text()).trim()}`, "error");
        return null;
      }
      return await response.json();
    } catch (error) {
      showToast(`Not saved: the review server is not reachable (${error.message})`, "error");
      return null;
    }
  }

  async function decide(decision, editedQuery) {
    if (!current || busy) return;
    const entry = current;
    const payload = { pair_id: entry.dataset.id, decision };
    if (editedQuery !== undefined) payload.edited_query = editedQuery;
    busy = true;
    try {
      const data = await postJson("/api/decisions", payload);
      if (!data) return;
      const shown = visible();
      const after = shown[shown.indexOf(entry) + 1] || null;
      render(data.item);
      renderCounts(data.counts);
      showToast(decision === "reset" ? "Decision cleared" : `${data.item.status} · u undoes`, "ok");
      if (decision === "reset") {
        applyFilter();
        return;
      }
      select(null);
      applyFilter();
      if (after && !after.hidden) select(after);
      else if (!entry.hidden) select(entry);
      updatePosition();
    } finally {
      busy = false;
    }
  }

  function accept() {
    if (current) decide(current.dataset.origin === "auto-rejected" ? "rescue" : "accept");
  }

  function undo() {
    if (current && !UNDECIDED.has(current.dataset.status)) decide("reset");
  }

  function openEditor() {
    if (!current || editing) return;
    const detail = detailById.get(current.dataset.id);
    const editor = role(detail, "editor");
    editor.value = role(detail, "query").textContent;
    role(detail, "query").hidden = true;
    role(detail, "edit-hint").hidden = false;
    editor.hidden = false;
    editor.focus();
    editor.setSelectionRange(editor.value.length, editor.value.length);
    editing = detail;
  }

  function closeEditor() {
    if (!editing) return;
    role(editing, "editor").hidden = true;
    role(editing, "edit-hint").hidden = true;
    role(editing, "query").hidden = false;
    editing = null;
  }

  function saveEditor() {
    const detail = editing;
    const text = role(detail, "editor").value.trim();
    if (!text) {
      showToast("A question cannot be empty", "error");
      return;
    }
    const unchanged = text === role(detail, "query").textContent.trim();
    closeEditor();
    if (!unchanged) decide("edit", text);
  }

  function openWriter() {
    if (!current || editing || writing) return;
    const detail = detailById.get(current.dataset.id);
    const writer = role(detail, "human-editor");
    if (!writer) return;
    writer.value = "";
    writer.hidden = false;
    role(detail, "human-hint").hidden = false;
    writer.focus();
    writing = detail;
  }

  function closeWriter() {
    if (!writing) return;
    role(writing, "human-editor").hidden = true;
    role(writing, "human-hint").hidden = true;
    writing = null;
  }

  function showHumanQuestions(chunkId, questions) {
    for (const detail of detailById.values()) {
      if (detail.dataset.chunkId !== chunkId) continue;
      const list = role(detail, "human-list");
      if (!list) continue;
      list.replaceChildren(...questions.map((question) => {
        const item = document.createElement("li");
        item.textContent = question;
        return item;
      }));
      role(detail, "human-written").hidden = questions.length === 0;
    }
  }

  async function saveWriter() {
    const detail = writing;
    const text = role(detail, "human-editor").value.trim();
    if (!text) {
      showToast("A question cannot be empty", "error");
      return;
    }
    if (busy) return;
    busy = true;
    try {
      const data = await postJson("/api/human", { chunk_id: detail.dataset.chunkId, query: text });
      if (!data) return;
      closeWriter();
      showHumanQuestions(data.pair.chunk_id, data.questions);
      renderCounts(data.counts);
      showToast("Saved to your human test set (never trained on)", "ok");
    } finally {
      busy = false;
    }
  }

  function onWriterKey(event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      saveWriter();
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeWriter();
    }
  }

  function onEditorKey(event) {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      saveEditor();
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeEditor();
    }
  }

  function toggleHelp() {
    if (help.open) help.close();
    else help.showModal();
  }

  const KEYS = {
    a: accept,
    r: () => decide("reject"),
    e: openEditor,
    u: undo,
    w: openWriter,
    j: () => move(1),
    ArrowDown: () => move(1),
    k: () => move(-1),
    ArrowUp: () => move(-1),
    "/": () => search.focus(),
    "?": toggleHelp,
  };

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.classList && (target.classList.contains("question-editor") || target.classList.contains("human-editor"))) return;
    if (target === search) {
      if (event.key === "Escape" || event.key === "Enter") {
        event.preventDefault();
        search.blur();
        if (event.key === "Enter") move(0);
      }
      return;
    }
    if (help.open && event.key !== "?") return;
    const digit = Number.parseInt(event.key, 10);
    if (digit >= 1 && digit <= FILTERS.length) {
      event.preventDefault();
      setFilter(FILTERS[digit - 1]);
      return;
    }
    const action = KEYS[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  document.addEventListener("keydown", onKey);
  for (const editor of document.querySelectorAll(".question-editor")) {
    editor.addEventListener("keydown", onEditorKey);
  }
  for (const writer of document.querySelectorAll(".human-editor")) {
    writer.addEventListener("keydown", onWriterKey);
  }
  search.addEventListener("input", () => {
    select(null);
    applyFilter();
  });
  queue.addEventListener("click", (event) => {
    const entry = event.target.closest(".entry");
    if (entry) select(entry);
  });
  document.getElementById("details").addEventListener("click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    const actions = { accept, reject: () => decide("reject"), edit: openEditor, reset: undo, write: openWriter };
    actions[button.dataset.action]();
    button.blur();
  });
  for (const tab of document.querySelectorAll(".filter")) {
    tab.addEventListener("click", () => {
      setFilter(tab.dataset.filter);
      tab.blur();
    });
  }
  document.getElementById("help-button").addEventListener("click", toggleHelp);
  document.getElementById("help-close").addEventListener("click", () => help.close());

  body.classList.add("ready");
  applyFilter();
})();
