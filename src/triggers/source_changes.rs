//! `POST /_emulator/source-changes`: an S3 object, ECR image tag or CodeCommit branch changed (integrations.md §6).
//!
//! The body is either the emulator's neutral form or the EventBridge event AWS itself delivers, so a test can forward
//! a real one unchanged:
//!
//! | change | neutral body | EventBridge event |
//! |---|---|---|
//! | S3 | `{"provider": "S3", "bucket", "key", "versionId"?, "etag"?}` | `Object Created`; `AWS API Call via CloudTrail` for PutObject, CopyObject, CompleteMultipartUpload |
//! | S3 object gone | `{"provider": "S3", "bucket", "key", "deleted": true}` | `Object Deleted`; CloudTrail DeleteObject without a version id |
//! | ECR | `{"provider": "ECR", "repositoryName", "imageTag"?, "imageDigest"?}` | `ECR Image Action` (PUSH, SUCCESS) |
//! | CodeCommit | `{"provider": "CodeCommit", "repositoryName", "branch", "commitId", "commitMessage"?}` | `CodeCommit Repository State Change` (branch created or updated) |
//!
//! The change is recorded in the emulated world first (the object's current version, the tag's digest, the branch's
//! head, or that the object is gone); then every pipeline of the account and region whose source action watches that
//! object, image tag (default `latest`) or branch starts, running exactly that revision. A polling S3 source
//! (`PollForSourceChanges` true, AWS's default) sees it as its poll would: a version it has not started its pipeline
//! for starts it (trigger `PollForSourceChanges`, detail: the action's name), and a gone object shows as the action's
//! failure in GetPipelineState and starts nothing (see `engine::commands::poll`). A polling CodeCommit source starts
//! with the same trigger; a source that does not poll starts with `CloudWatchEvent` (detail: the ARN of the
//! EventBridge rule AWS would have; UNCONFIRMED name). The neutral body
//! may say `"startPipelines": false` to record the change only (an upload nothing reports, so that later executions
//! pick it up), and may name an `account` and `region`; an EventBridge event acts in the caller's account and region (its own
//! `account` is that of the AWS account it came from).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};

use super::{Outcome, Started, Within};
use crate::app::AppState;
use crate::control::guard::ControlJson;
use crate::engine::commands::poll::{PollSource, Seen};
use crate::engine::providers::{s3_etag, s3_object_missing};
use crate::protocol::ApiError;
use crate::state::Scope;
use crate::state::declaration::{ActionCategory, ActionDeclaration};
use crate::state::execution::{ExecutionTrigger, RevisionOverride, RevisionType, TriggerType};
use crate::state::sources::{Commit, ObjectVersion, RepositoryKind};

/// A change to something source actions watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    S3 {
        bucket: String,
        key: String,
        version_id: Option<String>,
        etag: Option<String>,
    },
    /// The object is not there any more (or never was): S3 sources reading it fail.
    S3Deleted {
        bucket: String,
        key: String,
    },
    Ecr {
        repository: String,
        tag: String,
        digest: Option<String>,
    },
    CodeCommit {
        repository: String,
        branch: String,
        commit: String,
        message: Option<String>,
    },
}

/// What a body says: a change, or an event that changes nothing a source action watches (and why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Change(Change),
    Ignored(String),
}

/// `POST /_emulator/source-changes`.
pub async fn receive(
    State(app): State<AppState>,
    caller: crate::control::guard::Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(body): ControlJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
    let neutral = body.get("detail-type").is_none();
    let (account, region) = if neutral { (text("account"), text("region")) } else { (None, None) };
    let scope = crate::control::control_scope(&app, &caller, &headers, &uri, account, region)?;
    let change = match parse(&body).map_err(ApiError::validation)? {
        Parsed::Ignored(reason) => return Ok(Json(json!({"started": [], "skipped": [], "ignored": reason}))),
        Parsed::Change(change) => change,
    };
    // `"startPipelines": false` records the change only: an upload that no poll or EventBridge rule reports.
    let start = !neutral || body.get("startPipelines").and_then(Value::as_bool).unwrap_or(true);
    let outcome = apply(&app, &scope, change, start)?;
    Ok(Json(json!(outcome)))
}

