//! The emulator's own endpoints, outside the AWS surface: health checks and state control.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /health` | 200 with the version and uptime |
//! | `GET /_localstack/health` | LocalStack's health document, so existing readiness checks work unchanged |
//! | `POST /_emulator/reset` | drops all state (and resets the clock), or with `account`/`region` one account's or region's; `POST /_localstack/state/reset` and `POST /moto-api/reset` too |
//! | `GET /_localstack/init[/<stage>]` | the init hooks' scripts and states, in LocalStack's form ([`crate::app::init`]) |
//! | `GET`/`PUT`/`DELETE /_emulator/behaviors` | read, replace or clear the behaviour rules of simulated actions and rules |
//! | `POST /_emulator/actions/complete` | end a running (held, waiting) action, or with `ruleName` a rule, with a chosen outcome |
//! | `POST /_emulator/clock/advance` | move the emulator clock forward; timeouts and timestamps follow |
//! | `GET /_emulator/clock` | the emulator's time and its offset from the wall clock |
//! | `GET`/`POST /_emulator/third-party-action-types` | list, or register, partner action types run by job workers |
//! | `GET /_emulator/events` | the latest EventBridge events of state changes, filtered by pipeline, execution, type and sequence |
//! | `GET /_emulator/events/stream` | the same events live, as Server-Sent Events; `Last-Event-ID` resumes |
//! | `GET /_emulator/partitions` | the accounts and regions that hold state, with their pipeline counts, and the defaults |
//! | `GET /_emulator/artifacts` | an artifact's zip from the S3 neighbour, for the dashboard's download links ([`artifacts`]) |
//! | `GET /_emulator/builds/{actionExecutionId}/log[/stream]` | a build's log, kept or followed live ([`builds`]) |
//! | `GET /_emulator/ui/` | the dashboard ([`ui`]) |

pub mod artifacts;
pub mod builds;
pub mod guard;
pub mod ui;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use self::guard::{Caller, ControlJson};

use crate::app::AppState;
use crate::app::init::Stage;
use crate::app::partners::{PartnerTypeSpec, register_partner};
use crate::engine::commands::complete::{CompleteAction, CompleteRefusal, CompleteRule};
use crate::protocol::body::read_limited;
use crate::protocol::identity::scope_of;
use crate::protocol::{ApiError, ErrorCode};
use crate::state::behaviors::{BehaviorRule, BehaviorSet};
use crate::state::execution::{ErrorDetails, FailureType, Outcome, Success};
use crate::state::{Scope, ThirdPartyRecord};

/// The routes of the control endpoints. The health checks are open to anyone; the `/_emulator/*` endpoints are
/// guarded against web pages ([`guard`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    let emulator = Router::new()
        .route("/_emulator/reset", post(reset))
        // LocalStack's and moto's resets, for the habits of their users.
        .route("/_localstack/state/reset", post(reset))
        .route("/moto-api/reset", post(reset))
        .route("/_emulator/state", get(export_state).put(import_state))
        .route("/_emulator/behaviors", get(get_behaviors).put(put_behaviors).delete(delete_behaviors))
        .route("/_emulator/actions/complete", post(complete_action))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route("/_emulator/clock", get(clock))
        .route("/_emulator/third-party-action-types", get(list_partner_types).post(register_partner_type))
        .route("/_emulator/events", get(list_events))
        .route("/_emulator/events/stream", get(stream_events))
        .route("/_emulator/partitions", get(partitions))
        .route("/_emulator/artifacts", get(artifacts::download))
        .route("/_emulator/builds/{id}/log", get(builds::log))
        .route("/_emulator/builds/{id}/log/stream", get(builds::stream))
        .merge(ui::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::protect));
    Router::new()
        .route("/health", get(health))
        .route("/_localstack/health", get(localstack_health))
        .route("/_localstack/init", get(init_report))
        .route("/_localstack/init/{stage}", get(init_stage_report))
        .merge(emulator)
}

fn partner_json(record: &ThirdPartyRecord) -> Value {
    json!({"actionType": record.action_type, "clientId": record.client_id.to_string(), "clientToken": record.client_token})
}

