//! One shell per build, as CodeBuild's buildspec 0.2 has it: `cd` and variables (exported or not) carry over from
//! one command to the next and across phases. Each command runs in a `bash` of its own that starts from the state
//! the previous one left (its variables, as `declare -p` writes them, and its directory), so `set -e`, `exit` or a
//! crash in one command does not end the build's shell, as a peer observed of CodeBuild. Every command runs in a
//! process group of its own, which is killed whole when the build is stopped, times out or the server shuts down.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::log::BuildLog;

/// What the shell script around each command does: start from the saved state, run the command, save the state
/// (also when the command exits the shell).
const SCRIPT: &str = r#"
__cpl_save() {
  __cpl_rc=$?
  pwd > "$__CPL_CWD_FILE"
  for __cpl_n in $(compgen -v); do
    case "$__cpl_n" in
      BASH*|EUID|PPID|UID|SHELLOPTS|PIPESTATUS|FUNCNAME|GROUPS|RANDOM|LINENO|SECONDS|_|DIRSTACK|SRANDOM) continue;;
      EPOCHSECONDS|EPOCHREALTIME|OPTIND|OPTERR|OPTARG|HISTCMD|COMP_*|__cpl_*|__CPL_*|PWD|OLDPWD|SHLVL|IFS) continue;;
      PS1|PS2|PS4|HOSTTYPE|MACHTYPE|OSTYPE|COLUMNS|LINES) continue;;
    esac
    declare -p "$__cpl_n" 2>/dev/null
  done > "$__CPL_STATE.next" && mv "$__CPL_STATE.next" "$__CPL_STATE"
  exit $__cpl_rc
}
trap __cpl_save EXIT
if [ -f "$__CPL_STATE" ]; then source "$__CPL_STATE"; fi
cd "$(cat "$__CPL_CWD_FILE")" || exit 1
set --
eval "$__CPL_COMMAND"
"#;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It exited with this status (a signal counts as 128 + its number, as a shell reports it).
    Exit(i32),
    /// The build was given up (stopped, timed out): its processes were killed.
    GivenUp,
}

/// A process group that is killed when dropped, unless it ended by itself.
struct Group(Option<u32>);

impl Group {
    fn kill(&mut self) {
        if let Some(id) = self.0.take() {
            // The `kill` tool, not a system call: this crate has no unsafe code.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{id}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The build's shell: its saved state and what every command starts with.
pub struct Shell {
    state: PathBuf,
    cwd_file: PathBuf,
    /// The environment of the build before its first command.
    environment: Vec<(String, String)>,
}

impl Shell {
    /// A shell for a build whose state lives in `dir`, starting in `start` with `environment`.
    pub fn new(dir: &Path, start: &Path, environment: Vec<(String, String)>) -> std::io::Result<Shell> {
        let cwd_file = dir.join("cwd");
        std::fs::write(&cwd_file, start.display().to_string())?;
        Ok(Shell { state: dir.join("state"), cwd_file, environment })
    }

    /// Runs `command`, its output lines going to `log`; `alive` is asked every 100 ms whether the build still
    /// goes on, and when it says no the command's processes are killed.
    pub async fn run(&self, command: &str, log: &BuildLog, alive: &mut impl FnMut() -> bool) -> Ran {
        let mut process = Command::new("bash");
        process.arg("-c").arg(SCRIPT).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        process.process_group(0).kill_on_drop(true);
        if self.state.exists() {
            // The saved state holds the whole environment: what a command unset stays unset.
            process.env_clear();
        } else {
            process.envs(self.environment.iter().map(|(k, v)| (k, v)));
        }
        process.env("__CPL_STATE", &self.state).env("__CPL_CWD_FILE", &self.cwd_file).env("__CPL_COMMAND", command);
        let mut child = match process.spawn() {
            Ok(child) => child,
            Err(error) => {
                log.line(&format!("could not start bash: {error}"));
                return Ran::Exit(127);
            }
        };
        let mut group = Group(child.id());
        let readers = [
            child.stdout.take().map(|out| tokio::spawn(copy_lines(BufReader::new(out), log.clone()))),
            child.stderr.take().map(|err| tokio::spawn(copy_lines(BufReader::new(err), log.clone()))),
        ];
        let ran = loop {
            tokio::select! {
                status = child.wait() => {
                    let code = status.ok().map_or(1, |s| {
                        use std::os::unix::process::ExitStatusExt as _;
                        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
                    });
                    break Ran::Exit(code);
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    if !alive() {
                        group.kill();
                        let _ = child.wait().await;
                        break Ran::GivenUp;
                    }
                }
            }
        };
        // Background processes the command left behind go with it, as when CodeBuild's container ends.
        group.kill();
        for reader in readers.into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        ran
    }

    /// The values of `names` in the shell's state (unset ones left out).
    pub async fn values(&self, names: &[String]) -> Vec<(String, String)> {
        if names.is_empty() {
            return Vec::new();
        }
        let script = r#"if [ -f "$__CPL_STATE" ]; then source "$__CPL_STATE"; fi
for __cpl_n in "$@"; do if [ -n "${!__cpl_n+x}" ]; then printf '%s\0%s\0' "$__cpl_n" "${!__cpl_n}"; fi; done"#;
        let mut process = Command::new("bash");
        process.arg("-c").arg(script).arg("values").args(names).env("__CPL_STATE", &self.state);
        if !self.state.exists() {
            process.envs(self.environment.iter().map(|(k, v)| (k, v)));
        }
        let Ok(output) = process.stdin(Stdio::null()).stderr(Stdio::null()).output().await else { return Vec::new() };
        let text = String::from_utf8_lossy(&output.stdout);
        let parts: Vec<&str> = text.split('\0').collect();
        parts.chunks_exact(2).map(|pair| (pair[0].to_string(), pair[1].to_string())).collect()
    }

    /// Sets a variable for the commands that follow (CODEBUILD_BUILD_SUCCEEDING after a failure).
    pub async fn set(&mut self, name: &str, value: &str) {
        if self.state.exists() {
            let line = format!("declare -x {name}={}\n", quote(value));
            if let Ok(mut text) = tokio::fs::read_to_string(&self.state).await {
                text.push_str(&line);
                let _ = tokio::fs::write(&self.state, text).await;
            }
        }
        match self.environment.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.environment.push((name.to_string(), value.to_string())),
        }
    }
}

/// `value` quoted for bash.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn copy_lines<R: tokio::io::AsyncBufRead + Unpin>(reader: R, log: BuildLog) {
    let mut lines = reader.split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        log.line(&String::from_utf8_lossy(&line));
    }
}
