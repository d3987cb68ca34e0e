//! The official Rust SDK against the emulator: typed results and typed errors.

use aws_sdk_codepipeline::error::ProvideErrorMetadata;

use crate::common::{TestServer, sdk_pipeline};

#[tokio::test]
async fn list_pipelines_on_an_empty_server() {
    let server = TestServer::start().await;
    let output = server.client().list_pipelines().send().await.expect("ListPipelines succeeds");
    assert!(output.pipelines().is_empty());
    assert_eq!(output.next_token(), None);
}

#[tokio::test]
async fn missing_pipeline_is_a_typed_pipeline_not_found() {
    let server = TestServer::start().await;
    let err = server
        .client()
        .get_pipeline()
        .name("does-not-exist")
        .send()
        .await
        .expect_err("GetPipeline of a missing pipeline fails");
    let service_error = err.into_service_error();
    assert!(service_error.is_pipeline_not_found_exception(), "{service_error:?}");
    assert_eq!(
        service_error.message(),
        Some("Account '000000000000' does not have a pipeline with name 'does-not-exist'")
    );
}

#[tokio::test]
async fn validation_failure_is_a_typed_validation_exception() {
    let server = TestServer::start().await;
    let err = server
        .client()
        .get_pipeline()
        .name("not a valid name")
        .version(0)
        .send()
        .await
        .expect_err("invalid input is refused");
    let service_error = err.into_service_error();
    assert!(service_error.is_validation_exception(), "{service_error:?}");
    assert_eq!(
        service_error.message(),
        Some(
            "2 validation errors detected: Value at 'name' failed to satisfy constraint: Member must satisfy \
             regular expression pattern: [A-Za-z0-9.@\\-_]+; Value at 'version' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
        )
    );
}

#[tokio::test]
async fn validation_runs_before_existence_checks() {
    // The pipeline does not exist either, but the invalid name is what is reported.
    let server = TestServer::start().await;
    let err = server.client().get_pipeline().name("x".repeat(101)).send().await.expect_err("refused");
    assert_eq!(err.code(), Some("ValidationException"));
}

#[tokio::test]
async fn created_pipeline_reads_back_with_defaults_and_metadata() {
    let server = TestServer::start().await;
    let client = server.client();
    let created =
        client.create_pipeline().pipeline(sdk_pipeline("web-app")).send().await.expect("CreatePipeline succeeds");
    let pipeline = created.pipeline().expect("pipeline echoed");
    assert_eq!(pipeline.version(), Some(1));
    let action = &pipeline.stages()[0].actions()[0];
    assert_eq!(action.run_order(), Some(1), "runOrder defaults to 1");

    let got = client.get_pipeline().name("web-app").send().await.expect("GetPipeline succeeds");
    assert_eq!(got.pipeline(), created.pipeline());
    let metadata = got.metadata().expect("metadata");
    assert_eq!(metadata.pipeline_arn(), Some("arn:aws:codepipeline:us-east-1:000000000000:web-app"));
    assert_eq!(metadata.created(), metadata.updated());

    let err = client.create_pipeline().pipeline(sdk_pipeline("web-app")).send().await.expect_err("name taken");
    assert!(err.into_service_error().is_pipeline_name_in_use_exception());
}
