//! Action runs (one attempt of one action) and stage runs, and the configuration a run ran with.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::{ActionStatus, ArtifactInstance, ErrorDetails, Pending, RetryTrigger, RunIndex, StageStatus, Variables};
use crate::state::Timestamp;
use crate::state::declaration::ActionDeclaration;

/// One action execution (one attempt of one action). Kept for the life of the pipeline, so it is compact: names
/// come from the execution's declaration by index, artifacts are shared, and rarely set members are boxed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRun {
    pub id: Uuid,
    /// Order of creation within the pipeline; newer runs have higher numbers.
    pub seq: u32,
    pub stage_index: u32,
    pub action_index: u32,
    pub status: ActionStatus,
    /// Whether the run is an approval waiting for an answer; its token is then the run id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaits_approval: bool,
    /// Shared with the revision it picked up, for a source action whose summary is the revision's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_id: Option<Box<str>>,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    /// When the status last changed after the start (absent while a running approval waits, as on AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub input_artifacts: Box<[Arc<ArtifactInstance>]>,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub output_artifacts: Box<[Arc<ArtifactInstance>]>,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub output_variables: Variables,
    /// What the run waits for; `None` once it has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<Pending>>,
    /// Members most runs never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<RunExtra>>,
}

/// The rarely set members of an action run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunExtra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// The configuration values variable resolution changed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_configuration: Option<Resolved>,
    /// The action's region, when it is not the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl ActionRun {
    /// The stage index, for indexing.
    pub fn stage(&self) -> usize {
        self.stage_index as usize
    }

    /// The action index within its stage, for indexing.
    pub fn action(&self) -> usize {
        self.action_index as usize
    }

    /// The approval token, while the approval waits for an answer.
    pub fn approval_token(&self) -> Option<String> {
        self.awaits_approval.then(|| self.id.to_string())
    }

    /// The rarely set members, created on first use.
    pub fn extra_mut(&mut self) -> &mut RunExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The error of a failed run.
    pub fn error(&self) -> Option<&ErrorDetails> {
        self.extra.as_ref().and_then(|e| e.error.as_ref())
    }

    /// Who answered the run (an approver), if anyone.
    pub fn updated_by(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.updated_by.as_deref())
    }

    /// The provider's link to the external execution.
    pub fn external_execution_url(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.external_execution_url.as_deref())
    }

    /// The completion a job worker reported.
    pub fn percent_complete(&self) -> Option<i32> {
        self.extra.as_ref().and_then(|e| e.percent_complete)
    }

    /// The configuration the run used: the declared one (`declared`'s), with the values variables changed.
    pub fn configuration<'a>(&'a self, declared: Option<&'a ActionDeclaration>) -> ConfigView<'a> {
        ConfigView::new(declared.and_then(|a| a.configuration.as_ref()), self.resolved())
    }

    /// The configuration values variables changed, if any.
    pub fn resolved(&self) -> Option<&Resolved> {
        self.extra.as_ref().and_then(|e| e.resolved_configuration.as_ref())
    }

    /// The action's region, when it is not the pipeline's.
    pub fn region(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.region.as_deref())
    }
}

/// The run of one stage within one execution.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRun {
    /// When the execution entered the stage.
    pub entered: Timestamp,
    pub status: StageStatus,
    /// The runOrder group currently running (or last run), counted from 0 in ascending runOrder.
    pub group: u32,
    /// This stage's action runs, oldest first (while it runs).
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub runs: Vec<RunIndex>,
    /// Manual retries of the stage in this execution.
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub manual_retries: u16,
    /// Automatic retries of the stage in this execution.
    #[serde(default, skip_serializing_if = "super::is_zero")]
    pub auto_retries: u16,
    /// What started the latest retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_retry: Option<RetryTrigger>,
}

impl StageRun {
    /// A stage run that has just been entered.
    pub fn entered(now: Timestamp) -> StageRun {
        StageRun {
            entered: now,
            status: StageStatus::InProgress,
            group: 0,
            runs: Vec::new(),
            manual_retries: 0,
            auto_retries: 0,
            latest_retry: None,
        }
    }
}

/// The configuration values of a run that variable resolution changed, sorted by key. The other values are the
/// declared ones, which the run shares with its pipeline version rather than copying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resolved(Box<[(Box<str>, Box<str>)]>);

impl Resolved {
    /// The changed values, given in key order.
    pub fn new(changed: Vec<(Box<str>, Box<str>)>) -> Resolved {
        Resolved(changed.into_boxed_slice())
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes of the changed values.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(_, v)| v.len()).sum()
    }

    /// The changed value of `key`, if variables changed it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }
}

/// A run's configuration as it ran: the declared values, with those variables changed replaced. Cheap to copy;
/// reads in place.
#[derive(Debug, Clone, Copy)]
pub struct ConfigView<'a> {
    declared: Option<&'a BTreeMap<String, String>>,
    changed: Option<&'a Resolved>,
}

impl<'a> ConfigView<'a> {
    /// The view of `declared` with `changed` applied.
    pub fn new(declared: Option<&'a BTreeMap<String, String>>, changed: Option<&'a Resolved>) -> ConfigView<'a> {
        ConfigView { declared, changed }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let changed = self.changed;
        changed.and_then(|c| c.get(key)).or_else(|| self.declared.and_then(|d| d.get(key)).map(String::as_str))
    }

    /// Every (key, value), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let changed = self.changed;
        self.declared
            .into_iter()
            .flatten()
            .map(move |(k, v)| (k.as_str(), changed.and_then(|c| c.get(k)).unwrap_or(v.as_str())))
    }

    /// An owned copy, for job data.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}
