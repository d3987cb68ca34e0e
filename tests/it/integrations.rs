//! PutActionRevision and ListDeployActionExecutionTargets through `aws-sdk-codepipeline`.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::primitives::DateTime;
use aws_sdk_codepipeline::types::{ActionRevision, PipelineExecutionStatus, TargetFilter, TargetFilterName};
use serde_json::{Value, json};

use crate::common::{TestServer, eventually};
use crate::sdk_json;

fn deploy_pipeline(name: &str, provider: &str, configuration: Value) -> Value {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "app.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", provider),
                "configuration": configuration, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    })
}

async fn settle(client: &Client, name: &str) -> String {
    eventually("the latest execution to finish", || async {
        let list = client.list_pipeline_executions().pipeline_name(name).send().await.ok()?;
        let latest = list.pipeline_execution_summaries().first()?.clone();
        (latest.status() != Some(&PipelineExecutionStatus::InProgress))
            .then(|| latest.pipeline_execution_id().unwrap_or_default().to_string())
    })
    .await
}

fn revision(id: &str) -> ActionRevision {
    ActionRevision::builder()
        .revision_id(id)
        .revision_change_id(format!("change-{id}"))
        .created(DateTime::from_secs(1_700_000_000))
        .build()
        .expect("revision")
}

#[tokio::test]
async fn put_action_revision_starts_an_execution_for_a_new_revision_only() {
    let server = TestServer::fast().await;
    let client = server.client();
    let p = deploy_pipeline("revisions", "S3", json!({"BucketName": "site", "Extract": "true"}));
    client.create_pipeline().pipeline(sdk_json::pipeline(&p)).send().await.expect("created");
    settle(&client, "revisions").await;

    let put = || {
        client
            .put_action_revision()
            .pipeline_name("revisions")
            .stage_name("Source")
            .action_name("Src")
            .action_revision(revision("v-17"))
    };
    let first = put().send().await.expect("put");
    assert!(first.new_revision());
    let id = first.pipeline_execution_id().expect("an execution").to_string();
    assert_eq!(settle(&client, "revisions").await, id);

    let execution = client
        .get_pipeline_execution()
        .pipeline_name("revisions")
        .pipeline_execution_id(&id)
        .send()
        .await
        .expect("gets");
    let execution = execution.pipeline_execution().expect("execution");
    assert_eq!(execution.status(), Some(&PipelineExecutionStatus::Succeeded));
    assert_eq!(execution.trigger().and_then(|t| t.trigger_type()).map(|t| t.as_str()), Some("PutActionRevision"));
    let artifact = &execution.artifact_revisions()[0];
    assert_eq!(artifact.revision_id(), Some("v-17"));
    assert_eq!(artifact.revision_change_identifier(), Some("change-v-17"));
    let state = client.get_pipeline_state().name("revisions").send().await.expect("state");
    let current = state.stage_states()[0].action_states()[0].current_revision().cloned().expect("current revision");
    assert_eq!(current.revision_id(), "v-17");

    let again = put().send().await.expect("put again");
    assert!(!again.new_revision(), "the same revision starts nothing");
    assert_eq!(again.pipeline_execution_id(), Some(id.as_str()));
    let count = client
        .list_pipeline_executions()
        .pipeline_name("revisions")
        .send()
        .await
        .expect("lists")
        .pipeline_execution_summaries()
        .len();
    assert_eq!(count, 2, "the CreatePipeline execution and one more");

    let err = client
        .put_action_revision()
        .pipeline_name("revisions")
        .stage_name("Nope")
        .action_name("Src")
        .action_revision(revision("x"))
        .send()
        .await
        .expect_err("stage");
    assert!(err.into_service_error().is_stage_not_found_exception());
    let err = client
        .put_action_revision()
        .pipeline_name("revisions")
        .stage_name("Source")
        .action_name("Nope")
        .action_revision(revision("x"))
        .send()
        .await
        .expect_err("action");
    assert!(err.into_service_error().is_action_not_found_exception());
    let err = client
        .put_action_revision()
        .pipeline_name("revisions")
        .stage_name("Deploy")
        .action_name("Ship")
        .action_revision(revision("x"))
        .send()
        .await
        .expect_err("not a source");
    assert_eq!(err.code(), Some("ValidationException"));
    let err = client
        .put_action_revision()
        .pipeline_name("ghost")
        .stage_name("Source")
        .action_name("Src")
        .action_revision(revision("x"))
        .send()
        .await
        .expect_err("pipeline");
    assert!(err.into_service_error().is_pipeline_not_found_exception());
}

