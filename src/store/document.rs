//! The state as data: the versioned JSON document of `GET`/`PUT /_emulator/state`, and the rows [`super::sqlite`]
//! keeps in its database, which are pieces of the same document.
//!
//! One representation serves both, so an export, an import, a save and a load cannot drift apart. A document is
//! checked whole before anything of it is used ([`PartitionDocument::into_partition`]): every position it holds
//! must point at something, every execution's version must be there, so that nothing loaded can make the engine
//! index out of bounds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::state::behaviors::BehaviorRule;
use crate::state::catalogue::ActionTypeDeclaration;
use crate::state::declaration::{ActionTypeId, ConditionKind, PipelineDeclaration};
use crate::state::execution::{
    Execution, ExecutionIndex, Executions, Job, PipelineRuntime, Revision, RunIndex, TransitionState,
};
use crate::state::sources::Sources;
use crate::state::tracked::{Tracked, TrackedMap};
use crate::state::{
    CustomActionTypeRecord, Definition, PartitionData, PipelineRecord, RetiredJobs, Runtime, SECRET_MASK, Scope, Tags,
    ThirdPartyRecord, Timestamp, WebhookRecord,
};

/// What a document says it is.
pub const FORMAT: &str = "codepipeline-local-state";

/// The version of the document (and database) format this build writes and reads. Older versions are read; newer
/// ones are refused.
pub const VERSION: u32 = 1;

/// The whole state of an emulator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub version: u32,
    /// How far the emulator clock is ahead of wall time.
    #[serde(default)]
    pub clock_offset_millis: i64,
    /// The sequence number the next event gets.
    #[serde(default)]
    pub next_event_sequence: Option<u64>,
    /// The behaviour rules in force; absent on import keeps the current ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviors: Option<Vec<BehaviorRule>>,
    #[serde(default)]
    pub partitions: Vec<PartitionDocument>,
}

/// Why a state document (or the database rows it is read from) cannot be used; the text says where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("format must be \"{FORMAT}\", not \"{found}\"")]
    NotADocument { found: String },
    #[error("this is format version {version}; this build of codepipeline-local reads versions 1 to {VERSION}")]
    Version { version: u32 },
    /// Something is there twice (what, as the message names it).
    #[error("{0} appears twice")]
    Twice(String),
    /// A position or a reference points at nothing (what is wrong, as the message says it).
    #[error("{0}")]
    Dangling(String),
    /// A member or row that does not read as what it must be.
    #[error("{what}: {reason}")]
    Unreadable { what: String, reason: String },
    /// A database row of a kind this build does not know.
    #[error("unknown {table} {name:?}")]
    UnknownRow { table: &'static str, name: String },
    /// An error inside a part of the document (a partition, a pipeline, an execution).
    #[error("{place}: {error}")]
    In { place: String, error: Box<DocumentError> },
}

impl DocumentError {
    /// This error, found inside `place`.
    pub fn within(self, place: impl Into<String>) -> DocumentError {
        DocumentError::In { place: place.into(), error: Box::new(self) }
    }
}

impl Document {
    /// Refuses a document that is not one, or is of a newer format.
    pub fn check_version(&self) -> Result<(), DocumentError> {
        if self.format != FORMAT {
            return Err(DocumentError::NotADocument { found: self.format.clone() });
        }
        if self.version > VERSION || self.version == 0 {
            return Err(DocumentError::Version { version: self.version });
        }
        Ok(())
    }

    /// Checks the whole document and builds the partitions it describes.
    pub fn into_partitions(self) -> Result<Vec<(Scope, PartitionData)>, DocumentError> {
        self.check_version()?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(self.partitions.len());
        for partition in self.partitions {
            let scope = Scope { account: partition.account.clone(), region: partition.region.clone() };
            if !seen.insert(scope.clone()) {
                return Err(DocumentError::Twice(format!("account {} region {}", scope.account, scope.region)));
            }
            let data = partition
                .into_partition()
                .map_err(|e| e.within(format!("account {} region {}", scope.account, scope.region)))?;
            out.push((scope, data));
        }
        Ok(out)
    }
}

