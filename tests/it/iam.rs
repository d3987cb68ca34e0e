//! IAM enforcement (issue 30, item 2): `--enforce-iam` with policies from the credentials file or moto's IAM.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus, Tag};
use codepipeline_local::config::{Config, SdkEnvironment};
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::moto::Moto;

const ACCOUNT: &str = "111111111111";
const DEPLOYER: (&str, &str) = ("AKIADEPLOYER00000001", "deployer-secret");
const AUDITOR: (&str, &str) = ("AKIAAUDITOR000000002", "auditor-secret");
const NO_PASS: (&str, &str) = ("AKIANOPASSROLE000003", "no-pass-secret");
const BLUE_OPS: (&str, &str) = ("AKIABLUEOPERATOR0004", "blue-secret");
const ROOT: (&str, &str) = ("AKIAROOT000000000005", "root-secret");
const ROLE: &str = "arn:aws:iam::111111111111:role/pipeline-role";

fn principal(key: (&str, &str), name: &str, policies: Value) -> Value {
    json!({"accessKeyId": key.0, "secretAccessKey": key.1, "account": ACCOUNT,
           "arn": format!("arn:aws:iam::{ACCOUNT}:user/{name}"), "policies": policies})
}

fn credentials_file(principals: Vec<Value>) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("cpl-iam-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, json!({"principals": principals}).to_string()).expect("writes");
    file
}

