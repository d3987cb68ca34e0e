//! Local git repositories as sources (`--git-repo NAME=PATH`): a CodeStarSourceConnection action whose
//! `FullRepositoryId`, a CodeCommit action whose `RepositoryName`, or a GitHub (v1) action whose `Owner/Repo` is
//! NAME reads the repository at PATH. It runs the commit the execution names (a pushed commit, a revision override),
//! else the head of its branch; its output artifact is `git archive` of that commit, and its revision and variables
//! carry the commit's real id, message and dates.
//!
//! The `git` executable does the work (it is on every machine that has repositories, reads every repository format
//! and configuration the user's own git does, and adds nothing to the build).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::artifacts::ArtifactWriter;
use super::neighbour::{configuration_error, job_failed};
use crate::state::execution::{ErrorDetails, Success};

/// What a git source reads.
#[derive(Debug, Clone)]
pub struct GitSource {
    /// The mapped name, as the action names it.
    pub name: String,
    pub path: PathBuf,
    pub branch: String,
    /// The commit the execution names, if it names one.
    pub commit: Option<String>,
    /// The simulated result, whose shape (variables, summary) the real commit fills in.
    pub simulated: Arc<Success>,
    pub provider: String,
}

/// Runs `git -C path args…`; its standard output, or its error.
async fn git(path: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("git could not be run: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

impl ArtifactWriter {
    /// The commit the source runs, and the zip of its tree.
    pub(super) async fn read_git(&self, source: &GitSource) -> Result<(Success, Vec<u8>), ErrorDetails> {
        let wanted = source.commit.clone().unwrap_or_else(|| format!("refs/heads/{}", source.branch));
        let commit = git(&source.path, &["rev-parse", "--verify", "--end-of-options", &format!("{wanted}^{{commit}}")])
            .await
            .map_err(|why| {
                configuration_error(format!(
                    "Could not find {} in the local git repository {} ({}): {why}",
                    source
                        .commit
                        .as_deref()
                        .map_or_else(|| format!("the branch {}", source.branch), |c| format!("the commit {c}")),
                    source.name,
                    source.path.display()
                ))
            })?;
        let commit = String::from_utf8_lossy(&commit).trim().to_string();
        let described = git(&source.path, &["log", "-1", "--format=%s%x00%aI%x00%cI", &commit])
            .await
            .map_err(|why| job_failed(format!("git log {commit} in {}: {why}", source.path.display())))?;
        let described = String::from_utf8_lossy(&described).trim_end().to_string();
        let mut fields = described.split('\0');
        let (message, authored, committed) =
            (fields.next().unwrap_or_default(), fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
        let zip = git(&source.path, &["archive", "--format=zip", &commit])
            .await
            .map_err(|why| job_failed(format!("git archive {commit} in {}: {why}", source.path.display())))?;
        let mut picked = (*source.simulated).clone();
        let variables = &mut picked.output_variables;
        variables.insert("CommitId".into(), commit.clone());
        // A commit without a message (`git commit --allow-empty-message`): no empty summary or variable, which the
        // model does not allow (issue 28), as for a simulated commit.
        if message.is_empty() {
            variables.remove("CommitMessage");
        } else {
            variables.insert("CommitMessage".into(), message.to_string());
        }
        variables.insert("AuthorDate".into(), authored.to_string());
        if variables.contains_key("CommitterDate") {
            variables.insert("CommitterDate".into(), committed.to_string());
        }
        if source.provider == "GitHub" {
            variables.remove("CommitUrl");
        }
        let summary = match source.provider.as_str() {
            "CodeStarSourceConnection" => {
                Some(serde_json::json!({"ProviderType": "GitHub", "CommitMessage": message}).to_string())
            }
            _ => Some(message.to_string()).filter(|m| !m.is_empty()),
        };
        picked.summary.clone_from(&summary);
        picked.external_execution_id = Some(commit.clone());
        if let Some(revision) = picked.revision.as_mut() {
            revision.revision_id = commit;
            revision.summary = summary.map(Into::into);
        }
        Ok((picked, zip))
    }
}
