//! Log output through tracing-subscriber, on stderr.
//!
//! - `text`: one line per event. When stderr is connected to the journal (systemd sets
//!   `$JOURNAL_STREAM` to the stream's `device:inode`, see systemd.exec(5)), lines carry no
//!   timestamp (journald stamps them) and no colour, and start with the syslog priority in the
//!   `<N>` form journald reads (sd-daemon(3)), so `journalctl -p warning` works.
//! - `json`: one JSON object per line, with timestamps.
//!
//! The level comes from `[log] level` (a tracing filter: `info`, `debug`, `oe_agent=debug,info`)
//! unless `RUST_LOG` is set, which overrides it. [`reload`] applies a new `[log] level` after
//! SIGHUP; the format is fixed at start.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::sync::OnceLock;

use tracing::{Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{Log, LogFormat};

/// The variable that overrides `[log] level`.
pub const RUST_LOG: &str = "RUST_LOG";

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Problems (a bad filter, a second call) are reported on
/// stderr and never stop the agent: it falls back to `info`.
pub fn init(log: &Log) {
    let (filter, warning) = filter(&log.level, std::env::var(RUST_LOG).ok().as_deref());
    let journald = stderr_is_journal(std::env::var_os("JOURNAL_STREAM").as_deref());
    let (filter, handle) = reload::Layer::new(filter);
    let output = output_layer(log.format, journald, std::io::stderr);
    match tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
    {
        Ok(()) => {
            let _ = FILTER.set(handle);
        }
        Err(e) => eprintln!("oe: logging was already set up: {e}"),
    }
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

/// Applies a new `[log] level` (after a reload). Without effect while `RUST_LOG` is set.
pub fn reload(log: &Log) {
    let Some(handle) = FILTER.get() else { return };
    let rust_log = std::env::var(RUST_LOG).ok();
    if rust_log.is_some() {
        return;
    }
    let (filter, warning) = filter(&log.level, None);
    if let Err(e) = handle.reload(filter) {
        tracing::warn!("cannot change the log level: {e}");
    }
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

/// The filter: `RUST_LOG` when set and valid, else the configured level, else `info`; with a
/// warning for whatever was refused.
fn filter(level: &str, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let mut refused = None;
    if let Some(text) = rust_log.filter(|t| !t.trim().is_empty()) {
        match EnvFilter::try_new(text) {
            Ok(f) => return (f, None),
            Err(e) => refused = Some(format!("ignoring RUST_LOG={text:?}: {e}")),
        }
    }
    match EnvFilter::try_new(level) {
        Ok(f) => (f, refused),
        Err(e) => {
            let why = format!("ignoring [log] level {level:?}: {e}; using \"info\"");
            (
                EnvFilter::new("info"),
                Some(refused.map_or(why.clone(), |r| format!("{r}; {why}"))),
            )
        }
    }
}

/// Whether stderr is the journal stream systemd announced in `$JOURNAL_STREAM` (`dev:inode`);
/// a child that inherited the variable but writes elsewhere must keep its timestamps.
fn stderr_is_journal(journal_stream: Option<&OsStr>) -> bool {
    let Some(value) = journal_stream.and_then(OsStr::to_str) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    same_stream(value, meta.dev(), meta.ino())
}

fn same_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.split_once(':') else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

/// The formatting layer for `format`, writing to `writer`.
fn output_layer<S, W>(
    format: LogFormat,
    journald: bool,
    writer: W,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match (format, journald) {
        (LogFormat::Json, _) => layer.json().boxed(),
        (LogFormat::Text, true) => layer
            .with_ansi(false)
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format().without_time(),
            ))
            .boxed(),
        (LogFormat::Text, false) => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
    }
}

/// Prefixes each line with `<N>`, the syslog priority of the event's level (RFC 5424 6.2.1).
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(data)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// Logs a warning and a debug event through a subscriber like [`init`]'s; returns the text.
    fn capture(format: LogFormat, journald: bool, level: &str) -> String {
        let buffer = Buffer::default();
        let (filter, _) = filter(level, None);
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(output_layer(format, journald, buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "192.0.2.7", "negotiation failed");
            tracing::debug!("details");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn journald_lines_carry_priority_and_no_timestamp() {
        let text = capture(LogFormat::Text, true, "info");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("<4> WARN "), "{text}");
        assert!(
            text.contains("negotiation failed peer=\"192.0.2.7\""),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "colour codes: {text:?}");
    }

    #[test]
    fn plain_text_lines_start_with_a_timestamp() {
        let text = capture(LogFormat::Text, false, "debug");
        assert_eq!(text.lines().count(), 2, "{text}");
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("20") && first.contains('T'), "{first}");
    }

    #[test]
    fn json_lines_parse() {
        let text = capture(LogFormat::Json, false, "info");
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["fields"]["message"], "negotiation failed");
        assert_eq!(v["fields"]["peer"], "192.0.2.7");
        assert!(v["timestamp"].is_string());
    }

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let (f, warning) = filter("info", Some("debug"));
        assert_eq!(f.to_string(), "debug");
        assert_eq!(warning, None);
        let (f, warning) = filter("warn", None);
        assert_eq!(f.to_string(), "warn");
        assert_eq!(warning, None);
        let (f, _) = filter("info", Some("  "));
        assert_eq!(f.to_string(), "info");
    }

    #[test]
    fn bad_filters_fall_back_with_a_warning() {
        let (f, warning) = filter("info", Some("oe_agent=lots"));
        assert_eq!(f.to_string(), "info");
        assert!(warning.unwrap().contains("RUST_LOG"));
        let (f, warning) = filter("oe=lots", None);
        assert_eq!(f.to_string(), "info");
        assert!(warning.unwrap().contains("[log] level"));
    }

    #[test]
    fn journal_stream_must_name_our_stderr() {
        assert!(same_stream("27:123456", 27, 123_456));
        assert!(!same_stream("27:123456", 27, 123_457));
        assert!(!same_stream("27", 27, 123_456));
        assert!(!same_stream("", 0, 0));
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some(OsStr::new("0:0"))));
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        let ours = format!("{}:{}", meta.dev(), meta.ino());
        assert!(stderr_is_journal(Some(OsStr::new(&ours))));
    }
}
