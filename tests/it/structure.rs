//! One negative test per structural rule of CreatePipeline/UpdatePipeline, through `aws-sdk-codepipeline`,
//! asserting the error code and message.

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::sdk_json;

fn at(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

fn approval(name: &str) -> Value {
    json!({"name": name, "actionTypeId": at("Approval", "Manual")})
}

/// A valid V1 pipeline: S3 source -> CodeBuild -> S3 deploy.
fn base() -> Value {
    json!({
        "name": "rules",
        "roleArn": "arn:aws:iam::123456789012:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "namespace": "SourceVariables",
                "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Build", "actions": [{"name": "Build", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "p"},
                "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "BuildOut"}]}]},
            {"name": "Deploy", "actions": [{"name": "Deploy", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"},
                "inputArtifacts": [{"name": "BuildOut"}]}]}
        ]
    })
}

fn connection_source(p: &mut Value) {
    p["stages"][0]["actions"][0] = json!({"name": "Source", "actionTypeId": at("Source", "CodeStarSourceConnection"),
        "configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/x",
            "FullRepositoryId": "o/r", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}]});
}

fn rule(provider: &str, configuration: Value) -> Value {
    json!({"name": "r1", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": configuration})
}

type Mutation = fn(&mut Value);

const STRUCTURE: &str = "InvalidStructureException";
const ACTION: &str = "InvalidActionDeclarationException";
const STAGE: &str = "InvalidStageDeclarationException";
const LIMIT: &str = "LimitExceededException";

fn rows() -> Vec<(&'static str, Mutation, &'static str, String)> {
    let not_exist = |stage: &str, action: &str, key: &str, text: &str| {
        format!(
            "Valid format for a pipeline execution variable reference is a namespace and a key separated by a \
             period (.). The following pipeline execution variables are referencing a namespace that does not \
             exist.\nStageName=[{stage}], ActionName=[{action}], ActionConfigurationKey=[{key}], \
             VariableReferenceText=[{text}]"
        )
    };
    vec![
        ("fewer than 2 stages", |p| {
            p["stages"].as_array_mut().expect("stages").truncate(1);
        }, STRUCTURE, "Pipeline has only 1 stage(s). There should be a minimum of 2 stages in a pipeline".into()),
        ("more than 50 stages", |p| {
            let stages = p["stages"].as_array_mut().expect("stages");
            for i in 0..48 {
                stages.push(json!({"name": format!("Gate{i}"), "actions": [approval("Approve")]}));
            }
        }, LIMIT, "Pipeline has 51 stages, more than the limit of 50 stages per pipeline".into()),
        ("more than 50 actions in a stage", |p| {
            p["stages"][2]["actions"] = Value::Array((0..51).map(|i| approval(&format!("A{i}"))).collect());
        }, LIMIT, "Stage 'Deploy' has 51 actions, more than the limit of 50 actions per stage".into()),
        ("more than 500 actions", |p| {
            let stages = p["stages"].as_array_mut().expect("stages");
            for s in 0..10 {
                stages.push(json!({"name": format!("Gates{s}"),
                    "actions": (0..50).map(|i| approval(&format!("A{i}"))).collect::<Vec<_>>()}));
            }
        }, LIMIT, "Pipeline has 503 actions, more than the limit of 500 actions per pipeline".into()),
        ("duplicate stage names", |p| {
            p["stages"][2]["name"] = json!("Build");
        }, STAGE, "Stage name 'Build' is used by more than one stage; stage names must be unique in a pipeline".into()),
        ("stage without actions", |p| {
            p["stages"][2]["actions"] = json!([]);
        }, STAGE, "Stage 'Deploy' has no actions; a stage must contain at least one action".into()),
        ("blockers", |p| {
            p["stages"][1]["blockers"] = json!([{"name": "b", "type": "Schedule"}]);
        }, "InvalidBlockerDeclarationException", "Stage 'Build' declares blockers, which are reserved for future use".into()),
        ("duplicate action names in a stage", |p| {
            p["stages"][2]["actions"].as_array_mut().expect("actions").push(approval("Deploy"));
        }, ACTION, "Action name 'Deploy' is used more than once in stage 'Deploy'; action names must be unique in a stage".into()),
        ("non-source action in the first stage", |p| {
            p["stages"][0]["actions"].as_array_mut().expect("actions").push(approval("Early"));
        }, STRUCTURE, "Pipeline should start with a stage that only contains source actions.".into()),
        ("source action after the first stage", |p| {
            p["stages"][2]["actions"].as_array_mut().expect("actions").push(json!({"name": "Late",
                "actionTypeId": at("Source", "S3"), "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"},
                "outputArtifacts": [{"name": "Late"}]}));
        }, STRUCTURE, "Source actions can only be declared in the first stage of a pipeline; stage 'Deploy' declares source action 'Late'".into()),
        ("unknown action type", |p| {
            p["stages"][1]["actions"][0]["actionTypeId"]["provider"] = json!("NoSuchBuilder");
        }, ACTION, "ActionType (Category: 'Build', Provider: 'NoSuchBuilder', Owner: 'AWS', Version: '1') in action 'Build' is not available in region 'US_EAST_1'".into()),
        ("unknown action type version", |p| {
            p["stages"][1]["actions"][0]["actionTypeId"]["version"] = json!("2");
        }, ACTION, "ActionType (Category: 'Build', Provider: 'CodeBuild', Owner: 'AWS', Version: '2') in action 'Build' is not available in region 'US_EAST_1'".into()),
        ("too few input artifacts", |p| {
            p["stages"][1]["actions"][0]["inputArtifacts"] = json!([]);
        }, ACTION, "Action Build declares 0 input artifacts which is less than the minimum count (1)".into()),
        ("too many output artifacts", |p| {
            p["stages"][0]["actions"][0]["outputArtifacts"] = json!([{"name": "Src"}, {"name": "Extra"}]);
        }, ACTION, "Action Source declares 2 output artifacts which is greater than the maximum count (1)".into()),
        ("missing required configuration", |p| {
            p["stages"][1]["actions"][0]["configuration"] = json!({});
        }, ACTION, "Action configuration for action 'Build' is missing required configuration 'ProjectName'".into()),
        ("unknown configuration key", |p| {
            p["stages"][1]["actions"][0]["configuration"]["Colour"] = json!("blue");
        }, ACTION, "Action configuration for action 'Build' contains unknown configuration 'Colour'".into()),
        ("duplicate output artifact", |p| {
            p["stages"][1]["actions"][0]["outputArtifacts"] = json!([{"name": "Src"}]);
        }, STRUCTURE, "Output Artifact Bundle name must be unique within the pipeline. Src has been used more than once.".into()),
        ("input artifact never produced", |p| {
            p["stages"][2]["actions"][0]["inputArtifacts"] = json!([{"name": "Nothing"}]);
        }, STRUCTURE, "Input artifact 'Nothing' of action 'Deploy' in stage 'Deploy' is not the output of an action that runs before it (in an earlier stage, or earlier in the same stage by runOrder)".into()),
        ("input artifact from the same runOrder group", |p| {
            let consumer = json!({"name": "Package", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "p2"}, "inputArtifacts": [{"name": "BuildOut"}]});
            p["stages"][1]["actions"].as_array_mut().expect("actions").push(consumer);
        }, STRUCTURE, "Input artifact 'BuildOut' of action 'Package' in stage 'Build' is not the output of an action that runs before it (in an earlier stage, or earlier in the same stage by runOrder)".into()),
        ("input artifact from a later stage", |p| {
            p["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Src"}, {"name": "BuildOut"}]);
            p["stages"][1]["actions"][0]["outputArtifacts"] = json!([{"name": "Other"}]);
            p["stages"][2]["actions"][0]["inputArtifacts"] = json!([{"name": "Other"}]);
        }, STRUCTURE, "Input artifact 'BuildOut' of action 'Build' in stage 'Build' is not the output of an action that runs before it (in an earlier stage, or earlier in the same stage by runOrder)".into()),
        ("duplicate namespace", |p| {
            p["stages"][1]["actions"][0]["namespace"] = json!("SourceVariables");
        }, ACTION, "Namespaces must be unique across the pipeline definition. The following occur more than once in the pipeline.\nStageName=[Build], ActionName=[Build], Namespace=[SourceVariables]".into()),
        ("reserved namespace", |p| {
            p["stages"][1]["actions"][0]["namespace"] = json!("codepipeline");
        }, ACTION, "Action 'Build' in stage 'Build' uses the reserved namespace 'codepipeline'".into()),
        ("reference to a namespace that does not exist", |p| {
            p["stages"][1]["actions"][0]["configuration"]["ProjectName"] = json!("p-#{Nowhere.Id}");
        }, ACTION, not_exist("Build", "Build", "ProjectName", "Nowhere.Id")),
        ("reference to a namespace of a later action", |p| {
            p["stages"][2]["actions"][0]["namespace"] = json!("DeployVariables");
            p["stages"][1]["actions"][0]["configuration"]["ProjectName"] = json!("#{DeployVariables.Url}");
        }, ACTION, not_exist("Build", "Build", "ProjectName", "DeployVariables.Url")),
        ("reference without a key", |p| {
            p["stages"][1]["actions"][0]["configuration"]["ProjectName"] = json!("#{SourceVariables}");
        }, ACTION, not_exist("Build", "Build", "ProjectName", "SourceVariables")),
        ("variables on V1", |p| {
            p["pipelineType"] = json!("V1");
            p["variables"] = json!([{"name": "Env"}]);
        }, STRUCTURE, "Pipeline-level variables can only be used with V2 pipelines".into()),
        ("tag triggers on V1", |p| {
            connection_source(p);
            p["pipelineType"] = json!("V1");
            p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration":
                {"sourceActionName": "Source", "push": [{"tags": {"includes": ["v*"]}}]}}]);
        }, STRUCTURE, "Triggers on tag can only be used with V2 pipelines".into()),
        ("QUEUED on V1", |p| {
            p["pipelineType"] = json!("V1");
            p["executionMode"] = json!("QUEUED");
        }, STRUCTURE, "Execution mode QUEUED can only be used with V2 pipelines".into()),
        ("stage conditions on V1", |p| {
            p["pipelineType"] = json!("V1");
            p["stages"][2]["onFailure"] = json!({"result": "ROLLBACK"});
        }, STRUCTURE, "Stage conditions (beforeEntry, onSuccess, onFailure) can only be used with V2 pipelines; stage 'Deploy' declares them".into()),
        ("Commands action on V1", |p| {
            p["pipelineType"] = json!("V1");
            p["stages"][2]["actions"] = json!([{"name": "Run", "actionTypeId": at("Compute", "Commands"), "commands": ["make"]}]);
        }, ACTION, "The Commands action can only be used with V2 pipelines; action 'Run' in stage 'Deploy' uses it".into()),
        ("both artifactStore and artifactStores", |p| {
            p["artifactStores"] = json!({"us-east-1": {"type": "S3", "location": "artifacts"}});
        }, STRUCTURE, "A pipeline must include either artifactStore or artifactStores, but cannot use both; use artifactStores for a pipeline with cross-region actions".into()),
        ("no artifact store", |p| {
            p.as_object_mut().expect("object").remove("artifactStore");
        }, STRUCTURE, "A pipeline must include either artifactStore or artifactStores".into()),
        ("artifactStores in an unknown region", |p| {
            p.as_object_mut().expect("object").remove("artifactStore");
            p["artifactStores"] = json!({"us-east-1": {"type": "S3", "location": "bucket-a"}, "xx-nowhere-9": {"type": "S3", "location": "bucket-b"}});
        }, "ValidationException", "The region xx-nowhere-9 specified in 'pipeline.artifactStores' is not a valid AWS Region.".into()),
        ("artifactStores without the pipeline's region", |p| {
            p.as_object_mut().expect("object").remove("artifactStore");
            p["artifactStores"] = json!({"eu-west-1": {"type": "S3", "location": "bucket-b"}});
        }, STRUCTURE, "artifactStores must include an artifact store for the pipeline's region (us-east-1)".into()),
        ("cross-region action without an artifact store there", |p| {
            p["stages"][2]["actions"][0]["region"] = json!("eu-west-1");
        }, STRUCTURE, "Action 'Deploy' in stage 'Deploy' runs in region eu-west-1; a cross-region action needs artifactStores with an artifact store in eu-west-1".into()),
        ("cross-region source action", |p| {
            p["stages"][0]["actions"][0]["region"] = json!("eu-west-1");
        }, ACTION, "Action 'Source' cannot run in region eu-west-1: source actions and actions owned by ThirdParty or Custom must run in the pipeline's region (us-east-1)".into()),
        ("trigger on a non-connection source", |p| {
            p["pipelineType"] = json!("V2");
            p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration":
                {"sourceActionName": "Source", "push": [{"branches": {"includes": ["main"]}}]}}]);
        }, STRUCTURE, "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you specify a trigger, you cant specify more than one trigger per source action.".into()),
        ("two triggers for one source action", |p| {
            connection_source(p);
            p["pipelineType"] = json!("V2");
            let trigger = json!({"providerType": "CodeStarSourceConnection", "gitConfiguration":
                {"sourceActionName": "Source", "push": [{"branches": {"includes": ["main"]}}]}});
            p["triggers"] = json!([trigger.clone(), trigger]);
        }, STRUCTURE, "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you specify a trigger, you cant specify more than one trigger per source action.".into()),
        ("tags and branches in one push filter", |p| {
            connection_source(p);
            p["pipelineType"] = json!("V2");
            p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration":
                {"sourceActionName": "Source", "push": [{"tags": {"includes": ["v*"]}, "branches": {"includes": ["main"]}}]}}]);
        }, STRUCTURE, "The trigger configuration for the source action is not valid. Make sure to choose valid filter combinations.".into()),
        ("pull-request filter without branches", |p| {
            connection_source(p);
            p["pipelineType"] = json!("V2");
            p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration":
                {"sourceActionName": "Source", "pullRequest": [{"events": ["OPEN"]}]}}]);
        }, STRUCTURE, "The trigger configuration for the source action is not valid. Make sure to choose valid filter combinations.".into()),
        ("timeoutInMinutes on a non-approval action", |p| {
            p["stages"][1]["actions"][0]["timeoutInMinutes"] = json!(30);
        }, ACTION, "Action 'Build' sets timeoutInMinutes, which only manual approval actions support".into()),
        ("commands on a non-compute action", |p| {
            p["stages"][1]["actions"][0]["commands"] = json!(["make"]);
        }, ACTION, "The following action cannot contain a commands field: Build. To use the commands field, use a compute action.".into()),
        ("output artifact files on a non-compute action", |p| {
            p["stages"][1]["actions"][0]["outputArtifacts"] = json!([{"name": "BuildOut", "files": ["app.jar"]}]);
        }, ACTION, "The following action cannot contain a commands field: Build. To use the commands field, use a compute action.".into()),
        ("outputVariables on a non-compute action", |p| {
            p["stages"][1]["actions"][0]["outputVariables"] = json!(["X"]);
        }, ACTION, "The following action cannot contain a outputVariables field: Build. To use the outputVariables field, use a compute action.".into()),
        ("Commands action without commands", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["actions"] = json!([{"name": "Run", "actionTypeId": at("Compute", "Commands")}]);
        }, ACTION, "The Commands action 'Run' must declare commands to run".into()),
        ("ROLLBACK in PARALLEL mode", |p| {
            p["pipelineType"] = json!("V2");
            p["executionMode"] = json!("PARALLEL");
            p["stages"][2]["onFailure"] = json!({"result": "ROLLBACK"});
        }, STRUCTURE, "Stage 'Deploy' declares a ROLLBACK result, but rollback is not supported for pipelines in PARALLEL execution mode".into()),
        ("unknown rule type", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["beforeEntry"] = json!({"conditions": [{"result": "FAIL", "rules": [rule("Astrology", json!({}))]}]});
        }, STAGE, "RuleType (Category: 'Rule', Provider: 'Astrology', Owner: 'AWS', Version: '1') in rule 'r1' is not available in region 'US_EAST_1'".into()),
        ("SKIP with a rule that cannot skip", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["beforeEntry"] = json!({"conditions": [{"result": "SKIP", "rules": [rule("CloudWatchAlarm", json!({"AlarmName": "a"}))]}]});
        }, STAGE, "Rule 'r1' of stage 'Deploy' uses CloudWatchAlarm, which cannot be used in a condition with result SKIP; only LambdaInvoke and VariableCheck rules can".into()),
        ("beforeEntry with ROLLBACK", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["beforeEntry"] = json!({"conditions": [{"result": "ROLLBACK", "rules": [rule("CloudWatchAlarm", json!({"AlarmName": "a"}))]}]});
        }, STAGE, "The beforeEntry condition of stage 'Deploy' has result ROLLBACK, which beforeEntry conditions do not support".into()),
        ("rule missing required configuration", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["onSuccess"] = json!({"conditions": [{"result": "FAIL", "rules": [rule("CloudWatchAlarm", json!({}))]}]});
        }, STAGE, "Rule configuration for rule 'r1' is missing required configuration 'AlarmName'".into()),
        ("rule with a dangling variable reference", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["beforeEntry"] = json!({"conditions": [{"result": "FAIL", "rules": [rule("VariableCheck",
                json!({"Variable": "#{Ghost.Branch}", "Value": "main", "Operator": "EQ"}))]}]});
        }, ACTION, not_exist("Deploy", "r1", "Variable", "Ghost.Branch")),
        ("retryConfiguration without RETRY", |p| {
            p["pipelineType"] = json!("V2");
            p["stages"][2]["onFailure"] = json!({"result": "ROLLBACK", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}});
        }, STAGE, "Stage 'Deploy' declares an onFailure retryConfiguration, which requires the result RETRY".into()),
        ("duplicate pipeline variable", |p| {
            p["pipelineType"] = json!("V2");
            p["variables"] = json!([{"name": "Env"}, {"name": "Env"}]);
        }, STRUCTURE, "Pipeline variable 'Env' is declared more than once; variable names must be unique".into()),
        ("undeclared pipeline variable", |p| {
            p["pipelineType"] = json!("V2");
            p["variables"] = json!([{"name": "Env"}]);
            p["stages"][1]["actions"][0]["configuration"]["ProjectName"] = json!("#{variables.Stage}");
        }, ACTION, "The following pipeline variables are referenced but not declared in the pipeline.\nStageName=[Build], ActionName=[Build], ActionConfigurationKey=[ProjectName], VariableReferenceText=[variables.Stage]".into()),
    ]
}