/// The state of one account and region.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartitionDocument {
    pub account: String,
    pub region: String,
    #[serde(default)]
    pub pipelines: Vec<PipelineDocument>,
    #[serde(default)]
    pub custom_action_types: Vec<CustomActionTypeRecord>,
    #[serde(default)]
    pub deleted_custom_action_types: Vec<ActionTypeId>,
    #[serde(default)]
    pub action_type_updates: Vec<ActionTypeUpdate>,
    #[serde(default)]
    pub webhooks: Vec<WebhookRecord>,
    #[serde(default)]
    pub third_party_action_types: Vec<ThirdPartyRecord>,
    #[serde(default)]
    pub retired_jobs: Vec<Uuid>,
    #[serde(default)]
    pub sources: Sources,
}

/// A pipeline: its record, its versions, its executions and jobs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineDocument {
    #[serde(flatten)]
    pub row: PipelineRow,
    /// The versions it keeps, and older ones executions still run.
    pub definitions: Vec<DefinitionRow>,
    #[serde(default)]
    pub executions: Vec<Execution>,
    /// The position of each execution, increasing, once retention let older ones go (absent: 0, 1, 2, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub positions: Vec<usize>,
    #[serde(default)]
    pub jobs: Vec<Job>,
    /// The current job of each action run that has one.
    #[serde(default)]
    pub job_of_run: Vec<(ExecutionIndex, RunIndex, Uuid)>,
    /// StartPipelineExecution's client request tokens and the executions they started.
    #[serde(default)]
    pub client_tokens: BTreeMap<String, Uuid>,
}

/// A pipeline's own row: everything but its versions, executions and jobs, which have rows of their own.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRow {
    pub name: String,
    pub arn: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    #[serde(default)]
    pub tags: Tags,
    /// The version numbers GetPipeline can read, oldest first; the last is the current one.
    pub versions: Vec<i32>,
    #[serde(default)]
    pub next_seq: u64,
    #[serde(default)]
    pub transitions: BTreeMap<String, TransitionState>,
    #[serde(default)]
    pub current_revisions: BTreeMap<String, Revision>,
    /// The object version each polling S3 source last started the pipeline for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub polled: BTreeMap<String, String>,
    /// What polling S3 sources last failed to read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub poll_failures: BTreeMap<String, crate::state::execution::PollFailure>,
    #[serde(default)]
    pub latest_in_stage: BTreeMap<String, ExecutionIndex>,
    #[serde(default)]
    pub latest_runs: Vec<(String, String, ExecutionIndex, RunIndex)>,
}

/// One version of a pipeline: the declaration with its secrets in clear (unless masked for export), where they
/// are, and its `MATCHES` patterns.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefinitionRow {
    pub declaration: PipelineDeclaration,
    #[serde(default)]
    pub secrets: Vec<crate::state::SecretRef>,
    #[serde(default)]
    pub patterns: Vec<(usize, ConditionKind, usize, String)>,
}

impl DefinitionRow {
    /// The row of a version; `mask` replaces its secrets with `****`.
    pub fn of(definition: &Definition, mask: bool) -> DefinitionRow {
        let declaration = if mask { definition.echo().into_owned() } else { definition.declaration().clone() };
        DefinitionRow {
            declaration,
            secrets: definition.secrets.to_vec(),
            patterns: definition.patterns.iter().map(|(s, k, r, p)| (*s, *k, *r, p.as_str().to_string())).collect(),
        }
    }

    fn into_definition(self) -> Result<Definition, DocumentError> {
        let mut patterns = Vec::with_capacity(self.patterns.len());
        for (stage, kind, rule, pattern) in self.patterns {
            let compiled = regex::Regex::new(&pattern).map_err(|e| DocumentError::Unreadable {
                what: format!("pattern {pattern:?}"),
                reason: e.to_string(),
            })?;
            patterns.push((stage, kind, rule, compiled));
        }
        Ok(Definition::new(self.declaration, self.secrets, patterns))
    }
}

