//! Behaviour rules: how tests steer simulated actions and stage-condition rules to succeed, fail or hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::execution::{ErrorDetails, FailureType};
use crate::state::glob::NamePattern;
use crate::state::{Scope, Timestamp};

/// What a matched action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BehaviorOutcome {
    #[default]
    Succeed,
    Fail,
    Hold,
}

/// One rule of `PUT /_emulator/behaviors`. A missing name matches anything, as `*` does; a missing account or region
/// matches every account or region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BehaviorRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<NamePattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<NamePattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<NamePattern>,
    /// Names a stage-condition rule instead of an action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<NamePattern>,
    #[serde(default)]
    pub outcome: BehaviorOutcome,
    /// How long the action takes; the server's `--action-duration-ms` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<FailureType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<BTreeMap<String, String>>,
}

/// The body of `PUT /_emulator/behaviors` and of a `--behaviors` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviorSet {
    pub rules: Vec<BehaviorRule>,
}

impl BehaviorSet {
    /// The most rules a set may hold: every action and rule start looks through them, and they are read at start.
    pub const MAX_RULES: usize = 1_000;

    /// Refuses more rules than [`BehaviorSet::MAX_RULES`].
    pub fn check(rules: &[BehaviorRule]) -> Result<(), String> {
        if rules.len() > Self::MAX_RULES {
            return Err(format!("{} behaviour rules; at most {} are allowed", rules.len(), Self::MAX_RULES));
        }
        Ok(())
    }
}

impl BehaviorRule {
    /// Whether the rule applies in an account and region.
    pub fn matches_scope(&self, scope: &Scope) -> bool {
        self.account.as_ref().is_none_or(|a| *a == scope.account)
            && self.region.as_ref().is_none_or(|r| *r == scope.region)
    }

    /// Whether the rule applies to an action.
    pub fn matches_action(&self, scope: &Scope, pipeline: &str, stage: &str, action: &str) -> bool {
        self.rule.is_none()
            && self.matches_scope(scope)
            && matches(self.pipeline.as_ref(), pipeline)
            && matches(self.stage.as_ref(), stage)
            && matches(self.action.as_ref(), action)
    }

    /// Whether the rule applies to a stage-condition rule.
    pub fn matches_rule(&self, scope: &Scope, pipeline: &str, stage: &str, rule: &str) -> bool {
        self.action.is_none()
            && self.matches_scope(scope)
            && self.rule.as_ref().is_some_and(|r| r.matches(rule))
            && matches(self.pipeline.as_ref(), pipeline)
            && matches(self.stage.as_ref(), stage)
    }

    /// When a steered action or rule ends: after the rule's `delayMs`, else after `default_ms`.
    pub fn due(&self, now: Timestamp, default_ms: i64) -> Timestamp {
        now.plus_millis(self.delay_ms.map_or(default_ms, |d| i64::try_from(d).unwrap_or(i64::MAX)))
    }

    /// The error a `fail` outcome gives: the rule's `errorCode` (default `JobFailed`) and `message` (default
    /// `default_message`).
    pub fn failure(&self, default_message: &str) -> ErrorDetails {
        ErrorDetails {
            code: self.error_code.unwrap_or(FailureType::JobFailed),
            message: self.message.clone().unwrap_or_else(|| default_message.into()),
        }
    }
}

/// The first rule that applies to an action.
pub fn for_action<'a>(
    rules: &'a [BehaviorRule],
    scope: &Scope,
    pipeline: &str,
    stage: &str,
    action: &str,
) -> Option<&'a BehaviorRule> {
    rules.iter().find(|r| r.matches_action(scope, pipeline, stage, action))
}

/// The first rule that applies to a stage-condition rule.
pub fn for_rule<'a>(
    rules: &'a [BehaviorRule],
    scope: &Scope,
    pipeline: &str,
    stage: &str,
    rule: &str,
) -> Option<&'a BehaviorRule> {
    rules.iter().find(|r| r.matches_rule(scope, pipeline, stage, rule))
}

fn matches(pattern: Option<&NamePattern>, name: &str) -> bool {
    pattern.is_none_or(|p| p.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, name: &str) -> bool {
        NamePattern::from(pattern).matches(name)
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("Deploy", "Deploy"));
        assert!(!glob("Deploy", "Deploy2"));
        assert!(glob("Deploy*", "DeployProd"));
        assert!(glob("*Prod", "DeployProd"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcdf"));
        // The trigger filters' syntax, since it is one matcher.
        assert!(glob("Deploy-{Prod,Test}", "Deploy-Test"));
        assert!(glob("Build?", "Build2"));
        // Not a valid glob: the name itself.
        assert!(glob("[x", "[x"));
        assert!(!glob("[x", "x"));
    }

    fn scope(account: &str, region: &str) -> Scope {
        Scope { account: account.into(), region: region.into() }
    }

    #[test]
    fn rules_may_be_limited_to_an_account_and_region() {
        let here = scope("111122223333", "eu-west-1");
        let limited = BehaviorRule { account: Some("111122223333".into()), ..Default::default() };
        assert!(limited.matches_action(&here, "p", "s", "a"));
        assert!(!limited.matches_action(&scope("444455556666", "eu-west-1"), "p", "s", "a"));
        let regional = BehaviorRule { region: Some("us-west-2".into()), ..Default::default() };
        assert!(!regional.matches_action(&here, "p", "s", "a"));
        assert!(BehaviorRule::default().matches_action(&here, "p", "s", "a"), "no account or region: everywhere");
    }

    #[test]
    fn first_matching_rule_wins_and_missing_fields_match_all() {
        let set: BehaviorSet = serde_json::from_str(
            r#"{"rules": [{"pipeline": "p", "action": "Build", "outcome": "fail", "errorCode": "JobFailed"},
                          {"outcome": "hold"}]}"#,
        )
        .expect("parses");
        let here = scope("000000000000", "us-east-1");
        let outcome = |pipeline| for_action(&set.rules, &here, pipeline, "Build", "Build").map(|r| r.outcome);
        assert_eq!(outcome("p"), Some(BehaviorOutcome::Fail));
        assert_eq!(outcome("q"), Some(BehaviorOutcome::Hold));
        assert!(serde_json::from_str::<BehaviorSet>(r#"{"rules": [{"outcome": "explode"}]}"#).is_err());
        assert!(serde_json::from_str::<BehaviorSet>(r#"{"rules": [{"colour": "red"}]}"#).is_err());
    }

    #[test]
    fn rule_behaviors_do_not_match_actions() {
        let rule = BehaviorRule { rule: Some("Alarm".into()), ..Default::default() };
        let here = scope("000000000000", "us-east-1");
        assert!(!rule.matches_action(&here, "p", "s", "Alarm"));
        assert!(rule.matches_rule(&here, "p", "s", "Alarm"));
    }
}
