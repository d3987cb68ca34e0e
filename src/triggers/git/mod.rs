//! Git pushes and pull requests, as an emulated connection would see them (V2 triggers, integrations.md §4-§5).
//!
//! | endpoint | body |
//! |---|---|
//! | `POST /_emulator/git/push` | `{"repository", "branch" \| "tag", "commitId", "commitMessage"?, "filePaths"?, "connectionArn"?}` |
//! | `POST /_emulator/git/pull-request` | `{"repository", "event": OPEN \| UPDATED \| CLOSED, "sourceBranch", "destinationBranch", "commitId", "filePaths"?, "pullRequestId"?, "connectionArn"?}` |
//! | `POST /_emulator/git/webhook` | a GitHub, GitLab or Bitbucket Cloud delivery, unchanged (recognised by its event header) |
//!
//! Every pipeline whose first stage has a `CodeStarSourceConnection` action on that repository (and connection, when
//! the event names one) is considered:
//! - with a trigger for that action, a push is matched against its push filters and a pull request against its
//!   pull-request filters: any filter of the list may match, every criterion inside one must; within a criterion a
//!   value must match an include (when there are includes) and no exclude. Push branches are the pushed branch, tags
//!   the tag, pull-request branches the destination branch; file paths pass when one changed file does (an event
//!   that lists no files passes no file-path criterion). The start has trigger `WebhookV2`.
//! - without one, a push to the action's `BranchName` starts it unless `DetectChanges` is `false`; trigger `Webhook`.
//!
//! The execution runs exactly the event's commit (a pull request's is its source branch's head); the commit's message,
//! date and branch are recorded so that the source action reports them. The trigger detail is the action's
//! connection ARN (UNCONFIRMED: AWS does not document it).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod payloads;
pub mod watch;

use self::payloads::{GitProvider, bitbucket, github, gitlab};
use super::{Outcome, Within};
use crate::app::AppState;
use crate::control::guard::ControlJson;
use crate::protocol::ApiError;
use crate::state::Definition;
use crate::state::Scope;
use crate::state::declaration::{
    ActionCategory, ActionDeclaration, GitFilterCriteria, GitPullRequestFilter, GitPushFilter,
};
use crate::state::execution::{ExecutionTrigger, RevisionOverride, RevisionType, TriggerType};
use crate::state::glob::GlobCache;
use crate::state::sources::{Commit, RepositoryKind};

/// A pushed ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Branch(String),
    Tag(String),
}

/// `GitPullRequestEventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PullRequestEvent {
    Open,
    Updated,
    Closed,
}

impl PullRequestEvent {
    fn as_str(self) -> &'static str {
        match self {
            PullRequestEvent::Open => "OPEN",
            PullRequestEvent::Updated => "UPDATED",
            PullRequestEvent::Closed => "CLOSED",
        }
    }
}

/// What happened in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Push(Ref),
    PullRequest { event: PullRequestEvent, source: String, destination: String },
}

/// A push or pull request, in a provider-neutral form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEvent {
    /// `owner/repo`, as `FullRepositoryId` names it.
    pub repository: String,
    pub connection: Option<String>,
    /// The hosting provider, when the event came from one's delivery.
    pub provider: Option<GitProvider>,
    pub kind: Kind,
    pub commit: String,
    pub message: Option<String>,
    pub author_date: Option<String>,
    /// The changed files, when the event lists them.
    pub files: Option<Vec<String>>,
}

/// `POST /_emulator/git/push`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushBody {
    repository: String,
    branch: Option<String>,
    tag: Option<String>,
    commit_id: String,
    commit_message: Option<String>,
    file_paths: Option<Vec<String>>,
    connection_arn: Option<String>,
    account: Option<String>,
    region: Option<String>,
}

/// `POST /_emulator/git/pull-request`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullRequestBody {
    repository: String,
    event: PullRequestEvent,
    source_branch: String,
    destination_branch: String,
    commit_id: String,
    commit_message: Option<String>,
    file_paths: Option<Vec<String>>,
    pull_request_id: Option<String>,
    connection_arn: Option<String>,
    account: Option<String>,
    region: Option<String>,
}

fn non_empty(value: &str, what: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() { Err(ApiError::validation(format!("{what} must not be empty"))) } else { Ok(()) }
}

