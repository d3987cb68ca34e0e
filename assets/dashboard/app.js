// codepipeline-local dashboard. It talks to the server it was served from only: the AWS JSON endpoint (POST /)
// and the emulator's own endpoints (/_emulator/...). Data is always put on the page as text, never as markup.
"use strict";

const state = {
  account: "", region: "", filter: "", pipeline: "", pipelines: new Map(), stream: null, refresh: new Map(),
  // What a person typed into the view, kept across its live re-renders (approval comments by stage/action).
  comments: new Map(), latest: null,
  // The execution whose timeline is open in the pipeline view.
  opened: "",
  // "" (pipelines), "events" or "emulator".
  view: "",
  // The latest events of this account and region, oldest first.
  events: [],
  // Executions of the open pipeline that succeeded (rollback targets), newest first.
  succeeded: [],
  // Build log views by action execution id, kept across the timeline's redraws.
  logs: new Map(),
  // Whether artifacts are real objects (downloads), and whether builds run here (logs).
  realArtifacts: false, runBuilds: false,
  // How far the emulator clock is ahead of this machine's, in seconds (durations are measured on it).
  clockOffset: 0,
  // When each waiting approval of the open pipeline began, by action execution id.
  approvalStarts: new Map(),
};

/// The emulator's time now, in epoch seconds.
function emulatorNow() {
  return Date.now() / 1000 + state.clockOffset;
}

/// A duration in words: "3 min 20 s", "2 h 5 min", "6 d 23 h".
function span(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`.replace(/ 0 min$/, "");
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/// Reads the emulator clock and shows it in the Emulator view.
async function loadClock() {
  const clock = await control("/_emulator/clock");
  state.clockOffset = clock.offsetSeconds || 0;
  $("clock-now").textContent =
    `The emulator clock is at ${when(clock.now)}: ${span(state.clockOffset)} (${state.clockOffset} s) ahead of this `
    + "machine's.";
}

const MAX_EVENTS = 500;

const $ = (id) => document.getElementById(id);

/// One CodePipeline operation in the chosen account and region. The server reads both from the credential scope;
/// with --verify-signatures the request is signed by the principal the user signed in as (whose account it is).
async function aws(operation, input) {
  const body = JSON.stringify(input || {});
  const headers = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": `CodePipeline_20150709.${operation}`,
  };
  if (SIGV4.credentials()) {
    Object.assign(headers, await SIGV4.sign("POST", "/", body, state.region));
  } else {
    const credential = `${state.account}/20200101/${state.region}/codepipeline/aws4_request`;
    headers.Authorization = `AWS4-HMAC-SHA256 Credential=${credential}, SignedHeaders=host, Signature=dashboard`;
  }
  const response = await fetch("/", { method: "POST", headers, body });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${operation}: ${answer.message || answer.__type || response.status}`);
  }
  return answer;
}

/// Errors that mean the server checks signatures and this tab has no (or wrong) credentials.
const SIGNING_ERRORS = new Set([
  "MissingAuthenticationTokenException", "UnrecognizedClientException", "InvalidSignatureException",
  "IncompleteSignatureException",
]);

async function control(path, body, method) {
  const init = { headers: { Accept: "application/json" }, method: "GET" };
  if (body !== undefined) {
    // Control requests that change state are JSON, as the server requires of every caller.
    init.method = method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (SIGV4.credentials()) Object.assign(init.headers, await SIGV4.sign(init.method, path, init.body, state.region));
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(`${path}: ${answer.message || answer.__type || response.status}`);
    error.signing = SIGNING_ERRORS.has(answer.__type);
    throw error;
  }
  return answer;
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

/// Shows `error` in the alert box `id` (the list's, the pipeline view's or the emulator view's), or hides it.
function report(id, error) {
  const box = $(id);
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
  // A refusal below the fold would go unseen after a click.
  if (error) box.scrollIntoView({ block: "nearest" });
}

// --- Account and region -------------------------------------------------------------------------------------------

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return {
    account: params.get("account") || "", region: params.get("region") || "", filter: params.get("filter") || "",
    pipeline: params.get("pipeline") || "", view: params.get("view") || "",
  };
}