/// Reads a neutral body or an EventBridge event.
pub fn parse(body: &Value) -> Result<Parsed, String> {
    // An empty optional value is taken as absent: no output member may be empty (issue 28).
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    let required = |value: &Value, key: &str, what: &str| {
        text(value, key).filter(|v| !v.is_empty()).ok_or_else(|| format!("{what} needs a non-empty string '{key}'"))
    };
    if let Some(detail_type) = body.get("detail-type").and_then(Value::as_str) {
        let source = text(body, "source").unwrap_or_default();
        let detail = body.get("detail").unwrap_or(&Value::Null);
        return match (source.as_str(), detail_type) {
            ("aws.s3", "Object Created") => {
                let object = detail.get("object").unwrap_or(&Value::Null);
                Ok(Parsed::Change(Change::S3 {
                    bucket: required(detail.get("bucket").unwrap_or(&Value::Null), "name", "detail.bucket")?,
                    key: required(object, "key", "detail.object")?,
                    version_id: text(object, "version-id"),
                    etag: text(object, "etag"),
                }))
            }
            ("aws.s3", "Object Deleted") => Ok(Parsed::Change(Change::S3Deleted {
                bucket: required(detail.get("bucket").unwrap_or(&Value::Null), "name", "detail.bucket")?,
                key: required(detail.get("object").unwrap_or(&Value::Null), "key", "detail.object")?,
            })),
            ("aws.s3", "AWS API Call via CloudTrail") => {
                let event = text(detail, "eventName").unwrap_or_default();
                let request = detail.get("requestParameters").unwrap_or(&Value::Null);
                if event == "DeleteObject" && request.get("versionId").is_none() {
                    return Ok(Parsed::Change(Change::S3Deleted {
                        bucket: required(request, "bucketName", "detail.requestParameters")?,
                        key: required(request, "key", "detail.requestParameters")?,
                    }));
                }
                if !matches!(event.as_str(), "PutObject" | "CopyObject" | "CompleteMultipartUpload") {
                    return Ok(Parsed::Ignored(format!(
                        "The S3 call {event} does not change an object's current version"
                    )));
                }
                let response = detail.get("responseElements").unwrap_or(&Value::Null);
                Ok(Parsed::Change(Change::S3 {
                    bucket: required(request, "bucketName", "detail.requestParameters")?,
                    key: required(request, "key", "detail.requestParameters")?,
                    version_id: text(response, "x-amz-version-id"),
                    etag: None,
                }))
            }
            ("aws.ecr", "ECR Image Action") => {
                let (action, result) = (text(detail, "action-type"), text(detail, "result"));
                if action.as_deref() != Some("PUSH") || result.as_deref() != Some("SUCCESS") {
                    return Ok(Parsed::Ignored("Only a successful image PUSH starts pipelines".into()));
                }
                Ok(Parsed::Change(Change::Ecr {
                    repository: required(detail, "repository-name", "detail")?,
                    tag: text(detail, "image-tag").unwrap_or_else(|| "latest".into()),
                    digest: text(detail, "image-digest"),
                }))
            }
            ("aws.codecommit", "CodeCommit Repository State Change") => {
                let event = text(detail, "event").unwrap_or_default();
                let branch = text(detail, "referenceType").as_deref() == Some("branch");
                if !branch || !matches!(event.as_str(), "referenceCreated" | "referenceUpdated") {
                    return Ok(Parsed::Ignored(
                        "Only a branch that is created or updated starts pipelines (not a deletion or a tag)".into(),
                    ));
                }
                Ok(Parsed::Change(Change::CodeCommit {
                    repository: required(detail, "repositoryName", "detail")?,
                    branch: required(detail, "referenceName", "detail")?,
                    commit: required(detail, "commitId", "detail")?,
                    message: None,
                }))
            }
            _ => Err(format!(
                "The event ({source}, {detail_type}) is not an S3 Object Created, S3 CloudTrail, ECR Image Action or \
                 CodeCommit Repository State Change event"
            )),
        };
    }
    match text(body, "provider").as_deref() {
        Some("S3") if body.get("deleted").and_then(Value::as_bool) == Some(true) => {
            Ok(Parsed::Change(Change::S3Deleted {
                bucket: required(body, "bucket", "An S3 change")?,
                key: required(body, "key", "An S3 change")?,
            }))
        }
        Some("S3") => Ok(Parsed::Change(Change::S3 {
            bucket: required(body, "bucket", "An S3 change")?,
            key: required(body, "key", "An S3 change")?,
            version_id: text(body, "versionId"),
            etag: text(body, "etag"),
        })),
        Some("ECR") => Ok(Parsed::Change(Change::Ecr {
            repository: required(body, "repositoryName", "An ECR change")?,
            tag: text(body, "imageTag").unwrap_or_else(|| "latest".into()),
            digest: text(body, "imageDigest"),
        })),
        Some("CodeCommit") => Ok(Parsed::Change(Change::CodeCommit {
            repository: required(body, "repositoryName", "A CodeCommit change")?,
            branch: required(body, "branch", "A CodeCommit change")?,
            commit: required(body, "commitId", "A CodeCommit change")?,
            message: text(body, "commitMessage"),
        })),
        other => Err(format!(
            "provider must be S3, ECR or CodeCommit (or send an EventBridge event), not {}",
            other.map_or_else(|| "nothing".to_string(), |p| format!("'{p}'"))
        )),
    }
}