/// `POST /_emulator/git/push`.
pub async fn push(
    State(app): State<AppState>,
    caller: crate::control::guard::Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(body): ControlJson<PushBody>,
) -> Result<Json<Value>, ApiError> {
    non_empty(&body.repository, "repository")?;
    non_empty(&body.commit_id, "commitId")?;
    let reference = match (body.branch, body.tag) {
        (Some(branch), None) if !branch.is_empty() => Ref::Branch(branch),
        (None, Some(tag)) if !tag.is_empty() => Ref::Tag(tag),
        _ => return Err(ApiError::validation("give exactly one of branch and tag")),
    };
    let scope = crate::control::control_scope(&app, &caller, &headers, &uri, body.account, body.region)?;
    let event = GitEvent {
        repository: body.repository,
        connection: body.connection_arn,
        provider: None,
        kind: Kind::Push(reference),
        commit: body.commit_id,
        message: body.commit_message,
        author_date: None,
        files: body.file_paths,
    };
    Ok(Json(json!(apply(&app, &scope, event)?)))
}

/// `POST /_emulator/git/pull-request`.
pub async fn pull_request(
    State(app): State<AppState>,
    caller: crate::control::guard::Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(body): ControlJson<PullRequestBody>,
) -> Result<Json<Value>, ApiError> {
    non_empty(&body.repository, "repository")?;
    non_empty(&body.commit_id, "commitId")?;
    non_empty(&body.source_branch, "sourceBranch")?;
    non_empty(&body.destination_branch, "destinationBranch")?;
    // Accepted so that the body can say which pull request it is; nothing AWS shows carries it.
    let _ = body.pull_request_id;
    let scope = crate::control::control_scope(&app, &caller, &headers, &uri, body.account, body.region)?;
    let event = GitEvent {
        repository: body.repository,
        connection: body.connection_arn,
        provider: None,
        kind: Kind::PullRequest { event: body.event, source: body.source_branch, destination: body.destination_branch },
        commit: body.commit_id,
        message: body.commit_message,
        author_date: None,
        files: body.file_paths,
    };
    Ok(Json(json!(apply(&app, &scope, event)?)))
}

/// `POST /_emulator/git/webhook`: a provider's own delivery.
pub async fn webhook(
    State(app): State<AppState>,
    caller: crate::control::guard::Caller,
    headers: HeaderMap,
    uri: Uri,
    ControlJson(body): ControlJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let parsed = if let Some(event) = header("x-github-event") {
        github(event, &body)
    } else if let Some(event) = header("x-gitlab-event") {
        gitlab(event, &body)
    } else if let Some(event) = header("x-event-key") {
        bitbucket(event, &body)
    } else {
        return Err(ApiError::validation(
            "The delivery names no provider event: send X-GitHub-Event, X-Gitlab-Event or (Bitbucket) X-Event-Key",
        ));
    };
    let scope = crate::control::control_scope(&app, &caller, &headers, &uri, None, None)?;
    let (events, ignored) = parsed.map_err(ApiError::validation)?;
    let mut outcome = Outcome::default();
    for event in events {
        let one = apply(&app, &scope, event)?;
        outcome.started.extend(one.started);
        outcome.skipped.extend(one.skipped);
    }
    let mut answer = json!(outcome);
    if let Some(reason) = ignored {
        answer["ignored"] = json!(reason);
    }
    Ok(Json(answer))
}

/// How one source action takes an event.
enum Decision {
    Start(TriggerType),
    Skip(String),
}

