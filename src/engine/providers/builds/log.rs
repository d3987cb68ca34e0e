//! A build's log: every line its commands print, with CodeBuild's `[Container]` lines around the phases; bounded, so
//! a build that prints gigabytes keeps only its last [`MAX_LOG_BYTES`] (and says how much it dropped). Readers may
//! follow it live ([`BuildLog::follow`]) until the build ends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The most of a build's log kept in memory: its newest lines.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

/// What a follower of a log receives.
#[derive(Debug, Clone)]
pub enum Update {
    Line(String),
    /// The build ended: no more lines.
    End,
}

#[derive(Default)]
struct Lines {
    finished: bool,
    /// Live followers (created with the first follower).
    live: Option<tokio::sync::broadcast::Sender<Update>>,
    lines: VecDeque<String>,
    bytes: usize,
    dropped_bytes: u64,
    /// Exact strings never shown (secret values), as CodeBuild masks them.
    masked: Vec<String>,
}

/// A build's log, shared by the readers of its commands' output.
#[derive(Clone, Default)]
pub struct BuildLog(Arc<Mutex<Lines>>);

impl BuildLog {
    /// Hides `value` wherever it appears in later lines.
    pub fn mask(&self, value: &str) {
        if value.len() >= 3 {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).masked.push(value.to_string());
        }
    }

    /// Adds a line (without its newline).
    pub fn line(&self, text: &str) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut text = text.trim_end_matches('\r').to_string();
        for secret in &lines.masked {
            text = text.replace(secret.as_str(), "***");
        }
        tracing::debug!(target: "codepipeline_local::build", "{text}");
        if let Some(live) = &lines.live {
            let _ = live.send(Update::Line(text.clone()));
        }
        lines.bytes += text.len() + 1;
        lines.lines.push_back(text);
        while lines.bytes > MAX_LOG_BYTES {
            let Some(oldest) = lines.lines.pop_front() else { break };
            lines.bytes -= oldest.len() + 1;
            lines.dropped_bytes += oldest.len() as u64 + 1;
        }
    }

    /// A `[Container]` line, as CodeBuild writes them (`[Container] 2020/09/01 17:38:16.123456 Entering phase BUILD`).
    pub fn container(&self, text: &str) {
        let now = chrono::Utc::now().format("%Y/%m/%d %H:%M:%S%.6f");
        self.line(&format!("[Container] {now} {text}"));
    }

    /// Says the build ended: followers are told, and stop.
    pub fn finish(&self) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lines.finished = true;
        if let Some(live) = lines.live.take() {
            let _ = live.send(Update::End);
        }
    }

    /// The kept text and, unless the build has ended, the lines that follow it as they come.
    pub fn follow(&self) -> (String, Option<tokio::sync::broadcast::Receiver<Update>>) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // The snapshot and the subscription under one lock: every line is in exactly one of them.
        let text = text_of(&lines);
        if lines.finished {
            return (text, None);
        }
        let live = lines.live.get_or_insert_with(|| tokio::sync::broadcast::channel(4096).0);
        (text, Some(live.subscribe()))
    }

    /// The kept lines, oldest first, after a note of what was dropped.
    pub fn text(&self) -> String {
        text_of(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn text_of(lines: &Lines) -> String {
    {
        let mut text = String::with_capacity(lines.bytes + 64);
        if lines.dropped_bytes > 0 {
            text.push_str(&format!(
                "[codepipeline-local] {} earlier bytes of this log were dropped\n",
                lines.dropped_bytes
            ));
        }
        for line in &lines.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_its_newest_lines_within_its_bound_and_masks_secrets() {
        let log = BuildLog::default();
        log.mask("hunter2");
        log.line("password is hunter2");
        assert!(log.text().contains("password is ***"));
        let line = "x".repeat(1023);
        for _ in 0..2048 {
            log.line(&line);
        }
        let text = log.text();
        assert!(text.len() <= MAX_LOG_BYTES + 100, "{}", text.len());
        assert!(text.starts_with("[codepipeline-local] "), "{}", &text[..80]);
    }
}
