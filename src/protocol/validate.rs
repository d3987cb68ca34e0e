//! Input validation driven by the service model: JSON types first, then every constraint at every depth.
//!
//! Like AWS's Coral services, the request is first deserialized (a member of the wrong JSON type is a
//! `SerializationException` and nothing else is reported), then validated as a whole: all violations are collected
//! in model member order and reported in one `ValidationException`:
//!
//! `2 validation errors detected: Value at 'a.b' failed to satisfy constraint: Member must not be null; Value at ...`
//!
//! CodePipeline prints `Value at '<path>'` without the offending value (behaviour.md §14.4). Paths use the JSON
//! member names; a list element is `<list>.<1-based index>.member`. Lists of scalars and maps are reported once per
//! collection in Coral's bracketed form (`Member must satisfy constraint: [...]`, `Map keys must satisfy constraint:
//! [...]`, `Map value must satisfy constraint: [...]`): observed on other Coral services, UNCONFIRMED for CodePipeline.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::model::{Model, Shape, ShapeId, ShapeKind};

/// Validates a request body against an input shape.
pub fn validate(model: &Model, shape: ShapeId, value: &Value) -> Result<(), ApiError> {
    let mut walker = Walker { model, path: String::new(), errors: Vec::new() };
    walker.check(shape, value).map_err(ApiError::serialization)?;
    if walker.errors.is_empty() {
        return Ok(());
    }
    let count = walker.errors.len();
    let noun = if count == 1 { "error" } else { "errors" };
    Err(ApiError::validation(format!("{count} validation {noun} detected: {}", walker.errors.join("; "))))
}

/// Where an element sits in its collection.
enum Segment<'a> {
    Index(usize),
    Key(&'a str),
}

/// A wrong JSON type: the message of the `SerializationException`.
type TypeError = String;

struct Walker<'m> {
    model: &'m Model,
    /// The dotted path of the value being checked, e.g. `pipeline.stages.1.member.name`.
    path: String,
    errors: Vec<String>,
}

impl<'m> Walker<'m> {
    fn check(&mut self, id: ShapeId, value: &Value) -> Result<(), TypeError> {
        let shape = self.model.shape(id);
        match (&shape.kind, value) {
            (ShapeKind::Structure { members, .. }, Value::Object(object)) => {
                for member in members {
                    let mark = self.push(&member.name);
                    match object.get(&member.name) {
                        None | Some(Value::Null) => {
                            if member.required {
                                self.violation("Member must not be null");
                            }
                        }
                        Some(child) => self.check(member.shape, child)?,
                    }
                    self.pop(mark);
                }
                Ok(())
            }
            (ShapeKind::List { member }, Value::Array(items)) => self.check_list(shape, *member, items),
            (ShapeKind::Map { key, value: value_shape }, Value::Object(entries)) => {
                self.check_map(shape, *key, *value_shape, entries)
            }
            (ShapeKind::String { .. }, Value::String(text)) => {
                for message in string_violations(shape, text) {
                    self.violation(&message);
                }
                Ok(())
            }
            (ShapeKind::Integer, Value::Number(n)) => {
                self.check_integer(shape, n, i64::from(i32::MIN), i64::from(i32::MAX))
            }
            (ShapeKind::Long, Value::Number(n)) => self.check_integer(shape, n, i64::MIN, i64::MAX),
            (ShapeKind::Double | ShapeKind::Timestamp, Value::Number(_)) => Ok(()),
            (ShapeKind::Boolean, Value::Bool(_)) => Ok(()),
            (ShapeKind::Blob, Value::String(_)) => Ok(()),
            (_, Value::Null) => Ok(()),
            (kind, found) => Err(self.type_error(kind, found)),
        }
    }

    fn check_integer(&mut self, shape: &Shape, n: &serde_json::Number, lo: i64, hi: i64) -> Result<(), TypeError> {
        let Some(v) = n.as_i64().filter(|v| (lo..=hi).contains(v)) else {
            return Err(self.located(&format!("NUMBER_VALUE {n} cannot be converted to {}", type_name(&shape.kind))));
        };
        for message in integer_violations(shape, v) {
            self.violation(&message);
        }
        Ok(())
    }

    fn check_list(&mut self, shape: &Shape, member: ShapeId, items: &[Value]) -> Result<(), TypeError> {
        if let Some(message) = size_violation(shape, items.len()) {
            self.violation(&message);
        }
        let elements = items.iter().enumerate().map(|(i, item)| (Segment::Index(i), item));
        self.check_elements(member, elements, "Member")
    }

