//! The execution engine: the background scheduler that moves pipeline executions through stages and actions, and
//! the action providers it drives.
//!
//! The engine owns its [`Store`] handle. Operations, control endpoints and triggers change a running pipeline only
//! through [`Engine::apply`] with one of the [`commands`] (each with its own output and refusal types), and hand out
//! jobs through [`Engine::poll_jobs`]. Under the partition lock the engine carries the command out through the pure
//! steps, runs [`step::advance`], leaves what the change sends out (events, notifications, Lambda invocations) in
//! the write's outbox, to leave once the write is saved (`crate::state::outbox`), and schedules one timer for the
//! pipeline's next due event; timers and Lambda answers pass through the same internal function. The background
//! task ([`Engine::run`]) sleeps until the earliest timer (or until woken because an earlier one was added, or the
//! clock was advanced), advances the pipelines that are due, and stops when the server stops. There is no periodic
//! scan.

pub mod commands;
pub mod conditions;
pub mod delivery;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod notifications;
pub mod outbound;
pub mod providers;
pub mod rules;
pub mod step;
pub mod time_zone;
pub mod variables;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use self::commands::{Command, PipelineNotFound};
use self::providers::artifacts::ArtifactWriter;
use self::providers::lambda::invoker::{Invoker, LambdaSettings};
use self::providers::lambda::{self, Invocation};
use self::step::StepEnv;
use crate::state::behaviors::{BehaviorRule, for_rule};
use crate::state::catalogue::Catalogue;
use crate::state::sources::Sources;
use crate::state::{PipelineRecord, Scope, Timestamp};
use crate::store::Store;

/// The right to change a running pipeline's runtime ([`crate::state::Runtime::write`]). Only the engine can make
/// one, so nothing outside it changes executions, runs or jobs.
#[derive(Debug)]
pub struct Writer(());

/// The engine's writer.
const WRITER: Writer = Writer(());

/// Write access to a pipeline's runtime, for the engine's own modules.
trait Write {
    fn w(&mut self) -> &mut crate::state::execution::PipelineRuntime;
}

impl Write for crate::state::Runtime {
    fn w(&mut self) -> &mut crate::state::execution::PipelineRuntime {
        self.write(&WRITER)
    }
}

/// One scheduled wake-up of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    due: Timestamp,
    scope: Scope,
    pipeline: String,
}

/// Where a change happens: the pipeline, what its sources read, and the outbox of the write it is part of.
struct At<'a> {
    scope: &'a Scope,
    pipeline: &'a str,
    sources: &'a Sources,
    outbox: &'a mut crate::state::outbox::Outbox,
    now: Timestamp,
}

/// The events and approval notifications of one change of a running pipeline, sent out once it is saved.
struct Outgoing {
    events: Arc<events::EventHub>,
    rendered: events::Rendered,
}

impl crate::state::outbox::Effect for Outgoing {
    fn events(&self) -> u64 {
        self.rendered.events.len() as u64
    }

    fn release(self: Box<Self>) {
        self.events.release(self.rendered);
    }
}

/// How the engine runs actions and where its effects go.
#[derive(Debug)]
pub struct Settings {
    /// How long a simulated action takes.
    pub duration_ms: u64,
    /// The behaviour rules that steer simulated actions.
    pub behaviors: Vec<BehaviorRule>,
    pub catalogue: Arc<Catalogue>,
    /// Where Lambda invoke actions call real functions, if anywhere.
    pub lambda: Option<LambdaSettings>,
    /// How many events the history keeps.
    pub event_history: usize,
    /// Where events are delivered, if anywhere.
    pub eventbridge: Option<delivery::EventBridgeSettings>,
    /// Where approval notifications are published, if anywhere.
    pub sns: Option<notifications::SnsSettings>,
    /// How many executions each pipeline keeps (see [`crate::state::execution::PipelineRuntime::retain_executions`]).
    pub max_executions: usize,
    /// Where output artifacts are written, with an S3 neighbour (and the region its calls are signed for).
    pub artifacts: Option<(providers::artifacts::ArtifactSettings, String)>,
}

