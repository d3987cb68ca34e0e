//! A build's log (`--run-builds`), by the action execution id of the action that ran it:
//! `GET /_emulator/builds/{actionExecutionId}/log` is the kept text; `.../log/stream` is the same text followed
//! live as Server-Sent Events (one `line` event per line, then `end` when the build ends), which the dashboard shows
//! beside the action.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::guard::Caller;
use crate::app::AppState;
use crate::engine::providers::builds::log::{BuildLog, Update};
use crate::protocol::{ApiError, ErrorCode};

/// The log, if it is kept and the caller may read its account's.
fn find(app: &AppState, caller: &Caller, id: &str) -> Result<BuildLog, ApiError> {
    let not_found = || {
        ApiError::new(
            ErrorCode::ActionExecutionNotFoundException,
            format!("No build log is kept for action execution {id}"),
        )
    };
    let run = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
    let (account, log) = app.engine().build_log(run).ok_or_else(not_found)?;
    // Another account's build is none of the caller's business: as if it were not there.
    caller.may_act_on(&account).map_err(|_| not_found())?;
    Ok(log)
}

/// The kept text of the log.
pub async fn log(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let log = find(&app, &caller, &id)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log.text()).into_response())
}

/// The log as it grows.
pub async fn stream(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let log = find(&app, &caller, &id)?;
    let (text, live) = log.follow();
    let kept: Vec<Result<Event, std::io::Error>> =
        text.lines().map(|line| Ok(Event::default().event("line").data(line))).collect();
    let ended = live.is_none().then(|| Ok(Event::default().event("end").data("")));
    let closing = app.closing();
    let state = (live, closing, false);
    let following = futures_util::stream::unfold(state, |(live, mut closing, done)| async move {
        use tokio::sync::broadcast::error::RecvError;
        if done {
            return None;
        }
        let mut receiver = live?;
        let received = tokio::select! {
            received = receiver.recv() => received,
            _ = closing.changed() => return None,
        };
        match received {
            Ok(Update::Line(line)) => {
                Some((Ok(Event::default().event("line").data(line)), (Some(receiver), closing, false)))
            }
            Ok(Update::End) | Err(RecvError::Closed) => {
                Some((Ok(Event::default().event("end").data("")), (None, closing, true)))
            }
            // A reader too slow for a build's output misses lines, and is told how many.
            Err(RecvError::Lagged(missed)) => {
                let event = Event::default().event("line").data(format!("[codepipeline-local] {missed} lines skipped"));
                Some((Ok(event), (Some(receiver), closing, false)))
            }
        }
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(kept.into_iter().chain(ended)), following);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response())
}
