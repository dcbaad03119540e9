//! The optional metrics port (`status.metrics_listen`, off by default): `GET /metrics` over
//! HTTP/1.1 on a loopback address answers what `oe metrics` prints (OpenMetrics 1.0 text), for
//! Prometheus to scrape without an exporter. Each scrape asks the core the status socket's four
//! read-only questions through the loop, like any status client; nothing else is served.
//!
//! Bounded like the status socket: a few connections at once, a request head of at most 8 KiB
//! read within a timeout, one request per connection (`Connection: close`, RFC 9112 9.6).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::Msg;
use crate::metrics::{render, Snapshot};
use crate::status::protocol::Response;

/// Scrapes served at once; more wait in the listen queue.
const CONNECTIONS: usize = 4;
/// The longest request head read.
const HEAD_MAX: usize = 8 * 1024;
/// How long a client may take to send its request head, and the agent to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 9112 section 2: the media type of OpenMetrics text.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves scrapes until the loop ends.
pub(crate) async fn serve(listener: TcpListener, tx: mpsc::Sender<Msg>) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(TIMEOUT, answer(stream, &tx)).await;
            drop(permit);
        });
    }
}

/// One request, one answer.
async fn answer(mut stream: TcpStream, tx: &mpsc::Sender<Msg>) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let reply = match request_line(&head) {
        Some(("GET", "/metrics")) => match snapshot(tx).await {
            Some(s) => response("200 OK", CONTENT_TYPE, &render(&s)),
            None => response(
                "503 Service Unavailable",
                "text/plain",
                "the agent did not answer\n",
            ),
        },
        Some(("GET", _)) => response("404 Not Found", "text/plain", "only /metrics is served\n"),
        Some(_) => response(
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n",
        ),
        None => response("400 Bad Request", "text/plain", "not an HTTP/1 request\n"),
    };
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the blank line that ends the head (RFC 9112 2.1), at most [`HEAD_MAX`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_MAX {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(head)
}

/// The method and target of an HTTP/1.x request line (RFC 9112 3).
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (version.starts_with("HTTP/1.") && parts.next().is_none()).then_some((method, target))
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The four reports, asked of the core through the loop.
async fn snapshot(tx: &mpsc::Sender<Msg>) -> Option<Snapshot> {
    let mut reports = Vec::new();
    for request in Snapshot::REQUESTS {
        let (reply, answer) = oneshot::channel();
        tx.send(Msg::Query { request, reply }).await.ok()?;
        match answer.await.ok()? {
            Response::Ok { result, .. } => reports.push(result),
            _ => return None,
        }
    }
    Snapshot::from_reports(reports)
}

#[cfg(test)]
mod tests {
    use super::request_line;

    #[test]
    fn request_lines_are_read_strictly() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_line(b"GET /metrics HTTP/2 extra\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe\r\n"), None);
        assert_eq!(request_line(b""), None);
    }
}