async fn deploy_run_id(client: &Client, name: &str) -> String {
    let history = client.list_action_executions().pipeline_name(name).send().await.expect("history");
    let ship = history.action_execution_details().iter().find(|d| d.action_name() == Some("Ship")).expect("deploy ran");
    ship.action_execution_id().expect("id").to_string()
}

#[tokio::test]
async fn deploy_actions_list_their_targets_with_lifecycle_events() {
    let server = TestServer::fast().await;
    let client = server.client();
    let p = deploy_pipeline("fleet", "CodeDeploy", json!({"ApplicationName": "app", "DeploymentGroupName": "prod"}));
    client.create_pipeline().pipeline(sdk_json::pipeline(&p)).send().await.expect("created");
    settle(&client, "fleet").await;
    let run = deploy_run_id(&client, "fleet").await;
    let listed = client
        .list_deploy_action_execution_targets()
        .pipeline_name("fleet")
        .action_execution_id(&run)
        .send()
        .await
        .expect("targets");
    let targets = listed.targets();
    assert_eq!(targets.len(), 2);
    for target in targets {
        assert!(target.target_id().is_some_and(|id| id.starts_with("i-")));
        assert_eq!(target.target_type(), Some("Instance"));
        assert_eq!(target.status(), Some("Succeeded"));
        let events: Vec<_> = target.events().iter().filter_map(|e| e.name()).collect();
        assert_eq!(
            events,
            [
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService"
            ]
        );
        assert!(
            target
                .events()
                .iter()
                .all(|e| e.status() == Some("Succeeded") && e.start_time().is_some() && e.end_time().is_some())
        );
    }
    // Filters and pagination.
    let failed = client
        .list_deploy_action_execution_targets()
        .action_execution_id(&run)
        .filters(TargetFilter::builder().name(TargetFilterName::TargetStatus).values("Failed").build())
        .send()
        .await
        .expect("filtered");
    assert!(failed.targets().is_empty());
    let first = client
        .list_deploy_action_execution_targets()
        .action_execution_id(&run)
        .max_results(1)
        .send()
        .await
        .expect("page");
    assert_eq!(first.targets().len(), 1);
    let second = client
        .list_deploy_action_execution_targets()
        .action_execution_id(&run)
        .max_results(1)
        .next_token(first.next_token().expect("more"))
        .send()
        .await
        .expect("page");
    assert_eq!(second.targets().len(), 1);
    assert_ne!(second.targets()[0].target_id(), first.targets()[0].target_id());
    assert_eq!(second.next_token(), None);

    let err = client
        .list_deploy_action_execution_targets()
        .action_execution_id("0d8a7e1c-1d2b-4c1e-9f3a-2b7c6d5e4f3a")
        .send()
        .await
        .expect_err("unknown");
    assert!(err.into_service_error().is_action_execution_not_found_exception());
}

#[tokio::test]
async fn a_failed_ecs_deploy_shows_a_failed_target() {
    let server = TestServer::fast().await;
    let client = server.client();
    server.set_behaviors(json!([{"action": "Ship", "outcome": "fail", "message": "service did not stabilize"}])).await;
    let p = deploy_pipeline("ecs", "ECS", json!({"ClusterName": "prod", "ServiceName": "web"}));
    client.create_pipeline().pipeline(sdk_json::pipeline(&p)).send().await.expect("created");
    settle(&client, "ecs").await;
    let run = deploy_run_id(&client, "ecs").await;
    let listed = client.list_deploy_action_execution_targets().action_execution_id(&run).send().await.expect("targets");
    let target = &listed.targets()[0];
    assert_eq!(target.target_id(), Some("prod:web"));
    assert_eq!(target.status(), Some("Failed"));
    let last = target.events().last().expect("an event");
    assert_eq!(last.status(), Some("Failed"));
    assert_eq!(last.context().and_then(|c| c.message()), Some("service did not stabilize"));
}
