//! Crate-internal tests that need the engine's own state: a peer that misbehaves with valid keys
//! (built from our own IKE SA's keys), and the size of the endpoint's indexes.

mod bounds;
mod hostile;
mod pair;
mod selectors;