/// The scheduler and the settings of simulated actions.
#[derive(Debug)]
pub struct Engine {
    /// The state of every pipeline: the engine changes it, and only through its commands.
    store: Arc<Store>,
    /// Pending wake-ups, earliest first. Taken after a partition lock, never before one.
    timers: Mutex<BinaryHeap<Reverse<Timer>>>,
    wake: Notify,
    behaviors: RwLock<Vec<BehaviorRule>>,
    duration_ms: i64,
    /// How many executions each pipeline keeps.
    max_executions: usize,
    /// What job data hands out as `artifactCredentials`.
    artifact_credentials: jobs::ArtifactCredentials,
    catalogue: Arc<Catalogue>,
    /// Where Lambda invoke actions call real functions, if anywhere.
    lambda: Option<LambdaSettings>,
    /// The Lambda provider's worker queue, and its end of the queue until [`Engine::run`] takes it.
    invocations: mpsc::UnboundedSender<Invocation>,
    invoker: Mutex<Option<mpsc::UnboundedReceiver<Invocation>>>,
    /// Where output artifacts are written, if anywhere; the artifact writer's queue and its end of it.
    artifacts: Option<(providers::artifacts::ArtifactSettings, String)>,
    artifact_work: mpsc::UnboundedSender<providers::artifacts::ArtifactWork>,
    artifact_writer: Mutex<Option<mpsc::UnboundedReceiver<providers::artifacts::ArtifactWork>>>,
    /// The writer itself (with an S3 neighbour), also read through for artifact downloads.
    writer: Option<Arc<ArtifactWriter>>,
    /// Where new ids come from.
    ids: ids::Ids,
    /// Where the events of state changes are published (shared with the effects waiting in outboxes).
    events: Arc<events::EventHub>,
    /// Where events are delivered, and the delivery task's end of the queue until [`Engine::run`] takes it.
    eventbridge: Option<delivery::EventBridgeSettings>,
    delivery: Mutex<Option<mpsc::Receiver<Arc<events::Published>>>>,
    /// Where approval notifications are published, and the publishing task's end of the queue.
    sns: Option<notifications::SnsSettings>,
    notifications: Mutex<Option<mpsc::Receiver<notifications::Notification>>>,
}

impl Engine {
    /// An engine over `store` whose actions are simulated and steered as `settings` say; its events are numbered
    /// with the store's sequence (saved and restored with the state).
    pub fn new(store: Arc<Store>, settings: Settings) -> Engine {
        let Settings {
            duration_ms,
            behaviors,
            catalogue,
            lambda,
            event_history,
            eventbridge,
            sns,
            max_executions,
            artifacts,
        } = settings;
        // Job data hands out the S3 neighbour's credentials, when there is one.
        let artifact_credentials = artifacts
            .as_ref()
            .map_or_else(jobs::ArtifactCredentials::default, |(s, _)| jobs::ArtifactCredentials::of(&s.credentials));
        let (invocations, invoker) = mpsc::unbounded_channel();
        let (artifact_work, artifact_writer) = mpsc::unbounded_channel();
        let writer = artifacts.as_ref().map(|(settings, region)| Arc::new(ArtifactWriter::new(settings, region)));
        let mut hub = events::EventHub::new(event_history);
        hub.number_with(store.event_sequence());
        let (events, delivery) = match eventbridge {
            Some(_) => {
                let (hub, queue) = hub.delivering();
                (hub, Some(queue))
            }
            None => (hub, None),
        };
        let (events, notifications) = match sns {
            Some(_) => {
                let (hub, queue) = events.notifying();
                (hub, Some(queue))
            }
            None => (events, None),
        };
        Engine {
            store,
            lambda,
            invocations,
            invoker: Mutex::new(Some(invoker)),
            artifacts,
            artifact_work,
            artifact_writer: Mutex::new(Some(artifact_writer)),
            writer,
            timers: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            behaviors: RwLock::new(behaviors),
            duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
            max_executions,
            artifact_credentials,
            catalogue,
            ids: ids::Ids::random(),
            events: Arc::new(events),
            eventbridge,
            delivery: Mutex::new(delivery),
            sns,
            notifications: Mutex::new(notifications),
        }
    }

