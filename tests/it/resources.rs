//! Action types, rule types, tags and webhooks through `aws-sdk-codepipeline`, and pagination of every list
//! operation.

use std::collections::HashSet;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionConfigurationProperty, ActionOwner, ActionTypeArtifactDetails, ActionTypeDeclaration,
    ActionTypeExecutor, ActionTypeIdentifier, ActionTypeProperty, ArtifactDetails, ExecutorConfiguration, ExecutorType,
    JobWorkerExecutorConfiguration, Tag, WebhookAuthConfiguration, WebhookAuthenticationType, WebhookDefinition,
    WebhookFilterRule,
};
use serde_json::json;

use crate::common::{TestServer, sdk_pipeline};
use crate::sdk_json;

fn details(min: i32, max: i32) -> ArtifactDetails {
    ArtifactDetails::builder().minimum_count(min).maximum_count(max).build()
}

fn property(name: &str, required: bool, secret: bool, queryable: bool) -> ActionConfigurationProperty {
    ActionConfigurationProperty::builder()
        .name(name)
        .required(required)
        .key(true)
        .secret(secret)
        .queryable(queryable)
        .build()
        .expect("property")
}

async fn create_custom(client: &Client, provider: &str, version: &str) -> Result<(), String> {
    let queryable = property("ProjectName", true, false, true);
    create_custom_with(client, provider, version, vec![queryable], details(0, 5)).await
}

/// CreateCustomActionType of a Build type with the given properties and input bounds; errors as `Code: message`.
async fn create_custom_with(
    client: &Client,
    provider: &str,
    version: &str,
    properties: Vec<ActionConfigurationProperty>,
    inputs: ArtifactDetails,
) -> Result<(), String> {
    client
        .create_custom_action_type()
        .category(ActionCategory::Build)
        .provider(provider)
        .version(version)
        .set_configuration_properties(Some(properties))
        .input_artifact_details(inputs)
        .output_artifact_details(details(0, 5))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.code().unwrap_or_default(), e.message().unwrap_or_default()))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

// --- action types -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_action_types_filters_by_owner() {
    let server = TestServer::start().await;
    let client = server.client();
    let aws = client.list_action_types().action_owner_filter(ActionOwner::Aws).send().await.expect("lists");
    assert_eq!(aws.action_types().len(), 28);
    assert!(aws.action_types().iter().all(|t| t.id().map(|id| id.owner()) == Some(&ActionOwner::Aws)));
    let s3 = aws
        .action_types()
        .iter()
        .find(|t| t.id().is_some_and(|id| id.provider() == "S3" && id.category() == &ActionCategory::Source))
        .expect("S3 source listed");
    assert_eq!(s3.output_artifact_details().map(|d| (d.minimum_count(), d.maximum_count())), Some((1, 1)));
    let names: Vec<_> = s3.action_configuration_properties().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["S3Bucket", "S3ObjectKey", "PollForSourceChanges", "AllowOverrideForS3ObjectKey"]);

    let third = client.list_action_types().action_owner_filter(ActionOwner::ThirdParty).send().await.expect("lists");
    let github =
        third.action_types().iter().find(|t| t.id().is_some_and(|id| id.provider() == "GitHub")).expect("GitHub v1");
    assert!(github.action_configuration_properties().iter().any(|p| p.name() == "OAuthToken" && p.secret()));

    create_custom(&client, "Jenkins", "1").await.expect("created");
    let custom = client.list_action_types().action_owner_filter(ActionOwner::Custom).send().await.expect("lists");
    assert_eq!(custom.action_types().len(), 1);
    let everything = client.list_action_types().send().await.expect("lists");
    assert_eq!(everything.action_types().len(), 28 + third.action_types().len() + 1);
}

