//! The data model of everything the emulator holds, for one (account, region): [`PartitionData`], its pipelines
//! ([`PipelineRecord`], each version a shared [`Definition`], the runtime in [`execution`]), action types, webhooks
//! and the emulated sources, and the plain values they are made of (the emulator [`clock`], the behaviour rules of
//! [`behaviors`]). The containers record what changed in them ([`tracked`]), so a save writes exactly the touched
//! rows, and a write's effects wait in its [`outbox`]; keeping, saving and loading it all is `crate::store`'s work.
//! Nothing here does IO or knows the floors above it, but for the engine's zero-sized
//! [`Writer`](crate::engine::Writer) token, without which a pipeline's runtime cannot be changed.

pub mod behaviors;
pub mod catalogue;
pub mod clock;
pub mod declaration;
pub mod execution;
pub mod glob;
pub mod outbox;
pub mod sources;
pub mod tracked;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, LazyLock};

use self::catalogue::{ActionType, ActionTypeDeclaration, ActionTypeSettings, Catalogue};
pub use self::clock::{Clock, Timestamp};
use self::declaration::{ActionOwner, ActionTypeId, PipelineDeclaration, WebhookDefinition};
use self::tracked::{Tracked, TrackedMap};
pub use crate::protocol::identity::Scope;

/// Tags of a resource, by key.
pub type Tags = BTreeMap<String, String>;

/// The resources of one partition.
#[derive(Debug, Default)]
pub struct PartitionData {
    /// Pipelines by name; the BTreeMap keeps ListPipelines in name order.
    pub pipelines: TrackedMap<String, PipelineRecord>,
    /// The account's custom action types.
    pub custom_action_types: Tracked<BTreeMap<ActionTypeId, CustomActionTypeRecord>>,
    /// Custom action types that were deleted: their (category, provider, version) cannot be used again.
    pub deleted_custom_action_types: Tracked<BTreeSet<ActionTypeId>>,
    /// Built-in (AWS or ThirdParty) action types as changed by UpdateActionType in this account and region.
    pub action_type_updates: Tracked<BTreeMap<ActionTypeId, ActionTypeDeclaration>>,
    /// Webhooks by name.
    pub webhooks: Tracked<BTreeMap<String, WebhookRecord>>,
    /// Partner (ThirdParty) action types registered through the emulator, run by job workers.
    pub third_party_types: Tracked<BTreeMap<ActionTypeId, ThirdPartyRecord>>,
    /// Jobs of deleted pipelines.
    pub retired_jobs: Tracked<RetiredJobs>,
    /// What source actions read: S3 objects, ECR image tags and git repositories, as source changes left them.
    pub sources: Tracked<sources::Sources>,
    /// The effects of the current write, released once it is saved (never saved itself).
    pub outbox: outbox::Outbox,
}

/// The ids of jobs whose pipeline was deleted: AWS accepts (and ignores) a result for one \[NATIVE\], where an id
/// it never handed out is refused. The newest [`RetiredJobs::LIMIT`] are remembered.
#[derive(Debug, Default, Clone)]
pub struct RetiredJobs {
    pub(crate) order: VecDeque<uuid::Uuid>,
    ids: std::collections::HashSet<uuid::Uuid>,
}

impl RetiredJobs {
    /// How many retired job ids a partition remembers.
    pub const LIMIT: usize = 10_000;

