//! The AWS JSON 1.1 wire, byte by byte: framing, headers, protocol errors, limits.

use serde_json::{Value, json};

use crate::common::{Conn, HttpResponse, TestServer, pipeline_json};

fn assert_request_id(response: &HttpResponse) {
    let id = response.header("x-amzn-requestid").expect("x-amzn-RequestId present");
    let parsed = uuid::Uuid::parse_str(id).expect("request id is a UUID");
    assert_eq!(parsed.get_version_num(), 4);
}

#[tokio::test]
async fn every_response_has_a_request_id_and_the_amz_json_content_type() {
    let server = TestServer::start().await;
    let ok = server.call("ListPipelines", "{}").await;
    let error = server.call("GetPipeline", r#"{"name":"missing"}"#).await;
    let unknown = server.call("NoSuchOperation", "{}").await;
    for response in [&ok, &error, &unknown] {
        assert_request_id(response);
        assert_eq!(response.header("content-type"), Some("application/x-amz-json-1.1"));
    }
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), json!({"pipelines": []}));
    assert_ne!(ok.header("x-amzn-requestid"), error.header("x-amzn-requestid"), "ids are unique");
    let mut conn = server.connect().await;
    for path in ["/health", "/_localstack/health", "/nowhere"] {
        assert_request_id(&conn.request("GET", path, &[], b"").await);
    }
}

#[tokio::test]
async fn errors_have_type_message_and_error_type_header() {
    let server = TestServer::start().await;
    let response = server.call("GetPipeline", r#"{"name":"missing"}"#).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.header("x-amzn-errortype"), Some("PipelineNotFoundException"));
    let body = response.json();
    assert_eq!(body["__type"], "PipelineNotFoundException");
    assert_eq!(body["message"], "Account '000000000000' does not have a pipeline with name 'missing'");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "exactly __type and message: {body}");
}

#[tokio::test]
async fn unknown_operation_foreign_prefix_and_missing_target() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let cases: [&[(&str, &str)]; 5] = [
        &[("X-Amz-Target", "CodePipeline_20150709.DescribeEverything")],
        &[("X-Amz-Target", "DynamoDB_20120810.ListTables")],
        &[("X-Amz-Target", "CodePipeline_20150709")],
        &[("X-Amz-Target", "codepipeline_20150709.ListPipelines")],
        &[],
    ];
    for headers in cases {
        let response = conn.request("POST", "/", headers, b"{}").await;
        assert_eq!(response.status, 400, "{headers:?}");
        assert_eq!(response.json()["__type"], "UnknownOperationException", "{headers:?}");
        assert_eq!(response.header("x-amzn-errortype"), Some("UnknownOperationException"));
        assert_request_id(&response);
    }
    // The connection survived every refusal.
    assert_eq!(conn.aws("ListPipelines", "{}").await.status, 200);
}

#[tokio::test]
async fn malformed_json_is_a_serialization_exception() {
    let server = TestServer::start().await;
    for body in ["{", "{\"name\":}", "nul", "{\"name\": \"a\"} trailing", "\u{0}"] {
        let message = server.error("ListPipelines", body, "SerializationException").await;
        assert!(message.contains("not valid JSON"), "{body:?}: {message}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_serialization_exception() {
    let server = TestServer::start().await;
    for body in ["[]", "[{}]", "\"ListPipelines\"", "42", "true", "null"] {
        server.error("ListPipelines", body, "SerializationException").await;
    }
}

#[tokio::test]
async fn a_member_of_the_wrong_type_is_named_in_the_serialization_exception() {
    let server = TestServer::start().await;
    let cases = [
        ("GetPipeline", r#"{"name": 42}"#, "NUMBER_VALUE cannot be converted to String at 'name'"),
        ("GetPipeline", r#"{"name": "p", "version": "1"}"#, "STRING_VALUE cannot be converted to Integer at 'version'"),
        (
            "ListPipelines",
            r#"{"maxResults": {"n": 1}}"#,
            "Start of structure or map found where not expected at 'maxResults'",
        ),
        (
            "CreatePipeline",
            r#"{"pipeline": {"name": "p", "roleArn": "r", "stages": [{"name": "s", "actions": "none"}]}}"#,
            "STRING_VALUE cannot be converted to a list at 'pipeline.stages.1.member.actions'",
        ),
        (
            "TagResource",
            r#"{"resourceArn": "arn:aws:codepipeline:us-east-1:000000000000:p", "tags": [{"key": "k", "value": false}]}"#,
            "BOOLEAN_VALUE cannot be converted to String at 'tags.1.member.value'",
        ),
    ];
    for (operation, body, expected) in cases {
        assert_eq!(server.error(operation, body, "SerializationException").await, expected, "{body}");
    }
}

#[tokio::test]
async fn an_empty_body_means_an_empty_object() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let response = conn.request("POST", "/", &[("X-Amz-Target", "CodePipeline_20150709.ListPipelines")], b"").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"pipelines": []}));
    // An operation with required members reports them as missing.
    let response = conn.request("POST", "/", &[("X-Amz-Target", "CodePipeline_20150709.GetPipeline")], b"").await;
    assert_eq!(response.json()["__type"], "ValidationException");
    assert_eq!(
        response.json()["message"],
        "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must not be null"
    );
}

