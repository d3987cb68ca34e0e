//! The in-memory model of everything the emulator holds, partitioned by (account, region).
//!
//! A [`Store`] maps each [`Scope`] to a [`Partition`]. All resources of one partition (pipelines, and with later
//! issues executions, jobs, webhooks) sit behind a single mutex: operations routinely change several of them at
//! once, and one lock makes every such change atomic, so an error can never leave state half-applied. Critical
//! sections are short and synchronous; nothing awaits while holding the lock, and no method hands a guard out.
//! Partitions are independent, so traffic to different accounts or regions never contends.

pub mod catalogue;
pub mod clock;
pub mod commit;
pub mod declaration;
pub mod document;
pub mod execution;
pub mod outbox;
pub mod sources;
pub mod tracked;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use self::catalogue::{ActionType, ActionTypeDeclaration, ActionTypeSettings, Catalogue};
pub use self::clock::{Clock, Timestamp};
use self::declaration::{ActionOwner, ActionTypeId, PipelineDeclaration, WebhookDefinition};
use self::tracked::{Tracked, TrackedMap};
pub use crate::protocol::identity::Scope;

/// All emulator state.
#[derive(Debug, Default)]
pub struct Store {
    partitions: DashMap<Scope, Arc<Partition>>,
    clock: Clock,
    /// The database every write is saved to before it is answered (with `--data-dir`), and its commit thread.
    committer: Option<commit::Committer>,
    /// Held shared by every write and exclusively while the whole state is replaced or reset, so no write saves
    /// into a database being replaced.
    gate: RwLock<()>,
    /// The sequence number the next event gets (shared with the engine's event hub, saved with every write).
    next_event: Arc<AtomicU64>,
}

/// A change that could not be saved (the data directory is full or failing): nothing of it was made, in memory or
/// on disk. Answered as a retryable 503 `ServiceUnavailableException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// For callers that only care whether a change was made.
impl From<Unavailable> for () {
    fn from(_: Unavailable) {}
}

impl Store {
    /// An empty store, kept in memory only.
    pub fn new() -> Store {
        Store { next_event: Arc::new(AtomicU64::new(1)), ..Store::default() }
    }

    /// A store kept in `storage`, holding what `document` (loaded from it) holds.
    pub fn with_storage(storage: crate::storage::Storage, document: document::Document) -> Result<Store, String> {
        let mut store = Store::new();
        store.committer = Some(commit::Committer::start(storage, Arc::clone(&store.next_event))?);
        let (offset, next_event) = (document.clock_offset_millis, document.next_event_sequence);
        store.put_in_place(document.into_partitions()?, offset, next_event);
        Ok(store)
    }

    /// Puts checked partitions, the clock offset and the event sequence in place of what the store held (the
    /// sequence never goes back, so a stream reader's `Last-Event-ID` stays meaningful).
    fn put_in_place(&self, partitions: Vec<(Scope, PartitionData)>, offset: i64, next_event: Option<u64>) {
        self.partitions.clear();
        for (scope, mut data) in partitions {
            data.forget_unsaved();
            if !data.is_empty() {
                self.partitions.insert(scope.clone(), Arc::new(Partition::new(scope, data)));
            }
        }
        self.clock.set_offset(offset);
        if let Some(next_event) = next_event {
            self.next_event.fetch_max(next_event, Ordering::AcqRel);
        }
    }

    /// The emulator clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The database the state is kept in, if any.
    pub fn storage(&self) -> Option<&crate::storage::Storage> {
        self.committer.as_ref().map(commit::Committer::storage)
    }

    /// Runs `future` (a request's handling), noting the changes being saved that its answer depends on: the
    /// writes it made and those it read before they were committed. Hand them to [`Store::durable`].
    pub async fn tracking<F: Future>(&self, future: F) -> (F::Output, commit::Dependencies) {
        match &self.committer {
            Some(_) => commit::tracking(future).await,
            None => (future.await, commit::Dependencies::default()),
        }
    }

    /// Waits until the changes a request depends on are on disk; [`Unavailable`] if one of its own could not be
    /// saved (then it was not made either: its partition was reloaded from the database).
    pub async fn durable(&self, dependencies: &commit::Dependencies) -> Result<(), Unavailable> {
        match &self.committer {
            Some(committer) if !dependencies.is_empty() => committer.durable(dependencies).await,
            _ => Ok(()),
        }
    }