async fn register_partner_type(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(spec): ControlJson<PartnerTypeSpec>,
) -> Result<Json<Value>, ApiError> {
    let scope = control_scope(&app, &caller, &headers, &uri, spec.account.clone(), spec.region.clone())?;
    let record = register_partner(app.store(), app.catalogue(), &scope, spec)?;
    Ok(Json(partner_json(&record)))
}

async fn list_partner_types(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let scope = control_scope(&app, &caller, &headers, &uri, None, None)?;
    let types: Vec<Value> =
        app.store().read(&scope, |data| data.third_party_types.values().map(partner_json).collect());
    Ok(Json(json!({"actionTypes": types})))
}

async fn get_behaviors(State(app): State<AppState>) -> Json<BehaviorSet> {
    Json(BehaviorSet { rules: app.engine().behaviors() })
}

async fn put_behaviors(
    State(app): State<AppState>,
    caller: Caller,
    ControlJson(set): ControlJson<BehaviorSet>,
) -> Result<Json<BehaviorSet>, ApiError> {
    caller.must_act_anywhere("set the behaviour rules")?;
    BehaviorSet::check(&set.rules).map_err(ApiError::validation)?;
    save_behaviors(&app, &set.rules)?;
    app.engine().set_behaviors(set.rules.clone());
    Ok(Json(set))
}

async fn delete_behaviors(State(app): State<AppState>, caller: Caller) -> Result<Json<BehaviorSet>, ApiError> {
    caller.must_act_anywhere("remove the behaviour rules")?;
    save_behaviors(&app, &[])?;
    app.engine().set_behaviors(Vec::new());
    Ok(Json(BehaviorSet::default()))
}