/// Records the change in the emulated world and, with `start`, starts every pipeline watching it.
pub fn apply(app: &AppState, scope: &Scope, change: Change, start: bool) -> Result<Outcome, ApiError> {
    let now = app.store().clock().now();
    // Fill in what the change left out, then record it.
    let change = match change {
        Change::S3 { bucket, key, version_id, etag } => {
            let version_id = version_id.unwrap_or_else(|| app.engine().ids().version_id());
            let etag =
                etag.map(|e| e.trim_matches('"').to_string()).unwrap_or_else(|| s3_etag(&bucket, &key, &version_id));
            Change::S3 { bucket, key, version_id: Some(version_id), etag: Some(etag) }
        }
        Change::Ecr { repository, tag, digest } => {
            let digest = digest.unwrap_or_else(|| format!("sha256:{}", app.engine().ids().hex(64)));
            Change::Ecr { repository, tag, digest: Some(digest) }
        }
        other => other,
    };
    let engine = app.engine();
    let outcome = app.store().write(scope, |data| {
        match &change {
            Change::S3 { bucket, key, version_id: Some(version_id), etag: Some(etag) } => {
                let version = ObjectVersion { version_id: version_id.clone(), etag: etag.clone() };
                data.sources.put_object(bucket, key, version);
            }
            Change::S3Deleted { bucket, key } => data.sources.delete_object(bucket, key),
            Change::Ecr { repository, tag, digest: Some(digest) } => data.sources.put_image(repository, tag, digest),
            Change::CodeCommit { repository, branch, commit, message } => {
                let message = message.clone().unwrap_or_default();
                let recorded = Commit { message, author_date: Some(now.to_rfc3339()), branch: Some(branch.clone()) };
                data.sources.put_commit(RepositoryKind::CodeCommit, repository, None, Some(branch), commit, recorded);
            }
            _ => {}
        }
        let watching: Vec<(String, Vec<(String, bool)>)> = data
            .pipelines
            .iter()
            .filter(|_| start)
            .filter_map(|(name, record)| {
                let first = record.current().stages.first()?;
                let actions: Vec<(String, bool)> =
                    first.actions.iter().filter(|a| watches(a, &change)).map(|a| (a.name.clone(), a.polls())).collect();
                (!actions.is_empty()).then(|| (name.clone(), actions))
            })
            .collect();
        let mut within = Within { engine, data, scope, now };
        let mut outcome = Outcome::default();
        for (pipeline, actions) in watching {
            // Polling S3 sources look at the object: a new version starts the pipeline (once per version and
            // action), a deleted object shows as the action's failure.
            let polling: Vec<&String> = actions.iter().filter(|(_, polls)| *polls).map(|(action, _)| action).collect();
            let seen = match &change {
                Change::S3 { version_id: Some(version), .. } => Some(Seen::Version(version.clone())),
                Change::S3Deleted { bucket, key } => Some(Seen::Unreadable(s3_object_missing(bucket, key))),
                _ => None,
            };
            if let Some(seen) = seen.filter(|_| !polling.is_empty()) {
                for action in polling {
                    let command = PollSource { action: action.clone(), seen: seen.clone() };
                    let Within { engine, data, scope, now } = &mut within;
                    match engine.apply_within(data, scope, &pipeline, command, *now) {
                        Ok(Some(id)) => {
                            outcome.started.push(Started { pipeline_name: pipeline.clone(), pipeline_execution_id: id })
                        }
                        Ok(None) if matches!(seen, Seen::Unreadable(_)) => outcome
                            .skip(&pipeline, format!("The object is not there: the source action {action} shows it")),
                        Ok(None) => outcome.skip(
                            &pipeline,
                            format!("The source action {action} already started the pipeline for this version"),
                        ),
                        Err(_) => {
                            outcome.skip(&pipeline, format!("The pipeline {pipeline} no longer polls with {action}"))
                        }
                    }
                }
                continue;
            }
            if matches!(change, Change::S3Deleted { .. }) {
                continue;
            }
            let Some((first, polling)) = actions.first() else { continue };
            let trigger = if *polling {
                ExecutionTrigger {
                    trigger_type: TriggerType::PollForSourceChanges,
                    trigger_detail: Some(first.as_str().into()),
                }
            } else {
                let rule = scope.arn_in("events", &format!("rule/codepipeline-local-{pipeline}"));
                ExecutionTrigger { trigger_type: TriggerType::CloudWatchEvent, trigger_detail: Some(rule.into()) }
            };
            let overrides = actions.iter().map(|(action, _)| revision(action, &change)).collect();
            outcome.start_within(&mut within, &pipeline, trigger, overrides);
        }
        outcome
    })?;
    Ok(outcome)
}