    /// Changes each time a save fails (and partitions are reloaded), so that the engine picks their pipelines up
    /// anew; `None` in memory, where saves never fail.
    pub fn save_failures(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.committer.as_ref().map(commit::Committer::failures)
    }

    /// The counter the event hub numbers events with, so that the sequence is saved and restored with the state.
    pub fn event_sequence(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.next_event)
    }

    fn gate_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    fn gate_exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with exclusive access to the partition of `scope`, then queues the partition for saving what `f`
    /// changed (with a data directory). The current request's answer waits for that commit ([`Store::durable`]); if
    /// it fails, the change is undone and the answer is a 503. A scope that holds nothing yet gets a partition only if `f` leaves
    /// something in it, so a request that changes nothing (a no-op delete, a refused write) costs no memory.
    /// [`Unavailable`] at once if the partition cannot be used (its reload after a failed save failed too).
    pub fn write<R>(&self, scope: &Scope, f: impl FnOnce(&mut PartitionData) -> R) -> Result<R, Unavailable> {
        let (result, ticket) = self.write_queued(scope, f)?;
        if let Some(ticket) = ticket {
            commit::wrote(ticket);
        }
        Ok(result)
    }

    /// [`Store::write`], blocking until the change is on disk: for changes made outside requests that must know
    /// (start-up configuration).
    pub fn write_durably<R>(&self, scope: &Scope, f: impl FnOnce(&mut PartitionData) -> R) -> Result<R, Unavailable> {
        let (result, ticket) = self.write_queued(scope, f)?;
        if let (Some(committer), Some(ticket)) = (&self.committer, ticket) {
            committer.wait(ticket)?;
        }
        Ok(result)
    }

    fn write_queued<R>(
        &self,
        scope: &Scope,
        f: impl FnOnce(&mut PartitionData) -> R,
    ) -> Result<(R, Option<u64>), Unavailable> {
        let _gate = self.gate_shared();
        // Clone the Arc out so the DashMap shard lock is released before the partition lock is taken.
        let existing = self.partitions.get(scope).map(|p| Arc::clone(p.value()));
        let partition = match existing {
            Some(partition) => partition,
            None => match self.partitions.entry(scope.clone()) {
                Entry::Occupied(entry) => Arc::clone(entry.get()),
                // The vacant entry keeps the shard locked while `f` runs, so a concurrent first write to the same
                // scope waits for this one instead of writing to a copy that would be lost. `f` never touches the
                // store itself (no method hands a guard out), so this cannot deadlock.
                Entry::Vacant(entry) => {
                    let mut data = PartitionData::default();
                    let result = f(&mut data);
                    if data.is_empty() {
                        // Nothing was kept, so nothing is saved: what it sends out leaves now.
                        data.outbox.take().release();
                        return Ok((result, None));
                    }
                    let partition = Arc::new(Partition::new(scope.clone(), data));
                    let ticket = self.queue(&partition, &mut partition.lock());
                    entry.insert(partition);
                    return Ok((result, ticket));
                }
            },
        };
        let mut data = partition.lock();
        self.refresh(&partition, &mut data)?;
        let result = f(&mut data);
        let ticket = self.queue(&partition, &mut data);
        Ok((result, ticket))
    }

    /// Queues a partition whose rows changed for saving, with the effects of the write (or, kept in memory only,
    /// forgets the marks and releases the effects at once); returns the ticket of the commit to wait for. Call it
    /// under the partition's lock, so that one partition's effects leave in the order of its changes.
    fn queue(&self, partition: &Arc<Partition>, data: &mut PartitionData) -> Option<u64> {
        let effects = data.outbox.take();
        let Some(committer) = &self.committer else {
            data.forget_unsaved();
            effects.release();
            return None;
        };
        // Effects with nothing new to save still wait for the commits before them (they may describe changes still
        // being saved): a ticket of their own keeps them in line.
        if !data.has_unsaved() && effects.is_empty() {
            return None;
        }
        let ticket = committer.enqueue(partition, partition.epoch.load(Ordering::Acquire), effects);
        partition.last_ticket.store(ticket, Ordering::Release);
        Some(ticket)
    }

    /// Reloads a partition from the database if a save of its changes failed since it was last loaded. Call it
    /// under the partition's lock.
    fn refresh(&self, partition: &Partition, data: &mut PartitionData) -> Result<(), Unavailable> {
        let Some(committer) = &self.committer else { return Ok(()) };
        let scope = &partition.scope;
        let due = partition.valid_from.load(Ordering::Acquire);
        if partition.epoch.load(Ordering::Acquire) >= due {
            return Ok(());
        }
        match committer.storage().load_partition(scope) {
            Ok(mut restored) => {
                restored.forget_unsaved();
                *data = restored;
                partition.epoch.store(due, Ordering::Release);
                partition.last_ticket.store(0, Ordering::Release);
                tracing::warn!(account = %scope.account, region = %scope.region, "reloaded after a failed save");
                Ok(())
            }
            Err(e) => {
                tracing::error!(account = %scope.account, region = %scope.region, "reloading failed: {e}");
                Err(Unavailable(format!("The emulator could not reload its state after a failed save: {e}")))
            }
        }
    }

    /// Saves a setting (clock offset, behaviour rules) with a data directory.
    pub fn save_setting(&self, key: &str, value: &str) -> Result<(), Unavailable> {
        match self.storage() {
            Some(storage) => storage.save_meta(key, value),
            None => Ok(()),
        }
    }

    /// Runs `f` with read access to the partition of `scope`. A scope that never stored anything reads as empty
    /// and is not created, so reads from arbitrary regions cost no memory.
    pub fn read<R>(&self, scope: &Scope, f: impl FnOnce(&PartitionData) -> R) -> R {
        static EMPTY: LazyLock<PartitionData> = LazyLock::new(PartitionData::default);
        let partition = self.partitions.get(scope).map(|p| Arc::clone(p.value()));
        let Some(partition) = partition else { return f(&EMPTY) };
        let mut data = partition.lock();
        // If the reload fails, the read shows what memory holds (the error is logged; writes fail until it works).
        let _ = self.refresh(&partition, &mut data);
        if let Some(committer) = &self.committer {
            // What this read sees must be on disk before it is answered.
            let last = partition.last_ticket.load(Ordering::Acquire);
            if last > 0 && !committer.is_done(last) {
                commit::saw(last);
            }
        }
        f(&data)
    }

    /// The whole state as a document; `mask` hides secrets.
    pub fn export(&self, behaviors: Vec<crate::engine::behaviors::BehaviorRule>, mask: bool) -> document::Document {
        let _gate = self.gate_exclusive();
        let mut scopes = self.scopes();
        scopes.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        let partitions = scopes.iter().map(|scope| self.read(scope, |data| data.to_document(scope, mask))).collect();
        document::Document {
            format: document::FORMAT.to_string(),
            version: document::VERSION,
            clock_offset_millis: self.clock.offset_millis(),
            next_event_sequence: Some(self.next_event.load(Ordering::Acquire)),
            behaviors: Some(behaviors),
            partitions,
        }
    }

    /// Replaces the whole state with a document's, all or nothing: it is checked whole first, then saved (with a
    /// data directory) in one transaction, then put in place. Returns the behaviour rules it names, if any.
    pub fn import(
        &self,
        document: document::Document,
    ) -> Result<Option<Vec<crate::engine::behaviors::BehaviorRule>>, ImportError> {
        let offset = document.clock_offset_millis;
        let sequence = document.next_event_sequence;
        let behaviors = document.behaviors.clone();
        let mut partitions = document.into_partitions().map_err(ImportError::Invalid)?;
        let _gate = self.gate_exclusive();
        let next_event = sequence.unwrap_or(0).max(self.next_event.load(Ordering::Acquire));
        if let Some(committer) = &self.committer {
            committer.flush();
            let storage = committer.storage();
            let mut meta = vec![(crate::storage::META_CLOCK_OFFSET, offset.to_string())];
            if let Some(rules) = &behaviors {
                meta.push((crate::storage::META_BEHAVIORS, serde_json::to_string(rules).unwrap_or_default()));
            }
            storage.replace_all(&mut partitions, &meta, next_event).map_err(ImportError::Unavailable)?;
        }
        self.put_in_place(partitions, offset, Some(next_event));
        Ok(behaviors)
    }

    /// Drops every resource of every account and region, and resets the clock.
    pub fn reset(&self) -> Result<(), Unavailable> {
        let _gate = self.gate_exclusive();
        if let Some(committer) = &self.committer {
            committer.flush();
            committer.storage().delete(&[], true)?;
        }
        self.partitions.clear();
        self.clock.reset();
        Ok(())
    }

    /// Drops every resource of the accounts and regions `selected` picks (the clock, shared by all, stays); returns
    /// how many partitions were dropped.
    pub fn reset_where(&self, selected: impl Fn(&Scope) -> bool) -> Result<usize, Unavailable> {
        let _gate = self.gate_exclusive();
        let chosen: Vec<Scope> = self.scopes().into_iter().filter(|s| selected(s)).collect();
        if let Some(committer) = &self.committer {
            committer.flush();
            committer.storage().delete(&chosen, false)?;
        }
        for scope in &chosen {
            self.partitions.remove(scope);
        }
        Ok(chosen.len())
    }

    /// The accounts and regions that hold state.
    pub fn scopes(&self) -> Vec<Scope> {
        self.partitions.iter().map(|entry| entry.key().clone()).collect()
    }

    /// How many partitions hold state.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }
}