#[tokio::test]
async fn custom_action_types_are_created_listed_deleted_and_refused_after_deletion() {
    let server = TestServer::start().await;
    let client = server.client();
    let created = client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider("Sonar")
        .version("3")
        .configuration_properties(property("Project", true, false, true))
        .configuration_properties(property("Token", false, true, false))
        .input_artifact_details(details(1, 1))
        .output_artifact_details(details(0, 0))
        .tags(tag("team", "qa"))
        .send()
        .await
        .expect("created");
    let action_type = created.action_type().expect("echoed");
    assert_eq!(action_type.id().map(|id| id.owner()), Some(&ActionOwner::Custom));
    assert_eq!(created.tags().len(), 1, "tags are echoed");

    let err = create_custom(&client, "Sonar", "3").await;
    assert!(err.is_ok(), "another category is another type");
    let err = client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider("Sonar")
        .version("3")
        .input_artifact_details(details(1, 1))
        .output_artifact_details(details(0, 0))
        .send()
        .await
        .expect_err("exists");
    assert_eq!(err.code(), Some("ActionTypeAlreadyExistsException"));

    // A pipeline may use it, validated like a built-in type.
    let pipeline = json!({"name": "with-sonar", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "S", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Scan", "actions": [{"name": "Sonar", "actionTypeId": {"category": "Test", "owner": "Custom", "provider": "Sonar", "version": "3"},
                "configuration": {"Project": "web"}, "inputArtifacts": [{"name": "Src"}]}]}]});
    client.create_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect("custom type usable");
    let mut bad = pipeline.clone();
    bad["name"] = json!("bad-query");
    bad["stages"][1]["actions"][0]["configuration"]["Project"] = json!("this value is far too long for a query");
    let err = client.create_pipeline().pipeline(sdk_json::pipeline(&bad)).send().await.expect_err("queryable rules");
    assert_eq!(err.code(), Some("InvalidActionDeclarationException"));
    assert_eq!(
        err.message(),
        Some(
            "The value of the queryable property 'Project' of action 'Sonar' must be at most 20 characters of letters, digits, underscores and hyphens"
        )
    );

    client
        .delete_custom_action_type()
        .category(ActionCategory::Test)
        .provider("Sonar")
        .version("3")
        .send()
        .await
        .expect("deleted");
    let custom = client.list_action_types().action_owner_filter(ActionOwner::Custom).send().await.expect("lists");
    assert_eq!(custom.action_types().len(), 1, "only the Build/Sonar type is left");
    let mut again = pipeline.clone();
    again["name"] = json!("after-delete");
    let err = client.create_pipeline().pipeline(sdk_json::pipeline(&again)).send().await.expect_err("deleted type");
    assert_eq!(
        err.message(),
        Some(
            "ActionType (Category: 'Test', Provider: 'Sonar', Owner: 'Custom', Version: '3') in action 'Sonar' is not available in region 'US_EAST_1'"
        )
    );
    // The existing pipeline cannot be updated with it either.
    let err = client.update_pipeline().pipeline(sdk_json::pipeline(&pipeline)).send().await.expect_err("refused");
    assert_eq!(err.code(), Some("InvalidActionDeclarationException"));
    // And the same version cannot be created again.
    let err = client
        .create_custom_action_type()
        .category(ActionCategory::Test)
        .provider("Sonar")
        .version("3")
        .input_artifact_details(details(1, 1))
        .output_artifact_details(details(0, 0))
        .send()
        .await
        .expect_err("version burnt");
    assert_eq!(err.code(), Some("ActionTypeAlreadyExistsException"));
}

#[tokio::test]
async fn custom_action_type_input_rules_and_quota() {
    let server = TestServer::start().await;
    let client = server.client();
    let two_queryable = vec![property("A", true, false, true), property("B", true, false, true)];
    let err = create_custom_with(&client, "Two", "1", two_queryable, details(0, 1)).await.expect_err("two queryable");
    assert_eq!(err, "ValidationException: An action type can have at most one queryable configuration property");
    let secret_queryable = vec![property("A", true, true, true)];
    let err = create_custom_with(&client, "Secretq", "1", secret_queryable, details(0, 1)).await.expect_err("secret");
    assert_eq!(
        err,
        "ValidationException: The queryable configuration property 'A' must be required and must not be secret"
    );
    let err = create_custom_with(&client, "Bounds", "1", vec![], details(3, 1)).await.expect_err("min > max");
    assert_eq!(
        err,
        "ValidationException: inputArtifactDetails.minimumCount (3) must not be greater than inputArtifactDetails.maximumCount (1)"
    );
    let err = create_custom_with(&client, "Range", "1", vec![], details(0, 6)).await.expect_err("model range");
    assert_eq!(
        err,
        "ValidationException: 1 validation error detected: Value at 'inputArtifactDetails.maximumCount' failed to satisfy constraint: Member must have value less than or equal to 5"
    );

    for i in 0..50 {
        create_custom(&client, &format!("P{i}"), "1").await.expect("within quota");
    }
    let err = create_custom(&client, "P50", "1").await.expect_err("quota");
    assert_eq!(
        err,
        "LimitExceededException: The account already has 50 custom action types in this region, the maximum allowed"
    );
}