#[tokio::test]
async fn each_structural_rule_is_enforced_with_its_error() {
    let server = TestServer::start().await;
    let client = server.client();
    // The base pipeline itself is valid.
    client.create_pipeline().pipeline(sdk_json::pipeline(&base())).send().await.expect("base is valid");
    client.delete_pipeline().name("rules").send().await.expect("deleted");

    let mut failures = Vec::new();
    for (label, mutate, code, message) in rows() {
        let mut pipeline = base();
        mutate(&mut pipeline);
        let result = client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await;
        match result {
            Ok(_) => {
                failures.push(format!("[{label}] was accepted"));
                let _ = client.delete_pipeline().name("rules").send().await;
            }
            Err(err) => {
                let (got_code, got_message) = (err.code().map(str::to_string), err.message().map(str::to_string));
                if got_code.as_deref() != Some(code) || got_message.as_deref() != Some(message.as_str()) {
                    failures.push(format!(
                        "[{label}]\n  expected {code}: {message}\n  got      {got_code:?}: {got_message:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(client.list_pipelines().send().await.expect("lists").pipelines().is_empty(), "nothing half-created");
}

#[tokio::test]
async fn update_pipeline_applies_the_same_rules_and_keeps_the_old_version() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_json::pipeline(&base())).send().await.expect("created");
    let mut broken = base();
    broken["stages"][1]["actions"][0]["configuration"] = json!({});
    let err = client.update_pipeline().pipeline(sdk_json::pipeline(&broken)).send().await.expect_err("refused");
    assert_eq!(err.code(), Some(ACTION));
    let current = client.get_pipeline().name("rules").send().await.expect("still there");
    assert_eq!(current.pipeline().and_then(|p| p.version()), Some(1), "a refused update changes nothing");

    let mut missing = base();
    missing["name"] = json!("ghost");
    let err = client.update_pipeline().pipeline(sdk_json::pipeline(&missing)).send().await.expect_err("missing");
    assert_eq!(err.code(), Some("PipelineNotFoundException"));
    assert_eq!(err.message(), Some("Account '000000000000' does not have a pipeline with name 'ghost'"));
}

#[tokio::test]
async fn v2_features_imply_v2_and_updates_keep_the_type() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut pipeline = base();
    pipeline["variables"] = json!([{"name": "Env", "defaultValue": "dev"}]);
    let created = client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("created");
    assert_eq!(created.pipeline().and_then(|p| p.pipeline_type()).map(|t| t.as_str()), Some("V2"));
    // Dropping the variables and the type keeps V2 [NATIVE].
    let updated = client.update_pipeline().pipeline(sdk_json::pipeline(&base())).send().await.expect("updated");
    assert_eq!(updated.pipeline().and_then(|p| p.pipeline_type()).map(|t| t.as_str()), Some("V2"));
    // A plain pipeline is V1.
    let mut plain = base();
    plain["name"] = json!("plain");
    let created = client.create_pipeline().pipeline(sdk_json::pipeline(&plain)).send().await.expect("created");
    assert_eq!(created.pipeline().and_then(|p| p.pipeline_type()).map(|t| t.as_str()), Some("V1"));
}

#[tokio::test]
async fn pipeline_errors_name_in_use_version_not_found_and_quota() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_json::pipeline(&base())).send().await.expect("created");
    let err = client.create_pipeline().pipeline(sdk_json::pipeline(&base())).send().await.expect_err("taken");
    assert_eq!(err.code(), Some("PipelineNameInUseException"));
    assert_eq!(err.message(), Some("A pipeline with name 'rules' already exists in account '000000000000'"));

    let err = client.get_pipeline().name("rules").version(2).send().await.expect_err("no version 2");
    assert_eq!(err.code(), Some("PipelineVersionNotFoundException"));
    assert_eq!(err.message(), Some("Pipeline 'rules' does not have a version '2'"));

    // DeletePipeline is idempotent.
    client.delete_pipeline().name("rules").send().await.expect("deleted");
    client.delete_pipeline().name("rules").send().await.expect("deleting again succeeds");

    // 1000 pipelines per region; the 1001st is refused and nothing is stored.
    let mut conn = server.connect().await;
    for i in 0..1000 {
        let mut p = base();
        p["name"] = json!(format!("p{i:04}"));
        let response = conn.aws("CreatePipeline", &json!({"pipeline": p}).to_string()).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let mut p = base();
    p["name"] = json!("one-too-many");
    let err = client.create_pipeline().pipeline(sdk_json::pipeline(&p)).send().await.expect_err("quota");
    assert_eq!(err.code(), Some(LIMIT));
    assert_eq!(err.message(), Some("The account already has 1000 pipelines in this region, the maximum allowed"));
    let err = client.get_pipeline().name("one-too-many").send().await.expect_err("not stored");
    assert_eq!(err.code(), Some("PipelineNotFoundException"));
    // Other regions have their own quota.
    let other = server.client_as("AKID", "us-west-2");
    let mut west = base();
    west["artifactStore"] = json!({"type": "S3", "location": "west-artifacts"});
    other.create_pipeline().pipeline(sdk_json::pipeline(&west)).send().await.expect("another region");
}
