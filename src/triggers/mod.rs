//! What starts pipelines from outside the API: deliveries to V1 webhook URLs ([`webhooks`]), git pushes and pull
//! requests through an emulated connection ([`git`], with AWS's glob syntax in [`glob`]) and source changes of S3
//! objects, ECR images and CodeCommit branches ([`source_changes`]).
//!
//! | endpoint | what it does |
//! |---|---|
//! | `POST /webhooks/{region}/{id}` | a delivery to the URL PutWebhook returned: authenticated, filtered, starts the target |
//! | `POST /_emulator/git/push`, `/_emulator/git/pull-request` | a push or pull request in a neutral form |
//! | `POST /_emulator/git/webhook` | a GitHub, GitLab or Bitbucket Cloud delivery, unchanged |
//! | `POST /_emulator/source-changes` | an S3, ECR or CodeCommit change (neutral or AWS's EventBridge event) |
//!
//! Every start goes through the engine's one writer (`Engine::apply`, `Command::Start`), like StartPipelineExecution.
//! A change to the emulated world (an object's new version, a branch's new head) is recorded in
//! [`crate::state::sources`] first, so that the source action of the execution picks it up.

pub mod git;
pub mod glob;
pub mod source_changes;
pub mod webhooks;

use axum::Router;
use axum::middleware;
use axum::routing::post;
use serde::Serialize;

use crate::engine::command::{Command, Refusal};
use crate::engine::step::StartRequest;
use crate::protocol::ApiError;
use crate::server::AppState;
use crate::state::execution::{ExecutionTrigger, RevisionOverride};
use crate::state::{Scope, Unavailable};

/// The routes: webhook URLs are open to anyone (a delivery authenticates itself as its webhook says); the
/// `/_emulator/*` ones are guarded like every control endpoint.
pub fn routes(state: &AppState) -> Router<AppState> {
    let control = Router::new()
        .route("/_emulator/source-changes", post(source_changes::receive))
        .route("/_emulator/git/push", post(git::push))
        .route("/_emulator/git/pull-request", post(git::pull_request))
        .route("/_emulator/git/webhook", post(git::webhook))
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::control::guard::protect));
    Router::new().route("/webhooks/{region}/{id}", post(webhooks::deliver)).merge(control)
}

/// A pipeline an event started.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub pipeline_name: String,
    pub pipeline_execution_id: String,
}

/// A pipeline that watches what an event changed but did not start, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub pipeline_name: String,
    pub reason: String,
}

/// What an event did: `{"started": [...], "skipped": [...]}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub started: Vec<Started>,
    pub skipped: Vec<Skipped>,
}

impl Outcome {
    /// Starts `pipeline` through the engine and records what happened.
    pub fn start(
        &mut self,
        app: &AppState,
        scope: &Scope,
        pipeline: &str,
        trigger: ExecutionTrigger,
        overrides: Vec<RevisionOverride>,
    ) -> Result<(), ApiError> {
        match start(app, scope, pipeline, trigger, overrides)? {
            Ok(id) => {
                self.started.push(Started { pipeline_name: pipeline.to_string(), pipeline_execution_id: id });
            }
            Err(reason) => self.skip(pipeline, reason),
        }
        Ok(())
    }

    /// Records that `pipeline` did not start.
    pub fn skip(&mut self, pipeline: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped { pipeline_name: pipeline.to_string(), reason: reason.into() });
    }
}

/// Why a trigger started nothing: a reason to report, or a start that could not be saved (answered 503).
enum NotStarted {
    Reason(String),
    Unavailable(Unavailable),
}

impl From<Unavailable> for NotStarted {
    fn from(unavailable: Unavailable) -> NotStarted {
        NotStarted::Unavailable(unavailable)
    }
}

/// Starts an execution of `pipeline` through the engine; its id, or why it did not start. A start that could not be
/// saved is an error.
pub fn start(
    app: &AppState,
    scope: &Scope,
    pipeline: &str,
    trigger: ExecutionTrigger,
    overrides: Vec<RevisionOverride>,
) -> Result<Result<String, String>, ApiError> {
    let request = StartRequest { trigger, variables: Vec::new(), overrides };
    let command = Command::Start { request, client_token: None };
    let refused = |refusal: Refusal| {
        NotStarted::Reason(match refusal {
            Refusal::PipelineNotFound => format!("The pipeline {pipeline} does not exist"),
            other => format!("The pipeline {pipeline} could not start: {other:?}"),
        })
    };
    match app.engine().apply(app.store(), scope, pipeline, command, |_| Ok(()), refused) {
        Ok(applied) => Ok(applied.execution().ok_or_else(|| format!("The pipeline {pipeline} did not start"))),
        Err(NotStarted::Reason(reason)) => Ok(Err(reason)),
        Err(NotStarted::Unavailable(unavailable)) => Err(unavailable.into()),
    }
}
