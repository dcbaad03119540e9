//! The stub's listeners and the path of one query: inspect, forward (with the trigger running
//! beside it), hold, answer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::config::{StubConfig, StubError};
use super::decide::Trigger;
use super::hook::TriggerHook;
use super::message::{inspect_query, QueryAction, Question, Rcode, HEADER_LEN};
use super::stats::{Stats, StubStats};
use super::upstream::{Transport, Upstream};
use crate::cache::{KeyCache, Lookup};

/// The stub's listening sockets, bound by [`Listeners::bind`] or handed in (sockets the agent
/// opened itself, or received from systemd).
#[derive(Debug)]
pub struct Listeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on every address. Port 53 needs `CAP_NET_BIND_SERVICE`.
    pub async fn bind(addrs: &[SocketAddr]) -> io::Result<Self> {
        let mut listeners = Self {
            udp: Vec::new(),
            tcp: Vec::new(),
        };
        for addr in addrs {
            let udp = UdpSocket::bind(addr).await?;
            // Port 0 binds TCP to the port UDP got, so both serve one address.
            let tcp = TcpListener::bind(udp.local_addr()?).await?;
            listeners.udp.push(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }

    /// Sockets opened elsewhere (made non-blocking here). Must be called inside a tokio runtime.
    pub fn from_std(
        udp: Vec<std::net::UdpSocket>,
        tcp: Vec<std::net::TcpListener>,
    ) -> io::Result<Self> {
        let udp = udp
            .into_iter()
            .map(|s| {
                s.set_nonblocking(true)?;
                UdpSocket::from_std(s)
            })
            .collect::<io::Result<_>>()?;
        let tcp = tcp
            .into_iter()
            .map(|s| {
                s.set_nonblocking(true)?;
                TcpListener::from_std(s)
            })
            .collect::<io::Result<_>>()?;
        Ok(Self { udp, tcp })
    }

    /// The addresses listened on (UDP, then TCP).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let udp = self.udp.iter().filter_map(|s| s.local_addr().ok());
        let tcp = self.tcp.iter().filter_map(|s| s.local_addr().ok());
        let mut all: Vec<SocketAddr> = udp.chain(tcp).collect();
        all.dedup();
        all
    }
}