/// An action type update (UpdateActionType) in a document: the id it applies to and the declaration.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionTypeUpdate {
    pub id: ActionTypeId,
    pub declaration: ActionTypeDeclaration,
}

/// Secrets hidden in an export: `****` in place of each.
fn masked(value: &str, mask: bool) -> String {
    if mask { SECRET_MASK.to_string() } else { value.to_string() }
}

impl PartitionData {
    /// This partition as a document; `mask` hides secrets (secret configuration values, webhook secret tokens,
    /// partner client tokens) behind `****`.
    pub fn to_document(&self, scope: &Scope, mask: bool) -> PartitionDocument {
        let mut document = self.to_document_without_pipelines(scope, mask);
        document.pipelines = self.pipelines.iter().map(|(name, record)| record.to_document(name, mask)).collect();
        document
    }

    /// This partition as a document, its pipelines left out (an export adds them one at a time).
    pub fn to_document_without_pipelines(&self, scope: &Scope, mask: bool) -> PartitionDocument {
        let webhooks = self
            .webhooks
            .values()
            .map(|w| {
                let mut w = w.clone();
                if mask && let Some(token) = w.definition.authentication_configuration.secret_token.as_mut() {
                    *token = SECRET_MASK.to_string();
                }
                w
            })
            .collect();
        let partners = self
            .third_party_types
            .values()
            .map(|p| ThirdPartyRecord { client_token: masked(&p.client_token, mask), ..p.clone() })
            .collect();
        PartitionDocument {
            action_type_updates: self.action_type_update_list(),
            account: scope.account.clone(),
            region: scope.region.clone(),
            pipelines: Vec::new(),
            custom_action_types: self.custom_action_types.values().cloned().collect(),
            deleted_custom_action_types: self.deleted_custom_action_types.iter().cloned().collect(),
            webhooks,
            third_party_action_types: partners,
            retired_jobs: self.retired_jobs.order.iter().copied().collect(),
            sources: (*self.sources).clone(),
        }
    }

    /// The UpdateActionType declarations, each with the id it applies to.
    fn action_type_update_list(&self) -> Vec<ActionTypeUpdate> {
        let updates = self.action_type_updates.iter();
        updates.map(|(id, declaration)| ActionTypeUpdate { id: id.clone(), declaration: declaration.clone() }).collect()
    }
}

impl PartitionDocument {
    /// Checks the partition and builds it.
    pub fn into_partition(self) -> Result<PartitionData, DocumentError> {
        let mut pipelines = BTreeMap::new();
        for pipeline in self.pipelines {
            let name = pipeline.row.name.clone();
            let record = pipeline.into_record().map_err(|e| e.within(format!("pipeline {name}")))?;
            if pipelines.insert(name.clone(), record).is_some() {
                return Err(DocumentError::Twice(format!("pipeline {name}")));
            }
        }
        let mut updates = BTreeMap::new();
        for update in self.action_type_updates {
            updates.insert(update.id, update.declaration);
        }
        let mut retired = RetiredJobs::default();
        retired.retire(self.retired_jobs);
        Ok(PartitionData {
            pipelines: TrackedMap::new(pipelines),
            custom_action_types: Tracked::new(
                self.custom_action_types.into_iter().map(|t| (t.action_type.id.clone(), t)).collect(),
            ),
            deleted_custom_action_types: Tracked::new(self.deleted_custom_action_types.into_iter().collect()),
            action_type_updates: Tracked::new(updates),
            webhooks: Tracked::new(self.webhooks.into_iter().map(|w| (w.definition.name.clone(), w)).collect()),
            third_party_types: Tracked::new(
                self.third_party_action_types.into_iter().map(|p| (p.action_type.id.clone(), p)).collect(),
            ),
            retired_jobs: Tracked::new(retired),
            sources: Tracked::new(self.sources),
            outbox: crate::state::outbox::Outbox::default(),
        })
    }
}

