use serde_json::json;

use super::*;

fn policy(document: Value) -> Policy {
    Policy::parse("test", &document).expect("a supported policy")
}

fn context(pairs: &[(&str, &[&str])]) -> Context {
    let mut context = Context::default();
    for (key, values) in pairs {
        context.set(key, values.iter().map(|v| v.to_string()).collect());
    }
    context
}

const PIPE: &str = "arn:aws:codepipeline:us-east-1:111111111111:app";

#[test]
fn deny_wins_then_allow_else_implicit_deny() {
    let allow = policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "codepipeline:Get*", "Resource": "*"}]}));
    let deny = policy(json!({"Version": "2012-10-17", "Statement":
        {"Effect": "Deny", "Action": ["codepipeline:GetPipeline"], "Resource": PIPE}}));
    let none = Context::default();
    assert_eq!(evaluate(std::slice::from_ref(&allow), "codepipeline:GetPipelineState", PIPE, &none), Decision::Allow);
    assert_eq!(
        evaluate(&[allow.clone(), deny.clone()], "codepipeline:GetPipeline", PIPE, &none),
        Decision::ExplicitDeny
    );
    assert_eq!(
        evaluate(
            &[deny, allow.clone()],
            "codepipeline:GetPipeline",
            "arn:aws:codepipeline:us-east-1:111111111111:other",
            &none
        ),
        Decision::Allow
    );
    assert_eq!(evaluate(&[allow], "codepipeline:DeletePipeline", PIPE, &none), Decision::ImplicitDeny);
    assert_eq!(evaluate(&[], "codepipeline:GetPipeline", PIPE, &none), Decision::ImplicitDeny);
}

#[test]
fn actions_ignore_case_and_resources_do_not() {
    let p = policy(json!({"Statement": [{"Effect": "Allow", "Action": "CodePipeline:getpipe?ine",
        "Resource": "arn:aws:codepipeline:*:111111111111:app*"}]}));
    let none = Context::default();
    assert_eq!(evaluate(std::slice::from_ref(&p), "codepipeline:GetPipeline", PIPE, &none), Decision::Allow);
    assert_eq!(
        evaluate(std::slice::from_ref(&p), "codepipeline:GetPipeline", &format!("{PIPE}/Stage/Action"), &none),
        Decision::Allow
    );
    assert_eq!(
        evaluate(
            std::slice::from_ref(&p),
            "codepipeline:GetPipeline",
            "arn:aws:codepipeline:us-east-1:111111111111:App",
            &none
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_action_and_not_resource_match_everything_else() {
    let p = policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "NotAction": "codepipeline:Delete*", "NotResource": "arn:aws:codepipeline:*:*:secret*"}]}));
    let none = Context::default();
    assert_eq!(evaluate(std::slice::from_ref(&p), "codepipeline:StartPipelineExecution", PIPE, &none), Decision::Allow);
    assert_eq!(evaluate(std::slice::from_ref(&p), "codepipeline:DeletePipeline", PIPE, &none), Decision::ImplicitDeny);
    assert_eq!(
        evaluate(&[p], "codepipeline:GetPipeline", "arn:aws:codepipeline:us-east-1:1:secret-app", &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn string_conditions_on_tags_and_regions() {
    let p = policy(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Team": ["blue", "green"], "aws:RequestedRegion": "eu-west-1"}}}]}));
    let p = std::slice::from_ref(&p);
    let ok = context(&[("aws:resourcetag/team", &["green"]), ("aws:RequestedRegion", &["eu-west-1"])]);
    assert_eq!(evaluate(p, "codepipeline:GetPipeline", PIPE, &ok), Decision::Allow);
    let other_team = context(&[("aws:ResourceTag/Team", &["red"]), ("aws:RequestedRegion", &["eu-west-1"])]);
    assert_eq!(evaluate(p, "codepipeline:GetPipeline", PIPE, &other_team), Decision::ImplicitDeny);
    let untagged = context(&[("aws:RequestedRegion", &["eu-west-1"])]);
    assert_eq!(evaluate(p, "codepipeline:GetPipeline", PIPE, &untagged), Decision::ImplicitDeny);
}

#[test]
fn negated_operators_and_if_exists_hold_when_the_key_is_missing() {
    let p = policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:ResourceTag/env": "dev"}}},
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringLikeIfExists": {"aws:RequestTag/env": "d*"}}}]}));
    let p = std::slice::from_ref(&p);
    assert_eq!(evaluate(p, "codepipeline:X", PIPE, &Context::default()), Decision::ExplicitDeny);
    assert_eq!(evaluate(p, "codepipeline:X", PIPE, &context(&[("aws:ResourceTag/env", &["dev"])])), Decision::Allow);
    let tagged = context(&[("aws:ResourceTag/env", &["dev"]), ("aws:RequestTag/env", &["prod"])]);
    assert_eq!(evaluate(p, "codepipeline:X", PIPE, &tagged), Decision::ImplicitDeny);
}

#[test]
fn set_qualifiers_on_tag_keys() {
    let all = policy(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}}]}));
    let any = policy(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}}]}));
    let subset = context(&[("aws:TagKeys", &["team"])]);
    let extra = context(&[("aws:TagKeys", &["team", "cost"])]);
    let none = Context::default();
    assert_eq!(evaluate(std::slice::from_ref(&all), "a:b", "*", &subset), Decision::Allow);
    assert_eq!(evaluate(std::slice::from_ref(&all), "a:b", "*", &extra), Decision::ImplicitDeny);
    assert_eq!(evaluate(std::slice::from_ref(&all), "a:b", "*", &none), Decision::Allow, "vacuously true");
    assert_eq!(evaluate(std::slice::from_ref(&any), "a:b", "*", &extra), Decision::Allow);
    assert_eq!(evaluate(std::slice::from_ref(&any), "a:b", "*", &none), Decision::ImplicitDeny);
}