/// Saves the behaviour rules (with a data directory) before they take effect.
fn save_behaviors(app: &AppState, rules: &[BehaviorRule]) -> Result<(), ApiError> {
    let text = serde_json::to_string(rules).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(app.store().save_setting(crate::store::sqlite::META_BEHAVIORS, &text)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportQuery {
    /// Whether secrets are exported in clear (for a lossless backup) rather than as `****`.
    #[serde(default)]
    include_secrets: bool,
}

/// `GET /_emulator/state`: the whole state as one versioned JSON document.
async fn export_state(
    State(app): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    caller.must_act_anywhere("export the state")?;
    let document = app.store().export(app.engine().behaviors(), !query.include_secrets);
    let body = serde_json::to_vec(&document).map_err(|e| ApiError::validation(e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `PUT /_emulator/state`: replaces the whole state with a document's, all or nothing. Running executions in it
/// resume.
async fn import_state(
    State(app): State<AppState>,
    caller: Caller,
    request: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    caller.must_act_anywhere("replace the state")?;
    let (parts, body) = request.into_parts();
    let limit = app.config().max_import_bytes;
    let bytes = read_limited(&parts.headers, body, limit, app.config().body_timeout).await.map_err(|mut e| {
        if e.code == crate::protocol::ErrorCode::RequestEntityTooLargeException {
            e.message.push_str(" (--max-import-bytes)");
        }
        e
    })?;
    let document: crate::store::document::Document =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::validation(format!("Invalid state document: {e}")))?;
    app.import(document)?;
    Ok(Json(json!({
        "status": "imported",
        "partitions": app.store().partition_count(),
        "clockOffsetSeconds": app.store().clock().offset_millis() as f64 / 1000.0,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CompleteRequest {
    pipeline_name: String,
    pipeline_execution_id: String,
    stage_name: String,
    /// The action to end; or, with `rule_name` instead, a rule of the stage's condition being evaluated.
    action_name: Option<String>,
    rule_name: Option<String>,
    #[serde(default)]
    outcome: CompleteOutcome,
    summary: Option<String>,
    message: Option<String>,
    error_code: Option<FailureType>,
    output_variables: Option<BTreeMap<String, String>>,
    external_execution_id: Option<String>,
    /// The account and region, when not taken from the request's credentials or the defaults.
    account: Option<String>,
    region: Option<String>,
}

/// How `POST /_emulator/actions/complete` ends a held action or rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CompleteOutcome {
    #[default]
    Succeed,
    Fail,
}

fn not_running(what: String) -> ApiError {
    ApiError::new(ErrorCode::NotFoundException, what)
}

/// The scope of a control request: the verified caller's (with `--verify-signatures`), else SigV4 credentials or the
/// defaults; overridden by the body, where the caller may act on that account.
pub(crate) fn control_scope(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    uri: &Uri,
    account: Option<String>,
    region: Option<String>,
) -> Result<Scope, ApiError> {
    let mut scope = caller.scope().unwrap_or_else(|| scope_of(headers, uri.query(), app.defaults()));
    if let Some(account) = account {
        scope.account = account;
    }
    if let Some(region) = region {
        scope.region = region;
    }
    caller.may_act_on(&scope.account)?;
    Ok(scope)
}

async fn complete_action(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(request): ControlJson<CompleteRequest>,
) -> Result<Json<Value>, ApiError> {
    let outcome = match request.outcome {
        CompleteOutcome::Succeed => Outcome::Succeed(Success {
            summary: request.summary,
            external_execution_id: request.external_execution_id,
            output_variables: request.output_variables.unwrap_or_default(),
            ..Success::default()
        }),
        CompleteOutcome::Fail => Outcome::Fail(ErrorDetails {
            code: request.error_code.unwrap_or(FailureType::JobFailed),
            message: request.message.or(request.summary).unwrap_or_else(|| "The action failed.".into()),
        }),
    };
    let scope = control_scope(&app, &caller, &headers, &uri, request.account, request.region)?;
    let (pipeline, execution, stage) = (&request.pipeline_name, &request.pipeline_execution_id, &request.stage_name);
    let target = match (&request.action_name, &request.rule_name) {
        (Some(action), None) => Target::Action(action),
        (None, Some(rule)) => Target::Rule(rule),
        _ => return Err(ApiError::validation("give exactly one of actionName and ruleName")),
    };
    let refused = |refusal| {
        not_running(match (refusal, target) {
            (CompleteRefusal::PipelineNotFound, _) => {
                format!("No pipeline '{pipeline}' in account {} region {}", scope.account, scope.region)
            }
            (CompleteRefusal::ExecutionNotFound, _) => format!("No execution '{execution}' in pipeline '{pipeline}'"),
            (CompleteRefusal::NotRunning, Target::Action(action)) => {
                format!("Action '{action}' of stage '{stage}' is not running in execution '{execution}'")
            }
            (CompleteRefusal::NotRunning, Target::Rule(rule)) => {
                format!("Rule '{rule}' of stage '{stage}' is not running in execution '{execution}'")
            }
        })
    };
    let (execution, stage) = (execution.clone(), stage.clone());
    let completed = match target {
        Target::Action(action) => {
            let command = CompleteAction { execution, stage, action: action.to_string(), outcome };
            let id = app.engine().apply(&scope, pipeline, command)?.map_err(refused)?;
            json!({"completed": true, "actionExecutionId": id})
        }
        Target::Rule(rule) => {
            let command = CompleteRule { execution, stage, rule: rule.to_string(), outcome };
            let id = app.engine().apply(&scope, pipeline, command)?.map_err(refused)?;
            json!({"completed": true, "ruleExecutionId": id})
        }
    };
    Ok(Json(completed))
}

/// What `POST /_emulator/actions/complete` ends.
#[derive(Clone, Copy)]
enum Target<'a> {
    Action(&'a str),
    Rule(&'a str),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: f64,
}

/// `GET /_emulator/clock`: the emulator's time (epoch seconds) and how far ahead of the wall clock it is.
async fn clock(State(app): State<AppState>) -> Json<Value> {
    let clock = app.store().clock();
    Json(json!({"now": clock.now().epoch_seconds(), "offsetSeconds": clock.offset_millis() as f64 / 1000.0}))
}

async fn advance_clock(
    State(app): State<AppState>,
    caller: Caller,
    ControlJson(request): ControlJson<AdvanceRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.must_act_anywhere("advance the emulator clock")?;
    if !request.seconds.is_finite() || request.seconds < 0.0 || request.seconds > 3.2e9 {
        return Err(ApiError::validation("seconds must be a number between 0 and 3.2e9"));
    }
    let store = app.store();
    let millis = (request.seconds * 1000.0).round() as i64;
    let offset = store.clock().offset_millis().saturating_add(millis);
    let most = crate::app::import::MAX_CLOCK_OFFSET_MILLIS;
    if offset > most {
        return Err(ApiError::validation(format!(
            "The clock may be at most {} seconds (about 101 years) ahead of wall time; it is {} seconds ahead",
            most / 1000,
            store.clock().offset_millis() / 1000
        )));
    }
    store.save_setting(crate::store::sqlite::META_CLOCK_OFFSET, &offset.to_string())?;
    store.clock().advance(millis);
    app.engine().run_due();
    app.engine().wake();
    let now = store.clock().now();
    Ok(Json(json!({
        "now": now.epoch_seconds(),
        "offsetSeconds": store.clock().offset_millis() as f64 / 1000.0,
    })))
}

async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "running",
        "service": "codepipeline",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.uptime().as_secs_f64(),
        "serviceModel": {"apiVersion": "2015-07-09", "botocoreVersion": app.model().source_version},
        "eventDelivery": app.engine().events().delivery_stats().map(|s| s.to_json()),
        "approvalNotifications": app.engine().events().notification_stats().map(|s| s.to_json()),
        "storage": storage_json(&app),
    }))
}

/// How saving goes: `{"state": "memory"}` without a data directory; else `ok`, `full` (the data directory is full
/// or cannot be written) or `failing`, with the run of failed commits and the last error.
fn storage_json(app: &AppState) -> Value {
    match app.store().storage_health() {
        None => json!({"state": "memory"}),
        Some(health) => {
            let mut shown = serde_json::to_value(&health).unwrap_or_else(|_| json!({}));
            shown["state"] = json!(health.state());
            shown
        }
    }
}

/// `GET /_emulator/partitions`: `{"default": {"account", "region"}, "partitions": [{"account", "region",
/// "pipelines"}, ...], "realArtifacts", "runBuilds"}`, in account and region order.
async fn partitions(State(app): State<AppState>, caller: Caller) -> Json<Value> {
    let store = app.store();
    let mut scopes = store.scopes();
    // A caller that may act on its own account only sees that account's.
    scopes.retain(|scope| caller.may_act_on(&scope.account).is_ok());
    scopes.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
    let partitions: Vec<Value> = scopes
        .iter()
        .map(|scope| {
            let pipelines = store.read(scope, |data| data.pipelines.len());
            json!({"account": scope.account, "region": scope.region, "pipelines": pipelines})
        })
        .collect();
    let defaults = app.defaults();
    let default =
        caller.scope().unwrap_or_else(|| Scope { account: defaults.account.clone(), region: defaults.region.clone() });
    Json(json!({
        "default": {"account": default.account, "region": default.region},
        "partitions": partitions,
        // Whether artifacts are real objects in an S3 neighbour (the dashboard then offers downloads).
        "realArtifacts": app.engine().real_artifacts(),
        // Whether builds run here (the dashboard then shows their logs).
        "runBuilds": app.engine().runs_builds(),
    }))
}

async fn localstack_health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "services": {"codepipeline": "running"},
        "edition": "codepipeline-local",
        "version": env!("CARGO_PKG_VERSION"),
        "storage": storage_json(&app),
    }))
}

/// `GET /_localstack/init`: every stage's completion and every script, as LocalStack reports them.
async fn init_report(State(app): State<AppState>) -> Json<Value> {
    let hooks = app.init_hooks();
    let completed: serde_json::Map<String, Value> =
        Stage::ALL.iter().map(|s| (s.name().to_string(), Value::Bool(hooks.completed(*s)))).collect();
    Json(json!({"completed": completed, "scripts": hooks.report(None)}))
}

/// `GET /_localstack/init/<stage>`: one stage's completion and scripts; 404 for a stage that does not exist.
async fn init_stage_report(
    State(app): State<AppState>,
    axum::extract::Path(stage): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(stage) = Stage::named(&stage) else {
        return Err(ApiError::new(
            ErrorCode::NotFoundException,
            format!(
                "No init stage '{}'; the stages are boot, start, ready and shutdown",
                stage.chars().take(40).collect::<String>()
            ),
        ));
    };
    let hooks = app.init_hooks();
    Ok(Json(json!({"completed": hooks.completed(stage), "scripts": hooks.report(Some(stage))})))
}

/// What `POST /_emulator/reset` drops: one account, one region, or one partition; everything when neither is named
/// (in the body, or by the request's SigV4 credentials).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    account: Option<String>,
    region: Option<String>,
    /// Every partition, even for a signed request (with `--verify-signatures`, an admin's).
    #[serde(default)]
    all: bool,
}

