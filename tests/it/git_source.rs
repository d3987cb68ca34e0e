//! A local git repository as a source (`--git-repo NAME=PATH`), with no neighbour at all: the source archives the
//! branch's head (or the commit the execution names) with its real id and message, and a build runs its buildspec.

use std::path::Path;
use std::process::Command;

use codepipeline_local::Config;
use serde_json::json;

use crate::common::TestServer;
use crate::stacks::{action_state, at, ended};

fn git(repo: &Path, args: &[&str]) -> String {
    let output = Command::new("git").arg("-C").arg(repo).args(args).output().expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        std::fs::write(repo.join(name), text).expect("writes");
    }
    git(repo, &["add", "-A"]);
    git(repo, &["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn a_commit_in_a_local_repository_runs_its_buildspec_with_no_neighbour() {
    let repo = std::env::temp_dir().join(format!("cpl-git-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&repo).expect("a directory");
    git(&repo, &["init", "-q", "-b", "main"]);
    let spec = "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands:\n      - export VERSION=$(cat VERSION)\n";
    let first = commit(&repo, &[("buildspec.yml", spec), ("VERSION", "1.0")], "First release");
    let config = Config {
        action_duration_ms: 5,
        run_builds: true,
        git_repos: vec![format!("acme/widgets={}", repo.display()), format!("widgets={}", repo.display())],
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let definition = json!({"pipeline": {
        "name": "from-git", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "local-artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Checkout", "namespace": "Source",
                "actionTypeId": at("Source", "CodeStarSourceConnection"),
                "configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/1",
                    "FullRepositoryId": "acme/widgets", "BranchName": "main"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [{"name": "Compile", "namespace": "Build", "actionTypeId": at("Build", "CodeBuild"),
                "configuration": {"ProjectName": "widgets"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    }});
    let created = server.call("CreatePipeline", &definition.to_string()).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, id) = ended(&server, "from-git", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "from-git", 1).await);
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "from-git", "pipelineExecutionId": id}).to_string())
        .await
        .json();
    let revision = &execution["pipelineExecution"]["artifactRevisions"][0];
    assert_eq!(revision["revisionId"].as_str(), Some(first.as_str()), "the real commit: {revision}");
    assert!(revision["revisionSummary"].as_str().is_some_and(|s| s.contains("First release")), "{revision}");
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "from-git"}"#).await.json();
    let details = listed["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
    let variables =
        |name: &str| details.iter().find(|d| d["actionName"] == name).map(|d| d["output"]["outputVariables"].clone());
    assert_eq!(variables("Compile").expect("built")["VERSION"], "1.0");
    let source = variables("Checkout").expect("checked out");
    assert_eq!(source["CommitId"].as_str(), Some(first.as_str()));
    assert_eq!(source["CommitMessage"], "First release");

    // A new commit: the next run builds it.
    let second = commit(&repo, &[("VERSION", "1.1")], "Second release");
    server.call("StartPipelineExecution", r#"{"name": "from-git"}"#).await;
    let (status, _) = ended(&server, "from-git", 2).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "from-git"}"#).await.json();
    let latest = listed["actionExecutionDetails"].as_array().cloned().unwrap_or_default();
    let compile = latest.iter().find(|d| d["actionName"] == "Compile").cloned().expect("built again");
    assert_eq!(compile["output"]["outputVariables"]["VERSION"], "1.1");
    let checkout = latest.iter().find(|d| d["actionName"] == "Checkout").cloned().expect("checked out again");
    assert_eq!(checkout["output"]["outputVariables"]["CommitId"].as_str(), Some(second.as_str()));

    // A commit without a message: no empty summary or CommitMessage, which the model does not allow (issue 28).
    let who = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"];
    git(&repo, &[&who[..], &["commit", "-q", "--allow-empty", "--allow-empty-message", "-m", ""]].concat());
    let mut quiet = definition.clone();
    quiet["pipeline"]["name"] = json!("quiet-git");
    quiet["pipeline"]["stages"][0]["actions"][0]["actionTypeId"] = at("Source", "CodeCommit");
    quiet["pipeline"]["stages"][0]["actions"][0]["configuration"] =
        json!({"RepositoryName": "widgets", "BranchName": "main", "PollForSourceChanges": "false"});
    server.call("CreatePipeline", &quiet.to_string()).await;
    let (status, id) = ended(&server, "quiet-git", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "quiet-git", 0).await);
    let execution = server
        .call("GetPipelineExecution", &json!({"pipelineName": "quiet-git", "pipelineExecutionId": id}).to_string())
        .await
        .json();
    let revision = &execution["pipelineExecution"]["artifactRevisions"][0];
    assert!(revision["revisionId"].is_string() && revision.get("revisionSummary").is_none(), "{revision}");
    let listed = server.call("ListActionExecutions", r#"{"pipelineName": "quiet-git"}"#).await.json();
    let checkout = listed["actionExecutionDetails"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["actionName"] == "Checkout"))
        .cloned()
        .unwrap_or_default();
    assert!(checkout["output"]["outputVariables"].get("CommitMessage").is_none(), "{checkout}");

    // A branch the repository does not have fails the source, naming it.
    let mut other = definition.clone();
    other["pipeline"]["name"] = json!("no-branch");
    other["pipeline"]["stages"][0]["actions"][0]["configuration"]["BranchName"] = json!("release");
    server.call("CreatePipeline", &other.to_string()).await;
    let (status, _) = ended(&server, "no-branch", 1).await;
    assert_eq!(status, "Failed");
    let state = action_state(&server, "no-branch", 0).await;
    assert_eq!(state["errorDetails"]["code"], "ConfigurationError", "{state}");
    assert!(state["errorDetails"]["message"].as_str().is_some_and(|m| m.contains("the branch release")), "{state}");

    // A path that is not a repository stops the server at start.
    let refused = codepipeline_local::app::AppState::new(Config {
        git_repos: vec!["x/y=/nonexistent".into()],
        ..Config::default()
    });
    assert!(refused.err().map(|e| e.to_string()).is_some_and(|e| e.contains("is not a git repository")));
    let _ = std::fs::remove_dir_all(&repo);
}

#[tokio::test]
async fn a_watched_repository_s_new_commits_are_pushes_with_their_changed_files() {
    let repo = std::env::temp_dir().join(format!("cpl-git-watch-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(repo.join("src")).expect("a directory");
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, &[("README.md", "hello"), ("src/app.txt", "1")], "Initial");
    let config = Config {
        action_duration_ms: 5,
        git_repos: vec![format!("acme/widgets={}", repo.display())],
        watch_git_repos: true,
        poll_interval: std::time::Duration::from_millis(20),
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let definition = json!({"pipeline": {
        "name": "watched", "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2",
        "artifactStore": {"type": "S3", "location": "local-artifacts"},
        "triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Checkout",
            "push": [{"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"]}}]}}],
        "stages": [
            {"name": "Source", "actions": [{"name": "Checkout", "actionTypeId": at("Source", "CodeStarSourceConnection"),
                "configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/1",
                    "FullRepositoryId": "acme/widgets", "BranchName": "main"},
                "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Ship", "actions": [{"name": "Deploy", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    }});
    assert_eq!(server.call("CreatePipeline", &definition.to_string()).await.status, 200);
    ended(&server, "watched", 1).await;

    // A commit outside the trigger's file paths starts nothing; one inside starts the pipeline on that commit.
    commit(&repo, &[("README.md", "hello again")], "Docs only");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "watched"}"#).await.json();
    assert_eq!(listed["pipelineExecutionSummaries"].as_array().map(Vec::len), Some(1), "{listed}");
    let pushed = commit(&repo, &[("src/app.txt", "2")], "Change the app");
    let (status, _) = ended(&server, "watched", 2).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "watched"}"#).await.json();
    let latest = &listed["pipelineExecutionSummaries"][0];
    assert_eq!(latest["sourceRevisions"][0]["revisionId"].as_str(), Some(pushed.as_str()), "{latest}");
    assert_eq!(latest["trigger"]["triggerType"], "WebhookV2", "{latest}");
    let _ = std::fs::remove_dir_all(&repo);
}

#[tokio::test]
async fn the_local_git_example_builds_each_commit() {
    let repo = std::env::temp_dir().join(format!("cpl-git-example-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&repo).expect("a directory");
    git(&repo, &["init", "-q", "-b", "main"]);
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && cat VERSION > out/version.txt\nartifacts:\n  files: [out/version.txt]\n";
    commit(&repo, &[("buildspec.yml", spec), ("VERSION", "1")], "First");
    let config = Config {
        action_duration_ms: 5,
        run_builds: true,
        watch_git_repos: true,
        poll_interval: std::time::Duration::from_millis(20),
        git_repos: vec![format!("me/app={}", repo.display())],
        ..Config::default()
    };
    let server = TestServer::with_config(config).await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local-git/pipeline.json");
    let definition = std::fs::read_to_string(path).expect("the example");
    let created = server.call("CreatePipeline", &definition).await;
    assert_eq!(created.status, 200, "{}", created.text());
    let (status, _) = ended(&server, "local-build", 1).await;
    assert_eq!(status, "Succeeded", "{}", action_state(&server, "local-build", 1).await);
    let pushed = commit(&repo, &[("VERSION", "2")], "Second");
    let (status, _) = ended(&server, "local-build", 2).await;
    assert_eq!(status, "Succeeded");
    let listed = server.call("ListPipelineExecutions", r#"{"pipelineName": "local-build"}"#).await.json();
    assert_eq!(
        listed["pipelineExecutionSummaries"][0]["sourceRevisions"][0]["revisionId"].as_str(),
        Some(pushed.as_str())
    );
    let _ = std::fs::remove_dir_all(&repo);
}