#[tokio::test]
async fn unknown_members_are_ignored() {
    let server = TestServer::start().await;
    let response =
        server.call("ListPipelines", r#"{"maxResults": 5, "someFutureMember": {"deep": [1, 2, {"x": null}]}}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn content_types_application_json_and_none_are_accepted() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let target = ("X-Amz-Target", "CodePipeline_20150709.ListPipelines");
    for headers in [
        vec![target, ("Content-Type", "application/json")],
        vec![target, ("Content-Type", "application/x-amz-json-1.1; charset=UTF-8")],
        vec![target],
    ] {
        let response = conn.request("POST", "/", &headers, b"{}").await;
        assert_eq!(response.status, 200, "{headers:?}: {}", response.text());
    }
    let response = conn
        .request("POST", "/", &[target, ("Content-Type", "application/x-www-form-urlencoded")], b"Action=List")
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "SerializationException");
}

#[tokio::test]
async fn unsigned_requests_are_served() {
    let server = TestServer::start().await;
    // No Authorization header at all.
    let response = server.call("CreatePipeline", &format!(r#"{{"pipeline": {}}}"#, pipeline_json("unsigned"))).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["pipeline"]["name"], "unsigned");
}

#[tokio::test]
async fn oversized_bodies_get_a_json_413_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let huge = format!(r#"{{"nextToken": "{}"}}"#, "a".repeat(9 * 1024 * 1024));
    let response = conn.aws("ListPipelines", &huge).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["__type"], "RequestEntityTooLargeException");
    assert_request_id(&response);
    // Same connection, next request.
    let response = conn.aws("ListPipelines", "{}").await;
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read_and_validated() {
    let server = TestServer::start().await;
    let body = format!(r#"{{"nextToken": "{}"}}"#, "a".repeat(8 * 1024 * 1024 - 32));
    let message = server.error("ListPipelines", &body, "ValidationException").await;
    assert_eq!(
        message,
        "1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must have length \
         less than or equal to 2048"
    );
}

#[tokio::test]
async fn operations_without_output_answer_200_with_an_empty_body() {
    let server = TestServer::start().await;
    let response = server.call("DeletePipeline", r#"{"name": "never-existed"}"#).await;
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty(), "{}", response.text());
}

#[tokio::test]
async fn timestamps_are_epoch_seconds_numbers() {
    let server = TestServer::start().await;
    server.call("CreatePipeline", &format!(r#"{{"pipeline": {}}}"#, pipeline_json("times"))).await;
    let body = server.call("GetPipeline", r#"{"name": "times"}"#).await.json();
    let created = body["metadata"]["created"].as_f64().expect("a JSON number");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64();
    assert!((now - created).abs() < 60.0, "{created} vs {now}");
}

#[tokio::test]
async fn wrong_methods_and_paths_get_json_errors() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let response = conn.request("GET", "/", &[], b"").await;
    assert_eq!(response.status, 405);
    assert_eq!(response.json()["__type"], "MethodNotAllowedException");
    let response = conn.request("POST", "/no/such/path", &[], b"{}").await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["__type"], "NotFoundException");
}

/// A small deterministic generator, so the fuzz test below needs no extra crate and is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn junk(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!(rng.below(1000) as f64 / 7.0),
        4 => json!(
            ["", "x", "arn:aws:codepipeline:us-east-1:000000000000:p", "Source", "AWS", "🦀", "a b"]
                [rng.below(7) as usize]
        ),
        5 => json!("0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a"),
        6 => Value::Array((0..rng.below(4)).map(|_| junk(rng, depth + 1)).collect()),
        _ => {
            let keys = [
                "name",
                "pipeline",
                "stages",
                "actions",
                "tags",
                "key",
                "value",
                "version",
                "maxResults",
                "nextToken",
                "filter",
                "actionTypeId",
                "category",
                "owner",
                "provider",
                "configuration",
                "jobId",
                "nonce",
                "webhook",
                "resourceArn",
                "pipelineName",
                "stageName",
                "actionName",
                "result",
                "token",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                object.insert(keys[rng.below(keys.len() as u64) as usize].to_string(), junk(rng, depth + 1));
            }
            Value::Object(object)
        }
    }
}

#[tokio::test]
async fn no_input_produces_a_server_error_on_any_operation() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for op in codepipeline_local::protocol::Operation::ALL {
        for _ in 0..40 {
            let mut body = junk(&mut rng, 0);
            if !body.is_object() && rng.below(2) == 0 {
                body = json!({ "pipeline": body, "name": "p" });
            }
            let text = body.to_string();
            let response = conn.aws(op.name(), &text).await;
            let context = format!("{} {text} -> {} {}", op.name(), response.status, response.text());
            if response.status == 200 {
                continue;
            }
            let error = response.json();
            assert!(error["__type"].is_string() && error["message"].is_string(), "{context}");
            assert!(response.status < 500, "{context}");
        }
    }
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let server = TestServer::start().await;
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    let target = ("X-Amz-Target", "CodePipeline_20150709.GetPipeline");
    for i in 0..5 {
        conn.send("POST", "/", &[target], format!(r#"{{"name": "p{i}"}}"#).as_bytes()).await;
    }
    for i in 0..5 {
        let response = conn.read_response().await;
        assert_eq!(
            response.json()["message"],
            format!("Account '000000000000' does not have a pipeline with name 'p{i}'")
        );
    }
}

/// Every operation the model gives no output shape answers 200 with an empty body, and every operation whose output
/// shape has no members answers `{}`, each exercised here on a request that succeeds. The lists come from the model,
/// so an operation added to it without a case here fails the test.
#[tokio::test]
async fn operations_answer_an_empty_body_or_an_empty_object_as_their_model_says() {
    let model: Value = serde_json::from_str(include_str!("../../fixtures/model/service-2.json")).expect("model");
    let mut no_output = Vec::new();
    let mut empty_output = Vec::new();
    for (name, operation) in model["operations"].as_object().expect("operations") {
        match operation["output"]["shape"].as_str() {
            None => no_output.push(name.clone()),
            Some(shape) if model["shapes"][shape]["members"].as_object().is_none_or(|m| m.is_empty()) => {
                empty_output.push(name.clone())
            }
            Some(_) => {}
        }
    }

    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"rule": "Held", "outcome": "hold"}])).await;
    let ok = |response: HttpResponse, what: &str| {
        assert_eq!(response.status, 200, "{what}: {}", response.text());
        response
    };
    let at = |c: &str, o: &str, p: &str| json!({"category": c, "owner": o, "provider": p, "version": "1"});
    let properties = json!([{"name": "Env", "required": true, "key": true, "secret": false}]);
    let artifacts = json!({"minimumCount": 0, "maximumCount": 0});
    let custom = json!({"category": "Build", "provider": "Worker", "version": "1",
        "configurationProperties": properties, "inputArtifactDetails": artifacts, "outputArtifactDetails": artifacts});
    ok(server.call("CreateCustomActionType", &custom.to_string()).await, "custom type");
    let mut partner = custom.clone();
    partner["provider"] = json!("Acme");
    ok(server.control("POST", "/_emulator/third-party-action-types", &partner).await, "partner type");
    let token = server.control("GET", "/_emulator/third-party-action-types", &Value::Null).await.json()["actionTypes"]
        [0]["clientToken"]
        .as_str()
        .expect("client token")
        .to_string();
    let work = |name: &str, owner: &str, provider: &str| json!({"name": name, "actionTypeId": at("Build", owner, provider), "configuration": {"Env": "prod"}});
    let pipeline = json!({"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "AWS", "S3"),
            "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
        {"name": "Gate", "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Held",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
            "configuration": {"Variable": "a", "Operator": "EQ", "Value": "a"}}]}]},
         "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "AWS", "S3"),
            "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]},
        {"name": "Work", "actions": [work("W1", "Custom", "Worker"), work("W2", "Custom", "Worker"),
            work("P1", "ThirdParty", "Acme"), work("P2", "ThirdParty", "Acme")]}
    ]});
    let created = ok(server.call("CreatePipeline", &json!({"pipeline": pipeline}).to_string()).await, "pipeline");
    assert!(created.json()["pipeline"].is_object());
    let execution = crate::common::eventually("the execution", || async {
        let list = server.call("ListPipelineExecutions", r#"{"pipelineName": "p"}"#).await.json();
        list["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().map(str::to_string)
    })
    .await;
    // The held entry condition of Gate is overridden; then the Work stage creates its jobs.
    let overridden = crate::common::eventually("the held entry condition", || async {
        let body = json!({"pipelineName": "p", "stageName": "Gate", "pipelineExecutionId": execution,
            "conditionType": "BEFORE_ENTRY"});
        let response = server.call("OverrideStageCondition", &body.to_string()).await;
        (response.status == 200).then_some(response)
    })
    .await;
    let mut seen = vec!["OverrideStageCondition".to_string()];
    check_empty_answer("OverrideStageCondition", &overridden, &no_output, &empty_output);
    let custom_jobs = crate::common::eventually("two custom jobs", || async {
        let body = json!({"actionTypeId": at("Build", "Custom", "Worker"), "maxBatchSize": 2});
        let jobs = server.call("PollForJobs", &body.to_string()).await.json()["jobs"].clone();
        let ids: Vec<String> = jobs.as_array()?.iter().filter_map(|j| j["id"].as_str().map(str::to_string)).collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;
    let partner_jobs = crate::common::eventually("two partner jobs", || async {
        let body = json!({"actionTypeId": at("Build", "ThirdParty", "Acme"), "maxBatchSize": 2});
        let jobs = server.call("PollForThirdPartyJobs", &body.to_string()).await.json()["jobs"].clone();
        let ids: Vec<String> =
            jobs.as_array()?.iter().filter_map(|j| j["jobId"].as_str().map(str::to_string)).collect();
        (ids.len() == 2).then_some(ids)
    })
    .await;
    let webhook = json!({"webhook": {"name": "hook", "targetPipeline": "p", "targetAction": "Src", "filters": [],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}});
    ok(server.call("PutWebhook", &webhook.to_string()).await, "webhook");
    let github = json!({"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"});
    let declaration = ok(server.call("GetActionType", &github.to_string()).await, "GetActionType").json();
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:p";

    let failure = json!({"type": "JobFailed", "message": "no"});
    let cases: Vec<(&str, Value)> = vec![
        ("PutJobSuccessResult", json!({"jobId": custom_jobs[0]})),
        ("PutJobFailureResult", json!({"jobId": custom_jobs[1], "failureDetails": failure})),
        ("PutThirdPartyJobSuccessResult", json!({"jobId": partner_jobs[0], "clientToken": token})),
        (
            "PutThirdPartyJobFailureResult",
            json!({"jobId": partner_jobs[1], "clientToken": token, "failureDetails": failure}),
        ),
        (
            "DisableStageTransition",
            json!({"pipelineName": "p", "stageName": "Gate", "transitionType": "Inbound",
            "reason": "x"}),
        ),
        ("EnableStageTransition", json!({"pipelineName": "p", "stageName": "Gate", "transitionType": "Inbound"})),
        ("UpdateActionType", json!({"actionType": declaration["actionType"]})),
        ("TagResource", json!({"resourceArn": arn, "tags": [{"key": "k", "value": "v"}]})),
        ("UntagResource", json!({"resourceArn": arn, "tagKeys": ["k"]})),
        ("RegisterWebhookWithThirdParty", json!({"webhookName": "hook"})),
        ("DeregisterWebhookWithThirdParty", json!({"webhookName": "hook"})),
        ("DeleteWebhook", json!({"name": "hook"})),
        ("DeleteCustomActionType", json!({"category": "Build", "provider": "Worker", "version": "1"})),
    ];
    for (operation, body) in cases {
        let response = ok(server.call(operation, &body.to_string()).await, operation);
        check_empty_answer(operation, &response, &no_output, &empty_output);
        seen.push(operation.to_string());
    }
    let response = ok(server.call("DeletePipeline", r#"{"name": "p"}"#).await, "DeletePipeline");
    check_empty_answer("DeletePipeline", &response, &no_output, &empty_output);
    seen.push("DeletePipeline".into());

    for operation in no_output.iter().chain(&empty_output) {
        assert!(seen.contains(operation), "{operation} has no case in this test");
    }
}

fn check_empty_answer(operation: &str, response: &HttpResponse, no_output: &[String], empty_output: &[String]) {
    if no_output.iter().any(|o| o == operation) {
        assert!(response.body.is_empty(), "{operation} has no output shape, yet answered {}", response.text());
    } else if empty_output.iter().any(|o| o == operation) {
        assert_eq!(response.text(), "{}", "{operation} has an empty output shape");
    } else {
        panic!("{operation} has an output shape with members");
    }
}
