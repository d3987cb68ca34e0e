//! The executions of one pipeline, by stable position, saved one row each, with retention.
//!
//! A position ([`ExecutionIndex`]) names an execution for as long as it is kept: jobs, the latest run of each
//! action, the latest execution of each stage and in-flight work hold positions. Retention lets the oldest finished
//! executions go (see [`Executions::retain`]) without moving any other: the recent ones are a contiguous run from
//! `base`, and an older execution something still points at (the latest to reach a stage that later executions did
//! not reach, one still running) is kept apart by position until nothing does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{At, Execution, ExecutionIndex};

/// The executions of one pipeline, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Executions {
    /// Executions before `base` that are still kept, by position.
    early: BTreeMap<usize, Execution>,
    /// The position of `recent`'s first execution.
    base: usize,
    /// The executions from `base` on, one per position.
    recent: VecDeque<Execution>,
    /// Positions pushed or borrowed mutably since the last save.
    changed: BTreeSet<usize>,
    /// Positions let go since the last save.
    dropped: BTreeSet<usize>,
}

impl Executions {
    /// Executions at the given positions (increasing), unchanged.
    pub fn at_positions(items: Vec<(usize, Execution)>) -> Executions {
        let mut executions = Executions::default();
        let mut tail_start = items.len();
        while tail_start > 0 {
            let (position, _) = &items[tail_start - 1];
            let next = items.get(tail_start).map(|(p, _)| *p);
            if next.is_some_and(|next| next != position + 1) {
                break;
            }
            tail_start -= 1;
        }
        let mut items = items.into_iter();
        for (position, execution) in items.by_ref().take(tail_start) {
            executions.early.insert(position, execution);
        }
        for (i, (position, execution)) in items.enumerate() {
            if i == 0 {
                executions.base = position;
            }
            executions.recent.push_back(execution);
        }
        if executions.recent.is_empty() {
            executions.base = executions.early.keys().next_back().map_or(0, |last| last + 1);
        }
        executions
    }

    /// The position the next execution takes.
    pub fn end(&self) -> usize {
        self.base + self.recent.len()
    }

    /// How many executions are kept.
    pub fn count(&self) -> usize {
        self.early.len() + self.recent.len()
    }

    /// Adds an execution at [`Executions::end`].
    pub fn push(&mut self, execution: Execution) {
        self.changed.insert(self.end());
        self.recent.push_back(execution);
    }

    /// The execution at `position`, if it is kept.
    pub fn get(&self, position: usize) -> Option<&Execution> {
        match position.checked_sub(self.base) {
            Some(offset) => self.recent.get(offset),
            None => self.early.get(&position),
        }
    }

    /// The execution at `position`, to change it.
    pub fn get_mut(&mut self, position: usize) -> Option<&mut Execution> {
        let execution = match position.checked_sub(self.base) {
            Some(offset) => self.recent.get_mut(offset),
            None => self.early.get_mut(&position),
        }?;
        self.changed.insert(position);
        Some(execution)
    }

    /// The kept executions, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Execution> {
        self.early.values().chain(self.recent.iter())
    }

    /// The kept executions with their positions, oldest first.
    pub fn iter_indexed(&self) -> impl DoubleEndedIterator<Item = (ExecutionIndex, &Execution)> {
        let early = self.early.iter().map(|(position, e)| (ExecutionIndex::at(*position), e));
        let recent = self.recent.iter().enumerate().map(|(i, e)| (ExecutionIndex::at(self.base + i), e));
        early.chain(recent)
    }

    /// Lets the oldest executions go until at most `keep` are kept, sparing those `spared` names (running ones,
    /// ones something points at); returns the positions let go.
    pub fn retain(&mut self, keep: usize, spared: impl Fn(usize, &Execution) -> bool) -> Vec<(usize, Execution)> {
        let mut gone = Vec::new();
        if self.count() <= keep {
            return gone;
        }
        let early: Vec<usize> = self.early.iter().filter(|(p, e)| !spared(**p, e)).map(|(p, _)| *p).collect();
        for position in early {
            if self.count() <= keep {
                break;
            }
            if let Some(execution) = self.early.remove(&position) {
                gone.push((position, execution));
            }
        }
        while self.count() > keep {
            let Some(execution) = self.recent.pop_front() else { break };
            let position = self.base;
            self.base += 1;
            if spared(position, &execution) {
                self.early.insert(position, execution);
                // Nothing was let go: stop when only spared executions are left to look at.
                if self.recent.is_empty() {
                    break;
                }
            } else {
                gone.push((position, execution));
            }
        }
        for (position, _) in &gone {
            self.changed.remove(position);
            self.dropped.insert(*position);
        }
        gone
    }

    /// The positions pushed or changed since the last call, clearing the marks.
    pub(crate) fn take_changed(&mut self) -> BTreeSet<usize> {
        std::mem::take(&mut self.changed)
    }

    /// The positions let go since the last call, clearing the marks.
    pub(crate) fn take_dropped(&mut self) -> BTreeSet<usize> {
        std::mem::take(&mut self.dropped)
    }
}

