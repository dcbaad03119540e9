//! `oe ipseckey`: prints the IPSECKEY records (RFC 4025) that publish this host's public key, in
//! zone-file form, for each name (forward zone) and each address (its reverse name under
//! in-addr.arpa. or ip6.arpa.), with gateway type 0: the host itself is the IPsec peer.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use oe_dns::{Gateway, IpsecKey, LookupTarget, PublicKey};

use super::keygen::{config_or_defaults, EXIT_USAGE};
use crate::keys;

/// Arguments of `oe ipseckey`.
#[derive(Debug, clap::Args)]
pub struct IpseckeyArgs {
    /// The private key [default: the configuration's identity.key].
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// A name of this host to publish the key under; repeatable. Without --name and --address,
    /// the name of identity.id = "fqdn:<name>".
    #[arg(long = "name", value_name = "FQDN")]
    pub names: Vec<String>,
    /// An address of this host, published under its reverse name; repeatable.
    #[arg(long = "address", value_name = "ADDR")]
    pub addresses: Vec<IpAddr>,
    /// The records' precedence (lower is preferred).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub precedence: u8,
    /// Configuration file (for identity.key and identity.id).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Runs `oe ipseckey`.
pub fn run(args: &IpseckeyArgs) -> ExitCode {
    let config = match config_or_defaults(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string(), 1),
    };
    let mut names = args.names.clone();
    if names.is_empty() && args.addresses.is_empty() {
        match config.identity.id.strip_prefix("fqdn:") {
            Some(name) => names.push(name.to_owned()),
            None => {
                let message = "give this host's --name FQDN and/or --address ADDR: the names peers look its key up under";
                return fail(message, EXIT_USAGE);
            }
        }
    }
    let owners = match owners(&names, &args.addresses) {
        Ok(owners) => owners,
        Err(message) => return fail(&message, EXIT_USAGE),
    };
    let path = args
        .key
        .clone()
        .unwrap_or_else(|| config.identity.key.clone());
    let key = match keys::load_private_key(&path) {
        Ok(key) => key,
        Err(e @ keys::KeyError::Read { .. }) => {
            return fail(
                &format!("{e}\n(make one with `oe keygen --out {}`)", path.display()),
                1,
            )
        }
        Err(e) => return fail(&e.to_string(), 1),
    };
    let public = key.public_key();
    println!(
        "; IPSECKEY records for the {} key in {}",
        public.describe(),
        path.display()
    );
    println!("; publish them in DNSSEC-signed zones: peers use only keys that validate as secure");
    print!(
        "{}",
        render(&owners, &keys::ike_key_to_dns(&public), args.precedence)
    );
    ExitCode::SUCCESS
}

/// The owner names: each name as a forward target, each address as a reverse one.
fn owners(names: &[String], addresses: &[IpAddr]) -> Result<Vec<LookupTarget>, String> {
    let mut owners = Vec::new();
    for name in names {
        match name.parse::<LookupTarget>() {
            Ok(target @ LookupTarget::Forward(_)) => owners.push(target),
            Ok(LookupTarget::Reverse(_)) => {
                return Err(format!("--name {name}: an address; give it with --address"))
            }
            Err(e) => return Err(format!("--name: {e}")),
        }
    }
    owners.extend(addresses.iter().map(|a| LookupTarget::Reverse(*a)));
    Ok(owners)
}

/// One zone-file line per owner, then the identity setting that matches what was published.
pub fn render(owners: &[LookupTarget], key: &PublicKey, precedence: u8) -> String {
    let record = IpsecKey {
        precedence,
        gateway: Gateway::None,
        key: key.clone(),
    };
    let mut text = String::new();
    for owner in owners {
        text.push_str(&format!("{} IN IPSECKEY {record}\n", owner.query_name()));
    }
    text.push_str(&format!(
        "; in the agent's configuration, [identity] {}\n",
        identity_setting(owners)
    ));
    if !matches!(key, PublicKey::Rsa { .. }) {
        text.push_str("; Libreswan 4 peers use only RSA keys (algorithm 2): for them, make this host's key with `oe keygen --type rsa`\n");
    }
    text
}

/// `id = "fqdn:<first name>"` when a name was published (peers look that name up), else
/// `id = "address"` (peers look up the reverse name of the address we connect from).
fn identity_setting(owners: &[LookupTarget]) -> String {
    let fqdn = owners.iter().find_map(|o| match o {
        LookupTarget::Forward(_) => Some(o.query_name().to_string()),
        LookupTarget::Reverse(_) => None,
    });
    match fqdn {
        Some(name) => format!("id = \"fqdn:{}\"", name.trim_end_matches('.')),
        None => "id = \"address\"".to_owned(),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("oe ipseckey: {message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        PublicKey::Ed25519([7; 32])
    }

    #[test]
    fn forward_and_reverse_owners_with_the_fqdn_identity() {
        let owners = owners(
            &["Host.Example.org".into()],
            &["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
        )
        .unwrap();
        let text = render(&owners, &key(), 10);
        let lines: Vec<&str> = text.lines().collect();
        let rdata = "IN IPSECKEY 10 0 4 . BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        assert_eq!(lines[0], format!("host.example.org. {rdata}"));
        assert_eq!(lines[1], format!("7.2.0.192.in-addr.arpa. {rdata}"));
        assert_eq!(
            lines[2],
            format!(
                "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. {rdata}"
            )
        );
        assert_eq!(
            lines[3],
            "; in the agent's configuration, [identity] id = \"fqdn:host.example.org\""
        );
        assert!(lines[4].starts_with("; Libreswan"));
    }

    #[test]
    fn addresses_only_means_the_address_identity() {
        let owners = owners(&[], &["198.51.100.1".parse().unwrap()]).unwrap();
        let rsa = PublicKey::Rsa {
            exponent: vec![1, 0, 1],
            modulus: vec![0xC1; 256],
        };
        let text = render(&owners, &rsa, 20);
        assert!(
            text.starts_with("1.100.51.198.in-addr.arpa. IN IPSECKEY 20 0 2 . AwEAAc"),
            "{text}"
        );
        assert!(text.ends_with("[identity] id = \"address\"\n"), "{text}");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(owners(&["192.0.2.1".into()], &[])
            .unwrap_err()
            .contains("--address"));
        assert!(owners(&["a..b".into()], &[]).is_err());
    }
}