impl PipelineRecord {
    /// The pipeline's own row.
    pub fn to_row(&self, name: &str) -> PipelineRow {
        let runtime = &self.runtime;
        let mut latest_runs: Vec<(String, String, ExecutionIndex, RunIndex)> = runtime
            .latest_runs
            .iter()
            .map(|((stage, action), (execution, run))| (stage.clone(), action.clone(), *execution, *run))
            .collect();
        latest_runs.sort();
        PipelineRow {
            name: name.to_string(),
            arn: self.arn.clone(),
            created: self.created,
            updated: self.updated,
            tags: self.tags.clone(),
            versions: self.versions.iter().map(|v| v.number()).collect(),
            next_seq: runtime.next_seq,
            transitions: runtime.transitions.clone(),
            current_revisions: runtime.current_revisions.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            polled: runtime.polled.clone(),
            poll_failures: runtime.poll_failures.clone(),
            latest_in_stage: runtime.latest_in_stage.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            latest_runs,
        }
    }

    /// Every version the pipeline or one of its executions holds, oldest first.
    fn definitions(&self) -> Vec<&Arc<Definition>> {
        let mut by_number: BTreeMap<i32, &Arc<Definition>> = BTreeMap::new();
        for execution in self.runtime.executions.iter() {
            by_number.entry(execution.declaration.number()).or_insert(&execution.declaration);
        }
        for version in &self.versions {
            by_number.insert(version.number(), version);
        }
        by_number.into_values().collect()
    }

