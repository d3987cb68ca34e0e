//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver (ChromeDriver) with
//! fantoccini. Elements are found by what a person sees and a screen reader announces (labels, visible text), not by
//! CSS classes. Each test saves a screenshot under `target/dashboard/` for a person to look at.
//!
//! Needs `chromium` and `chromedriver` on the PATH (Debian's `chromium` and `chromium-driver`; `.ci/run` installs
//! them).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::TestServer;

/// A headless Chromium session and the ChromeDriver that runs it.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
}

impl Browser {
    pub(crate) async fn open() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (install Debian's chromium and chromium-driver; .ci/run does)");
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("chromium");
        // Without the background-networking flags Chromium keeps trying to reach Google's hosts.
        let options = json!({"binary": binary, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1200,800"
        ]});
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if started.elapsed() > Duration::from_secs(20) => panic!("no browser session: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        Browser { client, driver }
    }

    /// Waits until `what` holds of the page, failing with a screenshot after 10 s.
    pub(crate) async fn until<T>(&self, what: &str, name: &str, mut check: impl AsyncFnMut(&Client) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = check(&self.client).await {
                return found;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("{name}-failed")).await;
                panic!("the page never showed {what}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Clicks the button whose accessible name (its visible text) is `name`.
    /// A live update may redraw the element between finding and clicking it: then it is found again.
    pub(crate) async fn press(&self, name: &str) {
        let path = format!("//button[normalize-space()='{name}']");
        self.until(&format!("a {name} button to click"), name, async |client| {
            client.find(Locator::XPath(&path)).await.ok()?.click().await.ok()
        })
        .await;
    }

    /// Clicks the link whose text is `text`.
    pub(crate) async fn follow(&self, text: &str) {
        self.until(&format!("a {text} link to follow"), text, async |client| {
            client.find(Locator::LinkText(text)).await.ok()?.click().await.ok()
        })
        .await;
    }

    /// Waits until the element `id` shows text containing `wanted`; returns that text.
    pub(crate) async fn until_text(&self, id: &str, wanted: &str, name: &str) -> String {
        self.until(&format!("'{wanted}' in #{id}"), name, async |client| {
            let found = client.find(Locator::Id(id)).await.ok()?;
            found.text().await.ok().filter(|t| t.contains(wanted))
        })
        .await
    }

    /// The text of the dashboard row of `pipeline`, if it is shown.
    pub(crate) async fn row(&self, pipeline: &str) -> Option<String> {
        let path = format!("//table[@id='pipelines']//tr[th[normalize-space()='{pipeline}']]");
        let row = self.client.find(Locator::XPath(&path)).await.ok()?;
        if !row.is_displayed().await.ok()? {
            return None;
        }
        row.text().await.ok()
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("dashboard");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }

    pub(crate) async fn script(&self, source: &str) -> Value {
        self.client.execute(source, Vec::new()).await.expect("the script runs")
    }

    pub(crate) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// The dashboard's address of `pipeline`'s view, in the default account and region.
pub(crate) fn pipeline_view(server: &TestServer, pipeline: &str) -> String {
    format!("{}/_emulator/ui/#account=000000000000&region=us-east-1&pipeline={pipeline}", server.url())
}

/// A pipeline whose execution waits at a manual approval.
pub(crate) fn gated(name: &str) -> String {
    json!({"pipeline": {
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Out"}]}]},
            {"name": "Gate", "actions": [{"name": "Approve",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}
        ]
    }})
    .to_string()
}

#[tokio::test]
async fn the_pipeline_list_follows_an_execution_live_and_loads_nothing_from_elsewhere() {
    let server = TestServer::fast().await;
    for name in ["web-frontend", "api-service"] {
        assert_eq!(server.call("CreatePipeline", &gated(name)).await.status, 200);
    }
    let browser = Browser::open().await;
    // A browser opening the server's address is sent to the dashboard.
    browser.client.goto(&format!("{}/", server.url())).await.expect("opens");
    let address = browser.client.current_url().await.expect("an address");
    assert!(address.path().starts_with("/_emulator/ui/"), "{address}");
    browser
        .until("the execution waiting at its approval", "live", async |_| {
            browser.row("web-frontend").await.filter(|t| t.contains("InProgress"))
        })
        .await;
    browser
        .until("the stream connected", "live", async |client| {
            let live = client.find(Locator::XPath("//*[@role='status']")).await.ok()?;
            live.text().await.ok().filter(|t| t == "Live")
        })
        .await;

    // The approval is answered through the API; the page shows the outcome without being reloaded.
    let client = server.client();
    let state = client.get_pipeline_state().name("web-frontend").send().await.expect("state");
    let token = state.stage_states()[1].action_states()[0]
        .latest_execution()
        .and_then(|e| e.token())
        .expect("an approval token")
        .to_string();
    let result = aws_sdk_codepipeline::types::ApprovalResult::builder()
        .summary("ok")
        .status(aws_sdk_codepipeline::types::ApprovalStatus::Approved)
        .build()
        .expect("a result");
    client
        .put_approval_result()
        .pipeline_name("web-frontend")
        .stage_name("Gate")
        .action_name("Approve")
        .token(token)
        .result(result)
        .send()
        .await
        .expect("approved");
    let answered = Instant::now();
    browser
        .until("the execution succeeded", "live", async |_| {
            browser.row("web-frontend").await.filter(|t| t.contains("Succeeded"))
        })
        .await;
    eprintln!(
        "dashboard: the status change showed {} ms after the approval was answered",
        answered.elapsed().as_millis()
    );
    assert!(browser.row("api-service").await.is_some_and(|t| t.contains("InProgress")), "the other pipeline stays");
    let reloads = browser.script("return performance.getEntriesByType('navigation').length").await;
    assert_eq!(reloads, json!(1), "the page was not reloaded");

    // Everything the page loaded came from this server.
    let loaded = browser.script("return performance.getEntriesByType('resource').map(e => e.name)").await;
    let origin = server.url();
    for url in loaded.as_array().expect("a list") {
        let url = url.as_str().unwrap_or_default();
        assert!(url.starts_with(&origin), "the page loaded {url} from elsewhere");
    }
    browser.screenshot("pipelines").await;
    browser.close().await;
}

#[tokio::test]
async fn the_filter_and_the_pickers_are_labelled_and_work_from_the_keyboard() {
    let server = TestServer::fast().await;
    for name in ["web-frontend", "web-backend", "api-service"] {
        assert_eq!(server.call("CreatePipeline", &gated(name)).await.status, 200);
    }
    let browser = Browser::open().await;
    browser.client.goto(&format!("{}/_emulator/ui/", server.url())).await.expect("opens");
    browser.until("the pipelines", "filter", async |_| browser.row("api-service").await).await;
    // Each control is named by its visible label.
    for label in ["Account", "Region", "Filter"] {
        let path = format!("//label[normalize-space(text())='{label}']/*[self::select or self::input]");
        browser.client.find(Locator::XPath(&path)).await.unwrap_or_else(|_| panic!("a control labelled {label}"));
    }
    let filter = browser
        .client
        .find(Locator::XPath("//label[normalize-space(text())='Filter']/input"))
        .await
        .expect("the filter");
    filter.send_keys("web").await.expect("typed");
    browser
        .until("only the matching pipelines", "filter", async |_| {
            browser.row("api-service").await.is_none().then_some(())
        })
        .await;
    assert!(browser.row("web-frontend").await.is_some() && browser.row("web-backend").await.is_some());
    // The filter is kept in the address, so a link or a reload opens the same view.
    let address = browser.client.current_url().await.expect("an address");
    assert!(address.fragment().is_some_and(|f| f.contains("filter=web")), "{address}");
    browser.screenshot("filter").await;
    browser.close().await;
}

#[tokio::test]
async fn a_pipeline_created_through_the_sdk_reaches_its_approval_which_is_approved_by_clicking() {
    let server = TestServer::fast().await;
    let browser = Browser::open().await;
    browser.client.goto(&format!("{}/_emulator/ui/", server.url())).await.expect("opens");
    // Created while the page is open: it appears without a reload.
    let declared: Value = serde_json::from_str(&gated("web-frontend")).expect("json");
    let declaration = crate::sdk_json::pipeline(&declared["pipeline"]);
    server.client().create_pipeline().pipeline(declaration).send().await.expect("created");
    // The pipeline's name in the list opens its view.
    // Found and clicked again if the live list redraws it in between.
    browser
        .until("the pipeline's link", "approve", async |client| {
            let path = "//table[@id='pipelines']//a[normalize-space()='web-frontend']";
            client.find(Locator::XPath(path)).await.ok()?.click().await.ok()
        })
        .await;
    let approve = browser
        .until("the Approve button", "approve", async |client| {
            client.find(Locator::XPath("//button[normalize-space()='Approve']")).await.ok()
        })
        .await;
    assert!(browser.client.find(Locator::XPath("//button[normalize-space()='Reject']")).await.is_ok());
    let comment = browser
        .client
        .find(Locator::XPath("//label[normalize-space(text())='Comment']/input"))
        .await
        .expect("a labelled comment box");
    comment.send_keys("Looks good to me").await.expect("typed");
    browser.screenshot("approval").await;
    approve.click().await.expect("clicked");
    browser.until_text("execution", "Succeeded", "approve").await;
    let state = server.client().get_pipeline_state().name("web-frontend").send().await.expect("state");
    let gate = &state.stage_states()[1].action_states()[0];
    assert_eq!(gate.latest_execution().and_then(|e| e.summary()), Some("Looks good to me"));
    browser.screenshot("approved").await;
    browser.close().await;
}

#[tokio::test]
async fn a_held_action_is_failed_from_the_page() {
    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"action": "Source", "outcome": "hold"}])).await;
    assert_eq!(server.call("CreatePipeline", &gated("held")).await.status, 200);
    let browser = Browser::open().await;
    let view = pipeline_view(&server, "held");
    browser.client.goto(&view).await.expect("opens");
    let fail = browser
        .until("the held action's Fail button", "held", async |client| {
            client.find(Locator::XPath("//div[@data-action='Source']//button[normalize-space()='Fail']")).await.ok()
        })
        .await;
    assert!(
        browser
            .client
            .find(Locator::XPath("//div[@data-action='Source']//button[normalize-space()='Succeed']"))
            .await
            .is_ok()
    );
    // From the keyboard: Enter on the focused button acts as a click.
    let enter: char = fantoccini::key::Key::Enter.into();
    fail.send_keys(&enter.to_string()).await.expect("pressed");
    let error = browser
        .until("the action's error", "held", async |client| {
            let card = client.find(Locator::XPath("//div[@data-action='Source']")).await.ok()?;
            card.text().await.ok().filter(|t| t.contains("Failed from the dashboard"))
        })
        .await;
    assert!(error.contains("JobFailed"), "{error}");
    let executions = server.client().list_pipeline_executions().pipeline_name("held").send().await.expect("listed");
    assert_eq!(executions.pipeline_execution_summaries()[0].status().map(|s| s.as_str()), Some("Failed"));
    browser
        .until("the failed stage's retry buttons", "held", async |client| {
            client.find(Locator::XPath("//button[normalize-space()='Retry failed actions']")).await.ok()
        })
        .await;
    browser.screenshot("held-failed").await;
    browser.close().await;
}

