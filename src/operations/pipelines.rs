//! Pipelines: CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::protocol::pagination::paginate;
use crate::protocol::{ApiError, ErrorCode, Reply};
use crate::state::declaration::{ExecutionMode, PipelineDeclaration, PipelineType, Tag};
use crate::state::{PartitionData, PipelineRecord, Timestamp};

/// Page size of ListPipelines when `maxResults` is not given. AWS's default is UNCONFIRMED; 100 matches the
/// documented default of the other CodePipeline list operations.
const DEFAULT_PAGE_SIZE: usize = 100;

/// `PipelineNotFoundException` with AWS's message [NATIVE].
pub fn pipeline_not_found(account: &str, name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PipelineNotFoundException,
        format!("Account '{account}' does not have a pipeline with name '{name}'"),
    )
}

#[derive(Deserialize)]
pub struct CreatePipelineInput {
    pipeline: PipelineDeclaration,
    tags: Option<Vec<Tag>>,
}

#[derive(Serialize)]
struct CreatePipelineOutput<'a> {
    pipeline: &'a PipelineDeclaration,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [Tag]>,
}

/// CreatePipeline: stores version 1 of a new pipeline and echoes it with AWS's defaults filled in.
pub fn create_pipeline(ctx: &Ctx, input: CreatePipelineInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let name = input.pipeline.name.clone();
    let pipeline_type = input.pipeline.pipeline_type.unwrap_or(PipelineType::V1);
    let declaration = Arc::new(input.pipeline.with_defaults(1, pipeline_type));
    let tags = input.tags;
    ctx.store.write(&ctx.scope, |data| {
        if data.pipelines.contains_key(&name) {
            return Err(ApiError::new(
                ErrorCode::PipelineNameInUseException,
                format!("A pipeline with name '{name}' already exists in account '{}'", ctx.scope.account),
            ));
        }
        data.pipelines.insert(
            name.clone(),
            PipelineRecord {
                arn: ctx.scope.arn(&name),
                created: now,
                updated: now,
                versions: vec![Arc::clone(&declaration)],
                tags: tags.clone().unwrap_or_default(),
            },
        );
        Ok(())
    })?;
    Reply::json(&CreatePipelineOutput { pipeline: &declaration, tags: tags.as_deref() })
}

#[derive(Deserialize)]
pub struct GetPipelineInput {
    name: String,
    version: Option<i32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PipelineMetadata {
    pipeline_arn: String,
    created: Timestamp,
    updated: Timestamp,
}

#[derive(Serialize)]
struct GetPipelineOutput {
    pipeline: Arc<PipelineDeclaration>,
    metadata: PipelineMetadata,
}

/// GetPipeline: the current version, or any earlier one.
pub fn get_pipeline(ctx: &Ctx, input: GetPipelineInput) -> Result<Reply, ApiError> {
    let output = ctx.store.read(&ctx.scope, |data| {
        let record = find(data, &ctx.scope.account, &input.name)?;
        let pipeline = match input.version {
            None => record.current(),
            Some(version) => record.at_version(version).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PipelineVersionNotFoundException,
                    format!("Pipeline '{}' does not have a version '{version}'", input.name),
                )
            })?,
        };
        Ok(GetPipelineOutput {
            pipeline: Arc::clone(pipeline),
            metadata: PipelineMetadata {
                pipeline_arn: record.arn.clone(),
                created: record.created,
                updated: record.updated,
            },
        })
    })?;
    Reply::json(&output)
}

#[derive(Deserialize)]
pub struct UpdatePipelineInput {
    pipeline: PipelineDeclaration,
}

#[derive(Serialize)]
struct UpdatePipelineOutput {
    pipeline: Arc<PipelineDeclaration>,
}

/// UpdatePipeline: stores the declaration as the next version. The name is the key; the `version` a client sends
/// is ignored (AWS numbers versions itself; whether it rejects a stale number is UNCONFIRMED).
pub fn update_pipeline(ctx: &Ctx, input: UpdatePipelineInput) -> Result<Reply, ApiError> {
    let now = ctx.now();
    let name = input.pipeline.name.clone();
    let declared = input.pipeline;
    let pipeline = ctx.store.write(&ctx.scope, |data| {
        let record = data.pipelines.get_mut(&name).ok_or_else(|| pipeline_not_found(&ctx.scope.account, &name))?;
        // An update that omits pipelineType keeps the pipeline's type [NATIVE].
        let pipeline_type = declared.pipeline_type.or(record.current().pipeline_type).unwrap_or(PipelineType::V1);
        let version = record.version().saturating_add(1);
        let declaration = Arc::new(declared.with_defaults(version, pipeline_type));
        record.versions.push(Arc::clone(&declaration));
        record.updated = now;
        Ok::<_, ApiError>(declaration)
    })?;
    Reply::json(&UpdatePipelineOutput { pipeline })
}

#[derive(Deserialize)]
pub struct DeletePipelineInput {
    name: String,
}

/// DeletePipeline: removes the pipeline; deleting a pipeline that does not exist succeeds.
pub fn delete_pipeline(ctx: &Ctx, input: DeletePipelineInput) -> Result<Reply, ApiError> {
    ctx.store.write(&ctx.scope, |data| data.pipelines.remove(&input.name));
    Ok(Reply::Empty)
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
    let max = input.max_results.and_then(|m| usize::try_from(m).ok()).unwrap_or(DEFAULT_PAGE_SIZE);
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
        paginate("ListPipelines", summaries, |s| s.name.clone(), input.next_token.as_deref(), max)
    })?;
    Reply::json(&ListPipelinesOutput { pipelines: page.items, next_token: page.next_token })
}

/// The pipeline named `name`, or AWS's `PipelineNotFoundException`.
pub fn find<'d>(data: &'d PartitionData, account: &str, name: &str) -> Result<&'d PipelineRecord, ApiError> {
    data.pipelines.get(name).ok_or_else(|| pipeline_not_found(account, name))
}