/// A running stub. Dropping it stops the listeners (queries in flight finish on their own).
#[derive(Debug)]
pub struct Stub {
    stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl Stub {
    /// Starts serving on `listeners` as tasks of the current tokio runtime (must be called inside
    /// one). IPSECKEY and address lookups go through `cache` (share the agent's, so the ACQUIRE
    /// path and the stub see the same outcomes); trigger decisions go to `hook`.
    pub fn serve<L: Lookup, H: TriggerHook>(
        config: StubConfig,
        listeners: Listeners,
        cache: KeyCache<L>,
        hook: Arc<H>,
    ) -> Result<Self, StubError> {
        let addrs = listeners.local_addrs();
        config.check(&addrs)?;
        let stats = Arc::new(Stats::default());
        let ctx = Arc::new(Ctx {
            upstream: Upstream::new(&config),
            trigger: Arc::new(Trigger {
                cache,
                hook,
                stats: stats.clone(),
                hold: config.hold,
            }),
            queries: Arc::new(Semaphore::new(config.max_in_flight)),
            connections: Arc::new(Semaphore::new(config.max_tcp_connections)),
            stats: stats.clone(),
            config,
        });
        let mut tasks = Vec::new();
        for socket in listeners.udp {
            tasks.push(tokio::spawn(udp_loop(ctx.clone(), Arc::new(socket))));
        }
        for listener in listeners.tcp {
            tasks.push(tokio::spawn(tcp_loop(ctx.clone(), listener)));
        }
        Ok(Self {
            stats,
            tasks,
            addrs,
        })
    }

    /// Counters and the latest trigger events.
    pub fn stats(&self) -> StubStats {
        self.stats.snapshot()
    }

    /// The addresses served.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops the listeners and returns once their sockets are closed (so the addresses can be
    /// bound again, e.g. on reload). Queries in flight finish on their own.
    pub async fn shutdown(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Ctx<L, H> {
    config: StubConfig,
    upstream: Upstream,
    trigger: Arc<Trigger<L, H>>,
    queries: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl<L: Lookup, H: TriggerHook> Ctx<L, H> {
    /// The bytes to answer `query` with, or nothing.
    async fn handle(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let reply = match inspect_query(query) {
            QueryAction::Drop => {
                self.stats.bump(|c| &c.dropped);
                return None;
            }
            QueryAction::Reply(reply, Rcode::NotImp) => {
                self.stats.bump(|c| &c.notimp);
                reply
            }
            QueryAction::Reply(reply, _) => {
                self.stats.bump(|c| &c.formerr);
                reply
            }
            QueryAction::Forward(question) => self.resolve(&question, query, transport).await,
        };
        self.stats.bump(|c| &c.answered);
        Some(reply)
    }

    /// Forwards the query; an A/AAAA query starts its trigger first, so the IPSECKEY lookup
    /// runs in parallel with the forwarding, and its answer waits for the trigger's release.
    async fn resolve(&self, question: &Question, query: &[u8], transport: Transport) -> Vec<u8> {
        let pending = question.asks_addresses().then(|| {
            self.stats.bump(|c| &c.address_queries);
            self.trigger.start(question)
        });
        self.stats.bump(|c| &c.forwarded);
        let response = match self.upstream.forward(question, query, transport).await {
            Ok(response) => response,
            Err(why) => {
                tracing::debug!(name = %question.name, %why, "no upstream answered");
                self.stats.bump(|c| &c.upstream_failures);
                return question.reply(Rcode::ServFail);
            }
        };
        match pending {
            Some(p) => {
                p.hold(question, response, self.config.hold, &self.stats)
                    .await
            }
            None => response,
        }
    }

    /// A UDP query over the size limit: FORMERR when there is a query header to answer.
    fn oversized(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let header = bytes.get(..HEADER_LEN)?;
        match inspect_query(header) {
            QueryAction::Reply(reply, _) => {
                self.stats.bump(|c| &c.formerr);
                Some(reply)
            }
            _ => {
                self.stats.bump(|c| &c.dropped);
                None
            }
        }
    }
}

async fn udp_loop<L: Lookup, H: TriggerHook>(ctx: Arc<Ctx<L, H>>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0; ctx.config.max_query_size + 1];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!(error = %e, "DNS stub: UDP receive");
                tokio::task::yield_now().await;
                continue;
            }
        };
        ctx.stats.bump(|c| &c.udp_queries);
        let bytes = buf.get(..n).unwrap_or_default().to_vec();
        if n > ctx.config.max_query_size {
            if let Some(reply) = ctx.oversized(&bytes) {
                let _ = socket.send_to(&reply, peer).await;
            }
            continue;
        }
        let Ok(permit) = ctx.queries.clone().try_acquire_owned() else {
            ctx.stats.bump(|c| &c.shed);
            continue;
        };
        let (ctx, socket) = (ctx.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(reply) = ctx.handle(&bytes, Transport::Udp).await {
                let _ = socket.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

async fn tcp_loop<L: Lookup, H: TriggerHook>(ctx: Arc<Ctx<L, H>>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "DNS stub: TCP accept");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
            ctx.stats.bump(|c| &c.shed);
            continue;
        };
        ctx.stats.bump(|c| &c.tcp_connections);
        tokio::spawn(connection(ctx.clone(), stream, permit));
    }
}

/// One TCP connection: queries read in sequence, answered as they complete (RFC 7766 section
/// 6.2.1.1), at most `max_tcp_pipeline` at once; closed when idle, on a bad frame, by the peer,
/// or when an answer cannot be written within `tcp_write_timeout` (a client that does not read).
///
/// A query holds one of the stub's query permits only while it is resolved: the permit is
/// released once the answer is ready, so a client that never reads cannot hold permits the other
/// clients need. Its pipeline slot travels with the answer to the writer and is released when the
/// answer is written, so a connection never holds more than `max_tcp_pipeline` answers.
async fn connection<L: Lookup, H: TriggerHook>(
    ctx: Arc<Ctx<L, H>>,
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
) {
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Answer>(ctx.config.max_tcp_pipeline);
    let write = write_answers(writer, rx, ctx.clone());
    tokio::pin!(write);
    tokio::select! {
        // The writer gave up (the client does not read, or the connection broke): close.
        () = &mut write => {}
        // Reading ended (idle, closed, bad frame): the answers still being resolved are written,
        // each within the write timeout; they hold the senders, so the writer ends after them.
        () = read_queries(&ctx, reader, tx) => write.await,
    }
}

/// An answer on its way to a TCP client, with the pipeline slot it occupies.
type Answer = (Vec<u8>, OwnedSemaphorePermit);

async fn read_queries<L: Lookup, H: TriggerHook>(
    ctx: &Arc<Ctx<L, H>>,
    mut reader: OwnedReadHalf,
    tx: mpsc::Sender<Answer>,
) {
    let pipeline = Arc::new(Semaphore::new(ctx.config.max_tcp_pipeline));
    loop {
        let frame = tokio::time::timeout(
            ctx.config.tcp_idle_timeout,
            read_frame(&mut reader, ctx.config.max_query_size),
        )
        .await;
        let query = match frame {
            Ok(Ok(Frame::Query(query))) => query,
            Ok(Ok(Frame::Bad)) => {
                ctx.stats.bump(|c| &c.dropped);
                return;
            }
            // Idle, closed by the peer, or an I/O error.
            _ => return,
        };
        ctx.stats.bump(|c| &c.tcp_queries);
        let Ok(slot) = pipeline.clone().acquire_owned().await else {
            return;
        };
        let Ok(permit) = ctx.queries.clone().acquire_owned().await else {
            return;
        };
        let (ctx, tx) = (ctx.clone(), tx.clone());
        tokio::spawn(async move {
            let reply = ctx.handle(&query, Transport::Tcp).await;
            drop(permit);
            if let Some(reply) = reply {
                // Fails only when the writer is gone (the connection is closing).
                let _ = tx.send((reply, slot)).await;
            }
        });
    }
}

/// Writes answers with their length prefix (RFC 1035 section 4.2.2); returns when every sender
/// is gone, on a write error, or when one answer could not be written within the timeout.
async fn write_answers<L: Lookup, H: TriggerHook>(
    mut writer: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Answer>,
    ctx: Arc<Ctx<L, H>>,
) {
    while let Some((reply, slot)) = rx.recv().await {
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        match tokio::time::timeout(ctx.config.tcp_write_timeout, writer.write_all(&framed)).await {
            Ok(Ok(())) => drop(slot),
            Ok(Err(_)) => return,
            Err(_) => {
                ctx.stats.bump(|c| &c.tcp_write_timeouts);
                return;
            }
        }
    }
}

enum Frame {
    Query(Vec<u8>),
    /// A zero or over-limit length prefix: the stream cannot be trusted further.
    Bad,
}

async fn read_frame(reader: &mut OwnedReadHalf, max: usize) -> io::Result<Frame> {
    let len = usize::from(reader.read_u16().await?);
    if len == 0 || len > max {
        return Ok(Frame::Bad);
    }
    let mut query = vec![0; len];
    reader.read_exact(&mut query).await?;
    Ok(Frame::Query(query))
}
