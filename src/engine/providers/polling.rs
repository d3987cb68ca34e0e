//! S3 source polling: with an S3 neighbour, every S3 source action whose `PollForSourceChanges` is on (AWS's
//! default) looks at its object every `--poll-interval` of the emulator clock (advancing the clock polls at once),
//! and a version id it has not started its pipeline for starts it ([`PollSource`]): the first execution of a new
//! polling pipeline comes from here, as on AWS, not from CreatePipeline. A missing or unreadable object starts
//! nothing. Polls are reads; only a new version makes a write.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::engine::Engine;
use crate::engine::commands::poll::PollSource;
use crate::state::Scope;

/// A polling S3 source action, as the last look at the pipelines saw it.
struct Watched {
    scope: Scope,
    pipeline: String,
    action: String,
    bucket: String,
    key: String,
    polls: bool,
    /// The version it last started its pipeline for.
    polled: Option<String>,
}

/// Every S3 source action of every pipeline.
fn watched(engine: &Engine) -> Vec<Watched> {
    let mut found = Vec::new();
    for scope in engine.store().scopes() {
        engine.store().read(&scope, |data| {
            for (name, record) in data.pipelines.iter() {
                let Some(first) = record.current().stages.first() else { continue };
                for action in first.actions.iter().filter(|a| a.is_s3_source()) {
                    let config = |key: &str| action.configuration.as_ref().and_then(|c| c.get(key)).cloned();
                    found.push(Watched {
                        scope: scope.clone(),
                        pipeline: name.clone(),
                        action: action.name.clone(),
                        bucket: config("S3Bucket").unwrap_or_default(),
                        key: config("S3ObjectKey").unwrap_or_default(),
                        polls: action.polls(),
                        polled: record.runtime.polled.get(&action.name).cloned(),
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
    // Whether each action polled at the last look: one turned on since starts its pipeline again.
    let mut polled_before: HashMap<(Scope, String, String), bool> = HashMap::new();
    let mut next = engine.store().clock().now();
    loop {
        if engine.store().clock().now() >= next {
            poll(&engine, &client, &mut polled_before).await;
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

async fn poll(
    engine: &Engine,
    client: &aws_sdk_s3::Client,
    polled_before: &mut HashMap<(Scope, String, String), bool>,
) {
    let watched = watched(engine);
    let mut versions: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    let mut seen = HashMap::with_capacity(watched.len());
    for action in watched {
        let id = (action.scope.clone(), action.pipeline.clone(), action.action.clone());
        let again = action.polls && polled_before.get(&id) == Some(&false);
        seen.insert(id, action.polls);
        if !action.polls {
            continue;
        }
        let object = (action.bucket.clone(), action.key.clone());
        let version = match versions.get(&object) {
            Some(version) => version.clone(),
            None => {
                let head = client.head_object().bucket(&action.bucket).key(&action.key).send().await;
                let version = head.ok().and_then(|h| h.version_id().map(str::to_string)).filter(|v| v != "null");
                versions.insert(object, version.clone());
                version
            }
        };
        let Some(version) = version else { continue };
        if !again && action.polled.as_ref() == Some(&version) {
            continue;
        }
        let command = PollSource { action: action.action.clone(), version, again };
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
    *polled_before = seen;
}
