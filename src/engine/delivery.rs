//! Delivers published events to a real EventBridge API (`--eventbridge-endpoint`: LocalStack, moto's server, ...) as
//! `AWSEvents.PutEvents` (AWS JSON 1.1, SigV4, up to 10 entries a call, to `--event-bus-name`).
//!
//! The engine never waits for delivery: events go into a bounded queue ([`QUEUE`] events) with `try_send`; a full
//! queue drops the event and counts it. The delivery task sends batches, retrying a call that could not be made or
//! that the endpoint refused (5xx) with backoff; entries the endpoint rejects, and calls that still fail, are logged
//! and counted. `GET /health` shows the counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::events::Published;

/// How many events may wait for delivery.
pub const QUEUE: usize = 10_000;

/// How many entries one PutEvents call carries (EventBridge's limit).
const BATCH: usize = 10;

/// Attempts of one call, and the wait before the first retry (doubled, then doubled again).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where events are delivered, and the keys calls are signed with.
#[derive(Debug, Clone)]
pub struct EventBridgeSettings {
    /// Base URL of the EventBridge API, without a trailing slash.
    pub endpoint: String,
    pub bus: String,
    pub access_key_id: String,
    pub secret_access_key: String,
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
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
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
    client: &Client<HttpConnector, Full<Bytes>>,
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
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match call(client, settings, region, body.clone()).await {
            Ok(answer) => {
                let rejected = answer["FailedEntryCount"].as_u64().unwrap_or(0);
                if rejected > 0 {
                    let reasons: Vec<&str> = answer["Entries"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e["ErrorMessage"].as_str())
                        .collect();
                    tracing::warn!(rejected, "EventBridge rejected events: {}", reasons.join("; "));
                }
                return Ok(usize::try_from(rejected).unwrap_or(usize::MAX).min(events.len()));
            }
            Err((retryable, reason)) => {
                last = reason;
                if !retryable || attempt == ATTEMPTS {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
    Err(last)
}

/// Makes one call: the answer, or (whether to retry, why not).
async fn call(
    client: &Client<HttpConnector, Full<Bytes>>,
    settings: &EventBridgeSettings,
    region: &str,
    body: Bytes,
) -> Result<Value, (bool, String)> {
    let uri = format!("{}/", settings.endpoint);
    let mut request = axum::http::Request::post(&uri)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "AWSEvents.PutEvents")
        .body(Full::new(body.clone()))
        .map_err(|e| (false, e.to_string()))?;
    let keys = (settings.access_key_id.as_str(), settings.secret_access_key.as_str());
    super::invoker::sign_for(&mut request, keys, "events", region, &body).map_err(|e| (false, e))?;
    let response = tokio::time::timeout(CALL_TIMEOUT, client.request(request))
        .await
        .map_err(|_| (true, "the call timed out".to_string()))?
        .map_err(|e| (true, format!("the endpoint cannot be reached: {e}")))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>();
        return Err((status.is_server_error(), format!("the endpoint answered {status}: {text}")));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}