#[tokio::test]
async fn the_history_lists_executions_newest_first_and_opens_a_timeline() {
    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"action": "Source", "outcome": "fail", "message": "no such object"}])).await;
    assert_eq!(server.call("CreatePipeline", &gated("shop")).await.status, 200);
    let client = server.client();
    let started = client.start_pipeline_execution().name("shop").send().await.expect("started");
    let newest = started.pipeline_execution_id().expect("an id").to_string();
    let browser = Browser::open().await;
    let view = pipeline_view(&server, "shop");
    browser.client.goto(&view).await.expect("opens");
    let rows = browser
        .until("two failed executions in the history", "history", async |client| {
            let rows = client.find_all(Locator::XPath("//table[@id='history']/tbody/tr")).await.ok()?;
            let mut texts = Vec::new();
            for row in rows {
                texts.push(row.text().await.ok()?);
            }
            (texts.len() == 2 && texts.iter().all(|t| t.contains("Failed"))).then_some(texts)
        })
        .await;
    assert!(rows[0].contains(&newest) && rows[0].contains("StartPipelineExecution"), "newest first: {rows:?}");
    // Its S3 source polls: polling started the first execution, as on AWS.
    assert!(rows[1].contains("PollForSourceChanges"), "{rows:?}");
    let open = browser
        .client
        .find(Locator::XPath(&format!("//button[normalize-space()='{newest}']")))
        .await
        .expect("the execution's button");
    open.click().await.expect("clicked");
    let timeline = browser
        .until("the execution's timeline", "history", async |client| {
            let table = client.find(Locator::XPath("//div[@id='timeline']//tbody")).await.ok()?;
            table.text().await.ok().filter(|t| t.contains("Source"))
        })
        .await;
    assert!(timeline.contains("Failed"), "{timeline}");
    // The stage has a row of its own, before its action's.
    let stage_row =
        browser.client.find(Locator::XPath("//div[@id='timeline']//tbody/tr[1]")).await.expect("a first row");
    let stage_text = stage_row.text().await.expect("text");
    assert!(stage_text.contains("Source") && stage_text.contains("Stage"), "{stage_text}");
    // The failed action's error is on its row at a glance; its configuration is folded in its details.
    assert!(timeline.contains("no such object"), "the error is visible without opening anything: {timeline}");
    let summary = browser
        .client
        .find(Locator::XPath("//div[@id='timeline']//summary[normalize-space()='Configuration and result']"))
        .await
        .expect("the details");
    summary.click().await.expect("opened");
    let details = browser.client.find(Locator::XPath("//div[@id='timeline']//details")).await.expect("details");
    let text = details.text().await.expect("text");
    assert!(text.contains("S3Bucket"), "{text}");
    browser.screenshot("history").await;
    browser.close().await;
}

