//! Start an execution (StartPipelineExecution, the start of a created or updated pipeline, a trigger's start).

use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::{self, StartRequest, StepEnv};
use crate::state::declaration::ActionDeclaration;
use crate::state::execution::RevisionType;
use crate::state::{PipelineRecord, Timestamp};

/// Start an execution. With a client token, a request repeating an earlier token gets that execution instead.
#[derive(Debug)]
pub struct Start {
    pub request: StartRequest,
    pub client_token: Option<String>,
}

/// Why a start is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    PipelineNotFound,
    /// A source revision override names an action that is not a source action of the pipeline.
    NotASourceAction {
        action: String,
    },
    /// A source revision override's type does not fit its action's provider (or configuration).
    RevisionTypeNotAllowed {
        action: String,
        revision_type: RevisionType,
        provider: String,
    },
}

pipeline_not_found!(StartRefusal);

impl Command for Start {
    /// The id of the execution started (or, for a repeated client token, started before).
    type Output = String;
    type Refusal = StartRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<String, StartRefusal> {
        // The overrides are checked before a repeated token is looked up, as AWS does [NATIVE, issue 28].
        check_overrides(record, &self.request)?;
        if let Some(existing) = self.client_token.as_ref().and_then(|t| record.runtime.client_tokens.get(t)) {
            return Ok(existing.to_string());
        }
        let id = step::start_execution(record, self.request, env.ids, now);
        if let (Some(token), Ok(uuid)) = (self.client_token, uuid::Uuid::parse_str(&id)) {
            record.runtime.w().client_tokens.insert(token, uuid);
        }
        Ok(id)
    }
}

/// Every source revision override names a source action of the first stage whose provider takes its type.
fn check_overrides(record: &PipelineRecord, request: &StartRequest) -> Result<(), StartRefusal> {
    let first = record.current().stages.first().map(|s| s.actions.as_slice()).unwrap_or_default();
    for o in &request.overrides {
        let Some(action) = first.iter().find(|a| a.name == o.action_name) else {
            return Err(StartRefusal::NotASourceAction { action: o.action_name.clone() });
        };
        if !revision_type_fits(action, o.revision_type) {
            return Err(StartRefusal::RevisionTypeNotAllowed {
                action: o.action_name.clone(),
                revision_type: o.revision_type,
                provider: action.action_type_id.provider.clone(),
            });
        }
    }
    Ok(())
}

/// Which source providers accept which revision types (behaviour.md §9.3).
fn revision_type_fits(action: &ActionDeclaration, revision_type: RevisionType) -> bool {
    let provider = action.action_type_id.provider.as_str();
    match revision_type {
        RevisionType::CommitId => matches!(provider, "CodeCommit" | "CodeStarSourceConnection" | "GitHub"),
        RevisionType::ImageDigest => provider == "ECR",
        RevisionType::S3ObjectVersionId => provider == "S3",
        RevisionType::S3ObjectKey => {
            provider == "S3"
                && action
                    .configuration
                    .as_ref()
                    .and_then(|c| c.get("AllowOverrideForS3ObjectKey"))
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        }
        RevisionType::ActionRevision => false,
    }
}
