//! Group commit: the changes of many writes saved in one transaction, each answer waiting for its own.
//!
//! A write ([`super::Store::write`]) changes memory under its partition lock (the containers mark what changed) and
//! queues a *ticket* (a number that grows in queue order) naming its partition, then releases the lock at once. One
//! thread takes everything queued since its last turn, takes the rows marked in each partition named (serialized
//! once, however many writes changed them since the last commit) and commits them all in one transaction, so
//! concurrent writes, and the many transitions of one execution, share a commit.
//!
//! Nothing is answered before it is on disk: the HTTP layer ([`Store::durable`](super::Store::durable)) holds every
//! response until the tickets of the request are committed. That covers reads too: a read that saw a change still
//! being saved waits for it, so no client ever sees state that a crash could take back. The same holds for what
//! a change sends out ([`crate::state::outbox`]): a write's effects travel with its ticket and leave, in ticket order, only
//! once its commit is durable, before its waiters are told; the event numbers they take are reserved on disk in
//! that same commit.
//!
//! When a commit fails (a full disk), every write in it fails (its request is answered 503) and the partitions it
//! touched are marked stale (its effects are dropped): their next user reloads them from the database first (a partition's *epoch* counts its
//! reloads), and queued changes made before the reload are dropped, failing too, since they were built on changes
//! that were not saved. Memory and disk therefore agree again, and the engine is told to pick its pipelines up anew.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use futures_util::FutureExt;
use tokio::sync::watch;

use super::document::RowChange;
use super::{Partition, Scope, Unavailable};
use crate::state::outbox::Outbox;
use crate::store::sqlite::Storage;

/// The most failed ticket ranges remembered (a waiter looks its tickets up as soon as they are committed).
const MAX_FAILURES: usize = 4_096;

/// What a request's answer must wait for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// The tickets of the request's own writes: if one fails, so does the request.
    own: Vec<u64>,
    /// The last ticket of the changes still being saved that the request read. Its answer waits for them, so that
    /// nobody is shown what a crash could take back; if one fails, the answer stands (what it showed is undone).
    seen: u64,
}

impl Dependencies {
    fn last(&self) -> u64 {
        self.own.iter().copied().max().unwrap_or(0).max(self.seen)
    }

    /// Whether there is nothing to wait for.
    pub fn is_empty(&self) -> bool {
        self.last() == 0
    }
}

tokio::task_local! {
    static DEPENDS: RefCell<Dependencies>;
}

/// Notes that the current request (if any) made the write of `ticket`.
pub(super) fn wrote(ticket: u64) {
    let _ = DEPENDS.try_with(|d| d.borrow_mut().own.push(ticket));
}

/// Notes that the current request (if any) read a change being saved under `ticket`.
pub(super) fn saw(ticket: u64) {
    let _ = DEPENDS.try_with(|d| {
        let mut d = d.borrow_mut();
        d.seen = d.seen.max(ticket);
    });
}

/// Runs `future` noting what it depends on. (A combinator rather than an `async fn`, which would hold `future`
/// twice: as its argument and as what it awaits. A request's future is moved whole at every layer, so its size
/// is paid on every request.)
pub(super) fn tracking<F: Future>(future: F) -> impl Future<Output = (F::Output, Dependencies)> {
    let noted = future.map(|output| (output, DEPENDS.with(|d| std::mem::take(&mut *d.borrow_mut()))));
    DEPENDS.scope(RefCell::new(Dependencies::default()), noted)
}

/// One write waiting for a commit (its rows are marked in its partition). The queue holds one of these per write,
/// and the unsaved rows are the partition's own, so the memory waiting for a slow disk is bounded by the state.
struct Queued {
    ticket: u64,
    partition: Arc<Partition>,
    /// The partition's epoch when the write was made.
    epoch: u64,
    /// What the write sends out once it is saved.
    effects: Outbox,
}

#[derive(Default)]
struct Queue {
    items: Vec<Queued>,
    /// The ticket the next queued write gets (tickets start at 1; 0 means "nothing").
    next_ticket: u64,
    closed: bool,
}

/// What has been committed, and what failed.
#[derive(Default)]
struct Outcomes {
    /// Every ticket up to this one has been dealt with (committed or failed).
    done: u64,
    /// Failed tickets, as inclusive ranges by first ticket, with the reason.
    failed: BTreeMap<u64, (u64, Unavailable)>,
}

impl Outcomes {
    fn failure(&self, ticket: u64) -> Option<&Unavailable> {
        let (_, (last, reason)) = self.failed.range(..=ticket).next_back()?;
        (ticket <= *last).then_some(reason)
    }

    fn fail(&mut self, first: u64, last: u64, reason: Unavailable) {
        self.failed.insert(first, (last, reason));
        while self.failed.len() > MAX_FAILURES {
            self.failed.pop_first();
        }
    }
}