    /// The pipeline as a document.
    pub fn to_document(&self, name: &str, mask: bool) -> PipelineDocument {
        let runtime = &self.runtime;
        PipelineDocument {
            row: self.to_row(name),
            definitions: self.definitions().into_iter().map(|d| DefinitionRow::of(d, mask)).collect(),
            executions: runtime.executions.iter().cloned().collect(),
            positions: if runtime.executions.end() == runtime.executions.count() {
                Vec::new()
            } else {
                runtime.executions.iter_indexed().map(|(position, _)| position.index()).collect()
            },
            jobs: runtime.jobs.values().cloned().collect(),
            job_of_run: runtime.job_of_run.iter().map(|(&(e, r), id)| (e, r, *id)).collect(),
            client_tokens: runtime.client_tokens.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

impl PipelineDocument {
    /// Checks the pipeline and builds its record.
    pub fn into_record(self) -> Result<PipelineRecord, DocumentError> {
        let PipelineDocument { row, definitions, executions, positions, jobs, job_of_run, client_tokens } = self;
        let mut by_number = HashMap::new();
        for definition in definitions {
            let number = definition.declaration.version.unwrap_or(1);
            let definition = Arc::new(definition.into_definition()?);
            if by_number.insert(number, definition).is_some() {
                return Err(DocumentError::Twice(format!("version {number}")));
            }
        }
        let mut versions = std::collections::VecDeque::new();
        for number in &row.versions {
            let version = by_number
                .get(number)
                .ok_or_else(|| DocumentError::Dangling(format!("version {number} has no definition")))?;
            versions.push_back(Arc::clone(version));
        }
        if versions.is_empty() {
            return Err(DocumentError::Dangling("it keeps no version".into()));
        }
        let mut runtime = PipelineRuntime { next_seq: row.next_seq, ..PipelineRuntime::default() };
        let positions = if positions.is_empty() {
            (0..executions.len()).collect()
        } else if positions.len() != executions.len() {
            return Err(DocumentError::Dangling(format!(
                "it has {} executions and {} positions",
                executions.len(),
                positions.len()
            )));
        } else if positions.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(DocumentError::Dangling("its execution positions do not increase".into()));
        } else {
            positions
        };
        let mut list = Vec::with_capacity(executions.len());
        for (position, mut execution) in positions.into_iter().zip(executions) {
            let number = execution.pipeline_version;
            let definition = by_number.get(&number).ok_or_else(|| {
                DocumentError::Dangling(format!("execution {} runs version {number}, which is not there", execution.id))
            })?;
            execution.declaration = Arc::clone(definition);
            check_execution(&execution).map_err(|e| e.within(format!("execution {}", execution.id)))?;
            let index = ExecutionIndex::at(position);
            if runtime.index.insert(execution.id, index).is_some() {
                return Err(DocumentError::Twice(format!("execution {}", execution.id)));
            }
            if execution.status.is_active() {
                runtime.active.insert(index);
            }
            runtime.reshare(&mut execution);
            list.push((position, execution));
        }
        let executions = Executions::at_positions(list);
        let run_exists = |execution: ExecutionIndex, run: RunIndex| {
            executions.get(execution.index()).is_some_and(|e| run.index() < e.actions.len())
        };
        for (stage, index) in row.latest_in_stage {
            if executions.get(index.index()).is_none() {
                return Err(DocumentError::Dangling(format!("the latest execution of stage {stage} is not there")));
            }
            runtime.latest_in_stage.insert(stage, index);
        }
        for (stage, action, execution, run) in row.latest_runs {
            if !run_exists(execution, run) {
                return Err(DocumentError::Dangling(format!("the latest run of action {stage}/{action} is not there")));
            }
            runtime.latest_runs.insert((stage, action), (execution, run));
        }
        let mut job_map = BTreeMap::new();
        for job in jobs {
            if !run_exists(job.execution, job.run) {
                return Err(DocumentError::Dangling(format!(
                    "job {} belongs to an action run that is not there",
                    job.id
                )));
            }
            job_map.insert(job.id, job);
        }
        let mut current = BTreeMap::new();
        for (execution, run, job) in job_of_run {
            if !run_exists(execution, run) || !job_map.contains_key(&job) {
                return Err(DocumentError::Dangling(format!("the current job {job} of an action run is not there")));
            }
            current.insert((execution, run), job);
        }
        runtime.executions = executions;
        runtime.jobs = TrackedMap::new(job_map);
        runtime.job_of_run = TrackedMap::new(current);
        runtime.client_tokens = TrackedMap::new(client_tokens);
        runtime.transitions = row.transitions;
        runtime.current_revisions = row.current_revisions.into_iter().collect();
        runtime.polled = row.polled;
        runtime.poll_failures = row.poll_failures;
        Ok(PipelineRecord {
            arn: row.arn,
            created: row.created,
            updated: row.updated,
            versions,
            tags: row.tags,
            runtime: Runtime::restored(runtime),
            version_unsaved: false,
            shown_metadata: std::sync::OnceLock::new(),
        })
    }
}

/// Checks that every position an execution holds points at something, so the engine never indexes out of bounds.
fn check_execution(execution: &Execution) -> Result<(), DocumentError> {
    let dangling = |what: &str| DocumentError::Dangling(what.to_string());
    let stages = execution.declaration.stages.len();
    let actions = execution.actions.len();
    if execution.stages.len() != stages {
        return Err(DocumentError::Dangling(format!(
            "it has {} stage runs for {stages} stages",
            execution.stages.len()
        )));
    }
    for run in &execution.actions {
        let stage = execution
            .declaration
            .stages
            .get(run.stage())
            .ok_or_else(|| dangling("an action run's stage is not there"))?;
        if run.action() >= stage.actions.len() {
            return Err(dangling("an action run's action is not there"));
        }
    }
    for stage in execution.stages.iter().flatten() {
        if stage.runs.iter().any(|r| r.index() >= actions) {
            return Err(dangling("a stage run's action run is not there"));
        }
    }
    if let crate::state::execution::Place::InStage { stage } = execution.place
        && stage >= stages
    {
        return Err(dangling("it is in a stage that is not there"));
    }
    if let Some(conditions) = &execution.conditions {
        let rules = conditions.rules.len();
        for evaluation in &conditions.evaluations {
            if evaluation.stage as usize >= stages || evaluation.rules.iter().any(|r| r.index() >= rules) {
                return Err(dangling("a condition evaluation points at nothing"));
            }
        }
        for rule in &conditions.rules {
            if execution.rule_declaration(rule).is_none() {
                return Err(dangling("a rule run's rule is not there"));
            }
        }
    }
    if execution
        .sources
        .iter()
        .any(|(action, _)| execution.declaration.stages.first().is_none_or(|s| *action as usize >= s.actions.len()))
    {
        return Err(dangling("a source revision's action is not there"));
    }
    Ok(())
}

/// A row to write, or to delete (`body: None`), made under the partition lock by [`PartitionData::take_unsaved`].
#[derive(Debug)]
pub enum RowChange {
    /// One of the partition's collections (custom action types, webhooks, ...), saved whole.
    Collection { kind: CollectionKind, body: Option<String> },
    /// A pipeline's own row; deleting it deletes all of the pipeline's rows.
    Pipeline { name: String, body: Option<String> },
    /// A version of a pipeline.
    Definition { pipeline: String, version: i32, body: String },
    /// An execution, by position (`None`: retention let it go).
    Execution { pipeline: String, position: usize, body: Option<String> },
    /// A job, a current job of an action run, or a client token.
    Item { pipeline: String, kind: ItemKind, key: String, body: Option<String> },
}

/// The collections of a partition, each saved as one row; the database names each by [`CollectionKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionKind {
    CustomActionTypes,
    DeletedCustomActionTypes,
    ActionTypeUpdates,
    Webhooks,
    ThirdPartyActionTypes,
    RetiredJobs,
    Sources,
}

impl CollectionKind {
    const ALL: [CollectionKind; 7] = [
        CollectionKind::CustomActionTypes,
        CollectionKind::DeletedCustomActionTypes,
        CollectionKind::ActionTypeUpdates,
        CollectionKind::Webhooks,
        CollectionKind::ThirdPartyActionTypes,
        CollectionKind::RetiredJobs,
        CollectionKind::Sources,
    ];

