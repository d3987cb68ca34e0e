//! The dashboard on a server that checks signatures and policies (issue 30, item 4): it asks for a principal's keys,
//! signs every request as that principal (the AWS endpoint, the control endpoints, and the event stream's URL), and
//! can do what the principal may, no more.

use codepipeline_local::config::Config;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{Browser, gated};
use crate::common::TestServer;

const DEPLOYER: (&str, &str) = ("AKIADEPLOYER00000001", "deployer-secret");
const AUDITOR: (&str, &str) = ("AKIAAUDITOR000000002", "auditor-secret");

async fn enforcing() -> TestServer {
    let file = std::env::temp_dir().join(format!("cpl-dashboard-{}.json", uuid::Uuid::new_v4()));
    let principals = json!({"principals": [
        {"accessKeyId": DEPLOYER.0, "secretAccessKey": DEPLOYER.1, "account": "111111111111",
         "arn": "arn:aws:iam::111111111111:user/deployer", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["codepipeline:*", "iam:PassRole"], "Resource": "*"}]}]},
        {"accessKeyId": AUDITOR.0, "secretAccessKey": AUDITOR.1, "account": "111111111111",
         "arn": "arn:aws:iam::111111111111:user/auditor", "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["codepipeline:Get*", "codepipeline:List*"], "Resource": "*"}]}]}]});
    std::fs::write(&file, principals.to_string()).expect("writes");
    let config = Config { enforce_iam: true, credentials: Some(file), action_duration_ms: 5, ..Config::default() };
    TestServer::with_config(config).await
}

async fn sign_in(browser: &Browser, (key, secret): (&str, &str)) {
    let field = async |label: &str, text: &str| {
        let path = format!("//label[starts-with(normalize-space(), '{label}')]/input");
        let input = browser.client.find(Locator::XPath(&path)).await.expect("a labelled field");
        input.clear().await.expect("cleared");
        input.send_keys(text).await.expect("typed");
    };
    browser.until_text("sign-in-title", "Sign in", "signed-sign-in").await;
    browser.screenshot("sign-in").await;
    field("Access key ID", key).await;
    field("Secret access key", secret).await;
    browser.press("Sign in").await;
}

#[tokio::test]
async fn the_dashboard_signs_as_the_principal_it_is_given_and_can_do_what_it_may() {
    let server = enforcing().await;
    let deployer = crate::common::keyed_client(&server.url(), "us-east-1", DEPLOYER, None);
    let declared: Value = serde_json::from_str(&gated("web-frontend")).expect("json");
    deployer
        .create_pipeline()
        .pipeline(crate::sdk_json::pipeline(&declared["pipeline"]))
        .send()
        .await
        .expect("created");

    let browser = Browser::open().await;
    browser.client.goto(&format!("{}/_emulator/ui/", server.url())).await.expect("opens");
    // Unsigned, the page asks for keys; signed in as the auditor, it lists the account's pipelines, live.
    sign_in(&browser, AUDITOR).await;
    browser.until("the pipeline in the list", "signed-list", async |_| browser.row("web-frontend").await).await;
    browser.until_text("live", "Live", "signed-live").await;
    browser.screenshot("signed-in-auditor").await;
    browser.follow("web-frontend").await;
    browser.press("Approve").await;
    let refusal = "is not authorized to perform: codepipeline:PutApprovalResult";
    browser
        .until("the refusal", "signed-refused", async |client| {
            let text = client.find(Locator::Css("body")).await.ok()?.text().await.ok()?;
            text.contains(refusal).then_some(())
        })
        .await;
    browser.screenshot("signed-in-auditor-refused").await;

    // Signed in again as the deployer (the page comes back to the same view), the same click approves.
    browser.press("Sign out").await;
    sign_in(&browser, DEPLOYER).await;
    browser.press("Approve").await;
    browser.until_text("execution", "Succeeded", "signed-approved").await;
    browser.close().await;
}
