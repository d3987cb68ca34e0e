//! Pipelines: CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::structure::{self, Env};
use super::tags::{check_new_tags, tag_map};
use super::{Ctx, find, page_size, pipeline_not_found};
use crate::engine::commands::poll::{PollSource, Seen, polling_s3_sources};
use crate::engine::commands::start::Start;
use crate::engine::commands::update::{UpdateDefinition, UpdateRefusal};
use crate::engine::step::StartRequest;
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::declaration::{ExecutionMode, PipelineDeclaration, PipelineType, Tag};
use crate::state::execution::{ExecutionTrigger, TriggerType};
use crate::state::{Definition, PartitionData, PipelineRecord, SECRET_MASK, Timestamp, restore_secrets};

/// Pipelines per account and region (Appendix B).
pub const MAX_PIPELINES: usize = 1000;

/// Page size of ListPipelines when `maxResults` is not given. AWS's default is UNCONFIRMED; 100 matches the
/// documented default of the other CodePipeline list operations.
const DEFAULT_PAGE_SIZE: usize = 100;

/// Validates a declaration and builds the version to store: defaults filled, secrets restored from the previous
/// version where they were sent back masked (and nothing else of their action changed), patterns compiled.
fn build_version(
    ctx: &Ctx,
    data: &PartitionData,
    declared: PipelineDeclaration,
    previous: Option<(&Definition, PipelineType)>,
    version: i32,
) -> Result<Definition, ApiError> {
    let env = Env { scope: &ctx.scope, catalogue: ctx.catalogue, data };
    let checked = structure::check(&declared, previous.map(|(_, t)| t), &env)?;
    let mut declaration = declared.with_defaults(version, checked.pipeline_type);
    if let Some((previous, _)) = previous {
        restore_secrets(&mut declaration, &checked.secrets, previous.declaration()).map_err(|moved| {
            ApiError::new(
                ErrorCode::InvalidActionDeclarationException,
                format!(
                    "Action '{}' in stage '{}' sends back the masked value {SECRET_MASK} for its secret configuration \
                     '{}' but changes other values of the action; a masked secret is kept only when nothing else of \
                     the action changes. Send the secret's value itself.",
                    moved.action, moved.stage, moved.key
                ),
            )
        })?;
    }
    Ok(Definition::new(declaration, checked.secrets, checked.patterns))
}

#[derive(Deserialize)]
pub struct CreatePipelineInput {
    pipeline: PipelineDeclaration,
    tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
struct CreatePipelineOutput<'a> {
    pipeline: Cow<'a, PipelineDeclaration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

/// CreatePipeline: validates the declaration, stores it as version 1 and echoes it with AWS's defaults.
pub fn create_pipeline(ctx: &Ctx, input: CreatePipelineInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let name = input.pipeline.name.clone();
    let tags = input.tags;
    check_new_tags(tags.as_deref().unwrap_or_default(), None)?;
    let version = ctx.store.write(&ctx.scope, |data| {
        if data.pipelines.contains_key(&name) {
            // AWS's message is UNCONFIRMED.
            return Err(ApiError::new(
                ErrorCode::PipelineNameInUseException,
                format!("A pipeline with name '{name}' already exists in account '{}'", ctx.scope.account),
            ));
        }
        if data.pipelines.len() >= MAX_PIPELINES {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!("The account already has {MAX_PIPELINES} pipelines in this region, the maximum allowed"),
            ));
        }
        let version = Arc::new(build_version(ctx, data, input.pipeline, None, 1)?);
        let tags = tag_map(tags.as_deref().unwrap_or_default());
        data.pipelines.insert(name.clone(), PipelineRecord::new(ctx.scope.arn(&name), now, Arc::clone(&version), tags));
        // CreatePipeline starts a first execution [NATIVE] (AWS too lists none for a moment after creating), in the
        // same write, so that the pipeline is saved with it or not at all. Unless an S3 source polls: then polling
        // starts one execution per polling source, or none for an object that is not there (real AWS sessions,
        // issue 28); the S3 neighbour's poller does it, or, without one, the emulated world's look here.
        let polling = data.pipelines.get(&name).map(polling_s3_sources).unwrap_or_default();
        if !polling.is_empty() {
            if !ctx.engine.polls_s3() {
                for action in polling {
                    // The pipeline was just inserted with this polling source, so this cannot be refused.
                    let _ = ctx.engine.apply_within(
                        data,
                        &ctx.scope,
                        &name,
                        PollSource { action, seen: Seen::Emulated },
                        now,
                    );
                }
            }
            return Ok(version);
        }
        let trigger = ExecutionTrigger {
            trigger_type: TriggerType::CreatePipeline,
            trigger_detail: Some(ctx.caller_arn().into()),
        };
        let command = Start {
            request: StartRequest { trigger, variables: Vec::new(), overrides: Vec::new() },
            client_token: None,
        };
        // The pipeline was just inserted and the start has no overrides, so this cannot be refused.
        let _ = ctx.engine.apply_within(data, &ctx.scope, &name, command, now);
        Ok(version)
    })??;
    Reply::json(&CreatePipelineOutput { pipeline: version.echo(), tags: tags.as_deref() })
}

#[derive(Deserialize)]
pub struct GetPipelineInput {
    name: String,
    version: Option<i32>,
}

