//! The agent's configuration: the types and parsing live in the policy core ([`oe_policy::config`]).

pub use oe_policy::config::*;
