// codepipeline-local dashboard. It talks to the server it was served from only: the AWS JSON endpoint (POST /)
// and the emulator's own endpoints (/_emulator/...). Data is always put on the page as text, never as markup.
"use strict";

const state = { account: "", region: "", filter: "", pipelines: new Map(), stream: null, refresh: new Map() };

const $ = (id) => document.getElementById(id);

/// One CodePipeline operation in the chosen account and region (the server reads both from the credential scope;
/// it does not check signatures).
async function aws(operation, input) {
  const credential = `${state.account}/20200101/${state.region}/codepipeline/aws4_request`;
  const response = await fetch("/", {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `CodePipeline_20150709.${operation}`,
      Authorization: `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host, Signature=dashboard`,
    },
    body: JSON.stringify(input || {}),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${operation}: ${body.message || body.__type || response.status}`);
  }
  return body;
}

async function control(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/// A status as a mark and a word, so that it reads without colour.
function statusBadge(status) {
  const word = status || "None";
  const badge = element("span", `status ${word.toLowerCase()}`, word === "None" ? "No executions" : word);
  return badge;
}

function when(timestamp) {
  if (timestamp === undefined || timestamp === null) return "";
  const date = new Date(timestamp * 1000);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function showError(error) {
  const box = $("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

// --- Account and region -------------------------------------------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { account: params.get("account") || "", region: params.get("region") || "", filter: params.get("filter") || "" };
}

function writeHash() {
  const params = new URLSearchParams({ account: state.account, region: state.region });
  if (state.filter) params.set("filter", state.filter);
  history.replaceState(null, "", `#${params}`);
}

function fillSelect(select, values, chosen) {
  select.replaceChildren(...values.map((value) => {
    const option = element("option", "", value);
    option.value = value;
    option.selected = value === chosen;
    return option;
  }));
}

async function loadScopes() {
  const known = await control("/_emulator/partitions");
  const wanted = readHash();
  const accounts = new Set([known.default.account, ...known.partitions.map((p) => p.account)]);
  const regions = new Set([known.default.region, ...known.partitions.map((p) => p.region)]);
  if (wanted.account) accounts.add(wanted.account);
  if (wanted.region) regions.add(wanted.region);
  state.account = wanted.account || known.default.account;
  state.region = wanted.region || known.default.region;
  state.filter = wanted.filter;
  fillSelect($("account"), [...accounts].sort(), state.account);
  fillSelect($("region"), [...regions].sort(), state.region);
  $("filter").value = state.filter;
}

// --- Pipelines -----------------------------------------------------------------------------------------------------

async function listPipelines() {
  const names = [];
  let nextToken;
  do {
    const page = await aws("ListPipelines", nextToken ? { nextToken, maxResults: 1000 } : { maxResults: 1000 });
    names.push(...page.pipelines);
    nextToken = page.nextToken;
  } while (nextToken);
  return names;
}

async function latestExecution(name) {
  const page = await aws("ListPipelineExecutions", { pipelineName: name, maxResults: 1 });
  return page.pipelineExecutionSummaries[0];
}

function row(summary) {
  const tr = element("tr");
  tr.dataset.pipeline = summary.name;
  const name = element("th", "name", summary.name);
  name.scope = "row";
  tr.append(name, element("td", "", summary.pipelineType || "V1"), element("td", "", summary.executionMode || ""));
  tr.append(element("td", "latest"), element("td", "time"));
  return tr;
}

function showLatest(tr, execution) {
  tr.querySelector(".latest").replaceChildren(statusBadge(execution && execution.status));
  tr.querySelector(".time").textContent = execution ? when(execution.startTime) : "";
}

function applyFilter() {
  const needle = state.filter.trim().toLowerCase();
  let shown = 0;
  for (const tr of $("pipelines").tBodies[0].rows) {
    const visible = !needle || tr.dataset.pipeline.toLowerCase().includes(needle);
    tr.hidden = !visible;
    if (visible) shown += 1;
  }
  const empty = $("empty");
  empty.hidden = shown > 0;
  empty.textContent = state.pipelines.size === 0 ? "No pipelines in this account and region." : "No pipeline matches the filter.";
}

async function loadPipelines() {
  try {
    const summaries = await listPipelines();
    const body = $("pipelines").tBodies[0];
    state.pipelines = new Map(summaries.map((s) => [s.name, s]));
    body.replaceChildren(...summaries.map(row));
    applyFilter();
    showError(null);
    await Promise.all(summaries.map((s) => refreshPipeline(s.name)));
  } catch (error) {
    showError(error);
  }
}

async function refreshPipeline(name) {
  const tr = [...$("pipelines").tBodies[0].rows].find((r) => r.dataset.pipeline === name);
  if (!tr) return loadPipelines();
  try {
    showLatest(tr, await latestExecution(name));
  } catch (error) {
    // Deleted meanwhile: the list is reloaded.
    if (String(error.message).includes("PipelineNotFound")) return loadPipelines();
    showError(error);
  }
}

/// Refreshes a pipeline once per burst of events about it.
function refreshSoon(name) {
  if (state.refresh.has(name)) return;
  state.refresh.set(name, setTimeout(() => {
    state.refresh.delete(name);
    refreshPipeline(name);
  }, 20));
}

// --- Live events ---------------------------------------------------------------------------------------------------

const EVENT_TYPES = [
  "CodePipeline Pipeline Execution State Change",
  "CodePipeline Stage Execution State Change",
  "CodePipeline Action Execution State Change",
];

function follow() {
  if (state.stream) state.stream.close();
  const query = new URLSearchParams({ account: state.account, region: state.region });
  const stream = new EventSource(`/_emulator/events/stream?${query}`);
  const live = $("live");
  stream.onopen = () => {
    live.textContent = "Live";
    live.classList.add("on");
  };
  stream.onerror = () => {
    // EventSource reconnects by itself and resumes after the last event it saw (Last-Event-ID).
    live.textContent = "Reconnecting…";
    live.classList.remove("on");
  };
  const changed = (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const pipeline = event.detail && event.detail.pipeline;
    if (pipeline) refreshSoon(pipeline);
  };
  // Each event is named by its EventBridge detail type.
  for (const type of EVENT_TYPES) stream.addEventListener(type, changed);
  state.stream = stream;
}

// --- Start ---------------------------------------------------------------------------------------------------------

async function changeScope() {
  state.account = $("account").value;
  state.region = $("region").value;
  writeHash();
  follow();
  await loadPipelines();
}

async function start() {
  try {
    await loadScopes();
  } catch (error) {
    showError(error);
    return;
  }
  $("account").addEventListener("change", changeScope);
  $("region").addEventListener("change", changeScope);
  $("filter").addEventListener("input", () => {
    state.filter = $("filter").value;
    writeHash();
    applyFilter();
  });
  writeHash();
  follow();
  await loadPipelines();
}

start();
