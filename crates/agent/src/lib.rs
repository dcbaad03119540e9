//! The `oe` agent: ties DNS (oe-dns), IKE (oe-ike) and the kernel (oe-kernel) into a background service.
//!
//! This crate is the only place with tokio tasks, sockets and policy decisions.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod keys;
pub mod metrics;
pub mod service;
pub mod status;