#[tokio::test]
async fn the_events_panel_filters_live_events_and_the_emulator_view_sets_rules_and_the_clock() {
    let server = TestServer::fast().await;
    for name in ["web-frontend", "api-service"] {
        assert_eq!(server.call("CreatePipeline", &gated(name)).await.status, 200);
    }
    let browser = Browser::open().await;
    browser.client.goto(&format!("{}/_emulator/ui/", server.url())).await.expect("opens");
    browser.until("the pipelines", "events", async |_| browser.row("api-service").await).await;
    browser.follow("Events").await;
    let events = "//table[@id='events']/tbody/tr";
    browser
        .until("the kept events of both pipelines", "events", async |client| {
            let text = client.find(Locator::XPath("//table[@id='events']/tbody")).await.ok()?.text().await.ok()?;
            (text.contains("web-frontend") && text.contains("api-service")).then_some(())
        })
        .await;
    let filter = browser
        .client
        .find(Locator::XPath("//label[normalize-space(text())='Pipeline']/input"))
        .await
        .expect("the pipeline filter");
    filter.send_keys("api").await.expect("typed");
    browser
        .until("only api-service's events", "events", async |client| {
            let rows = client.find_all(Locator::XPath(events)).await.ok()?;
            let mut all = true;
            for row in &rows {
                all &= row.text().await.ok()?.contains("api-service");
            }
            (all && !rows.is_empty()).then_some(())
        })
        .await;
    // A new event arrives live, without a reload.
    let started = server.call("StartPipelineExecution", r#"{"name": "api-service"}"#).await.json();
    let id = started["pipelineExecutionId"].as_str().expect("an id").to_string();
    browser
        .until("the new execution's events", "events", async |client| {
            let first = client.find(Locator::XPath(&format!("{events}[1]"))).await.ok()?;
            first.text().await.ok().filter(|t| t.contains(&id))
        })
        .await;
    browser.screenshot("events").await;

    browser.follow("Emulator").await;
    let rules = browser
        .until("the rules editor", "emulator", async |client| {
            client.find(Locator::XPath("//textarea[@id='behaviors']")).await.ok()
        })
        .await;
    rules.clear().await.expect("cleared");
    rules.send_keys(r#"[{"action": "Deploy*", "outcome": "hold"}]"#).await.expect("typed");
    browser.press("Save rules").await;
    browser.until_text("behaviors-status", "Saved 1", "emulator").await;
    let saved = server.control("GET", "/_emulator/behaviors", &Value::Null).await.json();
    assert_eq!(saved["rules"][0]["outcome"], "hold", "{saved}");
    let before = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 0})).await.json();
    browser.press("Advance clock").await;
    browser.until_text("clock-now", "3600", "emulator").await;
    let after = server.control("POST", "/_emulator/clock/advance", &json!({"seconds": 0})).await.json();
    let moved = after["offsetSeconds"].as_f64().unwrap_or(0.0) - before["offsetSeconds"].as_f64().unwrap_or(0.0);
    assert!((moved - 3600.0).abs() < 1.0, "{before} -> {after}");
    browser.screenshot("emulator").await;
    browser.close().await;
}

