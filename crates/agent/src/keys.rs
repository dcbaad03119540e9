//! Our private key on disk, and the two public-key types the agent translates between.
//!
//! - [`generate`] makes a PKCS#8 (RFC 5958) private key in PEM: Ed25519 (RFC 8410) and ECDSA
//!   P-256 with ring, RSA with the `rsa` crate (ring cannot generate RSA keys).
//! - [`write_private_key`] stores it with mode 0600, never replacing a file unless asked to.
//! - [`load_private_key`] reads it back with oe-ike's loader, the one the engine signs with.
//! - [`dns_key_to_ike`] / [`ike_key_to_dns`] convert between an IPSECKEY key field (oe-dns) and
//!   the engine's [`oe_ike::crypto::PublicKey`]. The two crates never depend on each other
//!   (ARCHITECTURE.md, API boundaries); this module is where their key types meet.

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use oe_dns::ipseckey::Usability;
use oe_dns::PublicKey as DnsKey;
use oe_ike::crypto::{PrivateKey, PublicKey as IkeKey};
use pkcs8::der::pem::LineEnding;
use pkcs8::EncodePrivateKey as _;
use zeroize::Zeroizing;

/// The kinds of key `oe keygen` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Ed25519 (RFC 8032): small and fast; published as IPSECKEY algorithm 4 (RFC 9373).
    Ed25519,
    /// ECDSA on P-256: algorithm 3 (RFC 8005), for peers without Ed25519.
    EcdsaP256,
    /// RSA with this many modulus bits: algorithm 2, for peers that take only RSA
    /// (Libreswan 4.x).
    Rsa(u32),
}

/// RSA sizes `oe keygen` offers: ring verifies 2048-8192 bits, Libreswan wants at least 2192.
pub const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// The RSA size used when none is given.
pub const RSA_DEFAULT_BITS: u32 = 3072;

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::EcdsaP256 => f.write_str("ECDSA P-256"),
            Self::Rsa(bits) => write!(f, "RSA-{bits}"),
        }
    }
}

/// Why a key could not be made, stored or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("RSA keys of {0} bits are not offered; use 2048, 3072 or 4096")]
    RsaSize(u32),
    #[error("generating the key failed: {0}")]
    Generate(String),
    #[error("{} already exists; use --force to replace it", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a private key oe can use (PKCS#8, SEC1 or PKCS#1 PEM of Ed25519, ECDSA P-256/P-384 or RSA 2048-8192)", .0.display())]
    Invalid(PathBuf),
}

/// Makes a new private key, PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn generate(kind: KeyType) -> Result<Zeroizing<String>, KeyError> {
    let der = match kind {
        KeyType::Ed25519 => ring_pkcs8(|rng| ring::signature::Ed25519KeyPair::generate_pkcs8(rng))?,
        KeyType::EcdsaP256 => ring_pkcs8(|rng| {
            let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
            ring::signature::EcdsaKeyPair::generate_pkcs8(alg, rng)
        })?,
        KeyType::Rsa(bits) => rsa_pkcs8(bits)?,
    };
    pem_encode(&der)
}

fn ring_pkcs8(
    make: impl FnOnce(
        &ring::rand::SystemRandom,
    ) -> Result<ring::pkcs8::Document, ring::error::Unspecified>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let doc = make(&ring::rand::SystemRandom::new())
        .map_err(|_| KeyError::Generate("ring could not generate the key".into()))?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

fn rsa_pkcs8(bits: u32) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if !RSA_BITS.contains(&bits) {
        return Err(KeyError::RsaSize(bits));
    }
    let size = usize::try_from(bits).map_err(|_| KeyError::RsaSize(bits))?;
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, size)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let doc = key
        .to_pkcs8_der()
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

fn pem_encode(der: &[u8]) -> Result<Zeroizing<String>, KeyError> {
    pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, der)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// Writes `pem` to `path` with mode 0600, creating missing parent folders with mode 0755.
