//! Forwarding one query to the upstream resolvers: a fresh socket per attempt (random source port,
//! passed through the socket hook before it connects), a random ID on the wire and the
//! application's ID restored on the answer, responses matched on ID and question (RFC 5452
//! section 9.1) with mismatches ignored, bounded by a timeout per attempt.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};

use super::config::{SocketHook, StubConfig};
use super::message::{check_response, set_id, Question};

/// Largest DNS message (the TCP length prefix is 16 bits; a UDP datagram cannot be larger).
const MAX_MESSAGE: usize = 65_535;

/// How the application's query came, and so how it is forwarded: a UDP query goes upstream over
/// UDP (a truncated answer is passed on, and the application retries over TCP), a TCP query
/// over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

pub(crate) struct Upstream {
    /// Replaced whole when the system's resolvers change (a new network); each query forwards
    /// to the list it started with.
    servers: RwLock<Arc<Vec<SocketAddr>>>,
    timeout: Duration,
    attempts: usize,
    hook: Option<SocketHook>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("servers", &self.servers())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub(crate) fn new(config: &StubConfig) -> Self {
        Self {
            servers: RwLock::new(Arc::new(config.upstreams.clone())),
            timeout: config.upstream_timeout,
            attempts: config.upstream_attempts,
            hook: config.upstream_socket.clone(),
            rng: SystemRandom::new(),
        }
    }

    /// The servers queries go to now.
    pub(crate) fn servers(&self) -> Arc<Vec<SocketAddr>> {
        self.servers
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Forwards to `servers` from now on.
    pub(crate) fn set_servers(&self, servers: Vec<SocketAddr>) {
        match self.servers.write() {
            Ok(mut s) => *s = Arc::new(servers),
            Err(e) => *e.into_inner() = Arc::new(servers),
        }
    }

    /// The upstream's answer to `query`, with the application's ID; or why none came.
    pub(crate) async fn forward(
        &self,
        question: &Question,
        query: &[u8],
        transport: Transport,
    ) -> Result<Vec<u8>, String> {
        let mut last = String::from("no upstream");
        let servers = self.servers();
        for _ in 0..self.attempts {
            for &server in servers.iter() {
                let id = self.random_id();
                let mut wire = query.to_vec();
                set_id(&mut wire, id);
                let attempt = async {
                    match transport {
                        Transport::Udp => self.udp(server, &wire, question, id).await,
                        Transport::Tcp => self.tcp(server, &wire, question, id).await,
                    }
                };
                match tokio::time::timeout(self.timeout, attempt).await {
                    Ok(Ok(mut response)) => {
                        set_id(&mut response, question.id);
                        return Ok(response);
                    }
                    Ok(Err(e)) => last = format!("{server}: {e}"),
                    Err(_) => last = format!("{server}: no answer within {:?}", self.timeout),
                }
            }
        }
        Err(last)
    }

    fn random_id(&self) -> u16 {
        let mut id = [0; 2];
        // SystemRandom only fails when the OS has no randomness; a fixed ID is still correct.
        let _ = self.rng.fill(&mut id);
        u16::from_be_bytes(id)
    }

    fn prepare(&self, socket: &impl AsFd) -> io::Result<()> {
        match &self.hook {
            Some(hook) => hook(socket.as_fd()),
            None => Ok(()),
        }
    }

    async fn udp(
        &self,
        server: SocketAddr,
        wire: &[u8],
        question: &Question,
        id: u16,
    ) -> io::Result<Vec<u8>> {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = std::net::UdpSocket::bind(local)?;
        self.prepare(&socket)?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        socket.connect(server).await?;
        socket.send(wire).await?;
        let mut buf = vec![0; MAX_MESSAGE];
        loop {
            let n = socket.recv(&mut buf).await?;
            let response = buf.get(..n).unwrap_or_default();
            // Anything else (late, spoofed, another question) is ignored; the timeout bounds it.
            if check_response(question, id, response).is_ok() {
                return Ok(response.to_vec());
            }
        }
    }

    async fn tcp(
        &self,
        server: SocketAddr,
        wire: &[u8],
        question: &Question,
        id: u16,
    ) -> io::Result<Vec<u8>> {
        let socket = if server.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        self.prepare(&socket)?;
        let mut stream = socket.connect(server).await?;
        let len = u16::try_from(wire.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(wire);
        stream.write_all(&framed).await?;
        let len = usize::from(stream.read_u16().await?);
        let mut response = vec![0; len];
        stream.read_exact(&mut response).await?;
        check_response(question, id, &response)
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, format!("{m:?} response")))?;
        Ok(response)
    }
}
