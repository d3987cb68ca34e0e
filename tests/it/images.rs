//! ECR sources and ECS deploys against moto's server: the source reads the image its tag names and hands on
//! `imageDetail.json`; the deploy registers a new task definition revision with the images of
//! `imagedefinitions.json` and points the service at it.

use aws_sdk_ecs::types::ContainerDefinition;
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::moto::Moto;
use crate::stacks::{action_state, at, config, ended, unzip, zip};

/// A cluster `apps` with a service `web` running task definition `web:1` (container `web`, image `nginx:1`), and an
/// ECR repository `web` with an image tagged `v2`; returns the image's digest.
async fn seed(moto: &Moto) -> String {
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config());
    ecs.create_cluster().cluster_name("apps").send().await.expect("cluster");
    ecs.register_task_definition()
        .family("web")
        .container_definitions(ContainerDefinition::builder().name("web").image("nginx:1").memory(128).build())
        .container_definitions(ContainerDefinition::builder().name("log").image("fluent-bit:1").memory(64).build())
        .send()
        .await
        .expect("task definition");
    ecs.create_service()
        .cluster("apps")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(1)
        .send()
        .await
        .expect("service");
    let ecr = aws_sdk_ecr::Client::new(&moto.sdk_config());
    ecr.create_repository().repository_name("web").send().await.expect("repository");
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023,
            "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7"},
        "layers": []});
    let put = ecr.put_image().repository_name("web").image_tag("v2").image_manifest(manifest.to_string());
    let image = put.send().await.expect("image");
    image.image().and_then(|i| i.image_id()).and_then(|i| i.image_digest()).expect("a digest").to_string()
}

fn pipeline(name: &str, definitions_file: Option<&str>) -> Value {
    let mut deploy = json!({"ClusterName": "apps", "ServiceName": "web"});
    if let Some(file) = definitions_file {
        deploy["FileName"] = json!(file);
    }
    json!({"pipeline": {
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [
                {"name": "Image", "actionTypeId": at("Source", "ECR"), "namespace": "Image",
                    "configuration": {"RepositoryName": "web", "ImageTag": "v2"}, "outputArtifacts": [{"name": "ImageDetail"}]},
                {"name": "Definitions", "actionTypeId": at("Source", "S3"),
                    "configuration": {"S3Bucket": "releases", "S3ObjectKey": "defs.zip", "PollForSourceChanges": "false"},
                    "outputArtifacts": [{"name": "Defs"}]}]},
            {"name": "Deploy", "actions": [{"name": "Service", "actionTypeId": at("Deploy", "ECS"),
                "configuration": deploy, "inputArtifacts": [{"name": "Defs"}]}]}
        ]
    }})
}

