//! Builds `aws-sdk-codepipeline` inputs from JSON, so tests can state declarations compactly and still send them
//! through the real SDK (its serializer, not ours, decides what goes on the wire).

use aws_sdk_codepipeline::types::*;
use serde_json::Value;

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn i(v: &Value, key: &str) -> Option<i32> {
    v.get(key).and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok())
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

fn strings(v: &Value, key: &str) -> Option<Vec<String>> {
    v.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
}

fn map(v: &Value, key: &str) -> Option<std::collections::HashMap<String, String>> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
}

fn artifact_store(v: &Value) -> ArtifactStore {
    let key = v.get("encryptionKey").map(|k| {
        EncryptionKey::builder()
            .set_id(s(k, "id"))
            .set_type(s(k, "type").map(|t| EncryptionKeyType::from(t.as_str())))
            .build()
            .expect("encryption key")
    });
    ArtifactStore::builder()
        .set_type(s(v, "type").map(|t| ArtifactStoreType::from(t.as_str())))
        .set_location(s(v, "location"))
        .set_encryption_key(key)
        .build()
        .expect("artifact store")
}

fn action_type_id(v: &Value) -> ActionTypeId {
    ActionTypeId::builder()
        .set_category(s(v, "category").map(|c| ActionCategory::from(c.as_str())))
        .set_owner(s(v, "owner").map(|o| ActionOwner::from(o.as_str())))
        .set_provider(s(v, "provider"))
        .set_version(s(v, "version"))
        .build()
        .expect("action type id")
}

fn action(v: &Value) -> ActionDeclaration {
    ActionDeclaration::builder()
        .set_name(s(v, "name"))
        .set_action_type_id(v.get("actionTypeId").map(action_type_id))
        .set_run_order(i(v, "runOrder"))
        .set_configuration(map(v, "configuration"))
        .set_commands(strings(v, "commands"))
        .set_output_artifacts(v.get("outputArtifacts").map(|_| {
            list(v, "outputArtifacts")
                .map(|o| {
                    OutputArtifact::builder()
                        .set_name(s(o, "name"))
                        .set_files(strings(o, "files"))
                        .build()
                        .expect("output artifact")
                })
                .collect()
        }))
        .set_input_artifacts(v.get("inputArtifacts").map(|_| {
            list(v, "inputArtifacts")
                .map(|o| InputArtifact::builder().set_name(s(o, "name")).build().expect("input artifact"))
                .collect()
        }))
        .set_output_variables(strings(v, "outputVariables"))
        .set_role_arn(s(v, "roleArn"))
        .set_region(s(v, "region"))
        .set_namespace(s(v, "namespace"))
        .set_timeout_in_minutes(i(v, "timeoutInMinutes"))
        .set_environment_variables(v.get("environmentVariables").map(|_| {
            list(v, "environmentVariables")
                .map(|e| {
                    EnvironmentVariable::builder()
                        .set_name(s(e, "name"))
                        .set_value(s(e, "value"))
                        .set_type(s(e, "type").map(|t| EnvironmentVariableType::from(t.as_str())))
                        .build()
                        .expect("environment variable")
                })
                .collect()
        }))
        .build()
        .expect("action")
}

fn rule(v: &Value) -> RuleDeclaration {
    let id = v.get("ruleTypeId").map(|t| {
        RuleTypeId::builder()
            .set_category(s(t, "category").map(|c| RuleCategory::from(c.as_str())))
            .set_owner(s(t, "owner").map(|o| RuleOwner::from(o.as_str())))
            .set_provider(s(t, "provider"))
            .set_version(s(t, "version"))
            .build()
            .expect("rule type id")
    });
    RuleDeclaration::builder()
        .set_name(s(v, "name"))
        .set_rule_type_id(id)
        .set_configuration(map(v, "configuration"))
        .set_commands(strings(v, "commands"))
        .set_role_arn(s(v, "roleArn"))
        .set_region(s(v, "region"))
        .set_timeout_in_minutes(i(v, "timeoutInMinutes"))
        .build()
        .expect("rule")
}

fn conditions(v: &Value) -> Vec<Condition> {
    list(v, "conditions")
        .map(|c| {
            Condition::builder()
                .set_result(s(c, "result").map(|r| Result::from(r.as_str())))
                .set_rules(c.get("rules").map(|_| list(c, "rules").map(rule).collect()))
                .build()
        })
        .collect()
}

fn stage(v: &Value) -> StageDeclaration {
    StageDeclaration::builder()
        .set_name(s(v, "name"))
        .set_actions(Some(list(v, "actions").map(action).collect()))
        .set_blockers(v.get("blockers").map(|_| {
            list(v, "blockers")
                .map(|b| {
                    BlockerDeclaration::builder()
                        .set_name(s(b, "name"))
                        .set_type(s(b, "type").map(|t| BlockerType::from(t.as_str())))
                        .build()
                        .expect("blocker")
                })
                .collect()
        }))
        .set_before_entry(
            v.get("beforeEntry")
                .map(|b| BeforeEntryConditions::builder().set_conditions(Some(conditions(b))).build().expect("entry")),
        )
        .set_on_success(
            v.get("onSuccess")
                .map(|b| SuccessConditions::builder().set_conditions(Some(conditions(b))).build().expect("success")),
        )
        .set_on_failure(v.get("onFailure").map(|f| {
            FailureConditions::builder()
                .set_result(s(f, "result").map(|r| Result::from(r.as_str())))
                .set_retry_configuration(f.get("retryConfiguration").map(|r| {
                    RetryConfiguration::builder()
                        .set_retry_mode(s(r, "retryMode").map(|m| StageRetryMode::from(m.as_str())))
                        .build()
                }))
                .set_conditions(f.get("conditions").map(|_| conditions(f)))
                .build()
        }))
        .build()
        .expect("stage")
}

