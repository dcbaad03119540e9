//! One round: the server listens, the application runs from the initiator, and the round's time
//! window is kept so its packets can be read from the run's capture afterwards.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::app::{self, AppSide, Server, ServerSide};
use crate::bed::Host;
use crate::clock::now;

/// Which capture holds a round's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Ws,
    Ss,
    Lsw,
}

/// How the application finds its server.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// It has the address: its first packet is the ACQUIRE's.
    Address,
    /// It resolves this name through this resolver first (the DNS trigger's stub).
    Resolve(SocketAddr, &'a str),
}

/// A finished round, before its wire view is read.
#[derive(Debug, Clone)]
pub struct Round {
    pub row: usize,
    pub link: Link,
    pub initiator: IpAddr,
    pub server: IpAddr,
    pub app: AppSide,
    pub received: ServerSide,
    pub retransmissions: u64,
    pub from: f64,
    pub to: f64,
}

/// Runs the application from `initiator` to `server`.
pub fn run(row: usize, link: Link, initiator: &Host, server: &Host, start: Start<'_>) -> Round {
    let listener = Server::start(&server.ns, server.addr);
    let rexmit_before = app::tcp_retransmissions(&initiator.ns);
    let from = now();
    let flag = listener.flag();
    let app = match start {
        Start::Address => app::run(&initiator.ns, initiator.addr, server.addr, &flag),
        Start::Resolve(resolver, name) => {
            let (app, addr) =
                app::run_after_lookup(&initiator.ns, initiator.addr, resolver, name, &flag);
            assert_eq!(addr, server.addr, "{name} resolved to {addr}");
            app
        }
    };
    let received = listener.finish();
    // Late TCP retransmissions of this round still count.
    std::thread::sleep(Duration::from_millis(100));
    let retransmissions = app::tcp_retransmissions(&initiator.ns) - rexmit_before;
    Round {
        row,
        link,
        initiator: initiator.addr,
        server: server.addr,
        app,
        received,
        retransmissions,
        from,
        to: now(),
    }
}