#[tokio::test]
async fn a_stage_is_rolled_back_from_the_page_and_the_execution_shows_its_revisions() {
    let server = TestServer::fast().await;
    let body = format!(r#"{{"pipeline": {}}}"#, crate::common::pipeline_json("site"));
    assert_eq!(server.call("CreatePipeline", &body).await.status, 200);
    let browser = Browser::open().await;
    let view = pipeline_view(&server, "site");
    browser.client.goto(&view).await.expect("opens");
    // Once an execution succeeded, a stage can be rolled back to it.
    let roll_back = browser
        .until("the Roll back button", "rollback", async |client| {
            client.find(Locator::XPath("//li[@data-stage='Deploy']//button[normalize-space()='Roll back']")).await.ok()
        })
        .await;
    let revisions =
        browser.client.find(Locator::XPath("//summary[normalize-space()='Variables and source revisions']")).await;
    revisions.expect("the execution's details").click().await.expect("opened");
    let details = browser.until_text("execution-details", "SourceOutput", "rollback").await;
    assert!(details.contains("Amazon S3 version id"), "{details}");
    roll_back.click().await.expect("clicked");
    let confirm = browser
        .until("the rollback form", "rollback", async |client| {
            client.find(Locator::XPath("//button[normalize-space()='Roll back to this execution']")).await.ok()
        })
        .await;
    confirm.click().await.expect("clicked");
    browser
        .until("the rollback in the history", "rollback", async |client| {
            let history = client.find(Locator::XPath("//table[@id='history']/tbody")).await.ok()?;
            history.text().await.ok().filter(|t| t.contains("ManualRollback"))
        })
        .await;
    let executions = server.client().list_pipeline_executions().pipeline_name("site").send().await.expect("listed");
    let newest = &executions.pipeline_execution_summaries()[0];
    assert_eq!(newest.execution_type().map(|t| t.as_str()), Some("ROLLBACK"));
    browser.screenshot("rollback").await;
    browser.close().await;
}

#[tokio::test]
async fn a_held_rule_of_an_entry_condition_is_passed_from_the_page() {
    let server = TestServer::fast().await;
    server.set_behaviors(json!([{"rule": "Freeze", "outcome": "hold"}])).await;
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    let rule = json!({"name": "Freeze", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck",
        "version": "1"}, "configuration": {"Variable": "#{variables.Env}", "Operator": "EQ", "Value": "dev"}});
    let declaration = json!({"pipeline": {
        "name": "guarded", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "variables": [{"name": "Env", "defaultValue": "dev"}],
        "stages": [
            {"name": "Source", "actions": [{"name": "Source", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Out"}]}]},
            {"name": "Deploy", "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule]}]},
             "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Out"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &declaration.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let browser = Browser::open().await;
    let view = pipeline_view(&server, "guarded");
    browser.client.goto(&view).await.expect("opens");
    let succeed = "//span[@data-rule='Freeze']//button[normalize-space()='Succeed']";
    let pass = browser
        .until("the held rule's Succeed button", "rule", async |client| client.find(Locator::XPath(succeed)).await.ok())
        .await;
    browser.screenshot("rule-held").await;
    pass.click().await.expect("clicked");
    browser.until_text("execution", "Succeeded", "rule").await;
    // A live update may redraw the stage between finding it and reading it: then it is read again.
    let deploy = "//li[@data-stage='Deploy']";
    browser
        .until("the entry condition and its rule in the stage", "rule", async |client| {
            let text = client.find(Locator::XPath(deploy)).await.ok()?.text().await.ok()?;
            (text.contains("Entry condition") && text.contains("Rule Freeze")).then_some(())
        })
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_real_pipeline_shows_its_artifacts_with_downloads_and_its_stack_outputs_at_a_glance() {
    let moto = crate::moto::Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    let template = r#"{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"QueueName": {"Value": {"Fn::GetAtt": ["Q", "QueueName"]}}}}"#;
    moto.put_object("releases", "app.zip", &crate::stacks::zip(&[("template.json", template)])).await;
    let server = TestServer::with_config(crate::stacks::config(&moto, &["S3", "CLOUDFORMATION"])).await;
    let at = crate::stacks::at;
    let definition = json!({"pipeline": {
        "name": "real-view", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            crate::stacks::release_source("false"),
            {"name": "Infra", "actions": [{"name": "Stack", "actionTypeId": at("Deploy", "CloudFormation"),
                "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "queue-stack", "TemplatePath": "App::template.json"},
                "inputArtifacts": [{"name": "App"}]}]}
        ]
    }});
    assert_eq!(server.call("CreatePipeline", &definition.to_string()).await.status, 200);
    let (status, id) = crate::stacks::ended(&server, "real-view", 1).await;
    assert_eq!(status, "Succeeded");
    let browser = Browser::open().await;
    browser.client.goto(&pipeline_view(&server, "real-view")).await.expect("opens");
    browser.press(&id).await;
    let timeline = browser
        .until("the timeline with the stack's outputs", "real-view", async |client| {
            let table = client.find(Locator::XPath("//div[@id='timeline']//tbody")).await.ok()?;
            table.text().await.ok().filter(|t| t.contains("QueueName"))
        })
        .await;
    assert!(timeline.contains("out App: s3://artifacts/real-view/App/"), "the source's output: {timeline}");
    assert!(timeline.contains("in App: s3://artifacts/real-view/App/"), "the deploy's input: {timeline}");
    // The download link serves the zip from the neighbour, through the emulator.
    let link = browser.client.find(Locator::XPath("//a[@aria-label='Download App']")).await.expect("a download link");
    let href = link.attr("href").await.expect("an href").expect("a link");
    let fetched = browser
        .client
        .execute(
            "return fetch(arguments[0]).then(async r => [r.status, r.headers.get('content-type'), \
             new Uint8Array(await r.arrayBuffer()).slice(0, 2).join(',')]);",
            vec![json!(href)],
        )
        .await
        .expect("fetched");
    assert_eq!(fetched, json!([200, "application/zip", "80,75"]), "a zip (PK) from {href}");
    let scrolled = "document.getElementById('timeline').scrollIntoView(); return true;";
    browser.client.execute(scrolled, vec![]).await.expect("scrolls");
    browser.screenshot("real-artifacts").await;
    browser.close().await;

    // Only artifact stores are served.
    let refused = server.control("GET", "/_emulator/artifacts?bucket=releases&key=app.zip", &json!({})).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let missing = server.control("GET", "/_emulator/artifacts?bucket=artifacts&key=nothing.zip", &json!({})).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
}

#[tokio::test]
async fn a_running_build_s_log_is_followed_beside_its_action() {
    let markers = std::env::temp_dir().join(format!("cpl-browser-build-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&markers).expect("a directory");
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo compiling widgets\n      - while [ ! -f {m}/go ]; do sleep 0.05; done\n      - echo widgets compiled\n",
        m = markers.display()
    );
    let moto = crate::moto::Moto::start().await;
    moto.create_bucket("artifacts").await;
    moto.seed_source("releases", "app.zip").await;
    moto.put_object("releases", "app.zip", &crate::stacks::zip(&[("buildspec.yml", &spec)])).await;
    let config = codepipeline_local::Config { run_builds: true, ..crate::stacks::config(&moto, &["S3"]) };
    let server = TestServer::with_config(config).await;
    let at = crate::stacks::at;
    let definition = json!({"pipeline": {
        "name": "live-build", "roleArn": "arn:aws:iam::123456789012:role/r",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [crate::stacks::release_source("false"),
            {"name": "Build", "actions": [{"name": "Compile", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "widgets"}, "inputArtifacts": [{"name": "App"}]}]}]
    }});
    assert_eq!(server.call("CreatePipeline", &definition.to_string()).await.status, 200);
    let listed = crate::common::eventually("the execution", || async {
        let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "live-build"}"#).await.json();
        listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().map(String::from)
    })
    .await;
    let browser = Browser::open().await;
    browser.client.goto(&pipeline_view(&server, "live-build")).await.expect("opens");
    browser.press(&listed).await;
    browser.press("Show build log").await;
    browser
        .until("the build's first line", "build-log", async |client| {
            let log = client.find(Locator::XPath("//pre[@aria-label='Build log of Compile']")).await.ok()?;
            log.text().await.ok().filter(|t| t.contains("compiling widgets"))
        })
        .await;
    std::fs::write(markers.join("go"), "").expect("writes");
    let text = browser
        .until("the line printed while following", "build-log", async |client| {
            let log = client.find(Locator::XPath("//pre[@aria-label='Build log of Compile']")).await.ok()?;
            log.text().await.ok().filter(|t| t.contains("widgets compiled"))
        })
        .await;
    assert!(text.contains("Entering phase BUILD"), "{text}");
    let scrolled = "document.querySelector('.build-log pre').scrollIntoView({block: 'center'}); return true;";
    browser.client.execute(scrolled, vec![]).await.expect("scrolls");
    browser.screenshot("build-log").await;
    browser.close().await;
    let _ = std::fs::remove_dir_all(&markers);
}
