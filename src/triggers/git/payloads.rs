//! The deliveries of GitHub, GitLab and Bitbucket Cloud, read into typed payloads and turned into neutral
//! [`GitEvent`]s. Every member is optional and leniently read (a member of another type reads as absent), so that a
//! delivery missing what an event needs is answered with the member it lacks ("The delivery has no 'ref'"), and
//! members the emulator does not use are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{GitEvent, Kind, PullRequestEvent, Ref};

/// The hosting providers whose deliveries are read, as CodeConnections names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitProvider {
    GitHub,
    GitLab,
    Bitbucket,
}

impl GitProvider {
    /// The provider's name as CodeConnections spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GitProvider::GitHub => "GitHub",
            GitProvider::GitLab => "GitLab",
            GitProvider::Bitbucket => "Bitbucket",
        }
    }
}

/// The events of a delivery, and why (part of) it was ignored.
pub type Parsed = Result<(Vec<GitEvent>, Option<String>), String>;

/// A string member, or nothing (absent, null, or of another type).
fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        _ => None,
    })
}

/// The strings of an array member (its other items are skipped); nothing when it is not an array.
fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => {
            items.into_iter().filter_map(|v| if let Value::String(s) = v { Some(s) } else { None }).collect()
        }
        _ => Vec::new(),
    })
}

/// A boolean member, false unless it is `true`.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(matches!(Value::deserialize(deserializer)?, Value::Bool(true)))
}

/// An object member, or its default when it is absent, null or not an object of that shape.
fn lenient<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(T::deserialize(Value::deserialize(deserializer)?).unwrap_or_default())
}

/// A list member of objects, each read leniently; nothing when it is not an array.
fn lenient_list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => Some(items.into_iter().map(|v| T::deserialize(v).unwrap_or_default()).collect()),
        _ => None,
    })
}

/// Reads `body` as `T`, leniently (a body that is not an object reads as empty).
fn read<T: serde::de::DeserializeOwned + Default>(body: &Value) -> T {
    T::deserialize(body).unwrap_or_default()
}

fn required(value: Option<String>, path: &str) -> Result<String, String> {
    value.filter(|t| !t.is_empty()).ok_or_else(|| format!("The delivery has no '{path}'"))
}

fn ignored(reason: impl Into<String>) -> Parsed {
    Ok((Vec::new(), Some(reason.into())))
}

/// A ref (`refs/heads/x`, `refs/tags/y`).
fn reference(full: &str) -> Option<Ref> {
    if let Some(branch) = full.strip_prefix("refs/heads/") {
        Some(Ref::Branch(branch.to_string()))
    } else {
        full.strip_prefix("refs/tags/").map(|tag| Ref::Tag(tag.to_string()))
    }
}

fn pushed_ref(full: Option<String>) -> Result<Ref, String> {
    let full = required(full, "ref")?;
    reference(&full).ok_or_else(|| format!("The ref '{full}' is not a branch or a tag"))
}

fn deleted_commit(commit: &str) -> bool {
    commit.bytes().all(|b| b == b'0')
}

/// `repository` of GitHub and Bitbucket deliveries.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Repository {
    #[serde(deserialize_with = "text")]
    full_name: Option<String>,
}

/// A commit of a GitHub or GitLab push, with the files it touched.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PushedCommit {
    #[serde(deserialize_with = "text")]
    id: Option<String>,
    #[serde(deserialize_with = "text")]
    message: Option<String>,
    #[serde(deserialize_with = "text")]
    timestamp: Option<String>,
    #[serde(deserialize_with = "texts")]
    added: Vec<String>,
    #[serde(deserialize_with = "texts")]
    modified: Vec<String>,
    #[serde(deserialize_with = "texts")]
    removed: Vec<String>,
}

/// The files a push's commits added, changed or removed (GitHub and GitLab list them per commit).
fn changed_files(commits: Option<&[PushedCommit]>) -> Option<Vec<String>> {
    let mut files: Vec<String> =
        commits?.iter().flat_map(|c| c.added.iter().chain(&c.modified).chain(&c.removed)).cloned().collect();
    files.sort();
    files.dedup();
    Some(files)
}

/// A GitHub `push` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitHubPush {
    #[serde(rename = "ref", deserialize_with = "text")]
    reference: Option<String>,
    #[serde(deserialize_with = "text")]
    after: Option<String>,
    #[serde(deserialize_with = "flag")]
    deleted: bool,
    #[serde(deserialize_with = "lenient")]
    head_commit: PushedCommit,
    #[serde(deserialize_with = "lenient_list")]
    commits: Option<Vec<PushedCommit>>,
    #[serde(deserialize_with = "lenient")]
    repository: Repository,
}

