//! State is partitioned by (account, region), both taken from the request's SigV4 credentials.

use crate::common::{TestServer, sdk_pipeline};

#[tokio::test]
async fn a_pipeline_is_visible_only_in_its_account_and_region() {
    let server = TestServer::start().await;
    let owner = server.client_as("111122223333", "eu-west-1");
    let created = owner.create_pipeline().pipeline(sdk_pipeline("shared-name")).send().await.expect("created");
    assert_eq!(created.pipeline().and_then(|p| p.version()), Some(1));

    let metadata = owner.get_pipeline().name("shared-name").send().await.expect("visible to its owner");
    assert_eq!(
        metadata.metadata().and_then(|m| m.pipeline_arn()),
        Some("arn:aws:codepipeline:eu-west-1:111122223333:shared-name"),
        "the ARN names the region and the account"
    );

    for (key, region) in [
        ("111122223333", "us-east-1"), // same account, other region
        ("444455556666", "eu-west-1"), // other account, same region
        ("AKIDEXAMPLE", "eu-west-1"),  // default account, same region
    ] {
        let other = server.client_as(key, region);
        let err = other.get_pipeline().name("shared-name").send().await.expect_err("invisible elsewhere");
        assert!(err.into_service_error().is_pipeline_not_found_exception(), "{key}/{region}");
        let list = other.list_pipelines().send().await.expect("lists");
        assert!(list.pipelines().is_empty(), "{key}/{region}");
    }

    // The same name can exist independently in another partition.
    let other = server.client_as("444455556666", "eu-west-1");
    other.create_pipeline().pipeline(sdk_pipeline("shared-name")).send().await.expect("no clash across accounts");
    let arn = other.get_pipeline().name("shared-name").send().await.expect("visible");
    assert_eq!(
        arn.metadata().and_then(|m| m.pipeline_arn()),
        Some("arn:aws:codepipeline:eu-west-1:444455556666:shared-name")
    );
}

#[tokio::test]
async fn unsigned_requests_use_the_configured_defaults() {
    let config = codepipeline_local::Config {
        default_account: "999988887777".into(),
        default_region: "ap-southeast-2".into(),
        ..Default::default()
    };
    let server = TestServer::with_config(config).await;
    let body = format!(r#"{{"pipeline": {}}}"#, crate::common::pipeline_json("defaults"));
    assert_eq!(server.call("CreatePipeline", &body).await.status, 200);
    let got = server.call("GetPipeline", r#"{"name": "defaults"}"#).await.json();
    assert_eq!(got["metadata"]["pipelineArn"], "arn:aws:codepipeline:ap-southeast-2:999988887777:defaults");
    // A signed client in that region and account sees it too.
    let client = server.client_as("999988887777", "ap-southeast-2");
    client.get_pipeline().name("defaults").send().await.expect("same partition");
}