#[tokio::test]
async fn get_and_update_action_type() {
    let server = TestServer::start().await;
    let client = server.client();
    let got = client
        .get_action_type()
        .category(ActionCategory::Deploy)
        .owner("AWS")
        .provider("CodeDeploy")
        .version("1")
        .send()
        .await
        .expect("built-in type");
    let declaration = got.action_type().expect("declaration");
    assert_eq!(declaration.input_artifact_details().map(|d| d.maximum_count()), Some(1));
    assert!(declaration.properties().iter().any(|p| p.name() == "ApplicationName" && !p.optional()));

    let err = client
        .get_action_type()
        .category(ActionCategory::Deploy)
        .owner("ThirdParty")
        .provider("Nobody")
        .version("1")
        .send()
        .await
        .expect_err("missing");
    assert!(err.into_service_error().is_action_type_not_found_exception());

    let err = client
        .get_action_type()
        .category(ActionCategory::Deploy)
        .owner("Custom")
        .provider("X")
        .version("1")
        .send()
        .await
        .expect_err("owner pattern");
    assert_eq!(
        err.message(),
        Some(
            "1 validation error detected: Value at 'owner' failed to satisfy constraint: Member must satisfy regular expression pattern: AWS|ThirdParty"
        )
    );

    // UpdateActionType on the ThirdParty GitHub type: the new definition drives validation in this account.
    let updated = ActionTypeDeclaration::builder()
        .executor(
            ActionTypeExecutor::builder()
                .r#type(ExecutorType::JobWorker)
                .configuration(
                    ExecutorConfiguration::builder()
                        .job_worker_executor_configuration(
                            JobWorkerExecutorConfiguration::builder().polling_accounts("123456789012").build(),
                        )
                        .build(),
                )
                .build()
                .expect("executor"),
        )
        .id(ActionTypeIdentifier::builder()
            .category(ActionCategory::Source)
            .owner("ThirdParty")
            .provider("GitHub")
            .version("1")
            .build()
            .expect("id"))
        .input_artifact_details(ActionTypeArtifactDetails::builder().minimum_count(0).maximum_count(0).build())
        .output_artifact_details(ActionTypeArtifactDetails::builder().minimum_count(1).maximum_count(1).build())
        .properties(
            ActionTypeProperty::builder().name("Repo").optional(false).key(true).no_echo(false).build().expect("p"),
        )
        .build();
    client.update_action_type().action_type(updated.clone()).send().await.expect("updated");
    let third = client.list_action_types().action_owner_filter(ActionOwner::ThirdParty).send().await.expect("lists");
    let github =
        third.action_types().iter().find(|t| t.id().is_some_and(|id| id.provider() == "GitHub")).expect("listed");
    let names: Vec<_> = github.action_configuration_properties().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["Repo"]);

    let mut aws_owned = updated.clone();
    aws_owned.id = Some(
        ActionTypeIdentifier::builder()
            .category(ActionCategory::Deploy)
            .owner("AWS")
            .provider("S3")
            .version("1")
            .build()
            .expect("id"),
    );
    let err = client.update_action_type().action_type(aws_owned).send().await.expect_err("AWS-owned");
    assert!(err.into_service_error().is_request_failed_exception());
    let mut unknown = updated;
    unknown.id = Some(
        ActionTypeIdentifier::builder()
            .category(ActionCategory::Deploy)
            .owner("ThirdParty")
            .provider("Nope")
            .version("1")
            .build()
            .expect("id"),
    );
    let err = client.update_action_type().action_type(unknown).send().await.expect_err("unknown");
    assert!(err.into_service_error().is_action_type_not_found_exception());
}

#[tokio::test]
async fn list_rule_types_returns_the_five_rule_types() {
    let server = TestServer::start().await;
    let rules = server.client().list_rule_types().send().await.expect("lists");
    let mut providers: Vec<_> = rules.rule_types().iter().filter_map(|r| r.id().map(|id| id.provider())).collect();
    providers.sort();
    assert_eq!(providers, ["CloudWatchAlarm", "Commands", "DeploymentWindow", "LambdaInvoke", "VariableCheck"]);
    let window = rules
        .rule_types()
        .iter()
        .find(|r| r.id().is_some_and(|id| id.provider() == "DeploymentWindow"))
        .expect("listed");
    assert!(window.rule_configuration_properties().iter().any(|p| p.name() == "Cron" && p.required()));
}

