//! Action types and rule types: the built-in catalogue (embedded data from `fixtures/catalogue/`) and the typed
//! shapes that ListActionTypes, CreateCustomActionType, GetActionType and ListRuleTypes exchange.

use serde::{Deserialize, Serialize};

use super::declaration::{ActionCategory, ActionOwner, ActionTypeId};

const ACTION_TYPES: &str = include_str!("../../fixtures/catalogue/action-types.json");
const RULE_TYPES: &str = include_str!("../../fixtures/catalogue/rule-types.json");

/// The built-in action and rule types, the same in every account and region.
#[derive(Debug, Clone)]
pub struct Catalogue {
    action_types: Vec<ActionType>,
    rule_types: Vec<RuleType>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionTypesFile {
    action_types: Vec<ActionType>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleTypesFile {
    rule_types: Vec<RuleType>,
}

impl Catalogue {
    /// Loads the embedded catalogue. Fails only if a fixture is broken.
    pub fn load() -> Result<Catalogue, serde_json::Error> {
        let actions: ActionTypesFile = serde_json::from_str(ACTION_TYPES)?;
        let rules: RuleTypesFile = serde_json::from_str(RULE_TYPES)?;
        Ok(Catalogue { action_types: actions.action_types, rule_types: rules.rule_types })
    }

    /// Every built-in action type.
    pub fn action_types(&self) -> &[ActionType] {
        &self.action_types
    }

    /// The built-in action type with this id.
    pub fn action_type(&self, id: &ActionTypeId) -> Option<&ActionType> {
        self.action_types.iter().find(|t| &t.id == id)
    }

    /// Every rule type.
    pub fn rule_types(&self) -> &[RuleType] {
        &self.rule_types
    }

    /// The rule type with this provider and version.
    pub fn rule_type(&self, provider: &str, version: &str) -> Option<&RuleType> {
        self.rule_types.iter().find(|t| t.id.provider == provider && t.id.version.as_deref() == Some(version))
    }
}

/// `ActionType`, as ListActionTypes returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionType {
    pub id: ActionTypeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ActionTypeSettings>,
    #[serde(default)]
    pub action_configuration_properties: Vec<ConfigurationProperty>,
    pub input_artifact_details: ArtifactDetails,
    pub output_artifact_details: ArtifactDetails,
}

impl ActionType {
    /// The declared property named `name`.
    pub fn property(&self, name: &str) -> Option<&ConfigurationProperty> {
        self.action_configuration_properties.iter().find(|p| p.name == name)
    }

    /// The description AWS uses in messages: `ActionType (Category: 'c', Provider: 'p', Owner: 'o', Version: 'v')`.
    pub fn describe(id: &ActionTypeId) -> String {
        format!(
            "ActionType (Category: '{}', Provider: '{}', Owner: '{}', Version: '{}')",
            id.category.as_str(),
            id.provider,
            id.owner.as_str(),
            id.version
        )
    }
}

/// The region the catalogue's URL templates were recorded in. AWS writes the serving region into most of its
/// templates (`https://console.aws.amazon.com/s3/home?region=us-east-1#`), so a catalogue served in another region
/// has this region replaced by that one; AWS's own placeholders (`{Console}`, `{Region}`) are kept as they are.
pub const RECORDED_REGION: &str = "us-east-1";

impl ActionType {
    /// This built-in type as AWS serves it in `region`: its URL templates name that region.
    pub fn in_region(&self, region: &str) -> ActionType {
        let mut out = self.clone();
        if region != RECORDED_REGION
            && let Some(settings) = out.settings.as_mut()
        {
            *settings = settings.in_region(region);
        }
        out
    }
}

/// `ActionTypeSettings` (also `RuleTypeSettings`, which has the same members).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_configuration_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_url_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_url_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_url_template: Option<String>,
}

impl ActionTypeSettings {
    /// These built-in settings as served in `region` (see [`RECORDED_REGION`]).
    pub fn in_region(&self, region: &str) -> ActionTypeSettings {
        let regional = |t: &Option<String>| t.as_ref().map(|t| t.replace(RECORDED_REGION, region));
        ActionTypeSettings {
            third_party_configuration_url: regional(&self.third_party_configuration_url),
            entity_url_template: regional(&self.entity_url_template),
            execution_url_template: regional(&self.execution_url_template),
            revision_url_template: regional(&self.revision_url_template),
        }
    }
}

/// `ActionConfigurationProperty` (also `RuleConfigurationProperty`, which has the same members).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigurationProperty {
    pub name: String,
    pub required: bool,
    pub key: bool,
    pub secret: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub property_type: Option<String>,
}

impl ConfigurationProperty {
    /// Whether the property is the type's queryable one.
    pub fn is_queryable(&self) -> bool {
        self.queryable.unwrap_or(false)
    }
}

/// `ArtifactDetails`: how many artifacts an action type takes or produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactDetails {
    pub minimum_count: i32,
    pub maximum_count: i32,
}

/// `RuleType`, as ListRuleTypes returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleType {
    pub id: RuleTypeIdentifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ActionTypeSettings>,
    #[serde(default)]
    pub rule_configuration_properties: Vec<ConfigurationProperty>,
    pub input_artifact_details: ArtifactDetails,
}

/// `RuleTypeId` of a rule type in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleTypeIdentifier {
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `ActionTypeDeclaration`, the newer action-type model of GetActionType and UpdateActionType.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeDeclaration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub executor: ActionTypeExecutor,
    pub id: ActionTypeIdentifier,
    pub input_artifact_details: ArtifactDetails,
    pub output_artifact_details: ArtifactDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<ActionTypePermissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Vec<ActionTypeProperty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<ActionTypeUrls>,
}

