//! The `fixtures/pipelines/` corpus round-trips: create, get (declaration plus AWS's defaults, secrets masked),
//! update from the masked echo (secrets kept), and every earlier version still reads back unchanged.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::sdk_json;

/// Secret properties of the built-in types (ThirdParty GitHub v1, Alexa Skills Kit).
const BUILT_IN_SECRETS: &[&str] = &["OAuthToken", "ClientSecret", "RefreshToken"];

/// Every example of `fixtures/pipelines/`, as (file name, document), in file order.
pub fn corpus() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pipelines");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable");
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect()
}

/// What GetPipeline should show for a declaration: AWS's defaults filled, secrets masked.
fn expected_echo(pipeline: &Value, pipeline_type: &str, version: i64, secrets: &[String]) -> Value {
    let mut echo = pipeline.clone();
    echo["version"] = json!(version);
    echo["pipelineType"] = json!(pipeline_type);
    if echo.get("executionMode").is_none() {
        echo["executionMode"] = json!("SUPERSEDED");
    }
    for stage in echo["stages"].as_array_mut().expect("stages") {
        for action in stage["actions"].as_array_mut().expect("actions") {
            let object = action.as_object_mut().expect("action object");
            object.entry("runOrder").or_insert(json!(1));
            object.entry("configuration").or_insert(json!({}));
            object.entry("inputArtifacts").or_insert(json!([]));
            object.entry("outputArtifacts").or_insert(json!([]));
            // AWS writes the shape's name into every action type id it sends.
            object["actionTypeId"]["__type"] = json!("ActionTypeId");
            if let Some(config) = object.get_mut("configuration").and_then(Value::as_object_mut) {
                for (key, value) in config.iter_mut() {
                    if secrets.iter().any(|s| s == key) {
                        *value = json!("****");
                    }
                }
            }
        }
    }
    // A V2 pipeline that declares no trigger shows the push trigger AWS adds for each connection source that
    // detects changes (on its BranchName).
    let declares = echo.get("triggers").and_then(Value::as_array).is_some_and(|t| !t.is_empty());
    if pipeline_type == "V2" && !declares {
        let defaults: Vec<Value> = echo["stages"][0]["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["actionTypeId"]["provider"] == "CodeStarSourceConnection")
            .filter(|a| a["configuration"]["DetectChanges"].as_str().is_none_or(|d| !d.eq_ignore_ascii_case("false")))
            .filter_map(|a| {
                let branch = a["configuration"]["BranchName"].as_str()?;
                Some(json!({"providerType": "CodeStarSourceConnection", "gitConfiguration": {
                    "sourceActionName": a["name"], "push": [{"branches": {"includes": [branch]}}]}}))
            })
            .collect();
        if !defaults.is_empty() {
            echo["triggers"] = json!(defaults);
        }
    }
    echo
}

#[tokio::test]
async fn every_corpus_declaration_round_trips() {
    let corpus = corpus();
    assert!(corpus.len() >= 12, "the corpus has at least 12 declarations");
    let server = TestServer::start().await;
    let client = server.client();
    for (file, doc) in corpus {
        let mut secrets: Vec<String> = BUILT_IN_SECRETS.iter().map(|s| s.to_string()).collect();
        for custom in doc["customActionTypes"].as_array().into_iter().flatten() {
            client
                .create_custom_action_type()
                .category(custom["category"].as_str().unwrap_or_default().into())
                .provider(custom["provider"].as_str().unwrap_or_default())
                .version(custom["version"].as_str().unwrap_or_default())
                .set_settings(sdk_json::settings(custom))
                .set_configuration_properties(sdk_json::configuration_properties(custom))
                .input_artifact_details(sdk_json::artifact_details(&custom["inputArtifactDetails"]))
                .output_artifact_details(sdk_json::artifact_details(&custom["outputArtifactDetails"]))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{file}: custom action type: {:?}", e.into_service_error()));
            for property in custom["configurationProperties"].as_array().into_iter().flatten() {
                if property["secret"] == true {
                    secrets.push(property["name"].as_str().unwrap_or_default().to_string());
                }
            }
        }
        let declared = &doc["pipeline"];
        let name = declared["name"].as_str().expect("name");
        let pipeline_type = doc["expectedPipelineType"].as_str().expect("expected type");

        let created = client
            .create_pipeline()
            .pipeline(sdk_json::pipeline(declared))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{file}: CreatePipeline: {:?}", e.into_service_error()));
        assert_eq!(created.pipeline().and_then(|p| p.version()), Some(1), "{file}");

        // The wire echo equals the declaration plus defaults.
        let expected_v1 = expected_echo(declared, pipeline_type, 1, &secrets);
        let got = server.call("GetPipeline", &json!({"name": name}).to_string()).await.json();
        assert_eq!(got["pipeline"], expected_v1, "{file}: GetPipeline echo");
        let metadata = &got["metadata"];
        assert_eq!(metadata["pipelineArn"], format!("arn:aws:codepipeline:us-east-1:000000000000:{name}"));
        // And the SDK reads every member of it.
        let sdk_got = client.get_pipeline().name(name).send().await.expect("SDK parses GetPipeline");
        assert_eq!(sdk_got.pipeline().map(|p| p.stages().len()), declared["stages"].as_array().map(Vec::len));

        // Update from the masked echo, as `get-pipeline | edit | update-pipeline` does: add a final stage.
        let mut edited = got["pipeline"].clone();
        edited["stages"].as_array_mut().expect("stages").push(json!({"name": "FinalApproval", "actions": [{
            "name": "SignOff",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
        }]}));
        let updated = client
            .update_pipeline()
            .pipeline(sdk_json::pipeline(&edited))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{file}: UpdatePipeline: {:?}", e.into_service_error()));
        assert_eq!(updated.pipeline().and_then(|p| p.version()), Some(2), "{file}");

        let v1 = server.call("GetPipeline", &json!({"name": name, "version": 1}).to_string()).await.json();
        assert_eq!(v1["pipeline"], expected_v1, "{file}: version 1 is unchanged");
        let v2 = server.call("GetPipeline", &json!({"name": name}).to_string()).await.json();
        assert_eq!(v2["pipeline"]["version"], 2, "{file}");
        assert_eq!(v2["pipeline"]["pipelineType"], pipeline_type, "{file}: the type is kept");
        assert_eq!(v2["pipeline"]["stages"].as_array().map(Vec::len), edited["stages"].as_array().map(Vec::len));
        assert_eq!(v2["metadata"]["created"], metadata["created"], "{file}: created is kept");
        assert!(v2["metadata"]["updated"].as_f64() >= metadata["updated"].as_f64(), "{file}: updated moves");

        // Secrets sent back masked kept their stored values.
        let scope = codepipeline_local::state::Scope { account: "000000000000".into(), region: "us-east-1".into() };
        let (before, after) = server.server.state().store().read(&scope, |data| {
            let record = &data.pipelines[name];
            let at = |n| record.at_version(n).expect("kept").declaration().clone();
            (at(1), at(2))
        });
        for (stage_before, stage_after) in before.stages.iter().zip(&after.stages) {
            for (action_before, action_after) in stage_before.actions.iter().zip(&stage_after.actions) {
                assert_eq!(action_before.configuration, action_after.configuration, "{file}: {}", action_after.name);
            }
        }
    }
}

#[tokio::test]
async fn listing_shows_type_mode_and_versions() {
    let server = TestServer::start().await;
    let client = server.client();
    for (_, doc) in corpus().into_iter().filter(|(_, d)| d.get("customActionTypes").is_none()) {
        client.create_pipeline().pipeline(sdk_json::pipeline(&doc["pipeline"])).send().await.expect("created");
    }
    let listed = client.list_pipelines().send().await.expect("lists");
    let names: Vec<_> = listed.pipelines().iter().filter_map(|p| p.name()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ListPipelines is in name order");
    let frontend = listed.pipelines().iter().find(|p| p.name() == Some("web-frontend")).expect("listed");
    assert_eq!(frontend.pipeline_type().map(|t| t.as_str()), Some("V2"));
    assert_eq!(frontend.execution_mode().map(|m| m.as_str()), Some("QUEUED"));
    assert_eq!(frontend.version(), Some(1));
    assert!(frontend.created().is_some() && frontend.updated().is_some());
}
