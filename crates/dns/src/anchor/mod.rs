//! Trust anchors: the IANA root keys built in, or a file of DNSKEY and DS records in zone-file
//! form (as unbound's `trust-anchor-file` takes them).
//!
//! hickory's `TrustAnchors` holds DNSKEYs only. A DS anchor is resolved when the validator
//! starts: the DNSKEY RRset of the anchor's owner is fetched (unvalidated) and a key is
//! trusted only if its digest matches the DS (RFC 4034 section 5.1.4); hickory then validates
//! that DNSKEY RRset's signature with it as usual.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hickory_proto::dnssec::rdata::{DNSKEY, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKeyBuf, TrustAnchors};
use hickory_proto::rr::{LowerName, Name};
use thiserror::Error;

/// DNSKEY flag bits (RFC 4034 section 2.1.1, RFC 5011 section 7).
const ZONE_KEY: u16 = 0x0100;
const REVOKE: u16 = 0x0080;

/// A set of trust anchors.
#[derive(Clone, Default)]
pub struct AnchorSet {
    /// DNSKEY anchors: owner, algorithm, public key bytes.
    pub keys: Vec<(Name, Algorithm, Vec<u8>)>,
    /// DS anchors: owner and digest.
    pub ds: Vec<(Name, DS)>,
    /// Where they came from, for people.
    pub source: String,
}

/// Why a trust anchor file was rejected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// A record could not be parsed.
    #[error("line {line}: {message}")]
    Syntax {
        /// Line where the record starts.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file holds no usable anchor.
    #[error("no DNSKEY or DS trust anchor found")]
    Empty,
}

impl fmt::Debug for AnchorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AnchorSet({}: {} DNSKEY, {} DS)",
            self.source,
            self.keys.len(),
            self.ds.len()
        )
    }
}

impl AnchorSet {
    /// The IANA root zone KSKs built into hickory (KSK-2017, tag 20326; KSK-2024, tag 38696).
    pub fn iana() -> Self {
        let anchors = TrustAnchors::default();
        let keys = (0..anchors.len())
            .filter_map(|i| anchors.get(i))
            .map(|k| {
                use hickory_proto::dnssec::PublicKey as _;
                (Name::root(), k.algorithm(), k.public_bytes().to_vec())
            })
            .collect();
        Self {
            keys,
            ds: Vec::new(),
            source: "IANA root KSKs (built in)".into(),
        }
    }

    /// Reads a trust anchor file.
    pub fn from_file(path: &Path) -> Result<Self, AnchorError> {
        let text = std::fs::read_to_string(path).map_err(|error| AnchorError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let mut set = Self::parse(&text)?;
        set.source = format!("trust anchor file {}", path.display());
        Ok(set)
    }

    /// Parses DNSKEY and DS records in zone-file form. Comments (`;`), parentheses, an optional
    /// TTL and class are accepted; `$TTL` lines are ignored; owners must be fully qualified.
    /// Revoked keys (RFC 5011) and keys without the zone-key flag are skipped.
    pub fn parse(text: &str) -> Result<Self, AnchorError> {
        let mut set = Self {
            source: "trust anchors".into(),
            ..Self::default()
        };
        for (line, tokens) in records(text)? {
            let syntax = |message: String| AnchorError::Syntax { line, message };
            if tokens
                .first()
                .is_some_and(|t| t.eq_ignore_ascii_case("$TTL"))
            {
                continue;
            }
            let (owner, rtype, rdata) = split_record(&tokens).map_err(syntax)?;
            match rtype.to_ascii_uppercase().as_str() {
                "DNSKEY" => {
                    if let Some(key) = parse_dnskey(rdata).map_err(syntax)? {
                        set.keys.push((owner, key.0, key.1));
                    }
                }
                "DS" => set.ds.push((owner, parse_ds(rdata).map_err(syntax)?)),
                other => return Err(syntax(format!("record type {other} is not DNSKEY or DS"))),
            }
        }
        if set.keys.is_empty() && set.ds.is_empty() {
            return Err(AnchorError::Empty);
        }
        Ok(set)
    }

    /// The DNSKEY anchors as hickory takes them (DS anchors are added by [`Self::resolve_ds`]).
    pub fn trust_anchors(&self) -> TrustAnchors {
        let mut anchors = TrustAnchors::empty();
        for (owner, alg, bytes) in &self.keys {
            let key = PublicKeyBuf::new(bytes.clone(), *alg);
            anchors.insert_with_name(&key, LowerName::from(owner));
        }
        anchors
    }

    /// Adds to `anchors` each key of `owner`'s DNSKEY RRset that matches one of our DS anchors
    /// for that owner; returns how many matched.
    pub fn resolve_ds(
        &self,
        owner: &Name,
        dnskeys: &[DNSKEY],
        anchors: &mut TrustAnchors,
    ) -> usize {
        let mut matched = 0;
        for key in dnskeys.iter().filter(|k| k.zone_key() && !k.revoke()) {
            let covered = self
                .ds
                .iter()
                .filter(|(o, _)| o == owner)
                .any(|(_, ds)| ds.covers(owner, key).unwrap_or(false));
            if covered {
                anchors.insert_with_name(key.public_key(), LowerName::from(owner));
                matched += 1;
            }
        }
        matched
    }

    /// Owners that have DS anchors.
    pub fn ds_owners(&self) -> Vec<Name> {
        let mut owners: Vec<Name> = self.ds.iter().map(|(o, _)| o.clone()).collect();
        owners.dedup();
        owners
    }
}

/// Splits the text into records: tokens with comments removed and parenthesized spans joined,
/// each tagged with the line it starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, AnchorError> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(';').next().unwrap_or("");
        if depth == 0 {
            start = i + 1;
        }
        for piece in line.split_whitespace() {
            let opens = piece.matches('(').count();
            let closes = piece.matches(')').count();
            depth = (depth + opens)
                .checked_sub(closes)
                .ok_or(AnchorError::Syntax {
                    line: i + 1,
                    message: "unbalanced parentheses".into(),
                })?;
            let token: String = piece.chars().filter(|c| *c != '(' && *c != ')').collect();
            if !token.is_empty() {
                current.push(token);
            }
        }
        if depth == 0 && !current.is_empty() {
            out.push((start, std::mem::take(&mut current)));
        }
    }
    if depth != 0 {
        return Err(AnchorError::Syntax {
            line: start,
            message: "unbalanced parentheses".into(),
        });
    }
    Ok(out)
}

