//! What starts pipelines from outside the API: deliveries to V1 webhook URLs ([`webhooks`]), git pushes and pull
//! requests through an emulated connection ([`git`], with AWS's glob syntax in [`crate::state::glob`]) and source changes of S3
//! objects, ECR images and CodeCommit branches ([`source_changes`]).
//!
//! | endpoint | what it does |
//! |---|---|
//! | `POST /webhooks/{region}/{id}` | a delivery to the URL PutWebhook returned: authenticated, filtered, starts the target |
//! | `POST /_emulator/git/push`, `/_emulator/git/pull-request` | a push or pull request in a neutral form |
//! | `POST /_emulator/git/webhook` | a GitHub, GitLab or Bitbucket Cloud delivery, unchanged |
//! | `POST /_emulator/source-changes` | an S3, ECR or CodeCommit change (neutral or AWS's EventBridge event) |
//!
//! Every start goes through the engine's one writer (`Engine::apply_within`, `Command::Start`), like
//! StartPipelineExecution. A delivery is decided and carried out in one write: the change to the emulated world (an
//! object's new version, a branch's new head, recorded in [`crate::state::sources`] so that the source actions pick
//! it up), every start it makes and the webhook's `lastTriggered` are saved together, or none of them.

pub mod git;
pub mod source_changes;
pub mod webhooks;

use axum::Router;
use axum::middleware;
use axum::routing::post;
use serde::Serialize;

use crate::app::AppState;
use crate::engine::commands::start::{Start, StartRefusal};
use crate::engine::step::StartRequest;
use crate::state::Scope;
use crate::state::execution::{ExecutionTrigger, RevisionOverride};

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
    /// Starts `pipeline` through the engine inside the write of the delivery (call it in the closure of
    /// `Store::write`, under the partition lock, so that the whole delivery is saved or none of it), and records
    /// what happened.
    pub fn start_within(
        &mut self,
        within: &mut Within<'_>,
        pipeline: &str,
        trigger: ExecutionTrigger,
        overrides: Vec<RevisionOverride>,
    ) {
        match start_within(within, pipeline, trigger, overrides) {
            Ok(id) => self.started.push(Started { pipeline_name: pipeline.to_string(), pipeline_execution_id: id }),
            Err(reason) => self.skip(pipeline, reason),
        }
    }

    /// Records that `pipeline` did not start.
    pub fn skip(&mut self, pipeline: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped { pipeline_name: pipeline.to_string(), reason: reason.into() });
    }
}

/// A delivery's write: the partition it changes, with the engine that starts pipelines in it.
pub struct Within<'a> {
    pub engine: &'a crate::engine::Engine,
    pub data: &'a mut crate::state::PartitionData,
    pub scope: &'a Scope,
    pub now: crate::state::Timestamp,
}

/// Starts an execution of `pipeline` inside a delivery's write; its id, or why it did not start.
pub fn start_within(
    within: &mut Within<'_>,
    pipeline: &str,
    trigger: ExecutionTrigger,
    overrides: Vec<RevisionOverride>,
) -> Result<String, String> {
    let request = StartRequest { trigger, variables: Vec::new(), overrides };
    let command = Start { request, client_token: None };
    let Within { engine, data, scope, now } = within;
    engine.apply_within(data, scope, pipeline, command, *now).map_err(|refusal| match refusal {
        StartRefusal::PipelineNotFound => format!("The pipeline {pipeline} does not exist"),
        StartRefusal::NotASourceAction { action } => {
            format!("The pipeline {pipeline} has no source action {action} in its first stage")
        }
        StartRefusal::RevisionTypeNotAllowed { action, revision_type, provider } => format!(
            "The source action {action} of pipeline {pipeline} (provider {provider}) does not take a {} revision",
            revision_type.as_str()
        ),
    })
}