/// Whether a source action watches what changed.
fn watches(action: &ActionDeclaration, change: &Change) -> bool {
    let id = &action.action_type_id;
    let config = |key: &str| action.configuration.as_ref().and_then(|c| c.get(key)).map(String::as_str);
    if id.category != ActionCategory::Source || id.owner != crate::state::declaration::ActionOwner::Aws {
        return false;
    }
    match change {
        Change::S3 { bucket, key, .. } | Change::S3Deleted { bucket, key } => {
            id.provider == "S3" && config("S3Bucket") == Some(bucket) && config("S3ObjectKey") == Some(key)
        }
        Change::Ecr { repository, tag, .. } => {
            id.provider == "ECR"
                && config("RepositoryName") == Some(repository)
                && config("ImageTag").unwrap_or("latest") == tag
        }
        Change::CodeCommit { repository, branch, .. } => {
            id.provider == "CodeCommit"
                && config("RepositoryName") == Some(repository)
                && config("BranchName") == Some(branch)
        }
    }
}

/// The revision a watching action runs: exactly the one the change made.
fn revision(action: &str, change: &Change) -> RevisionOverride {
    let (revision_type, value) = match change {
        Change::S3 { version_id, .. } => (RevisionType::S3ObjectVersionId, version_id.clone().unwrap_or_default()),
        Change::S3Deleted { .. } => (RevisionType::S3ObjectVersionId, String::new()),
        Change::Ecr { digest, .. } => (RevisionType::ImageDigest, digest.clone().unwrap_or_default()),
        Change::CodeCommit { commit, .. } => (RevisionType::CommitId, commit.clone()),
    };
    RevisionOverride {
        action_name: action.to_string(),
        revision_type,
        revision_value: value,
        change_id: None,
        created: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventbridge_events_and_neutral_bodies_read_the_same() {
        let s3 = Change::S3 {
            bucket: "web-app-source".into(),
            key: "web-app/source.zip".into(),
            version_id: Some("Qx7pL2vN9kRt4".into()),
            etag: Some("4d65f7ee".into()),
        };
        let object_created = json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {
            "bucket": {"name": "web-app-source"},
            "object": {"key": "web-app/source.zip", "etag": "4d65f7ee", "version-id": "Qx7pL2vN9kRt4"}}});
        assert_eq!(parse(&object_created), Ok(Parsed::Change(s3.clone())));
        let neutral = json!({"provider": "S3", "bucket": "web-app-source", "key": "web-app/source.zip",
            "versionId": "Qx7pL2vN9kRt4", "etag": "4d65f7ee"});
        assert_eq!(parse(&neutral), Ok(Parsed::Change(s3)));
        let cloudtrail = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": {
            "eventName": "PutObject", "requestParameters": {"bucketName": "b", "key": "k"},
            "responseElements": {"x-amz-version-id": "v"}}});
        let expected = Change::S3 { bucket: "b".into(), key: "k".into(), version_id: Some("v".into()), etag: None };
        assert_eq!(parse(&cloudtrail), Ok(Parsed::Change(expected)));
        let read = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.s3", "detail": {"eventName": "GetObject"}});
        assert!(matches!(parse(&read), Ok(Parsed::Ignored(_))));
        let ecr = json!({"detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {"result": "SUCCESS",
            "repository-name": "web-app", "action-type": "PUSH", "image-tag": "v2", "image-digest": "sha256:ab"}});
        let expected = Change::Ecr { repository: "web-app".into(), tag: "v2".into(), digest: Some("sha256:ab".into()) };
        assert_eq!(parse(&ecr), Ok(Parsed::Change(expected)));
        let deleted = json!({"detail-type": "ECR Image Action", "source": "aws.ecr", "detail": {"result": "SUCCESS",
            "repository-name": "web-app", "action-type": "DELETE"}});
        assert!(matches!(parse(&deleted), Ok(Parsed::Ignored(_))));
        let codecommit = json!({"detail-type": "CodeCommit Repository State Change", "source": "aws.codecommit",
            "detail": {"event": "referenceUpdated", "repositoryName": "web-app", "referenceType": "branch",
            "referenceName": "main", "commitId": "9f2c"}});
        let expected = Change::CodeCommit {
            repository: "web-app".into(),
            branch: "main".into(),
            commit: "9f2c".into(),
            message: None,
        };
        assert_eq!(parse(&codecommit), Ok(Parsed::Change(expected)));
        for bad in [
            json!({"provider": "GCS"}),
            json!({}),
            json!({"provider": "S3", "bucket": "b"}),
            json!({"provider": "S3", "bucket": 1, "key": "k"}),
            json!({"detail-type": "Object Created", "source": "aws.s3"}),
            json!({"detail-type": "Something", "source": "aws.other"}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
