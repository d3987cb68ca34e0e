//! Keeping the state: the [`Store`] of every partition, with the clock, the gate, the epochs and the event sequence;
//! export, import and reset; the group commit ([`commit`]) that saves the rows writes marked ([`document`], in the
//! SQLite database of [`sqlite`]) and releases their effects once saved.
//!
//! A [`Store`] maps each [`Scope`] to a [`Partition`]. All resources of one partition sit behind a single mutex:
//! operations routinely change several of them at once, and one lock makes every such change atomic, so an error
//! can never leave state half-applied. Critical sections are short and synchronous; nothing awaits while holding the
//! lock, and no method hands a guard out. Partitions are independent, so traffic to different accounts or regions
//! never contends.

pub mod commit;
pub mod document;
pub mod sqlite;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures_util::FutureExt;
use futures_util::future::Either;

use crate::protocol::{ApiError, ErrorCode};
use crate::state::behaviors::BehaviorRule;
use crate::state::{Clock, PartitionData, Scope};

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

/// A change that could not be saved is answered as AWS answers a retryable failure of its own.
impl From<Unavailable> for ApiError {
    fn from(unavailable: Unavailable) -> ApiError {
        ApiError::new(ErrorCode::ServiceUnavailableException, unavailable.0)
    }
}

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
    pub fn with_storage(storage: sqlite::Storage, document: document::Document) -> Result<Store, sqlite::OpenError> {
        let shown = storage.path().display().to_string();
        let (offset, next_event) = (document.clock_offset_millis, document.next_event_sequence);
        let partitions = document.into_partitions().map_err(|e| sqlite::OpenError::Corrupt(shown.clone(), e.into()))?;
        let mut store = Store::new();
        let committer = commit::Committer::start(storage, Arc::clone(&store.next_event));
        store.committer = Some(committer.map_err(|e| sqlite::OpenError::Start(shown, e))?);
        store.put_in_place(partitions, offset, next_event);
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
    pub fn storage(&self) -> Option<&sqlite::Storage> {
        self.committer.as_ref().map(commit::Committer::storage)
    }

    /// Runs `future` (a request's handling), noting the changes being saved that its answer depends on: the
    /// writes it made and those it read before they were committed. Hand them to [`Store::durable`].
    pub fn tracking<F: Future>(&self, future: F) -> impl Future<Output = (F::Output, commit::Dependencies)> {
        match &self.committer {
            Some(_) => Either::Left(commit::tracking(future)),
            None => Either::Right(future.map(|output| (output, commit::Dependencies::default()))),
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

    /// How saving goes; `None` in memory.
    pub fn storage_health(&self) -> Option<commit::StorageHealth> {
        self.committer.as_ref().map(commit::Committer::health)
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
            // Kept in memory only, the change marks serve nothing. They are dropped every so many writes rather than
            // after each (a mark copies its key only when first set, so a pipeline written again costs nothing).
            if partition.unforgotten.fetch_add(1, Ordering::Relaxed) >= Partition::FORGET_EVERY {
                partition.unforgotten.store(0, Ordering::Relaxed);
                data.forget_unsaved();
            }
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
                tracing::debug!(account = %scope.account, region = %scope.region, "reloaded after a failed save");
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
    ///
    /// Writes go on meanwhile: each partition's own collections are copied under one short hold of its lock, then
    /// each pipeline under its own (a pipeline's copy is bounded by retention), so a large state never holds the
    /// write path for long. Each pipeline is whole as of its own moment.
    pub fn export(&self, behaviors: Vec<BehaviorRule>, mask: bool) -> document::Document {
        let mut scopes = self.scopes();
        scopes.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        let partitions = scopes.iter().map(|scope| self.export_partition(scope, mask)).collect();
        document::Document {
            format: document::FORMAT.to_string(),
            version: document::VERSION,
            clock_offset_millis: self.clock.offset_millis(),
            next_event_sequence: Some(self.next_event.load(Ordering::Acquire)),
            behaviors: Some(behaviors),
            partitions,
        }
    }

    fn export_partition(&self, scope: &Scope, mask: bool) -> document::PartitionDocument {
        let (mut document, names) = self.read(scope, |data| {
            let names: Vec<String> = data.pipelines.keys().cloned().collect();
            (data.to_document_without_pipelines(scope, mask), names)
        });
        for name in names {
            let pipeline = self.read(scope, |data| data.pipelines.get(&name).map(|r| r.to_document(&name, mask)));
            document.pipelines.extend(pipeline);
        }
        document
    }

    /// Replaces the whole state with a checked document's (see `app::import`), all or nothing: saved (with a data
    /// directory) in one transaction, then put in place. Returns the behaviour rules it names, if any.
    pub fn import(&self, import: Import) -> Result<Option<Vec<BehaviorRule>>, Unavailable> {
        let Import { mut partitions, clock_offset_millis: offset, next_event_sequence: sequence, behaviors } = import;
        let _gate = self.gate_exclusive();
        let next_event = sequence.unwrap_or(0).max(self.next_event.load(Ordering::Acquire));
        if let Some(committer) = &self.committer {
            committer.flush();
            let storage = committer.storage();
            let mut meta = vec![(sqlite::META_CLOCK_OFFSET, offset.to_string())];
            if let Some(rules) = &behaviors {
                meta.push((sqlite::META_BEHAVIORS, serde_json::to_string(rules).unwrap_or_default()));
            }
            storage.replace_all(&mut partitions, &meta, next_event)?;
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

/// A state document checked whole and built (see `app::import`), ready to replace the state.
pub struct Import {
    pub partitions: Vec<(Scope, PartitionData)>,
    pub clock_offset_millis: i64,
    pub next_event_sequence: Option<u64>,
    /// The behaviour rules it names; `None` keeps the current ones.
    pub behaviors: Option<Vec<BehaviorRule>>,
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
    /// Kept in memory only: writes since the change marks were last dropped (changed under the lock).
    unforgotten: AtomicU64,
}

impl Partition {
    /// Kept in memory only, how many writes a partition's change marks may pile up over.
    const FORGET_EVERY: u64 = 256;

    fn new(scope: Scope, data: PartitionData) -> Partition {
        Partition {
            scope,
            data: Mutex::new(data),
            epoch: AtomicU64::new(0),
            valid_from: AtomicU64::new(0),
            last_ticket: AtomicU64::new(0),
            unforgotten: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PartitionData> {
        // A poisoned lock means a handler panicked mid-update. Handlers validate before they mutate, so the data
        // is still consistent; keep serving rather than failing every later request.
        self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::declaration::{self, ActionOwner, ActionTypeId};

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
        let options = crate::store::sqlite::Options { dir: dir.clone(), full_sync: false, max_bytes: Some(max_bytes) };
        let (storage, document) = crate::store::sqlite::Storage::open(&options).expect("opens");
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
