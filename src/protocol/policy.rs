//! IAM identity-based policies, evaluated as AWS documents it (`--enforce-iam`): an explicit `Deny` wins, then an
//! `Allow`, else the request is implicitly denied.
//!
//! The language understood, all of it checked when a policy is read (anything else is refused then, naming it,
//! never ignored):
//!
//! - `Version` (`2012-10-17` or `2008-10-17`), `Id`, and `Statement` (one or a list);
//! - per statement `Sid`, `Effect`, `Action` or `NotAction`, `Resource` or `NotResource`, `Condition`;
//! - `*` and `?` wildcards in actions (case-insensitive) and resources (case-sensitive), matched over the whole
//!   string (a `*` also crosses `:` and `/`);
//! - condition operators `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
//!   `StringLike`, `StringNotLike`, `ArnEquals`, `ArnNotEquals`, `ArnLike`, `ArnNotLike`, `Bool`, `Null`, each with
//!   `IfExists` and the `ForAnyValue:`/`ForAllValues:` set qualifiers;
//! - condition keys `aws:RequestedRegion`, `aws:ResourceTag/<key>`, `aws:RequestTag/<key>`, `aws:TagKeys`,
//!   `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:SecureTransport` (always false: the endpoint is plain HTTP),
//!   `iam:PassedToService` and `codestar-connections:PassedToService`. Key names are case-insensitive, tag keys too.
//!
//! Not understood, so refused: policy variables (`${aws:username}`) in a `2012-10-17` policy, `Principal` and
//! `NotPrincipal` (resource-based policies), and every other operator (numeric, date, IP address, binary) and key.

use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// A policy, read and checked.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    /// `NotAction` when negated.
    actions: Patterns,
    /// `NotResource` when negated.
    resources: Patterns,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
struct Patterns {
    negated: bool,
    patterns: Vec<Wildcard>,
}

impl Patterns {
    fn applies(&self, text: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(text)) != self.negated
    }
}

/// A string with IAM's `*` and `?` wildcards.
#[derive(Debug, Clone)]
enum Wildcard {
    Any,
    Exact { text: String, ignore_case: bool },
    Pattern(Regex),
}

impl Wildcard {
    fn new(pattern: &str, ignore_case: bool) -> Result<Wildcard, String> {
        if pattern == "*" {
            return Ok(Wildcard::Any);
        }
        if !pattern.contains(['*', '?']) {
            return Ok(Wildcard::Exact { text: pattern.to_string(), ignore_case });
        }
        let mut expression = String::from("^");
        for c in pattern.chars() {
            match c {
                '*' => expression.push_str(".*"),
                '?' => expression.push('.'),
                other => expression.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        expression.push('$');
        RegexBuilder::new(&expression)
            .case_insensitive(ignore_case)
            .dot_matches_new_line(true)
            .build()
            .map(Wildcard::Pattern)
            .map_err(|e| format!("the pattern '{pattern}' cannot be used: {e}"))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Wildcard::Any => true,
            Wildcard::Exact { text: own, ignore_case: true } => own.eq_ignore_ascii_case(text),
            Wildcard::Exact { text: own, ignore_case: false } => own == text,
            Wildcard::Pattern(regex) => regex.is_match(text),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnLike,
    Bool,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: Operator,
    /// `StringNotEquals`, `ArnNotLike`, ...
    negated: bool,
    if_exists: bool,
    set: Set,
    /// Lower-cased.
    key: String,
    values: Vec<Wildcard>,
    /// As written (for `Bool` and `Null`, lower-cased).
    texts: Vec<String>,
}

/// The keys a policy may test, lower-cased; the second member of a prefix is true.
const KEYS: [(&str, bool); 9] = [
    ("aws:requestedregion", false),
    ("aws:resourcetag/", true),
    ("aws:requesttag/", true),
    ("aws:tagkeys", false),
    ("aws:principalarn", false),
    ("aws:principalaccount", false),
    ("aws:securetransport", false),
    ("iam:passedtoservice", false),
    ("codestar-connections:passedtoservice", false),
];

/// What a request is tested against: its context keys (lower-cased) and their values.
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: Vec<(String, Vec<String>)>,
}

impl Context {
    /// Sets `key` (any case) to `values`.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        let key = key.to_ascii_lowercase();
        self.values.retain(|(k, _)| *k != key);
        self.values.push((key, values));
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

/// The outcome of evaluating a request against a principal's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No statement allows it.
    ImplicitDeny,
    /// A statement denies it.
    ExplicitDeny,
}

/// Evaluates `action` on `resource` with `context` against `policies`.
pub fn evaluate(policies: &[Policy], action: &str, resource: &str, context: &Context) -> Decision {
    let mut allowed = false;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement.actions.applies(action)
            && statement.resources.applies(resource)
            && statement.conditions.iter().all(|c| c.holds(context))
        {
            if !statement.allow {
                return Decision::ExplicitDeny;
            }
            allowed = true;
        }
    }
    if allowed { Decision::Allow } else { Decision::ImplicitDeny }
}

impl Condition {
    fn holds(&self, context: &Context) -> bool {
        let present = context.get(&self.key).filter(|values| !values.is_empty());
        if self.operator == Operator::Null {
            return self.texts.iter().any(|t| (t == "true") == present.is_none());
        }
        let Some(values) = present else {
            // A key the request lacks: "if exists" and "for all values" hold, and so does a negated test.
            return self.if_exists || self.set == Set::ForAllValues || (self.negated && self.set == Set::Single);
        };
        match self.set {
            Set::ForAllValues => values.iter().all(|v| self.holds_for(v)),
            // One value, or (unqualified on a key with several) any of them.
            Set::ForAnyValue | Set::Single => values.iter().any(|v| self.holds_for(v)),
        }
    }