// --- tags ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn tags_on_pipelines_webhooks_and_custom_action_types() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("tagged")).tags(tag("env", "prod")).send().await.expect("created");
    create_custom(&client, "Tagged", "1").await.expect("created");
    put_webhook(&client, "hook", "tagged", WebhookAuthenticationType::Unauthenticated, None).await.expect("hook");

    let arns = [
        "arn:aws:codepipeline:us-east-1:000000000000:tagged".to_string(),
        "arn:aws:codepipeline:us-east-1:000000000000:webhook:hook".to_string(),
        "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build/Tagged/1".to_string(),
    ];
    for arn in &arns {
        client
            .tag_resource()
            .resource_arn(arn)
            .tags(tag("owner", "me"))
            .tags(tag("cost", "42"))
            .send()
            .await
            .expect("tagged");
        client.tag_resource().resource_arn(arn).tags(tag("cost", "43")).send().await.expect("value replaced");
        client.untag_resource().resource_arn(arn).tag_keys("owner").tag_keys("absent").send().await.expect("untagged");
        let listed = client.list_tags_for_resource().resource_arn(arn).send().await.expect("lists");
        let pairs: Vec<_> = listed.tags().iter().map(|t| (t.key(), t.value())).collect();
        assert!(pairs.contains(&("cost", "43")), "{arn}: {pairs:?}");
        assert!(!pairs.iter().any(|(k, _)| *k == "owner"), "{arn}");
    }
    let pipeline_tags = client.list_tags_for_resource().resource_arn(&arns[0]).send().await.expect("lists");
    assert!(pipeline_tags.tags().iter().any(|t| t.key() == "env"), "tags given at creation are kept");
}

#[tokio::test]
async fn tag_errors() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("p")).send().await.expect("created");
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:p";

    let err = client.tag_resource().resource_arn(arn).tags(tag("aws:owner", "x")).send().await.expect_err("reserved");
    assert!(err.into_service_error().is_invalid_tags_exception());
    let err = client.untag_resource().resource_arn(arn).tag_keys("aws:owner").send().await.expect_err("reserved");
    assert!(err.into_service_error().is_invalid_tags_exception());

    let mut request = client.tag_resource().resource_arn(arn);
    for i in 0..51 {
        request = request.tags(tag(&format!("k{i}"), "v"));
    }
    let err = request.send().await.expect_err("too many");
    assert!(err.into_service_error().is_too_many_tags_exception());
    let listed = client.list_tags_for_resource().resource_arn(arn).send().await.expect("lists");
    assert!(listed.tags().is_empty(), "a refused request adds nothing");

    for missing in [
        "arn:aws:codepipeline:us-east-1:000000000000:no-such-pipeline",
        "arn:aws:codepipeline:us-east-1:000000000000:webhook:no-such-hook",
        "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build/None/1",
        "arn:aws:codepipeline:eu-west-1:000000000000:p",
        "arn:aws:codepipeline:us-east-1:999999999999:p",
    ] {
        let err = client.list_tags_for_resource().resource_arn(missing).send().await.expect_err("missing");
        assert_eq!(err.code(), Some("ResourceNotFoundException"), "{missing}");
        assert_eq!(
            err.message().map(str::to_string),
            Some(format!("The resource with ARN '{missing}' does not exist"))
        );
    }
    let err = client
        .tag_resource()
        .resource_arn("arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Cooking/X/1")
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("unparseable");
    assert!(err.into_service_error().is_invalid_arn_exception());
    let err = client.list_tags_for_resource().resource_arn("arn:aws:s3:::bucket").send().await.expect_err("pattern");
    assert_eq!(err.code(), Some("ValidationException"));
}

// --- webhooks -----------------------------------------------------------------------------------------------------