function hashFor(pipeline, view) {
  const params = new URLSearchParams({ account: state.account, region: state.region });
  if (state.filter) params.set("filter", state.filter);
  if (view) params.set("view", view);
  else if (pipeline) params.set("pipeline", pipeline);
  return `#${params}`;
}

function writeHash() {
  history.replaceState(null, "", hashFor(state.pipeline, state.view));
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
  // Signed in, the AWS endpoint acts in the signer's account only.
  const signed = Boolean(SIGV4.credentials());
  const accounts = new Set([known.default.account, ...(signed ? [] : known.partitions.map((p) => p.account))]);
  const regions = new Set([known.default.region, ...known.partitions.map((p) => p.region)]);
  if (wanted.account && !signed) accounts.add(wanted.account);
  if (wanted.region) regions.add(wanted.region);
  state.account = (!signed && wanted.account) || known.default.account;
  state.region = wanted.region || known.default.region;
  state.realArtifacts = Boolean(known.realArtifacts);
  state.runBuilds = Boolean(known.runBuilds);
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
  const name = element("th", "name");
  name.scope = "row";
  const link = element("a", "", summary.name);
  link.href = hashFor(summary.name);
  name.append(link);
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
    report("error", null);
    await Promise.all(summaries.map((s) => refreshPipeline(s.name)));
  } catch (error) {
    report("error", error);
  }
}

