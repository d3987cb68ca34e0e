//! Delivers published events to a real EventBridge API (`--eventbridge-endpoint`: LocalStack, moto's server, ...) as
//! `AWSEvents.PutEvents` (AWS JSON 1.1, SigV4, up to 10 entries a call, to `--event-bus-name`).
//!
//! The engine never waits for delivery: events go into a bounded queue ([`QUEUE`] events) with `try_send`; a full
//! queue drops the event and counts it. The delivery task sends batches, retrying a call that could not be made or
//! that the endpoint refused (5xx) with backoff (`engine::outbound`); entries the endpoint rejects, and calls that still fail, are logged
//! and counted. `GET /health` shows the counts.

use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

use super::events::Published;
use super::outbound::{Call, HttpClient, post_with_retries};

/// How many events may wait for delivery.
pub const QUEUE: usize = 10_000;

/// How many entries one PutEvents call carries (EventBridge's limit).
const BATCH: usize = 10;

/// Where events are delivered, and the keys calls are signed with.
#[derive(Debug, Clone)]
pub struct EventBridgeSettings {
    /// Base URL of the EventBridge API, without a trailing slash.
    pub endpoint: String,
    pub bus: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// What TLS neighbours are trusted.
    pub trust: crate::engine::outbound::Trust,
}

/// What came of deliveries so far.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
}

impl DeliveryStats {
    /// `{"delivered", "failed", "dropped"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
        })
    }
}

/// The delivery task: sends what the queue holds until it closes.
pub async fn run(settings: EventBridgeSettings, stats: Arc<DeliveryStats>, mut queue: mpsc::Receiver<Arc<Published>>) {
    let client = super::outbound::client(&settings.trust);
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = queue.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // One call per region: entries are signed for their own region.
        let region = batch[0].region.clone();
        let (same, rest): (Vec<_>, Vec<_>) = batch.drain(..).partition(|e| e.region == region);
        for group in [same, rest].into_iter().filter(|g| !g.is_empty()) {
            let region = group[0].region.clone();
            let outcome = deliver(&client, &settings, &region, &group).await;
            let (delivered, failed) = match outcome {
                Ok(rejected) => (group.len() - rejected, rejected),
                Err(reason) => {
                    tracing::warn!(endpoint = %settings.endpoint, events = group.len(), "events were not delivered: {reason}");
                    (0, group.len())
                }
            };
            stats.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
            stats.failed.fetch_add(failed as u64, Ordering::Relaxed);
        }
    }
}

/// One PutEvents call, retried; how many entries the endpoint rejected, or why the call failed.
async fn deliver(
    client: &HttpClient,
    settings: &EventBridgeSettings,
    region: &str,
    events: &[Arc<Published>],
) -> Result<usize, String> {
    let entries: Vec<Value> = events
        .iter()
        .filter_map(|published| {
            let event: Value = serde_json::from_str(&published.event).ok()?;
            let time = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap_or_default())
                .map(|t| t.timestamp())
                .unwrap_or_default();
            Some(json!({
                "Time": time,
                "Source": event["source"],
                "Resources": event["resources"],
                "DetailType": event["detail-type"],
                "Detail": event["detail"].to_string(),
                "EventBusName": settings.bus,
            }))
        })
        .collect();
    let body = Bytes::from(json!({ "Entries": entries }).to_string());
    let call = Call {
        url: format!("{}/", settings.endpoint),
        headers: &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "AWSEvents.PutEvents")],
        keys: (&settings.access_key_id, &settings.secret_access_key),
        service: "events",
        region,
    };
    let answer = post_with_retries(client, &call, body).await?;
    let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
    let rejected = answer["FailedEntryCount"].as_u64().unwrap_or(0);
    if rejected > 0 {
        let reasons: Vec<&str> =
            answer["Entries"].as_array().into_iter().flatten().filter_map(|e| e["ErrorMessage"].as_str()).collect();
        tracing::warn!(rejected, "EventBridge rejected events: {}", reasons.join("; "));
    }
    Ok(usize::try_from(rejected).unwrap_or(usize::MAX).min(events.len()))
}