/// Records the event's commit, then starts every pipeline whose connection source watches the repository and takes
/// the event.
pub fn apply(app: &AppState, scope: &Scope, event: GitEvent) -> Result<Outcome, ApiError> {
    let now = app.store().clock().now();
    let branch = match &event.kind {
        Kind::Push(Ref::Branch(branch)) => Some(branch.clone()),
        Kind::Push(Ref::Tag(_)) => None,
        Kind::PullRequest { source, .. } => Some(source.clone()),
    };
    let head = matches!(event.kind, Kind::Push(Ref::Branch(_))).then_some(branch.as_deref()).flatten();
    let engine = app.engine();
    let outcome = app.store().write(scope, |data| {
        let commit = Commit {
            message: event.message.clone().unwrap_or_default(),
            author_date: Some(event.author_date.clone().unwrap_or_else(|| now.to_rfc3339())),
            branch: branch.clone(),
        };
        let repository = &event.repository;
        let provider = event.provider.map(GitProvider::as_str);
        data.sources.put_commit(RepositoryKind::Connection, repository, provider, head, &event.commit, commit);
        let plans: Vec<_> = data
            .pipelines
            .iter()
            .filter_map(|(name, record)| plan(record.current(), &event).map(|plan| (name.clone(), plan)))
            .collect();
        let mut within = Within { engine, data, scope, now };
        let mut outcome = Outcome::default();
        for (pipeline, plan) in plans {
            let starting: Vec<&Watching> = plan.iter().filter(|w| matches!(w.decision, Decision::Start(_))).collect();
            if starting.is_empty() {
                let reasons: Vec<String> = plan
                    .iter()
                    .filter_map(|w| match &w.decision {
                        Decision::Skip(reason) => Some(format!("{}: {reason}", w.action)),
                        Decision::Start(_) => None,
                    })
                    .collect();
                outcome.skip(&pipeline, reasons.join("; "));
                continue;
            }
            let declared = starting.iter().any(|w| matches!(w.decision, Decision::Start(TriggerType::WebhookV2)));
            let trigger_type = if declared { TriggerType::WebhookV2 } else { TriggerType::Webhook };
            let detail = starting.first().map(|w| w.connection.as_str()).filter(|c| !c.is_empty());
            let trigger = ExecutionTrigger { trigger_type, trigger_detail: detail.map(Into::into) };
            let overrides = starting
                .iter()
                .map(|w| RevisionOverride {
                    action_name: w.action.clone(),
                    revision_type: RevisionType::CommitId,
                    revision_value: event.commit.clone(),
                    change_id: None,
                    created: None,
                })
                .collect();
            outcome.start_within(&mut within, &pipeline, trigger, overrides);
        }
        outcome
    })?;
    Ok(outcome)
}

/// A connection source action that watches the event's repository, and what it makes of the event.
struct Watching {
    action: String,
    /// Its connection's ARN.
    connection: String,
    decision: Decision,
}

/// Each connection source action of the pipeline that watches the event's repository; `None` when none does.
fn plan(pipeline: &Definition, event: &GitEvent) -> Option<Vec<Watching>> {
    let first = pipeline.stages.first()?;
    let decisions: Vec<Watching> = first
        .actions
        .iter()
        .filter(|action| watches(action, event))
        .map(|action| {
            let connection = config(action, "ConnectionArn").unwrap_or_default().to_string();
            let trigger =
                pipeline.triggers.iter().flatten().find(|t| t.git_configuration.source_action_name == action.name);
            let decision = match trigger {
                Some(trigger) => {
                    let git = &trigger.git_configuration;
                    declared(&git.push, &git.pull_request, event, pipeline.globs())
                }
                None => default_detection(action, event),
            };
            Watching { action: action.name.clone(), connection, decision }
        })
        .collect();
    (!decisions.is_empty()).then_some(decisions)
}

fn config<'a>(action: &'a ActionDeclaration, key: &str) -> Option<&'a str> {
    action.configuration.as_ref().and_then(|c| c.get(key)).map(String::as_str)
}

/// Whether a source action reads the event's repository (and its connection, when the event names one).
fn watches(action: &ActionDeclaration, event: &GitEvent) -> bool {
    let id = &action.action_type_id;
    id.category == ActionCategory::Source
        && id.provider == "CodeStarSourceConnection"
        && config(action, "FullRepositoryId").is_some_and(|r| r.eq_ignore_ascii_case(&event.repository))
        && event.connection.as_deref().is_none_or(|c| config(action, "ConnectionArn") == Some(c))
}

/// Without a trigger: a push to the action's branch, unless `DetectChanges` is false.
fn default_detection(action: &ActionDeclaration, event: &GitEvent) -> Decision {
    if config(action, "DetectChanges").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        return Decision::Skip("DetectChanges is false and no trigger is declared".into());
    }
    let branch = config(action, "BranchName").unwrap_or_default();
    match &event.kind {
        Kind::Push(Ref::Branch(pushed)) if pushed == branch => Decision::Start(TriggerType::Webhook),
        Kind::Push(Ref::Branch(pushed)) => {
            Decision::Skip(format!("the push is to branch {pushed}, not to the action's branch {branch}"))
        }
        Kind::Push(Ref::Tag(_)) => Decision::Skip("a tag push starts only a pipeline with a tag trigger".into()),
        Kind::PullRequest { .. } => {
            Decision::Skip("a pull request starts only a pipeline with a pull-request trigger".into())
        }
    }
}

