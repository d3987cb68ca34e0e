//! The AWS JSON 1.1 router: `POST /` with `X-Amz-Target: CodePipeline_20150709.<Operation>`.
//!
//! Every operation of the service is one variant of [`Operation`]; the dispatcher in `operations` matches on it
//! exhaustively, so a new variant does not compile until it is routed.

use std::str::FromStr;

use super::error::{ApiError, ErrorCode};

/// The `X-Amz-Target` prefix of CodePipeline, from the model's `targetPrefix`.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709";

macro_rules! operations {
    ($($name:ident),+ $(,)?) => {
        /// One CodePipeline operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($name,)+
        }

        impl Operation {
            /// Every operation, in the model's (alphabetical) order.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),+];

            /// The operation's wire name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)+
                }
            }
        }

        impl FromStr for Operation {
            type Err = ();
            fn from_str(name: &str) -> Result<Operation, ()> {
                match name {
                    $(stringify!($name) => Ok(Operation::$name),)+
                    _ => Err(()),
                }
            }
        }
    };
}

operations! {
    AcknowledgeJob,
    AcknowledgeThirdPartyJob,
    CreateCustomActionType,
    CreatePipeline,
    DeleteCustomActionType,
    DeletePipeline,
    DeleteWebhook,
    DeregisterWebhookWithThirdParty,
    DisableStageTransition,
    EnableStageTransition,
    GetActionType,
    GetJobDetails,
    GetPipeline,
    GetPipelineExecution,
    GetPipelineState,
    GetThirdPartyJobDetails,
    ListActionExecutions,
    ListActionTypes,
    ListDeployActionExecutionTargets,
    ListPipelineExecutions,
    ListPipelines,
    ListRuleExecutions,
    ListRuleTypes,
    ListTagsForResource,
    ListWebhooks,
    OverrideStageCondition,
    PollForJobs,
    PollForThirdPartyJobs,
    PutActionRevision,
    PutApprovalResult,
    PutJobFailureResult,
    PutJobSuccessResult,
    PutThirdPartyJobFailureResult,
    PutThirdPartyJobSuccessResult,
    PutWebhook,
    RegisterWebhookWithThirdParty,
    RetryStageExecution,
    RollbackStage,
    StartPipelineExecution,
    StopPipelineExecution,
    TagResource,
    UntagResource,
    UpdateActionType,
    UpdatePipeline,
}

/// Resolves the `X-Amz-Target` header value to an operation.
///
/// A missing header, a foreign prefix and an unknown name are all `UnknownOperationException` (HTTP 400), the
/// answer of AWS's Coral services. Target names are case-sensitive there too.
pub fn route(target: Option<&[u8]>) -> Result<Operation, ApiError> {
    let Some(raw) = target else {
        return Err(ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("Missing X-Amz-Target header; expected '{TARGET_PREFIX}.<Operation>'"),
        ));
    };
    let target = std::str::from_utf8(raw).map_err(|_| {
        ApiError::new(ErrorCode::UnknownOperationException, "The X-Amz-Target header is not valid UTF-8")
    })?;
    let target = target.trim();
    let unknown = || {
        ApiError::new(
            ErrorCode::UnknownOperationException,
            format!("Unknown operation '{}'; expected '{TARGET_PREFIX}.<Operation>'", truncate(target, 200)),
        )
    };
    let (prefix, name) = target.split_once('.').ok_or_else(unknown)?;
    if prefix != TARGET_PREFIX {
        return Err(unknown());
    }
    name.parse().map_err(|()| unknown())
}

/// Keeps error messages bounded when a client sends a huge header.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::Model;

    fn code(result: Result<Operation, ApiError>) -> ErrorCode {
        result.expect_err("should be refused").code
    }

    #[test]
    fn routes_every_operation_of_the_model() {
        let model = Model::load().expect("model loads");
        assert_eq!(model.target_prefix, TARGET_PREFIX);
        let mut names: Vec<_> = model.operation_names().collect();
        names.sort();
        let ours: Vec<_> = Operation::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names, ours, "the enum lists exactly the model's operations");
        for op in Operation::ALL {
            let target = format!("{TARGET_PREFIX}.{}", op.name());
            assert_eq!(route(Some(target.as_bytes())), Ok(*op));
        }
    }

    #[test]
    fn missing_target_is_unknown_operation() {
        let err = route(None).expect_err("refused");
        assert_eq!(err.code, ErrorCode::UnknownOperationException);
        assert!(err.message.contains("Missing X-Amz-Target"));
    }

    #[test]
    fn foreign_prefix_is_unknown_operation() {
        assert_eq!(code(route(Some(b"DynamoDB_20120810.ListTables"))), ErrorCode::UnknownOperationException);
        assert_eq!(code(route(Some(b"CodePipeline_20150708.ListPipelines"))), ErrorCode::UnknownOperationException);
    }

    #[test]
    fn unknown_or_malformed_names_are_unknown_operation() {
        for target in [
            &b"CodePipeline_20150709.DescribePipeline"[..],
            b"CodePipeline_20150709.listPipelines",
            b"CodePipeline_20150709.",
            b"CodePipeline_20150709",
            b"",
            b"ListPipelines",
            b"CodePipeline_20150709.ListPipelines.Extra",
            b"\xff\xfe",
        ] {
            assert_eq!(code(route(Some(target))), ErrorCode::UnknownOperationException, "{target:?}");
        }
    }

    #[test]
    fn surrounding_whitespace_is_tolerated() {
        assert_eq!(route(Some(b" CodePipeline_20150709.ListPipelines ")), Ok(Operation::ListPipelines));
    }

    #[test]
    fn long_targets_are_truncated_in_messages() {
        let long = format!("{TARGET_PREFIX}.{}", "X".repeat(10_000));
        let err = route(Some(long.as_bytes())).expect_err("refused");
        assert!(err.message.len() < 400);
    }
}
