//! The EventBridge events AWS emits for pipeline, stage and action state changes (integrations.md §1).
//!
//! The step records each state change it makes ([`StateChange`]) in the pipeline's runtime; at the end of every
//! change, the engine's one writer renders them here, in the order they happened, and publishes them to the
//! [`EventHub`]: a bounded history (read by `GET /_emulator/events`) and a broadcast to live subscribers.
//!
//! The envelope and detail follow AWS's: `version` "0", a fresh `id`, the three `detail-type`s, `source`
//! `aws.codepipeline`, the account and region, `time` at second precision on the emulator clock, the pipeline ARN as
//! the one resource; in the detail the pipeline version and attempt as `N.0` numbers, `start-time` with
//! milliseconds, the execution trigger on a pipeline's `STARTED`, the action's type, region, artifacts and result.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use chrono::{SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::state::declaration::{ActionCategory, ActionOwner};
use crate::state::execution::{
    ActionStatus, ArtifactInstance, Entity, EventState, Execution, RevisionType, StateChange, TriggerType,
};
use crate::state::sources::{RepositoryKind, Sources};
use crate::state::{PipelineRecord, Scope, Timestamp};

/// The three detail types.
pub const PIPELINE: &str = "CodePipeline Pipeline Execution State Change";
pub const STAGE: &str = "CodePipeline Stage Execution State Change";
pub const ACTION: &str = "CodePipeline Action Execution State Change";

/// An event as published: its sequence number, what filters select it by, and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Increasing across the server; `after` and `Last-Event-ID` name it.
    pub seq: u64,
    pub account: String,
    pub region: String,
    pub pipeline: String,
    pub execution_id: String,
    pub detail_type: &'static str,
    /// The EventBridge event, as JSON text (rendered once; history and subscribers share it).
    pub event: Box<str>,
}

/// Where published events go: a bounded history and live subscribers.
#[derive(Debug)]
pub struct EventHub {
    history: Mutex<VecDeque<Arc<Published>>>,
    /// The first sequence number from which the history holds every event released (changed under the history's
    /// lock): the numbering's start at first, then the oldest kept event once older ones were let go. A reader
    /// resuming from before it has missed events nobody can give it any more.
    horizon: AtomicU64,
    capacity: usize,
    /// The next sequence number; shared with the store, which saves it with the state.
    next: Arc<AtomicU64>,
    /// Live subscribers; the channel (and its buffer) is made by the first subscription.
    live: std::sync::OnceLock<broadcast::Sender<Arc<Published>>>,
    /// The queue to the EventBridge delivery task, when an endpoint is configured.
    outbox: Option<tokio::sync::mpsc::Sender<Arc<Published>>>,
    stats: Arc<super::delivery::DeliveryStats>,
    /// The queue to the SNS publishing task, when an endpoint is configured.
    notifier: Option<tokio::sync::mpsc::Sender<super::notifications::Notification>>,
    notified: Arc<super::delivery::DeliveryStats>,
}

impl EventHub {
    /// How many events a live subscriber may fall behind before it is dropped.
    pub const SUBSCRIBER_BACKLOG: usize = 4096;

    /// A hub keeping the latest `capacity` events.
    pub fn new(capacity: usize) -> EventHub {
        EventHub {
            history: Mutex::new(VecDeque::new()),
            horizon: AtomicU64::new(1),
            capacity,
            next: Arc::new(AtomicU64::new(1)),
            live: std::sync::OnceLock::new(),
            outbox: None,
            stats: Arc::default(),
            notifier: None,
            notified: Arc::default(),
        }
    }

    /// The hub, also handing approval notifications to an SNS publishing task; returns the task's end of the queue.
    pub fn notifying(mut self) -> (EventHub, tokio::sync::mpsc::Receiver<super::notifications::Notification>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(super::notifications::QUEUE);
        self.notifier = Some(sender);
        (self, receiver)
    }

    /// What came of approval notifications, when an SNS endpoint is configured.
    pub fn notification_stats(&self) -> Option<&Arc<super::delivery::DeliveryStats>> {
        self.notifier.as_ref().map(|_| &self.notified)
    }