#[tokio::test]
async fn an_ecr_image_and_image_definitions_deploy_a_new_task_definition_to_the_service() {
    // moto's services run as many tasks as this says (it runs none by default, so nothing would ever be stable).
    let moto = Moto::start_with(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "defs.zip").await;
    let digest = seed(&moto).await;
    let image = format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{digest}");
    let definitions = json!([{"name": "web", "imageUri": image}]).to_string();
    moto.put_object("releases", "defs.zip", &zip(&[("imagedefinitions.json", &definitions)])).await;
    let server = TestServer::with_config(config(&moto, &["S3", "ECS", "ECR"])).await;

    let created = server.call("CreatePipeline", &pipeline("ship-web", None).to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, execution) = ended(&server, "ship-web", 1).await;
    let deploy = action_state(&server, "ship-web", 1).await;
    assert_eq!(status, "Succeeded", "{deploy}");

    // The ECR source read the real image: its digest is the revision, its variables and imageDetail.json say it.
    let execution = server
        .call(
            "GetPipelineExecution",
            &json!({"pipelineName": "ship-web", "pipelineExecutionId": execution}).to_string(),
        )
        .await
        .json();
    let revisions = execution["pipelineExecution"]["artifactRevisions"].as_array().cloned().unwrap_or_default();
    let revision = revisions.iter().find(|r| r["name"] == "ImageDetail").expect("the image's revision");
    assert_eq!(revision["revisionId"].as_str(), Some(digest.as_str()), "{revision}");
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "ship-web"}"#).await.json();
    let source = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Image"))
        .cloned()
        .expect("the ECR source ran");
    let variables = &source["output"]["outputVariables"];
    assert_eq!(variables["ImageDigest"].as_str(), Some(digest.as_str()));
    assert_eq!(variables["RepositoryName"], "web");
    assert_eq!(variables["ImageTag"], "v2");
    let location = &source["output"]["outputArtifacts"][0]["s3location"];
    let (got, bytes) =
        moto.get_object(location["bucket"].as_str().unwrap_or(""), location["key"].as_str().unwrap_or("")).await;
    assert_eq!(got, 200);
    let detail: Value = serde_json::from_str(&unzip(&bytes, "imageDetail.json")).expect("JSON");
    assert_eq!(detail["ImageDigest"].as_str(), Some(digest.as_str()), "{detail}");
    assert_eq!(detail["ImageURI"].as_str(), Some(image.as_str()), "{detail}");
    assert_eq!(detail["ImageTags"], json!(["v2"]), "{detail}");
    assert!(detail["ImageSizeInBytes"].is_string(), "{detail}");

    // The service now runs a new revision, with the new image for `web` and the sidecar unchanged.
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config());
    let services = ecs.describe_services().cluster("apps").services("web").send().await.expect("the service");
    let running = services.services()[0].task_definition().unwrap_or_default().to_string();
    assert!(running.ends_with(":task-definition/web:2"), "{running}");
    let task = ecs.describe_task_definition().task_definition(&running).send().await.expect("the revision");
    let containers = task.task_definition().map(|t| t.container_definitions().to_vec()).unwrap_or_default();
    let image_of =
        |name: &str| containers.iter().find(|c| c.name() == Some(name)).and_then(|c| c.image().map(str::to_string));
    assert_eq!(image_of("web").as_deref(), Some(image.as_str()));
    assert_eq!(image_of("log").as_deref(), Some("fluent-bit:1"));
    assert!(deploy["summary"].as_str().is_some_and(|s| s.contains("web:2")), "{deploy}");

    // A container the task definition lacks, and a file the artifact lacks: AWS's words, and nothing registered.
    let wrong = json!([{"name": "api", "imageUri": "nginx:2"}]).to_string();
    moto.put_object("releases", "defs.zip", &zip(&[("imagedefinitions.json", &wrong)])).await;
    server.call("StartPipelineExecution", r#"{"name": "ship-web"}"#).await;
    let (status, _) = ended(&server, "ship-web", 2).await;
    assert_eq!(status, "Failed");
    let failed = action_state(&server, "ship-web", 1).await;
    assert_eq!(failed["errorDetails"]["code"], "ConfigurationError", "{failed}");
    assert_eq!(failed["errorDetails"]["message"], "The AWS ECS container api does not exist");
    let created = server.call("CreatePipeline", &pipeline("ship-elsewhere", Some("images.json")).to_string()).await;
    assert_eq!(created.status, 200);
    let (status, _) = ended(&server, "ship-elsewhere", 1).await;
    assert_eq!(status, "Failed");
    let failed = action_state(&server, "ship-elsewhere", 1).await;
    assert_eq!(failed["errorDetails"]["message"], "File [images.json] does not exist in artifact [Defs]");
    let revisions = ecs.list_task_definitions().family_prefix("web").send().await.expect("revisions");
    assert_eq!(revisions.task_definition_arns().len(), 2, "a failed deploy registers nothing");
}

#[tokio::test]
async fn a_service_that_never_settles_times_out_on_the_emulator_clock() {
    // moto runs no tasks: the service never becomes stable, as a service whose tasks keep failing.
    let moto = Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "defs.zip").await;
    seed(&moto).await;
    let definitions = json!([{"name": "web", "imageUri": "nginx:2"}]).to_string();
    moto.put_object("releases", "defs.zip", &zip(&[("imagedefinitions.json", &definitions)])).await;
    let server = TestServer::with_config(config(&moto, &["S3", "ECS", "ECR"])).await;
    let mut definition = pipeline("stuck", None);
    definition["pipeline"]["stages"][1]["actions"][0]["configuration"]["DeploymentTimeout"] = json!("15");
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    crate::common::eventually("the deploy to wait on the service", || async {
        let state = action_state(&server, "stuck", 1).await;
        (state["status"] == "InProgress").then_some(())
    })
    .await;
    let advanced = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 15 * 60})).await;
    assert_eq!(advanced.status, 200, "{}", advanced.text());
    let (status, _) = ended(&server, "stuck", 1).await;
    assert_eq!(status, "Failed");
    let failed = action_state(&server, "stuck", 1).await;
    assert_eq!(
        failed["errorDetails"]["message"], "The action timed out after 15 minutes without a result.",
        "{failed}"
    );
}
