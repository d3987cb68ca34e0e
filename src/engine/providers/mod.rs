//! Action providers: what happens when an action starts, and who does the work.
//!
//! Every provider answers one question through [`start`], under the partition lock: given the action and its
//! resolved configuration, does it end by itself at a known time with a known outcome ([`Pending::At`]: the
//! [`simulated`] providers), or does it wait for someone outside (an approver, a test, a job worker, a Lambda
//! function, a real provider's worker) until a timeout ([`Pending::External`])? Behaviour rules override any
//! provider. The engine does the rest.
//!
//! A provider that does IO has a second half, a [`Worker`]: the step leaves the work in the pipeline's runtime
//! (for Lambda, the jobs and rule runs to invoke), the engine renders it into a [`Handoff`] in the write's outbox,
//! and the handoff reaches the worker's queue only once the write is saved. The worker does the work on its own
//! task, holding no lock, and reports what came of it back through a command
//! ([`crate::engine::commands::invocation::RecordInvocation`] for Lambda), like any other caller. After a restart
//! (or an import), the work that was handed out and not answered is handed out again (see [`lambda`]).
//!
//! | provider | start | worker |
//! |---|---|---|
//! | [`simulated`]: every built-in type without a real provider | `Pending::At`, on the emulator clock | none |
//! | approvals, custom and partner actions | `Pending::External` | people and job workers, through the API |
//! | [`lambda`]: `AWS/Invoke/Lambda` and LambdaInvoke rules, with a Lambda endpoint | `Pending::External` | [`lambda::invoker`] |
//! | [`artifacts`]: the outputs of simulated actions, S3 sources and deploys, with an S3 neighbour | `Pending::Storing` (with the action's timeout), then `Pending::At` | [`artifacts::ArtifactWriter`] |
//! | [`cloudformation`], [`ecs`]: CloudFormation and ECS deploys, ECR sources, with their neighbour and S3 | the same | the same writer |
//!
//! Outside the table, [`polling`] looks at the objects of polling S3 sources and starts their pipelines through the
//! engine's `PollSource` command.

pub mod artifacts;
pub mod builds;
pub mod cloudformation;
pub mod ecs;
pub mod git;
pub mod lambda;
pub mod neighbour;
pub mod polling;
pub mod s3_deploy;
pub mod simulated;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::state::Timestamp;
use crate::state::behaviors::{BehaviorOutcome, BehaviorRule};
use crate::state::declaration::{ActionCategory, ActionDeclaration, ActionOwner};
use crate::state::execution::{ConfigView, ErrorDetails, FailureType, Outcome, Pending, RevisionOverride};

pub use simulated::{DeployTarget, TargetEvent, deploy_targets, s3_etag, s3_version_id, simulate};

/// The credentials calls to a neighbour (an AWS emulator the user runs) are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never the secret or the token: a neighbour's credentials stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// The half of a provider that does IO: takes the work handed to it once the change that made the work is saved,
/// does it without holding any lock, and reports back through the engine's commands.
pub trait Worker: Send + Sync + 'static {
    /// One piece of work.
    type Work: Send + 'static;

    /// Does `work`; what came of it goes back to `engine` as a command.
    fn work(
        self: Arc<Self>,
        engine: Arc<crate::engine::Engine>,
        work: Self::Work,
    ) -> impl std::future::Future<Output = ()> + Send;
}

/// Work on its way to a worker: an effect in the outbox of the write that made it, released into the worker's
/// queue once that write is saved (never, if it is not).
pub struct Handoff<W: Worker> {
    queue: mpsc::UnboundedSender<W::Work>,
    work: Vec<W::Work>,
}

impl<W: Worker> Handoff<W> {
    /// `work` for the worker behind `queue`.
    pub fn new(queue: mpsc::UnboundedSender<W::Work>, work: Vec<W::Work>) -> Handoff<W> {
        Handoff { queue, work }
    }
}

impl<W: Worker> crate::state::outbox::Effect for Handoff<W>
where
    W::Work: Sync,
{
    fn release(self: Box<Self>) {
        for work in self.work {
            // The worker stops only with the engine; a send after that has nobody to deliver to.
            let _ = self.queue.send(work);
        }
    }
}

