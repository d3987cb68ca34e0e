//! IAM identity-based policies, evaluated as AWS documents it (`--enforce-iam`): an explicit `Deny` wins, then an
//! `Allow`, else the request is implicitly denied.
//!
//! The language understood, all of it checked when a policy is read (anything else is refused then, naming it,
//! never ignored):
//!
//! - `Version` (`2012-10-17` or `2008-10-17`), `Id`, and `Statement` (one or a list);
//! - per statement `Sid`, `Effect`, `Action` or `NotAction`, `Resource` or `NotResource`, `Condition`;
//! - `*` and `?` wildcards in actions (case-insensitive) and resources (case-sensitive); in an ARN they stay within
//!   their segment (the parts between the first five colons), except in the resource part and as the pattern's last
//!   character, which match across `:` and `/` as IAM's do (`arn:aws:codepipeline:*` is every CodePipeline ARN);
//! - condition operators `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
//!   `StringLike`, `StringNotLike`, `ArnEquals`, `ArnNotEquals`, `ArnLike`, `ArnNotLike`, `Bool`, `Null`, each with
//!   `IfExists` and the `ForAnyValue:`/`ForAllValues:` set qualifiers;
//! - condition keys `aws:RequestedRegion`, `aws:ResourceTag/<key>`, `aws:RequestTag/<key>`, `aws:TagKeys`,
//!   `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:PrincipalTag/<key>`, `aws:username`,
//!   `aws:SecureTransport` (always false: the endpoint is plain HTTP), `aws:MultiFactorAuthPresent` (false with
//!   temporary keys, absent with long-term ones, as on AWS), `aws:ViaAWSService` (false), `iam:PassedToService` and
//!   `codestar-connections:PassedToService`. Key names are case-insensitive, tag keys too;
//! - in a `2012-10-17` policy, these keys as policy variables in resources and condition values
//!   (`${aws:username}`, `${aws:PrincipalTag/team}`, with a default: `${aws:username, 'nobody'}`), and `${*}`, `${?}`,
//!   `${$}` for the characters themselves. A variable's value is never a wildcard; one without a value (and without
//!   a default) matches nothing.
//!
//! Not understood, so refused: `Principal` and `NotPrincipal` (resource-based policies), and every other operator
//! (numeric, date, IP address, binary), key and variable.

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
    patterns: Vec<Matcher>,
}

impl Patterns {
    fn applies(&self, text: &str, context: &Context) -> bool {
        self.patterns.iter().any(|p| p.matches(text, context)) != self.negated
    }
}

/// A policy string: as written, and in a `2012-10-17` policy with variables filled in from the request.
#[derive(Debug, Clone)]
struct Text(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    /// As written: its wildcards are wildcards.
    Written(String),
    /// A policy variable's value (or its default): never a wildcard.
    Variable { key: String, default: Option<String> },
    /// `${*}`, `${?}`, `${$}`: the character itself.
    Literal(char),
}

impl Text {
    /// Reads `text`; with `variables`, its `${...}` too (an unknown variable is refused, named).
    fn parse(text: &str, variables: bool) -> Result<Text, String> {
        if !variables || !text.contains("${") {
            return Ok(Text(vec![Piece::Written(text.to_string())]));
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Written(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("has an unclosed policy variable in '{text}'"))?;
            let inner = after[..end].trim();
            match inner {
                "*" => pieces.push(Piece::Literal('*')),
                "?" => pieces.push(Piece::Literal('?')),
                "$" => pieces.push(Piece::Literal('$')),
                _ => {
                    let (key, default) = match inner.split_once(',') {
                        Some((key, default)) => (key.trim(), Some(default.trim().trim_matches('\'').to_string())),
                        None => (inner, None),
                    };
                    if !is_key(&key.to_ascii_lowercase()) {
                        return Err(format!("uses the policy variable ${{{key}}}"));
                    }
                    pieces.push(Piece::Variable { key: key.to_ascii_lowercase(), default });
                }
            }
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Written(rest.to_string()));
        }
        Ok(Text(pieces))
    }

    /// The text as written, when it has no variable.
    fn fixed(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Piece::Written(text)] => Some(text),
            [] => Some(""),
            _ => None,
        }
    }

    /// Its parts, each saying whether its wildcards count; `None` when a variable has no value.
    fn resolve(&self, context: &Context) -> Option<Vec<(String, bool)>> {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Written(text) => Some((text.clone(), true)),
                Piece::Literal(c) => Some((c.to_string(), false)),
                Piece::Variable { key, default } => {
                    let value = context.get(key).and_then(|v| v.first()).cloned().or_else(|| default.clone());
                    value.map(|v| (v, false))
                }
            })
            .collect()
    }
}

