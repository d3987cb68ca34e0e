// codepipeline-local dashboard: the history of executions, an execution's timeline, and the events panel. Loaded
// before app.js, whose state and helpers it uses once the page runs. Data is always put on the page as text.
"use strict";

// --- History and timeline -------------------------------------------------------------------------------------------

function duration(start, end) {
  if (start === undefined || end === undefined) return "";
  const ms = Math.max(0, Math.round((end - start) * 1000));
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

function finished(status) {
  return !["InProgress", "Stopping"].includes(status);
}

/// Shows a page of ListPipelineExecutions as the history.
async function showHistory(page) {
  const rows = page.pipelineExecutionSummaries.map((execution) => {
    const tr = element("tr");
    tr.dataset.execution = execution.pipelineExecutionId;
    const id = element("th");
    id.scope = "row";
    const open = button(execution.pipelineExecutionId, () => openTimeline(execution.pipelineExecutionId), "link");
    open.setAttribute("aria-label", `Open execution ${execution.pipelineExecutionId}`);
    id.append(open);
    const trigger = execution.trigger ? execution.trigger.triggerType : "";
    const end = finished(execution.status) ? execution.lastUpdateTime : emulatorNow();
    tr.append(id, element("td", "latest"), element("td", "", trigger), element("td", "time", when(execution.startTime)),
      element("td", "time", duration(execution.startTime, end)));
    tr.querySelector(".latest").append(statusBadge(execution.status));
    return tr;
  });
  $("history").tBodies[0].replaceChildren(...rows);
  if (state.opened) await openTimeline(state.opened);
}

/// A definition list of `values` (an object), or nothing if it is empty.
function pairs(title, values) {
  const entries = Object.entries(values || {});
  if (!entries.length) return [];
  const list = element("dl");
  for (const [key, value] of entries) {
    list.append(element("dt", "", key), element("dd", "", typeof value === "string" ? value : JSON.stringify(value)));
  }
  return [element("strong", "", title), list];
}

/// What a reviewer reads at a glance on a timeline row: the failure, the artifacts (with a download link when an S3
/// neighbour holds them) and the output variables (a stack's outputs, a source's revision).
function glance(error, inputs, outputs, variables) {
  const shown = [];
  if (error) shown.push(element("p", "error", `${error.code}: ${error.message}`));
  const artifacts = [...(inputs || []).map((a) => ["in", a]), ...(outputs || []).map((a) => ["out", a])];
  if (artifacts.length) {
    const list = element("ul", "artifacts");
    for (const [direction, artifact] of artifacts) {
      const location = artifact.s3location || {};
      const item = element("li", "", `${direction} ${artifact.name}: s3://${location.bucket}/${location.key} `);
      if (state.realArtifacts && location.bucket && location.key) {
        const link = element("a", "", "download");
        const query = new URLSearchParams({ bucket: location.bucket, key: location.key, account: state.account, region: state.region });
        link.href = `/_emulator/artifacts?${query}`;
        // Signed in, a link carries its signature (it cannot carry headers).
        SIGV4.presign(link.href, state.region).then((url) => { link.href = url; });
        link.setAttribute("aria-label", `Download ${artifact.name}`);
        item.append(link);
      }
      list.append(item);
    }
    shown.push(list);
  }
  shown.push(...pairs("Output variables", variables));
  return shown;
}

/// A build's log beside its action: a button that shows it, following it live while the build runs. The view (and
/// its stream) survives the timeline's redraws.
function buildLog(id, action) {
  let view = state.logs.get(id);
  if (!view) {
    const box = element("div", "build-log");
    const pre = element("pre", "");
    pre.hidden = true;
    pre.setAttribute("aria-label", `Build log of ${action}`);
    pre.tabIndex = 0;
    const toggle = button("Show build log", () => {
      pre.hidden = !pre.hidden;
      toggle.textContent = pre.hidden ? "Show build log" : "Hide build log";
      if (!pre.hidden && !view.source) {
        // Signed in, the stream's URL carries its signature (an EventSource cannot carry headers).
        view.source = SIGV4.presign(`/_emulator/builds/${encodeURIComponent(id)}/log/stream`, state.region).then((url) => {
          const source = new EventSource(url);
          source.addEventListener("line", (event) => {
            const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.append(`${event.data}\n`);
            if (follow) pre.scrollTop = pre.scrollHeight;
          });
          source.addEventListener("end", () => source.close());
          source.onerror = () => source.close();
          return source;
        });
      }
    }, "link");
    box.append(toggle, pre);
    view = { box, source: null };
    state.logs.set(id, view);
  }
  return view.box;
}

function timelineRow(stage, name, status, start, end, details, shown) {
  const tr = element("tr");
  tr.append(element("td", "", stage), element("th", "", name), element("td", "latest"), element("td", "time", when(start)),
    element("td", "time", duration(start, end)));
  tr.children[1].scope = "row";
  tr.querySelector(".latest").append(statusBadge(status));
  const cell = element("td");
  cell.append(...(shown || []));
  if (details.length) {
    const box = element("details");
    box.append(element("summary", "", "Configuration and result"), ...details);
    cell.append(box);
  }
  tr.append(cell);
  return tr;
}

async function openTimeline(id) {
  state.opened = id;
  try {
    const filter = { pipelineExecutionId: id };
    const [actions, rules] = await Promise.all([
      aws("ListActionExecutions", { pipelineName: state.pipeline, filter, maxResults: 100 }),
      aws("ListRuleExecutions", { pipelineName: state.pipeline, filter, maxResults: 100 }).catch(() => ({})),
    ]);
    const items = [];
    for (const a of actions.actionExecutionDetails || []) {
      const input = a.input || {};
      const output = a.output || {};
      const result = output.executionResult || {};
      const details = [
        ...pairs("Configuration", input.resolvedConfiguration || input.configuration),
        ...pairs("Result", { summary: result.externalExecutionSummary, id: result.externalExecutionId }),
      ];
      // The history gives a failure's code; its message is the result's summary.
      const error = result.errorDetails
        && { code: result.errorDetails.code, message: result.errorDetails.message || result.externalExecutionSummary };
      const shown = glance(error, input.inputArtifacts, output.outputArtifacts, output.outputVariables);
      const type = input.actionTypeId || {};
      if (state.runBuilds && (type.provider === "CodeBuild" || type.provider === "Commands")) {
        shown.push(buildLog(a.actionExecutionId, a.actionName));
      }
      const end = finished(a.status) ? a.lastUpdateTime : emulatorNow();
      items.push([a.startTime, timelineRow(a.stageName, a.actionName, a.status, a.startTime, end, details, shown)]);
    }
    for (const r of rules.ruleExecutionDetails || []) {
      const result = (r.output && r.output.executionResult) || {};
      const details = [...pairs("Configuration", r.input && (r.input.resolvedConfiguration || r.input.configuration))];
      const error = result.errorDetails
        && { code: result.errorDetails.code, message: result.errorDetails.message || result.externalExecutionSummary };
      const shown = glance(error);
      const end = finished(r.status) ? r.lastUpdateTime : emulatorNow();
      items.push([r.startTime, timelineRow(r.stageName, `Rule ${r.ruleName}`, r.status, r.startTime, end, details, shown)]);
    }
    // A row for each stage: from its first action's start to its last one's end, failed if one failed.
    const stages = new Map();
    for (const a of actions.actionExecutionDetails || []) {
      const stage = stages.get(a.stageName) || { start: a.startTime, end: a.lastUpdateTime, statuses: [] };
      stage.start = Math.min(stage.start, a.startTime);
      stage.end = Math.max(stage.end, a.lastUpdateTime);
      stage.statuses.push(a.status);
      stages.set(a.stageName, stage);
    }
    for (const [name, stage] of stages) {
      const status = ["Failed", "InProgress", "Stopped", "Abandoned"].find((s) => stage.statuses.includes(s)) || "Succeeded";
      const end = finished(status) ? stage.end : emulatorNow();
      const row = timelineRow(name, "Stage", status, stage.start, end, []);
      row.classList.add("stage-row");
      // Just before its first action.
      items.push([stage.start - 1e-6, row]);
    }
    items.sort((a, b) => a[0] - b[0]);
    $("timeline-title").textContent = `Timeline of ${id}`;
    $("timeline").querySelector("tbody").replaceChildren(...items.map((i) => i[1]));
    $("timeline").hidden = false;
  } catch (error) {
    report("pipeline-error", error);
  }
}


// --- Events ----------------------------------------------------------------------------------------------------------

/// The status mark of an event's state (AWS spells event states in capitals).
const EVENT_MARKS = {
  STARTED: "inprogress", RESUMED: "inprogress", SUCCEEDED: "succeeded", FAILED: "failed", CANCELED: "cancelled",
  SUPERSEDED: "superseded", STOPPING: "stopping", STOPPED: "stopped", ABANDONED: "abandoned",
};

function eventRow(entry) {
  const event = entry.event;
  const detail = event.detail || {};
  const tr = element("tr");
  const where = [detail.stage, detail.action].filter(Boolean).join(" / ");
  tr.append(element("td", "time", when(Date.parse(event.time) / 1000)),
    element("td", "", (event["detail-type"] || "").replace("CodePipeline ", "").replace(" State Change", "")),
    element("td", "", detail.pipeline || ""), element("td", "", where), element("td", "latest"),
    element("td", "result"), element("td", "time", detail["execution-id"] || ""));
  // A failure's code and message, on its own row (AWS puts them in the event's execution result).
  const result = detail["execution-result"] || {};
  if (result["error-code"]) {
    tr.querySelector(".result").append(element("span", "error", `${result["error-code"]}: ${result["external-execution-summary"] || ""}`));
  } else if (result["external-execution-summary"]) {
    tr.querySelector(".result").textContent = result["external-execution-summary"];
  }
  const mark = EVENT_MARKS[detail.state] || "none";
  tr.querySelector(".latest").append(element("span", `status ${mark}`, detail.state || ""));
  return tr;
}

function renderEvents() {
  if (state.view !== "events") return;
  const pipeline = $("events-pipeline").value.trim().toLowerCase();
  const type = $("events-type").value;
  const shown = state.events.filter((entry) => {
    const detail = entry.event.detail || {};
    return (!pipeline || (detail.pipeline || "").toLowerCase().includes(pipeline))
      && (!type || entry.event["detail-type"] === type);
  });
  $("events").tBodies[0].replaceChildren(...shown.slice().reverse().map(eventRow));
  $("events-empty").hidden = shown.length > 0;
  $("events-empty").textContent = state.events.length ? "No event matches the filters." : "No events yet.";
}

async function loadEvents() {
  try {
    const query = new URLSearchParams({ account: state.account, region: state.region });
    const kept = await control(`/_emulator/events?${query}`);
    state.events = kept.events.slice(-MAX_EVENTS);
    renderEvents();
  } catch (error) {
    report("error", error);
  }
}

function addEvent(sequence, event) {
  if (state.events.length && state.events[state.events.length - 1].sequence >= sequence) return;
  state.events.push({ sequence, event });
  if (state.events.length > MAX_EVENTS) state.events.shift();
  renderEvents();
}