    fn check_map(
        &mut self,
        shape: &Shape,
        key: ShapeId,
        value: ShapeId,
        entries: &Map<String, Value>,
    ) -> Result<(), TypeError> {
        if let Some(message) = size_violation(shape, entries.len()) {
            self.violation(&message);
        }
        let key_shape = self.model.shape(key);
        let keys_broken = entries.keys().any(|k| !string_violations(key_shape, k).is_empty());
        if keys_broken {
            let described = describe_constraints(key_shape, false);
            self.violation(&format!("Map keys must satisfy constraint: [{described}]"));
        }
        let elements = entries.iter().map(|(k, v)| (Segment::Key(k), v));
        self.check_elements(value, elements, "Map value")
    }

    /// Checks the elements of a list or the values of a map. Scalars are reported once for the whole collection,
    /// in Coral's bracketed form (`<label> must satisfy constraint: [...]`); structures are checked one by one.
    fn check_elements<'v>(
        &mut self,
        element: ShapeId,
        elements: impl Iterator<Item = (Segment<'v>, &'v Value)>,
        label: &str,
    ) -> Result<(), TypeError> {
        let shape = self.model.shape(element);
        let scalar = is_scalar(&shape.kind);
        let (mut broken, mut has_null) = (false, false);
        for (segment, item) in elements {
            let mark = match segment {
                Segment::Index(index) => self.push_index(index),
                Segment::Key(key) => self.push(key),
            };
            match (item, scalar) {
                (Value::Null, true) => has_null = true,
                (Value::Null, false) => self.violation("Member must not be null"),
                (_, true) => broken |= self.scalar_is_invalid(shape, item)?,
                (_, false) => self.check(element, item)?,
            }
            self.pop(mark);
        }
        if broken || has_null {
            let described = describe_constraints(shape, has_null);
            self.violation(&format!("{label} must satisfy constraint: [{described}]"));
        }
        Ok(())
    }

    /// Type-checks one scalar element and tells whether it breaks a constraint, without reporting it.
    fn scalar_is_invalid(&self, shape: &Shape, item: &Value) -> Result<bool, TypeError> {
        match (&shape.kind, item) {
            (ShapeKind::String { .. }, Value::String(text)) => Ok(!string_violations(shape, text).is_empty()),
            (ShapeKind::Integer | ShapeKind::Long, Value::Number(n)) => match n.as_i64() {
                Some(v) => Ok(!integer_violations(shape, v).is_empty()),
                None => {
                    Err(self.located(&format!("NUMBER_VALUE {n} cannot be converted to {}", type_name(&shape.kind))))
                }
            },
            (ShapeKind::Boolean, Value::Bool(_)) | (ShapeKind::Double | ShapeKind::Timestamp, Value::Number(_)) => {
                Ok(false)
            }
            (ShapeKind::Blob, Value::String(_)) => Ok(false),
            (kind, found) => Err(self.type_error(kind, found)),
        }
    }

    fn type_error(&self, expected: &ShapeKind, found: &Value) -> TypeError {
        let message = match found {
            Value::Object(_) => "Start of structure or map found where not expected".to_string(),
            Value::Array(_) => "Start of list found where not expected".to_string(),
            Value::String(_) => format!("STRING_VALUE cannot be converted to {}", type_name(expected)),
            Value::Number(_) => format!("NUMBER_VALUE cannot be converted to {}", type_name(expected)),
            Value::Bool(_) => format!("BOOLEAN_VALUE cannot be converted to {}", type_name(expected)),
            Value::Null => format!("null cannot be converted to {}", type_name(expected)),
        };
        self.located(&message)
    }

    fn located(&self, message: &str) -> String {
        if self.path.is_empty() { message.to_string() } else { format!("{message} at '{}'", self.path) }
    }

    fn violation(&mut self, constraint: &str) {
        self.errors.push(format!("Value at '{}' failed to satisfy constraint: {constraint}", self.path));
    }

    /// Appends `.segment` to the path and returns the length to restore.
    fn push(&mut self, segment: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(segment);
        mark
    }

    fn push_index(&mut self, index: usize) -> usize {
        let mark = self.path.len();
        self.path.push('.');
        self.path.push_str(&(index + 1).to_string());
        self.path.push_str(".member");
        mark
    }

    fn pop(&mut self, mark: usize) {
        self.path.truncate(mark);
    }
}