async fn put_webhook(
    client: &Client,
    name: &str,
    pipeline: &str,
    authentication: WebhookAuthenticationType,
    config: Option<WebhookAuthConfiguration>,
) -> Result<aws_sdk_codepipeline::operation::put_webhook::PutWebhookOutput, String> {
    let definition = WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(
            WebhookFilterRule::builder()
                .json_path("$.ref")
                .match_equals("refs/heads/{Branch}")
                .build()
                .expect("filter"),
        )
        .authentication(authentication)
        .authentication_configuration(config.unwrap_or_else(|| WebhookAuthConfiguration::builder().build()))
        .build()
        .expect("definition");
    client
        .put_webhook()
        .webhook(definition)
        .send()
        .await
        .map_err(|e| format!("{}: {}", e.code().unwrap_or_default(), e.message().unwrap_or_default()))
}

#[tokio::test]
async fn webhooks_are_created_replaced_listed_and_deleted() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("site")).send().await.expect("created");
    let secret = WebhookAuthConfiguration::builder().secret_token("s3cret").build();
    let created = put_webhook(&client, "github", "site", WebhookAuthenticationType::GithubHmac, Some(secret.clone()))
        .await
        .expect("created");
    let item = created.webhook().expect("item");
    let url = item.url().to_string();
    assert!(url.starts_with(&format!("{}/webhooks/us-east-1/", server.url())), "{url}");
    assert_eq!(item.arn(), Some("arn:aws:codepipeline:us-east-1:000000000000:webhook:github"));
    let shown = item.definition().and_then(|d| d.authentication_configuration()).and_then(|c| c.secret_token());
    assert_eq!(shown, Some("****"), "the secret is never returned in clear");

    // Replacing keeps the URL.
    let replaced = put_webhook(&client, "github", "site", WebhookAuthenticationType::GithubHmac, Some(secret.clone()))
        .await
        .expect("replaced");
    assert_eq!(replaced.webhook().map(|w| w.url()), Some(url.as_str()));
    let listed = client.list_webhooks().send().await.expect("lists");
    assert_eq!(listed.webhooks().len(), 1);
    assert_eq!(
        listed.webhooks()[0].definition().and_then(|d| d.authentication_configuration()).and_then(|c| c.secret_token()),
        Some("****")
    );

    client.register_webhook_with_third_party().webhook_name("github").send().await.expect("registered");
    client.deregister_webhook_with_third_party().webhook_name("github").send().await.expect("deregistered");
    client.delete_webhook().name("github").send().await.expect("deleted");
    client.delete_webhook().name("github").send().await.expect("deleting again succeeds");
    assert!(client.list_webhooks().send().await.expect("lists").webhooks().is_empty());

    // Re-created after deletion: a new URL.
    let again = put_webhook(&client, "github", "site", WebhookAuthenticationType::GithubHmac, Some(secret))
        .await
        .expect("re-created");
    assert_ne!(again.webhook().map(|w| w.url()), Some(url.as_str()));
}

#[tokio::test]
async fn webhook_errors() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("site")).send().await.expect("created");

    let err = put_webhook(&client, "h", "missing", WebhookAuthenticationType::Unauthenticated, None)
        .await
        .expect_err("no pipeline");
    assert_eq!(err, "PipelineNotFoundException: Account '000000000000' does not have a pipeline with name 'missing'");
    let err =
        put_webhook(&client, "h", "site", WebhookAuthenticationType::GithubHmac, None).await.expect_err("no secret");
    assert_eq!(
        err,
        "InvalidWebhookAuthenticationParametersException: GITHUB_HMAC authentication requires SecretToken in authenticationConfiguration"
    );
    let err = put_webhook(&client, "h", "site", WebhookAuthenticationType::Ip, None).await.expect_err("no range");
    assert!(
        err.starts_with("InvalidWebhookAuthenticationParametersException: IP authentication requires AllowedIPRange")
    );
    let bad_range = WebhookAuthConfiguration::builder().allowed_ip_range("10.0.0.0/40").build();
    let err =
        put_webhook(&client, "h", "site", WebhookAuthenticationType::Ip, Some(bad_range)).await.expect_err("bad CIDR");
    assert!(err.starts_with("InvalidWebhookAuthenticationParametersException: AllowedIPRange '10.0.0.0/40'"), "{err}");
    let range = WebhookAuthConfiguration::builder().allowed_ip_range("192.30.252.0/22").build();
    put_webhook(&client, "ip", "site", WebhookAuthenticationType::Ip, Some(range)).await.expect("valid CIDR");

    // A target action outside the first stage.
    let definition = WebhookDefinition::builder()
        .name("h")
        .target_pipeline("site")
        .target_action("Deploy")
        .set_filters(Some(vec![]))
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .expect("definition");
    let err = client.put_webhook().webhook(definition.clone()).send().await.expect_err("not a source action");
    assert_eq!(err.message(), Some("Action with name Deploy was not found in the first stage of the pipeline"));

    // A filter whose JSONPath does not parse.
    let mut bad_filter = definition;
    bad_filter.target_action = "Source".into();
    bad_filter.filters = vec![WebhookFilterRule::builder().json_path("$.[unclosed").build().expect("filter")];
    let err = client.put_webhook().webhook(bad_filter).send().await.expect_err("bad JSONPath");
    assert!(err.into_service_error().is_invalid_webhook_filter_pattern_exception());

    let err = client.register_webhook_with_third_party().webhook_name("nope").send().await.expect_err("unknown");
    assert!(err.into_service_error().is_webhook_not_found_exception());
    let err = client.deregister_webhook_with_third_party().webhook_name("nope").send().await.expect_err("unknown");
    assert!(err.into_service_error().is_webhook_not_found_exception());
}

