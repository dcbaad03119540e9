//! The status socket's server side: accepts connections, reads request lines, asks the agent's core, and
//! writes answers. A malformed request gets an error answer and never disturbs the agent.
//!
//! Clients cannot hold the agent's resources: at most `max_connections` connections are served at
//! once (one more gets a `busy` error and is closed), and a connection that sends no request, or
//! does not read an answer or event, for `idle_timeout` is closed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio::time::timeout;

use super::protocol::{ErrorCode, Request, Response, MAX_REQUEST_LINE};

/// A question for the agent's core, with where to send the answer.
#[derive(Debug)]
pub struct Query {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Where connections send their questions and find the event stream.
#[derive(Debug, Clone)]
pub struct Backend {
    pub queries: mpsc::Sender<Query>,
    pub events: broadcast::Sender<super::protocol::EventReport>,
}

/// Creates the socket at `path` (replacing a stale one), with `mode` and optionally owned by `group`.
pub fn bind(path: &Path, mode: u32, group: Option<&str>) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    if let Some(name) = group.filter(|g| !g.is_empty()) {
        let gid = nix::unistd::Group::from_name(name)
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other(format!("no group named {name}")))?
            .gid;
        nix::unistd::chown(path, None, Some(gid)).map_err(std::io::Error::other)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// What one client may hold (`[status]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may wait to send a request, or leave an answer unread.
    pub idle_timeout: Duration,
}

/// Serves connections until the listener fails.
pub async fn serve(listener: UnixListener, backend: Backend, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    refuse_busy(&stream, limits.max_connections);
                    continue;
                };
                let backend = backend.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, backend, limits.idle_timeout).await {
                        tracing::debug!("status connection ended: {e}");
                    }
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("status socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection too many: a `busy` answer if the socket takes it at once (a new socket's
/// buffer is empty), never a wait; then closed.
fn refuse_busy(stream: &UnixStream, max: usize) {
    let answer = Response::error(
        ErrorCode::Busy,
        format!("the agent serves {max} status connections at once; try again"),
    );
    if let Ok(mut text) = serde_json::to_vec(&answer) {
        text.push(b'\n');
        let _ = stream.try_write(&text);
    }
    tracing::debug!("status connection refused: {max} are open");
}

/// The error for a client that did not send or read within the idle timeout.
fn idle(what: &str, limit: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} within {}s", limit.as_secs_f64()),
    )
}

async fn connection(stream: UnixStream, backend: Backend, limit: Duration) -> std::io::Result<()> {
    let privileged = may_control(&stream);
    let (read, write) = stream.into_split();
    let mut write = Writer { write, limit };
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut bounded = (&mut reader).take(MAX_REQUEST_LINE as u64 + 1);
        let n = timeout(limit, bounded.read_until(b'\n', &mut line))
            .await
            .map_err(|_| idle("no request", limit))??;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST_LINE {
            let answer = Response::error(
                ErrorCode::TooLong,
                format!("request longer than {MAX_REQUEST_LINE} bytes"),
            );
            return send(&mut write, &answer).await;
        }
        let request = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => request,
            Err(e) => {
                send(
                    &mut write,
                    &Response::error(ErrorCode::BadRequest, e.to_string()),
                )
                .await?;
                continue;
            }
        };
        if request.is_control() && !privileged {
            let answer = Response::error(
                ErrorCode::Forbidden,
                "control requests (retry, up, down) are for root only",
            );
            send(&mut write, &answer).await?;
            continue;
        }
        let follow = matches!(request, Request::Events { follow: true });
        // Subscribe before asking for history, so no event falls between the two.
        let subscription = follow.then(|| backend.events.subscribe());
        send(&mut write, &ask(&backend, request).await).await?;
        if let Some(events) = subscription {
            return stream_events(events, &mut write).await;
        }
    }
}

/// Whether the client may change the agent's state: root, or the agent's own user (the socket's
/// group may read everything, and nothing more).
fn may_control(stream: &UnixStream) -> bool {
    stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == 0 || c.uid() == nix::unistd::geteuid().as_raw())
}

async fn ask(backend: &Backend, request: Request) -> Response {
    let (reply, answer) = oneshot::channel();
    if backend
        .queries
        .send(Query { request, reply })
        .await
        .is_err()
    {
        return Response::error(ErrorCode::Unavailable, "the agent is shutting down");
    }
    answer
        .await
        .unwrap_or_else(|_| Response::error(ErrorCode::Unavailable, "the agent did not answer"))
}

async fn stream_events(
    mut events: broadcast::Receiver<super::protocol::EventReport>,
    write: &mut Writer,
) -> std::io::Result<()> {
    loop {
        match events.recv().await {
            Ok(event) => {
                send(
                    write,
                    &Response::Event {
                        ok: super::protocol::Ok,
                        event,
                    },
                )
                .await?
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!("status event follower lagged by {n} events");
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// A connection's sending half: a write the client does not take within the limit fails.
struct Writer {
    write: tokio::net::unix::OwnedWriteHalf,
    limit: Duration,
}

async fn send(write: &mut Writer, response: &Response) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    text.push(b'\n');
    timeout(write.limit, write.write.write_all(&text))
        .await
        .map_err(|_| idle("answer not read", write.limit))?
}

/// The default socket path's folder, created at start.
pub fn socket_dir(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