fn is_scalar(kind: &ShapeKind) -> bool {
    !matches!(kind, ShapeKind::Structure { .. } | ShapeKind::List { .. } | ShapeKind::Map { .. })
}

fn type_name(kind: &ShapeKind) -> &'static str {
    match kind {
        ShapeKind::Structure { .. } => "a structure",
        ShapeKind::List { .. } => "a list",
        ShapeKind::Map { .. } => "a map",
        ShapeKind::String { .. } => "String",
        ShapeKind::Integer => "Integer",
        ShapeKind::Long => "Long",
        ShapeKind::Boolean => "Boolean",
        ShapeKind::Timestamp => "Timestamp",
        ShapeKind::Double => "Double",
        ShapeKind::Blob => "Blob",
    }
}

/// Violations of a string's length, pattern and enum, in the order Coral reports them.
pub(super) fn string_violations(shape: &Shape, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    if shape.min.is_some() || shape.max.is_some() {
        // Smithy measures string length in Unicode scalar values.
        if let Some(message) = size_violation(shape, text.chars().count()) {
            out.push(message);
        }
    }
    if let ShapeKind::String { enum_values, pattern } = &shape.kind {
        if let Some(pattern) = pattern
            && !pattern.matches(text)
        {
            out.push(format!("Member must satisfy regular expression pattern: {}", pattern.source));
        }
        if let Some(values) = enum_values
            && !values.iter().any(|v| v == text)
        {
            out.push(format!("Member must satisfy enum value set: [{}]", values.join(", ")));
        }
    }
    out
}

pub(super) fn integer_violations(shape: &Shape, value: i64) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(min) = shape.min
        && value < min
    {
        out.push(format!("Member must have value greater than or equal to {min}"));
    }
    if let Some(max) = shape.max
        && value > max
    {
        out.push(format!("Member must have value less than or equal to {max}"));
    }
    out
}

/// A length violation of a string, list or map.
pub(super) fn size_violation(shape: &Shape, len: usize) -> Option<String> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if let Some(min) = shape.min
        && len < min
    {
        return Some(format!("Member must have length greater than or equal to {min}"));
    }
    if let Some(max) = shape.max
        && len > max
    {
        return Some(format!("Member must have length less than or equal to {max}"));
    }
    None
}

