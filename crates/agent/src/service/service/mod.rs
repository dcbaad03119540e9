//! Running as a system service: readiness and status for systemd ([`notify`]) and log output
//! ([`logging`]). Neither links libsystemd; both are no-ops or plain stderr outside systemd.

pub mod logging;
pub mod notify;