/// A policy string to match or compare: compiled once when it has no variable.
#[derive(Debug, Clone)]
struct Matcher {
    fixed: Option<Wildcard>,
    text: Text,
    ignore_case: bool,
}

impl Matcher {
    fn new(text: Text, ignore_case: bool) -> Result<Matcher, String> {
        let fixed = text.fixed().map(|t| Wildcard::new(t, ignore_case)).transpose()?;
        Ok(Matcher { fixed, text, ignore_case })
    }

    /// Whether `value` matches it as a pattern.
    fn matches(&self, value: &str, context: &Context) -> bool {
        match &self.fixed {
            Some(wildcard) => wildcard.matches(value),
            None => self
                .text
                .resolve(context)
                .and_then(|parts| Wildcard::from_parts(&parts, self.ignore_case).ok())
                .is_some_and(|w| w.matches(value)),
        }
    }

    /// It as a plain string, variables filled in.
    fn string(&self, context: &Context) -> Option<String> {
        match self.text.fixed() {
            Some(text) => Some(text.to_string()),
            None => self.text.resolve(context).map(|parts| parts.into_iter().map(|(t, _)| t).collect()),
        }
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
        Wildcard::from_parts(&[(pattern.to_string(), true)], ignore_case)
    }

    /// A pattern of parts, each saying whether its `*` and `?` are wildcards.
    fn from_parts(parts: &[(String, bool)], ignore_case: bool) -> Result<Wildcard, String> {
        let whole: String = parts.iter().map(|(t, _)| t.as_str()).collect();
        let wild = parts.iter().any(|(t, w)| *w && t.contains(['*', '?']));
        if !wild {
            return Ok(Wildcard::Exact { text: whole, ignore_case });
        }
        if whole == "*" {
            return Ok(Wildcard::Any);
        }
        // In an ARN, a wildcard of the first five segments stays in its segment.
        let arn = whole.starts_with("arn:");
        let mut expression = String::from("^");
        let (mut colons, mut index, last) = (0, 0, whole.chars().count() - 1);
        for (text, wildcards) in parts {
            for c in text.chars() {
                let within = arn && colons < 5 && index != last;
                match c {
                    '*' if *wildcards && within => expression.push_str("[^:]*"),
                    '?' if *wildcards && within => expression.push_str("[^:]"),
                    '*' if *wildcards => expression.push_str(".*"),
                    '?' if *wildcards => expression.push('.'),
                    other => {
                        colons += usize::from(other == ':');
                        expression.push_str(&regex::escape(other.encode_utf8(&mut [0; 4])));
                    }
                }
                index += 1;
            }
        }
        expression.push('$');
        RegexBuilder::new(&expression)
            .case_insensitive(ignore_case)
            .dot_matches_new_line(true)
            .build()
            .map(Wildcard::Pattern)
            .map_err(|e| format!("the pattern '{whole}' cannot be used: {e}"))
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
    /// As written (for `Bool` and `Null`, lower-cased).
    values: Vec<Matcher>,
}

/// The keys a policy may test, lower-cased; the second member of a prefix is true.
const KEYS: [(&str, bool); 14] = [
    ("aws:requestedregion", false),
    ("aws:resourcetag/", true),
    ("aws:requesttag/", true),
    ("aws:tagkeys", false),
    ("aws:principalarn", false),
    ("aws:principalaccount", false),
    ("aws:principaltype", false),
    ("aws:principaltag/", true),
    ("aws:username", false),
    ("aws:securetransport", false),
    ("aws:multifactorauthpresent", false),
    ("aws:viaawsservice", false),
    ("iam:passedtoservice", false),
    ("codestar-connections:passedtoservice", false),
];

/// The keys whose values are `true` or `false`.
const BOOLEAN_KEYS: [&str; 3] = ["aws:securetransport", "aws:multifactorauthpresent", "aws:viaawsservice"];

/// Whether a policy may use `key` (lower-cased).
fn is_key(key: &str) -> bool {
    KEYS.iter().any(|(k, prefix)| if *prefix { key.starts_with(k) && key.len() > k.len() } else { key == *k })
}

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
        if statement.actions.applies(action, context)
            && statement.resources.applies(resource, context)
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
            return self.values.iter().any(|v| (v.string(context).as_deref() == Some("true")) == present.is_none());
        }
        let Some(values) = present else {
            // A key the request lacks: "if exists" and "for all values" hold, and so does a negated test.
            return self.if_exists || self.set == Set::ForAllValues || (self.negated && self.set == Set::Single);
        };
        match self.set {
            Set::ForAllValues => values.iter().all(|v| self.holds_for(v, context)),
            // One value, or (unqualified on a key with several) any of them.
            Set::ForAnyValue | Set::Single => values.iter().any(|v| self.holds_for(v, context)),
        }
    }

    /// Whether one request value passes: it matches one of the policy's values (or, negated, none of them).
    fn holds_for(&self, value: &str, context: &Context) -> bool {
        let text = |m: &Matcher| m.string(context);
        let matched = match self.operator {
            Operator::StringEquals => self.values.iter().any(|m| text(m).as_deref() == Some(value)),
            Operator::StringEqualsIgnoreCase | Operator::Bool => {
                self.values.iter().any(|m| text(m).is_some_and(|t| t.eq_ignore_ascii_case(value)))
            }
            Operator::StringLike | Operator::ArnLike => self.values.iter().any(|m| m.matches(value, context)),
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
    let text = |written: &str| Text::parse(written, variables).map_err(unsupported);
    let action = |written: &str| {
        if written != "*" && !written.contains(':') {
            return Err(format!("the policy {label} has the action '{written}', which is not service:action"));
        }
        Text::parse(written, false).map_err(unsupported)
    };
    let actions = patterns(label, object, "Action", true, &action)?;
    let resources = patterns(label, object, "Resource", false, &text)?;
    let mut conditions = Vec::new();
    match object.get("Condition") {
        None => {}
        Some(Value::Object(blocks)) => {
            for (operator, tests) in blocks {
                let tests =
                    tests.as_object().ok_or_else(|| format!("the policy {label} has a malformed {operator}"))?;
                for (key, values) in tests {
                    conditions.push(condition(label, operator, key, values, &text)?);
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
    read: &dyn Fn(&str) -> Result<Text, String>,
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
        .map(|text| Matcher::new(read(text)?, ignore_case).map_err(|e| format!("the policy {label}: {e}")))
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
    read: &dyn Fn(&str) -> Result<Text, String>,
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
    if !is_key(&lower) {
        return Err(unsupported(format!("uses the condition key {key}")));
    }
    if operator == Operator::Bool && !BOOLEAN_KEYS.contains(&lower.as_str()) {
        return Err(unsupported(format!("tests {key} with Bool")));
    }
    let texts = strings(values).ok_or_else(|| format!("the policy {label} has malformed values for {key}"))?;
    let texts = match operator {
        Operator::Bool | Operator::Null => texts.iter().map(|t| t.to_ascii_lowercase()).collect(),
        _ => texts,
    };
    let values = texts
        .iter()
        .map(|t| Matcher::new(read(t)?, false).map_err(|e| format!("the policy {label}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Condition { operator, negated, if_exists, set, key: lower, values })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