/// A GitHub `pull_request` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitHubPullRequestEvent {
    #[serde(deserialize_with = "text")]
    action: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pull_request: GitHubPullRequest,
    #[serde(deserialize_with = "lenient")]
    repository: Repository,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitHubPullRequest {
    #[serde(deserialize_with = "flag")]
    merged: bool,
    #[serde(deserialize_with = "text")]
    title: Option<String>,
    #[serde(deserialize_with = "lenient")]
    head: GitHubBranch,
    #[serde(deserialize_with = "lenient")]
    base: GitHubBranch,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitHubBranch {
    #[serde(rename = "ref", deserialize_with = "text")]
    name: Option<String>,
    #[serde(deserialize_with = "text")]
    sha: Option<String>,
}

/// A GitHub delivery of `event` (its `X-GitHub-Event`): the events it carries, and why (part of) it is ignored.
pub fn github(event: &str, body: &Value) -> Parsed {
    let provider = Some(GitProvider::GitHub);
    match event {
        "ping" => ignored("A GitHub ping: the connection is reachable; nothing to start"),
        "push" => {
            let push: GitHubPush = read(body);
            let after = required(push.after, "after")?;
            if push.deleted || deleted_commit(&after) {
                return ignored("The push deletes its ref: there is nothing to build");
            }
            let reference = pushed_ref(push.reference)?;
            let event = GitEvent {
                repository: required(push.repository.full_name, "repository.full_name")?,
                connection: None,
                provider,
                kind: Kind::Push(reference),
                commit: after,
                message: push.head_commit.message,
                author_date: push.head_commit.timestamp,
                files: changed_files(push.commits.as_deref()),
            };
            Ok((vec![event], None))
        }
        "pull_request" => {
            let delivery: GitHubPullRequestEvent = read(body);
            let action = required(delivery.action, "action")?;
            let pr = delivery.pull_request;
            let event = match action.as_str() {
                "opened" | "reopened" => PullRequestEvent::Open,
                "synchronize" => PullRequestEvent::Updated,
                "closed" if pr.merged => PullRequestEvent::Closed,
                other => return ignored(format!("The pull request action '{other}' starts nothing")),
            };
            let event = GitEvent {
                repository: required(delivery.repository.full_name, "repository.full_name")?,
                connection: None,
                provider,
                kind: Kind::PullRequest {
                    event,
                    source: required(pr.head.name, "pull_request.head.ref")?,
                    destination: required(pr.base.name, "pull_request.base.ref")?,
                },
                commit: required(pr.head.sha, "pull_request.head.sha")?,
                message: pr.title,
                author_date: None,
                files: None,
            };
            Ok((vec![event], None))
        }
        other => ignored(format!("The GitHub event '{other}' starts nothing")),
    }
}

/// `project` of GitLab deliveries.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitLabProject {
    #[serde(deserialize_with = "text")]
    path_with_namespace: Option<String>,
}

/// A GitLab `Push Hook` or `Tag Push Hook` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitLabPush {
    #[serde(rename = "ref", deserialize_with = "text")]
    reference: Option<String>,
    #[serde(deserialize_with = "text")]
    checkout_sha: Option<String>,
    #[serde(deserialize_with = "text")]
    after: Option<String>,
    #[serde(deserialize_with = "lenient_list")]
    commits: Option<Vec<PushedCommit>>,
    #[serde(deserialize_with = "lenient")]
    project: GitLabProject,
}

/// A GitLab `Merge Request Hook` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitLabMergeRequest {
    #[serde(deserialize_with = "lenient")]
    object_attributes: GitLabMergeAttributes,
    #[serde(deserialize_with = "lenient")]
    project: GitLabProject,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GitLabMergeAttributes {
    #[serde(deserialize_with = "text")]
    action: Option<String>,
    /// Present (not null) when an update brought new commits.
    oldrev: Option<Value>,
    #[serde(deserialize_with = "text")]
    source_branch: Option<String>,
    #[serde(deserialize_with = "text")]
    target_branch: Option<String>,
    #[serde(deserialize_with = "lenient")]
    last_commit: PushedCommit,
}

fn trimmed(message: Option<String>) -> Option<String> {
    message.map(|m| m.trim_end().to_string())
}

