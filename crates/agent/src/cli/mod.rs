//! Command-line front end: one module per subcommand.

pub mod ipseckey;
pub mod keygen;
pub mod lookup;
pub mod run;
pub mod show;
