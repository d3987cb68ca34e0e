//! How an action or rule ends: its success (summary, output variables) or its error, and what it waits for.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use super::Revision;
use crate::state::Timestamp;

/// `ErrorDetails` of a failed action or rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorDetails {
    pub code: FailureType,
    pub message: String,
}

impl ErrorDetails {
    /// A `JobFailed` error: what a job worker or function reported, or a simulated failure.
    pub fn job_failed(message: impl Into<String>) -> ErrorDetails {
        ErrorDetails { code: FailureType::JobFailed, message: message.into() }
    }

    /// A `ConfigurationError`: the action or rule cannot run as declared.
    pub fn configuration(message: impl Into<String>) -> ErrorDetails {
        ErrorDetails { code: FailureType::ConfigurationError, message: message.into() }
    }
}

/// `FailureType`: the code of a failed action's or rule's `errorDetails`. Job workers report one of these, and the
/// emulator's own failures use them too, so a failed run's code is always one AWS can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum FailureType {
    JobFailed,
    ConfigurationError,
    PermissionError,
    RevisionOutOfSync,
    RevisionUnavailable,
    SystemUnavailable,
}

impl FailureType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::JobFailed => "JobFailed",
            FailureType::ConfigurationError => "ConfigurationError",
            FailureType::PermissionError => "PermissionError",
            FailureType::RevisionOutOfSync => "RevisionOutOfSync",
            FailureType::RevisionUnavailable => "RevisionUnavailable",
            FailureType::SystemUnavailable => "SystemUnavailable",
        }
    }
}

/// Output variables of an action, sorted by name. A boxed slice rather than a map: most actions have a handful,
/// and a finished execution keeps them for its whole life.
pub type Variables = Box<[(Arc<str>, Box<str>)]>;

/// Looks a variable up by name.
pub fn variable<'a>(variables: &'a Variables, key: &str) -> Option<&'a str> {
    variables.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
}

/// What a finished action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Success {
    pub summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub output_variables: BTreeMap<String, String>,
    /// Set by source actions.
    pub revision: Option<Revision>,
}

/// How an action ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Outcome {
    Succeed(Success),
    Fail(ErrorDetails),
}

/// What a running action waits for. Boxed payloads keep finished runs (which hold `Nothing`) small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Pending {
    /// It ends by itself at a known time (simulated work).
    At(Timestamp, Box<Outcome>),
    /// It ends when something outside calls back (an approval, a held action, a job), or fails at `timeout`.
    External { timeout: Option<Timestamp>, on_timeout: Box<ErrorDetails> },
    /// Simulated work whose output artifacts are being written to the artifact store (an S3 neighbour): once they
    /// are, it ends at `at` with `outcome` (at once if that time has passed); if they cannot be, it fails.
    /// Real work (a stack, a service) fails at `timeout`, on the emulator clock, if its worker has not reported.
    Storing {
        at: Timestamp,
        outcome: Box<Outcome>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<(Timestamp, Box<ErrorDetails>)>,
    },
    /// Nothing: the action is finished.
    Nothing,
}