/// `owner [ttl] [class] type rdata...` (TTL and class in either order).
fn split_record(tokens: &[String]) -> Result<(Name, &str, &[String]), String> {
    let (owner_text, mut rest) = tokens.split_first().ok_or("empty record")?;
    if !owner_text.ends_with('.') {
        return Err(format!("owner {owner_text:?} must be fully qualified"));
    }
    let owner = Name::from_ascii(owner_text).map_err(|e| format!("owner: {e}"))?;
    for _ in 0..2 {
        match rest.first() {
            Some(t) if t.eq_ignore_ascii_case("IN") || t.bytes().all(|b| b.is_ascii_digit()) => {
                rest = rest.get(1..).unwrap_or_default();
            }
            _ => break,
        }
    }
    let (rtype, rdata) = rest.split_first().ok_or("missing record type")?;
    Ok((owner, rtype.as_str(), rdata))
}

fn field<T: std::str::FromStr>(tokens: &[String], i: usize, what: &str) -> Result<T, String> {
    let text = tokens.get(i).ok_or_else(|| format!("missing {what}"))?;
    text.parse().map_err(|_| format!("bad {what} {text:?}"))
}

/// `flags protocol algorithm base64-key` (RFC 4034 section 2.2); `None` for keys to skip.
fn parse_dnskey(rdata: &[String]) -> Result<Option<(Algorithm, Vec<u8>)>, String> {
    let flags: u16 = field(rdata, 0, "flags")?;
    let protocol: u8 = field(rdata, 1, "protocol")?;
    let algorithm: u8 = field(rdata, 2, "algorithm")?;
    if protocol != 3 {
        return Err(format!("protocol {protocol}, must be 3"));
    }
    let b64: String = rdata.get(3..).unwrap_or_default().concat();
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| "public key is not base64".to_owned())?;
    if key.is_empty() {
        return Err("empty public key".into());
    }
    if flags & ZONE_KEY == 0 || flags & REVOKE != 0 {
        return Ok(None);
    }
    Ok(Some((Algorithm::from_u8(algorithm), key)))
}

/// `key-tag algorithm digest-type hex-digest` (RFC 4034 section 5.3).
fn parse_ds(rdata: &[String]) -> Result<DS, String> {
    let key_tag: u16 = field(rdata, 0, "key tag")?;
    let algorithm: u8 = field(rdata, 1, "algorithm")?;
    let digest_type: u8 = field(rdata, 2, "digest type")?;
    let hex_text: String = rdata.get(3..).unwrap_or_default().concat();
    let digest = hex::decode(&hex_text).map_err(|_| "digest is not hex".to_owned())?;
    if digest.is_empty() {
        return Err("empty digest".into());
    }
    Ok(DS::new(
        key_tag,
        Algorithm::from_u8(algorithm),
        DigestType::from(digest_type),
        digest,
    ))
}

#[cfg(test)]
mod tests;