async fn reset(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(request): ControlJson<ResetRequest>,
) -> Result<Json<Value>, ApiError> {
    // Signed requests name their partition as they would on the AWS endpoint (a verified one, its own account).
    let signed = headers.contains_key(axum::http::header::AUTHORIZATION)
        || uri.query().is_some_and(|q| q.contains("X-Amz-Credential="));
    if request.all {
        caller.must_act_anywhere("reset every account")?;
    }
    let signed = signed && !request.all;
    let credentials = if request.all {
        None
    } else {
        caller.scope().or_else(|| signed.then(|| scope_of(&headers, uri.query(), app.defaults())))
    };
    let account = request.account.or_else(|| credentials.as_ref().map(|s| s.account.clone()));
    if let Some(account) = &account {
        caller.may_act_on(account)?;
    }
    let region = request.region.or_else(|| credentials.map(|s| s.region));
    if account.is_none() && region.is_none() {
        app.reset()?;
        tracing::info!("all state reset");
        return Ok(Json(json!({"status": "reset"})));
    }
    let dropped = app.reset_where(|scope| {
        account.as_ref().is_none_or(|a| *a == scope.account) && region.as_ref().is_none_or(|r| *r == scope.region)
    })?;
    tracing::info!(
        account = account.as_deref().unwrap_or("*"),
        region = region.as_deref().unwrap_or("*"),
        "state reset"
    );
    Ok(Json(json!({"status": "reset", "account": account, "region": region, "partitions": dropped})))
}

