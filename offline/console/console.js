// The local console: the caller's tasks (each family a tree), live by polling, a form to create or
// extend, and usage against budget. Only the public API, as the principal named in the page.
"use strict";

const POLL_MS = 2000;
const MAX_PAGES = 5; // of 100 tasks: the console shows the newest 500
const DEFAULT_PRINCIPAL = "local-user";

const state = {
  capabilities: {}, // provider -> its capabilities
  tags: [], // the simulator's tag guide
  extending: null, // the task being extended, or null for a new video
  nodes: new Map(), // task id -> {item, children, fields...}: updated in place, never rebuilt
  timer: null,
};

const $ = (id) => document.getElementById(id);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function principal() {
  return $("principal").value.trim() || DEFAULT_PRINCIPAL;
}

async function api(method, path, body) {
  const init = { method, headers: { "X-Local-Principal": principal() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = data && data.error;
    throw new Error(error ? `${error.code}: ${error.message}` : `HTTP ${response.status}`);
  }
  return data;
}

// --- the form ----------------------------------------------------------------------------------

function fillSelect(select, values, labels = {}) {
  const previous = select.value;
  select.replaceChildren(
    ...values.map((value) => element("option", { value, text: labels[value] || value }))
  );
  if (values.includes(previous)) select.value = previous;
}

function union(lists) {
  return [...new Set(lists.flat())];
}

function chosenProviders() {
  const provider = $("provider").value;
  if (state.extending) return [state.capabilities[state.extending.provider]].filter(Boolean);
  const named = state.capabilities[provider];
  return named ? [named] : Object.values(state.capabilities);
}

function refreshChoices() {
  const providers = chosenProviders();
  fillSelect($("mode"), union(providers.map((p) => p.modes)));
  const mode = $("mode").value;
  const resolutions = union(
    providers.map((p) =>
      Object.entries(p.resolutions || {})
        .filter(([, offer]) => !offer.modes || offer.modes.includes(mode))
        .map(([resolution]) => resolution)
    )
  );
  fillSelect($("resolution"), resolutions.length ? resolutions : ["720p"]);
  fillSelect($("aspect-ratio"), union(providers.map((p) => p.aspect_ratios || ["16:9"])));
  updatePreview();
}

function taggedPrompt() {
  const tags = [];
  for (const tag of state.tags) {
    const box = $(`tag-${tag.name}`);
    if (!box || !box.checked) continue;
    if (tag.value === null) {
      tags.push(`[sim:${tag.name}]`);
    } else {
      const value = $(`tag-${tag.name}-value`).value.trim() || tag.example;
      tags.push(`[sim:${tag.name}=${value}]`);
    }
  }
  return [$("prompt").value.trim(), ...tags].filter(Boolean).join(" ");
}

function updatePreview() {
  $("prompt-preview").textContent = taggedPrompt();
}

function renderTags() {
  const fieldset = $("sim-tags");
  for (const tag of state.tags) {
    const label = element(
      "label",
      { class: "tag", title: tag.effect },
      element("input", { type: "checkbox", id: `tag-${tag.name}`, "data-tag": tag.name }),
      element("code", { text: tag.value === null ? tag.name : `${tag.name}=` })
    );
    if (tag.value !== null) {
      label.append(
        element("input", {
          type: "text",
          id: `tag-${tag.name}-value`,
          placeholder: tag.example,
          size: Math.max(tag.example.length, 4),
          "aria-label": `${tag.name} ${tag.value}`,
          oninput: (event) => {
            $(`tag-${tag.name}`).checked = event.target.value.trim() !== "";
          },
        })
      );
    }
    label.append(element("span", { class: "muted", text: ` ${tag.effect}` }));
    fieldset.append(label);
  }
}

function startExtending(task) {
  state.extending = task;
  $("extend-parent").textContent = task.id;
  $("extend-banner").hidden = false;
  $("form-title").textContent = "Extend a video";
  $("submit").textContent = "Extend";
  for (const node of document.querySelectorAll(".create-only")) node.hidden = true;
  refreshChoices();
  $("prompt").focus();
}

function stopExtending() {
  state.extending = null;
  $("extend-banner").hidden = true;
  $("form-title").textContent = "New video";
  $("submit").textContent = "Create";
  for (const node of document.querySelectorAll(".create-only")) node.hidden = false;
  refreshChoices();
}

async function submit(event) {
  event.preventDefault();
  const result = $("form-result");
  const prompt = taggedPrompt();
  if (!$("prompt").value.trim()) {
    result.textContent = "A prompt is needed.";
    result.className = "error";
    return;
  }
  const body = { prompt, mode: $("mode").value };
  let path = "/v1/videos";
  if (state.extending) {
    path = `/v1/videos/${encodeURIComponent(state.extending.id)}/extend`;
  } else {
    if ($("provider").value) body.provider = $("provider").value;
    body.resolution = $("resolution").value;
    body.aspect_ratio = $("aspect-ratio").value;
  }
  $("submit").disabled = true;
  try {
    const task = await api("POST", path, body);
    result.replaceChildren("Accepted: ", element("code", { text: task.id }));
    result.className = "ok";
    result.dataset.taskId = task.id;
    $("prompt").value = "";
    stopExtending();
    await refresh();
  } catch (error) {
    result.textContent = error.message;
    result.className = "error";
  } finally {
    $("submit").disabled = false;
  }
}

// --- the tasks ---------------------------------------------------------------------------------

async function listAll() {
  const items = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const query = new URLSearchParams({ limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const answer = await api("GET", `/v1/videos?${query}`);
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) return { items, complete: true };
  }
  return { items, complete: false };
}

function money(usd) {
  return usd === null || usd === undefined ? "–" : `$${Number(usd).toFixed(2)}`;
}

function bytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

function taskNode(task) {
  let node = state.nodes.get(task.id);
  if (node) return node;
  node = {
    item: element("li", { class: "task", "data-task-id": task.id }),
    status: element("span", { class: "status" }),
    summary: element("span", { class: "summary" }),
    prompt: element("p", { class: "prompt" }),
    detail: element("p", { class: "detail muted" }),
    actions: element("span", { class: "actions" }),
    media: element("div", { class: "media" }),
    children: element("ul", { class: "children" }),
    video: null,
  };
  const head = element(
    "div",
    { class: "head" },
    node.status,
    element("code", { class: "id", text: task.id }),
    node.summary,
    node.actions
  );
  node.item.append(head, node.prompt, node.detail, node.media, node.children);
  state.nodes.set(task.id, node);
  return node;
}

function action(label, handler) {
  return element("button", { type: "button", class: "link", text: label, onclick: handler });
}

async function act(work) {
  try {
    await work();
  } catch (error) {
    alert(error.message);
  }
  await refresh();
}

function updateTask(task) {
  const node = taskNode(task);
  node.item.dataset.status = task.status;
  node.status.textContent = task.status;
  node.status.dataset.status = task.status;
  const progress = task.progress === null || task.progress === undefined ? "" : ` ${task.progress}%`;
  node.summary.textContent =
    `${task.provider} · ${task.mode} · ${task.resolution} · ${task.aspect_ratio} · ` +
    `${money(task.cost && task.cost.usd)}${progress}`;
  node.prompt.textContent = task.prompt;
  const times = [`created ${task.created_at}`];
  if (task.completed_at) times.push(`completed ${task.completed_at}`);
  if (task.error) times.push(`error ${task.error.code}: ${task.error.message}`);
  if (task.video) times.push(`${bytes(task.video.size_bytes)}, sha256 ${task.video.sha256.slice(0, 12)}…`);
  node.detail.textContent = times.join(" · ");

  const actions = [];
  if (task.status === "completed") actions.push(action("extend", () => startExtending(task)));
  if (task.status === "queued") {
    actions.push(action("cancel", () => act(() => api("POST", `/v1/videos/${task.id}/cancel`))));
  }
  if (task.status === "completed" || task.status === "failed") {
    actions.push(
      action("delete", () => {
        if (confirm(`Delete ${task.id} and its stored video?`)) {
          act(() => api("DELETE", `/v1/videos/${task.id}`));
        }
      })
    );
  }
  const names = actions.map((button) => button.textContent).join();
  if (node.actions.dataset.names !== names) {
    node.actions.replaceChildren(...actions);
    node.actions.dataset.names = names;
  }

  // The src is set once: each read presigns a new URL, and a new src would restart the player.
  if (!node.video && task.video && task.video.download_url) {
    node.video = element("video", {
      controls: "",
      muted: "",
      loop: "",
      playsinline: "",
      preload: "auto",
      "data-task-id": task.id,
      src: task.video.download_url,
    });
    node.video.muted = true;
    node.video.addEventListener("loadeddata", () => {
      node.video.dataset.loaded = "true";
    });
    node.media.append(node.video);
  }
}

// Puts `nodes` into `container` in that order, moving only those out of place: a <video> taken out
// of the document stops playing.
function arrange(container, nodes) {
  let cursor = container.firstElementChild;
  for (const node of nodes) {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else container.insertBefore(node, cursor);
  }
}

function render(items, complete) {
  const seen = new Set(items.map((task) => task.id));
  if (complete) {
    for (const [id, node] of state.nodes) {
      if (!seen.has(id)) {
        node.item.remove();
        state.nodes.delete(id);
      }
    }
  }
  for (const task of items) updateTask(task);
  // A family is its root's tree; a task whose parent is gone (deleted) hangs from its root, or
  // from the top when the root is gone too.
  const byParent = new Map();
  for (const task of items) {
    const listed = [task.parent_id, task.root_id].find((id) => id && id !== task.id && seen.has(id));
    const parent = listed || null;
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(task);
  }
  for (const [parent, tasks] of byParent) {
    tasks.sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
    if (parent === null) tasks.reverse(); // the newest family first
    const container = parent === null ? $("families") : state.nodes.get(parent).children;
    arrange(container, tasks.map((task) => state.nodes.get(task.id).item));
  }
  $("no-tasks").hidden = items.length > 0;
}

function renderUsage(usage) {
  const committed = usage.spent_usd + usage.reserved_usd;
  const budget = usage.budget_usd;
  $("usage-summary").textContent =
    `${usage.month}: ${money(usage.spent_usd)} spent, ${money(usage.reserved_usd)} reserved` +
    (budget === null ? " · no budget" : ` of a ${money(budget)} budget`);
  const bar = $("budget-bar");
  bar.hidden = budget === null;
  if (budget !== null && budget > 0) {
    bar.querySelector(".spent").style.width = `${Math.min(100, (100 * usage.spent_usd) / budget)}%`;
    bar.querySelector(".reserved").style.width =
      `${Math.min(100, (100 * usage.reserved_usd) / budget)}%`;
    bar.title = `${Math.round((100 * committed) / budget)}% of the budget committed`;
  }
  $("usage-tasks").textContent = Object.entries(usage.tasks)
    .map(([status, count]) => `${status} ${count}`)
    .join(" · ");
}

async function refresh() {
  try {
    const [{ items, complete }, usage] = await Promise.all([listAll(), api("GET", "/v1/usage")]);
    render(items, complete);
    renderUsage(usage);
    $("list-state").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("list-state").textContent = `(${error.message})`;
  }
}

function poll() {
  clearTimeout(state.timer);
  refresh().finally(() => {
    state.timer = setTimeout(poll, POLL_MS);
  });
}

function changePrincipal() {
  localStorage.setItem("principal", principal());
  for (const node of state.nodes.values()) node.item.remove();
  state.nodes.clear();
  stopExtending();
  poll();
}

async function start() {
  $("principal").value = localStorage.getItem("principal") || DEFAULT_PRINCIPAL;
  $("principal").addEventListener("change", changePrincipal);
  $("video-form").addEventListener("submit", submit);
  $("video-form").addEventListener("input", updatePreview);
  $("video-form").addEventListener("change", updatePreview);
  $("provider").addEventListener("change", refreshChoices);
  $("mode").addEventListener("change", refreshChoices);
  $("extend-cancel").addEventListener("click", stopExtending);
  try {
    const [capabilities, tags] = await Promise.all([
      api("GET", "/v1/capabilities"),
      fetch("sim-tags.json").then((response) => response.json()),
    ]);
    state.capabilities = capabilities.providers;
    state.tags = tags;
  } catch (error) {
    $("form-result").textContent = `Could not read the capabilities: ${error.message}`;
    $("form-result").className = "error";
  }
  const names = Object.keys(state.capabilities);
  fillSelect($("provider"), ["", "auto", ...names], { "": "(default)" });
  renderTags();
  refreshChoices();
  poll();
}

document.addEventListener("DOMContentLoaded", start);
