//! The outbox: what a change sends out of the process (events for the history, the live stream, EventBridge and SNS;
//! Lambda invocations; work for action providers), held back until the change is saved.
//!
//! A write leaves its effects in [`PartitionData::outbox`](super::PartitionData) under the partition lock. The store
//! takes them with the write: kept in memory only, they are released as soon as the write is made (still under the
//! lock, so one partition's effects leave in the order of its changes); with a data directory they travel with the
//! write's commit ticket and are released by the commit thread once that commit is durable, in ticket order. A
//! commit that fails releases nothing: its effects are dropped with the change they describe, so nobody outside
//! ever hears of a change a failed save or a crash took back.

/// Something a change sends out once it is saved. Releasing must not block: it hands the effect to a queue or a
/// channel whose own task does the IO.
pub trait Effect: Send + Sync + 'static {
    /// How many event sequence numbers releasing this takes (the commit reserves them on disk first, so that a
    /// number released before a crash is never handed out again after it).
    fn events(&self) -> u64 {
        0
    }

    /// Sends the effect on its way.
    fn release(self: Box<Self>);
}

/// The effects of the changes of one write, in the order they were made.
#[derive(Default)]
pub struct Outbox(Vec<Box<dyn Effect>>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Outbox").field(&self.0.len()).finish()
    }
}

impl Outbox {
    /// Queues an effect to leave once the change that made it is saved.
    pub fn push(&mut self, effect: impl Effect) {
        self.0.push(Box::new(effect));
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes everything queued, leaving the outbox empty.
    pub(crate) fn take(&mut self) -> Outbox {
        Outbox(std::mem::take(&mut self.0))
    }

    /// How many event sequence numbers releasing everything takes.
    pub(crate) fn events(&self) -> u64 {
        self.0.iter().map(|e| e.events()).sum()
    }

    /// Sends every effect on its way, in order.
    pub(crate) fn release(self) {
        for effect in self.0 {
            effect.release();
        }
    }
}