impl std::ops::Index<ExecutionIndex> for Executions {
    type Output = Execution;

    /// Panics on a position not kept: every position the runtime holds is kept (retention spares them).
    fn index(&self, at: ExecutionIndex) -> &Execution {
        match self.get(at.index()) {
            Some(execution) => execution,
            None => unreachable!("execution {} is not kept", at.index()),
        }
    }
}

impl std::ops::IndexMut<ExecutionIndex> for Executions {
    fn index_mut(&mut self, at: ExecutionIndex) -> &mut Execution {
        match self.get_mut(at.index()) {
            Some(execution) => execution,
            None => unreachable!("execution {} is not kept", at.index()),
        }
    }
}

impl At<ExecutionIndex> for Executions {
    type Item = Execution;

    fn at(&self, at: ExecutionIndex) -> Option<&Execution> {
        self.get(at.index())
    }

    fn at_mut(&mut self, at: ExecutionIndex) -> Option<&mut Execution> {
        self.get_mut(at.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(seq: u64) -> Execution {
        let saved = serde_json::json!({
            "id": uuid::Uuid::new_v4(), "seq": seq, "pipelineVersion": 1, "status": "Succeeded",
            "trigger": {"triggerType": "StartPipelineExecution"}, "mode": "SUPERSEDED", "executionType": "STANDARD",
            "startTime": 1.0, "lastUpdateTime": 1.0, "place": "Done", "stages": [], "actions": []
        });
        serde_json::from_value(saved).expect("an execution")
    }

    fn seqs(executions: &Executions) -> Vec<(usize, u64)> {
        executions.iter_indexed().map(|(i, e)| (i.index(), e.seq)).collect()
    }

    #[test]
    fn retention_lets_the_oldest_go_and_keeps_every_position() {
        let mut executions = Executions::default();
        for seq in 0..10 {
            executions.push(execution(seq));
        }
        executions.take_changed();
        // Position 1 is spared (something points at it), 8 too (still running).
        let gone = executions.retain(4, |position, _| position == 1 || position == 8);
        let gone: Vec<usize> = gone.into_iter().map(|(p, _)| p).collect();
        assert_eq!(gone, vec![0, 2, 3, 4, 5, 6]);
        assert_eq!(seqs(&executions), vec![(1, 1), (7, 7), (8, 8), (9, 9)]);
        assert_eq!(executions.end(), 10);
        assert_eq!(executions[ExecutionIndex::at(1)].seq, 1);
        assert!(executions.get(3).is_none());
        assert_eq!(executions.take_dropped(), gone.into_iter().collect());
        assert!(executions.take_changed().is_empty());

        // Once nothing points at it any more, it goes too; new ones keep counting on.
        executions.push(execution(10));
        let gone = executions.retain(4, |position, _| position == 8);
        assert_eq!(gone.into_iter().map(|(p, _)| p).collect::<Vec<_>>(), vec![1]);
        assert_eq!(seqs(&executions), vec![(7, 7), (8, 8), (9, 9), (10, 10)]);

        // Everything spared: nothing goes, and nothing loops.
        let gone = executions.retain(1, |_, _| true);
        assert!(gone.is_empty());
        assert_eq!(executions.count(), 4);
        assert_eq!(executions.end(), 11);
    }

    #[test]
    fn positions_read_back_as_they_were() {
        let saved = vec![(1, execution(1)), (8, execution(8)), (9, execution(9)), (10, execution(10))];
        let executions = Executions::at_positions(saved);
        assert_eq!(seqs(&executions), vec![(1, 1), (8, 8), (9, 9), (10, 10)]);
        assert_eq!(executions.end(), 11);
        let sparse = Executions::at_positions(vec![(2, execution(2)), (5, execution(5))]);
        assert_eq!(seqs(&sparse), vec![(2, 2), (5, 5)]);
        assert_eq!(sparse.end(), 6);
        assert_eq!(Executions::at_positions(Vec::new()).end(), 0);
    }
}