struct Shared {
    storage: Storage,
    queue: Mutex<Queue>,
    /// Signalled when writes are queued, and when closed.
    queue_changed: Condvar,
    outcomes: Mutex<Outcomes>,
    /// Signalled when `outcomes.done` moves, for blocking waiters.
    outcome_changed: Condvar,
    /// `outcomes.done`, for waiting requests.
    done: watch::Sender<u64>,
    /// Counts failed commits, so the engine can pick up the pipelines of reloaded partitions.
    failures: watch::Sender<u64>,
    next_event: Arc<AtomicU64>,
    /// How saving goes, for `/health` and for the engine's back-off.
    health: Mutex<StorageHealth>,
}

/// How saving goes: whether the last commit failed, since when and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageHealth {
    /// Commits that failed in a row, up to the last one (0: the last commit was saved).
    pub consecutive_failures: u64,
    /// Commits that failed since the server started.
    pub failed_commits: u64,
    /// When the current run of failures began, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<f64>,
    /// Why the last commit failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether the last failure was a full (or unwritable) data directory.
    pub full: bool,
}

impl StorageHealth {
    /// `ok`, `full` or `failing`.
    pub fn state(&self) -> &'static str {
        match (self.consecutive_failures, self.full) {
            (0, _) => "ok",
            (_, true) => "full",
            (_, false) => "failing",
        }
    }

    fn failed(&mut self, reason: &Unavailable) {
        self.consecutive_failures += 1;
        self.failed_commits += 1;
        self.full = reason.0 == super::sqlite::FULL;
        self.last_error = Some(reason.0.clone());
        if self.consecutive_failures == 1 {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.failing_since = Some(now.as_secs_f64());
            tracing::error!("saving state failed: {}", reason.0);
        } else if self.consecutive_failures.is_power_of_two() {
            // One line per doubling, not one per attempt, while the disk stays full.
            tracing::error!(attempts = self.consecutive_failures, "saving state still fails: {}", reason.0);
        }
    }

    fn saved(&mut self) {
        if self.consecutive_failures > 0 {
            tracing::info!(failed = self.consecutive_failures, "saving state works again");
            self.consecutive_failures = 0;
            self.failing_since = None;
            self.full = false;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The commit thread and its queue.
pub(super) struct Committer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("database", &self.shared.storage.path()).finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the commit thread for `storage`; the event sequence is saved with the commits.
    pub(super) fn start(storage: Storage, next_event: Arc<AtomicU64>) -> Result<Committer, std::io::Error> {
        let shared = Arc::new(Shared {
            storage,
            queue: Mutex::new(Queue { next_ticket: 1, ..Queue::default() }),
            queue_changed: Condvar::new(),
            outcomes: Mutex::new(Outcomes::default()),
            outcome_changed: Condvar::new(),
            done: watch::Sender::new(0),
            failures: watch::Sender::new(0),
            health: Mutex::new(StorageHealth::default()),
            next_event,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("cpl-commit".into()).spawn(move || run(&worker))?;
        Ok(Committer { shared, thread: Some(thread) })
    }

    pub(super) fn storage(&self) -> &Storage {
        &self.shared.storage
    }

    /// Queues a write to `partition`, whose changed rows are marked there (call it under the partition's lock, so
    /// that the marks are set before the commit thread can look), with the `effects` to release once it is saved;
    /// returns its ticket.
    pub(super) fn enqueue(&self, partition: &Arc<Partition>, epoch: u64, effects: Outbox) -> u64 {
        let mut queue = lock(&self.shared.queue);
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.items.push(Queued { ticket, partition: Arc::clone(partition), epoch, effects });
        drop(queue);
        self.shared.queue_changed.notify_one();
        ticket
    }

    /// Whether `ticket` has been dealt with.
    pub(super) fn is_done(&self, ticket: u64) -> bool {
        *self.shared.done.borrow() >= ticket
    }

    /// Waits until everything `dependencies` names is dealt with; the first failure of the request's own writes.
    pub(super) async fn durable(&self, dependencies: &Dependencies) -> Result<(), Unavailable> {
        let last = dependencies.last();
        let mut done = self.shared.done.subscribe();
        if done.wait_for(|done| *done >= last).await.is_err() {
            return Err(Unavailable("The emulator stopped saving changes".into()));
        }
        self.check(&dependencies.own)
    }

    /// Blocks until everything queued so far is dealt with (before the whole state is replaced or dropped).
    pub(super) fn flush(&self) {
        let last = lock(&self.shared.queue).next_ticket - 1;
        self.block_until(last);
    }

    /// Blocks until `ticket` is committed; its failure otherwise.
    pub(super) fn wait(&self, ticket: u64) -> Result<(), Unavailable> {
        self.block_until(ticket);
        self.check(&[ticket])
    }

    fn block_until(&self, ticket: u64) {
        let mut outcomes = lock(&self.shared.outcomes);
        while outcomes.done < ticket {
            outcomes = self.shared.outcome_changed.wait(outcomes).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn check(&self, tickets: &[u64]) -> Result<(), Unavailable> {
        let outcomes = lock(&self.shared.outcomes);
        match tickets.iter().find_map(|t| outcomes.failure(*t)) {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// Changes on each failed commit.
    pub(super) fn failures(&self) -> watch::Receiver<u64> {
        self.shared.failures.subscribe()
    }

    /// How saving goes.
    pub(super) fn health(&self) -> StorageHealth {
        lock(&self.shared.health).clone()
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.queue_changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The commit thread: takes everything queued, drops the writes made on stale partitions, commits the rest in one
/// transaction, releases the effects of the writes it saved, and publishes the outcome. Ends once closed and drained.
fn run(shared: &Shared) {
    loop {
        let mut queue = lock(&shared.queue);
        while queue.items.is_empty() && !queue.closed {
            queue = shared.queue_changed.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        if queue.items.is_empty() {
            return;
        }
        if queue.items.len() < 4 && !queue.closed {
            // Let writers that are about to queue join this commit (cheaper than a commit of their own).
            drop(queue);
            std::thread::yield_now();
            queue = lock(&shared.queue);
        }
        let batch = std::mem::take(&mut queue.items);
        drop(queue);
        let (Some(first), Some(last)) = (batch.first().map(|q| q.ticket), batch.last().map(|q| q.ticket)) else {
            continue;
        };
        // A bug in saving must not leave requests waiting for ever: the batch fails like a failed commit.
        let saved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(shared, &batch)));
        let saved = saved.unwrap_or_else(|_| {
            tracing::error!("saving state panicked");
            let reason = Unavailable("The emulator failed to save the change, which was not made".into());
            Err((reason, batch.iter().map(|q| (Arc::clone(&q.partition), q.epoch)).collect()))
        });
        finish(shared, first, last, saved, batch);
    }
}

/// The partitions a batch wrote to, with the epoch of their rows.
type Touched = Vec<(Arc<Partition>, u64)>;

/// What came of committing a batch: the tickets that failed alone because their partition went stale, or the
/// failure of the whole batch with the partitions it touched.
type Saved = Result<Vec<u64>, (Unavailable, Touched)>;

/// Commits the rows of the writes of `batch`.
fn commit(shared: &Shared, batch: &[Queued]) -> Saved {
    // The partitions the batch names, each once, with the epoch their rows were taken at.
    let mut taken: Vec<(Arc<Partition>, u64, Vec<RowChange>)> = Vec::new();
    let mut stale = Vec::new();
    for queued in batch {
        let valid_from = queued.partition.valid_from.load(Ordering::Acquire);
        if queued.epoch < valid_from {
            // Made before its partition's reload was due: built on changes that were not saved.
            stale.push(queued.ticket);
            continue;
        }
        if taken.iter().any(|(p, _, _)| Arc::ptr_eq(p, &queued.partition)) {
            continue;
        }
        let mut data = queued.partition.lock();
        let epoch = queued.partition.epoch.load(Ordering::Acquire);
        // Rows are taken only from a partition in use (not one waiting for its reload, whose marks are of
        // changes that will be thrown away).
        if epoch >= queued.partition.valid_from.load(Ordering::Acquire) {
            let rows = data.take_unsaved();
            drop(data);
            taken.push((Arc::clone(&queued.partition), epoch, rows));
        }
    }
    let writes: Vec<(&Scope, &[RowChange])> = taken.iter().map(|(p, _, rows)| (&p.scope, rows.as_slice())).collect();
    // The numbers the batch's events will take are reserved on disk with its rows, so a number released before a
    // crash is never given again after it.
    let events: u64 = batch.iter().map(|q| q.effects.events()).sum();
    let next_event = shared.next_event.load(Ordering::Acquire).saturating_add(events);
    match shared.storage.save_batch(&writes, next_event) {
        Ok(()) => Ok(stale),
        Err(reason) => Err((reason, taken.iter().map(|(p, epoch, _)| (Arc::clone(p), *epoch)).collect())),
    }
}

/// Publishes the outcome of the `batch` of tickets `first..=last`: on failure, each one failed and the partitions
/// touched marked for a reload; otherwise only the stale ones failed, and the effects of the others are released,
/// in ticket order, before anyone waiting is told.
fn finish(shared: &Shared, first: u64, last: u64, saved: Saved, batch: Vec<Queued>) {
    let stale_reason = || Unavailable("The emulator could not save an earlier change this one builds on".into());
    let mut outcomes = lock(&shared.outcomes);
    match saved {
        Ok(stale) => {
            lock(&shared.health).saved();
            for ticket in &stale {
                outcomes.fail(*ticket, *ticket, stale_reason());
            }
            drop(outcomes);
            for queued in batch {
                if !stale.contains(&queued.ticket) {
                    queued.effects.release();
                }
            }
            outcomes = lock(&shared.outcomes);
        }
        Err((reason, touched)) => {
            lock(&shared.health).failed(&reason);
            for (partition, epoch) in touched {
                partition.valid_from.fetch_max(epoch + 1, Ordering::AcqRel);
            }
            outcomes.fail(first, last, reason);
            shared.failures.send_modify(|n| *n += 1);
            // Nothing of the batch was made, so nothing of it leaves: its effects are dropped with it.
            drop(batch);
        }
    }
    outcomes.done = last;
    drop(outcomes);
    shared.outcome_changed.notify_all();
    shared.done.send_replace(last);
}
