//! Variable references in an action's or rule's configuration, resolved when it starts, within AWS's limits and
//! the emulator's own.

use std::collections::BTreeMap;

use crate::engine::variables::{self, Unresolvable};
use crate::state::execution::{ErrorDetails, Execution, FailureType, Resolved};

/// The longest an action's configuration value may be once its variables are resolved: the model's limit for
/// configuration values as the live service enforces it (`fixtures/model/overrides.json`).
pub const ACTION_VALUE_LIMIT: usize = 50_000;
/// The longest a rule's configuration value may be once its variables are resolved: the model's limit
/// (`RuleConfigurationValue`).
pub const RULE_VALUE_LIMIT: usize = 10_000;
/// How many bytes the values variables changed may hold in all, in one action or rule run. An emulator bound, not
/// AWS's: with [`RESOLVED_EXECUTION_LIMIT`] it keeps what a small StartPipelineExecution can make the server store
/// small, whatever the pipeline.
pub const RESOLVED_TOTAL_LIMIT: usize = 256 * 1024;
/// How many bytes the values variables changed may hold in all, in the runs of one execution (an emulator bound).
pub const RESOLVED_EXECUTION_LIMIT: usize = 4 * 1024 * 1024;

/// Resolves the variable references in a configuration (of the `what` named `name`: an action or a rule) and
/// returns the values that changed. A reference that cannot be resolved is a `ConfigurationError`; a value longer
/// than `value_limit` characters once resolved, or changed values over [`RESOLVED_TOTAL_LIMIT`] in the run or over
/// [`RESOLVED_EXECUTION_LIMIT`] in the execution, fail the run with `JobFailed` instead of being stored.
pub(in crate::engine) fn resolve_configuration(
    execution: &Execution,
    declared: Option<&BTreeMap<String, String>>,
    what: &str,
    name: &str,
    value_limit: usize,
) -> Result<Resolved, ErrorDetails> {
    let mut changed = Vec::new();
    let mut total = 0usize;
    let used = execution.running.as_ref().map_or(0, |r| r.resolved_bytes);
    let left = RESOLVED_EXECUTION_LIMIT.saturating_sub(used);
    for (key, value) in declared.into_iter().flatten().filter(|(_, v)| v.contains("#{")) {
        let resolved = variables::resolve(value, value_limit, |ns, k| variables::lookup(execution, ns, k)).map_err(
            |e| match e {
                Unresolvable::Unknown(reference) => ErrorDetails {
                    code: FailureType::ConfigurationError,
                    message: format!(
                        "The variable reference #{{{reference}}} in configuration '{key}' of {what} '{name}' could not \
                     be resolved"
                    ),
                },
                Unresolvable::TooLong => ErrorDetails {
                    code: FailureType::JobFailed,
                    message: format!(
                        "The configuration '{key}' of {what} '{name}' is longer than {value_limit} characters once its \
                     variables are resolved"
                    ),
                },
            },
        )?;
        if resolved == *value {
            continue;
        }
        total = total.saturating_add(resolved.len());
        if total > RESOLVED_TOTAL_LIMIT {
            return Err(ErrorDetails {
                code: FailureType::JobFailed,
                message: format!(
                    "The variables in the configuration of {what} '{name}' resolve to more than \
                     {RESOLVED_TOTAL_LIMIT} bytes in all"
                ),
            });
        }
        if total > left {
            return Err(ErrorDetails {
                code: FailureType::JobFailed,
                message: format!(
                    "The variables in the configurations of this execution's actions and rules resolve to more \
                     than {RESOLVED_EXECUTION_LIMIT} bytes in all; {what} '{name}' cannot start"
                ),
            });
        }
        changed.push((key.as_str().into(), resolved.into_boxed_str()));
    }
    Ok(Resolved::new(changed))
}
