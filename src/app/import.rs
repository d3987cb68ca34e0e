//! Checking a state document before it replaces the state (`PUT /_emulator/state`, `--state-file`).
//!
//! A document is held to what the API would have let in: accounts, regions and names as the model and the request
//! scope allow them, pipeline declarations by the model and the structure rules of CreatePipeline, tags, webhooks,
//! execution ids unique across the whole document, and numbers the store can save and read back (the event sequence,
//! the clock offset). Secrets still masked (`****`, as a default export shows them) are refused: imported, they would
//! replace every credential. Last, every partition is written out and read back as the database would, so that no
//! accepted document can leave a data directory that does not load. The first problem found is named with its
//! place in the document (`partitions[0].pipelines[2].name`).

use std::collections::HashSet;

use serde::Serialize;

use crate::operations::structure::{self, Env};
use crate::protocol::ApiError;
use crate::protocol::identity::is_plausible_region;
use crate::protocol::model::Model;
use crate::protocol::validate::validate;
use crate::state::catalogue::Catalogue;
use crate::state::{PartitionData, SECRET_MASK, Scope, Tags, is_mask};
use crate::store::Import;
use crate::store::document::{Document, PartitionDocument, PipelineDocument};

/// The largest event sequence number a document may carry: the largest integer a JavaScript reader of the event
/// stream's ids holds exactly, and far below what the database's signed 64-bit integer holds once the store has
/// reserved numbers ahead of it.
pub const MAX_EVENT_SEQUENCE: u64 = (1 << 53) - 1;

/// How far the emulator clock may be from wall time, either way: about 101 years, as far as one
/// `POST /_emulator/clock/advance` may move it.
pub const MAX_CLOCK_OFFSET_MILLIS: i64 = 3_200_000_000_000;

/// Checks `document` whole and builds what it describes, ready for [`crate::store::Store::import`].
pub fn check(document: Document, model: &Model, catalogue: &Catalogue) -> Result<Import, ApiError> {
    let refuse = |message: String| ApiError::validation(format!("Invalid state document: {message}"));
    check_numbers(&document).map_err(refuse)?;
    if let Some(rules) = &document.behaviors {
        crate::state::behaviors::BehaviorSet::check(rules).map_err(|e| refuse(format!("behaviors: {e}")))?;
    }
    let mut execution_ids = HashSet::new();
    for (i, partition) in document.partitions.iter().enumerate() {
        check_partition(partition, &mut execution_ids, model).map_err(|e| refuse(format!("partitions[{i}].{e}")))?;
    }
    let clock_offset_millis = document.clock_offset_millis;
    let next_event_sequence = document.next_event_sequence;
    let behaviors = document.behaviors.clone();
    let partitions = document.into_partitions().map_err(|e| refuse(e.to_string()))?;
    for (i, (scope, data)) in partitions.iter().enumerate() {
        check_declarations(scope, data, model, catalogue).map_err(|e| refuse(format!("partitions[{i}].{e}")))?;
        reads_back(scope, data).map_err(|e| refuse(format!("partitions[{i}] would not load back once saved: {e}")))?;
    }
    Ok(Import { partitions, clock_offset_millis, next_event_sequence, behaviors })
}

fn check_numbers(document: &Document) -> Result<(), String> {
    if let Some(sequence) = document.next_event_sequence.filter(|s| *s > MAX_EVENT_SEQUENCE) {
        return Err(format!("nextEventSequence {sequence} is too large; the most is {MAX_EVENT_SEQUENCE}"));
    }
    let offset = document.clock_offset_millis;
    if !(-MAX_CLOCK_OFFSET_MILLIS..=MAX_CLOCK_OFFSET_MILLIS).contains(&offset) {
        return Err(format!(
            "clockOffsetMillis {offset} is out of range; the clock may be at most {MAX_CLOCK_OFFSET_MILLIS} ms \
             (about 101 years) from wall time"
        ));
    }
    let wall = chrono::Utc::now().timestamp_millis();
    if wall.saturating_add(offset) < 0 {
        return Err(format!("clockOffsetMillis {offset} puts the clock before 1970"));
    }
    Ok(())
}

/// A value checked against a shape of the model, as a request member of that shape would be.
fn against_model(model: &Model, shape: &str, value: &impl Serialize) -> Result<(), String> {
    let Some(id) = model.shape_id(shape) else { return Ok(()) };
    let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
    validate(model, id, &value).map_err(|e| e.message)
}

fn check_tags(model: &Model, tags: &Tags) -> Result<(), String> {
    let list: Vec<_> = tags.iter().map(|(key, value)| serde_json::json!({ "key": key, "value": value })).collect();
    against_model(model, "TagList", &list)?;
    if tags.len() > crate::operations::tags::MAX_TAGS {
        return Err(format!(
            "{} tags, more than the {} a resource may have",
            tags.len(),
            crate::operations::tags::MAX_TAGS
        ));
    }
    Ok(())
}

fn masked(what: &str) -> String {
    format!(
        "{what} is the mask {SECRET_MASK} of an export made without secrets: importing it would replace the secret. \
         Export with GET /_emulator/state?includeSecrets=true to move secrets too"
    )
}

