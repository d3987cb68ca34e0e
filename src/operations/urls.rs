//! Console links: the URL templates of action types, expanded for an action (`entityUrl`, `externalExecutionUrl`,
//! `revisionUrl`). A secret never appears in a URL.

use crate::state::catalogue::{ActionTypeSettings, Catalogue};
use crate::state::declaration::ActionDeclaration;
use crate::state::execution::{ActionRun, Execution};
use crate::state::{Definition, PartitionData, Scope};

// --- URL templates --------------------------------------------------------------------------------------------------

/// What `{Console}` stands for in an action type's URL template.
const CONSOLE: &str = "https://console.aws.amazon.com";

/// Expands an action type URL template for action `index` of stage `stage`; `None` when it names configuration the
/// action does not have, or a secret one: a secret never appears in a URL.
pub(super) fn render(
    template: &str,
    definition: &Definition,
    (stage, index): (usize, usize),
    scope: &Scope,
    values: &[(&str, &str)],
) -> Option<String> {
    let action = definition.stages.get(stage)?.actions.get(index)?;
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        let name = &after[..end];
        let value = if let Some(key) = name.strip_prefix("Config:") {
            if definition.is_secret(stage, index, key) {
                return None;
            }
            action.configuration.as_ref().and_then(|c| c.get(key)).cloned()?
        } else {
            match name {
                "Region" => action.region.clone().unwrap_or_else(|| scope.region.clone()),
                // AWS's newer templates (Lambda deploy, EKS) start with the console's address.
                "Console" => CONSOLE.to_string(),
                "AccountId" => scope.account.clone(),
                other => values.iter().find(|(k, _)| *k == other).map(|(_, v)| (*v).to_string())?,
            }
        };
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The URL templates of an action's type, as AWS serves them in the action's region.
pub(super) fn settings(
    data: &PartitionData,
    catalogue: &Catalogue,
    action: &ActionDeclaration,
    scope: &Scope,
) -> Option<ActionTypeSettings> {
    let region = action.region.as_deref().unwrap_or(&scope.region);
    data.settings_in(catalogue, &action.action_type_id, region)
}

/// The external execution URL of a run: the provider's, else the action type's template.
pub(super) fn execution_url(
    run: &ActionRun,
    execution: &Execution,
    settings: Option<&ActionTypeSettings>,
    scope: &Scope,
) -> Option<String> {
    run.external_execution_url().map(str::to_string).or_else(|| {
        let external = run.external_execution_id.as_deref()?;
        let template = settings?.execution_url_template.as_deref()?;
        let at = (run.stage(), run.action());
        render(template, &execution.declaration, at, scope, &[("ExternalExecutionId", external)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::declaration::{PipelineDeclaration, PipelineType};

    #[test]
    fn url_templates_never_substitute_a_secret() {
        let declared: PipelineDeclaration = serde_json::from_value(serde_json::json!({
            "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
            "stages": [{"name": "S", "actions": [{"name": "A",
                "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "W", "version": "1"},
                "configuration": {"Project": "web", "Token": "s3cret"}}]}]
        }))
        .expect("declaration");
        let secrets = vec![(0, 0, "Token".to_string())];
        let definition = Definition::new(declared.with_defaults(1, PipelineType::V1), secrets, Vec::new());
        let scope = Scope { account: "123456789012".into(), region: "us-east-1".into() };
        let url = |template: &str| render(template, &definition, (0, 0), &scope, &[("ExternalExecutionId", "x")]);
        assert_eq!(url("https://ci/{Config:Project}/{ExternalExecutionId}"), Some("https://ci/web/x".into()));
        assert_eq!(url("https://ci/{Config:Token}"), None);
        assert_eq!(url("https://ci/{Config:Missing}"), None);
    }
}
