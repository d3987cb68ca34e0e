//! Rule providers: how the rules of stage conditions are evaluated (behaviour.md §5.3).
//!
//! Like action providers, a rule provider answers through [`start`] whether a starting rule ends by itself at a known
//! time with a known outcome ([`Pending::At`]) or waits for someone outside ([`Pending::External`]).
//!
//! - `VariableCheck` compares a resolved variable with a value (`EQ`, `NE`, `CONTAINS`, `MATCHES`).
//! - `DeploymentWindow` waits, on the emulator's clock, until its cron expression matches in its time zone.
//! - `CloudWatchAlarm`, `Commands` and `LambdaInvoke` are simulated and succeed; a CloudWatchAlarm rule first
//!   watches its alarm for `WaitTime` minutes. (With a Lambda endpoint, `engine::conditions` has LambdaInvoke rules
//!   call their function instead: see `engine::lambda`.)
//!
//! A behaviour rule naming the rule (`"rule": "<name>"`) overrides any provider.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::state::Timestamp;
use crate::state::declaration::RuleDeclaration;
use crate::state::execution::{ConfigView, ErrorDetails, FailureType, Outcome, Pending, Success};
use regex::Regex;

use super::time_zone::Zone;
use crate::state::behaviors::{BehaviorOutcome, BehaviorRule};

/// What a provider knows when a rule starts.
pub struct RuleStart<'a> {
    pub rule: &'a RuleDeclaration,
    /// The configuration after variable resolution.
    pub configuration: ConfigView<'a>,
    /// A VariableCheck rule's `MATCHES` pattern, compiled when the pipeline version was created.
    pub pattern: Option<&'a Regex>,
    pub now: Timestamp,
    /// How long simulated work takes.
    pub duration_ms: i64,
    /// The first matching behaviour rule, if any.
    pub behavior: Option<&'a BehaviorRule>,
}

/// The error code of a rule whose check did not pass. UNCONFIRMED: AWS's code for a failed rule is not public; the
/// emulator uses the one failed actions have.
const RULE_FAILED: FailureType = FailureType::JobFailed;

fn failed(message: String) -> Outcome {
    Outcome::Fail(ErrorDetails { code: RULE_FAILED, message })
}

fn configuration_error(message: String) -> Outcome {
    Outcome::Fail(ErrorDetails::configuration(message))
}

fn succeeded(summary: String) -> Outcome {
    Outcome::Succeed(Success { summary: Some(summary), ..Success::default() })
}

/// When a rule that waits gives up: its `timeoutInMinutes`, if set.
fn timeout(ctx: &RuleStart) -> Option<Timestamp> {
    ctx.rule.timeout_in_minutes.map(|m| ctx.now.plus_millis(i64::from(m).saturating_mul(60_000)))
}

fn timed_out(ctx: &RuleStart) -> ErrorDetails {
    ErrorDetails {
        code: RULE_FAILED,
        message: format!(
            "The rule {} timed out after {} minutes without a result.",
            ctx.rule.name,
            ctx.rule.timeout_in_minutes.unwrap_or_default()
        ),
    }
}