/// With a trigger: the event's own filter list, any filter of which may match.
fn declared(
    push: &Option<Vec<GitPushFilter>>,
    pull: &Option<Vec<GitPullRequestFilter>>,
    event: &GitEvent,
    globs: &GlobCache,
) -> Decision {
    let files = event.files.as_deref();
    match &event.kind {
        Kind::Push(reference) => {
            let Some(filters) = push else { return Decision::Skip("its trigger has no push filter".into()) };
            let misses: Vec<Option<String>> = filters.iter().map(|f| push_miss(f, reference, files, globs)).collect();
            if misses.iter().any(Option::is_none) {
                Decision::Start(TriggerType::WebhookV2)
            } else {
                let what = match reference {
                    Ref::Branch(b) => format!("branch {b}"),
                    Ref::Tag(t) => format!("tag {t}"),
                };
                Decision::Skip(format!("no push filter of its trigger matches the push to {what}: {}", each(&misses)))
            }
        }
        Kind::PullRequest { event: kind, destination, .. } => {
            let Some(filters) = pull else { return Decision::Skip("its trigger has no pull-request filter".into()) };
            let misses: Vec<Option<String>> =
                filters.iter().map(|f| pull_request_miss(f, *kind, destination, files, globs)).collect();
            if misses.iter().any(Option::is_none) {
                Decision::Start(TriggerType::WebhookV2)
            } else {
                Decision::Skip(format!(
                    "no pull-request filter of its trigger matches the {} event into {destination}: {}",
                    kind.as_str(),
                    each(&misses)
                ))
            }
        }
    }
}

/// Each filter's reason, numbered: `filter 1: ...; filter 2: ...`.
fn each(misses: &[Option<String>]) -> String {
    let reasons = misses.iter().enumerate().filter_map(|(i, m)| m.as_ref().map(|m| format!("filter {}: {m}", i + 1)));
    reasons.collect::<Vec<_>>().join("; ")
}

/// Why a push filter does not take a push (the first criterion that fails), or `None` when it does.
fn push_miss(filter: &GitPushFilter, reference: &Ref, files: Option<&[String]>, globs: &GlobCache) -> Option<String> {
    match reference {
        Ref::Tag(tag) => match &filter.tags {
            None => Some("it has no tags criterion, so it takes no tag push".into()),
            Some(c) => criteria_miss("tag", c, tag, globs),
        },
        Ref::Branch(branch) => match &filter.branches {
            None => Some("it has no branches criterion, so it takes no branch push".into()),
            Some(c) => criteria_miss("branch", c, branch, globs)
                .or_else(|| filter.file_paths.as_ref().and_then(|c| files_miss(c, files, globs))),
        },
    }
}

/// Why a pull-request filter does not take an event (the first criterion that fails), or `None` when it does.
fn pull_request_miss(
    filter: &GitPullRequestFilter,
    event: PullRequestEvent,
    destination: &str,
    files: Option<&[String]>,
    globs: &GlobCache,
) -> Option<String> {
    // Without events, all three (UNCONFIRMED default).
    if let Some(events) = filter.events.as_ref().filter(|events| !events.iter().any(|e| e == event.as_str())) {
        return Some(format!("the event {} is not among its events ({})", event.as_str(), events.join(", ")));
    }
    match &filter.branches {
        None => Some("it has no branches criterion".into()),
        Some(c) => criteria_miss("branch", c, destination, globs)
            .or_else(|| filter.file_paths.as_ref().and_then(|c| files_miss(c, files, globs))),
    }
}

/// Why `value` (a `what`: branch, tag) does not pass a criterion, or `None` when it does.
fn criteria_miss(what: &str, criteria: &GitFilterCriteria, value: &str, globs: &GlobCache) -> Option<String> {
    if let Some(exclude) = criteria.excludes.iter().flatten().find(|p| globs.is_match(p, value)) {
        return Some(format!("{what} {value} matches its {what} exclude {exclude}"));
    }
    match &criteria.includes {
        Some(includes) if !includes.iter().any(|p| globs.is_match(p, value)) => {
            Some(format!("{what} {value} matches none of its {what} includes ({})", includes.join(", ")))
        }
        _ => None,
    }
}