/// Asks a running server for `GET /health` and tells whether it answered 200. Used by `--check-health`, so a
/// container health check needs nothing but the binary. A wildcard listen address is probed on loopback.
pub fn probe_health(host: &str, port: u16) -> Result<(), String> {
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        other => other,
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}:{port}"))?;
    let timeout = Duration::from_secs(3);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head).map_err(|e| format!("no answer from {addr}: {e}"))?;
    if head[..n].starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("unexpected answer from {addr}: {}", String::from_utf8_lossy(&head[..n])))
    }
}

/// The query of `GET /_emulator/events`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsQuery {
    pipeline: Option<String>,
    execution_id: Option<String>,
    detail_type: Option<String>,
    /// Only events after this sequence id.
    after: Option<u64>,
    account: Option<String>,
    region: Option<String>,
}

/// `GET /_emulator/events`: `{"events": [{"sequence": <sequence id>, "event": <EventBridge event>}, ...]}`, oldest first,
/// of the caller's account and region.
async fn list_events(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    query: QueryResult,
) -> Result<axum::response::Response, ApiError> {
    let (query, scope) = EventsQuery::read(&app, &caller, &headers, &uri, query)?;
    let (events, gap) = app.engine().events().since(query.after.unwrap_or(0), |e| query.selects(&scope, e));
    // The events are kept as JSON text: the answer is put together from it rather than parsed again.
    let mut body = String::with_capacity(64 + events.iter().map(|e| e.event.len() + 32).sum::<usize>());
    body.push_str("{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("{{\"sequence\":{},\"event\":{}}}", e.seq, e.event));
    }
    body.push(']');
    if let (Some(after), Some(horizon)) = (query.after, gap) {
        body.push_str(&format!(",\"gap\":{}", gap_json(after, horizon)));
    }
    body.push('}');
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// What a reader resuming after sequence number `after` is told when the history is whole only from `horizon`.
fn gap_json(after: u64, horizon: u64) -> Value {
    json!({
        "after": after,
        "resumesAt": horizon,
        "message": format!(
            "Events {} to {} are no longer kept (the history keeps the latest --event-history events, and starts \
             empty after a restart); read the state they changed through the API",
            after + 1,
            horizon - 1
        ),
    })
}

/// The events query as axum extracts it (a bad one is answered by the handler, as a JSON error).
type QueryResult = Result<axum::extract::Query<EventsQuery>, axum::extract::rejection::QueryRejection>;

impl EventsQuery {
    /// The query, and the account and region it reads.
    fn read(
        app: &AppState,
        caller: &Caller,
        headers: &HeaderMap,
        uri: &Uri,
        query: QueryResult,
    ) -> Result<(EventsQuery, Scope), ApiError> {
        let axum::extract::Query(query) = query.map_err(|e| ApiError::validation(format!("Invalid query: {e}")))?;
        let scope = control_scope(app, caller, headers, uri, query.account.clone(), query.region.clone())?;
        Ok((query, scope))
    }

    /// Whether an event of the scope passes the filters (all but `after`).
    fn selects(&self, scope: &Scope, e: &crate::engine::events::Published) -> bool {
        e.account == scope.account
            && e.region == scope.region
            && self.pipeline.as_ref().is_none_or(|p| *p == e.pipeline)
            && self.execution_id.as_ref().is_none_or(|x| *x == e.execution_id)
            && self.detail_type.as_ref().is_none_or(|t| t == e.detail_type)
    }
}

/// `GET /_emulator/events/stream`: the events as Server-Sent Events (`id:` the sequence id, `event:` the detail
/// type, `data:` the event), with the filters of `GET /_emulator/events`. With `Last-Event-ID` (or `after`) the
/// kept events after that one come first. A comment every 15 s keeps the connection open; a reader that falls
/// more than [`EventHub::SUBSCRIBER_BACKLOG`](crate::engine::events::EventHub::SUBSCRIBER_BACKLOG) events behind is
/// dropped (it can resume with `Last-Event-ID`); the engine never waits for a reader.
async fn stream_events(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    query: QueryResult,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let (query, scope) = EventsQuery::read(&app, &caller, &headers, &uri, query)?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let resume = resume.or(query.after);
    // Subscribed before the history is read, so nothing falls between the two.
    let receiver = app.engine().events().subscribe();
    let (backlog, gap) = match resume {
        Some(after) => app.engine().events().since(after, |e| query.selects(&scope, e)),
        None => (Vec::new(), None),
    };
    let backlog: std::collections::VecDeque<_> = backlog.into();
    let last = resume.unwrap_or(0);
    // A reader resuming from before what the history holds (older events were let go, or the server restarted) is
    // told first, so it can read the state it missed through the API.
    let gap = gap.map(|horizon| Event::default().event("gap").data(gap_json(last, horizon).to_string()));
    let state = (backlog, receiver, last, app.closing(), query, scope, false);
    let gap = futures_util::stream::iter(gap.map(Ok::<_, std::io::Error>));
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let (backlog, receiver, last, closing, query, scope, dropped) = &mut state;
        if *dropped {
            return None;
        }
        let event = loop {
            if let Some(event) = backlog.pop_front() {
                break event;
            }
            if *closing.borrow() {
                return None;
            }
            let received = tokio::select! {
                received = receiver.recv() => received,
                _ = closing.changed() => return None,
            };
            match received {
                Ok(event) if event.seq > *last && query.selects(scope, &event) => break event,
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(last = *last, missed, "an event stream reader fell too far behind; dropping it");
                    // An error rather than the end of the stream: the connection is closed at once instead of
                    // finishing the response to a reader that may not be reading (it resumes with Last-Event-ID).
                    *dropped = true;
                    let lagged = std::io::Error::other(format!("the reader fell {missed} events behind"));
                    return Some((Err(lagged), state));
                }
                Err(RecvError::Closed) => return None,
            }
        };
        *last = event.seq;
        let sse = Event::default().id(event.seq.to_string()).event(event.detail_type).data(&*event.event);
        Some((Ok::<_, std::io::Error>(sse), state))
    });
    Ok(Sse::new(futures_util::StreamExt::chain(gap, stream))
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}