/// A GitLab delivery of `event` (its `X-Gitlab-Event`).
pub fn gitlab(event: &str, body: &Value) -> Parsed {
    let provider = Some(GitProvider::GitLab);
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let push: GitLabPush = read(body);
            let after = push.after.clone();
            let commit = match push.checkout_sha.filter(|c| !c.is_empty()) {
                Some(commit) => commit,
                None => required(push.after, "after")?,
            };
            if deleted_commit(&commit) || after.is_some_and(|a| deleted_commit(&a)) {
                return ignored("The push deletes its ref: there is nothing to build");
            }
            let reference = pushed_ref(push.reference)?;
            let head = push.commits.iter().flatten().find(|c| c.id.as_deref() == Some(commit.as_str()));
            let event = GitEvent {
                repository: required(push.project.path_with_namespace, "project.path_with_namespace")?,
                connection: None,
                provider,
                kind: Kind::Push(reference),
                message: trimmed(head.and_then(|h| h.message.clone())),
                author_date: head.and_then(|h| h.timestamp.clone()),
                commit,
                files: changed_files(push.commits.as_deref()),
            };
            Ok((vec![event], None))
        }
        "Merge Request Hook" => {
            let delivery: GitLabMergeRequest = read(body);
            let attributes = delivery.object_attributes;
            let action = required(attributes.action, "action")?;
            let event = match action.as_str() {
                "open" | "reopen" => PullRequestEvent::Open,
                "update" if attributes.oldrev.as_ref().is_some_and(|o| !o.is_null()) => PullRequestEvent::Updated,
                "merge" => PullRequestEvent::Closed,
                other => return ignored(format!("The merge request action '{other}' starts nothing")),
            };
            let last = attributes.last_commit;
            let event = GitEvent {
                repository: required(delivery.project.path_with_namespace, "project.path_with_namespace")?,
                connection: None,
                provider,
                kind: Kind::PullRequest {
                    event,
                    source: required(attributes.source_branch, "source_branch")?,
                    destination: required(attributes.target_branch, "target_branch")?,
                },
                commit: required(last.id, "last_commit.id")?,
                message: trimmed(last.message),
                author_date: last.timestamp,
                files: None,
            };
            Ok((vec![event], None))
        }
        other => ignored(format!("The GitLab event '{other}' starts nothing")),
    }
}

/// A Bitbucket `repo:push` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketPush {
    push: Option<BitbucketChanges>,
    #[serde(deserialize_with = "lenient")]
    repository: Repository,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketChanges {
    #[serde(deserialize_with = "lenient_list")]
    changes: Option<Vec<BitbucketChange>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketChange {
    /// The ref after the push; null when the push deletes it.
    new: Option<BitbucketRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketRef {
    #[serde(rename = "type", deserialize_with = "text")]
    kind: Option<String>,
    #[serde(deserialize_with = "text")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    target: BitbucketCommit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketCommit {
    #[serde(deserialize_with = "text")]
    hash: Option<String>,
    #[serde(deserialize_with = "text")]
    message: Option<String>,
    #[serde(deserialize_with = "text")]
    date: Option<String>,
}

/// A Bitbucket `pullrequest:*` delivery.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketPullRequestEvent {
    pullrequest: Option<BitbucketPullRequest>,
    #[serde(deserialize_with = "lenient")]
    repository: Repository,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketPullRequest {
    #[serde(deserialize_with = "text")]
    title: Option<String>,
    #[serde(deserialize_with = "lenient")]
    source: BitbucketEnd,
    #[serde(deserialize_with = "lenient")]
    destination: BitbucketEnd,
}

/// One end of a Bitbucket pull request: its branch, and (for the source) its head commit.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketEnd {
    #[serde(deserialize_with = "lenient")]
    branch: BitbucketBranch,
    #[serde(deserialize_with = "lenient")]
    commit: BitbucketCommit,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BitbucketBranch {
    #[serde(deserialize_with = "text")]
    name: Option<String>,
}

/// A Bitbucket Cloud delivery of `event` (its `X-Event-Key`).
pub fn bitbucket(event: &str, body: &Value) -> Parsed {
    let provider = Some(GitProvider::Bitbucket);
    if event == "repo:push" {
        let delivery: BitbucketPush = read(body);
        let changes = delivery.push.and_then(|p| p.changes).ok_or("The delivery has no 'push.changes'")?;
        let mut events = Vec::new();
        let mut skipped = None;
        for change in changes {
            let Some(new) = change.new else {
                skipped = Some("A change deletes its ref: there is nothing to build".to_string());
                continue;
            };
            let name = required(new.name, "name")?;
            let reference = match new.kind.as_deref() {
                Some("tag") => Ref::Tag(name),
                _ => Ref::Branch(name),
            };
            events.push(GitEvent {
                repository: required(delivery.repository.full_name.clone(), "repository.full_name")?,
                connection: None,
                provider,
                kind: Kind::Push(reference),
                commit: required(new.target.hash, "target.hash")?,
                message: trimmed(new.target.message),
                author_date: new.target.date,
                // Bitbucket's push payload lists no changed files.
                files: None,
            });
        }
        return Ok((events, skipped));
    }
    let pr_event = match event {
        "pullrequest:created" => PullRequestEvent::Open,
        "pullrequest:updated" => PullRequestEvent::Updated,
        "pullrequest:fulfilled" => PullRequestEvent::Closed,
        other => return ignored(format!("The Bitbucket event '{other}' starts nothing")),
    };
    let delivery: BitbucketPullRequestEvent = read(body);
    let pr = delivery.pullrequest.ok_or("The delivery has no 'pullrequest'")?;
    let event = GitEvent {
        repository: required(delivery.repository.full_name, "repository.full_name")?,
        connection: None,
        provider,
        kind: Kind::PullRequest {
            event: pr_event,
            source: required(pr.source.branch.name, "source.branch.name")?,
            destination: required(pr.destination.branch.name, "destination.branch.name")?,
        },
        commit: required(pr.source.commit.hash, "source.commit.hash")?,
        message: pr.title,
        author_date: None,
        files: None,
    };
    Ok((vec![event], None))
}