/// `ActionTypeIdentifier` (owner is `AWS` or `ThirdParty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionTypeIdentifier {
    pub category: ActionCategory,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

/// `ActionTypeExecutor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeExecutor {
    pub configuration: ExecutorConfiguration,
    #[serde(rename = "type")]
    pub executor_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_statements_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_timeout: Option<i32>,
}

/// `ExecutorConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_executor_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_worker_executor_configuration: Option<JobWorkerExecutorConfiguration>,
}

/// `JobWorkerExecutorConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobWorkerExecutorConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_accounts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_service_principals: Option<Vec<String>>,
}

/// `ActionTypePermissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypePermissions {
    pub allowed_accounts: Vec<String>,
}

/// `ActionTypeProperty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeProperty {
    pub name: String,
    pub optional: bool,
    pub key: bool,
    pub no_echo: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `ActionTypeUrls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTypeUrls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_url_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_url_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_url_template: Option<String>,
}

impl ActionTypeDeclaration {
    /// The newer model's view of an action type. Built-in types are run by CodePipeline's own job workers.
    pub fn from_action_type(action_type: &ActionType) -> ActionTypeDeclaration {
        let settings = action_type.settings.clone().unwrap_or_default();
        ActionTypeDeclaration {
            description: None,
            executor: ActionTypeExecutor {
                configuration: ExecutorConfiguration {
                    lambda_executor_configuration: None,
                    job_worker_executor_configuration: Some(JobWorkerExecutorConfiguration {
                        polling_accounts: None,
                        polling_service_principals: Some(vec!["codepipeline.amazonaws.com".to_string()]),
                    }),
                },
                executor_type: "JobWorker".to_string(),
                policy_statements_template: None,
                job_timeout: None,
            },
            id: ActionTypeIdentifier {
                category: action_type.id.category,
                owner: action_type.id.owner.as_str().to_string(),
                provider: action_type.id.provider.clone(),
                version: action_type.id.version.clone(),
            },
            input_artifact_details: action_type.input_artifact_details,
            output_artifact_details: action_type.output_artifact_details,
            permissions: None,
            properties: Some(
                action_type
                    .action_configuration_properties
                    .iter()
                    .map(|p| ActionTypeProperty {
                        name: p.name.clone(),
                        optional: !p.required,
                        key: p.key,
                        no_echo: p.secret,
                        queryable: p.queryable,
                        description: p.description.clone(),
                    })
                    .collect(),
            ),
            urls: Some(ActionTypeUrls {
                configuration_url: settings.third_party_configuration_url,
                entity_url_template: settings.entity_url_template,
                execution_url_template: settings.execution_url_template,
                revision_url_template: settings.revision_url_template,
            }),
        }
    }

    /// The action type a pipeline is validated against after UpdateActionType.
    pub fn to_action_type(&self, owner: ActionOwner) -> ActionType {
        let urls = self.urls.clone().unwrap_or_default();
        ActionType {
            id: ActionTypeId {
                category: self.id.category,
                owner,
                provider: self.id.provider.clone(),
                version: self.id.version.clone(),
            },
            settings: Some(ActionTypeSettings {
                third_party_configuration_url: urls.configuration_url,
                entity_url_template: urls.entity_url_template,
                execution_url_template: urls.execution_url_template,
                revision_url_template: urls.revision_url_template,
            }),
            action_configuration_properties: self
                .properties
                .iter()
                .flatten()
                .map(|p| ConfigurationProperty {
                    name: p.name.clone(),
                    required: !p.optional,
                    key: p.key,
                    secret: p.no_echo,
                    queryable: p.queryable,
                    description: p.description.clone(),
                    property_type: None,
                })
                .collect(),
            input_artifact_details: self.input_artifact_details,
            output_artifact_details: self.output_artifact_details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_loads_with_the_native_entries() {
        let catalogue = Catalogue::load().expect("fixtures parse");
        let aws = catalogue.action_types().iter().filter(|t| t.id.owner == ActionOwner::Aws).count();
        assert_eq!(aws, 28);
        let id = ActionTypeId {
            category: ActionCategory::Deploy,
            owner: ActionOwner::Aws,
            provider: "AppConfig".into(),
            version: "1".into(),
        };
        let appconfig = catalogue.action_type(&id).expect("AppConfig deploy exists");
        assert!(appconfig.property("DeploymentStrategy").is_some_and(|p| p.required && !p.key));
        assert_eq!(catalogue.rule_types().len(), 5);
        assert!(catalogue.rule_type("DeploymentWindow", "1").is_some());
    }

    #[test]
    fn ids_are_unique() {
        let catalogue = Catalogue::load().expect("fixtures parse");
        let mut ids: Vec<_> = catalogue.action_types().iter().map(|t| t.id.clone()).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len());
    }

    #[test]
    fn declaration_round_trip_keeps_what_validation_uses() {
        let catalogue = Catalogue::load().expect("fixtures parse");
        for action_type in catalogue.action_types() {
            let back = ActionTypeDeclaration::from_action_type(action_type).to_action_type(action_type.id.owner);
            assert_eq!(back.input_artifact_details, action_type.input_artifact_details);
            assert_eq!(back.output_artifact_details, action_type.output_artifact_details);
            assert_eq!(back.action_configuration_properties.len(), action_type.action_configuration_properties.len());
            for (a, b) in back.action_configuration_properties.iter().zip(&action_type.action_configuration_properties)
            {
                assert_eq!((a.required, a.secret, a.key), (b.required, b.secret, b.key));
            }
        }
    }
}