    /// The hub, also handing every event to an EventBridge delivery task; returns the task's end of the queue.
    pub fn delivering(mut self) -> (EventHub, tokio::sync::mpsc::Receiver<Arc<Published>>) {
        let (sender, receiver) = tokio::sync::mpsc::channel(super::delivery::QUEUE);
        self.outbox = Some(sender);
        (self, receiver)
    }

    /// What came of deliveries to EventBridge, when an endpoint is configured.
    pub fn delivery_stats(&self) -> Option<&Arc<super::delivery::DeliveryStats>> {
        self.outbox.as_ref().map(|_| &self.stats)
    }

    fn publish(&self, mut event: Published) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        // Numbered under the history's lock, so the history is in sequence order.
        event.seq = self.next.fetch_add(1, Ordering::Relaxed);
        let event = Arc::new(event);
        if self.capacity > 0 {
            history.push_back(Arc::clone(&event));
            if history.len() > self.capacity {
                while history.len() > self.capacity {
                    history.pop_front();
                }
                let oldest = history.front().map_or(event.seq, |e| e.seq);
                self.horizon.store(oldest, Ordering::Relaxed);
            }
        } else {
            self.horizon.store(event.seq + 1, Ordering::Relaxed);
        }
        if let Some(outbox) = &self.outbox
            && outbox.try_send(Arc::clone(&event)).is_err()
        {
            // Never wait for delivery: a full queue (or a stopped task) loses the event, counted.
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() {
                tracing::warn!(dropped = dropped + 1, "the EventBridge delivery queue is full; events are dropped");
            }
        }
        // Nobody listening is fine.
        if let Some(live) = self.live.get() {
            let _ = live.send(event);
        }
    }

    /// The kept events that `keep` selects, oldest first.
    pub fn history(&self, keep: impl Fn(&Published) -> bool) -> Vec<Arc<Published>> {
        self.since(0, keep).0
    }

    /// The kept events after sequence number `after` that `keep` selects, oldest first, and whether events after
    /// `after` were let go: then the first number the history is whole from (see the `horizon` field).
    pub fn since(&self, after: u64, keep: impl Fn(&Published) -> bool) -> (Vec<Arc<Published>>, Option<u64>) {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let horizon = self.horizon.load(Ordering::Relaxed);
        let events = history.iter().filter(|e| e.seq > after && keep(e)).cloned().collect();
        (events, (after.saturating_add(1) < horizon).then_some(horizon))
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.live.get_or_init(|| broadcast::channel(Self::SUBSCRIBER_BACKLOG).0).subscribe()
    }

    /// Numbers events from now on with `sequence` (the store's counter, so the numbering survives restarts).
    pub fn number_with(&mut self, sequence: Arc<AtomicU64>) {
        // Numbers below the saved one were released before a restart, and their events are not kept.
        self.horizon.store(sequence.load(Ordering::Acquire), Ordering::Relaxed);
        self.next = sequence;
    }

    /// Drops the history (the sequence goes on).
    pub fn clear(&self) {
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.clear();
        self.horizon.store(self.next.load(Ordering::Acquire), Ordering::Relaxed);
    }

    /// Renders the state changes a pipeline recorded, in order, as they read now (call it under the partition
    /// lock): the events, and the approval notifications to send. They leave through [`EventHub::release`] once the
    /// change is saved.
    pub fn render_changes(
        &self,
        scope: &Scope,
        pipeline: &str,
        record: &PipelineRecord,
        sources: &Sources,
        changes: Vec<StateChange>,
        ids: &super::ids::Ids,
    ) -> Rendered {
        let mut rendered = Rendered::default();
        for change in changes {
            if let Some(event) = render(scope, pipeline, record, sources, &change, ids) {
                rendered.events.push(event);
            }
            if self.notifier.is_some()
                && let (Entity::Action(run), EventState::Started) = (change.entity, change.state)
                && let Some(notification) =
                    approval_notification(scope, pipeline, record, change.execution, run, change.at)
            {
                rendered.notifications.push(notification);
            }
        }
        rendered
    }

    /// Publishes rendered events (numbering them) and hands their notifications to the SNS task: the change they
    /// describe is saved.
    pub fn release(&self, rendered: Rendered) {
        for event in rendered.events {
            self.publish(event);
        }
        if let Some(notifier) = &self.notifier {
            for notification in rendered.notifications {
                if notifier.try_send(notification).is_err() {
                    self.notified.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Events and notifications rendered under the partition lock, waiting for their change to be saved.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Not numbered yet: a number is taken when the event is released.
    pub events: Vec<Published>,
    pub notifications: Vec<super::notifications::Notification>,
}

impl Rendered {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.notifications.is_empty()
    }
}

fn seconds(at: Timestamp) -> String {
    Utc.timestamp_millis_opt(at.millis())
        .single()
        .map_or_else(String::new, |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The execution's attempt: 1, plus one per stage retry.
fn attempt(execution: &Execution) -> u32 {
    let retries: u32 =
        execution.stages.iter().flatten().map(|s| u32::from(s.manual_retries) + u32::from(s.auto_retries)).sum();
    1 + retries
}

/// The EventBridge envelope, serialized in AWS's member order.
#[derive(Serialize)]
struct Envelope<'a> {
    version: &'static str,
    id: String,
    #[serde(rename = "detail-type")]
    detail_type: &'static str,
    source: &'static str,
    account: &'a str,
    time: String,
    region: &'a str,
    resources: [&'a str; 1],
    detail: Detail<'a>,
}

/// An event's `detail`. Its members come in the order AWS sends them, which depends on the event (a member absent
/// from an event is skipped) [NATIVE, issue 28]: see [`Detail::order`].
struct Detail<'a> {
    pipeline: &'a str,
    execution_id: String,
    execution_trigger: Option<Trigger<'a>>,
    stop_execution_comments: Option<&'a str>,
    start_time: String,
    last_retry_attempt_time: Option<String>,
    stage_last_retry_attempt_time: Option<String>,
    stage: Option<&'a str>,
    action_execution_id: Option<String>,
    action: Option<&'a str>,
    state: &'static str,
    region: Option<&'a str>,
    action_type: Option<TypeOut<'a>>,
    input_artifacts: Option<Vec<ArtifactOut<'a>>>,
    execution_result: Option<ResultOut<'a>>,
    output_artifacts: Option<Vec<ArtifactOut<'a>>>,
    version: f64,
    attempt: f64,
}

/// A member of an event's `detail`.
#[derive(Clone, Copy)]
enum Member {
    Pipeline,
    ExecutionId,
    Trigger,
    StopComments,
    StartTime,
    LastRetry,
    StageLastRetry,
    Stage,
    ActionExecutionId,
    Action,
    State,
    Region,
    Type,
    InputArtifacts,
    Result,
    OutputArtifacts,
    Version,
    Attempt,
}

impl Detail<'_> {
    /// The members in AWS's order for this event.
    fn order(&self) -> &'static [Member] {
        use Member::*;
        match (self.action.is_some(), self.stage.is_some()) {
            (true, _) if self.output_artifacts.is_some() => &[
                ExecutionId,
                StartTime,
                Result,
                OutputArtifacts,
                Type,
                Version,
                Pipeline,
                Stage,
                ActionExecutionId,
                Action,
                State,
                Region,
                InputArtifacts,
                Attempt,
            ],
            (true, _) => &[
                Pipeline,
                ExecutionId,
                StartTime,
                Stage,
                Result,
                ActionExecutionId,
                Action,
                State,
                Region,
                Type,
                InputArtifacts,
                Version,
                Attempt,
            ],
            (false, true) => &[Pipeline, ExecutionId, StageLastRetry, StartTime, Stage, State, Version, Attempt],
            (false, false) => {
                &[Pipeline, ExecutionId, Trigger, StopComments, StartTime, LastRetry, State, Version, Attempt]
            }
        }
    }
}

impl Serialize for Detail<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        /// An entry that is there only when the value is.
        fn entry<M: SerializeMap, T: Serialize + ?Sized>(
            map: &mut M,
            key: &str,
            value: Option<&T>,
        ) -> Result<(), M::Error> {
            value.map_or(Ok(()), |value| map.serialize_entry(key, value))
        }
        let mut map = serializer.serialize_map(None)?;
        for member in self.order() {
            match member {
                Member::Pipeline => entry(&mut map, "pipeline", Some(self.pipeline))?,
                Member::ExecutionId => entry(&mut map, "execution-id", Some(&self.execution_id))?,
                Member::Trigger => entry(&mut map, "execution-trigger", self.execution_trigger.as_ref())?,
                Member::StopComments => entry(&mut map, "stop-execution-comments", self.stop_execution_comments)?,
                Member::StartTime => entry(&mut map, "start-time", Some(&self.start_time))?,
                Member::LastRetry => entry(&mut map, "last-retry-attempt-time", self.last_retry_attempt_time.as_ref())?,
                Member::StageLastRetry => {
                    entry(&mut map, "stage-last-retry-attempt-time", self.stage_last_retry_attempt_time.as_ref())?
                }
                Member::Stage => entry(&mut map, "stage", self.stage)?,
                Member::ActionExecutionId => entry(&mut map, "action-execution-id", self.action_execution_id.as_ref())?,
                Member::Action => entry(&mut map, "action", self.action)?,
                Member::State => entry(&mut map, "state", Some(self.state))?,
                Member::Region => entry(&mut map, "region", self.region)?,
                Member::Type => entry(&mut map, "type", self.action_type.as_ref())?,
                Member::InputArtifacts => entry(&mut map, "input-artifacts", self.input_artifacts.as_ref())?,
                Member::Result => entry(&mut map, "execution-result", self.execution_result.as_ref())?,
                Member::OutputArtifacts => entry(&mut map, "output-artifacts", self.output_artifacts.as_ref())?,
                Member::Version => entry(&mut map, "version", Some(&self.version))?,
                Member::Attempt => entry(&mut map, "pipeline-execution-attempt", Some(&self.attempt))?,
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Trigger<'a> {
    #[serde(rename = "trigger-type")]
    trigger_type: TriggerType,
    #[serde(rename = "trigger-detail", skip_serializing_if = "Option::is_none")]
    trigger_detail: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    git: Option<GitTrigger<'a>>,
}

/// What a git-triggered execution's trigger says of its commit (integrations.md §1.3).
#[derive(Serialize)]
struct GitTrigger<'a> {
    #[serde(rename = "provider-type")]
    provider_type: &'a str,
    #[serde(rename = "connection-arn")]
    connection_arn: &'a str,
    #[serde(rename = "full-repository-name")]
    full_repository_name: &'a str,
    #[serde(rename = "commit-id")]
    commit_id: &'a str,
    #[serde(rename = "commit-message")]
    commit_message: &'a str,
    #[serde(rename = "author-date", skip_serializing_if = "Option::is_none")]
    author_date: Option<&'a str>,
    #[serde(rename = "branch-name", skip_serializing_if = "Option::is_none")]
    branch_name: Option<&'a str>,
}

/// The git details of an execution a push or pull request started: its connection source's commit, as the event
/// recorded it. UNCONFIRMED: AWS's example has no trigger-type or trigger-detail beside them; both are kept here.
fn git_trigger<'a>(execution: &'a Execution, sources: &'a Sources) -> Option<GitTrigger<'a>> {
    if !matches!(execution.trigger.trigger_type, TriggerType::Webhook | TriggerType::WebhookV2) {
        return None;
    }
    let first = execution.declaration.stages.first()?;
    execution.overrides.iter().filter(|o| o.revision_type == RevisionType::CommitId).find_map(|o| {
        let action = first.actions.iter().find(|a| a.name == o.action_name)?;
        if action.action_type_id.provider != "CodeStarSourceConnection" {
            return None;
        }
        let config = action.configuration.as_ref()?;
        let repository_name = config.get("FullRepositoryId")?;
        let repository = sources.repository(RepositoryKind::Connection, repository_name)?;
        let commit = repository.commit(&o.revision_value)?;
        Some(GitTrigger {
            provider_type: repository.provider.as_deref().unwrap_or("GitHub"),
            connection_arn: config.get("ConnectionArn").map_or("", String::as_str),
            full_repository_name: repository_name,
            commit_id: &o.revision_value,
            commit_message: &commit.message,
            author_date: commit.author_date.as_deref(),
            branch_name: commit.branch.as_deref(),
        })
    })
}

#[derive(Serialize)]
struct TypeOut<'a> {
    owner: ActionOwner,
    provider: &'a str,
    category: ActionCategory,
    version: &'a str,
}