/// A deployer (every pipeline action on `app-*`, the pipeline role passed to CodePipeline only, never a deletion),
/// a read-only auditor, a deployer without PassRole, an operator of pipelines tagged `team=blue`, and the root user.
async fn enforcing() -> TestServer {
    let deployer = json!([{"Version": "2012-10-17", "Statement": [
        {"Sid": "Pipelines", "Effect": "Allow", "Action": "codepipeline:*",
         "Resource": ["arn:aws:codepipeline:*:111111111111:app-*", "arn:aws:codepipeline:*:111111111111:app-*/*"]},
        {"Sid": "Lists", "Effect": "Allow", "Action": ["codepipeline:List*", "codepipeline:TagResource"], "Resource": "*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "codepipeline:Delete*", "Resource": "*"},
        {"Sid": "NoApprovals", "Effect": "Deny", "Action": "codepipeline:PutApprovalResult", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE,
         "Condition": {"StringEquals": {"iam:PassedToService": "codepipeline.amazonaws.com"}}}]}]);
    let auditor = json!([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codepipeline:Get*", "codepipeline:List*"], "Resource": "*"}]}]);
    let no_pass = json!([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "*"}]}]);
    let blue = json!([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codepipeline:StartPipelineExecution", "codepipeline:PutApprovalResult"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}}}]}]);
    let file = credentials_file(vec![
        principal(DEPLOYER, "deployer", deployer),
        principal(AUDITOR, "auditor", auditor),
        principal(NO_PASS, "no-pass", no_pass),
        principal(BLUE_OPS, "blue-ops", blue),
        json!({"accessKeyId": ROOT.0, "secretAccessKey": ROOT.1, "account": ACCOUNT,
               "arn": format!("arn:aws:iam::{ACCOUNT}:root")}),
    ]);
    let config = Config { enforce_iam: true, credentials: Some(file), action_duration_ms: 5, ..Config::default() };
    TestServer::with_config(config).await
}

fn client(url: &str, key: (&str, &str)) -> Client {
    crate::common::keyed_client(url, "us-east-1", key, None)
}

/// A pipeline whose second stage waits for a manual approval, passing `ROLE`.
fn gated(name: &str) -> aws_sdk_codepipeline::types::PipelineDeclaration {
    use aws_sdk_codepipeline::types::*;
    let type_id = |category, provider: &str| {
        ActionTypeId::builder().category(category).owner(ActionOwner::Aws).provider(provider).version("1").build()
    };
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(type_id(ActionCategory::Source, "S3").expect("type"))
        .configuration("S3Bucket", "b")
        .configuration("S3ObjectKey", "k.zip")
        .configuration("PollForSourceChanges", "false")
        .output_artifacts(OutputArtifact::builder().name("Out").build().expect("artifact"))
        .build()
        .expect("action");
    let gate = ActionDeclaration::builder()
        .name("Gate")
        .action_type_id(type_id(ActionCategory::Approval, "Manual").expect("type"))
        .build()
        .expect("action");
    PipelineDeclaration::builder()
        .name(name)
        .role_arn(ROLE)
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifact-bucket").build().expect("store"),
        )
        .stages(StageDeclaration::builder().name("Source").actions(source).build().expect("stage"))
        .stages(StageDeclaration::builder().name("Approve").actions(gate).build().expect("stage"))
        .build()
        .expect("pipeline")
}

fn denied(message: &str, user: &str, action: &str, resource: &str) {
    let expected = format!(
        "User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: {action} on resource: {resource} \
         because no identity-based policy allows the {action} action"
    );
    assert_eq!(message, expected);
}

fn explicitly_denied(message: &str, user: &str, action: &str, resource: &str) {
    let expected = format!(
        "User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: {action} on resource: {resource} \
         with an explicit deny in an identity-based policy"
    );
    assert_eq!(message, expected);
}

fn arn(resource: &str) -> String {
    format!("arn:aws:codepipeline:us-east-1:{ACCOUNT}:{resource}")
}

async fn gate_token(client: &Client, name: &str) -> String {
    eventually("the approval to wait", || async {
        let state = client.get_pipeline_state().name(name).send().await.ok()?;
        let stage = state.stage_states().iter().find(|s| s.stage_name() == Some("Approve"))?;
        stage.action_states().first()?.latest_execution()?.token().map(str::to_string)
    })
    .await
}

#[tokio::test]
async fn a_deployer_and_an_auditor_may_do_what_their_policies_say_and_no_more() {
    let server = enforcing().await;
    let (deployer, auditor) = (client(&server.url(), DEPLOYER), client(&server.url(), AUDITOR));
    deployer.create_pipeline().pipeline(gated("app-web")).send().await.expect("the deployer creates app-*");

    // The auditor reads everything, and changes nothing.
    auditor.get_pipeline().name("app-web").send().await.expect("GetPipeline");
    auditor.get_pipeline_state().name("app-web").send().await.expect("GetPipelineState");
    auditor.list_pipelines().send().await.expect("ListPipelines");
    auditor.list_pipeline_executions().pipeline_name("app-web").send().await.expect("ListPipelineExecutions");
    let error = auditor.start_pipeline_execution().name("app-web").send().await.expect_err("refused");
    assert_eq!(error.code(), Some("AccessDeniedException"));
    denied(error.message().unwrap_or_default(), "auditor", "codepipeline:StartPipelineExecution", &arn("app-web"));
    let error = auditor.create_pipeline().pipeline(gated("app-new")).send().await.expect_err("refused");
    denied(error.message().unwrap_or_default(), "auditor", "codepipeline:CreatePipeline", &arn("app-new"));
    auditor.list_webhooks().send().await.expect("ListWebhooks is a List* action");

    // The deployer acts on app-* only, never deletes, and cannot approve its own deployment.
    let error = deployer.create_pipeline().pipeline(gated("tools")).send().await.expect_err("outside app-*");
    denied(error.message().unwrap_or_default(), "deployer", "codepipeline:CreatePipeline", &arn("tools"));
    let error = deployer.delete_pipeline().name("app-web").send().await.expect_err("no deletes");
    explicitly_denied(error.message().unwrap_or_default(), "deployer", "codepipeline:DeletePipeline", &arn("app-web"));
    let token = gate_token(&deployer, "app-web").await;
    let approve = |client: &Client| {
        client
            .put_approval_result()
            .pipeline_name("app-web")
            .stage_name("Approve")
            .action_name("Gate")
            .token(&token)
            .result(ApprovalResult::builder().status(ApprovalStatus::Approved).summary("ok").build().expect("result"))
            .send()
    };
    let error = approve(&deployer).await.expect_err("its own deployment");
    explicitly_denied(
        error.message().unwrap_or_default(),
        "deployer",
        "codepipeline:PutApprovalResult",
        &arn("app-web/Approve/Gate"),
    );
    // Nothing of a refused request happened.
    auditor.get_pipeline().name("app-web").send().await.expect("not deleted");
    let state = auditor.get_pipeline_state().name("app-web").send().await.expect("state");
    let gate = state.stage_states()[1].action_states()[0].latest_execution().expect("gate");
    assert_eq!(gate.status().map(|s| s.as_str()), Some("InProgress"), "not approved");
}

#[tokio::test]
async fn creating_or_updating_a_pipeline_needs_pass_role_for_its_role() {
    let server = enforcing().await;
    let no_pass = client(&server.url(), NO_PASS);
    let error = no_pass.create_pipeline().pipeline(gated("app-a")).send().await.expect_err("no PassRole");
    denied(error.message().unwrap_or_default(), "no-pass", "iam:PassRole", ROLE);
    let deployer = client(&server.url(), DEPLOYER);
    deployer.create_pipeline().pipeline(gated("app-a")).send().await.expect("PassRole for its role");
    let error = no_pass.update_pipeline().pipeline(gated("app-a")).send().await.expect_err("no PassRole");
    denied(error.message().unwrap_or_default(), "no-pass", "iam:PassRole", ROLE);
    // Another role is not the deployer's to pass.
    let other = "arn:aws:iam::111111111111:role/admin";
    let mut declaration = gated("app-a");
    declaration.role_arn = other.to_string();
    let error = deployer.update_pipeline().pipeline(declaration).send().await.expect_err("not its role");
    denied(error.message().unwrap_or_default(), "deployer", "iam:PassRole", other);
    let version = deployer.get_pipeline().name("app-a").send().await.expect("get");
    assert_eq!(version.pipeline().map(|p| p.version()), Some(Some(1)), "no refused update was applied");
}

#[tokio::test]
async fn a_condition_on_the_pipelines_tag_decides_who_runs_it() {
    let server = enforcing().await;
    let deployer = client(&server.url(), DEPLOYER);
    let tag = |team: &str| Tag::builder().key("team").value(team).build().expect("tag");
    deployer.create_pipeline().pipeline(gated("app-blue")).tags(tag("blue")).send().await.expect("blue");
    deployer.create_pipeline().pipeline(gated("app-red")).tags(tag("red")).send().await.expect("red");
    let blue = client(&server.url(), BLUE_OPS);
    blue.start_pipeline_execution().name("app-blue").send().await.expect("a blue pipeline");
    let error = blue.start_pipeline_execution().name("app-red").send().await.expect_err("a red pipeline");
    denied(error.message().unwrap_or_default(), "blue-ops", "codepipeline:StartPipelineExecution", &arn("app-red"));
    // Retagged blue, it may run it.
    deployer.tag_resource().resource_arn(arn("app-red")).tags(tag("blue")).send().await.expect("the deployer may tag");
    blue.start_pipeline_execution().name("app-red").send().await.expect("now blue");
    // The account's root user is not bound by identity-based policies.
    let root = client(&server.url(), ROOT);
    root.delete_pipeline().name("app-red").send().await.expect("root deletes");
}

#[test]
fn a_policy_outside_the_evaluated_subset_is_refused_at_start_by_name() {
    let policy = json!([{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "codepipeline:*",
        "Resource": "*", "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}]}]);
    let file = credentials_file(vec![principal(DEPLOYER, "deployer", policy)]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--enforce-iam", "--credentials"])
        .arg(&file)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NumericLessThan") && stderr.contains("arn:aws:iam::111111111111:user/deployer"),
        "{stderr}"
    );
    assert!(!stderr.contains(DEPLOYER.1), "no secret in the message: {stderr}");
}

#[tokio::test]
async fn with_moto_as_the_iam_neighbour_its_users_keys_and_policies_decide() {
    let moto = Moto::start().await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config());
    iam.create_user().user_name("ci").send().await.expect("user");
    let key = iam.create_access_key().user_name("ci").send().await.expect("key").access_key.expect("key");
    let read_only = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codepipeline:List*", "codepipeline:Get*"], "Resource": "*"}]});
    let policy = iam
        .create_policy()
        .policy_name("pipelines-read")
        .policy_document(read_only.to_string())
        .send()
        .await
        .expect("policy")
        .policy
        .and_then(|p| p.arn)
        .expect("arn");
    iam.attach_user_policy().user_name("ci").policy_arn(&policy).send().await.expect("attached");
    let environment = SdkEnvironment::from_variables([("AWS_ENDPOINT_URL_IAM".to_string(), moto.url())]);
    let config = Config { enforce_iam: true, action_duration_ms: 5, sdk_environment: environment, ..Config::default() };
    let server = TestServer::with_config(config).await;

    let ci = client(&server.url(), (&key.access_key_id, &key.secret_access_key));
    ci.list_pipelines().send().await.expect("the attached policy allows listing");
    let error = ci.create_pipeline().pipeline(gated("app-ci")).send().await.expect_err("not allowed");
    assert_eq!(
        error.message(),
        Some(
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: codepipeline:CreatePipeline on \
             resource: arn:aws:codepipeline:us-east-1:123456789012:app-ci because no identity-based policy allows the \
             codepipeline:CreatePipeline action"
        )
    );
    let wrong_secret = client(&server.url(), (&key.access_key_id, "not-the-secret"));
    let error = wrong_secret.list_pipelines().send().await.expect_err("wrong secret");
    assert_eq!(error.code(), Some("InvalidSignatureException"));
    let unknown = client(&server.url(), ("AKIANOBODY0000000000", "x"));
    let error = unknown.list_pipelines().send().await.expect_err("unknown key");
    assert_eq!(error.code(), Some("UnrecognizedClientException"));

    // A group's inline policy counts too, once IAM's change has had its moment.
    iam.create_group().group_name("deployers").send().await.expect("group");
    let deploy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codepipeline:CreatePipeline", "iam:PassRole"], "Resource": "*"}]});
    iam.put_group_policy()
        .group_name("deployers")
        .policy_name("deploy")
        .policy_document(deploy.to_string())
        .send()
        .await
        .expect("group policy");
    iam.add_user_to_group().group_name("deployers").user_name("ci").send().await.expect("member");
    tokio::time::sleep(codepipeline_local::app::principals::FRESH).await;
    ci.create_pipeline().pipeline(gated("app-ci")).send().await.expect("the group's policy allows it");
}

#[tokio::test]
async fn no_secret_key_or_session_token_reaches_the_logs_at_any_level() {
    use std::process::Stdio;
    let temporary = json!({"accessKeyId": "ASIATEMPORARY0000009", "secretAccessKey": "TEMPORARY-SECRET-2",
        "sessionToken": "SESSION-TOKEN-3", "account": ACCOUNT, "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/ci/s"),
        "policies": []});
    let deployer =
        json!([{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]);
    let file = credentials_file(vec![
        principal(("AKIALOGGED0000000001", "DEPLOYER-SECRET-1"), "deployer", deployer),
        temporary,
    ]);
    let file = file.display().to_string();
    let args = ["--port", "0", "--log-level", "trace", "--enforce-iam", "--credentials", &file];
    let (mut child, lines, addr, rest) = crate::process::start_binary(&args, Stdio::piped());
    let url = format!("http://{addr}");
    let key = ("AKIALOGGED0000000001", "DEPLOYER-SECRET-1");
    let sdk = client(&url, key);
    sdk.create_pipeline().pipeline(gated("app-logged")).send().await.expect("created");
    sdk.list_pipelines().send().await.expect("listed");
    let wrong = client(&url, ("AKIALOGGED0000000001", "DEPLOYER-SECRET-1-but-wrong"));
    wrong.list_pipelines().send().await.expect_err("a wrong secret");
    let temporary = crate::common::keyed_client(
        &url,
        "us-east-1",
        ("ASIATEMPORARY0000009", "TEMPORARY-SECRET-2"),
        Some("SESSION-TOKEN-3"),
    );
    temporary.list_pipelines().send().await.expect_err("no policy allows it");
    let control = crate::common::Signed {
        key,
        time: std::time::SystemTime::now(),
        query: true,
        method: "GET",
        path: "/_emulator/events",
        headers: &[],
        body: "",
    };
    assert_eq!(crate::common::send_signed(&url, control, |_| {}).await.status, 200);

    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut logs = lines.join("\n");
    logs.push_str(&rest.join().expect("the log is read"));
    if let Some(err) = child.stderr.as_mut() {
        use std::io::Read;
        err.read_to_string(&mut logs).expect("reads stderr");
    }
    let _ = child.wait();
    assert!(logs.contains("AccessDeniedException") && logs.contains("InvalidSignatureException"), "{logs}");
    for secret in ["DEPLOYER-SECRET-1", "TEMPORARY-SECRET-2", "SESSION-TOKEN-3"] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}

#[tokio::test]
async fn policy_variables_give_each_user_its_own_pipelines_and_its_teams() {
    // One policy for every developer: its own `<user>-*` pipelines, and starting those tagged with its team.
    let shared = json!([{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codepipeline:*", "iam:PassRole"],
         "Resource": ["arn:aws:codepipeline:*:${aws:PrincipalAccount}:${aws:username}-*", ROLE]},
        {"Effect": "Allow", "Action": "codepipeline:StartPipelineExecution", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}}]}]);
    let mut alice = principal(("AKIAALICE00000000001", "alice-secret"), "alice", shared.clone());
    alice["tags"] = json!({"team": "blue"});
    let mut bob = principal(("AKIABOB0000000000002", "bob-secret"), "bob", shared);
    bob["tags"] = json!({"team": "blue"});
    let file = credentials_file(vec![alice, bob]);
    let config = Config { enforce_iam: true, credentials: Some(file), action_duration_ms: 5, ..Config::default() };
    let server = TestServer::with_config(config).await;
    let alice = client(&server.url(), ("AKIAALICE00000000001", "alice-secret"));
    let bob = client(&server.url(), ("AKIABOB0000000000002", "bob-secret"));
    let tag = Tag::builder().key("team").value("blue").build().expect("tag");
    alice.create_pipeline().pipeline(gated("alice-web")).tags(tag).send().await.expect("its own");
    let error = alice.create_pipeline().pipeline(gated("bob-api")).send().await.expect_err("bob's");
    denied(error.message().unwrap_or_default(), "alice", "codepipeline:CreatePipeline", &arn("bob-api"));
    // Bob may not touch alice-web, but may start it: it is his team's.
    let error = bob.get_pipeline().name("alice-web").send().await.expect_err("alice's");
    denied(error.message().unwrap_or_default(), "bob", "codepipeline:GetPipeline", &arn("alice-web"));
    bob.start_pipeline_execution().name("alice-web").send().await.expect("his team's");
}