    /// Whether one request value passes: it matches one of the policy's values (or, negated, none of them).
    fn holds_for(&self, value: &str) -> bool {
        let matched = match self.operator {
            Operator::StringEquals => self.texts.iter().any(|t| t == value),
            Operator::StringEqualsIgnoreCase => self.texts.iter().any(|t| t.eq_ignore_ascii_case(value)),
            Operator::StringLike | Operator::ArnLike => self.values.iter().any(|w| w.matches(value)),
            Operator::Bool => self.texts.iter().any(|t| t.eq_ignore_ascii_case(value)),
            Operator::Null => false,
        };
        matched != self.negated
    }
}

impl Policy {
    /// Reads a policy document; `name` says which one in the errors.
    pub fn parse(name: &str, document: &Value) -> Result<Policy, String> {
        let fail = |what: String| format!("the policy {name} {what}, which codepipeline-local does not evaluate");
        let object = document.as_object().ok_or_else(|| format!("the policy {name} is not a JSON object"))?;
        let version = match object.get("Version") {
            None => "2008-10-17",
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => v.as_str(),
            Some(other) => return Err(fail(format!("has the Version {other}"))),
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(fail(format!("has the element '{key}'")));
            }
        }
        let statements = match object.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(format!("the policy {name} has no Statement")),
        };
        let variables = version == "2012-10-17";
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let label = match s.get("Sid").and_then(Value::as_str) {
                    Some(sid) => format!("{name} (statement {sid})"),
                    None => format!("{name} (statement {})", i + 1),
                };
                statement(&label, s, variables)
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }
}

