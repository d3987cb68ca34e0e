//! S3 source polling: with an S3 neighbour, every S3 source action whose `PollForSourceChanges` is on (AWS's
//! default) looks at its object every `--poll-interval` of the emulator clock (advancing the clock polls at once),
//! and reports what it saw through the engine's [`PollSource`] command, which starts the pipeline for a version the
//! action has not started it for (the first execution of a new polling pipeline comes from here, as on AWS, not from
//! CreatePipeline) and shows a missing or forbidden object on the action. Polls are reads; only a new version or a
//! new failure makes a write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Engine;
use crate::engine::commands::poll::{PollSource, Seen};
use crate::state::Scope;
use crate::state::execution::ErrorDetails;

/// A polling S3 source action, as the last look at the pipelines saw it.
struct Watched {
    scope: Scope,
    pipeline: String,
    action: String,
    bucket: String,
    key: String,
    /// The version it last started its pipeline for.
    polled: Option<String>,
    /// What it last failed to read, if it has not read it since.
    failure: Option<ErrorDetails>,
}

/// Every polling S3 source action of every pipeline.
fn watched(engine: &Engine) -> Vec<Watched> {
    let mut found = Vec::new();
    for scope in engine.store().scopes() {
        engine.store().read(&scope, |data| {
            for (name, record) in data.pipelines.iter() {
                let Some(first) = record.current().stages.first() else { continue };
                for action in first.actions.iter().filter(|a| a.is_s3_source() && a.polls()) {
                    let config = |key: &str| action.configuration.as_ref().and_then(|c| c.get(key)).cloned();
                    found.push(Watched {
                        scope: scope.clone(),
                        pipeline: name.clone(),
                        action: action.name.clone(),
                        bucket: config("S3Bucket").unwrap_or_default(),
                        key: config("S3ObjectKey").unwrap_or_default(),
                        polled: record.runtime.polled.get(&action.name).cloned(),
                        failure: record.runtime.poll_failures.get(&action.name).map(|f| f.error.clone()),
                    });
                }
            }
        });
    }
    found
}

/// Polls until `shutdown` turns true.
pub async fn run(
    engine: Arc<Engine>,
    client: aws_sdk_s3::Client,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let mut next = engine.store().clock().now();
    loop {
        if engine.store().clock().now() >= next {
            poll(&engine, &client).await;
            next = engine.store().clock().now().plus_millis(interval_ms);
        }
        // The emulator clock may jump: look at it at least every second.
        let pause = interval.min(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// What a HeadObject of the object's current version says; `None` for an error that says nothing about the object
/// (the neighbour is down): the next poll looks again.
async fn look(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Result<String, ErrorDetails>> {
    match client.head_object().bucket(bucket).key(key).send().await {
        Ok(head) => head.version_id().filter(|v| *v != "null").map(|v| Ok(v.to_string())),
        Err(error) => match error.raw_response().map(|r| r.status().as_u16()) {
            Some(404 | 400) => Some(Err(super::s3_object_missing(bucket, key))),
            Some(403) => Some(Err(super::s3_object_denied(bucket, key))),
            _ => None,
        },
    }
}

async fn poll(engine: &Engine, client: &aws_sdk_s3::Client) {
    let mut looks: BTreeMap<(String, String), Option<Result<String, ErrorDetails>>> = BTreeMap::new();
    for action in watched(engine) {
        let object = (action.bucket.clone(), action.key.clone());
        let looked = match looks.get(&object) {
            Some(looked) => looked.clone(),
            None => {
                let looked = look(client, &action.bucket, &action.key).await;
                looks.insert(object, looked.clone());
                looked
            }
        };
        let seen = match looked {
            // An error that says nothing about the object: the next poll looks again.
            None => continue,
            Some(Ok(version)) if action.failure.is_none() && action.polled.as_ref() == Some(&version) => continue,
            Some(Err(error)) if action.failure.as_ref() == Some(&error) => continue,
            Some(Ok(version)) => Seen::Version(version),
            Some(Err(error)) => Seen::Unreadable(error),
        };
        let command = PollSource { action: action.action.clone(), seen };
        match engine.apply(&action.scope, &action.pipeline, command) {
            Ok(Ok(Some(execution))) => tracing::info!(
                pipeline = %action.pipeline, action = %action.action, %execution,
                "polling found a new version of s3://{}/{}", action.bucket, action.key
            ),
            Ok(_) => {}
            // Not saved (a full disk): the next poll tries again.
            Err(unavailable) => {
                tracing::warn!(pipeline = %action.pipeline, "a polled change could not be saved: {unavailable}")
            }
        }
    }
}
