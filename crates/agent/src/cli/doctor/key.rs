//! `host-key`: this host's private key (`[identity] key`) exists, loads, and only root can read
//! it. Without one the agent is an anonymous client (RFC 7619 NULL authentication): it can
//! encrypt to hosts that publish keys, but nobody can authenticate it.

use std::os::unix::fs::MetadataExt;

use oe_ike::crypto::PrivateKey;

use super::check::{Check, Verdict};
use super::Context;
use crate::keys::{self, KeyError};

const ID: &str = "host-key";

/// The check, and the key when it loads.
pub fn check(ctx: &Context) -> (Check, Option<PrivateKey>) {
    let path = &ctx.config.identity.key;
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let check = Check::new(ID, Verdict::Info, format!(
                "no key at {shown}: the agent is an anonymous client (it encrypts to hosts that publish keys; none can authenticate it)"
            ))
            .fix(format!("to be reachable encrypted: oe keygen --out {shown}, then publish the records of oe ipseckey"));
            return (check, None);
        }
        Err(e) => {
            return (
                Check::new(ID, Verdict::Fail, format!("cannot read {shown}: {e}")),
                None,
            )
        }
    };
    let key = match keys::load_private_key(path) {
        Ok(key) => key,
        Err(e @ (KeyError::Read { .. } | KeyError::Invalid(_))) => {
            let check = Check::new(ID, Verdict::Fail, e.to_string())
                .fix("run oe doctor as root, or replace the key: oe keygen --force (then publish the new records)");
            return (check, None);
        }
        Err(e) => return (Check::new(ID, Verdict::Fail, e.to_string()), None),
    };
    let described = key.public_key().describe();
    let check = if meta.mode() & 0o077 != 0 {
        Check::new(
            ID,
            Verdict::Warn,
            format!(
                "{shown} ({described}) is readable by others (mode {:o})",
                meta.mode() & 0o777
            ),
        )
        .fix(format!("chmod 600 {shown}"))
    } else {
        Check::new(ID, Verdict::Ok, format!("{shown}: {described}"))
    };
    (check, Some(key))
}
