//! The status socket cannot be held by its clients: past `max_connections` a new connection
//! gets a `busy` error and is closed; a connection that never sends a request, or never reads
//! its answers, is closed after `idle_timeout` and its slot served again.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use oe_agent::status::protocol::{ErrorCode, Request, Response};
use oe_agent::status::server::{bind, serve, Backend, Limits, Query};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;

/// How long the tests wait for something that must happen (generous: a shared, slow machine).
const PATIENCE: Duration = Duration::from_secs(20);

/// A server on a fresh socket whose "core" answers every request at once.
fn start(dir: &Path, limits: Limits) -> std::path::PathBuf {
    let path = dir.join("oe.sock");
    let listener = bind(&path, 0o600, None).unwrap();
    let (queries, mut asked) = mpsc::channel::<Query>(64);
    let (events, _) = broadcast::channel(16);
    tokio::spawn(serve(listener, Backend { queries, events }, limits));
    tokio::spawn(async move {
        while let Some(q) = asked.recv().await {
            let answer = Response::error(ErrorCode::Unavailable, format!("{:?}", q.request));
            let _ = q.reply.send(answer);
        }
    });
    path
}

/// Sends one request and reads one answer line.
async fn ask(stream: &mut UnixStream) -> std::io::Result<Response> {
    let line = serde_json::to_string(&Request::Status).unwrap() + "\n";
    stream.write_all(line.as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).await?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}

/// Whether the agent closed the connection (EOF), within the patience.
async fn closed_by_agent(stream: &mut UnixStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match timeout(PATIENCE, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn is_busy(r: &Response) -> bool {
    matches!(r, Response::Err { error, .. } if error.code == ErrorCode::Busy)
}

#[tokio::test]
async fn past_the_cap_a_connection_is_told_busy_and_a_freed_slot_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections: 3,
        idle_timeout: Duration::from_secs(600),
    };
    let path = start(dir.path(), limits);
    // Three clients connect and say nothing.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(UnixStream::connect(&path).await.unwrap());
    }
    let mut fourth = UnixStream::connect(&path).await.unwrap();
    let mut line = String::new();
    let n = timeout(PATIENCE, BufReader::new(&mut fourth).read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 0, "the fourth connection gets an answer");
    let answer: Response = serde_json::from_str(&line).unwrap();
    assert!(is_busy(&answer), "{line}");
    assert!(closed_by_agent(&mut fourth).await);
    // One silent client leaves: its slot is served again.
    drop(silent.pop());
    let served = async {
        loop {
            let mut s = UnixStream::connect(&path).await.unwrap();
            match ask(&mut s).await {
                Ok(r) if !is_busy(&r) => return r,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    };
    timeout(PATIENCE, served).await.unwrap();
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections: 1,
        idle_timeout: Duration::from_millis(300),
    };
    let path = start(dir.path(), limits);
    let mut silent = UnixStream::connect(&path).await.unwrap();
    assert!(closed_by_agent(&mut silent).await, "closed after 300 ms");
    let mut next = UnixStream::connect(&path).await.unwrap();
    let answer = timeout(PATIENCE, ask(&mut next)).await.unwrap().unwrap();
    assert!(!is_busy(&answer), "the slot is free again: {answer:?}");
}

#[tokio::test]
async fn a_connection_that_never_reads_its_answers_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections: 1,
        idle_timeout: Duration::from_millis(300),
    };
    let path = start(dir.path(), limits);
    let stream = UnixStream::connect(&path).await.unwrap();
    let (_read, mut write) = stream.into_split();
    // Requests without end, answers never read: the answers fill the socket, the agent's write
    // cannot complete, and it must give up.
    let line = serde_json::to_string(&Request::Status).unwrap() + "\n";
    let flood = async {
        loop {
            write.write_all(line.as_bytes()).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    let ended = timeout(PATIENCE, flood).await;
    assert!(
        matches!(ended, Ok(Err(_))),
        "the agent closed the connection: {ended:?}"
    );
    let mut next = UnixStream::connect(&path).await.unwrap();
    let answer = timeout(PATIENCE, ask(&mut next)).await.unwrap().unwrap();
    assert!(!is_busy(&answer), "the slot is free again: {answer:?}");
}
