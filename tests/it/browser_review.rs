//! The dashboard shows what a reviewer needs (issue 29): an approval's facts above its comment box, failures on their
//! rows, the emulator clock, stages as a flow.

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{Browser, gated, pipeline_view};
use crate::common::TestServer;

#[tokio::test]
async fn a_waiting_approval_shows_its_custom_data_link_wait_and_timeout_above_the_comment_box() {
    let server = TestServer::fast().await;
    let mut declared: Value = serde_json::from_str(&gated("review")).expect("json");
    declared["pipeline"]["stages"][1]["actions"][0]["configuration"] =
        json!({"CustomData": "Check the staging site", "ExternalEntityLink": "https://staging.example.test/42"});
    assert_eq!(server.call("CreatePipeline", &declared.to_string()).await.status, 200);
    crate::common::eventually("the approval to wait", || async {
        let state = server.call("GetPipelineState", r#"{"name": "review"}"#).await.json();
        state["stageStates"][1]["actionStates"][0]["latestExecution"]["token"].as_str().map(str::to_string)
    })
    .await;
    // Two hours later on the emulator clock.
    server.advance_clock(7200.0).await;
    let browser = Browser::open().await;
    browser.client.goto(&pipeline_view(&server, "review")).await.expect("opens");
    let facts = browser
        .until("the approval's facts", "review", async |client| {
            let facts = client.find(Locator::XPath("//div[@data-action='Approve']//dl[@class='facts']")).await.ok()?;
            facts.text().await.ok().filter(|t| t.contains("Times out"))
        })
        .await;
    assert!(facts.contains("Check the staging site"), "{facts}");
    assert!(facts.contains("Waiting\n2 h") || facts.contains("Waiting 2 h"), "waited on the emulator clock: {facts}");
    assert!(facts.contains("in 6 d 21 h") || facts.contains("in 6 d 22 h"), "seven days after it began: {facts}");
    let link = browser
        .client
        .find(Locator::XPath("//dl[@class='facts']//a[normalize-space()='https://staging.example.test/42']"))
        .await
        .expect("the link is a link");
    assert_eq!(link.attr("href").await.ok().flatten().as_deref(), Some("https://staging.example.test/42"));
    // The facts come before the comment box.
    let order = browser
        .script(
            "const facts = document.querySelector('.approval .facts'); const box = document.querySelector('.approval input');\
             return Boolean(facts.compareDocumentPosition(box) & Node.DOCUMENT_POSITION_FOLLOWING);",
        )
        .await;
    assert_eq!(order, json!(true));
    browser.screenshot("approval-facts").await;
    browser.close().await;
}

#[tokio::test]
async fn a_failure_shows_on_its_timeline_row_and_in_the_events_panel() {
    let server = TestServer::fast().await;
    server
        .set_behaviors(json!([{"action": "Approve", "outcome": "fail", "message": "The staging checks failed"}]))
        .await;
    let mut declared: Value = serde_json::from_str(&gated("failing")).expect("json");
    declared["pipeline"]["stages"][1]["actions"][0]["actionTypeId"] =
        json!({"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"});
    declared["pipeline"]["stages"][1]["actions"][0]["configuration"] = json!({"ProjectName": "checks"});
    declared["pipeline"]["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Out"}]);
    assert_eq!(server.call("CreatePipeline", &declared.to_string()).await.status, 200);
    let (status, id) = crate::stacks::ended(&server, "failing", 1).await;
    assert_eq!(status, "Failed");
    let browser = Browser::open().await;
    browser.client.goto(&pipeline_view(&server, "failing")).await.expect("opens");
    browser.until_text("execution", "Failed", "failure").await;
    browser
        .until("the execution's link", "failure", async |client| {
            let path = format!("//button[@aria-label='Open execution {id}']");
            client.find(Locator::XPath(&path)).await.ok()?.click().await.ok()
        })
        .await;
    // On the action's own row, not folded inside its details.
    let row_error = browser
        .until("the error on the action's row", "failure", async |client| {
            let path = "//*[@id='timeline']//tr[th[normalize-space()='Approve']]/td/p[@class='error']";
            client.find(Locator::XPath(path)).await.ok()?.text().await.ok()
        })
        .await;
    assert_eq!(row_error, "JobFailed: The staging checks failed");
    browser.screenshot("timeline-failure").await;
    browser.follow("Events").await;
    let event_error = browser
        .until("the error in the events panel", "failure", async |client| {
            let path = "//table[@id='events']//td[@class='result']/span[@class='error']";
            client.find(Locator::XPath(path)).await.ok()?.text().await.ok()
        })
        .await;
    assert_eq!(event_error, "JobFailed: The staging checks failed");
    browser.screenshot("events-failure").await;
    browser.close().await;
}

