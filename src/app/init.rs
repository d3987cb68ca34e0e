//! Init hooks, as LocalStack has them: scripts that run at the server's lifecycle stages, so that a container can
//! come up with the pipelines a test needs.
//!
//! Each directory (`--init-dir`, then LocalStack's `/etc/localstack/init`) has a folder per stage: `boot.d` (before
//! the server answers), `start.d` (then), `ready.d` (once it answers) and `shutdown.d` (when it is asked to stop,
//! while it still answers). In each, executable files and `.sh` files (run with `sh`) run one after the other in
//! name order, files before subfolders, subfolders in name order, depth first; anything else is skipped. A script
//! gets `AWS_ENDPOINT_URL` (this server), test credentials and the default region in its environment; its output
//! goes to the log line by line; a script that fails is logged with its exit code and the next one runs, and the
//! server goes on. `GET /_localstack/init` and `GET /_localstack/init/<stage>` report each stage's scripts in
//! LocalStack's form (states `UNKNOWN`, `RUNNING`, `SUCCESSFUL`, `ERROR`; `completed` per stage).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Stage {
    Boot,
    Start,
    Ready,
    Shutdown,
}

impl Stage {
    /// Every stage, in the order they come.
    pub const ALL: [Stage; 4] = [Stage::Boot, Stage::Start, Stage::Ready, Stage::Shutdown];

    /// The stage a name (any letter case) names.
    pub fn named(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// LocalStack's name of the stage.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Boot => "BOOT",
            Stage::Start => "START",
            Stage::Ready => "READY",
            Stage::Shutdown => "SHUTDOWN",
        }
    }

    fn folder(self) -> &'static str {
        match self {
            Stage::Boot => "boot.d",
            Stage::Start => "start.d",
            Stage::Ready => "ready.d",
            Stage::Shutdown => "shutdown.d",
        }
    }
}

/// Where a script is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ScriptState {
    Unknown,
    Running,
    Successful,
    Error,
}

struct Script {
    stage: Stage,
    path: PathBuf,
    /// Run with `sh`: a `.sh` file that is not executable.
    with_sh: bool,
    state: ScriptState,
}

/// One script as `/_localstack/init` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptReport {
    pub stage: Stage,
    pub name: String,
    pub state: ScriptState,
}

/// The scripts found at start, and what became of them.
#[derive(Default)]
pub struct InitHooks {
    scripts: Mutex<Vec<Script>>,
    completed: Mutex<[bool; 4]>,
}

impl InitHooks {
    /// Finds the scripts of every stage in `dirs`, in order.
    pub fn discover(dirs: &[&Path]) -> InitHooks {
        let mut scripts = Vec::new();
        for stage in Stage::ALL {
            for dir in dirs {
                collect(&dir.join(stage.folder()), stage, &mut scripts);
            }
        }
        for script in &scripts {
            tracing::info!(stage = script.stage.name(), "init script found: {}", script.path.display());
        }
        InitHooks { scripts: Mutex::new(scripts), completed: Mutex::new([false; 4]) }
    }

    /// Whether any script was found.
    pub fn is_empty(&self) -> bool {
        self.scripts.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Runs the scripts of `stage`, one after the other, with `env` added to their environment.
    pub async fn run(&self, stage: Stage, env: &[(String, String)]) {
        let count = self.scripts.lock().unwrap_or_else(|p| p.into_inner()).len();
        for index in 0..count {
            let found = {
                let mut scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
                scripts.get_mut(index).filter(|s| s.stage == stage).map(|script| {
                    script.state = ScriptState::Running;
                    (script.path.clone(), script.with_sh)
                })
            };
            let Some((path, with_sh)) = found else { continue };
            let state = run_script(&path, with_sh, stage, env).await;
            if let Some(script) = self.scripts.lock().unwrap_or_else(|p| p.into_inner()).get_mut(index) {
                script.state = state;
            }
        }
        if let Some(done) = self.completed.lock().unwrap_or_else(|p| p.into_inner()).get_mut(stage as usize) {
            *done = true;
        }
    }

    /// Every script, as `GET /_localstack/init` lists them.
    pub fn report(&self, stage: Option<Stage>) -> Vec<ScriptReport> {
        let scripts = self.scripts.lock().unwrap_or_else(|p| p.into_inner());
        scripts
            .iter()
            .filter(|s| stage.is_none_or(|stage| s.stage == stage))
            .map(|s| ScriptReport {
                stage: s.stage,
                name: s.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                state: s.state,
            })
            .collect()
    }

    /// Whether the stage has run (all its scripts ended).
    pub fn completed(&self, stage: Stage) -> bool {
        self.completed.lock().unwrap_or_else(|p| p.into_inner()).get(stage as usize).copied().unwrap_or(false)
    }
}

/// The scripts in `dir`, files first in name order, then each subfolder's, in name order.
fn collect(dir: &Path, stage: Stage, out: &mut Vec<Script>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(PathBuf, std::fs::Metadata)> =
        entries.flatten().filter_map(|e| std::fs::metadata(e.path()).ok().map(|m| (e.path(), m))).collect();
    entries.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    for (path, metadata) in entries.iter().filter(|(_, m)| m.is_file()) {
        let with_sh = path.extension().is_some_and(|e| e == "sh");
        if executable(metadata) {
            out.push(Script { stage, path: path.clone(), with_sh: false, state: ScriptState::Unknown });
        } else if with_sh {
            out.push(Script { stage, path: path.clone(), with_sh: true, state: ScriptState::Unknown });
        } else {
            tracing::info!("init: {} is neither executable nor a .sh file; skipped", path.display());
        }
    }
    for (path, _) in entries.iter().filter(|(_, m)| m.is_dir()) {
        collect(path, stage, out);
    }
}

#[cfg(unix)]
fn executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &std::fs::Metadata) -> bool {
    false
}

/// Runs one script, its output to the log; what became of it.
async fn run_script(path: &Path, with_sh: bool, stage: Stage, env: &[(String, String)]) -> ScriptState {
    let name = path.display().to_string();
    let mut command = if with_sh {
        let mut command = tokio::process::Command::new("sh");
        command.arg(path);
        command
    } else {
        tokio::process::Command::new(path)
    };
    if let Some(dir) = path.parent() {
        command.current_dir(dir);
    }
    command
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    tracing::info!(stage = stage.name(), "init script {name} running");
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!(stage = stage.name(), "init script {name} could not start: {e}");
            return ScriptState::Error;
        }
    };
    let log_lines = |stream: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>, script: String| async move {
        let Some(stream) = stream else { return };
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(script = %script, "{line}");
        }
    };
    let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let short = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (status, (), ()) = tokio::join!(child.wait(), log_lines(stdout, short.clone()), log_lines(stderr, short));
    match status {
        Ok(status) if status.success() => {
            tracing::info!(stage = stage.name(), "init script {name} succeeded");
            ScriptState::Successful
        }
        Ok(status) => {
            let code = status.code().map_or_else(|| "none (killed by a signal)".to_string(), |c| c.to_string());
            tracing::warn!(stage = stage.name(), "init script {name} failed with exit code {code}");
            ScriptState::Error
        }
        Err(e) => {
            tracing::warn!(stage = stage.name(), "init script {name} could not be waited for: {e}");
            ScriptState::Error
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_named_in_any_case() {
        assert_eq!(Stage::named("ready"), Some(Stage::Ready));
        assert_eq!(Stage::named("BOOT"), Some(Stage::Boot));
        assert_eq!(Stage::named("later"), None);
    }
}
