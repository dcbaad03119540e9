//! The status socket: a Unix socket speaking JSON lines ([`protocol`]), served by the agent ([`server`]) and
//! used by the CLI ([`client`]). The protocol is documented in `docs/status-protocol.md`.

pub mod client;
pub use oe_policy::protocol;
pub mod server;
