//! What flows between actions: source revisions, revision overrides and artifact versions.

use std::sync::Arc;

use serde::Serialize;

use crate::state::Timestamp;

/// A revision picked up by a source action (`currentRevision`, `artifactRevisions`, `sourceRevisions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision_id: String,
    /// The change identifier (`revisionChangeIdentifier`, `revisionChangeId`), for providers that have one: a
    /// commit or image digest has one, an S3 object version has none. See [`Revision::change_id`].
    pub change: ChangeId,
    /// Shared with the summary of the action run that picked the revision up, when they are the same text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Arc<str>>,
    /// When the revision was made, for providers that tell (S3 does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
}

/// A revision's change identifier, kept without repeating the revision id when it is the same (a commit is both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ChangeId {
    /// The provider has none.
    None,
    /// The revision id itself.
    Revision,
    Other(Box<str>),
}

impl ChangeId {
    /// The change identifier `change` of revision `revision_id`.
    pub fn of(revision_id: &str, change: Option<String>) -> ChangeId {
        match change {
            None => ChangeId::None,
            Some(c) if c == revision_id => ChangeId::Revision,
            Some(c) => ChangeId::Other(c.into_boxed_str()),
        }
    }
}

impl Revision {
    /// The change identifier, if the provider has one.
    pub fn change_id(&self) -> Option<&str> {
        match &self.change {
            ChangeId::None => None,
            ChangeId::Revision => Some(&self.revision_id),
            ChangeId::Other(c) => Some(c),
        }
    }
}

/// An artifact version stored in the artifact store. Names and buckets repeat across executions and are shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInstance {
    pub name: Arc<str>,
    pub bucket: Arc<str>,
    pub key: Box<str>,
}

/// A source revision override given to StartPipelineExecution (or, with the type [`RevisionType::ActionRevision`],
/// by PutActionRevision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionOverride {
    pub action_name: String,
    pub revision_type: RevisionType,
    pub revision_value: String,
    /// The change identifier of a PutActionRevision revision.
    pub change_id: Option<String>,
    /// When a PutActionRevision revision was created.
    pub created: Option<Timestamp>,
}

/// `SourceRevisionType`, and the revision PutActionRevision gives, which applies to any source provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RevisionType {
    CommitId,
    ImageDigest,
    S3ObjectVersionId,
    S3ObjectKey,
    /// A revision given by PutActionRevision (not a wire value: the model's validation refuses it as input).
    #[serde(rename = "PutActionRevision")]
    ActionRevision,
}

impl RevisionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionType::CommitId => "COMMIT_ID",
            RevisionType::ImageDigest => "IMAGE_DIGEST",
            RevisionType::S3ObjectVersionId => "S3_OBJECT_VERSION_ID",
            RevisionType::S3ObjectKey => "S3_OBJECT_KEY",
            RevisionType::ActionRevision => "PutActionRevision",
        }
    }
}