    /// Its name in the database (the document's member name).
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionKind::CustomActionTypes => "customActionTypes",
            CollectionKind::DeletedCustomActionTypes => "deletedCustomActionTypes",
            CollectionKind::ActionTypeUpdates => "actionTypeUpdates",
            CollectionKind::Webhooks => "webhooks",
            CollectionKind::ThirdPartyActionTypes => "thirdPartyActionTypes",
            CollectionKind::RetiredJobs => "retiredJobs",
            CollectionKind::Sources => "sources",
        }
    }

    /// The kind named `name` in the database.
    pub fn parse(name: &str) -> Option<CollectionKind> {
        CollectionKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// The items of a pipeline saved one row each; the database names each kind by [`ItemKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Job,
    JobOfRun,
    ClientToken,
}

impl ItemKind {
    /// Its name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Job => "job",
            ItemKind::JobOfRun => "jobOfRun",
            ItemKind::ClientToken => "clientToken",
        }
    }

    /// The kind named `name` in the database.
    pub fn parse(name: &str) -> Option<ItemKind> {
        [ItemKind::Job, ItemKind::JobOfRun, ItemKind::ClientToken].into_iter().find(|k| k.as_str() == name)
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing plain data to a string cannot fail (no maps with non-string keys are written).
    serde_json::to_string(value).unwrap_or_default()
}

impl PartitionData {
    /// Whether anything changed since the last [`PartitionData::take_unsaved`].
    pub fn has_unsaved(&self) -> bool {
        self.pipelines.is_changed()
            || self.custom_action_types.is_changed()
            || self.deleted_custom_action_types.is_changed()
            || self.action_type_updates.is_changed()
            || self.webhooks.is_changed()
            || self.third_party_types.is_changed()
            || self.retired_jobs.is_changed()
            || self.sources.is_changed()
    }