    /// Remembers these jobs as retired, forgetting the oldest beyond the limit.
    pub fn retire(&mut self, jobs: impl IntoIterator<Item = uuid::Uuid>) {
        for id in jobs {
            if self.ids.insert(id) {
                self.order.push_back(id);
            }
        }
        while self.order.len() > Self::LIMIT {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether this job belonged to a deleted pipeline.
    pub fn contains(&self, id: &uuid::Uuid) -> bool {
        self.ids.contains(id)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// A partner action type and the credentials its job worker presents.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThirdPartyRecord {
    pub action_type: ActionType,
    pub client_id: uuid::Uuid,
    pub client_token: String,
}

impl PartitionData {
    /// Whether the partition holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
            && self.custom_action_types.is_empty()
            && self.deleted_custom_action_types.is_empty()
            && self.action_type_updates.is_empty()
            && self.webhooks.is_empty()
            && self.third_party_types.is_empty()
            && self.retired_jobs.is_empty()
            && self.sources.is_empty()
    }

    /// The action type with this id as this account sees it: its custom types, or the built-in catalogue with any
    /// UpdateActionType applied.
    pub fn action_type<'a>(&'a self, catalogue: &'a Catalogue, id: &ActionTypeId) -> Option<Cow<'a, ActionType>> {
        match id.owner {
            ActionOwner::Custom => self.custom_action_types.get(id).map(|r| Cow::Borrowed(&r.action_type)),
            ActionOwner::ThirdParty if self.third_party_types.contains_key(id) => {
                self.third_party_types.get(id).map(|r| Cow::Borrowed(&r.action_type))
            }
            owner => match self.action_type_updates.get(id) {
                Some(updated) => Some(Cow::Owned(updated.to_action_type(owner))),
                None => catalogue.action_type(id).map(Cow::Borrowed),
            },
        }
    }

    /// The action type with this id as served in `region`: a built-in type's URL templates name that region
    /// ([`ActionType::in_region`]); custom, partner and updated types are as their owner wrote them.
    pub fn action_type_in<'a>(
        &'a self,
        catalogue: &'a Catalogue,
        id: &ActionTypeId,
        region: &str,
    ) -> Option<Cow<'a, ActionType>> {
        let found = self.action_type(catalogue, id)?;
        let regional = self.serves_catalogue_entry(id) && region != catalogue::RECORDED_REGION;
        Some(if regional { Cow::Owned(found.in_region(region)) } else { found })
    }

    /// The URL templates of the action type with this id as served in `region` (as [`PartitionData::action_type_in`],
    /// without copying the rest of the type).
    pub fn settings_in(&self, catalogue: &Catalogue, id: &ActionTypeId, region: &str) -> Option<ActionTypeSettings> {
        let found = self.action_type(catalogue, id)?;
        let settings = found.settings.as_ref()?;
        let regional = self.serves_catalogue_entry(id) && region != catalogue::RECORDED_REGION;
        Some(if regional { settings.in_region(region) } else { settings.clone() })
    }

    /// Whether [`PartitionData::action_type`] answers for this id with the built-in catalogue's entry: not a custom
    /// type, not a registered partner type, not changed by UpdateActionType.
    fn serves_catalogue_entry(&self, id: &ActionTypeId) -> bool {
        match id.owner {
            ActionOwner::Custom => false,
            ActionOwner::ThirdParty if self.third_party_types.contains_key(id) => false,
            _ => !self.action_type_updates.contains_key(id),
        }
    }
}

/// A pipeline's runtime state, readable by all (it dereferences to [`execution::PipelineRuntime`]) and writable
/// only by the engine, the one writer of running pipelines: [`Runtime::write`] needs a
/// [`Writer`](crate::engine::Writer), which only the engine can make. Outside the engine, a change does not compile:
///
/// ```compile_fail
/// fn outside_the_engine(record: &mut codepipeline_local::state::PipelineRecord) {
///     record.runtime.jobs.clear();
/// }
/// ```
///
/// Nor does replacing it whole: only a new pipeline record makes a fresh one.
///
/// ```compile_fail
/// use codepipeline_local::state::{PipelineRecord, Runtime};
/// fn outside_the_engine(record: &mut PipelineRecord) {
///     record.runtime = Runtime::default();
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Runtime(execution::PipelineRuntime);

impl Runtime {
    /// The runtime of a pipeline that has not run yet.
    fn fresh() -> Runtime {
        Runtime(execution::PipelineRuntime::default())
    }

    /// The runtime, to change it.
    pub fn write(&mut self, _: &crate::engine::Writer) -> &mut execution::PipelineRuntime {
        &mut self.0
    }

    /// A runtime as the store loaded it.
    pub(crate) fn restored(runtime: execution::PipelineRuntime) -> Runtime {
        Runtime(runtime)
    }