/// Decides how a starting rule will end.
pub fn start(ctx: &RuleStart) -> Pending {
    let simulated = ctx.now.plus_millis(ctx.duration_ms);
    if let Some(behavior) = ctx.behavior {
        let at = behavior.due(ctx.now, ctx.duration_ms);
        let outcome = match behavior.outcome {
            BehaviorOutcome::Hold => {
                return Pending::External { timeout: timeout(ctx), on_timeout: Box::new(timed_out(ctx)) };
            }
            BehaviorOutcome::Fail => Outcome::Fail(behavior.failure("The rule failed (emulator behaviour rule).")),
            BehaviorOutcome::Succeed => {
                succeeded(behavior.summary.clone().unwrap_or_else(|| format!("Rule {} succeeded.", ctx.rule.name)))
            }
        };
        return Pending::At(at, Box::new(outcome));
    }
    let config = |key: &str| ctx.configuration.get(key);
    let (at, outcome) = match ctx.rule.rule_type_id.provider.as_str() {
        "VariableCheck" => {
            let outcome = variable_check(config("Variable"), config("Operator"), config("Value"), ctx.pattern);
            (simulated, outcome)
        }
        "DeploymentWindow" => {
            return match window_opens(config("Cron").unwrap_or_default(), config("TimeZone"), ctx.now) {
                Err(message) => Pending::At(simulated, Box::new(configuration_error(message))),
                Ok(opens) => {
                    let at = opens.map(|o| o.max(simulated));
                    let deadline = timeout(ctx);
                    match at {
                        Some(at) if deadline.is_none_or(|d| at <= d) => Pending::At(
                            at,
                            Box::new(succeeded("The current time is within the deployment window.".into())),
                        ),
                        _ => match deadline {
                            Some(deadline) => Pending::At(deadline, Box::new(Outcome::Fail(timed_out(ctx)))),
                            None => Pending::At(
                                simulated,
                                Box::new(failed("The deployment window never opens again.".into())),
                            ),
                        },
                    }
                }
            };
        }
        "CloudWatchAlarm" => {
            let alarm = config("AlarmName").unwrap_or_default();
            let states = config("AlarmStates").unwrap_or("ALARM");
            // The rule watches the alarm for WaitTime minutes before it decides [DOC].
            let wait = config("WaitTime").and_then(|w| w.trim().parse::<i64>().ok()).unwrap_or(0);
            let at = simulated.max(ctx.now.plus_millis(wait.saturating_mul(60_000)));
            (at, succeeded(format!("Alarm {alarm} is not in state {states}.")))
        }
        "Commands" => {
            let count = ctx.rule.commands.as_ref().map_or(0, Vec::len);
            (simulated, succeeded(format!("{count} commands ran and succeeded.")))
        }
        "LambdaInvoke" => {
            let function = config("FunctionName").unwrap_or_default();
            (simulated, succeeded(format!("The AWS Lambda function {function} succeeded.")))
        }
        other => (simulated, configuration_error(format!("The rule provider {other} is not supported."))),
    };
    Pending::At(at, Box::new(outcome))
}

/// `VariableCheck`: compares the resolved `Variable` with `Value`. `MATCHES` takes a regular expression that must
/// match the whole value, as Java's `String.matches` does (AWS documents Java regular expressions); it is the
/// `pattern` compiled when the pipeline version was created ([`compile_pattern`]), never compiled here.
pub fn variable_check(
    variable: Option<&str>,
    operator: Option<&str>,
    value: Option<&str>,
    pattern: Option<&Regex>,
) -> Outcome {
    let (Some(variable), Some(operator), Some(value)) = (variable, operator, value) else {
        return configuration_error("A VariableCheck rule needs Variable, Operator and Value.".into());
    };
    let passed = match operator {
        "EQ" => variable == value,
        "NE" => variable != value,
        "CONTAINS" => variable.contains(value),
        "MATCHES" => match pattern {
            Some(pattern) => pattern.is_match(variable),
            None => {
                return configuration_error(format!(
                    "The MATCHES pattern '{value}' was not a literal regular expression when the pipeline was created."
                ));
            }
        },
        other => {
            return configuration_error(format!("The operator '{other}' is not one of EQ, NE, CONTAINS and MATCHES."));
        }
    };
    if passed {
        succeeded(format!("The variable value '{variable}' {operator} '{value}': the check passed."))
    } else {
        failed(format!("The variable value '{variable}' {operator} '{value}': the check did not pass."))
    }
}

/// The largest compiled form a `MATCHES` pattern may take, which keeps its compilation short.
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// Compiles a VariableCheck `MATCHES` pattern to match a whole value, as Java's `String.matches` does. Done when a
/// pipeline version is created, never while an execution runs.
pub fn compile_pattern(value: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{value})$"))
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// Parses a DeploymentWindow cron expression: Quartz-like, seconds first (always `*`: windows are whole minutes
/// \[DOC\]), an optional year, `?`, `L`, `W` and `#`, and Quartz's day-of-week numbers (1 is Sunday).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    if expression.split_whitespace().next() != Some("*") {
        return Err(format!("The cron expression '{expression}' is not valid: its seconds field must be '*'"));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .alternative_weekdays(true)
        .build()
        .parse(expression.trim())
        .map_err(|e| format!("The cron expression '{expression}' is not valid: {e}"))
}

