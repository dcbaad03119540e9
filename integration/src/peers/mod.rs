//! Real IKE peers: strongSwan's charon ([`Charon`]) and Libreswan's pluto ([`Pluto`]), each started inside a
//! namespace with private state, and stopped by PID when dropped.

mod charon;
mod pluto;
mod rsa_pair;

pub use charon::{Charon, CharonSetup, DEFAULT_PLUGINS};
pub use pluto::{Pluto, PlutoSetup, CKAID};
pub use rsa_pair::{charon_rsa_transport, pluto_rsa_transport};
