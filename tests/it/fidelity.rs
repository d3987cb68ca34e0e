//! Fidelity: answers that match, member by member, what real AWS CodePipeline sent in recorded sessions
//! (`shared/reference/native-captures`). Each test states the fact it checks; none copies a capture.

use aws_sdk_codepipeline::types::ActionOwner;
use serde_json::{Value, json};

use crate::common::TestServer;

/// (category, provider) of each AWS-owned type, in the order AWS's ListActionTypes returns them.
const AWS_ORDER: [(&str, &str); 28] = [
    ("Source", "S3"),
    ("Invoke", "Lambda"),
    ("Deploy", "Lambda"),
    ("Test", "CodeBuild"),
    ("Approval", "Manual"),
    ("Source", "CodeStarSourceConnection"),
    ("Invoke", "InspectorScan"),
    ("Source", "CodeCommit"),
    ("Invoke", "StepFunctions"),
    ("Deploy", "CloudFormation"),
    ("Deploy", "CloudFormationStackSet"),
    ("Deploy", "EKS"),
    ("Test", "DeviceFarm"),
    ("Build", "ECRBuildAndPublish"),
    ("Deploy", "CloudFormationStackInstances"),
    ("Deploy", "EC2"),
    ("Deploy", "ECS"),
    ("Source", "ECR"),
    ("Deploy", "CodeDeploy"),
    ("Deploy", "ServiceCatalog"),
    ("Deploy", "CodeDeployToECS"),
    ("Deploy", "ElasticBeanstalk"),
    ("Invoke", "CodePipeline"),
    ("Deploy", "OpsWorks"),
    ("Deploy", "AppConfig"),
    ("Deploy", "S3"),
    ("Build", "CodeBuild"),
    ("Compute", "Commands"),
];

fn find<'a>(types: &'a [Value], category: &str, provider: &str) -> &'a Value {
    types
        .iter()
        .find(|t| t["id"]["category"] == category && t["id"]["provider"] == provider)
        .unwrap_or_else(|| panic!("{category}/{provider} listed"))
}

/// (name, required, key) of each configuration property, in order.
fn properties(action_type: &Value) -> Vec<(String, bool, bool)> {
    action_type["actionConfigurationProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let flag = |k: &str| p[k].as_bool().expect("flag");
            (p["name"].as_str().unwrap_or_default().to_string(), flag("required"), flag("key"))
        })
        .collect()
}

#[tokio::test]
async fn list_action_types_has_aws_order_flags_and_url_templates() {
    let server = TestServer::start().await;
    let listed = server.call("ListActionTypes", r#"{"actionOwnerFilter": "AWS"}"#).await.json();
    let types = listed["actionTypes"].as_array().expect("types");
    let order: Vec<(&str, &str)> = types
        .iter()
        .map(|t| (t["id"]["category"].as_str().unwrap_or_default(), t["id"]["provider"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(order, AWS_ORDER);

    let s3 = find(types, "Source", "S3");
    assert_eq!(
        s3["settings"],
        json!({"entityUrlTemplate": "https://console.aws.amazon.com/s3/home?region=us-east-1#"})
    );
    let owned = |name: &str, required, key| (name.to_string(), required, key);
    assert_eq!(
        properties(s3),
        [
            owned("S3Bucket", true, true),
            owned("S3ObjectKey", true, true),
            owned("PollForSourceChanges", false, true),
            owned("AllowOverrideForS3ObjectKey", false, true),
        ]
    );
    assert_eq!(s3["inputArtifactDetails"], json!({"minimumCount": 0, "maximumCount": 0}));
    // No approval property is a key; CodeBuild's environment variables are not one either.
    assert!(properties(find(types, "Approval", "Manual")).iter().all(|(_, required, key)| !required && !key));
    assert_eq!(
        properties(find(types, "Test", "CodeBuild")),
        [
            owned("ProjectName", true, true),
            owned("EnvironmentVariables", false, false),
            owned("PrimarySource", false, true),
            owned("BatchEnabled", false, false),
            owned("CombineArtifacts", false, false),
            owned("ServiceRoleArnOverride", false, false),
        ]
    );
    let lambda = find(types, "Invoke", "Lambda");
    assert_eq!(
        lambda["settings"]["executionUrlTemplate"],
        "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logStream:group=%252Faws%252Flambda%252F{Config:FunctionName}"
    );
    // Newer types keep AWS's own placeholders; types without URLs have empty settings.
    assert_eq!(
        find(types, "Deploy", "Lambda")["settings"]["entityUrlTemplate"],
        "{Console}/lambda/home?region={Region}#/functions/{Config:FunctionName}"
    );
    assert_eq!(find(types, "Compute", "Commands")["settings"], json!({}));
    assert_eq!(
        find(types, "Deploy", "S3")["settings"]["entityUrlTemplate"],
        "https://console.aws.amazon.com/s3/buckets/{Config:BucketName}/?region=us-east-1&tab=overview"
    );
}

#[tokio::test]
async fn action_type_templates_name_the_region_that_serves_them() {
    let server = TestServer::start().await;
    let client = server.client_as("AKIDTESTTEST", "eu-west-1");
    let listed = client.list_action_types().action_owner_filter(ActionOwner::Aws).send().await.expect("lists");
    let template = |provider: &str, category: &str| {
        let found = listed
            .action_types()
            .iter()
            .find(|t| t.id().is_some_and(|id| id.provider() == provider && id.category().as_str() == category));
        found.and_then(|t| t.settings()).and_then(|s| s.entity_url_template()).map(str::to_string)
    };
    assert_eq!(template("S3", "Source").as_deref(), Some("https://console.aws.amazon.com/s3/home?region=eu-west-1#"));
    // Device Farm lives in us-west-2 whatever region the pipeline is in.
    assert_eq!(
        template("DeviceFarm", "Test").as_deref(),
        Some("https://us-west-2.console.aws.amazon.com/devicefarm/home#/projects/{Config:ProjectId}/runs")
    );
    assert_eq!(
        template("Lambda", "Deploy").as_deref(),
        Some("{Console}/lambda/home?region={Region}#/functions/{Config:FunctionName}")
    );
}
