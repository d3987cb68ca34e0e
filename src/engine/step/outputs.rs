//! Where an action's artifacts are: the artifact store's bucket and AWS's object keys for its outputs, a rollback's
//! reused outputs, and the inputs an execution produced earlier.

use std::sync::Arc;

use crate::engine::ids::Ids;
use crate::state::PipelineRecord;
use crate::state::declaration::{InputArtifact, PipelineDeclaration};
use crate::state::execution::{ArtifactInstance, At, Execution, ExecutionIndex};

/// The artifact bucket for actions running in `region`.
pub(super) fn bucket(declaration: &PipelineDeclaration, region: &str) -> String {
    declaration
        .artifact_store
        .as_ref()
        .map(|s| s.location.clone())
        .or_else(|| declaration.artifact_stores.as_ref().and_then(|m| m.get(region)).map(|s| s.location.clone()))
        .unwrap_or_default()
}

/// The object key AWS uses in the artifact store: `<pipeline[..20]>/<artifact[..10]>/<7 characters>`, with `.zip`
/// for a source action's output [NATIVE] and without an extension for a Lambda action's [real AWS session, issue
/// 28]; UNCONFIRMED for the other categories, taken to be as Lambda's.
pub(super) fn artifact_key(pipeline: &str, artifact: &str, source: bool, ids: &Ids) -> String {
    // Seven letters (either case) and digits, new for every action execution [NATIVE: `AGsHVF1`, `5bQrZii`].
    let suffix = ids.alphanumeric(7);
    let head = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let extension = if source { ".zip" } else { "" };
    format!("{}/{}/{suffix}{extension}", head(pipeline, 20), head(artifact, 10))
}

/// For an action of a rollback execution, the output artifacts of its target's latest run of the same action.
pub(super) fn rollback_outputs(
    record: &PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    action: usize,
) -> Option<Box<[Arc<ArtifactInstance>]>> {
    let target = record.runtime.executions[index].rollback_target?;
    let target = record.runtime.executions.at(*record.runtime.index.get(&target)?)?;
    let run = target.actions.iter().rev().find(|r| r.stage() == stage && r.action() == action)?;
    Some(run.output_artifacts.clone())
}

/// The artifacts an action or rule takes as input, as produced earlier in the execution (names it has not produced
/// are left out).
pub(in crate::engine) fn inputs(
    execution: &Execution,
    names: Option<&[InputArtifact]>,
) -> Box<[Arc<ArtifactInstance>]> {
    let produced = execution.running.as_ref().map(|r| &r.artifacts);
    names.unwrap_or_default().iter().filter_map(|a| produced.and_then(|p| p.get(&a.name)).cloned()).collect()
}