/// Why the changed files do not pass a file-paths criterion, or `None` when one does.
fn files_miss(criteria: &GitFilterCriteria, files: Option<&[String]>, globs: &GlobCache) -> Option<String> {
    let Some(files) = files else {
        return Some("it has a file paths criterion and the event lists no changed files".into());
    };
    if files_match(criteria, Some(files), globs) {
        return None;
    }
    let shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more =
        if files.len() > shown.len() { format!(" and {} more", files.len() - shown.len()) } else { String::new() };
    let described =
        |label: &str, patterns: &Option<Vec<String>>| patterns.as_ref().map(|p| format!("{label} {}", p.join(", ")));
    let criterion: Vec<String> = [described("includes", &criteria.includes), described("excludes", &criteria.excludes)]
        .into_iter()
        .flatten()
        .collect();
    Some(format!("no changed file ({}{more}) passes its file paths ({})", shown.join(", "), criterion.join("; ")))
}

#[cfg(test)]
fn push_matches(filter: &GitPushFilter, reference: &Ref, files: Option<&[String]>, globs: &GlobCache) -> bool {
    push_miss(filter, reference, files, globs).is_none()
}

#[cfg(test)]
fn pull_request_matches(
    filter: &GitPullRequestFilter,
    event: PullRequestEvent,
    destination: &str,
    files: Option<&[String]>,
    globs: &GlobCache,
) -> bool {
    pull_request_miss(filter, event, destination, files, globs).is_none()
}

/// A value passes a criterion when it matches an include (or there are none) and no exclude: excludes win.
pub fn criteria_match(criteria: &GitFilterCriteria, value: &str, globs: &GlobCache) -> bool {
    let any = |patterns: &Option<Vec<String>>| patterns.iter().flatten().any(|p| globs.is_match(p, value));
    (criteria.includes.is_none() || any(&criteria.includes)) && !any(&criteria.excludes)
}