async function refreshPipeline(name) {
  if (state.view) return;
  if (state.pipeline) {
    if (name === state.pipeline) await loadPipelineView();
    return;
  }
  const tr = [...$("pipelines").tBodies[0].rows].find((r) => r.dataset.pipeline === name);
  if (!tr) return loadPipelines();
  try {
    showLatest(tr, await latestExecution(name));
  } catch (error) {
    // Deleted meanwhile: the list is reloaded.
    if (String(error.message).includes("PipelineNotFound")) return loadPipelines();
    report("error", error);
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


// --- One pipeline ----------------------------------------------------------------------------------------------------

/// Runs an action of a button (a CodePipeline operation, or a control endpoint's path), then shows the pipeline as
/// it is now.
async function act(operation, input) {
  try {
    const answer = operation.startsWith("/") ? await control(operation, input) : await aws(operation, input);
    report("pipeline-error", null);
    await loadPipelineView();
    return answer;
  } catch (error) {
    report("pipeline-error", error);
    return null;
  }
}

function button(text, onClick, className) {
  const node = element("button", className || "", text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function provider(declared) {
  const id = declared && declared.actionTypeId;
  return id ? `${id.category} · ${id.owner} · ${id.provider} v${id.version}` : "";
}

/// The arrow into a stage, with its transition's control: the flow from one stage to the next.
function transitionLine(stage) {
  const transition = stage.inboundTransitionState || { enabled: true };
  const line = element("li", transition.enabled ? "transition" : "transition disabled");
  line.setAttribute("aria-label", `Transition into ${stage.stageName}`);
  line.append(element("span", "arrow", transition.enabled ? "↓" : "⊘"));
  if (transition.enabled) {
    line.append(element("span", "", "Transition: enabled"));
    line.append(button("Disable transition", async () => {
      const reason = window.prompt(`Why disable the transition into ${stage.stageName}?`, "Disabled from the dashboard");
      if (reason === null) return;
      await act("DisableStageTransition", {
        pipelineName: state.pipeline, stageName: stage.stageName, transitionType: "Inbound", reason: reason || "Disabled",
      });
    }));
  } else {
    line.append(element("span", "", `Transition: disabled — ${transition.disabledReason || "no reason given"}`));
    line.append(button("Enable transition", () => act("EnableStageTransition", {
      pipelineName: state.pipeline, stageName: stage.stageName, transitionType: "Inbound",
    })));
  }
  return line;
}

/// What a reviewer reads before answering an approval: its custom data, its link, how long it has waited and when it
/// times out (on the emulator clock).
function approvalFacts(declared, latest) {
  const facts = element("dl", "facts");
  const configuration = (declared && declared.configuration) || {};
  const add = (term, description) => facts.append(element("dt", "", term), description);
  if (configuration.CustomData) add("Review", element("dd", "", configuration.CustomData));
  const link = configuration.ExternalEntityLink;
  if (link) {
    const dd = element("dd");
    if (/^https?:\/\//.test(link)) {
      const a = element("a", "", link);
      a.href = link;
      a.rel = "noreferrer noopener";
      a.target = "_blank";
      dd.append(a);
    } else {
      dd.textContent = link;
    }
    add("Link", dd);
  }
  const since = state.approvalStarts.get(latest.actionExecutionId) || latest.lastStatusChange;
  if (since) {
    add("Waiting", element("dd", "", `${span(emulatorNow() - since)} (since ${when(since)})`));
    const minutes = (declared && declared.timeoutInMinutes) || 7 * 24 * 60;
    const due = since + minutes * 60;
    add("Times out", element("dd", "", `${when(due)} (in ${span(due - emulatorNow())})`));
  }
  return facts;
}

function approvalControls(stage, action, latest, declared) {
  const key = `${stage.stageName}/${action.actionName}`;
  const box = element("div", "approval");
  box.append(approvalFacts(declared, latest));
  const label = element("label", "", "Comment ");
  const input = element("input");
  input.type = "text";
  input.maxLength = 512;
  input.dataset.key = key;
  input.value = state.comments.get(key) || "";
  input.addEventListener("input", () => state.comments.set(key, input.value));
  label.append(input);
  const answer = (status) => async () => {
    const summary = input.value || `${status} from the dashboard`;
    const done = await act("PutApprovalResult", {
      pipelineName: state.pipeline, stageName: stage.stageName, actionName: action.actionName,
      result: { summary, status }, token: latest.token,
    });
    if (done) state.comments.delete(key);
  };
  const buttons = element("div", "buttons");
  buttons.append(button("Approve", answer("Approved"), "primary"), button("Reject", answer("Rejected"), "danger"));
  box.append(label, buttons);
  return box;
}

/// Succeed and Fail buttons ending a running action or rule through the control endpoint: `target` names it
/// (execution, stage, and action or rule), `extra(outcome)` adds to the request.
function completeButtons(target, extra) {
  const complete = (outcome) => () => act("/_emulator/actions/complete", {
    account: state.account, region: state.region, pipelineName: state.pipeline, ...target, outcome, ...extra(outcome),
  });
  return [button("Succeed", complete("succeed")), button("Fail", complete("fail"), "danger")];
}

/// Succeed and Fail for a running simulated action (a held one, or one still taking its time).
function completionControls(stage, action) {
  const box = element("div", "buttons");
  const execution = stage.latestExecution && stage.latestExecution.pipelineExecutionId;
  const target = { pipelineExecutionId: execution, stageName: stage.stageName, actionName: action.actionName };
  box.append(...completeButtons(target, (outcome) => (outcome === "fail"
    ? { message: "Failed from the dashboard" } : { summary: "Succeeded from the dashboard" })));
  return box;
}

function actionCard(stage, action, declared) {
  const card = element("div", "action");
  card.dataset.action = action.actionName;
  const latest = action.latestExecution;
  card.append(element("div", "name", action.actionName));
  card.append(element("div", "provider", provider(declared)));
  card.append(statusBadge(latest && latest.status));
  if (latest && latest.summary) card.append(element("div", "summary", latest.summary));
  // A source's summary usually names its revision already: the id is not shown twice.
  const repeated = latest && latest.externalExecutionId && latest.summary && latest.summary.includes(latest.externalExecutionId);
  if (latest && latest.externalExecutionUrl && /^https?:\/\//.test(latest.externalExecutionUrl)) {
    const link = element("a", "", latest.externalExecutionId || "External execution");
    link.href = latest.externalExecutionUrl;
    link.rel = "noreferrer noopener";
    link.target = "_blank";
    card.append(link);
  } else if (latest && latest.externalExecutionId && !repeated) {
    card.append(element("div", "summary", latest.externalExecutionId));
  }
  if (latest && latest.errorDetails) {
    card.append(element("p", "error", `${latest.errorDetails.code}: ${latest.errorDetails.message}`));
  }
  if (latest && latest.status === "InProgress" && latest.token) {
    card.append(approvalControls(stage, action, latest, declared));
  }
  const simulated = declared && declared.actionTypeId && declared.actionTypeId.owner === "AWS";
  if (latest && latest.status === "InProgress" && !latest.token && simulated) card.append(completionControls(stage, action));
  return card;
}

/// The stage's conditions as last evaluated: each condition's status and its rules', with Succeed and Fail for a
/// rule still running (a held one).
function conditionLine(stage) {
  const block = element("div", "conditions");
  for (const [kind, key] of [["Entry condition", "beforeEntryConditionState"], ["On success", "onSuccessConditionState"],
    ["On failure", "onFailureConditionState"]]) {
    const condition = stage[key];
    if (!condition || !condition.latestExecution) continue;
    const line = element("div", "condition");
    line.append(element("span", "", `${kind}:`), statusBadge(condition.latestExecution.status));
    for (const each of condition.conditionStates || []) {
      for (const rule of each.ruleStates || []) {
        const chip = element("span", "rule");
        chip.dataset.rule = rule.ruleName;
        const status = rule.latestExecution && rule.latestExecution.status;
        chip.append(element("span", "", `Rule ${rule.ruleName}`), statusBadge(status));
        if (status === "InProgress" && state.latest) {
          const target = {
            pipelineExecutionId: state.latest.pipelineExecutionId, stageName: stage.stageName, ruleName: rule.ruleName,
          };
          chip.append(...completeButtons(target, () => ({})));
        }
        line.append(chip);
      }
    }
    block.append(line);
  }
  return block.children.length ? block : null;
}

/// Picks the execution to roll a stage back to (one that succeeded), then rolls back.
function rollbackForm(item, stage) {
  if (item.querySelector(".rollback")) return;
  const form = element("form", "inline-form rollback");
  const fieldset = element("fieldset");
  fieldset.append(element("legend", "", `Roll ${stage.stageName} back`));
  const label = element("label", "", "To execution ");
  const select = element("select");
  for (const execution of state.succeeded) {
    const option = element("option", "", `${execution.pipelineExecutionId} (${when(execution.startTime)})`);
    option.value = execution.pipelineExecutionId;
    select.append(option);
  }
  label.append(select);
  const buttons = element("div", "buttons");
  const go = element("button", "danger", "Roll back to this execution");
  go.type = "submit";
  buttons.append(go, button("Cancel", () => form.remove()));
  fieldset.append(label, buttons);
  form.append(fieldset);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.remove();
    await act("RollbackStage", {
      pipelineName: state.pipeline, stageName: stage.stageName, targetPipelineExecutionId: select.value,
    });
  });
  item.append(form);
  select.focus();
}

function stageItem(stage, declared) {
  const item = element("li", "stage");
  item.dataset.stage = stage.stageName;
  const head = element("div", "stage-head");
  head.append(element("h3", "", stage.stageName), statusBadge(stage.latestExecution && stage.latestExecution.status));
  const inbound = stage.inboundExecutions || (stage.inboundExecution ? [stage.inboundExecution] : []);
  if (inbound.length) {
    const ids = inbound.map((e) => `${e.pipelineExecutionId} (${e.status})`).join(", ");
    head.append(element("span", "summary inbound", `Waiting to enter: ${ids}`));
  }
  const latest = stage.latestExecution;
  if (latest && latest.status === "Failed") {
    const retry = (retryMode) => () => act("RetryStageExecution", {
      pipelineName: state.pipeline, stageName: stage.stageName, pipelineExecutionId: latest.pipelineExecutionId, retryMode,
    });
    head.append(button("Retry failed actions", retry("FAILED_ACTIONS")), button("Retry all actions", retry("ALL_ACTIONS")));
  }
  if (state.succeeded.length) head.append(button("Roll back", () => rollbackForm(item, stage)));
  item.append(head);
  const conditions = conditionLine(stage);
  if (conditions) item.append(conditions);
  // Actions side by side within a runOrder, groups one after another.
  const declaredActions = new Map(((declared && declared.actions) || []).map((a) => [a.name, a]));
  const groups = new Map();
  for (const action of stage.actionStates || []) {
    const order = (declaredActions.get(action.actionName) || {}).runOrder || 1;
    if (!groups.has(order)) groups.set(order, []);
    groups.get(order).push(action);
  }
  for (const order of [...groups.keys()].sort((a, b) => a - b)) {
    const group = element("div", "group");
    group.setAttribute("aria-label", `Run order ${order}`);
    for (const action of groups.get(order)) group.append(actionCard(stage, action, declaredActions.get(action.actionName)));
    item.append(group);
  }
  return item;
}

function executionLine(execution) {
  const line = $("execution");
  line.replaceChildren();
  if (!execution) {
    line.append(statusBadge(null));
    return;
  }
  line.append(element("span", "", "Latest execution"), statusBadge(execution.status));
  line.append(element("span", "id", execution.pipelineExecutionId));
  const trigger = execution.trigger && execution.trigger.triggerType;
  if (trigger) line.append(element("span", "summary", `by ${trigger}`));
  line.append(element("span", "summary", `started ${when(execution.startTime)}`));
  if (execution.status === "InProgress") {
    line.append(button("Stop", () => {
      $("stop-form").hidden = false;
      $("stop-reason").focus();
    }, "danger"));
  }
}

/// The latest execution's variables and source revisions.
async function loadExecutionDetails(execution) {
  const box = $("execution-details");
  if (!execution) {
    box.hidden = true;
    return;
  }
  const answer = await aws("GetPipelineExecution", {
    pipelineName: state.pipeline, pipelineExecutionId: execution.pipelineExecutionId,
  });
  const detail = answer.pipelineExecution || {};
  const variables = Object.fromEntries((detail.variables || []).map((v) => [v.name, v.resolvedValue]));
  const revisions = Object.fromEntries((detail.artifactRevisions || []).map((r) => [
    r.name, [r.revisionId, r.revisionSummary].filter(Boolean).join(" — "),
  ]));
  const parts = [...pairs("Variables", variables), ...pairs("Source revisions", revisions)];
  box.querySelector(".content").replaceChildren(...parts);
  box.hidden = parts.length === 0;
}

async function loadPipelineView() {
  const name = state.pipeline;
  try {
    const [declared, current, executions] = await Promise.all([
      aws("GetPipeline", { name }),
      aws("GetPipelineState", { name }),
      aws("ListPipelineExecutions", { pipelineName: name, maxResults: 25 }),
      loadClock(),
    ]);
    if (name !== state.pipeline) return;
    $("pipeline-title").textContent = name;
    state.latest = executions.pipelineExecutionSummaries[0] || null;
    state.succeeded = executions.pipelineExecutionSummaries.filter((e) => e.status === "Succeeded");
    executionLine(state.latest);
    if (!state.latest || state.latest.status !== "InProgress") $("stop-form").hidden = true;
    const stages = new Map(declared.pipeline.stages.map((s) => [s.name, s]));
    await loadApprovalStarts(name, current);
    // A rollback being chosen is not swept away by a live update.
    if ($("stages").querySelector(".rollback")) return;
    // Keep the focus where it was (a comment being typed) across the re-render.
    const focused = document.activeElement && document.activeElement.dataset && document.activeElement.dataset.key;
    // Stages read as a flow: each transition is the arrow between two stages (the first stage has none).
    $("stages").replaceChildren(...current.stageStates.flatMap((s, i) => [
      ...(i > 0 ? [transitionLine(s)] : []), stageItem(s, stages.get(s.stageName)),
    ]));
    if (focused) {
      const again = $("stages").querySelector(`input[data-key="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    report("pipeline-error", null);
    await showHistory(executions);
    await loadExecutionDetails(state.latest);
  } catch (error) {
    report("pipeline-error", error);
  }
}

/// When the waiting approvals began (GetPipelineState does not say; their history does).
async function loadApprovalStarts(name, current) {
  const waiting = current.stageStates.flatMap((s) => (s.actionStates || []).map((a) => [s, a.latestExecution]))
    .filter(([, latest]) => latest && latest.token && !state.approvalStarts.has(latest.actionExecutionId));
  for (const [stage, latest] of waiting) {
    const execution = stage.latestExecution && stage.latestExecution.pipelineExecutionId;
    const filter = execution ? { pipelineExecutionId: execution } : undefined;
    const history = await aws("ListActionExecutions", { pipelineName: name, filter, maxResults: 100 });
    for (const run of history.actionExecutionDetails || []) state.approvalStarts.set(run.actionExecutionId, run.startTime);
    if (!state.approvalStarts.has(latest.actionExecutionId)) state.approvalStarts.set(latest.actionExecutionId, 0);
  }
}

async function stopExecution(event) {
  event.preventDefault();
  if (!state.latest) return;
  const abandon = document.querySelector('input[name="stop-mode"]:checked').value === "abandon";
  const reason = $("stop-reason").value;
  const input = { pipelineName: state.pipeline, pipelineExecutionId: state.latest.pipelineExecutionId, abandon };
  if (reason) input.reason = reason;
  $("stop-form").hidden = true;
  await act("StopPipelineExecution", input);
}


function showView() {
  const wanted = readHash();
  state.pipeline = wanted.pipeline;
  state.view = wanted.view;
  $("events-view").hidden = state.view !== "events";
  $("emulator-view").hidden = state.view !== "emulator";
  $("pipeline-view").hidden = Boolean(state.view) || !state.pipeline;
  $("list-view").hidden = Boolean(state.view) || Boolean(state.pipeline);
  $("back").href = hashFor("");
  for (const [id, view] of [["nav-pipelines", ""], ["nav-events", "events"], ["nav-emulator", "emulator"]]) {
    $(id).href = hashFor("", view);
    if (state.view === view) $(id).setAttribute("aria-current", "page");
    else $(id).removeAttribute("aria-current");
  }
  if (state.view === "events") {
    document.title = "Events · codepipeline-local";
    return loadEvents();
  }
  if (state.view === "emulator") {
    document.title = "Emulator · codepipeline-local";
    return loadEmulator();
  }
  if (state.pipeline) {
    document.title = `${state.pipeline} · codepipeline-local`;
    $("stages").replaceChildren();
    state.opened = "";
    $("timeline").hidden = true;
    return loadPipelineView();
  }
  document.title = "codepipeline-local";
  return loadPipelines();
}


// --- Emulator: clock and behaviour rules -----------------------------------------------------------------------------

async function loadEmulator() {
  try {
    await loadClock();
    const set = await control("/_emulator/behaviors");
    $("behaviors").value = JSON.stringify(set.rules, null, 2);
    report("emulator-error", null);
  } catch (error) {
    report("emulator-error", error);
  }
}

async function advanceClock(event) {
  event.preventDefault();
  try {
    await control("/_emulator/clock/advance", { seconds: Number($("clock-seconds").value) });
    await loadClock();
    report("emulator-error", null);
  } catch (error) {
    report("emulator-error", error);
  }
}

async function saveBehaviors(event) {
  event.preventDefault();
  let rules;
  try {
    rules = JSON.parse($("behaviors").value || "[]");
  } catch (error) {
    report("emulator-error", new Error(`The rules are not JSON: ${error.message}`));
    return;
  }
  try {
    const saved = await control("/_emulator/behaviors", { rules }, "PUT");
    $("behaviors").value = JSON.stringify(saved.rules || rules, null, 2);
    $("behaviors-status").textContent = `Saved ${(saved.rules || rules).length} rule(s).`;
    report("emulator-error", null);
  } catch (error) {
    report("emulator-error", error);
  }
}

// --- Live events ---------------------------------------------------------------------------------------------------

const EVENT_TYPES = [
  "CodePipeline Pipeline Execution State Change",
  "CodePipeline Stage Execution State Change",
  "CodePipeline Action Execution State Change",
];

/// Subscribes to the event stream of the chosen account and region; resolves once subscribed (or failing), so that
/// what is loaded afterwards misses no change: every change after the subscription arrives as an event.
async function follow() {
  if (state.stream) state.stream.close();
  const query = new URLSearchParams({ account: state.account, region: state.region });
  const stream = new EventSource(await SIGV4.presign(`/_emulator/events/stream?${query}`, state.region));
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
    addEvent(Number(message.lastEventId), event);
    const pipeline = event.detail && event.detail.pipeline;
    if (pipeline) refreshSoon(pipeline);
  };
  // Each event is named by its EventBridge detail type.
  for (const type of EVENT_TYPES) stream.addEventListener(type, changed);
  state.stream = stream;
  return new Promise((resolve) => {
    stream.addEventListener("open", resolve, { once: true });
    stream.addEventListener("error", resolve, { once: true });
  });
}

// --- Start ---------------------------------------------------------------------------------------------------------

async function changeScope() {
  state.account = $("account").value;
  state.region = $("region").value;
  state.pipeline = "";
  state.events = [];
  writeHash();
  await follow();
  await showView();
}

/// With --verify-signatures: the form that takes the keys this tab signs with, and the way out of them.
function setUpSignIn() {
  const signed = SIGV4.credentials();
  $("sign-out").hidden = !signed;
  $("sign-out").addEventListener("click", () => {
    SIGV4.remember(null);
    location.reload();
  });
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    SIGV4.remember({
      accessKeyId: $("sign-in-key").value.trim(), secretAccessKey: $("sign-in-secret").value,
      sessionToken: $("sign-in-token").value.trim(), region: $("sign-in-region").value.trim() || "us-east-1",
    });
    location.reload();
  });
}

function askToSignIn(error) {
  $("sign-in").hidden = false;
  $("live").textContent = "Not signed in";
  $("list-view").hidden = true;
  if (!SIGV4.available) {
    report("sign-in-error", "This page cannot sign requests here: browsers sign only on pages served from localhost or over HTTPS.");
  } else if (SIGV4.credentials()) {
    report("sign-in-error", error);
  }
  $("sign-in-key").focus();
}

async function start() {
  setUpSignIn();
  try {
    await loadScopes();
    await loadClock();
  } catch (error) {
    if (error.signing) askToSignIn(error);
    else report("error", error);
    return;
  }
  $("account").addEventListener("change", changeScope);
  $("region").addEventListener("change", changeScope);
  $("filter").addEventListener("input", () => {
    state.filter = $("filter").value;
    writeHash();
    applyFilter();
  });
  $("release").addEventListener("click", () => act("StartPipelineExecution", { name: state.pipeline }));
  $("stop-form").addEventListener("submit", stopExecution);
  $("stop-cancel").addEventListener("click", () => { $("stop-form").hidden = true; });
  $("events-pipeline").addEventListener("input", renderEvents);
  $("events-type").addEventListener("change", renderEvents);
  $("clock-form").addEventListener("submit", advanceClock);
  $("behaviors-form").addEventListener("submit", saveBehaviors);
  window.addEventListener("hashchange", showView);
  state.pipeline = readHash().pipeline;
  state.view = readHash().view;
  writeHash();
  await follow();
  await showView();
}

start();