#[test]
fn bool_null_and_arn_operators() {
    let p = policy(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
        "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": false}, "Null": {"aws:RequestTag/owner": "true"},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/ci-*"}}}]}));
    let p = std::slice::from_ref(&p);
    let ok = context(&[("aws:SecureTransport", &["false"]), ("aws:PrincipalArn", &["arn:aws:iam::1:user/ci-bot"])]);
    assert_eq!(evaluate(p, "iam:PassRole", "arn:aws:iam::1:role/r", &ok), Decision::Allow);
    let tagged = context(&[
        ("aws:SecureTransport", &["false"]),
        ("aws:PrincipalArn", &["arn:aws:iam::1:user/ci-bot"]),
        ("aws:RequestTag/owner", &["me"]),
    ]);
    assert_eq!(evaluate(p, "iam:PassRole", "arn:aws:iam::1:role/r", &tagged), Decision::ImplicitDeny);
    let human = context(&[("aws:SecureTransport", &["false"]), ("aws:PrincipalArn", &["arn:aws:iam::1:user/alice"])]);
    assert_eq!(evaluate(p, "iam:PassRole", "arn:aws:iam::1:role/r", &human), Decision::ImplicitDeny);
}

#[test]
fn anything_outside_the_subset_is_refused_by_name() {
    let refused = [
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}]}),
            "NumericLessThan",
        ),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}}}]}),
            "aws:SourceIp",
        ),
        (
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
            "Resource": "arn:aws:codepipeline:*:*:${aws:SourceIp}-*"}]}),
            "${aws:SourceIp}",
        ),
        (json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}), "Principal"),
        (
            json!({"Statement": [{"Sid": "Odd", "Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1}]}),
            "Extra",
        ),
        (json!({"Version": "2020-01-01", "Statement": []}), "2020-01-01"),
        (
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
            "Condition": {"Bool": {"aws:RequestedRegion": "true"}}}]}),
            "Bool",
        ),
    ];
    for (document, named) in refused {
        let error = Policy::parse("p1", &document).expect_err("refused");
        assert!(error.contains(named) && error.contains("p1"), "{error}");
    }
    for malformed in [
        json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "GetPipeline", "Resource": "*"}]}),
        json!([]),
    ] {
        assert!(Policy::parse("p", &malformed).is_err(), "{malformed}");
    }
}