#[derive(Serialize)]
struct ArtifactOut<'a> {
    name: &'a str,
    s3location: Location<'a>,
}

#[derive(Serialize)]
struct Location<'a> {
    bucket: &'a str,
    key: &'a str,
}

#[derive(Serialize)]
struct ResultOut<'a> {
    // AWS's order: summary, id, error code [NATIVE, issue 28].
    #[serde(rename = "external-execution-summary", skip_serializing_if = "Option::is_none")]
    external_execution_summary: Option<&'a str>,
    #[serde(rename = "external-execution-id", skip_serializing_if = "Option::is_none")]
    external_execution_id: Option<&'a str>,
    #[serde(rename = "external-execution-url", skip_serializing_if = "Option::is_none")]
    external_execution_url: Option<&'a str>,
    #[serde(rename = "error-code", skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
}

fn artifacts(list: &[Arc<ArtifactInstance>]) -> Option<Vec<ArtifactOut<'_>>> {
    (!list.is_empty()).then(|| {
        list.iter()
            .map(|a| ArtifactOut { name: &a.name, s3location: Location { bucket: &a.bucket, key: &a.key } })
            .collect()
    })
}

/// The notification of an approval that starts waiting, when it names a topic.
fn approval_notification(
    scope: &Scope,
    pipeline: &str,
    record: &PipelineRecord,
    execution: crate::state::execution::ExecutionIndex,
    run: crate::state::execution::RunIndex,
    at: Timestamp,
) -> Option<super::notifications::Notification> {
    let execution = record.runtime.executions.get(execution.index())?;
    let run = execution.actions.get(run.index())?;
    if !run.awaits_approval {
        return None;
    }
    let declared = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
    // The configuration as the run resolved it (variables in CustomData and the link are resolved).
    let resolved = run.extra.as_ref().and_then(|e| e.resolved_configuration.as_ref());
    let config = crate::state::execution::ConfigView::new(declared.configuration.as_ref(), resolved);
    let topic = config.get("NotificationArn").filter(|t| !t.is_empty())?;
    let (stage, action) = execution.names(run);
    let token = run.id.to_string();
    let timeout = super::providers::timeout_minutes(declared).saturating_mul(60_000);
    let waiting = super::notifications::Waiting {
        region: &scope.region,
        pipeline,
        stage,
        action,
        token: &token,
        topic_arn: topic,
        custom_data: config.get("CustomData"),
        external_entity_link: config.get("ExternalEntityLink"),
        expires: at.plus_millis(timeout),
    };
    Some(super::notifications::approval_needed(&waiting))
}

