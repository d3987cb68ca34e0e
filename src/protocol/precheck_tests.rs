use std::sync::LazyLock;

use serde_json::{Value, json};

use super::is_clean;
use crate::protocol::body::parse_json;
use crate::protocol::model::Model;
use crate::protocol::validate::validate;

static MODEL: LazyLock<Model> = LazyLock::new(|| Model::load().expect("model loads"));

/// What the quick pass and the full path say of one body: (clean, accepted).
fn verdicts(operation: &str, bytes: &[u8]) -> (bool, bool) {
    let input = MODEL.operation(operation).and_then(|o| o.input).expect("the operation has an input");
    let accepted = parse_json(bytes).and_then(|value| validate(&MODEL, input, &value)).is_ok();
    (is_clean(&MODEL, input, bytes), accepted)
}

/// Every CodePipeline request of the reference captures, as (operation, body).
fn captured_requests() -> Vec<(String, Value)> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/native-captures");
    let mut requests = Vec::new();
    let Ok(entries) = std::fs::read_dir(&folder) else { return requests };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(record) = serde_json::from_str::<Value>(line) else { continue };
            if record.get("svc").is_some() {
                continue;
            }
            if let (Some(op), Some(body)) = (record["op"].as_str(), record.get("p"))
                && MODEL.operation(op).is_some_and(|o| o.input.is_some())
            {
                requests.push((op.to_string(), body.clone()));
            }
        }
    }
    requests
}

/// Requests of the project's own: every example pipeline created, and one request of each kind of input member
/// (maps, numbers, enums, lists of scalars, timestamps), so the tests do not depend on the captures being there.
fn fixture_requests() -> Vec<(String, Value)> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pipelines");
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:p";
    let mut requests: Vec<(String, Value)> = [
        ("GetPipeline", json!({"name": "p", "version": 2})),
        ("ListPipelines", json!({"maxResults": 10, "nextToken": "abc"})),
        ("TagResource", json!({"resourceArn": arn, "tags": [{"key": "k", "value": "v"}, {"key": "a", "value": ""}]})),
        ("UntagResource", json!({"resourceArn": arn, "tagKeys": ["k", "a"]})),
        (
            "StartPipelineExecution",
            json!({"name": "p", "variables": [{"name": "v", "value": "x"}],
            "clientRequestToken": "t-1", "sourceRevisions": [{"actionName": "Source",
            "revisionType": "COMMIT_ID", "revisionValue": "abc"}]}),
        ),
        (
            "PutApprovalResult",
            json!({"pipelineName": "p", "stageName": "s", "actionName": "a",
            "result": {"summary": "ok", "status": "Approved"}, "token": "0f8b1a6e-1111-2222-3333-444455556666"}),
        ),
        (
            "ListActionExecutions",
            json!({"pipelineName": "p", "maxResults": 100,
            "filter": {"pipelineExecutionId": "0f8b1a6e-1111-2222-3333-444455556666"}}),
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": "0f8b1a6e-1111-2222-3333-444455556666",
            "currentRevision": {"revision": "r", "changeIdentifier": "c", "created": 1700000000.5},
            "outputVariables": {"a": "1", "b": "2"}, "executionDetails": {"percentComplete": 50}}),
        ),
        (
            "PollForJobs",
            json!({"actionTypeId": {"category": "Build", "owner": "Custom", "provider": "P",
            "version": "1"}, "maxBatchSize": 5, "queryParam": {"k": "v"}}),
        ),
    ]
    .into_iter()
    .map(|(op, body)| (op.to_string(), body))
    .collect();
    for entry in std::fs::read_dir(folder).expect("fixtures").flatten() {
        if entry.path().extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("fixture reads");
        let pipeline: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let pipeline = pipeline.get("pipeline").cloned().unwrap_or(pipeline);
        requests.push(("CreatePipeline".to_string(), json!({ "pipeline": pipeline })));
    }
    requests
}

/// Bodies made from `value` by breaking one place at a time: each value replaced by null, by each other JSON type,
/// by an empty and an overlong string, an empty list, a huge number; each object member removed.
fn broken(value: &Value) -> Vec<Value> {
    let replacements = [
        Value::Null,
        json!(""),
        json!("x".repeat(5000)),
        json!("not-an-arn with spaces"),
        json!(7),
        json!(-1),
        json!(2.5),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(true),
        json!([]),
        json!([null]),
        json!({}),
        json!({"unexpected": 1}),
    ];
    let mut out: Vec<Value> = replacements.to_vec();
    match value {
        Value::Object(members) => {
            for (key, child) in members {
                let mut without = members.clone();
                without.remove(key);
                out.push(Value::Object(without));
                for variant in broken(child) {
                    let mut changed = members.clone();
                    changed.insert(key.clone(), variant);
                    out.push(Value::Object(changed));
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for variant in broken(child) {
                    let mut changed = items.clone();
                    changed[i] = variant;
                    out.push(Value::Array(changed));
                }
            }
            let mut doubled = items.clone();
            doubled.extend(items.iter().cloned());
            out.push(Value::Array(doubled));
        }
        _ => {}
    }
    out
}

#[test]
fn every_captured_and_fixture_request_that_is_valid_is_clean() {
    let requests: Vec<_> = captured_requests().into_iter().chain(fixture_requests()).collect();
    assert!(requests.len() >= 20, "found only {} requests", requests.len());
    for (op, body) in &requests {
        let bytes = serde_json::to_vec(body).expect("serializes");
        let (clean, accepted) = verdicts(op, &bytes);
        assert_eq!(clean, accepted, "{op} {body}");
    }
}

#[test]
fn no_broken_request_is_called_clean_when_the_full_path_refuses_it() {
    let requests: Vec<_> = captured_requests().into_iter().chain(fixture_requests()).collect();
    let (mut checked, mut refused) = (0, 0);
    for (op, body) in requests.iter().take(60) {
        for variant in broken(body) {
            let bytes = serde_json::to_vec(&variant).expect("serializes");
            let (clean, accepted) = verdicts(op, &bytes);
            assert!(!clean || accepted, "{op}: the quick pass calls clean what the full path refuses: {variant}");
            checked += 1;
            refused += usize::from(!accepted);
        }
    }
    assert!(checked > 1000 && refused > 500, "checked {checked}, refused {refused}");
}

#[test]
fn what_only_the_text_shows_is_never_clean() {
    let cases: [(&str, &[u8]); 9] = [
        ("GetPipeline", br#"{"name": "a", "name": "b"}"#),
        ("GetPipeline", br#"{"name": "a"} trailing"#),
        ("GetPipeline", br#"{"name": "a""#),
        ("GetPipeline", br#"["name"]"#),
        ("GetPipeline", b""),
        ("GetPipeline", br#"{"name": "a", "version": 1.0}"#),
        ("GetPipeline", br#"{"name": "a", "version": 2147483648}"#),
        ("ListPipelines", br#"{"maxResults": 0}"#),
        ("TagResource", br#"{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:p", "tags": [null]}"#),
    ];
    for (op, bytes) in cases {
        assert!(!verdicts(op, bytes).0, "{op} {}", String::from_utf8_lossy(bytes));
    }
    let fine: [(&str, &[u8]); 3] = [
        ("GetPipeline", br#"{"name": "a", "version": 3, "unknown": [1, {"x": null}]}"#),
        ("GetPipeline", br#"{"n\u0061me": "a"}"#),
        ("TagResource", br#"{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:p", "tags": []}"#),
    ];
    for (op, bytes) in fine {
        assert_eq!(verdicts(op, bytes), (true, true), "{op} {}", String::from_utf8_lossy(bytes));
    }
}
