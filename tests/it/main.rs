//! Integration tests: each starts its own server on port 0 and drives it with `aws-sdk-codepipeline` or, where
//! the wire itself is the subject, raw HTTP. One test binary, so the build is paid once.

mod common;

mod artifacts;
mod browser;
mod browser_review;
mod browser_signed;
mod builds;
mod concurrency;
mod conditions;

mod control;
mod control_identity;
mod corpus;
mod dashboard;
mod delivery;
mod events;
mod examples;
mod executions;
mod fidelity;
mod fidelity_two;
mod git_source;
mod habits;
mod hardening;
mod iam;
mod images;
mod integrations;
mod isolation;
mod jobs;
mod lambda;
mod limits;
mod moto;
mod outbox;
mod persistence;
mod process;
mod recovery;
mod resources;
mod sdk;
mod sdk_json;
mod secrets;
mod shapes;
mod signing;
mod stacks;
mod structure;
mod triggers;
mod validation;
mod wire;
