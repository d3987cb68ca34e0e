//! Manual-approval notifications (integrations.md §2): when an approval with a `NotificationArn` starts waiting, AWS's
//! approval-needed message is published to that SNS topic through `--sns-endpoint` (SNS `Publish`, AWS query
//! protocol, SigV4), with AWS's subject line.
//!
//! Like event delivery, publishing never holds the engine: notifications go into a bounded queue, a task publishes
//! them, and failures are logged and counted (`GET /health`). UNCONFIRMED choice: a topic the endpoint refuses does
//! not fail the approval here (on AWS a missing permission or topic would).

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

use super::delivery::DeliveryStats;
use super::outbound::{Call, HttpClient, post_with_retries};
use crate::state::Timestamp;

/// How many notifications may wait to be published.
pub const QUEUE: usize = 1_000;

/// Where notifications are published, and the keys calls are signed with.
#[derive(Debug, Clone)]
pub struct SnsSettings {
    /// Base URL of the SNS API, without a trailing slash.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// What TLS neighbours are trusted.
    pub trust: crate::engine::outbound::Trust,
}

/// One approval-needed message for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub region: String,
    pub topic_arn: String,
    pub subject: String,
    pub message: String,
}

/// The message, in AWS's member order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    region: &'a str,
    console_link: String,
    approval: Approval<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Approval<'a> {
    pipeline_name: &'a str,
    stage_name: &'a str,
    action_name: &'a str,
    token: &'a str,
    expires: String,
    external_entity_link: Option<&'a str>,
    approval_review_link: String,
    custom_data: Option<&'a str>,
}

/// What an approval that starts waiting tells its topic.
pub struct Waiting<'a> {
    pub region: &'a str,
    pub pipeline: &'a str,
    pub stage: &'a str,
    pub action: &'a str,
    pub token: &'a str,
    pub topic_arn: &'a str,
    pub custom_data: Option<&'a str>,
    pub external_entity_link: Option<&'a str>,
    /// When the approval times out.
    pub expires: Timestamp,
}

/// A name as AWS puts it in the subject: its first 24 characters and `...` when longer.
fn short(name: &str) -> String {
    if name.chars().count() > 24 {
        format!("{}...", name.chars().take(24).collect::<String>())
    } else {
        name.to_string()
    }
}

/// Builds the notification.
pub fn approval_needed(waiting: &Waiting) -> Notification {
    let console_link = format!(
        "https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/view?region={}",
        waiting.pipeline, waiting.region
    );
    let expires = Utc
        .timestamp_millis_opt(waiting.expires.millis())
        .single()
        .map_or_else(String::new, |t| t.format("%Y-%m-%dT%H:%MZ").to_string());
    let message = Message {
        region: waiting.region,
        approval: Approval {
            pipeline_name: waiting.pipeline,
            stage_name: waiting.stage,
            action_name: waiting.action,
            token: waiting.token,
            expires,
            external_entity_link: waiting.external_entity_link,
            approval_review_link: format!(
                "{console_link}#/{}/{}/approve/{}",
                waiting.stage, waiting.action, waiting.token
            ),
            custom_data: waiting.custom_data,
        },
        console_link,
    };
    Notification {
        region: waiting.region.to_string(),
        topic_arn: waiting.topic_arn.to_string(),
        subject: format!(
            "APPROVAL NEEDED: AWS CodePipeline {} for action {}",
            short(waiting.pipeline),
            short(waiting.action)
        ),
        message: serde_json::to_string(&message).unwrap_or_default(),
    }
}

/// Form values: everything but RFC 3986's unreserved characters is escaped.
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The publishing task: publishes what the queue holds until it closes.
pub async fn run(settings: SnsSettings, stats: Arc<DeliveryStats>, mut queue: mpsc::Receiver<Notification>) {
    let client = super::outbound::client(&settings.trust);
    while let Some(notification) = queue.recv().await {
        match publish(&client, &settings, &notification).await {
            Ok(()) => stats.delivered.fetch_add(1, Ordering::Relaxed),
            Err(reason) => {
                tracing::warn!(topic = %notification.topic_arn, "the approval notification was not published: {reason}");
                stats.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

async fn publish(client: &HttpClient, settings: &SnsSettings, notification: &Notification) -> Result<(), String> {
    let field = |v: &str| utf8_percent_encode(v, FORM).to_string();
    let body = Bytes::from(format!(
        "Action=Publish&Version=2010-03-31&TopicArn={}&Subject={}&Message={}",
        field(&notification.topic_arn),
        field(&notification.subject),
        field(&notification.message)
    ));
    let call = Call {
        url: format!("{}/", settings.endpoint),
        headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
        keys: (&settings.access_key_id, &settings.secret_access_key),
        service: "sns",
        region: &notification.region,
    };
    post_with_retries(client, &call, body).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_and_subject_are_aws_s() {
        let waiting = Waiting {
            region: "us-east-1",
            pipeline: "web-app",
            stage: "Approve",
            action: "Gate",
            token: "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
            topic_arn: "arn:aws:sns:us-east-1:111122223333:release-approvals",
            custom_data: Some("Check the staging smoke tests first."),
            external_entity_link: None,
            expires: Timestamp::from_millis(1_772_874_960_000), // 2026-03-07T09:16:00Z
        };
        let notification = approval_needed(&waiting);
        assert_eq!(notification.subject, "APPROVAL NEEDED: AWS CodePipeline web-app for action Gate");
        assert_eq!(
            notification.message,
            r##"{"region":"us-east-1","consoleLink":"https://console.aws.amazon.com/codesuite/codepipeline/pipelines/web-app/view?region=us-east-1","approval":{"pipelineName":"web-app","stageName":"Approve","actionName":"Gate","token":"7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f","expires":"2026-03-07T09:16Z","externalEntityLink":null,"approvalReviewLink":"https://console.aws.amazon.com/codesuite/codepipeline/pipelines/web-app/view?region=us-east-1#/Approve/Gate/approve/7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f","customData":"Check the staging smoke tests first."}}"##
        );
        let long = Waiting {
            pipeline: "release-pipeline-for-web-frontend-app",
            action: "exactly-24-characters-xy",
            ..waiting
        };
        assert_eq!(
            approval_needed(&long).subject,
            "APPROVAL NEEDED: AWS CodePipeline release-pipeline-for-web... for action exactly-24-characters-xy"
        );
    }
}
