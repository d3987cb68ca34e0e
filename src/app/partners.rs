//! Partner (ThirdParty) action types registered through the emulator: from the `--third-party-action-types` file at
//! start (and again after a reset), or from `POST /_emulator/third-party-action-types`.

use serde::Deserialize;

use crate::operations::action_types::check_url_templates;
use crate::protocol::ApiError;
use crate::state::catalogue::{ActionType, ActionTypeSettings, ArtifactDetails, Catalogue, ConfigurationProperty};
use crate::state::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use crate::state::{Scope, ThirdPartyRecord};
use crate::store::Store;

/// A partner (ThirdParty) action type to register, as `POST /_emulator/third-party-action-types` and the
/// `--third-party-action-types` file take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerTypeSpec {
    pub category: ActionCategory,
    pub provider: String,
    pub version: String,
    pub settings: Option<ActionTypeSettings>,
    pub configuration_properties: Option<Vec<ConfigurationProperty>>,
    pub input_artifact_details: ArtifactDetails,
    pub output_artifact_details: ArtifactDetails,
    /// The client token job workers present; a random one when absent.
    pub client_token: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
}

/// The file of `--third-party-action-types`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerTypeFile {
    pub action_types: Vec<PartnerTypeSpec>,
}

fn is_name(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id of the partner action type a spec registers.
pub fn partner_type_id(spec: &PartnerTypeSpec) -> ActionTypeId {
    ActionTypeId {
        category: spec.category,
        owner: ActionOwner::ThirdParty,
        provider: spec.provider.clone(),
        version: spec.version.clone(),
    }
}

/// Registers (or replaces) a partner action type in `scope`; its actions are then run by job workers that use the
/// PollForThirdPartyJobs family of operations with the returned client token.
pub fn register_partner(
    store: &Store,
    catalogue: &Catalogue,
    scope: &Scope,
    spec: PartnerTypeSpec,
) -> Result<ThirdPartyRecord, ApiError> {
    if !is_name(&spec.provider, 35) || !is_name(&spec.version, 9) {
        return Err(ApiError::validation("provider (1-35) and version (1-9) must be letters, digits, '_' or '-'"));
    }
    let id = partner_type_id(&spec);
    if catalogue.action_type(&id).is_some() {
        return Err(ApiError::validation(format!("{} is a built-in action type", ActionType::describe(&id))));
    }
    let properties = spec.configuration_properties.unwrap_or_default();
    check_url_templates(spec.settings.as_ref(), &properties)?;
    let record = ThirdPartyRecord {
        action_type: ActionType {
            id: id.clone(),
            settings: spec.settings,
            action_configuration_properties: properties,
            input_artifact_details: spec.input_artifact_details,
            output_artifact_details: spec.output_artifact_details,
        },
        client_id: uuid::Uuid::new_v4(),
        client_token: spec.client_token.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    };
    // Blocking until saved: it runs at start-up too, where a failure must stop the server.
    store.write_durably(scope, |data| data.third_party_types.insert(id, record.clone()))?;
    Ok(record)
}