///
/// The text goes to a temporary file in the same folder first, which then takes the final name
/// in one step: a hard link when `force` is false (so an existing file is never touched, even
/// one created meanwhile), a rename when it is true. No reader ever sees a half-written key.
pub fn write_private_key(path: &Path, pem: &str, force: bool) -> Result<(), KeyError> {
    let io = |source| KeyError::Write {
        path: path.to_owned(),
        source,
    };
    if !force && path.symlink_metadata().is_ok() {
        return Err(KeyError::Exists(path.to_owned()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io)?;
    let temp = temp_name(path);
    // A leftover of an earlier run that had our process id and died mid-write.
    let _ = std::fs::remove_file(&temp);
    let result = write_new(&temp, pem).and_then(|()| {
        if force {
            std::fs::rename(&temp, path)
        } else {
            std::fs::hard_link(&temp, path)
        }
    });
    let _ = std::fs::remove_file(&temp);
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(KeyError::Exists(path.to_owned()))
        }
        other => other.map_err(io),
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Reads our private key (PEM: PKCS#8, or SEC1/PKCS#1 made by other tools) with oe-ike's
/// loader.
pub fn load_private_key(path: &Path) -> Result<PrivateKey, KeyError> {
    let text = std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
    PrivateKey::from_pem(&text).map_err(|_| KeyError::Invalid(path.to_owned()))
}

/// The engine's form of an IPSECKEY key field, or `None` when the engine cannot authenticate
/// with it: no key, DSA, Ed448, an unknown algorithm, an RSA key outside 2048-8192 bits or with
/// an even or long exponent, or an ECDSA value that is not a point of its curve.
pub fn dns_key_to_ike(key: &DnsKey) -> Option<IkeKey> {
    if key.usability() != Usability::Usable {
        return None;
    }
    let ike = match key {
        DnsKey::Rsa { exponent, modulus } => IkeKey::Rsa {
            n: modulus.clone(),
            e: exponent.clone(),
        },
        DnsKey::EcdsaP256(xy) => IkeKey::EcdsaP256(xy.to_vec()),
        DnsKey::EcdsaP384(xy) => IkeKey::EcdsaP384(xy.to_vec()),
        DnsKey::Ed25519(k) => IkeKey::Ed25519(*k),
        _ => return None,
    };
    ike.validate().is_ok().then_some(ike)
}

/// The IPSECKEY key field that publishes one of the engine's public keys.
///
/// RSA values lose any leading zero bytes (RFC 3110 section 2 forbids them). An ECDSA value of
/// the wrong length, which a loaded key never has, becomes an uninterpreted algorithm-3 field;
/// a key type oe-dns does not know yet becomes [`DnsKey::None`].
pub fn ike_key_to_dns(key: &IkeKey) -> DnsKey {
    let ecdsa = |xy: &[u8]| DnsKey::Other {
        algorithm: oe_dns::ipseckey::algorithm::ECDSA,
        data: xy.to_vec(),
    };
    match key {
        IkeKey::Rsa { n, e } => DnsKey::Rsa {
            exponent: strip_zeros(e).to_vec(),
            modulus: strip_zeros(n).to_vec(),
        },
        IkeKey::EcdsaP256(xy) => {
            <[u8; 64]>::try_from(xy.as_slice()).map_or_else(|_| ecdsa(xy), DnsKey::EcdsaP256)
        }
        IkeKey::EcdsaP384(xy) => {
            <[u8; 96]>::try_from(xy.as_slice()).map_or_else(|_| ecdsa(xy), DnsKey::EcdsaP384)
        }
        IkeKey::Ed25519(k) => DnsKey::Ed25519(*k),
        _ => DnsKey::None,
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn round_trip(key: &PrivateKey) -> DnsKey {
        let public = key.public_key();
        let dns = ike_key_to_dns(&public);
        assert_eq!(
            dns_key_to_ike(&dns).as_ref(),
            Some(&public),
            "{}",
            public.describe()
        );
        dns
    }

    #[test]
    fn generated_keys_load_with_oe_ike_and_survive_the_conversion() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, alg, desc) in [
            (KeyType::Ed25519, 4, "Ed25519"),
            (KeyType::EcdsaP256, 3, "ECDSA-P256"),
            (KeyType::Rsa(2048), 2, "RSA-2048"),
        ] {
            let pem = generate(kind).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{kind}");
            let path = dir.path().join(format!("{desc}.pem"));
            write_private_key(&path, &pem, false).unwrap();
            let key = load_private_key(&path).unwrap();
            assert_eq!(key.public_key().describe(), desc);
            let dns = round_trip(&key);
            assert_eq!(dns.algorithm(), alg);
        }
    }

    /// The test bed's keys (made with OpenSSL) and the IPSECKEY key fields published for them.
    #[test]
    fn committed_test_keys_match_their_published_records() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integration/keys");
        let list = std::fs::read_to_string(dir.join("ipseckey.txt")).unwrap();
        let mut seen = 0;
        for line in list
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let [name, alg, base64] = line.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("bad line {line:?}");
            };
            let key = load_private_key(&dir.join(format!("{name}.pem"))).unwrap();
            let published = format!("10 0 {alg} . {base64}");
            let record = oe_dns::IpsecKey {
                precedence: 10,
                gateway: oe_dns::Gateway::None,
                key: round_trip(&key),
            };
            assert_eq!(record.to_string(), published, "{name}");
            let parsed: oe_dns::IpsecKey = published.parse().unwrap();
            assert_eq!(
                dns_key_to_ike(&parsed.key),
                Some(key.public_key()),
                "{name}"
            );
            seen += 1;
        }
        assert_eq!(seen, 5);
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = generate(KeyType::Ed25519).unwrap();
        let b = generate(KeyType::Ed25519).unwrap();
        assert_ne!(*a, *b);
    }

    #[test]
    fn odd_rsa_sizes_are_refused_before_any_work() {
        assert!(matches!(
            generate(KeyType::Rsa(1024)),
            Err(KeyError::RsaSize(1024))
        ));
        assert!(matches!(
            generate(KeyType::Rsa(3000)),
            Err(KeyError::RsaSize(3000))
        ));
    }

    #[test]
    fn written_keys_are_private_and_never_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/oe/key.pem");
        write_private_key(&path, "first", false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o755 & !umask());
        let err = write_private_key(&path, "second", false).unwrap_err();
        assert!(matches!(err, KeyError::Exists(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_key(&path, "second", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(mode(&path), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
    }

    fn umask() -> u32 {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::DirBuilder::new()
            .mode(0o777)
            .create(&probe)
            .unwrap();
        !std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn loading_garbage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = load_private_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Invalid(_)));
        assert!(err.to_string().contains("key.pem"), "{err}");
        let missing = load_private_key(&dir.path().join("none.pem")).unwrap_err();
        assert!(matches!(missing, KeyError::Read { .. }), "{missing}");
    }

    #[test]
    fn keys_the_engine_cannot_use_do_not_convert() {
        let short_rsa = DnsKey::Rsa {
            exponent: vec![1, 0, 1],
            modulus: vec![0xC1; 128],
        };
        assert_eq!(dns_key_to_ike(&short_rsa), None);
        assert_eq!(dns_key_to_ike(&DnsKey::None), None);
        assert_eq!(dns_key_to_ike(&DnsKey::Ed448([1; 57])), None);
        assert_eq!(
            dns_key_to_ike(&DnsKey::Other {
                algorithm: 1,
                data: vec![1, 2]
            }),
            None
        );
        // 64 bytes that are not a P-256 point.
        assert_eq!(dns_key_to_ike(&DnsKey::EcdsaP256([0xFF; 64])), None);
    }

    #[test]
    fn rsa_leading_zeros_are_dropped_for_dns() {
        let ike = IkeKey::Rsa {
            n: vec![0, 0xC1, 2],
            e: vec![0, 1, 0, 1],
        };
        assert_eq!(
            ike_key_to_dns(&ike),
            DnsKey::Rsa {
                exponent: vec![1, 0, 1],
                modulus: vec![0xC1, 2]
            }
        );
    }
}