    /// The rows that changed since the last call, serialized, clearing every mark.
    pub fn take_unsaved(&mut self) -> Vec<RowChange> {
        let mut rows = self.collection_rows(false);
        for name in self.pipelines.take_changed() {
            let Some(record) = self.pipelines.peek_mut(&name) else {
                rows.push(RowChange::Pipeline { name, body: None });
                continue;
            };
            rows.push(RowChange::Pipeline { name: name.clone(), body: Some(json(&record.to_row(&name))) });
            if std::mem::take(&mut record.version_unsaved) {
                let current = record.current();
                rows.push(RowChange::Definition {
                    pipeline: name.clone(),
                    version: current.number(),
                    body: json(&DefinitionRow::of(current, false)),
                });
            }
            let runtime = &mut record.runtime.for_saving();
            for position in runtime.executions.take_changed() {
                if let Some(execution) = runtime.executions.get(position) {
                    let body = Some(json(execution));
                    rows.push(RowChange::Execution { pipeline: name.clone(), position, body });
                }
            }
            for position in runtime.executions.take_dropped() {
                rows.push(RowChange::Execution { pipeline: name.clone(), position, body: None });
            }
            for id in runtime.jobs.take_changed() {
                let body = runtime.jobs.get(&id).map(json);
                rows.push(RowChange::Item { pipeline: name.clone(), kind: ItemKind::Job, key: id.to_string(), body });
            }
            for (execution, run) in runtime.job_of_run.take_changed() {
                let body = runtime.job_of_run.get(&(execution, run)).map(json);
                let key = format!("{}:{}", execution.index(), run.index());
                rows.push(RowChange::Item { pipeline: name.clone(), kind: ItemKind::JobOfRun, key, body });
            }
            for token in runtime.client_tokens.take_changed() {
                let body = runtime.client_tokens.get(&token).map(json);
                rows.push(RowChange::Item { pipeline: name.clone(), kind: ItemKind::ClientToken, key: token, body });
            }
        }
        rows
    }
}

impl PartitionData {
    /// The rows of the partition's collections: those changed since the last call (an empty one as a deletion), or
    /// with `everything` each one that holds something. Clears their marks.
    fn collection_rows(&mut self, everything: bool) -> Vec<RowChange> {
        let mut rows = Vec::new();
        let mut row = |kind, changed: bool, empty: bool, body: &dyn Fn() -> String| {
            if !changed && (!everything || empty) {
                return;
            }
            rows.push(RowChange::Collection { kind, body: (!empty).then(body) });
        };
        let changed = self.custom_action_types.take_changed();
        row(CollectionKind::CustomActionTypes, changed, self.custom_action_types.is_empty(), &|| {
            json(&self.custom_action_types.values().collect::<Vec<_>>())
        });
        let changed = self.deleted_custom_action_types.take_changed();
        row(CollectionKind::DeletedCustomActionTypes, changed, self.deleted_custom_action_types.is_empty(), &|| {
            json(&*self.deleted_custom_action_types)
        });
        let changed = self.action_type_updates.take_changed();
        row(CollectionKind::ActionTypeUpdates, changed, self.action_type_updates.is_empty(), &|| {
            json(&self.action_type_update_list())
        });
        let changed = self.webhooks.take_changed();
        row(CollectionKind::Webhooks, changed, self.webhooks.is_empty(), &|| {
            json(&self.webhooks.values().collect::<Vec<_>>())
        });
        let changed = self.third_party_types.take_changed();
        row(CollectionKind::ThirdPartyActionTypes, changed, self.third_party_types.is_empty(), &|| {
            json(&self.third_party_types.values().collect::<Vec<_>>())
        });
        let changed = self.retired_jobs.take_changed();
        row(CollectionKind::RetiredJobs, changed, self.retired_jobs.is_empty(), &|| json(&self.retired_jobs.order));
        let changed = self.sources.take_changed();
        row(CollectionKind::Sources, changed, self.sources.is_empty(), &|| json(&*self.sources));
        rows
    }
}

/// Reads a JSON row, naming what it is in the error.
pub fn parse_row<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T, DocumentError> {
    serde_json::from_str(body).map_err(|e| DocumentError::Unreadable { what: what.to_string(), reason: e.to_string() })
}

/// Adds one collection row to a partition document.
pub fn add_collection(partition: &mut PartitionDocument, name: &str, body: &str) -> Result<(), DocumentError> {
    let Some(kind) = CollectionKind::parse(name) else {
        return Err(DocumentError::UnknownRow { table: "collection", name: name.to_string() });
    };
    let kind_name = kind.as_str();
    match kind {
        CollectionKind::CustomActionTypes => partition.custom_action_types = parse_row(kind_name, body)?,
        CollectionKind::DeletedCustomActionTypes => partition.deleted_custom_action_types = parse_row(kind_name, body)?,
        CollectionKind::ActionTypeUpdates => partition.action_type_updates = parse_row(kind_name, body)?,
        CollectionKind::Webhooks => partition.webhooks = parse_row(kind_name, body)?,
        CollectionKind::ThirdPartyActionTypes => partition.third_party_action_types = parse_row(kind_name, body)?,
        CollectionKind::RetiredJobs => partition.retired_jobs = parse_row(kind_name, body)?,
        CollectionKind::Sources => partition.sources = parse_row(kind_name, body)?,
    }
    Ok(())
}