#[tokio::test]
async fn webhook_urls_use_the_public_url_when_set() {
    let config =
        codepipeline_local::Config { public_url: Some("https://hooks.example.test".into()), ..Default::default() };
    let server = TestServer::with_config(config).await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("site")).send().await.expect("created");
    let created =
        put_webhook(&client, "h", "site", WebhookAuthenticationType::Unauthenticated, None).await.expect("created");
    let url = created.webhook().map(|w| w.url().to_string()).unwrap_or_default();
    assert!(url.starts_with("https://hooks.example.test/webhooks/us-east-1/"), "{url}");
}

#[tokio::test]
async fn webhook_quota() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("site")).send().await.expect("created");
    let mut conn = server.connect().await;
    for i in 0..300 {
        let body = json!({"webhook": {"name": format!("h{i}"), "targetPipeline": "site", "targetAction": "Source",
            "filters": [], "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}});
        assert_eq!(conn.aws("PutWebhook", &body.to_string()).await.status, 200);
    }
    let err = put_webhook(&client, "h300", "site", WebhookAuthenticationType::Unauthenticated, None)
        .await
        .expect_err("quota");
    assert!(err.starts_with("LimitExceededException"), "{err}");
    // Replacing an existing one is still allowed.
    put_webhook(&client, "h7", "site", WebhookAuthenticationType::Unauthenticated, None).await.expect("replace");
}

// --- pagination ---------------------------------------------------------------------------------------------------

/// Walks a list operation page by page; returns the pages' item keys.
async fn walk<F, Fut>(mut page: F) -> Vec<Vec<String>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, Option<String>)>,
{
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token).await;
        pages.push(items);
        match next {
            Some(next) => token = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 1000, "pagination terminates");
    }
}

fn assert_each_once(pages: &[Vec<String>], expected: &HashSet<String>, what: &str) {
    let all: Vec<&String> = pages.iter().flatten().collect();
    let unique: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "{what}: no item twice");
    assert_eq!(unique.len(), expected.len(), "{what}: every item");
    assert!(expected.iter().all(|e| unique.contains(e)), "{what}: the right items");
    assert!(pages.len() > 1, "{what}: more than one page");
}