    /// The state the engine changes.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What job data hands out as `artifactCredentials`.
    pub fn artifact_credentials(&self) -> &jobs::ArtifactCredentials {
        &self.artifact_credentials
    }

    /// The log of the build an action run ran (or runs), if it is kept.
    pub fn build_log(&self, run: uuid::Uuid) -> Option<(String, providers::builds::log::BuildLog)> {
        self.writer.as_ref()?.build_log(run)
    }

    /// An object of the S3 neighbour, whole (`None` without one): the dashboard's artifact downloads.
    pub async fn download(&self, bucket: &str, key: &str) -> Option<Result<Vec<u8>, String>> {
        let writer = self.writer.as_ref()?;
        Some(writer.read_artifact(key, bucket, key).await.map_err(|e| e.message))
    }

    /// Whether CodeBuild and `Commands` actions run their commands here.
    pub fn runs_builds(&self) -> bool {
        self.artifacts.as_ref().is_some_and(|(settings, _)| settings.run_builds)
    }

    /// Whether output artifacts are real objects in an S3 neighbour.
    pub fn real_artifacts(&self) -> bool {
        self.artifacts.is_some()
    }

    /// Whether S3 source actions that poll really poll an S3 neighbour (then a new polling pipeline's first
    /// execution comes from polling, not from CreatePipeline).
    pub fn polls_s3(&self) -> bool {
        self.artifacts.as_ref().is_some_and(|(settings, _)| settings.local.is_none())
    }

    /// Whether an action run still waits for its real work (`Pending::Storing`): a worker waiting on a neighbour's
    /// long operation stops waiting once the run was stopped, timed out or its pipeline deleted.
    pub fn is_storing(&self, scope: &Scope, pipeline: &str, execution_id: uuid::Uuid, run_id: uuid::Uuid) -> bool {
        self.store.read(scope, |data| {
            let Some(record) = data.pipelines.get(pipeline) else { return false };
            let Some(&index) = record.runtime.index.get(&execution_id) else { return false };
            record.runtime.executions.get(index.index()).is_some_and(|execution| {
                execution.actions.iter().any(|run| {
                    run.id == run_id
                        && run.status == crate::state::execution::ActionStatus::InProgress
                        && matches!(run.pending.as_deref(), Some(crate::state::execution::Pending::Storing { .. }))
                })
            })
        })
    }

    /// The events of state changes: their history and live subscribers.
    pub fn events(&self) -> &events::EventHub {
        &self.events
    }