    /// The runtime, for the store only: to take the change marks of what it saves (never to change what runs).
    pub(crate) fn for_saving(&mut self) -> &mut execution::PipelineRuntime {
        &mut self.0
    }
}

impl std::ops::Deref for Runtime {
    type Target = execution::PipelineRuntime;

    fn deref(&self) -> &execution::PipelineRuntime {
        &self.0
    }
}

/// How many versions of a pipeline GetPipeline can read: AWS keeps the 10 latest (boto/boto3#3760). An older
/// version lives on only while an execution still holds it.
pub const KEPT_VERSIONS: usize = 10;

/// A pipeline and its latest versions.
#[derive(Debug, Clone)]
pub struct PipelineRecord {
    pub arn: String,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// The latest versions, oldest first, at most [`KEPT_VERSIONS`]; the last is the current one. Never empty.
    pub(crate) versions: VecDeque<Arc<Definition>>,
    pub tags: Tags,
    /// Executions, transitions and everything else that runs.
    /// Its executions and what they share. Anyone reads them; only the engine changes them ([`Runtime::write`]).
    pub runtime: Runtime,
    /// Whether the current version is not saved yet (persistence saves each version once).
    pub(crate) version_unsaved: bool,
    /// GetPipeline's `metadata` as JSON, with the creation and update times it was made for: made at the first read
    /// after the pipeline was created or updated.
    pub(crate) shown_metadata: std::sync::OnceLock<(Timestamp, Timestamp, Box<str>)>,
}

impl PipelineRecord {
    /// A new pipeline whose version 1 is `first`.
    pub fn new(arn: String, now: Timestamp, first: Arc<Definition>, tags: Tags) -> PipelineRecord {
        PipelineRecord {
            arn,
            created: now,
            updated: now,
            versions: VecDeque::from([first]),
            tags,
            runtime: Runtime::fresh(),
            version_unsaved: true,
            shown_metadata: std::sync::OnceLock::new(),
        }
    }

    /// The current (latest) version.
    pub fn current(&self) -> &Arc<Definition> {
        // A record is created with its first version, and the latest version is never dropped.
        &self.versions[self.versions.len() - 1]
    }

    /// The number of the current version.
    pub fn version(&self) -> i32 {
        self.current().number()
    }

    /// Makes `next` the current version; beyond [`KEPT_VERSIONS`], the oldest is forgotten.
    pub fn push_version(&mut self, next: Arc<Definition>, now: Timestamp) {
        self.versions.push_back(next);
        self.version_unsaved = true;
        while self.versions.len() > KEPT_VERSIONS {
            self.versions.pop_front();
        }
        self.updated = now;
        self.shown_metadata = std::sync::OnceLock::new();
    }

    /// GetPipeline's `metadata` as JSON, which `make` writes: made once after each creation or update and kept (a
    /// record whose times changed otherwise gets it made afresh).
    pub fn shown_metadata(&self, make: impl Fn(&PipelineRecord) -> String) -> Cow<'_, str> {
        let (created, updated, json) = self.shown_metadata.get_or_init(|| {
            let json = make(self).into_boxed_str();
            (self.created, self.updated, json)
        });
        if (*created, *updated) == (self.created, self.updated) { Cow::Borrowed(json) } else { Cow::Owned(make(self)) }
    }

    /// A given version, if it is one of the kept ones.
    pub fn at_version(&self, version: i32) -> Option<&Arc<Definition>> {
        self.versions.iter().find(|v| v.number() == version)
    }
}

/// Where a secret configuration value sits: (stage index, action index, configuration key).
pub type SecretRef = (usize, usize, String);

/// Whether `secrets` names configuration `key` of action `action` in stage `stage`.
pub fn is_secret(secrets: &[SecretRef], stage: usize, action: usize, key: &str) -> bool {
    secrets.iter().any(|(s, a, k)| *s == stage && *a == action && k == key)
}

/// A compiled `MATCHES` pattern of a VariableCheck rule: (stage index, condition, rule index, pattern).
pub type PatternRef = (usize, declaration::ConditionKind, usize, regex::Regex);

