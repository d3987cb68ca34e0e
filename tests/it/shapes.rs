//! Every answer checked against the service model: the members of a successful response must be the output shape's
//! (with the model's types and enum values), and its required members must be there. The test harness runs this on
//! every successful raw AWS call of every test, so a member the model does not know cannot creep in unnoticed.

use std::sync::LazyLock;

use serde_json::Value;

static MODEL: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/model/service-2.json"))
        .expect("the service model");
    serde_json::from_str(&text).expect("the service model is JSON")
});

/// Members AWS sends that the model does not describe, by structure: `ActionTypeId` carries its shape name.
const EXTRA_MEMBERS: &[(&str, &str)] = &[("ActionTypeId", "__type")];

/// The live service's deviations from the model (`fixtures/model/overrides.json`): members AWS leaves out of its
/// answers although the model requires them, by structure.
static OUTPUT_OPTIONAL: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/model/overrides.json"))
        .expect("the model overrides");
    serde_json::from_str(&text).expect("the model overrides are JSON")
});

fn optional_in_output(shape: &str, member: &str) -> bool {
    OUTPUT_OPTIONAL["shapes"][shape]["outputOptional"]
        .as_array()
        .is_some_and(|members| members.iter().any(|m| m.as_str() == Some(member)))
}

/// The differences between `body`, the answer to `operation`, and the operation's output shape (empty when it fits).
pub fn output_mismatches(operation: &str, body: &Value) -> Vec<String> {
    let Some(output) = MODEL["operations"][operation]["output"]["shape"].as_str() else {
        return if body.as_object().is_some_and(|o| o.is_empty()) || body.is_null() {
            Vec::new()
        } else {
            vec![format!("{operation} has no output shape, yet answered {body}")]
        };
    };
    let mut out = Vec::new();
    check(output, body, "$", &mut out);
    out
}

fn check(shape_name: &str, value: &Value, path: &str, out: &mut Vec<String>) {
    let shape = &MODEL["shapes"][shape_name];
    let kind = shape["type"].as_str().unwrap_or_default();
    let fits = match kind {
        "structure" => {
            let Some(object) = value.as_object() else {
                out.push(format!("{path}: {shape_name} must be an object, not {value}"));
                return;
            };
            let members = &shape["members"];
            for (name, member) in object {
                if EXTRA_MEMBERS.contains(&(shape_name, name.as_str())) {
                    continue;
                }
                match members[name]["shape"].as_str() {
                    Some(member_shape) => check(member_shape, member, &format!("{path}.{name}"), out),
                    None => out.push(format!("{path}.{name}: not a member of {shape_name}")),
                }
            }
            for required in shape["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !object.contains_key(required) && !optional_in_output(shape_name, required) {
                    out.push(format!("{path}.{required}: required by {shape_name}, missing"));
                }
            }
            true
        }
        "list" => match value.as_array() {
            Some(items) => {
                let member = shape["member"]["shape"].as_str().unwrap_or_default();
                for (i, item) in items.iter().enumerate() {
                    check(member, item, &format!("{path}[{i}]"), out);
                }
                true
            }
            None => false,
        },
        "map" => match value.as_object() {
            Some(entries) => {
                let member = shape["value"]["shape"].as_str().unwrap_or_default();
                for (key, item) in entries {
                    check(member, item, &format!("{path}.{key}"), out);
                }
                true
            }
            None => false,
        },
        "string" => match value.as_str() {
            Some(text) => {
                if let Some(allowed) = shape["enum"].as_array()
                    && !allowed.iter().any(|a| a.as_str() == Some(text))
                {
                    out.push(format!("{path}: {text:?} is not a value of {shape_name}"));
                }
                true
            }
            None => false,
        },
        "integer" | "long" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "timestamp" | "double" | "float" => value.is_number(),
        "blob" => value.is_string(),
        other => {
            out.push(format!("{path}: the model's type {other:?} of {shape_name} is not checked"));
            true
        }
    };
    if !fits {
        out.push(format!("{path}: {value} is not a {kind} ({shape_name})"));
    }
}

#[test]
fn the_checker_catches_strays_and_missing_members() {
    let good = serde_json::json!({"pipelineExecutionId": "x"});
    assert!(output_mismatches("StartPipelineExecution", &good).is_empty());
    let stray = serde_json::json!({"pipelineExecutionId": "x", "extra": 1});
    assert_eq!(
        output_mismatches("StartPipelineExecution", &stray),
        ["$.extra: not a member of StartPipelineExecutionOutput"]
    );
    let wrong = serde_json::json!({"pipelineExecutionSummaries": [{"status": "Sleeping"}]});
    assert_eq!(
        output_mismatches("ListPipelineExecutions", &wrong),
        ["$.pipelineExecutionSummaries[0].status: \"Sleeping\" is not a value of PipelineExecutionStatus"]
    );
}