/// All constraints of a scalar shape, as Coral lists them inside brackets: maximum, minimum, pattern, enum.
fn describe_constraints(shape: &Shape, with_not_null: bool) -> String {
    let unit = match shape.kind {
        ShapeKind::Integer | ShapeKind::Long | ShapeKind::Double => "value",
        _ => "length",
    };
    let mut parts = Vec::new();
    if let Some(max) = shape.max {
        parts.push(format!("Member must have {unit} less than or equal to {max}"));
    }
    if let Some(min) = shape.min {
        parts.push(format!("Member must have {unit} greater than or equal to {min}"));
    }
    if let ShapeKind::String { enum_values, pattern } = &shape.kind {
        if let Some(pattern) = pattern {
            parts.push(format!("Member must satisfy regular expression pattern: {}", pattern.source));
        }
        if let Some(values) = enum_values {
            parts.push(format!("Member must satisfy enum value set: [{}]", values.join(", ")));
        }
    }
    if with_not_null {
        parts.push("Member must not be null".to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::ErrorCode;
    use serde_json::json;
    use std::sync::LazyLock;

    static MODEL: LazyLock<Model> = LazyLock::new(|| Model::load().expect("model loads"));

    fn run(operation: &str, body: Value) -> Result<(), ApiError> {
        let op = MODEL.operation(operation).expect("operation exists");
        validate(&MODEL, op.input.expect("has input"), &body)
    }

    fn message(operation: &str, body: Value) -> String {
        let err = run(operation, body).expect_err("should fail validation");
        assert_eq!(err.code, ErrorCode::ValidationException, "{}", err.message);
        err.message
    }

    fn serialization(operation: &str, body: Value) -> String {
        let err = run(operation, body).expect_err("should fail");
        assert_eq!(err.code, ErrorCode::SerializationException, "{}", err.message);
        err.message
    }

    #[test]
    fn valid_input_passes() {
        assert_eq!(run("GetPipeline", json!({"name": "p1", "version": 3})), Ok(()));
        assert_eq!(run("ListPipelines", json!({})), Ok(()));
    }

    #[test]
    fn unknown_members_are_ignored() {
        assert_eq!(run("GetPipeline", json!({"name": "p1", "color": [1, 2]})), Ok(()));
    }

    #[test]
    fn null_counts_as_absent() {
        assert_eq!(run("GetPipeline", json!({"name": "p", "version": null})), Ok(()));
        assert_eq!(
            message("GetPipeline", json!({"name": null})),
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn native_examples_are_reproduced() {
        // behaviour.md §14.4, captured from AWS.
        assert_eq!(
            message("ListActionExecutions", json!({"pipelineName": "p", "filter": {"latestInPipelineExecution": {}}})),
            "2 validation errors detected: Value at 'filter.latestInPipelineExecution.pipelineExecutionId' failed to \
             satisfy constraint: Member must not be null; Value at 'filter.latestInPipelineExecution.startTimeRange' \
             failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            message(
                "ListActionExecutions",
                json!({"pipelineName": "p", "filter": {"latestInPipelineExecution": {
                    "pipelineExecutionId": "0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a", "startTimeRange": "Unknown"}}})
            ),
            "1 validation error detected: Value at 'filter.latestInPipelineExecution.startTimeRange' failed to \
             satisfy constraint: Member must satisfy enum value set: [All, Latest]"
        );
        assert_eq!(
            message(
                "RollbackStage",
                json!({"pipelineName": "p", "stageName": "s", "targetPipelineExecutionId": "nope"})
            ),
            "1 validation error detected: Value at 'targetPipelineExecutionId' failed to satisfy constraint: Member \
             must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        );
    }

    #[test]
    fn nested_list_paths_are_one_based_with_member() {
        let body = json!({"pipeline": {
        "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
        "stages": [
            {"name": "Source", "actions": []},
            {"name": "bad name", "actions": [{"name": "a", "actionTypeId":
                {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}, "runOrder": 0}]}
        ]}});
        assert_eq!(
            message("CreatePipeline", body),
            "2 validation errors detected: Value at 'pipeline.stages.2.member.name' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+; Value at \
             'pipeline.stages.2.member.actions.1.member.runOrder' failed to satisfy constraint: Member must have \
             value greater than or equal to 1"
        );
    }

    #[test]
    fn length_and_pattern_are_both_reported() {
        assert_eq!(
            message("GetPipeline", json!({"name": ""})),
            "2 validation errors detected: Value at 'name' failed to satisfy constraint: Member must have length \
             greater than or equal to 1; Value at 'name' failed to satisfy constraint: Member must satisfy regular \
             expression pattern: [A-Za-z0-9.@\\-_]+"
        );
        assert_eq!(
            message("GetPipeline", json!({"name": "x".repeat(101)})),
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less \
             than or equal to 100"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // 100 two-byte characters are 100 characters long, within PipelineVariableDescription's 200.
        let description = "é".repeat(200);
        let body = json!({"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "stages": [],
            "variables": [{"name": "v", "description": description}]}});
        assert_eq!(run("CreatePipeline", body), Ok(()));
    }

    #[test]
    fn scalar_lists_and_maps_use_coral_brackets() {
        assert_eq!(
            message(
                "UntagResource",
                json!({"resourceArn": "arn:aws:codepipeline:us-east-1:123456789012:p",
                "tagKeys": ["ok", "", "fine"]})
            ),
            "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must satisfy \
             constraint: [Member must have length less than or equal to 128, Member must have length greater than \
             or equal to 1]"
        );
        assert_eq!(
            message(
                "PollForJobs",
                json!({
                "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "J", "version": "1"},
                "queryParam": {"ProjectName": "has space", "": "x"}})
            ),
            "3 validation errors detected: Value at 'queryParam' failed to satisfy constraint: Member must have \
             length less than or equal to 1; Value at 'queryParam' failed to satisfy constraint: Map keys must \
             satisfy constraint: [Member must have length less than or equal to 50, Member must have length greater \
             than or equal to 1]; Value at 'queryParam' failed to satisfy constraint: Map value must satisfy \
             constraint: [Member must have length less than or equal to 50, Member must have length greater than or \
             equal to 1, Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+]"
        );
    }

    #[test]
    fn list_size_limits() {
        let variables: Vec<Value> = (0..51).map(|i| json!({"name": format!("v{i}"), "value": "x"})).collect();
        assert_eq!(
            message("StartPipelineExecution", json!({"name": "p", "variables": variables})),
            "1 validation error detected: Value at 'variables' failed to satisfy constraint: Member must have length \
             less than or equal to 50"
        );
        // The model's minimum of 1 is overridden: AWS accepts an empty list (overrides.json).
        assert!(run("StartPipelineExecution", json!({"name": "p", "variables": []})).is_ok());
        let step = json!({"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
            "artifactStore": {"type": "S3", "location": "bucket"},
            "stages": [{"name": "S", "actions": [{"name": "A", "commands": [],
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "Commands", "version": "1"}}]}]});
        assert_eq!(
            message("CreatePipeline", json!({"pipeline": step})),
            "1 validation error detected: Value at 'pipeline.stages.1.member.actions.1.member.commands' failed to \
             satisfy constraint: Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn map_of_structures_recurses_by_key() {
        let body = json!({"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "stages": [],
            "artifactStores": {"us-west-2": {"type": "S3", "location": "x"}}}});
        assert_eq!(
            message("CreatePipeline", body),
            "1 validation error detected: Value at 'pipeline.artifactStores.us-west-2.location' failed to satisfy \
             constraint: Member must have length greater than or equal to 3"
        );
    }

    #[test]
    fn wrong_types_are_serialization_errors_naming_the_member() {
        assert_eq!(
            serialization("GetPipeline", json!({"name": 5})),
            "NUMBER_VALUE cannot be converted to String at 'name'"
        );
        assert_eq!(
            serialization("GetPipeline", json!({"name": "p", "version": "3"})),
            "STRING_VALUE cannot be converted to Integer at 'version'"
        );
        assert_eq!(
            serialization("GetPipeline", json!({"name": "p", "version": 2.5})),
            "NUMBER_VALUE 2.5 cannot be converted to Integer at 'version'"
        );
        assert_eq!(
            serialization("GetPipeline", json!({"name": "p", "version": 4_294_967_296_i64})),
            "NUMBER_VALUE 4294967296 cannot be converted to Integer at 'version'"
        );
        assert_eq!(
            serialization("CreatePipeline", json!({"pipeline": {"stages": {"a": 1}}})),
            "Start of structure or map found where not expected at 'pipeline.stages'"
        );
        assert_eq!(
            serialization("UntagResource", json!({"tagKeys": ["a", true]})),
            "BOOLEAN_VALUE cannot be converted to String at 'tagKeys.2.member'"
        );
        assert_eq!(
            serialization("ListPipelines", json!({"nextToken": ["x"]})),
            "Start of list found where not expected at 'nextToken'"
        );
    }

    #[test]
    fn type_errors_win_over_constraint_violations() {
        // 'name' is invalid, but the wrong type of 'version' is reported alone, as deserialization fails first.
        assert_eq!(
            serialization("GetPipeline", json!({"name": "", "version": true})),
            "BOOLEAN_VALUE cannot be converted to Integer at 'version'"
        );
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert_eq!(serialization("ListPipelines", json!([1])), "Start of list found where not expected");
        assert_eq!(serialization("ListPipelines", json!("x")), "STRING_VALUE cannot be converted to a structure");
    }

    #[test]
    fn timestamps_are_numbers() {
        let ok = json!({"pipelineName": "p", "stageName": "s", "actionName": "a",
            "actionRevision": {"revisionId": "r", "revisionChangeId": "c", "created": 1_700_000_000.5}});
        assert_eq!(run("PutActionRevision", ok), Ok(()));
        let bad = json!({"pipelineName": "p", "stageName": "s", "actionName": "a",
            "actionRevision": {"revisionId": "r", "revisionChangeId": "c", "created": "2024-01-01"}});
        assert_eq!(
            serialization("PutActionRevision", bad),
            "STRING_VALUE cannot be converted to Timestamp at 'actionRevision.created'"
        );
    }

    #[test]
    fn every_operation_accepts_a_minimal_valid_body_shape() {
        // An empty object either passes or fails only with 'must not be null' violations: the walker never
        // reports anything else for absent members, whatever the operation.
        for name in MODEL.operation_names() {
            if let Err(err) = run(name, json!({})) {
                assert_eq!(err.code, ErrorCode::ValidationException, "{name}");
                for part in err.message.split("; ") {
                    assert!(part.ends_with("Member must not be null"), "{name}: {part}");
                }
            }
        }
    }
}