#[tokio::test]
async fn every_list_operation_pages_through_each_item_once() {
    let server = TestServer::start().await;
    let client = server.client();

    // ListPipelines
    let mut names = HashSet::new();
    for i in 0..23 {
        let name = format!("pipe-{i:02}");
        client.create_pipeline().pipeline(sdk_pipeline(&name)).send().await.expect("created");
        names.insert(name);
    }
    let pages = walk(|token| {
        let client = client.clone();
        async move {
            let out = client.list_pipelines().max_results(5).set_next_token(token).send().await.expect("page");
            (
                out.pipelines().iter().filter_map(|p| p.name().map(str::to_string)).collect(),
                out.next_token().map(str::to_string),
            )
        }
    })
    .await;
    assert_each_once(&pages, &names, "ListPipelines");
    assert!(pages.iter().all(|p| p.len() <= 5));

    // ListActionTypes (fixed page size; custom types push it to a second page)
    for i in 0..30 {
        create_custom(&client, &format!("Custom{i:02}"), "1").await.expect("created");
    }
    let all_types: HashSet<String> = {
        let listed = client.list_action_types().send().await.expect("lists");
        let mut keys: HashSet<String> = HashSet::new();
        let mut out = listed;
        loop {
            keys.extend(out.action_types().iter().filter_map(|t| t.id().map(|id| format!("{id:?}"))));
            match out.next_token() {
                Some(token) => out = client.list_action_types().next_token(token).send().await.expect("page"),
                None => break,
            }
        }
        keys
    };
    assert_eq!(all_types.len(), 28 + 2 + 30);
    let pages = walk(|token| {
        let client = client.clone();
        async move {
            let out = client.list_action_types().set_next_token(token).send().await.expect("page");
            (
                out.action_types().iter().filter_map(|t| t.id().map(|id| format!("{id:?}"))).collect(),
                out.next_token().map(str::to_string),
            )
        }
    })
    .await;
    assert_each_once(&pages, &all_types, "ListActionTypes");

    // ListTagsForResource
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:pipe-00";
    let mut keys = HashSet::new();
    let mut request = client.tag_resource().resource_arn(arn);
    for i in 0..37 {
        request = request.tags(tag(&format!("key-{i:02}"), "v"));
        keys.insert(format!("key-{i:02}"));
    }
    request.send().await.expect("tagged");
    let pages = walk(|token| {
        let client = client.clone();
        async move {
            let out = client
                .list_tags_for_resource()
                .resource_arn(arn)
                .max_results(8)
                .set_next_token(token)
                .send()
                .await
                .expect("page");
            (out.tags().iter().map(|t| t.key().to_string()).collect(), out.next_token().map(str::to_string))
        }
    })
    .await;
    assert_each_once(&pages, &keys, "ListTagsForResource");

    // ListWebhooks (capitalised NextToken/MaxResults on the wire)
    let mut hooks = HashSet::new();
    for i in 0..11 {
        let name = format!("hook-{i:02}");
        put_webhook(&client, &name, "pipe-01", WebhookAuthenticationType::Unauthenticated, None).await.expect("hook");
        hooks.insert(name);
    }
    let pages = walk(|token| {
        let client = client.clone();
        async move {
            let out = client.list_webhooks().max_results(4).set_next_token(token).send().await.expect("page");
            (
                out.webhooks().iter().filter_map(|w| w.definition().map(|d| d.name().to_string())).collect(),
                out.next_token().map(str::to_string),
            )
        }
    })
    .await;
    assert_each_once(&pages, &hooks, "ListWebhooks");
    let raw = server.call("ListWebhooks", r#"{"MaxResults": 4}"#).await.json();
    assert!(raw["NextToken"].is_string(), "ListWebhooks answers NextToken, capitalised: {raw}");
    assert!(raw.get("nextToken").is_none());
}

#[tokio::test]
async fn tokens_the_server_did_not_issue_are_refused_by_every_list_operation() {
    let server = TestServer::start().await;
    let client = server.client();
    client.create_pipeline().pipeline(sdk_pipeline("p")).send().await.expect("created");
    let forged = "eyJmb3JnZWQiOnRydWV9";
    let codes = [
        client.list_pipelines().next_token(forged).send().await.expect_err("forged").code().map(str::to_string),
        client.list_action_types().next_token(forged).send().await.expect_err("forged").code().map(str::to_string),
        client.list_webhooks().next_token(forged).send().await.expect_err("forged").code().map(str::to_string),
        client
            .list_tags_for_resource()
            .resource_arn("arn:aws:codepipeline:us-east-1:000000000000:p")
            .next_token(forged)
            .send()
            .await
            .expect_err("forged")
            .code()
            .map(str::to_string),
    ];
    for code in codes {
        assert_eq!(code.as_deref(), Some("InvalidNextTokenException"));
    }
    // A token of one operation is not valid for another.
    for i in 0..3 {
        client.create_pipeline().pipeline(sdk_pipeline(&format!("q{i}"))).send().await.expect("created");
    }
    let token = client.list_pipelines().max_results(1).send().await.expect("page").next_token().map(str::to_string);
    let err = client.list_webhooks().set_next_token(token).send().await.expect_err("foreign token");
    assert!(err.into_service_error().is_invalid_next_token_exception());
}