#[tokio::test]
async fn the_emulator_view_shows_its_clock_and_durations_run_on_it() {
    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"action": "Source", "outcome": "hold"}])).await;
    assert_eq!(server.call("CreatePipeline", &gated("slow")).await.status, 200);
    server.advance_clock(3600.0).await;
    let browser = Browser::open().await;
    // The running execution's duration counts the hour the emulator clock moved.
    browser.client.goto(&pipeline_view(&server, "slow")).await.expect("opens");
    let duration = browser
        .until("the running execution's duration", "clock", async |client| {
            let cell = client.find(Locator::XPath("//table[@id='history']/tbody/tr/td[4]")).await.ok()?;
            cell.text().await.ok().filter(|t| !t.is_empty())
        })
        .await;
    assert!(duration.starts_with("60 min") || duration.starts_with("61 min"), "{duration}");
    // The Emulator view shows the time and the offset as soon as it opens.
    browser.follow("Emulator").await;
    let clock = browser.until_text("clock-now", "ahead of this machine", "clock").await;
    assert!(clock.contains("1 h") && clock.contains("(3600 s)"), "{clock}");
    browser.screenshot("emulator-clock").await;
    browser.close().await;
}

#[tokio::test]
async fn stages_read_as_a_flow_with_wide_cards_one_revision_each_and_a_favicon() {
    let server = TestServer::fast().await;
    assert_eq!(server.call("CreatePipeline", &gated("flow")).await.status, 200);
    let browser = Browser::open().await;
    browser.client.goto(&pipeline_view(&server, "flow")).await.expect("opens");
    // The transition into Gate is the arrow between Source and Gate, with its control.
    let arrow = browser
        .until("the arrow into Gate", "flow", async |client| {
            let path =
                "//ol[@id='stages']/li[@data-stage='Gate']/preceding-sibling::li[1][contains(@class, 'transition')]";
            client.find(Locator::XPath(path)).await.ok()?.text().await.ok()
        })
        .await;
    assert!(arrow.contains("Disable transition"), "{arrow}");
    let first = browser.script("return document.querySelector('#stages > li').dataset.stage || 'an arrow';").await;
    assert_eq!(first, json!("Source"), "no arrow before the first stage");
    // A source card names its revision once.
    let card = browser
        .until("the source's revision", "flow", async |client| {
            let card = client.find(Locator::XPath("//div[@data-action='Source']")).await.ok()?;
            card.text().await.ok().filter(|t| t.contains("Amazon S3 version id"))
        })
        .await;
    let version = card.split("Amazon S3 version id: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
    assert!(!version.is_empty() && card.matches(version).count() == 1, "{card}");
    // A stage's one card takes the stage's width.
    let share = browser
        .script(
            "const card = document.querySelector(\"div[data-action='Source']\"); \
             return card.getBoundingClientRect().width / card.closest('li').getBoundingClientRect().width;",
        )
        .await;
    assert!(share.as_f64().is_some_and(|s| s > 0.8), "{share}");
    let icon = browser.script("const l = document.querySelector(\"link[rel='icon']\"); return l ? l.href : '';").await;
    assert!(icon.as_str().is_some_and(|h| h.starts_with("data:image/png;base64,")), "{icon}");
    browser.screenshot("flow").await;
    browser.close().await;
}