fn statement(label: &str, value: &Value, variables: bool) -> Result<Statement, String> {
    let unsupported = |what: String| format!("the policy {label} {what}, which codepipeline-local does not evaluate");
    let object = value.as_object().ok_or_else(|| format!("the policy {label} is not a JSON object"))?;
    for key in object.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(unsupported(format!("has a {key} element (one of resource-based policies)")));
            }
            other => return Err(unsupported(format!("has the element '{other}'"))),
        }
    }
    let allow = match object.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err(format!("the policy {label} needs an Effect of Allow or Deny")),
    };
    let check_variables = |text: &str| {
        if variables && text.contains("${") {
            Err(unsupported(format!("uses a policy variable in '{text}'")))
        } else {
            Ok(())
        }
    };
    let actions = patterns(label, object, "Action", true, &|text: &str| {
        if text != "*" && !text.contains(':') {
            return Err(format!("the policy {label} has the action '{text}', which is not service:action"));
        }
        Ok(())
    })?;
    let resources = patterns(label, object, "Resource", false, &check_variables)?;
    let mut conditions = Vec::new();
    match object.get("Condition") {
        None => {}
        Some(Value::Object(blocks)) => {
            for (operator, tests) in blocks {
                let tests =
                    tests.as_object().ok_or_else(|| format!("the policy {label} has a malformed {operator}"))?;
                for (key, values) in tests {
                    conditions.push(condition(label, operator, key, values, &check_variables)?);
                }
            }
        }
        Some(_) => return Err(format!("the policy {label} has a malformed Condition")),
    }
    Ok(Statement { allow, actions, resources, conditions })
}

/// `Action`/`NotAction` or `Resource`/`NotResource`: exactly one of the two, a string or a list of strings.
fn patterns(
    label: &str,
    object: &serde_json::Map<String, Value>,
    element: &str,
    ignore_case: bool,
    check: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Patterns, String> {
    let not = format!("Not{element}");
    let (negated, value) = match (object.get(element), object.get(&not)) {
        (Some(value), None) => (false, value),
        (None, Some(value)) => (true, value),
        _ => return Err(format!("the policy {label} needs exactly one of {element} and {not}")),
    };
    let texts = strings(value).ok_or_else(|| format!("the policy {label} has a malformed {element}"))?;
    let patterns = texts
        .iter()
        .map(|text| {
            check(text)?;
            Wildcard::new(text, ignore_case).map_err(|e| format!("the policy {label}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(Patterns { negated, patterns })
}

/// A string, or a list of strings (booleans and numbers are written as text).
fn strings(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(list) => list.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

fn condition(
    label: &str,
    operator_text: &str,
    key: &str,
    values: &Value,
    check_variables: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Condition, String> {
    let unsupported = |what: String| format!("the policy {label} {what}, which codepipeline-local does not evaluate");
    let (set, rest) = if let Some(rest) = operator_text.strip_prefix("ForAnyValue:") {
        (Set::ForAnyValue, rest)
    } else if let Some(rest) = operator_text.strip_prefix("ForAllValues:") {
        (Set::ForAllValues, rest)
    } else {
        (Set::Single, operator_text)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let (operator, negated) = match base {
        "StringEquals" => (Operator::StringEquals, false),
        "StringNotEquals" => (Operator::StringEquals, true),
        "StringEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, true),
        "StringLike" => (Operator::StringLike, false),
        "StringNotLike" => (Operator::StringLike, true),
        "ArnEquals" | "ArnLike" => (Operator::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (Operator::ArnLike, true),
        "Bool" => (Operator::Bool, false),
        "Null" if !if_exists && set == Set::Single => (Operator::Null, false),
        _ => return Err(unsupported(format!("uses the condition operator {operator_text}"))),
    };
    let lower = key.to_ascii_lowercase();
    let known = KEYS
        .iter()
        .any(|(k, prefix)| if *prefix { lower.starts_with(k) && lower.len() > k.len() } else { lower == *k });
    if !known {
        return Err(unsupported(format!("uses the condition key {key}")));
    }
    if operator == Operator::Bool && lower != "aws:securetransport" {
        return Err(unsupported(format!("tests {key} with Bool")));
    }
    let texts = strings(values).ok_or_else(|| format!("the policy {label} has malformed values for {key}"))?;
    for text in &texts {
        check_variables(text)?;
    }
    let values = match operator {
        Operator::StringLike | Operator::ArnLike => texts
            .iter()
            .map(|t| Wildcard::new(t, false))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the policy {label}: {e}"))?,
        _ => Vec::new(),
    };
    let texts = match operator {
        Operator::Bool | Operator::Null => texts.iter().map(|t| t.to_ascii_lowercase()).collect(),
        _ => texts,
    };
    Ok(Condition { operator, negated, if_exists, set, key: lower, values, texts })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
