//! `oe keygen`: makes this host's private key (PKCS#8 PEM, mode 0600).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, ConfigError};
use crate::keys::{self, KeyType};

/// Key types offered by `--type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyKind {
    /// Ed25519 (IPSECKEY algorithm 4): the default; strongSwan and oe use it.
    Ed25519,
    /// ECDSA P-256 (algorithm 3).
    EcdsaP256,
    /// RSA (algorithm 2), for peers that take only RSA such as Libreswan 4.
    Rsa,
}

/// Arguments of `oe keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Key type.
    #[arg(long = "type", value_enum, default_value_t = KeyKind::Ed25519)]
    pub kind: KeyKind,
    /// RSA modulus size: 2048, 3072 or 4096 (default 3072); only with --type rsa.
    #[arg(long, value_name = "N")]
    pub bits: Option<u32>,
    /// Where to write the key [default: the configuration's identity.key, /etc/oe/key.pem].
    #[arg(long, short, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Replace an existing key file (peers holding the old published key will fail to
    /// authenticate us until the new record is published).
    #[arg(long)]
    pub force: bool,
    /// Configuration file whose identity.key names the default path.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Exit status for command-line misuse (as clap's).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Runs `oe keygen`.
pub fn run(args: &KeygenArgs) -> ExitCode {
    let kind = match key_type(args.kind, args.bits) {
        Ok(kind) => kind,
        Err(message) => return fail(&message, EXIT_USAGE),
    };
    let config = match config_or_defaults(args.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string(), 1),
    };
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| config.identity.key.clone());
    if kind == KeyType::Rsa(4096) || kind == KeyType::Rsa(3072) {
        eprintln!("generating an {kind} key; this can take a few seconds");
    }
    let written = keys::generate(kind)
        .and_then(|pem| keys::write_private_key(&path, &pem, args.force))
        .and_then(|()| keys::load_private_key(&path));
    match written {
        Ok(key) => {
            print!("{}", summary(&path, &key, &config));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e.to_string(), 1),
    }
}

/// The configuration named by `--config`, or the built-in defaults (config/oe.toml).
pub fn config_or_defaults(path: Option<&Path>) -> Result<Config, ConfigError> {
    path.map_or_else(|| Ok(Config::embedded()), Config::load)
}

fn key_type(kind: KeyKind, bits: Option<u32>) -> Result<KeyType, String> {
    match (kind, bits) {
        (KeyKind::Rsa, bits) => {
            let bits = bits.unwrap_or(keys::RSA_DEFAULT_BITS);
            if keys::RSA_BITS.contains(&bits) {
                Ok(KeyType::Rsa(bits))
            } else {
                Err(format!(
                    "--bits {bits}: RSA keys are 2048, 3072 or 4096 bits"
                ))
            }
        }
        (_, Some(_)) => Err("--bits applies only to --type rsa".into()),
        (KeyKind::Ed25519, None) => Ok(KeyType::Ed25519),
        (KeyKind::EcdsaP256, None) => Ok(KeyType::EcdsaP256),
    }
}

/// What was made, the record it publishes as, and what to do next.
fn summary(path: &Path, key: &oe_ike::crypto::PrivateKey, config: &Config) -> String {
    let public = key.public_key();
    let record = oe_dns::IpsecKey {
        precedence: 10,
        gateway: oe_dns::Gateway::None,
        key: keys::ike_key_to_dns(&public),
    };
    let mut text = format!(
        "wrote an {} private key to {} (mode 0600)\nIPSECKEY RDATA: {record}\n",
        public.describe(),
        path.display()
    );
    if path != config.identity.key {
        text.push_str(&format!(
            "the agent reads {}: set [identity] key = {:?} in its configuration to use this key\n",
            config.identity.key.display(),
            path.display().to_string()
        ));
    }
    text.push_str(&format!(
        "next: `oe ipseckey --key {} --name <this host's FQDN> --address <its address>` prints the records to publish\n",
        path.display()
    ));
    text
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("oe keygen: {message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_go_with_rsa_only() {
        assert_eq!(key_type(KeyKind::Ed25519, None), Ok(KeyType::Ed25519));
        assert_eq!(key_type(KeyKind::EcdsaP256, None), Ok(KeyType::EcdsaP256));
        assert_eq!(key_type(KeyKind::Rsa, None), Ok(KeyType::Rsa(3072)));
        assert_eq!(key_type(KeyKind::Rsa, Some(2048)), Ok(KeyType::Rsa(2048)));
        assert!(key_type(KeyKind::Rsa, Some(1024)).is_err());
        assert!(key_type(KeyKind::Ed25519, Some(2048)).is_err());
    }

    #[test]
    fn summary_shows_the_record_and_the_setting_to_change() {
        let pem = keys::generate(KeyType::Ed25519).unwrap();
        let key = oe_ike::crypto::PrivateKey::from_pem(&pem).unwrap();
        let config = Config::embedded();
        let text = summary(Path::new("/tmp/k.pem"), &key, &config);
        assert!(
            text.contains("wrote an Ed25519 private key to /tmp/k.pem"),
            "{text}"
        );
        let rdata = text
            .lines()
            .find_map(|l| l.strip_prefix("IPSECKEY RDATA: "))
            .unwrap();
        let record: oe_dns::IpsecKey = rdata.parse().unwrap();
        assert_eq!(keys::dns_key_to_ike(&record.key), Some(key.public_key()));
        assert!(text.contains("key = \"/tmp/k.pem\""), "{text}");
        let default = summary(&config.identity.key, &key, &config);
        assert!(!default.contains("set [identity]"), "{default}");
    }
}