fn check_partition(
    partition: &PartitionDocument,
    execution_ids: &mut HashSet<uuid::Uuid>,
    model: &Model,
) -> Result<(), String> {
    let account = &partition.account;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account {account:?} is not a 12-digit account id"));
    }
    let region = &partition.region;
    if !is_plausible_region(region) {
        return Err(format!("region {region:?} is not a region name (lowercase letters, digits and dashes)"));
    }
    let scope = Scope { account: account.clone(), region: region.clone() };
    for (j, pipeline) in partition.pipelines.iter().enumerate() {
        check_pipeline(pipeline, &scope, execution_ids, model).map_err(|e| format!("pipelines[{j}].{e}"))?;
    }
    let mut webhook_names = HashSet::new();
    for (j, webhook) in partition.webhooks.iter().enumerate() {
        let place = format!("webhooks[{j}]");
        let definition = &webhook.definition;
        against_model(model, "WebhookDefinition", definition).map_err(|e| format!("{place}.definition: {e}"))?;
        crate::operations::webhooks::check_filters(definition)
            .map_err(|e| format!("{place}.definition.filters: {}", e.message))?;
        if !webhook_names.insert(definition.name.as_str()) {
            return Err(format!("{place}: webhook {:?} appears twice", definition.name));
        }
        if definition.authentication_configuration.secret_token.as_deref().is_some_and(is_mask) {
            return Err(format!("{place}.definition.authenticationConfiguration.SecretToken: {}", masked("it")));
        }
        check_tags(model, &webhook.tags).map_err(|e| format!("{place}.tags: {e}"))?;
    }
    let mut type_ids = HashSet::new();
    for (j, custom) in partition.custom_action_types.iter().enumerate() {
        let place = format!("customActionTypes[{j}]");
        against_model(model, "ActionType", &custom.action_type).map_err(|e| format!("{place}.actionType: {e}"))?;
        if !type_ids.insert(&custom.action_type.id) {
            return Err(format!("{place}: this action type appears twice"));
        }
        check_tags(model, &custom.tags).map_err(|e| format!("{place}.tags: {e}"))?;
    }
    for (j, partner) in partition.third_party_action_types.iter().enumerate() {
        if is_mask(&partner.client_token) {
            return Err(format!("thirdPartyActionTypes[{j}].clientToken: {}", masked("it")));
        }
    }
    Ok(())
}

fn check_pipeline(
    pipeline: &PipelineDocument,
    scope: &Scope,
    execution_ids: &mut HashSet<uuid::Uuid>,
    model: &Model,
) -> Result<(), String> {
    let name = &pipeline.row.name;
    against_model(model, "PipelineName", name).map_err(|e| format!("name: {e}"))?;
    let arn = scope.arn(name);
    if pipeline.row.arn != arn {
        return Err(format!(
            "arn: {:?} is not this pipeline's ARN in its account and region ({arn})",
            pipeline.row.arn
        ));
    }
    check_tags(model, &pipeline.row.tags).map_err(|e| format!("tags: {e}"))?;
    for (k, definition) in pipeline.definitions.iter().enumerate() {
        if &definition.declaration.name != name {
            return Err(format!(
                "definitions[{k}].declaration.name: {:?} is not the pipeline's name {name:?}",
                definition.declaration.name
            ));
        }
    }
    for (k, execution) in pipeline.executions.iter().enumerate() {
        if !execution_ids.insert(execution.id) {
            return Err(format!("executions[{k}].id: execution {} appears twice in the document", execution.id));
        }
    }
    Ok(())
}

/// Every version of every pipeline, held to the model and to CreatePipeline's structure rules (custom action types
/// as the partition itself declares them); a secret still masked is refused.
fn check_declarations(scope: &Scope, data: &PartitionData, model: &Model, catalogue: &Catalogue) -> Result<(), String> {
    let env = Env { scope, catalogue, data };
    for (j, (name, record)) in data.pipelines.iter().enumerate() {
        for version in &record.versions {
            let place = format!("pipelines[{j}] ({name}) version {}", version.number());
            let declaration = version.declaration();
            against_model(model, "PipelineDeclaration", declaration).map_err(|e| format!("{place}: {e}"))?;
            let checked = structure::check(declaration, None, &env).map_err(|e| format!("{place}: {}", e.message))?;
            let secrets = checked.secrets.iter().chain(version.secrets.iter());
            for (stage, action, key) in secrets {
                let action = declaration.stages.get(*stage).and_then(|s| Some((s, s.actions.get(*action)?)));
                let Some((stage, action)) = action else { continue };
                let value = action.configuration.as_ref().and_then(|c| c.get(key));
                if value.is_some_and(|v| is_mask(v)) {
                    let what = format!("the secret configuration {key} of action {}/{}", stage.name, action.name);
                    return Err(format!("{place}: {}", masked(&what)));
                }
            }
        }
    }
    Ok(())
}

/// Writes the partition out as the database keeps it and reads it back.
fn reads_back(scope: &Scope, data: &PartitionData) -> Result<(), String> {
    let text = serde_json::to_vec(&data.to_document(scope, false)).map_err(|e| e.to_string())?;
    let document: PartitionDocument = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    document.into_partition().map(|_| ()).map_err(|e| e.to_string())
}
