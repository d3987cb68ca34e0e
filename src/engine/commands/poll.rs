//! A polling S3 source looked at its object: the S3 neighbour's poller (see
//! [`crate::engine::providers::polling`]), or, without a neighbour, the emulated world when a pipeline is created or
//! updated and when a source change reports a new version.
//!
//! Each polling action keeps a cursor: the object version it last started its pipeline for. A version other than the
//! cursor starts an execution, as AWS's polling does (real AWS sessions, issue 28): trigger `PollForSourceChanges`
//! naming the action, the action bound to that version. So a new polling pipeline's first execution comes from here;
//! turning polling on with UpdatePipeline starts one on an unchanged object that only CreatePipeline had run (its
//! execution sets no cursor); turning it off and on again on an unchanged object starts nothing. An object that cannot
//! be read starts nothing: the action shows `Failed` with the reason in GetPipelineState, without an execution, until
//! it reads its object again; the cursor stays, so the version uploaded meanwhile is the next one started.

use super::start::{Start, StartRefusal};
use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::providers::{s3_object_missing, s3_version_id};
use crate::engine::step::{StartRequest, StepEnv};
use crate::state::execution::{
    ErrorDetails, ExecutionTrigger, PollFailure, RevisionOverride, RevisionType, TriggerType,
};
use crate::state::{PipelineRecord, Timestamp};

/// What a look at the object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The object's current version id.
    Version(String),
    /// The object could not be read (it is not there, or access is denied).
    Unreadable(ErrorDetails),
    /// Look in the emulated world (no S3 neighbour): a version a source change recorded, the emulator's stable
    /// version of an object nothing said anything about, or an object a source change said is not there.
    Emulated,
}

/// A polling S3 source action looked at its object.
#[derive(Debug)]
pub struct PollSource {
    pub action: String,
    pub seen: Seen,
}

/// Why a poll is not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollRefusal {
    PipelineNotFound,
    /// The action is no longer a polling S3 source action of the pipeline (it was updated meanwhile).
    NotASourceAction,
}

pipeline_not_found!(PollRefusal);

impl Command for PollSource {
    /// The id of the execution started, if the version was new.
    type Output = Option<String>;
    type Refusal = PollRefusal;

    fn execute(
        self,
        record: &mut PipelineRecord,
        env: &StepEnv,
        now: Timestamp,
    ) -> Result<Option<String>, PollRefusal> {
        let first = record.current().stages.first();
        let action = first
            .and_then(|s| s.actions.iter().find(|a| a.name == self.action))
            .filter(|a| a.is_s3_source() && a.polls())
            .ok_or(PollRefusal::NotASourceAction)?;
        // The version the look found, or why it found none.
        let looked = match self.seen {
            Seen::Version(version) => Ok(version),
            Seen::Unreadable(error) => Err(error),
            Seen::Emulated => {
                let config = |key: &str| action.configuration.as_ref().and_then(|c| c.get(key)).cloned();
                let (bucket, key) = (config("S3Bucket").unwrap_or_default(), config("S3ObjectKey").unwrap_or_default());
                if env.sources.is_absent(&bucket, &key) {
                    Err(s3_object_missing(&bucket, &key))
                } else {
                    Ok(env.sources.object(&bucket, &key).map_or_else(
                        || s3_version_id(&env.scope.account, &env.scope.region, &bucket, &key),
                        |o| o.version_id.clone(),
                    ))
                }
            }
        };
        let version = match looked {
            Ok(version) => version,
            Err(error) => {
                if record.runtime.poll_failures.get(&self.action).is_none_or(|f| f.error != error) {
                    record.runtime.w().poll_failures.insert(self.action, PollFailure { error, at: now });
                }
                return Ok(None);
            }
        };
        if record.runtime.poll_failures.contains_key(&self.action) {
            record.runtime.w().poll_failures.remove(&self.action);
        }
        if record.runtime.polled.get(&self.action) == Some(&version) {
            return Ok(None);
        }
        let trigger = ExecutionTrigger {
            trigger_type: TriggerType::PollForSourceChanges,
            trigger_detail: Some(self.action.as_str().into()),
        };
        let overrides = vec![RevisionOverride {
            action_name: self.action.clone(),
            revision_type: RevisionType::S3ObjectVersionId,
            revision_value: version.clone(),
            change_id: None,
            created: None,
        }];
        let start = Start { request: StartRequest { trigger, variables: Vec::new(), overrides }, client_token: None };
        let id = start.execute(record, env, now).map_err(|refusal| match refusal {
            StartRefusal::PipelineNotFound => PollRefusal::PipelineNotFound,
            StartRefusal::NotASourceAction { .. } | StartRefusal::RevisionTypeNotAllowed { .. } => {
                PollRefusal::NotASourceAction
            }
        })?;
        record.runtime.w().polled.insert(self.action, version);
        Ok(Some(id))
    }
}

/// The polling S3 source actions of a pipeline's current version, in declaration order.
pub fn polling_s3_sources(record: &PipelineRecord) -> Vec<String> {
    let first = record.current().stages.first();
    first
        .into_iter()
        .flat_map(|s| &s.actions)
        .filter(|a| a.is_s3_source() && a.polls())
        .map(|a| a.name.clone())
        .collect()
}