/// One version of a pipeline as stored and run, shared by the pipeline and every execution of it: the declaration
/// with AWS's defaults filled and secrets in clear, and what checking it found out. It reads as the declaration.
#[derive(Debug)]
pub struct Definition {
    declaration: PipelineDeclaration,
    /// Every secret configuration value: masked wherever the declaration is shown outside job data.
    pub(crate) secrets: Box<[SecretRef]>,
    /// The `MATCHES` patterns of its VariableCheck rules, compiled once when the version was created.
    pub(crate) patterns: Box<[PatternRef]>,
    /// The declaration as GetPipeline shows it, as JSON: made at the first read and kept, since a version never
    /// changes (the hot path of GetPipeline then serializes nothing but the metadata).
    shown: std::sync::OnceLock<Box<str>>,
    /// Its trigger filters' globs, each compiled once.
    globs: glob::GlobCache,
}

impl std::ops::Deref for Definition {
    type Target = PipelineDeclaration;

    fn deref(&self) -> &PipelineDeclaration {
        &self.declaration
    }
}

impl Definition {
    /// A version: `declaration` with its defaults filled, its secrets, and its compiled patterns.
    pub fn new(declaration: PipelineDeclaration, secrets: Vec<SecretRef>, patterns: Vec<PatternRef>) -> Definition {
        Definition {
            declaration,
            secrets: secrets.into_boxed_slice(),
            patterns: patterns.into_boxed_slice(),
            shown: std::sync::OnceLock::new(),
            globs: glob::GlobCache::default(),
        }
    }

    /// A stand-in for a definition not attached yet (an execution as deserialized, before
    /// `crate::store` attaches the version it runs). Never seen outside loading.
    pub fn placeholder() -> Arc<Definition> {
        static EMPTY: LazyLock<Arc<Definition>> = LazyLock::new(|| {
            Arc::new(Definition::new(
                PipelineDeclaration {
                    name: String::new(),
                    role_arn: String::new(),
                    artifact_store: None,
                    artifact_stores: None,
                    stages: Vec::new(),
                    version: None,
                    execution_mode: None,
                    pipeline_type: None,
                    variables: None,
                    triggers: None,
                },
                Vec::new(),
                Vec::new(),
            ))
        });
        Arc::clone(&EMPTY)
    }

    /// The version's number.
    pub fn number(&self) -> i32 {
        self.declaration.version.unwrap_or(1)
    }

    /// The declaration, secrets in clear.
    pub fn declaration(&self) -> &PipelineDeclaration {
        &self.declaration
    }

    /// Whether configuration `key` of action `action` in stage `stage` holds a secret.
    pub fn is_secret(&self, stage: usize, action: usize, key: &str) -> bool {
        is_secret(&self.secrets, stage, action, key)
    }

    /// The declaration as GetPipeline shows it: secret values masked. Shared, not copied, when there are none.
    pub fn echo(&self) -> Cow<'_, PipelineDeclaration> {
        if self.secrets.is_empty() {
            return Cow::Borrowed(&self.declaration);
        }
        let mut copy = self.declaration.clone();
        for (stage, action, key) in self.secrets.iter() {
            let value = copy
                .stages
                .get_mut(*stage)
                .and_then(|s| s.actions.get_mut(*action))
                .and_then(|a| a.configuration.as_mut())
                .and_then(|c| c.get_mut(key));
            if let Some(value) = value {
                *value = SECRET_MASK.to_string();
            }
        }
        Cow::Owned(copy)
    }

    /// The declaration as GetPipeline shows it, as JSON: secrets masked, and the triggers AWS adds to a V2 pipeline
    /// that declares none ([`PipelineDeclaration::default_triggers`]). Serialized once per version.
    pub fn shown_json(&self) -> &str {
        self.shown.get_or_init(|| {
            let mut pipeline = self.echo();
            if let Some(defaults) = pipeline.default_triggers() {
                pipeline.to_mut().triggers = Some(defaults);
            }
            // A declaration is plain data (string keys, no floats), so this cannot fail.
            serde_json::to_string(&pipeline).unwrap_or_default().into_boxed_str()
        })
    }

    /// The globs of the version's trigger filters, compiled once each.
    pub fn globs(&self) -> &glob::GlobCache {
        &self.globs
    }

    /// The compiled `MATCHES` pattern of rule `rule` of stage `stage`'s condition of `kind`.
    pub fn pattern(&self, stage: usize, kind: declaration::ConditionKind, rule: usize) -> Option<&regex::Regex> {
        self.patterns.iter().find(|(s, k, r, _)| *s == stage && *k == kind && *r == rule).map(|(_, _, _, p)| p)
    }
}