/// GetPipeline's `metadata` (its `pipeline` is the version's JSON, made once: [`crate::state::Definition::shown_json`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineMetadata<'a> {
    pipeline_arn: &'a str,
    created: Timestamp,
    updated: Timestamp,
}

/// GetPipeline: the current version, or one of the [`crate::state::KEPT_VERSIONS`] latest, with secrets masked.
pub fn get_pipeline(ctx: &Ctx, input: GetPipelineInput) -> Result<Reply, ApiError> {
    ctx.store.read(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &input.name)?;
        let version = match input.version {
            None => record.current(),
            // AWS answers PipelineNotFoundException for a version older than the ones it keeps [PEER,
            // aws/aws-sdk#558]; its message is UNCONFIRMED.
            Some(number) if number >= 1 && number < record.version() => {
                record.at_version(number).ok_or_else(|| pipeline_not_found(&ctx.scope.account, &input.name))?
            }
            Some(number) => record.at_version(number).ok_or_else(|| {
                // AWS's message is UNCONFIRMED.
                ApiError::new(
                    ErrorCode::PipelineVersionNotFoundException,
                    format!("Pipeline '{}' does not have a version '{number}'", input.name),
                )
            })?,
        };
        // The version's JSON is made once per version, the metadata once per creation or update.
        let metadata = record.shown_metadata(|record| {
            let metadata =
                PipelineMetadata { pipeline_arn: &record.arn, created: record.created, updated: record.updated };
            // Plain data: serializing it cannot fail.
            serde_json::to_string(&metadata).unwrap_or_default()
        });
        let shown = version.shown_json();
        let mut body = Vec::with_capacity(shown.len() + metadata.len() + 26);
        body.extend_from_slice(b"{\"pipeline\":");
        body.extend_from_slice(shown.as_bytes());
        body.extend_from_slice(b",\"metadata\":");
        body.extend_from_slice(metadata.as_bytes());
        body.push(b'}');
        Ok(Reply::Json(body.into()))
    })
}

#[derive(Deserialize)]
pub struct UpdatePipelineInput {
    pipeline: PipelineDeclaration,
}

#[derive(Serialize)]
struct UpdatePipelineOutput<'a> {
    pipeline: Cow<'a, PipelineDeclaration>,
}

/// UpdatePipeline: validates the declaration and stores it as the next version; executions of the old version end
/// `Cancelled` once their running actions have (an approval waiting for an answer ends at once). The name is the key; the
/// `version` a client sends is ignored (AWS numbers versions itself; whether it rejects a stale number is
/// UNCONFIRMED). An omitted pipelineType keeps the pipeline's type \[NATIVE\].
pub fn update_pipeline(ctx: &Ctx, input: UpdatePipelineInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let name = input.pipeline.name.clone();
    let version = ctx.store.write(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &name)?;
        let current = Arc::clone(record.current());
        let current_type = current.pipeline_type.unwrap_or(PipelineType::V1);
        let number = record.version().saturating_add(1);
        let version = Arc::new(build_version(ctx, data, input.pipeline, Some((&current, current_type)), number)?);
        // The executions of the old version end as AWS ends them (see the command), in the same write.
        let update = UpdateDefinition { version: Arc::clone(&version) };
        ctx.engine
            .apply_within(data, &ctx.scope, &name, update, now)
            .map_err(|UpdateRefusal::PipelineNotFound| pipeline_not_found(&ctx.scope.account, &name))?;
        Ok::<_, ApiError>(version)
    })??;
    Reply::json(&UpdatePipelineOutput { pipeline: version.echo() })
}

#[derive(Deserialize)]
pub struct DeletePipelineInput {
    name: String,
}

/// DeletePipeline: removes the pipeline; deleting a pipeline that does not exist succeeds.
pub fn delete_pipeline(ctx: &Ctx, input: DeletePipelineInput) -> Result<Reply, ApiError> {
    ctx.store.write(&ctx.scope, |data| {
        if let Some(record) = data.pipelines.remove(&input.name) {
            data.retired_jobs.retire(record.runtime.jobs.keys().copied());
        }
    })?;
    Ok(Reply::Done)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelinesInput {
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineSummary {
    name: String,
    version: i32,
    pipeline_type: PipelineType,
    execution_mode: ExecutionMode,
    created: Timestamp,
    updated: Timestamp,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListPipelinesOutput {
    pipelines: Vec<PipelineSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListPipelines: pipelines in name order, a page at a time.
pub fn list_pipelines(ctx: &Ctx, input: ListPipelinesInput) -> Result<Reply, ApiError> {
    let max = page_size(input.max_results, DEFAULT_PAGE_SIZE);
    let page = ctx.store.read(&ctx.scope, |data| {
        let summaries = data.pipelines.iter().map(|(name, record)| {
            let current = record.current();
            PipelineSummary {
                name: name.clone(),
                version: record.version(),
                pipeline_type: current.pipeline_type.unwrap_or(PipelineType::V1),
                execution_mode: current.mode(),
                created: record.created,
                updated: record.updated,
            }
        });
        paginate(&ctx.page_kind("ListPipelines", None), summaries, |s| s.name.clone(), input.next_token.as_deref(), max)
    })?;
    Reply::json(&ListPipelinesOutput { pipelines: page.items, next_token: page.next_token })
}
