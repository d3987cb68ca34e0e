//! Model-driven input validation, one row per constraint kind, over several operations, through the wire.

use crate::common::TestServer;

const PREFIX1: &str = "1 validation error detected: ";

struct Row {
    kind: &'static str,
    operation: &'static str,
    body: String,
    message: String,
}

fn row(kind: &'static str, operation: &'static str, body: impl Into<String>, violations: &[&str]) -> Row {
    let count = violations.len();
    let header = if count == 1 { PREFIX1.to_string() } else { format!("{count} validation errors detected: ") };
    Row { kind, operation, body: body.into(), message: format!("{header}{}", violations.join("; ")) }
}

fn at(path: &str, constraint: &str) -> String {
    format!("Value at '{path}' failed to satisfy constraint: {constraint}")
}

#[tokio::test]
async fn each_constraint_kind_is_reported_in_aws_format() {
    let server = TestServer::start().await;
    let uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
    let rows = [
        // required
        row("required", "GetPipeline", "{}", &[&at("name", "Member must not be null")]),
        row(
            "required (several, in model order)",
            "PutApprovalResult",
            r#"{"pipelineName": "p"}"#,
            &[
                &at("stageName", "Member must not be null"),
                &at("actionName", "Member must not be null"),
                &at("result", "Member must not be null"),
                &at("token", "Member must not be null"),
            ],
        ),
        // min length
        row(
            "min length",
            "DisableStageTransition",
            r#"{"pipelineName": "p", "stageName": "s", "transitionType": "Inbound", "reason": ""}"#,
            &[
                &at("reason", "Member must have length greater than or equal to 1"),
                &at("reason", r"Member must satisfy regular expression pattern: [a-zA-Z0-9!@ \(\)\.\*\?\-]+"),
            ],
        ),
        // max length
        row(
            "max length",
            "ListPipelines",
            format!(r#"{{"nextToken": "{}"}}"#, "t".repeat(2049)),
            &[&at("nextToken", "Member must have length less than or equal to 2048")],
        ),
        // pattern
        row(
            "pattern",
            "GetPipelineExecution",
            r#"{"pipelineName": "p", "pipelineExecutionId": "not-a-uuid"}"#,
            &[&at("pipelineExecutionId", &format!("Member must satisfy regular expression pattern: {uuid}"))],
        ),
        // enum
        row(
            "enum",
            "EnableStageTransition",
            r#"{"pipelineName": "p", "stageName": "s", "transitionType": "Sideways"}"#,
            &[&at("transitionType", "Member must satisfy enum value set: [Inbound, Outbound]")],
        ),
        row(
            "enum (native capture)",
            "ListActionExecutions",
            format!(
                r#"{{"pipelineName": "p", "filter": {{"latestInPipelineExecution": {{"pipelineExecutionId": "{}", "startTimeRange": "Unknown"}}}}}}"#,
                "0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a"
            ),
            &[&at(
                "filter.latestInPipelineExecution.startTimeRange",
                "Member must satisfy enum value set: [All, Latest]",
            )],
        ),
        // numeric range
        row(
            "range (min)",
            "ListPipelines",
            r#"{"maxResults": 0}"#,
            &[&at("maxResults", "Member must have value greater than or equal to 1")],
        ),
        row(
            "range (max)",
            "ListPipelineExecutions",
            r#"{"pipelineName": "p", "maxResults": 101}"#,
            &[&at("maxResults", "Member must have value less than or equal to 100")],
        ),
        // list size
        row(
            "list size (max)",
            "StartPipelineExecution",
            format!(
                r#"{{"name": "p", "variables": [{}]}}"#,
                (0..51).map(|i| format!(r#"{{"name": "v{i}", "value": "x"}}"#)).collect::<Vec<_>>().join(",")
            ),
            &[&at("variables", "Member must have length less than or equal to 50")],
        ),
        row(
            "list size (min)",
            "CreatePipeline",
            r#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
                "artifactStore": {"type": "S3", "location": "bucket"},
                "stages": [{"name": "S", "actions": [{"name": "A", "commands": [],
                    "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "Commands", "version": "1"}}]}]}}"#,
            &[&at(
                "pipeline.stages.1.member.actions.1.member.commands",
                "Member must have length greater than or equal to 1",
            )],
        ),
        // map size
        row(
            "map size",
            "PollForJobs",
            r#"{"actionTypeId": {"category": "Build", "owner": "Custom", "provider": "J", "version": "1"},
                "queryParam": {"A": "1", "B": "2"}}"#,
            &[&at("queryParam", "Member must have length less than or equal to 1")],
        ),
        // nested paths, at depth
        row(
            "nested path",
            "CreatePipeline",
            r#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "stages": [
                {"name": "Source", "actions": [{"name": "a", "actionTypeId":
                    {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}}]},
                {"name": "Build", "actions": [{"name": "b", "actionTypeId":
                    {"category": "Cooking", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                    "inputArtifacts": [{"name": "has space"}], "timeoutInMinutes": 1}]}]}}"#,
            &[
                &at(
                    "pipeline.stages.2.member.actions.1.member.actionTypeId.category",
                    "Member must satisfy enum value set: [Source, Build, Deploy, Test, Invoke, Approval, Compute]",
                ),
                &at(
                    "pipeline.stages.2.member.actions.1.member.inputArtifacts.1.member.name",
                    r"Member must satisfy regular expression pattern: [a-zA-Z0-9_\-]+",
                ),
                &at(
                    "pipeline.stages.2.member.actions.1.member.timeoutInMinutes",
                    "Member must have value greater than or equal to 5",
                ),
            ],
        ),
        row(
            "map value (observed AWS limit)",
            "CreatePipeline",
            format!(
                r#"{{"pipeline": {{"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "stages": [
                {{"name": "S", "actions": [{{"name": "a", "actionTypeId":
                    {{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}},
                    "configuration": {{"S3Bucket": "", "S3ObjectKey": "{}"}}}}]}}]}}}}"#,
                "k".repeat(50_001)
            ),
            &[&at(
                "pipeline.stages.1.member.actions.1.member.configuration",
                "Map value must satisfy constraint: [Member must have length less than or equal to 50000, Member \
                 must have length greater than or equal to 1]",
            )],
        ),
        row(
            "list of scalars",
            "UntagResource",
            format!(
                r#"{{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:p", "tagKeys": ["{}"]}}"#,
                "k".repeat(129)
            ),
            &[&at(
                "tagKeys",
                "Member must satisfy constraint: [Member must have length less than or equal to 128, Member must \
                 have length greater than or equal to 1]",
            )],
        ),
        row(
            "ARN pattern",
            "ListTagsForResource",
            r#"{"resourceArn": "arn:aws:s3:::bucket"}"#,
            &[&at(
                "resourceArn",
                r"Member must satisfy regular expression pattern: arn:aws(-[\w]+)*:codepipeline:.+:[0-9]{12}:.+",
            )],
        ),
    ];
    let mut failures = Vec::new();
    for row in rows {
        let response = server.call(row.operation, &row.body).await;
        let body = response.json();
        if response.status != 400 || body["__type"] != "ValidationException" || body["message"] != row.message.as_str()
        {
            failures.push(format!(
                "[{}] {}: expected\n  {}\ngot {} {}",
                row.kind, row.operation, row.message, response.status, body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn many_violations_are_counted_and_joined() {
    let server = TestServer::start().await;
    let message = server
        .error(
            "PutApprovalResult",
            r#"{"pipelineName": "", "stageName": "s", "actionName": "a",
                "result": {"summary": "ok", "status": "Maybe"}, "token": "t"}"#,
            "ValidationException",
        )
        .await;
    assert!(message.starts_with("4 validation errors detected: "), "{message}");
    assert_eq!(message.matches("; Value at ").count(), 3, "{message}");
}