/// How secret configuration values are shown outside job data.
pub const SECRET_MASK: &str = "****";

/// A secret sent back masked in an action that changed otherwise: the stored secret does not carry over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedSecret {
    pub stage: String,
    pub action: String,
    /// The secret configuration key sent back masked.
    pub key: String,
}

/// Whether a configuration value is the mask a secret is shown as.
pub fn is_mask(value: &str) -> bool {
    value.trim() == SECRET_MASK
}

/// On update, a secret sent back masked keeps the stored value, but only when nothing else of its action changed
/// ("passing **** without changing any other values of the action preserves the previous value", model
/// documentation of `secret`). The action is found by stage and action name; if its type, any other configuration
/// value or any other member differs, the stored secret does not carry over and the update is refused, so that a
/// caller who only ever saw **** cannot move a secret somewhere it can read it back. A masked value for an action
/// that is new is kept as it is.
pub fn restore_secrets(
    pipeline: &mut PipelineDeclaration,
    secrets: &[SecretRef],
    previous: &PipelineDeclaration,
) -> Result<(), MovedSecret> {
    for (stage_index, stage) in pipeline.stages.iter_mut().enumerate() {
        for (action_index, action) in stage.actions.iter_mut().enumerate() {
            let masked: Vec<&String> = action
                .configuration
                .iter()
                .flatten()
                .filter(|(key, value)| is_mask(value) && is_secret(secrets, stage_index, action_index, key))
                .map(|(key, _)| key)
                .collect();
            if masked.is_empty() {
                continue;
            }
            let Some(stored) = previous
                .stages
                .iter()
                .find(|s| s.name == stage.name)
                .and_then(|s| s.actions.iter().find(|a| a.name == action.name))
            else {
                continue;
            };
            let mut restored = action.clone();
            let stored_config = stored.configuration.as_ref();
            let mut complete = true;
            for key in &masked {
                match (
                    restored.configuration.as_mut().and_then(|c| c.get_mut(*key)),
                    stored_config.and_then(|c| c.get(*key)),
                ) {
                    (Some(value), Some(secret)) => value.clone_from(secret),
                    _ => complete = false,
                }
            }
            if !complete || &restored != stored {
                return Err(MovedSecret {
                    stage: stage.name.clone(),
                    action: action.name.clone(),
                    key: masked[0].clone(),
                });
            }
            *action = restored;
        }
    }
    Ok(())
}

/// A custom action type of the account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomActionTypeRecord {
    pub action_type: ActionType,
    pub arn: String,
    pub tags: Tags,
}

/// A webhook.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRecord {
    /// The definition as given, secret token included (it is never returned in clear).
    pub definition: WebhookDefinition,
    /// The id in the webhook's URL; a webhook re-created after deletion gets a new one.
    pub id: String,
    pub url: String,
    pub arn: String,
    pub tags: Tags,
    pub last_triggered: Option<Timestamp>,
    /// Whether RegisterWebhookWithThirdParty was called (and not undone by DeregisterWebhookWithThirdParty).
    pub registered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_metadata_is_made_again_after_an_update() {
        let mut record =
            PipelineRecord::new("arn".into(), Timestamp::from_millis(1_000), Definition::placeholder(), Tags::new());
        let shown = |record: &PipelineRecord| record.shown_metadata(|r| format!("{}", r.updated.millis())).into_owned();
        assert_eq!(shown(&record), "1000");
        assert_eq!(shown(&record), "1000", "kept");
        record.push_version(Definition::placeholder(), Timestamp::from_millis(2_000));
        assert_eq!(shown(&record), "2000", "made again after an update");
        record.updated = Timestamp::from_millis(3_000);
        assert_eq!(shown(&record), "3000", "times changed otherwise: made afresh");
    }
}