/// Adds one item row (a job, a current job, a client token) to a pipeline document.
pub fn add_item(pipeline: &mut PipelineDocument, name: &str, key: &str, body: &str) -> Result<(), DocumentError> {
    let Some(kind) = ItemKind::parse(name) else {
        return Err(DocumentError::UnknownRow { table: "item", name: name.to_string() });
    };
    match kind {
        ItemKind::Job => pipeline.jobs.push(parse_row(name, body)?),
        ItemKind::JobOfRun => {
            let (execution, run) = key
                .split_once(':')
                .ok_or_else(|| DocumentError::Dangling("a current job's key is not execution:run".into()))?;
            let position = |text: &str| {
                text.parse::<usize>()
                    .map_err(|e| DocumentError::Unreadable { what: format!("{name} {key}"), reason: e.to_string() })
            };
            let job: Uuid = parse_row(name, body)?;
            pipeline.job_of_run.push((ExecutionIndex::at(position(execution)?), RunIndex::at(position(run)?), job));
        }
        ItemKind::ClientToken => {
            pipeline.client_tokens.insert(key.to_string(), parse_row(name, body)?);
        }
    }
    Ok(())
}

impl PartitionData {
    /// Clears every change mark without saving (a store kept in memory only).
    pub fn forget_unsaved(&mut self) {
        self.custom_action_types.take_changed();
        self.deleted_custom_action_types.take_changed();
        self.action_type_updates.take_changed();
        self.webhooks.take_changed();
        self.third_party_types.take_changed();
        self.retired_jobs.take_changed();
        self.sources.take_changed();
        for name in self.pipelines.take_changed() {
            if let Some(record) = self.pipelines.peek_mut(&name) {
                record.version_unsaved = false;
                let runtime = &mut record.runtime.for_saving();
                runtime.executions.take_changed();
                runtime.jobs.take_changed();
                runtime.job_of_run.take_changed();
                runtime.client_tokens.take_changed();
            }
        }
    }

    /// Every row of the partition (to write it whole), clearing every change mark.
    pub fn all_rows(&mut self) -> Vec<RowChange> {
        self.forget_unsaved();
        let mut rows = self.collection_rows(true);
        for (name, record) in self.pipelines.iter() {
            rows.push(RowChange::Pipeline { name: name.clone(), body: Some(json(&record.to_row(name))) });
            for definition in record.definitions() {
                rows.push(RowChange::Definition {
                    pipeline: name.clone(),
                    version: definition.number(),
                    body: json(&DefinitionRow::of(definition, false)),
                });
            }
            let runtime = &record.runtime;
            for (position, execution) in runtime.executions.iter_indexed() {
                let position = position.index();
                rows.push(RowChange::Execution { pipeline: name.clone(), position, body: Some(json(execution)) });
            }
            for (id, job) in runtime.jobs.iter() {
                rows.push(RowChange::Item {
                    pipeline: name.clone(),
                    kind: ItemKind::Job,
                    key: id.to_string(),
                    body: Some(json(job)),
                });
            }
            for ((execution, run), job) in runtime.job_of_run.iter() {
                let key = format!("{}:{}", execution.index(), run.index());
                rows.push(RowChange::Item {
                    pipeline: name.clone(),
                    kind: ItemKind::JobOfRun,
                    key,
                    body: Some(json(job)),
                });
            }
            for (token, id) in runtime.client_tokens.iter() {
                rows.push(RowChange::Item {
                    pipeline: name.clone(),
                    kind: ItemKind::ClientToken,
                    key: token.clone(),
                    body: Some(json(id)),
                });
            }
        }
        rows
    }
}