/// Changed files pass a criterion when one of them does (UNCONFIRMED); an event that lists none passes nothing.
fn files_match(criteria: &GitFilterCriteria, files: Option<&[String]>, globs: &GlobCache) -> bool {
    files.is_some_and(|files| files.iter().any(|f| criteria_match(criteria, f, globs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn criteria_match(criteria: &GitFilterCriteria, value: &str) -> bool {
        super::criteria_match(criteria, value, &GlobCache::default())
    }

    fn push_matches(filter: &GitPushFilter, reference: &Ref, files: Option<&[String]>) -> bool {
        super::push_matches(filter, reference, files, &GlobCache::default())
    }

    fn pull_request_matches(
        filter: &GitPullRequestFilter,
        event: PullRequestEvent,
        destination: &str,
        files: Option<&[String]>,
    ) -> bool {
        super::pull_request_matches(filter, event, destination, files, &GlobCache::default())
    }

    fn criteria(includes: &[&str], excludes: &[&str]) -> GitFilterCriteria {
        let list = |l: &[&str]| (!l.is_empty()).then(|| l.iter().map(|s| s.to_string()).collect());
        GitFilterCriteria { includes: list(includes), excludes: list(excludes) }
    }

    #[test]
    fn criteria_follow_aws_rules() {
        // Includes: any may match. Excludes win. Only excludes: everything else passes.
        assert!(criteria_match(&criteria(&["main", "release/*"], &[]), "release/1.2"));
        assert!(!criteria_match(&criteria(&["main", "release/*"], &[]), "dev"));
        assert!(!criteria_match(&criteria(&["release/*"], &["release/*"]), "release/1"));
        assert!(!criteria_match(&criteria(&["release/**"], &["release/old/**"]), "release/old/1"));
        assert!(criteria_match(&criteria(&["release/**"], &["release/old/**"]), "release/new/1"));
        assert!(criteria_match(&criteria(&[], &["wip/*"]), "main"));
        assert!(!criteria_match(&criteria(&[], &["wip/*"]), "wip/x"));
    }

    #[test]
    fn filters_combine_criteria() {
        let filter = GitPushFilter {
            tags: None,
            branches: Some(criteria(&["main"], &[])),
            file_paths: Some(criteria(&["src/**"], &["src/**/*.md"])),
        };
        let main = Ref::Branch("main".into());
        let files = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(push_matches(&filter, &main, Some(&files(&["README.md", "src/app/main.rs"]))));
        assert!(!push_matches(&filter, &main, Some(&files(&["src/docs/guide.md"]))));
        assert!(!push_matches(&filter, &main, None), "no file list, no file-path match");
        assert!(!push_matches(&filter, &Ref::Branch("dev".into()), Some(&files(&["src/a.rs"]))));
        let tags = GitPushFilter { tags: Some(criteria(&["v*"], &["v*-rc*"])), branches: None, file_paths: None };
        assert!(push_matches(&tags, &Ref::Tag("v1.4.0".into()), None));
        assert!(!push_matches(&tags, &Ref::Tag("v1.4.0-rc1".into()), None));
        assert!(!push_matches(&tags, &main, None));
        let pr = GitPullRequestFilter {
            events: Some(vec!["OPEN".into(), "UPDATED".into()]),
            branches: Some(criteria(&["main"], &[])),
            file_paths: None,
        };
        assert!(pull_request_matches(&pr, PullRequestEvent::Updated, "main", None));
        assert!(!pull_request_matches(&pr, PullRequestEvent::Closed, "main", None));
        assert!(!pull_request_matches(&pr, PullRequestEvent::Open, "dev", None));
        let all_events = GitPullRequestFilter { events: None, ..pr.clone() };
        assert!(pull_request_matches(&all_events, PullRequestEvent::Closed, "main", None));

        // A miss names the criterion that failed (issue 29).
        let globs = GlobCache::default();
        let miss = |filter: &GitPushFilter, reference: &Ref, changed: Option<&[String]>| {
            push_miss(filter, reference, changed, &globs).unwrap_or_default()
        };
        assert_eq!(
            miss(&filter, &Ref::Branch("dev".into()), None),
            "branch dev matches none of its branch includes (main)"
        );
        assert_eq!(
            miss(&filter, &main, Some(&files(&["src/docs/guide.md"]))),
            "no changed file (src/docs/guide.md) passes its file paths (includes src/**; excludes src/**/*.md)"
        );
        assert_eq!(miss(&filter, &main, None), "it has a file paths criterion and the event lists no changed files");
        assert_eq!(miss(&tags, &Ref::Tag("v1.4.0-rc1".into()), None), "tag v1.4.0-rc1 matches its tag exclude v*-rc*");
        assert_eq!(miss(&tags, &main, None), "it has no branches criterion, so it takes no branch push");
        let closed = pull_request_miss(&pr, PullRequestEvent::Closed, "main", None, &globs).unwrap_or_default();
        assert_eq!(closed, "the event CLOSED is not among its events (OPEN, UPDATED)");
        assert_eq!(each(&[Some("a".into()), Some("b".into())]), "filter 1: a; filter 2: b");
    }

    #[test]
    fn provider_deliveries_read_as_neutral_events() {
        let push = json!({"ref": "refs/heads/main", "after": "9f2c", "deleted": false,
            "head_commit": {"message": "Tune", "timestamp": "2026-03-02T10:14:55+01:00"},
            "commits": [{"added": [], "modified": ["web/nginx.conf"], "removed": []}],
            "repository": {"full_name": "example-org/web-app"}});
        let (events, _) = github("push", &push).expect("push");
        assert_eq!(events[0].kind, Kind::Push(Ref::Branch("main".into())));
        assert_eq!(events[0].files.as_deref(), Some(&["web/nginx.conf".to_string()][..]));
        let pr = json!({"action": "closed", "pull_request": {"merged": false,
            "head": {"ref": "f", "sha": "0c1d"}, "base": {"ref": "main"}}, "repository": {"full_name": "o/r"}});
        assert!(github("pull_request", &pr).expect("parsed").0.is_empty(), "an unmerged close starts nothing");
        let gitlab_update = json!({"project": {"path_with_namespace": "o/r"}, "object_attributes": {"action": "update",
            "source_branch": "f", "target_branch": "main", "last_commit": {"id": "0c1d"}}});
        assert!(gitlab("Merge Request Hook", &gitlab_update).expect("parsed").0.is_empty(), "no new commits");
        let bitbucket_push = json!({"repository": {"full_name": "o/r"}, "push": {"changes": [
            {"new": {"type": "tag", "name": "v1", "target": {"hash": "9f2c"}}},
            {"new": null, "closed": true}]}});
        let (events, skipped) = bitbucket("repo:push", &bitbucket_push).expect("parsed");
        assert_eq!((events.len(), events[0].kind.clone()), (1, Kind::Push(Ref::Tag("v1".into()))));
        assert!(skipped.is_some());
        assert!(github("push", &json!({"ref": "refs/heads/main"})).is_err(), "no commit");
    }
}