/// When a deployment window next opens at or after `now`: `Ok(None)` if it never does again.
pub fn window_opens(expression: &str, time_zone: Option<&str>, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let cron = parse_cron(expression)?;
    let utc = Utc.timestamp_millis_opt(now.millis()).single().ok_or("The emulator clock is out of range.")?;
    fn next<Tz: TimeZone>(cron: &Cron, at: DateTime<Tz>) -> Option<Timestamp> {
        // Windows open on whole seconds; a time within a matching second is inside the window.
        let second = at.timestamp_subsec_millis();
        let floor = at.clone() - chrono::Duration::milliseconds(i64::from(second));
        let found = cron.find_next_occurrence(&floor, true).ok()?;
        let millis = found.timestamp_millis();
        Some(Timestamp::from_millis(if found == floor { at.timestamp_millis() } else { millis }))
    }
    Ok(match super::time_zone::zone(time_zone)? {
        Zone::Named(named) => next(&cron, utc.with_timezone(&named)),
        Zone::Fixed(offset) => next(&cron, utc.with_timezone(&offset)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::from_millis(DateTime::parse_from_rfc3339(text).expect("valid").timestamp_millis())
    }

    #[test]
    fn variable_checks() {
        let pass = |v, op, val: &str| {
            let pattern = compile_pattern(val).ok();
            matches!(variable_check(Some(v), Some(op), Some(val), pattern.as_ref()), Outcome::Succeed(_))
        };
        assert!(pass("main", "EQ", "main"));
        assert!(!pass("main", "EQ", "dev"));
        assert!(pass("main", "NE", "dev"));
        assert!(pass("release/1.2", "CONTAINS", "release"));
        assert!(pass("release/1.2", "MATCHES", "release/[0-9.]+"));
        // MATCHES matches the whole value, as Java's String.matches does.
        assert!(!pass("xrelease/1.2", "MATCHES", "release/[0-9.]+"));
        assert!(compile_pattern("(").is_err());
        assert!(compile_pattern("(a{1000}){1000}").is_err(), "too large to compile");
        let uncompiled = variable_check(Some("a"), Some("MATCHES"), Some("a"), None);
        assert!(matches!(uncompiled, Outcome::Fail(ref e) if e.code == FailureType::ConfigurationError));
        let bad = variable_check(Some("a"), Some("GT"), Some("b"), None);
        assert!(matches!(bad, Outcome::Fail(ref e) if e.code == FailureType::ConfigurationError));
    }

    #[test]
    fn deployment_windows_open_on_the_cron_schedule_in_their_time_zone() {
        // Weekdays 09:00–17:59, Quartz style.
        let cron = "* * 9-17 ? * MON-FRI *";
        // Inside the window: opens at once.
        let now = at("2026-11-23T10:15:30.500Z"); // a Monday
        assert_eq!(window_opens(cron, None, now), Ok(Some(now)));
        // Before it: opens at 09:00:00.
        assert_eq!(window_opens(cron, Some("UTC"), at("2026-11-23T07:00:00Z")), Ok(Some(at("2026-11-23T09:00:00Z"))));
        // Saturday: opens on Monday.
        assert_eq!(window_opens(cron, None, at("2026-11-21T12:00:00Z")), Ok(Some(at("2026-11-23T09:00:00Z"))));
        // In New York, 09:00 is 14:00 UTC in winter.
        assert_eq!(
            window_opens(cron, Some("America/New_York"), at("2026-11-23T10:00:00Z")),
            Ok(Some(at("2026-11-23T14:00:00Z")))
        );
        assert_eq!(
            window_opens(cron, Some("UTC+02:00"), at("2026-11-23T05:00:00Z")),
            Ok(Some(at("2026-11-23T07:00:00Z")))
        );
        assert_eq!(window_opens(cron, Some("EST"), at("2026-11-23T10:00:00Z")), Ok(Some(at("2026-11-23T14:00:00Z"))));
        // Quartz's day-of-week numbers: 2 is Monday; L is the last day of the month.
        assert_eq!(
            window_opens("* 0 12 ? * 2 *", None, at("2026-11-22T00:00:00Z")),
            Ok(Some(at("2026-11-23T12:00:00Z")))
        );
        assert_eq!(
            window_opens("* 0 0 L * ? *", None, at("2026-11-22T00:00:00Z")),
            Ok(Some(at("2026-11-30T00:00:00Z")))
        );
        // A year that has passed never opens again.
        assert_eq!(window_opens("* 0 0 1 1 ? 2020", None, at("2026-11-22T00:00:00Z")), Ok(None));
        assert!(window_opens("not a cron", None, at("2026-11-22T00:00:00Z")).is_err());
        assert!(window_opens("0 0 9 ? * MON-FRI *", None, at("2026-11-22T00:00:00Z")).is_err(), "seconds must be *");
        assert!(window_opens(cron, Some("Mars/Olympus"), at("2026-11-22T00:00:00Z")).is_err());
    }
}
