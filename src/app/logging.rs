//! Logging: the subscriber (`LOG_FORMAT=text`, the default, or `json`: one
//! JSON object per line) and the refusal log lines.
//!
//! Every refusal is logged with its code: refused connections
//! (authentication), refused requests, refused HTTP requests. A client
//! that repeats a refusal in a loop must not flood the log, so each kind
//! goes through a [`LogLimiter`] (at most [`LINES_PER_SECOND`] lines per
//! second per kind; the next line allowed carries `suppressed`, the number
//! held back, and `rollcall_log_suppressed_lines_total` counts them all).
//!
//! No secret is ever a field: tokens, passwords, secrets and hashes are not
//! logged, only ids, codes, routes and event names.

use std::sync::LazyLock;
use std::time::Duration;

use tracing_subscriber::EnvFilter;

use crate::util::counter::LogLimiter;

/// Lines per second per kind of refusal.
pub const LINES_PER_SECOND: u64 = 20;

fn limiter() -> LogLimiter {
    LogLimiter::new(Duration::from_secs(1), LINES_PER_SECOND)
}

static CONNECT: LazyLock<LogLimiter> = LazyLock::new(limiter);
static REQUEST: LazyLock<LogLimiter> = LazyLock::new(limiter);
static HTTP: LazyLock<LogLimiter> = LazyLock::new(limiter);

/// The log format, from `LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format: `timestamp`,
    /// `level`, `fields` with `message`, `target`, `span` and `spans`).
    Json,
}

impl LogFormat {
    /// Parses `text` or `json` (case-insensitive; empty is text).
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("LOG_FORMAT must be text or json, not {other:?}")),
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`),
/// `LOG_FORMAT` format, to stderr.
pub fn init() -> Result<(), String> {
    let format = LogFormat::parse(&std::env::var("LOG_FORMAT").unwrap_or_default())?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    Ok(())
}

/// A connection refused by authentication.
pub(crate) fn refused_connect(code: &str) {
    if let Some(suppressed) = CONNECT.allow() {
        tracing::info!(code, suppressed, "connection refused");
    }
}

/// A request refused (inside the socket's span: socket and user ids).
pub(crate) fn refused_request(event: &str, code: &str) {
    if let Some(suppressed) = REQUEST.allow() {
        tracing::info!(event, code, suppressed, "request refused");
    }
}

/// The code of a refused HTTP request, carried in the response's
/// extensions from where it is made to where the route is known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RefusalCode(pub &'static str);

/// Marks `res` as a refusal with `code` (logged by [`log_http_refusal`]).
pub(crate) fn mark_refusal<B>(mut res: http::Response<B>, code: &'static str) -> http::Response<B> {
    res.extensions_mut().insert(RefusalCode(code));
    res
}

/// Logs the refusal `res` is, if it is one, with its route and status.
pub(crate) fn log_http_refusal<B>(route: &str, res: &http::Response<B>) {
    let Some(RefusalCode(code)) = res.extensions().get::<RefusalCode>() else {
        return;
    };
    if let Some(suppressed) = HTTP.allow() {
        let status = res.status().as_u16();
        tracing::info!(route, status, code, suppressed, "http request refused");
    }
}

/// Lines held back so far, by kind.
pub fn suppressed() -> Vec<(&'static str, u64)> {
    vec![
        ("connect_refused", CONNECT.suppressed()),
        ("request_refused", REQUEST.suppressed()),
        ("http_refused", HTTP.suppressed()),
        ("engine_refused", crate::engine::refusal_log_suppressed()),
        (
            "socketio_refused",
            crate::socketio::stats::refusal_log_suppressed(),
        ),
        ("accept_error", crate::http::accept_log_suppressed()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses() {
        assert_eq!(LogFormat::parse(""), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert!(LogFormat::parse("yaml").is_err());
    }
}