/// Why `PUT /_emulator/state` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unavailable(Unavailable),
}

/// The state of one (account, region).
#[derive(Debug)]
pub struct Partition {
    scope: Scope,
    data: Mutex<PartitionData>,
    /// How many times the partition was reloaded from the database after a failed save (changed under the lock).
    epoch: AtomicU64,
    /// The epoch the partition must be at to be used: a failed save raises it past the current one, so the next
    /// user reloads it first (see `commit`).
    valid_from: AtomicU64,
    /// The ticket of the last change queued for saving, 0 if none since the last reload (changed under the lock).
    last_ticket: AtomicU64,
}

impl Partition {
    fn new(scope: Scope, data: PartitionData) -> Partition {
        Partition {
            scope,
            data: Mutex::new(data),
            epoch: AtomicU64::new(0),
            valid_from: AtomicU64::new(0),
            last_ticket: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PartitionData> {
        // A poisoned lock means a handler panicked mid-update. Handlers validate before they mutate, so the data
        // is still consistent; keep serving rather than failing every later request.
        self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

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
    order: VecDeque<uuid::Uuid>,
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
    versions: VecDeque<Arc<Definition>>,
    pub tags: Tags,
    /// Executions, transitions and everything else that runs.
    /// Its executions and what they share. Anyone reads them; only the engine changes them ([`Runtime::write`]).
    pub runtime: Runtime,
    /// Whether the current version is not saved yet (persistence saves each version once).
    version_unsaved: bool,
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
    secrets: Box<[SecretRef]>,
    /// The `MATCHES` patterns of its VariableCheck rules, compiled once when the version was created.
    patterns: Box<[PatternRef]>,
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
        Definition { declaration, secrets: secrets.into_boxed_slice(), patterns: patterns.into_boxed_slice() }
    }

    /// A stand-in for a definition not attached yet (an execution as deserialized, before
    /// `crate::storage` attaches the version it runs). Never seen outside loading.
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
fn is_mask(value: &str) -> bool {
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

    fn scope(account: &str, region: &str) -> Scope {
        Scope { account: account.into(), region: region.into() }
    }

    #[test]
    fn reads_do_not_create_partitions() {
        let store = Store::new();
        let count = store.read(&scope("000000000000", "xx-nowhere-1"), |data| data.pipelines.len());
        assert_eq!(count, 0);
        assert_eq!(store.partition_count(), 0);
        store.write(&scope("000000000000", "us-east-1"), |_| ()).expect("saved");
        assert_eq!(store.partition_count(), 0, "a write that leaves nothing creates nothing");
        store.write(&scope("000000000000", "us-east-1"), |data| data.webhooks.is_empty()).expect("saved");
        assert_eq!(store.partition_count(), 0);
    }

    #[test]
    fn a_first_write_that_stores_something_creates_the_partition() {
        let store = Store::new();
        let here = scope("000000000000", "us-east-1");
        store.write(&here, |data| data.deleted_custom_action_types.insert(custom_id())).expect("saved");
        assert_eq!(store.partition_count(), 1);
        assert!(store.read(&here, |data| !data.deleted_custom_action_types.is_empty()));
    }

    #[test]
    fn concurrent_first_writes_to_one_scope_all_land() {
        let store = Arc::new(Store::new());
        let here = scope("000000000000", "us-east-1");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (store, here) = (Arc::clone(&store), here.clone());
                std::thread::spawn(move || {
                    let mut id = custom_id();
                    id.version = i.to_string();
                    store.write(&here, |data| data.deleted_custom_action_types.insert(id)).expect("saved");
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("joins");
        }
        assert_eq!(store.read(&here, |data| data.deleted_custom_action_types.len()), 8);
    }

    fn custom_id() -> ActionTypeId {
        ActionTypeId {
            category: declaration::ActionCategory::Build,
            owner: ActionOwner::Custom,
            provider: "P".into(),
            version: "1".into(),
        }
    }

    /// A store kept in a fresh directory whose database may not grow beyond `max_bytes`.
    fn stored(name: &str, max_bytes: u64) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("cpl-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = crate::storage::Options { dir: dir.clone(), full_sync: false, max_bytes: Some(max_bytes) };
        let (storage, document) = crate::storage::Storage::open(&options).expect("opens");
        (Store::with_storage(storage, document).expect("loads"), dir)
    }

    fn long_id(i: usize) -> ActionTypeId {
        ActionTypeId { version: format!("{i}-{}", "x".repeat(400)), ..custom_id() }
    }

    #[test]
    fn a_failed_save_undoes_the_change_and_every_change_built_on_it() {
        let (store, dir) = stored("failed", 256 * 1024);
        let here = scope("000000000000", "us-east-1");
        let mut saved = 0;
        while store.write_durably(&here, |data| data.deleted_custom_action_types.insert(long_id(saved))).is_ok() {
            saved += 1;
            assert!(saved < 10_000, "the database never filled up");
        }
        // The refused change is not in memory either.
        assert_eq!(store.read(&here, |data| data.deleted_custom_action_types.len()), saved);
        // A change that cannot be saved, and one that frees a little made on top of it before its commit failed:
        // both fail, although the second alone would fit (committed together, they still do not).
        let (_, growing) = store
            .write_queued(&here, |data| {
                let id = ActionTypeId { version: format!("big-{}", "y".repeat(4_000)), ..custom_id() };
                data.deleted_custom_action_types.insert(id)
            })
            .expect("queued");
        let (_, shrinking) =
            store.write_queued(&here, |data| data.deleted_custom_action_types.remove(&long_id(0))).expect("queued");
        let committer = store.committer.as_ref().expect("a database");
        assert!(committer.wait(growing.expect("a ticket")).is_err());
        assert!(committer.wait(shrinking.expect("a ticket")).is_err());
        // Once reloaded, the partition holds what the database holds, and the smaller change alone is saved.
        assert!(store.read(&here, |data| data.deleted_custom_action_types.contains(&long_id(0))));
        store.write_durably(&here, |data| data.deleted_custom_action_types.remove(&long_id(0))).expect("saved");
        let on_disk = store.storage().expect("a database").load_partition(&here).expect("loads");
        assert_eq!(on_disk.deleted_custom_action_types.len(), saved - 1);
        assert_eq!(store.read(&here, |data| data.deleted_custom_action_types.len()), saved - 1);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn concurrent_writes_to_two_partitions_all_land() {
        let (store, dir) = stored("concurrent", 64 * 1024 * 1024);
        let store = Arc::new(store);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let here = scope("000000000000", if t % 2 == 0 { "us-east-1" } else { "eu-west-1" });
                        let id = ActionTypeId { version: format!("{t}-{i}"), ..custom_id() };
                        store.write_durably(&here, |data| data.deleted_custom_action_types.insert(id)).expect("saved");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("joins");
        }
        for region in ["us-east-1", "eu-west-1"] {
            let here = scope("000000000000", region);
            let on_disk = store.storage().expect("a database").load_partition(&here).expect("loads");
            assert_eq!(on_disk.deleted_custom_action_types.len(), 200);
        }
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn reset_drops_everything() {
        let store = Store::new();
        store
            .write(&scope("000000000000", "us-east-1"), |data| data.deleted_custom_action_types.insert(custom_id()))
            .expect("saved");
        store.clock().advance(5_000);
        store.reset().expect("reset");
        assert_eq!(store.partition_count(), 0);
        assert_eq!(store.clock().offset_millis(), 0);
    }
}