/// Runs `worker` on the work that reaches `queue`, each piece on its own task, until the queue closes. The tasks
/// belong to this one: when it is aborted (the engine stops), so are they, and what they hold goes with them (a
/// build's processes are killed).
pub async fn run_worker<W: Worker>(
    worker: Arc<W>,
    engine: Arc<crate::engine::Engine>,
    mut queue: mpsc::UnboundedReceiver<W::Work>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            work = queue.recv() => match work {
                Some(work) => {
                    tasks.spawn(Arc::clone(&worker).work(Arc::clone(&engine), work));
                }
                None => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// What a provider knows when an action starts.
pub struct ActionStart<'a> {
    pub action: &'a ActionDeclaration,
    /// The configuration after variable resolution.
    pub configuration: ConfigView<'a>,
    pub account: &'a str,
    pub region: &'a str,
    pub pipeline: &'a str,
    pub execution_id: &'a str,
    pub action_execution_id: &'a str,
    pub now: Timestamp,
    /// How long simulated work takes.
    pub duration_ms: i64,
    /// Source revision overrides of the execution.
    pub overrides: &'a [RevisionOverride],
    /// The first matching behaviour rule, if any.
    pub behavior: Option<&'a BehaviorRule>,
    /// Whether a job worker (a custom action's or a partner's) runs the action.
    pub job_worker: bool,
    /// Where simulated external ids come from.
    pub ids: &'a super::ids::Ids,
    /// The emulated world: what a source action picks up when the execution names no revision.
    pub sources: &'a crate::state::sources::Sources,
    /// Which actions act on neighbours.
    pub real: artifacts::Real,
}

/// The default approval timeout: 7 days.
const APPROVAL_TIMEOUT_MINUTES: i64 = 7 * 24 * 60;

/// How long an action may run before CodePipeline fails it (behaviour.md §7.2.8): held actions time out after it.
pub fn timeout_minutes(action: &ActionDeclaration) -> i64 {
    let id = &action.action_type_id;
    match (id.owner, id.category, id.provider.as_str()) {
        (ActionOwner::Custom, _, _) => 24 * 60,
        (_, ActionCategory::Approval, _) => action.timeout_in_minutes.map_or(APPROVAL_TIMEOUT_MINUTES, i64::from),
        (_, _, "CloudFormation" | "CloudFormationStackSet" | "CloudFormationStackInstances") => 3 * 24 * 60,
        (_, _, "CodeBuild" | "ECRBuildAndPublish") => 8 * 60,
        (_, _, "CodeDeploy" | "CodeDeployToECS") => 5 * 24 * 60,
        (_, ActionCategory::Invoke, "Lambda") => 20,
        (_, ActionCategory::Deploy, "S3") => 90,
        // The configured deployment timeout, at most the action's 60 minutes (real-actions.md §8.2).
        (_, ActionCategory::Deploy, "ECS") => action
            .configuration
            .as_ref()
            .and_then(|c| c.get("DeploymentTimeout"))
            .and_then(|t| t.trim().parse::<i64>().ok())
            .filter(|t| *t > 0)
            .map_or(60, |t| t.min(60)),
        (_, _, "StepFunctions") => 7 * 24 * 60,
        (_, ActionCategory::Compute, _) => 55,
        _ => 60,
    }
}

/// Simulated work that acts on a neighbour (or a build that runs) before it ends at `at` with `outcome`: it fails if
/// the work has not ended within the action's timeout. (A CodeBuild build that runs here ends itself at its project's
/// timeout, as a timed-out build.)
pub fn storing(
    action: &ActionDeclaration,
    real: artifacts::Real,
    now: Timestamp,
    at: Timestamp,
    outcome: Box<Outcome>,
) -> Pending {
    let id = &action.action_type_id;
    let build = real.builds && id.provider == "CodeBuild" && id.owner == ActionOwner::Aws;
    let (minutes, on_timeout) = if build {
        // The build itself ends at its project's timeout; this is the action's own limit, should its worker be lost.
        // AWS's wording for a timed-out build is UNCONFIRMED; the form is its failed builds'.
        let message = "Build terminated with state: TIMED_OUT. Phase: BUILD, Code: BUILD_TIMED_OUT, Message: Build has \
                       timed out.";
        (timeout_minutes(action), ErrorDetails { code: FailureType::JobFailed, message: message.into() })
    } else {
        (timeout_minutes(action), timed_out(action))
    };
    let timeout = now.plus_millis(minutes * 60_000);
    Pending::Storing { at, outcome, timeout: Some((timeout, Box::new(on_timeout))) }
}

/// An S3 source's object is not there, in AWS's words [real AWS session: the source action's state after a missing
/// object].
pub fn s3_object_missing(bucket: &str, key: &str) -> ErrorDetails {
    ErrorDetails {
        code: FailureType::ConfigurationError,
        message: format!(
            "Could not access the Amazon S3 object: \"{bucket}/{key}\". Make sure that the names of the bucket and \
             object are both correct."
        ),
    }
}

/// An S3 source's object the pipeline's role may not read, in AWS's words (modelled on a real session's
/// PermissionError; the exact text is UNCONFIRMED).
pub fn s3_object_denied(bucket: &str, key: &str) -> ErrorDetails {
    ErrorDetails {
        code: FailureType::PermissionError,
        message: format!(
            "Could not access the Amazon S3 object: \"{bucket}/{key}\". Make sure that the names of the bucket and \
             object are both correct, and that the pipeline IAM role has sufficient permissions to access this bucket."
        ),
    }
}

fn timed_out(action: &ActionDeclaration) -> ErrorDetails {
    if action.action_type_id.category == ActionCategory::Approval {
        ErrorDetails {
            code: FailureType::JobFailed,
            message: "The approval action timed out before it was approved.".into(),
        }
    } else {
        ErrorDetails {
            code: FailureType::JobFailed,
            message: format!("The action timed out after {} minutes without a result.", timeout_minutes(action)),
        }
    }
}

/// Decides how a starting action will end.
pub fn start(ctx: &ActionStart) -> Pending {
    let timeout = Some(ctx.now.plus_millis(timeout_minutes(ctx.action).saturating_mul(60_000)));
    if let Some(rule) = ctx.behavior {
        let at = rule.due(ctx.now, ctx.duration_ms);
        return match rule.outcome {
            BehaviorOutcome::Hold => Pending::External { timeout, on_timeout: Box::new(timed_out(ctx.action)) },
            BehaviorOutcome::Fail => {
                Pending::At(at, Box::new(Outcome::Fail(rule.failure("The action failed (emulator behaviour rule)."))))
            }
            BehaviorOutcome::Succeed => {
                let mut success = simulate(ctx);
                if let Some(summary) = &rule.summary {
                    success.summary = Some(summary.clone());
                }
                if let Some(variables) = &rule.output_variables {
                    success.output_variables.extend(variables.clone());
                }
                Pending::At(at, Box::new(Outcome::Succeed(success)))
            }
        };
    }
    // An S3 deploy's configuration is checked when it runs [NATIVE, issue 28].
    let id = &ctx.action.action_type_id;
    if id.category == ActionCategory::Deploy && id.owner == ActionOwner::Aws && id.provider == "S3" {
        let extract = ctx.configuration.get("Extract").unwrap_or_default();
        if let Err(error) = s3_deploy::check(extract, ctx.configuration.get("ObjectKey")) {
            return Pending::At(ctx.now.plus_millis(ctx.duration_ms), Box::new(Outcome::Fail(error)));
        }
    }
    // An S3 source whose object the emulated world says is not there fails, unless the execution names a version.
    if let Some((bucket, key)) = simulated::missing_s3_object(ctx) {
        return Pending::At(
            ctx.now.plus_millis(ctx.duration_ms),
            Box::new(Outcome::Fail(s3_object_missing(&bucket, &key))),
        );
    }
    // Approvals wait for an answer; custom and partner actions wait for a job worker.
    if ctx.action.action_type_id.category == ActionCategory::Approval || ctx.job_worker {
        return Pending::External { timeout, on_timeout: Box::new(timed_out(ctx.action)) };
    }
    Pending::At(ctx.now.plus_millis(ctx.duration_ms), Box::new(Outcome::Succeed(simulate(ctx))))
}