#[test]
fn arn_wildcards_stay_in_their_segment_but_the_resource_part_and_a_trailing_star() {
    let p = |resource: &str| policy(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": resource}]}));
    let allows = |resource: &str, arn: &str| {
        evaluate(&[p(resource)], "codepipeline:GetPipeline", arn, &Context::default()) == Decision::Allow
    };
    assert!(allows("arn:aws:codepipeline:*:111111111111:app*", "arn:aws:codepipeline:us-east-1:111111111111:app/S/A"));
    assert!(!allows("arn:aws:codepipeline:us-*:111111111111:app", "arn:aws:codepipeline:us-east-1:x:111111111111:app"));
    assert!(!allows("arn:aws:codepipeline:*:app", "arn:aws:codepipeline:us-east-1:111111111111:app"), "one segment");
    assert!(allows("arn:aws:codepipeline:*", "arn:aws:codepipeline:us-east-1:111111111111:app"), "a trailing star");
    assert!(allows(
        "arn:aws:codepipeline:us-east-1:111111111111:webhook:*",
        "arn:aws:codepipeline:us-east-1:111111111111:webhook:h"
    ));
    assert!(allows("arn:aws:codepipeline:us-east-?:1111111111?1:*", "arn:aws:codepipeline:us-east-1:111111111111:x"));
}

#[test]
fn policy_variables_are_filled_in_from_the_request_and_never_act_as_wildcards() {
    let p = policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "codepipeline:*", "Resource": "arn:aws:codepipeline:*:*:${aws:username}-*"},
        {"Effect": "Allow", "Action": "codepipeline:StartPipelineExecution", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}},
        {"Effect": "Allow", "Action": "codepipeline:GetPipeline", "Resource": "arn:aws:codepipeline:*:*:${aws:PrincipalTag/prefix, 'shared'}${*}"}]}));
    let p = std::slice::from_ref(&p);
    let alice = context(&[("aws:username", &["alice"]), ("aws:PrincipalTag/team", &["blue"])]);
    let arn = |name: &str| format!("arn:aws:codepipeline:us-east-1:1:{name}");
    assert_eq!(evaluate(p, "codepipeline:DeletePipeline", &arn("alice-web"), &alice), Decision::Allow);
    assert_eq!(evaluate(p, "codepipeline:DeletePipeline", &arn("bob-web"), &alice), Decision::ImplicitDeny);
    let blue = context(&[
        ("aws:username", &["alice"]),
        ("aws:PrincipalTag/team", &["blue"]),
        ("aws:ResourceTag/team", &["blue"]),
    ]);
    assert_eq!(evaluate(p, "codepipeline:StartPipelineExecution", &arn("x"), &blue), Decision::Allow);
    let red = context(&[("aws:PrincipalTag/team", &["blue"]), ("aws:ResourceTag/team", &["red"])]);
    assert_eq!(evaluate(p, "codepipeline:StartPipelineExecution", &arn("x"), &red), Decision::ImplicitDeny);
    // Without the principal's tag the condition has no value to compare with: nothing matches.
    let untagged = context(&[("aws:ResourceTag/team", &["blue"])]);
    assert_eq!(evaluate(p, "codepipeline:StartPipelineExecution", &arn("x"), &untagged), Decision::ImplicitDeny);
    // A default, and ${*} as the character itself (never a wildcard).
    assert_eq!(evaluate(p, "codepipeline:GetPipeline", &arn("shared*"), &Context::default()), Decision::Allow);
    assert_eq!(
        evaluate(p, "codepipeline:GetPipeline", &arn("shared-web"), &Context::default()),
        Decision::ImplicitDeny
    );
    let star = context(&[("aws:username", &["*"])]);
    assert_eq!(
        evaluate(p, "codepipeline:DeletePipeline", &arn("bob-web"), &star),
        Decision::ImplicitDeny,
        "a value is literal"
    );
    // In a 2008-10-17 policy (or one without a Version) ${...} is plain text.
    let old = policy(
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:codepipeline:*:*:${aws:username}"}]}),
    );
    assert_eq!(evaluate(&[old], "codepipeline:GetPipeline", &arn("${aws:username}"), &alice), Decision::Allow);
}