    /// The behaviour rules in force.
    pub fn behaviors(&self) -> Vec<BehaviorRule> {
        self.behaviors.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the behaviour rules; actions that start from now on follow them.
    pub fn set_behaviors(&self, rules: Vec<BehaviorRule>) {
        *self.behaviors.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }

    /// The one way to change a running pipeline: under the partition lock, carries out `command` on the pipeline
    /// named `pipeline`, advances it and schedules its next wake-up. What the command answers, or why it was refused
    /// (then nothing changed); [`Unavailable`](crate::store::Unavailable) if the change could not be saved (then it
    /// was not made either).
    pub fn apply<C: Command>(
        &self,
        scope: &Scope,
        pipeline: &str,
        command: C,
    ) -> Result<Result<C::Output, C::Refusal>, crate::store::Unavailable> {
        let now = self.store.clock().now();
        self.store.write(scope, |data| self.apply_within(data, scope, pipeline, command, now))
    }

    /// [`Engine::apply`] inside a write that changes more than the pipeline's runtime (call it in the closure of
    /// [`Store::write`], under the partition lock), so that the whole change is saved, or none of it.
    pub fn apply_within<C: Command>(
        &self,
        data: &mut crate::state::PartitionData,
        scope: &Scope,
        pipeline: &str,
        command: C,
        now: Timestamp,
    ) -> Result<C::Output, C::Refusal> {
        self.change_in(data, scope, pipeline, now, |record, env| command.execute(record, env, now))
            .unwrap_or_else(|| Err(PipelineNotFound.into()))
    }

    /// Where the engine's ids come from (also for the ids of source changes made outside it).
    pub fn ids(&self) -> &ids::Ids {
        &self.ids
    }

    /// Hands out up to `max` jobs of action type `id` that `select` accepts (oldest first, each with a fresh nonce,
    /// invisible to other polls for a while), and describes each with `describe` under the same lock.
    pub fn poll_jobs<T>(
        &self,
        scope: &Scope,
        id: &crate::state::declaration::ActionTypeId,
        max: usize,
        select: impl Fn(&crate::state::declaration::ActionDeclaration, &crate::state::execution::ActionRun) -> bool,
        mut describe: impl FnMut(&crate::state::PartitionData, &str, uuid::Uuid, String) -> Option<T>,
    ) -> Result<Vec<T>, crate::store::Unavailable> {
        let now = self.store.clock().now();
        self.store.write(scope, |data| {
            let chosen = jobs::available(data, id, now, max, select);
            let handed = jobs::dispatch(data, chosen, &self.ids, now);
            handed.into_iter().filter_map(|(pipeline, job, nonce)| describe(data, &pipeline, job, nonce)).collect()
        })
    }

    /// Advances the pipeline of `data` named `pipeline`, if it is still there, after a change (call it under the
    /// partition lock) and schedules its next wake-up.
    fn advance(&self, data: &mut crate::state::PartitionData, scope: &Scope, pipeline: &str, now: Timestamp) {
        self.change_in(data, scope, pipeline, now, |_, _| ());
    }

    /// [`Engine::change`] of the pipeline of `data` named `pipeline`; `None` if there is no such pipeline.
    fn change_in<T>(
        &self,
        data: &mut crate::state::PartitionData,
        scope: &Scope,
        pipeline: &str,
        now: Timestamp,
        change: impl FnOnce(&mut PipelineRecord, &StepEnv) -> T,
    ) -> Option<T> {
        let record = data.pipelines.get_mut(pipeline)?;
        let mut at = At { scope, pipeline, sources: &data.sources, outbox: &mut data.outbox, now };
        Some(self.change(&mut at, record, change))
    }

    /// The one internal function through which every state change of a running pipeline passes (commands, timers,
    /// Lambda answers): applies `change` (it gets the step environment), advances the pipeline, leaves what the
    /// change sends out (its events and notifications, the Lambda invocations it made) in the write's outbox, to
    /// leave once the write is saved, and schedules the next wake-up. Call it under the partition lock.
    fn change<T>(
        &self,
        at: &mut At<'_>,
        record: &mut PipelineRecord,
        change: impl FnOnce(&mut PipelineRecord, &StepEnv) -> T,
    ) -> T {
        let rules = self.behaviors.read().unwrap_or_else(|p| p.into_inner());
        let env = self.env(at, &rules);
        let result = change(record, &env);
        self.settle(at, record, &env);
        result
    }

    /// The step environment of a change at `at`.
    fn env<'a>(&'a self, at: &At<'a>, rules: &'a [BehaviorRule]) -> StepEnv<'a> {
        StepEnv {
            scope: at.scope,
            catalogue: &self.catalogue,
            pipeline: at.pipeline,
            behaviors: rules,
            duration_ms: self.duration_ms,
            max_executions: self.max_executions,
            lambda: self.lambda.is_some(),
            real: providers::artifacts::Real::of(self.artifacts.as_ref().map(|(settings, _)| settings)),
            ids: &self.ids,
            sources: at.sources,
        }
    }

    /// What follows every change (the part of [`Engine::change`] that does not depend on the change, kept out of
    /// its instances for each command): advances the pipeline, leaves its effects in the outbox, schedules its
    /// next wake-up.
    #[inline(never)]
    fn settle(&self, at: &mut At<'_>, record: &mut PipelineRecord, env: &StepEnv) {
        let (scope, pipeline, sources) = (at.scope, at.pipeline, at.sources);
        let next = step::advance(record, env, at.now);
        if !record.runtime.changes.is_empty() {
            let changes = step::take_changes(record);
            let rendered = self.events.render_changes(scope, pipeline, record, sources, changes, &self.ids);
            if !rendered.is_empty() {
                at.outbox.push(Outgoing { events: Arc::clone(&self.events), rendered });
            }
        }
        if !record.runtime.undelivered.is_empty() || !record.runtime.undelivered_rules.is_empty() {
            let invocations = lambda::take_invocations(scope, pipeline, record, &self.artifact_credentials, at.now);
            at.outbox.push(providers::Handoff::<Invoker>::new(self.invocations.clone(), invocations));
        }
        if !record.runtime.undelivered_artifacts.is_empty() {
            let repos = self.artifacts.as_ref().map(|(settings, _)| &settings.git_repos);
            let work = providers::artifacts::take_work(scope, pipeline, record, env.real, repos.unwrap_or(&NO_REPOS));
            at.outbox.push(providers::Handoff::<ArtifactWriter>::new(self.artifact_work.clone(), work));
        }
        if let Some(due) = next {
            self.schedule(scope, pipeline, record, due);
        }
    }

    fn schedule(&self, scope: &Scope, pipeline: &str, record: &mut PipelineRecord, due: Timestamp) {
        // One pending timer per pipeline and due event: an earlier or equal wake-up already covers this one.
        if record.runtime.wake.is_some_and(|w| w <= due) {
            return;
        }
        record.runtime.w().wake = Some(due);
        let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = timers.peek().is_none_or(|Reverse(t)| due < t.due);
        timers.push(Reverse(Timer { due, scope: scope.clone(), pipeline: pipeline.to_string() }));
        drop(timers);
        if earliest {
            self.wake.notify_one();
        }
    }

    /// Picks up the pipelines of state loaded at start or imported, as [`Engine::resume`] does; and the work that was
    /// handed to a provider's worker and not answered is handed to it again (see [`providers`]: Lambda functions
    /// are invoked again for the jobs and LambdaInvoke rules still waiting for them).
    pub fn resume_after_restart(&self) {
        self.resume_with(true);
    }

    /// Picks up the pipelines of reloaded state: every pipeline with a running execution is advanced (what fell due
    /// meanwhile happens now) and gets its next wake-up.
    pub fn resume(&self) {
        self.resume_with(false);
    }

    fn resume_with(&self, redeliver: bool) {
        let store = &self.store;
        let now = store.clock().now();
        for scope in store.scopes() {
            let resumed = store.write(&scope, |data| {
                let running: Vec<String> = data
                    .pipelines
                    .iter()
                    .filter(|(_, r)| !r.runtime.active.is_empty())
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in running {
                    if let Some(record) = data.pipelines.get_mut(&name) {
                        record.runtime.w().wake = None;
                        if redeliver && self.lambda.is_some() {
                            let rules = self.behaviors.read().unwrap_or_else(|p| p.into_inner());
                            let invokes =
                                |stage: &str, rule: &str| for_rule(&rules, &scope, &name, stage, rule).is_none();
                            lambda::redeliver(record, invokes);
                        }
                        // Runs still storing their outputs (after a restart, or a failed save that may have
                        // dropped their handoff) are handed to the writer again; a write is idempotent.
                        if let Some((settings, _)) = &self.artifacts {
                            let real = providers::artifacts::Real::of(Some(settings));
                            for (execution, run) in providers::artifacts::redeliver(record, real, redeliver) {
                                let lost = crate::state::execution::ErrorDetails {
                                    code: crate::state::execution::FailureType::JobFailed,
                                    message: "Build terminated with state: FAILED. Phase: BUILD, Code: CLIENT_ERROR, \
                                              Message: the build was running when codepipeline-local stopped, and a \
                                              build cannot resume; retry the stage or start the pipeline again"
                                        .into(),
                                };
                                let outcome = crate::state::execution::Outcome::Fail(lost);
                                step::finish_action(record, execution, run, outcome, now, step::FinishedBy::Simulation);
                            }
                        }
                    }
                    self.advance(data, &scope, &name, now);
                }
            });
            if let Err(unavailable) = resumed {
                tracing::error!(region = %scope.region, "resuming pipelines was not saved: {unavailable}");
            }
        }
        self.wake.notify_one();
    }

    /// Wakes the scheduler to re-read the clock (after the clock was advanced).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Drops the pending wake-ups of the accounts and regions `selected` picks (their state was reset).
    pub fn cancel_timers(&self, selected: impl Fn(&Scope) -> bool) {
        self.timers.lock().unwrap_or_else(|p| p.into_inner()).retain(|Reverse(t)| !selected(&t.scope));
    }

    /// How many wake-ups are pending.
    pub fn pending_timers(&self) -> usize {
        self.timers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn pop_due(&self, now: Timestamp) -> Vec<Timer> {
        let mut timers = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        while timers.peek().is_some_and(|Reverse(t)| t.due <= now) {
            if let Some(Reverse(timer)) = timers.pop() {
                due.push(timer);
            }
        }
        due
    }

    fn next_due(&self) -> Option<Timestamp> {
        self.timers.lock().unwrap_or_else(|p| p.into_inner()).peek().map(|Reverse(t)| t.due)
    }

    /// Fires one due timer. A failure in one pipeline is logged and does not stop the others.
    fn fire(&self, timer: &Timer, now: Timestamp) {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.store.write(&timer.scope, |data| {
                // A pipeline deleted since the timer was set is simply gone.
                if let Some(record) = data.pipelines.get_mut(&timer.pipeline)
                    && record.runtime.wake.is_some_and(|w| w <= now)
                {
                    record.runtime.w().wake = None;
                }
                self.advance(data, &timer.scope, &timer.pipeline, now);
            })
        }));
        match outcome {
            Ok(Ok(())) => {}
            // Not saved, so not made: try again a little later, when the disk may have room.
            Ok(Err(unavailable)) => {
                tracing::warn!(pipeline = %timer.pipeline, "advancing a pipeline was not saved: {unavailable}");
                let retry = Timer { due: now.plus_millis(1_000), ..timer.clone() };
                self.timers.lock().unwrap_or_else(|p| p.into_inner()).push(Reverse(retry));
            }
            Err(_) => {
                tracing::error!(pipeline = %timer.pipeline, region = %timer.scope.region, "advancing a pipeline failed")
            }
        }
    }

    /// Advances every pipeline that is due now, before returning (used after the clock is advanced, so callers see
    /// the effects at once rather than on the scheduler's next turn).
    pub fn run_due(&self) {
        let now = self.store.clock().now();
        for timer in self.pop_due(now) {
            self.fire(&timer, now);
        }
    }

    /// The scheduler loop: runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let store = Arc::clone(&self.store);
        let receiver = self.invoker.lock().unwrap_or_else(|p| p.into_inner()).take();
        let invoker = match (self.lambda.clone(), receiver) {
            (Some(settings), Some(receiver)) => {
                let worker = Arc::new(Invoker::new(settings));
                Some(tokio::spawn(providers::run_worker(worker, Arc::clone(&self), receiver)))
            }
            _ => None,
        };
        let receiver = self.artifact_writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (writer, poller) = match (&self.artifacts, &self.writer, receiver) {
            (Some((settings, _)), Some(worker), Some(receiver)) => {
                let worker = Arc::clone(worker);
                // Polling S3 sources needs an S3 neighbour.
                let poller = settings.local.is_none().then(|| {
                    let poll = providers::polling::run(
                        Arc::clone(&self),
                        worker.s3_client(),
                        settings.poll_interval,
                        shutdown.clone(),
                    );
                    tokio::spawn(poll)
                });
                (Some(tokio::spawn(providers::run_worker(worker, Arc::clone(&self), receiver))), poller)
            }
            _ => (None, None),
        };
        let queue = self.delivery.lock().unwrap_or_else(|p| p.into_inner()).take();
        let delivery = match (self.eventbridge.clone(), queue, self.events.delivery_stats()) {
            (Some(settings), Some(queue), Some(stats)) => {
                Some(tokio::spawn(delivery::run(settings, Arc::clone(stats), queue)))
            }
            _ => None,
        };
        let queue = self.notifications.lock().unwrap_or_else(|p| p.into_inner()).take();
        let notifier = match (self.sns.clone(), queue, self.events.notification_stats()) {
            (Some(settings), Some(queue), Some(stats)) => {
                Some(tokio::spawn(notifications::run(settings, Arc::clone(stats), queue)))
            }
            _ => None,
        };
        let mut save_failures = store.save_failures();
        // After a failed save (a full disk), the engine's own writes pause: they would fail the same way, each one
        // undoing what timers did, hundreds of times a second. It picks the pipelines up again after a pause that
        // doubles while saves keep failing (1 s, 2 s, 4 s, ... 30 s) and starts over at 1 s once they have worked
        // for a while. Requests still try, and are answered 503 while the disk is full.
        let mut backoff = Backoff::default();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = tokio::time::Instant::now();
            if backoff.resume_at.is_some_and(|at| at <= now) {
                backoff.resume_at = None;
                self.resume();
            }
            let wait = if backoff.resume_at.is_some() {
                // Paused: no timer runs until the pause ends.
                Duration::from_secs(3600)
            } else {
                self.run_due();
                match self.next_due() {
                    Some(due) => {
                        Duration::from_millis(u64::try_from(due.millis() - store.clock().now().millis()).unwrap_or(0))
                    }
                    // Nothing scheduled: sleep until woken.
                    None => Duration::from_secs(3600),
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                _ = shutdown.changed() => {}
                () = retry(backoff.resume_at) => {}
                // A failed save reloaded partitions from disk, undoing changes timers had made: pick them up anew.
                () = changed(&mut save_failures) => backoff.failed(tokio::time::Instant::now()),
            }
        }
        for worker in [invoker, writer, poller].into_iter().flatten() {
            worker.abort();
        }
        for task in [delivery, notifier].into_iter().flatten() {
            task.abort();
        }
        tracing::debug!("scheduler stopped");
    }
}

/// No local git repositories.
static NO_REPOS: providers::artifacts::GitRepos = providers::artifacts::GitRepos::new();

/// When the engine picks pipelines up again after failed saves.
#[derive(Debug, Default)]
struct Backoff {
    /// The pause after the latest failure.
    pause: Duration,
    /// When the latest failure was seen.
    last_failure: Option<tokio::time::Instant>,
    /// When the current pause ends, if the engine is paused.
    resume_at: Option<tokio::time::Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MOST: Duration = Duration::from_secs(30);

    /// A save failed at `now`: pause, twice as long as last time if the last failure was recent.
    fn failed(&mut self, now: tokio::time::Instant) {
        let recent = self.last_failure.is_some_and(|last| now.duration_since(last) < self.pause * 3);
        self.pause = if recent { (self.pause * 2).min(Self::MOST) } else { Self::FIRST };
        self.last_failure = Some(now);
        self.resume_at = Some(now + self.pause);
    }
}

/// Completes when `receiver` sees a change; never without one.
async fn changed(receiver: &mut Option<watch::Receiver<u64>>) {
    let Some(receiver) = receiver else { return std::future::pending().await };
    if receiver.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Completes at `at`; never without it.
async fn retry(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