/// One event, or `None` when what changed is gone.
fn render(
    scope: &Scope,
    pipeline: &str,
    record: &PipelineRecord,
    sources: &Sources,
    change: &StateChange,
    ids: &super::ids::Ids,
) -> Option<Published> {
    let execution = record.runtime.executions.get(change.execution.index())?;
    let attempt = attempt(execution);
    let execution_id = execution.id.to_string();
    let mut detail = Detail {
        pipeline,
        execution_id: execution_id.clone(),
        execution_trigger: None,
        stop_execution_comments: None,
        start_time: String::new(),
        last_retry_attempt_time: None,
        stage_last_retry_attempt_time: None,
        stage: None,
        action_execution_id: None,
        action: None,
        state: change.state.as_str(),
        region: None,
        action_type: None,
        input_artifacts: None,
        execution_result: None,
        output_artifacts: None,
        version: f64::from(execution.pipeline_version),
        attempt: f64::from(attempt),
    };
    let detail_type = match change.entity {
        Entity::Pipeline => {
            if change.state == EventState::Started {
                detail.execution_trigger = Some(Trigger {
                    trigger_type: execution.trigger.trigger_type,
                    trigger_detail: execution.trigger.trigger_detail.as_deref(),
                    git: git_trigger(execution, sources),
                });
            }
            if change.state == EventState::Stopping {
                detail.stop_execution_comments = execution.stop.as_ref().and_then(|s| s.reason.as_deref());
            }
            detail.start_time = execution.start_time.to_rfc3339();
            // After a retry: when the latest one was made (its stage started again then).
            let retried = execution.stages.iter().flatten().filter(|s| s.manual_retries + s.auto_retries > 0);
            detail.last_retry_attempt_time = retried.map(|s| s.entered).max().map(Timestamp::to_rfc3339);
            PIPELINE
        }
        Entity::Stage(stage) => {
            detail.stage = Some(execution.declaration.stages.get(stage as usize)?.name.as_str());
            let run = execution.stages.get(stage as usize)?.as_ref();
            let entered = run.map_or(change.at, |s| s.entered);
            detail.start_time = entered.to_rfc3339();
            if run.is_some_and(|s| s.manual_retries + s.auto_retries > 0) {
                detail.stage_last_retry_attempt_time = Some(entered.to_rfc3339());
            }
            // A first run's stage events count from 0; after a retry every event carries the attempt.
            if attempt == 1 {
                detail.attempt = 0.0;
            }
            STAGE
        }
        Entity::Action(run_index) => {
            let run = execution.actions.get(run_index.index())?;
            let (stage, action) = execution.names(run);
            let declared = execution.declaration.stages.get(run.stage())?.actions.get(run.action())?;
            detail.start_time = run.start_time.to_rfc3339();
            detail.stage = Some(stage);
            detail.action_execution_id = Some(run.id.to_string());
            detail.action = Some(action);
            detail.region = Some(run.extra.as_ref().and_then(|e| e.region.as_deref()).unwrap_or(&scope.region));
            let id = &declared.action_type_id;
            detail.action_type =
                Some(TypeOut { owner: id.owner, provider: &id.provider, category: id.category, version: &id.version });
            if change.state == EventState::Started {
                detail.input_artifacts = artifacts(&run.input_artifacts);
            }
            if change.state == EventState::Succeeded {
                detail.output_artifacts = artifacts(&run.output_artifacts);
            }
            if matches!(change.state, EventState::Succeeded | EventState::Failed) {
                let failed = change.state == EventState::Failed;
                let summary = match (run.status, run.error()) {
                    (ActionStatus::Failed, Some(error)) => Some(error.message.as_str()),
                    _ => run.summary.as_deref(),
                };
                let result = ResultOut {
                    external_execution_id: run.external_execution_id.as_deref(),
                    external_execution_summary: summary,
                    external_execution_url: run.extra.as_ref().and_then(|e| e.external_execution_url.as_deref()),
                    error_code: failed.then(|| run.error().map_or("JobFailed", |e| e.code.as_str())),
                };
                let empty = result.external_execution_id.is_none()
                    && result.external_execution_summary.is_none()
                    && result.external_execution_url.is_none()
                    && result.error_code.is_none();
                detail.execution_result = (!empty).then_some(result);
            }
            ACTION
        }
    };
    let envelope = Envelope {
        version: "0",
        id: ids.uuid().to_string(),
        detail_type,
        source: "aws.codepipeline",
        account: &scope.account,
        time: seconds(change.at),
        region: &scope.region,
        resources: [&record.arn],
        detail,
    };
    let event = serde_json::to_string(&envelope).ok()?.into_boxed_str();
    Some(Published {
        seq: 0,
        account: scope.account.clone(),
        region: scope.region.clone(),
        pipeline: pipeline.to_string(),
        execution_id,
        detail_type,
        event,
    })
}
