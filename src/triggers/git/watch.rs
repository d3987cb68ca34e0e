//! `--watch-git-repos`: a new commit on a branch of a mapped local git repository (`--git-repo`) is a push, as if
//! the hosting provider had delivered it: triggers and their filters apply (the changed file paths come from
//! `git diff`), and the pipelines it starts run that commit. The branches' heads are read every
//! `--poll-interval` of wall time, at least once a second; what the repositories hold when the server starts is not
//! a push.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{GitEvent, Kind, Ref};
use crate::app::WeakAppState;

/// Runs `git -C path args…`; its standard output as text.
async fn git(path: &Path, args: &[&str]) -> Option<String> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Each branch's head.
async fn heads(path: &Path) -> BTreeMap<String, String> {
    let listed = git(path, &["for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"]).await;
    listed
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(' ').map(|(b, c)| (b.to_string(), c.to_string())))
        .collect()
}

/// The push of `commit` to `branch` (which was at `before`, if it existed).
async fn push(name: &str, path: &Path, branch: &str, before: Option<&str>, commit: &str) -> GitEvent {
    let files = match before {
        Some(before) => git(path, &["diff", "--name-only", before, commit]).await,
        None => git(path, &["show", "--name-only", "--format=", commit]).await,
    };
    let described = git(path, &["log", "-1", "--format=%s%x00%aI", commit]).await.unwrap_or_default();
    let mut fields = described.trim_end().split('\0');
    GitEvent {
        repository: name.to_string(),
        connection: None,
        provider: None,
        kind: Kind::Push(Ref::Branch(branch.to_string())),
        commit: commit.to_string(),
        message: fields.next().map(str::to_string),
        author_date: fields.next().map(str::to_string),
        files: files.map(|f| f.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()),
    }
}

/// Watches the repositories until the server goes (`app` is held weakly: the watcher does not keep it alive).
pub async fn run(app: WeakAppState, repos: BTreeMap<String, std::path::PathBuf>, interval: Duration) {
    let mut known: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, path) in &repos {
        known.insert(name.clone(), heads(path).await);
    }
    let pause = interval.clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(pause).await;
        let Some(state) = app.upgrade() else { return };
        if *state.closing().borrow() {
            return;
        }
        for (name, path) in &repos {
            let now = heads(path).await;
            let before = known.entry(name.clone()).or_default();
            for (branch, commit) in &now {
                let previous = before.get(branch).cloned();
                if previous.as_deref() == Some(commit.as_str()) {
                    continue;
                }
                let event = push(name, path, branch, previous.as_deref(), commit).await;
                tracing::info!(repository = %name, %branch, %commit, "a new commit in a watched git repository");
                for scope in state.store().scopes() {
                    if let Err(error) = super::apply(&state, &scope, event.clone()) {
                        tracing::warn!(repository = %name, "the push could not be applied: {}", error.message);
                    }
                }
            }
            *before = now;
        }
    }
}
