//! Buildspec 0.2 as CodeBuild reads it (real-actions.md §5.1): what the runner needs of it. Keys it has no use for
//! locally (`run-as`, `proxy`, `batch`, `reports`, `cache`, `runtime-versions`, ...) are accepted and ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// A parsed buildspec.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Buildspec {
    #[serde(default)]
    pub version: Option<Value>,
    #[serde(default)]
    pub env: Env,
    #[serde(default)]
    pub phases: Phases,
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
}

/// `env`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Env {
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, Value>,
    #[serde(default)]
    pub parameter_store: BTreeMap<String, Value>,
    #[serde(default)]
    pub secrets_manager: BTreeMap<String, Value>,
    #[serde(default)]
    pub exported_variables: Vec<String>,
}

/// `phases`, in the order they run.
#[derive(Debug, Default, Deserialize)]
pub struct Phases {
    #[serde(default)]
    pub install: Option<Phase>,
    #[serde(default)]
    pub pre_build: Option<Phase>,
    #[serde(default)]
    pub build: Option<Phase>,
    #[serde(default)]
    pub post_build: Option<Phase>,
}

impl Phases {
    /// `(PHASE_TYPE, phase)` in order, declared or not.
    pub fn in_order(&self) -> [(&'static str, Option<&Phase>); 4] {
        [
            ("INSTALL", self.install.as_ref()),
            ("PRE_BUILD", self.pre_build.as_ref()),
            ("BUILD", self.build.as_ref()),
            ("POST_BUILD", self.post_build.as_ref()),
        ]
    }
}

/// One phase.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Phase {
    #[serde(default)]
    pub on_failure: Option<String>,
    #[serde(default)]
    pub commands: Vec<Value>,
    #[serde(default)]
    pub finally: Vec<Value>,
}

/// What a phase's `on-failure` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Not said: later command phases run only after a failed `BUILD` (its `POST_BUILD`).
    Default,
    Abort,
    Continue,
    /// Run the phase again, up to this many more times.
    Retry(u32),
}

impl Phase {
    /// Its `on-failure`; `RETRY-<regex>` forms retry up to 3 times whatever the error (the regex is not applied).
    pub fn on_failure(&self) -> OnFailure {
        let Some(value) = self.on_failure.as_deref().map(str::trim) else { return OnFailure::Default };
        match value.to_ascii_uppercase().as_str() {
            "ABORT" => OnFailure::Abort,
            "CONTINUE" => OnFailure::Continue,
            "RETRY" => OnFailure::Retry(3),
            retry if retry.starts_with("RETRY-") => {
                let count = retry["RETRY-".len()..].split('-').next().and_then(|c| c.parse::<u32>().ok());
                OnFailure::Retry(count.unwrap_or(3).min(100))
            }
            _ => OnFailure::Default,
        }
    }
}

/// `artifacts`, or one of its `secondary-artifacts`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Artifacts {
    #[serde(default)]
    pub files: Vec<Value>,
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default)]
    pub discard_paths: Option<Value>,
    #[serde(default)]
    pub base_directory: Option<Value>,
    #[serde(default)]
    pub exclude_paths: Vec<Value>,
    #[serde(default)]
    pub secondary_artifacts: BTreeMap<String, Artifacts>,
}

/// A scalar as the text CodeBuild sees (`yes` and `true` alike; numbers as written).
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Whether a yes/no option is on (`yes`, `true`).
pub fn is_yes(value: Option<&Value>) -> bool {
    value.is_some_and(|v| matches!(text(v).to_ascii_lowercase().as_str(), "yes" | "true"))
}

/// Parses a buildspec; the error is CodeBuild's `YAML_FILE_ERROR` message.
pub fn parse(source: &str) -> Result<Buildspec, String> {
    let spec: Buildspec = serde_yaml_ng::from_str(source).map_err(|e| format!("YAML file error: {e}"))?;
    match spec.version.as_ref().map(text).as_deref() {
        Some("0.2") | Some("0.1") => {}
        Some(other) => return Err(format!("invalid buildspec version: {other}, expected 0.2")),
        None => return Err("missing buildspec version".into()),
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buildspec_reads_with_its_phases_env_and_artifacts() {
        let spec = parse(
            "version: 0.2\nenv:\n  variables:\n    STAGE: prod\n    COUNT: 3\n  exported-variables: [STAGE]\n\
             phases:\n  build:\n    on-failure: CONTINUE\n    commands:\n      - echo hi\n    finally:\n      - echo bye\n\
             artifacts:\n  files: ['**/*']\n  discard-paths: yes\n  secondary-artifacts:\n    Docs:\n      files: [README.md]\n",
        )
        .expect("parses");
        assert_eq!(text(&spec.env.variables["COUNT"]), "3");
        assert_eq!(spec.env.exported_variables, ["STAGE"]);
        let build = spec.phases.build.as_ref().expect("build");
        assert_eq!(build.on_failure(), OnFailure::Continue);
        assert_eq!(build.commands.len(), 1);
        let artifacts = spec.artifacts.as_ref().expect("artifacts");
        assert!(is_yes(artifacts.discard_paths.as_ref()));
        assert!(artifacts.secondary_artifacts.contains_key("Docs"));
        assert!(parse("phases: {}").is_err(), "a version is required");
        assert!(parse("version: 0.2\nphases: [").is_err());
        assert_eq!(Phase { on_failure: Some("RETRY-2".into()), ..Phase::default() }.on_failure(), OnFailure::Retry(2));
    }
}