/// The includes and excludes of a filter criteria object.
type Criteria = (Option<Vec<String>>, Option<Vec<String>>);

fn criteria(v: Option<&Value>) -> Option<Criteria> {
    v.map(|c| (strings(c, "includes"), strings(c, "excludes")))
}

fn trigger(v: &Value) -> PipelineTriggerDeclaration {
    let git = &v["gitConfiguration"];
    let branches = |f: &Value| {
        criteria(f.get("branches"))
            .map(|(i, e)| GitBranchFilterCriteria::builder().set_includes(i).set_excludes(e).build())
    };
    let paths = |f: &Value| {
        criteria(f.get("filePaths"))
            .map(|(i, e)| GitFilePathFilterCriteria::builder().set_includes(i).set_excludes(e).build())
    };
    let configuration = GitConfiguration::builder()
        .set_source_action_name(s(git, "sourceActionName"))
        .set_push(git.get("push").map(|_| {
            list(git, "push")
                .map(|p| {
                    GitPushFilter::builder()
                        .set_tags(
                            criteria(p.get("tags"))
                                .map(|(i, e)| GitTagFilterCriteria::builder().set_includes(i).set_excludes(e).build()),
                        )
                        .set_branches(branches(p))
                        .set_file_paths(paths(p))
                        .build()
                })
                .collect()
        }))
        .set_pull_request(git.get("pullRequest").map(|_| {
            list(git, "pullRequest")
                .map(|p| {
                    GitPullRequestFilter::builder()
                        .set_events(
                            strings(p, "events").map(|events| {
                                events.iter().map(|e| GitPullRequestEventType::from(e.as_str())).collect()
                            }),
                        )
                        .set_branches(branches(p))
                        .set_file_paths(paths(p))
                        .build()
                })
                .collect()
        }))
        .build()
        .expect("git configuration");
    PipelineTriggerDeclaration::builder()
        .set_provider_type(s(v, "providerType").map(|p| PipelineTriggerProviderType::from(p.as_str())))
        .git_configuration(configuration)
        .build()
        .expect("trigger")
}

/// An SDK `PipelineDeclaration` from its JSON form.
pub fn pipeline(v: &Value) -> PipelineDeclaration {
    PipelineDeclaration::builder()
        .set_name(s(v, "name"))
        .set_role_arn(s(v, "roleArn"))
        .set_artifact_store(v.get("artifactStore").map(artifact_store))
        .set_artifact_stores(
            v.get("artifactStores")
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(region, store)| (region.clone(), artifact_store(store))).collect()),
        )
        .set_stages(Some(list(v, "stages").map(stage).collect()))
        .set_version(i(v, "version"))
        .set_execution_mode(s(v, "executionMode").map(|m| ExecutionMode::from(m.as_str())))
        .set_pipeline_type(s(v, "pipelineType").map(|t| PipelineType::from(t.as_str())))
        .set_variables(v.get("variables").map(|_| {
            list(v, "variables")
                .map(|var| {
                    PipelineVariableDeclaration::builder()
                        .set_name(s(var, "name"))
                        .set_default_value(s(var, "defaultValue"))
                        .set_description(s(var, "description"))
                        .build()
                        .expect("variable")
                })
                .collect()
        }))
        .set_triggers(v.get("triggers").map(|_| list(v, "triggers").map(trigger).collect()))
        .build()
        .expect("pipeline declaration")
}

/// SDK configuration properties of a custom action type from JSON.
pub fn configuration_properties(v: &Value) -> Option<Vec<ActionConfigurationProperty>> {
    v.get("configurationProperties").map(|_| {
        list(v, "configurationProperties")
            .map(|p| {
                ActionConfigurationProperty::builder()
                    .set_name(s(p, "name"))
                    .set_required(p.get("required").and_then(Value::as_bool))
                    .set_key(p.get("key").and_then(Value::as_bool))
                    .set_secret(p.get("secret").and_then(Value::as_bool))
                    .set_queryable(p.get("queryable").and_then(Value::as_bool))
                    .set_description(s(p, "description"))
                    .set_type(s(p, "type").map(|t| ActionConfigurationPropertyType::from(t.as_str())))
                    .build()
                    .expect("configuration property")
            })
            .collect()
    })
}

/// SDK artifact details from JSON.
pub fn artifact_details(v: &Value) -> ArtifactDetails {
    ArtifactDetails::builder().set_minimum_count(i(v, "minimumCount")).set_maximum_count(i(v, "maximumCount")).build()
}

/// SDK action type settings from JSON.
pub fn settings(v: &Value) -> Option<ActionTypeSettings> {
    v.get("settings").map(|st| {
        ActionTypeSettings::builder()
            .set_entity_url_template(s(st, "entityUrlTemplate"))
            .set_execution_url_template(s(st, "executionUrlTemplate"))
            .set_revision_url_template(s(st, "revisionUrlTemplate"))
            .set_third_party_configuration_url(s(st, "thirdPartyConfigurationUrl"))
            .build()
    })
}
