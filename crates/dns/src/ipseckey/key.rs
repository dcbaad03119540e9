//! The public key field (RFC 4025 section 2.4) for each algorithm of the IANA "IPSECKEY Resource
//! Record Parameters" registry: 2 RSA (RFC 3110 section 2), 3 ECDSA (RFC 6605 section 4, RFC 8005),
//! 4 EdDSA (RFC 8080 section 3, RFC 9373).

use std::fmt;

use super::error::KeyError;

/// IPSECKEY algorithm type numbers (RFC 4025 section 2.4; RFC 8005; RFC 9373).
pub mod algorithm {
    /// No key is present.
    pub const NONE: u8 = 0;
    /// DSA (RFC 2536); obsolete, kept as [`super::PublicKey::Other`].
    pub const DSA: u8 = 1;
    /// RSA (RFC 3110 section 2).
    pub const RSA: u8 = 2;
    /// ECDSA, x || y (RFC 6605 section 4).
    pub const ECDSA: u8 = 3;
    /// EdDSA, the raw public key (RFC 8080 section 3).
    pub const EDDSA: u8 = 4;
}

/// RSA modulus sizes a signature can be checked with (ring verifies 2048-8192 bits).
pub const RSA_MIN_BITS: u32 = 2048;
/// See [`RSA_MIN_BITS`].
pub const RSA_MAX_BITS: u32 = 8192;

/// A public key from an IPSECKEY record, typed by algorithm and curve.
///
/// The IKE engine has its own key type; [`PublicKey::usability`] says which keys it can use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublicKey {
    /// Algorithm 0: the record carries no key.
    None,
    /// Algorithm 2: big-endian exponent and modulus without leading zeros.
    Rsa {
        /// The public exponent.
        exponent: Vec<u8>,
        /// The modulus.
        modulus: Vec<u8>,
    },
    /// Algorithm 3, P-256: x || y, 32 bytes each.
    EcdsaP256([u8; 64]),
    /// Algorithm 3, P-384: x || y, 48 bytes each.
    EcdsaP384([u8; 96]),
    /// Algorithm 4, Ed25519 (RFC 8032).
    Ed25519([u8; 32]),
    /// Algorithm 4, Ed448: parsed, but not usable (no implementation here).
    Ed448([u8; 57]),
    /// DSA (algorithm 1) or an unassigned algorithm: kept as bytes, not usable.
    Other {
        /// The algorithm number.
        algorithm: u8,
        /// The key field, uninterpreted.
        data: Vec<u8>,
    },
}

/// Whether a key can authenticate a peer here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    /// The IKE engine can verify signatures with this key.
    Usable,
    /// It cannot, and why.
    Unsupported(&'static str),
}

impl PublicKey {
    /// Parses the key field of a record with the given algorithm number.
    pub fn parse(algorithm: u8, data: &[u8]) -> Result<Self, KeyError> {
        if algorithm == algorithm::NONE {
            return match data.len() {
                0 => Ok(Self::None),
                n => Err(KeyError::UnexpectedKey(n)),
            };
        }
        if data.is_empty() {
            return Err(KeyError::Empty(algorithm));
        }
        match algorithm {
            algorithm::RSA => parse_rsa(data),
            algorithm::ECDSA => parse_ecdsa(data),
            algorithm::EDDSA => parse_eddsa(data),
            _ => Ok(Self::Other {
                algorithm,
                data: data.to_vec(),
            }),
        }
    }

    /// The IPSECKEY algorithm number.
    pub fn algorithm(&self) -> u8 {
        match self {
            Self::None => algorithm::NONE,
            Self::Rsa { .. } => algorithm::RSA,
            Self::EcdsaP256(_) | Self::EcdsaP384(_) => algorithm::ECDSA,
            Self::Ed25519(_) | Self::Ed448(_) => algorithm::EDDSA,
            Self::Other { algorithm, .. } => *algorithm,
        }
    }

    /// Appends the key field in wire form. RSA uses the one-byte exponent length whenever the
    /// exponent fits it (RFC 3110 section 2).
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Self::None => {}
            Self::Rsa { exponent, modulus } => {
                match u8::try_from(exponent.len()) {
                    Ok(len) => out.push(len),
                    Err(_) => {
                        out.push(0);
                        let len = u16::try_from(exponent.len()).unwrap_or(u16::MAX);
                        out.extend_from_slice(&len.to_be_bytes());
                    }
                }
                out.extend_from_slice(exponent);
                out.extend_from_slice(modulus);
            }
            Self::EcdsaP256(k) => out.extend_from_slice(k),
            Self::EcdsaP384(k) => out.extend_from_slice(k),
            Self::Ed25519(k) => out.extend_from_slice(k),
            Self::Ed448(k) => out.extend_from_slice(k),
            Self::Other { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Length of the key field in wire form.
    pub fn wire_len(&self) -> usize {
        let mut v = Vec::new();
        self.emit(&mut v);
        v.len()
    }

    /// Short name of the algorithm and curve: `RSA`, `ECDSA P-256`, `Ed25519`, ...
    pub fn kind(&self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Rsa { .. } => "RSA".into(),
            Self::EcdsaP256(_) => "ECDSA P-256".into(),
            Self::EcdsaP384(_) => "ECDSA P-384".into(),
            Self::Ed25519(_) => "Ed25519".into(),
            Self::Ed448(_) => "Ed448".into(),
            Self::Other {
                algorithm: algorithm::DSA,
                ..
            } => "DSA".into(),
            Self::Other { algorithm, .. } => format!("algorithm {algorithm}"),
        }
    }

    /// Key size in bits: the RSA modulus, the curve size, the key field otherwise.
    pub fn bits(&self) -> u32 {
        match self {
            Self::None => 0,
            Self::Rsa { modulus, .. } => significant_bits(modulus),
            Self::EcdsaP256(_) => 256,
            Self::EcdsaP384(_) => 384,
            Self::Ed25519(_) => 255,
            Self::Ed448(_) => 448,
            Self::Other { data, .. } => u32::try_from(data.len() * 8).unwrap_or(u32::MAX),
        }
    }

    /// Whether the IKE engine can verify signatures with this key.
    pub fn usability(&self) -> Usability {
        match self {
            Self::None => Usability::Unsupported("the record carries no key"),
            Self::Rsa { exponent, .. } => rsa_usability(self.bits(), exponent),
            Self::EcdsaP256(_) | Self::EcdsaP384(_) | Self::Ed25519(_) => Usability::Usable,
            Self::Ed448(_) => Usability::Unsupported("Ed448 is not implemented"),
            Self::Other {
                algorithm: algorithm::DSA,
                ..
            } => Usability::Unsupported("DSA is obsolete"),
            Self::Other { .. } => Usability::Unsupported("unknown algorithm"),
        }
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bits)", self.kind(), self.bits())
    }
}

fn rsa_usability(bits: u32, exponent: &[u8]) -> Usability {
    if bits < RSA_MIN_BITS {
        Usability::Unsupported("RSA modulus shorter than 2048 bits")
    } else if bits > RSA_MAX_BITS {
        Usability::Unsupported("RSA modulus longer than 8192 bits")
    } else if exponent.len() > 4 || exponent.last().is_some_and(|b| b & 1 == 0) {
        Usability::Unsupported("RSA exponent is even or longer than 32 bits")
    } else {
        Usability::Usable
    }
}

fn significant_bits(be: &[u8]) -> u32 {
    let first = be.first().copied().unwrap_or(0);
    let rest = u32::try_from(be.len().saturating_sub(1) * 8).unwrap_or(u32::MAX);
    rest.saturating_add(8 - first.leading_zeros())
}

/// RFC 3110 section 2: exponent length (1 byte, or 0 then 2 bytes), exponent, modulus; no
/// leading zero bytes in exponent or modulus.
fn parse_rsa(data: &[u8]) -> Result<PublicKey, KeyError> {
    let (exp_len, rest) = match data {
        [0, hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
        [0, ..] => return Err(KeyError::RsaLengthTruncated),
        [len, rest @ ..] => (usize::from(*len), rest),
        [] => return Err(KeyError::Empty(algorithm::RSA)),
    };
    if exp_len == 0 {
        return Err(KeyError::RsaEmptyExponent);
    }
    if exp_len > rest.len() {
        return Err(KeyError::RsaExponentLength {
            claimed: exp_len,
            available: rest.len(),
        });
    }
    let (exponent, modulus) = rest.split_at(exp_len);
    if modulus.is_empty() {
        return Err(KeyError::RsaEmptyModulus);
    }
    if exponent.first() == Some(&0) {
        return Err(KeyError::RsaLeadingZero("exponent"));
    }
    if modulus.first() == Some(&0) {
        return Err(KeyError::RsaLeadingZero("modulus"));
    }
    Ok(PublicKey::Rsa {
        exponent: exponent.to_vec(),
        modulus: modulus.to_vec(),
    })
}

fn parse_ecdsa(data: &[u8]) -> Result<PublicKey, KeyError> {
    if let Ok(k) = <[u8; 64]>::try_from(data) {
        Ok(PublicKey::EcdsaP256(k))
    } else if let Ok(k) = <[u8; 96]>::try_from(data) {
        Ok(PublicKey::EcdsaP384(k))
    } else {
        Err(KeyError::EcdsaLength(data.len()))
    }
}

fn parse_eddsa(data: &[u8]) -> Result<PublicKey, KeyError> {
    if let Ok(k) = <[u8; 32]>::try_from(data) {
        Ok(PublicKey::Ed25519(k))
    } else if let Ok(k) = <[u8; 57]>::try_from(data) {
        Ok(PublicKey::Ed448(k))
    } else {
        Err(KeyError::EddsaLength(data.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(exp: &[u8], modulus_len: usize) -> Vec<u8> {
        let mut v = vec![u8::try_from(exp.len()).unwrap()];
        v.extend_from_slice(exp);
        v.push(0xC1);
        v.extend(std::iter::repeat_n(0x5A, modulus_len - 1));
        v
    }

    #[test]
    fn rsa_short_and_long_exponent_length() {
        let short = rsa(&[1, 0, 1], 256);
        let key = PublicKey::parse(2, &short).unwrap();
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.usability(), Usability::Usable);
        let mut out = Vec::new();
        key.emit(&mut out);
        assert_eq!(out, short);

        // The three-byte form, legal even for a short exponent; emitted canonically.
        let mut long = vec![0, 0, 3, 1, 0, 1];
        long.extend_from_slice(&short[4..]);
        assert_eq!(PublicKey::parse(2, &long).unwrap(), key);

        // An exponent longer than 255 bytes needs the long form on emit.
        let big = PublicKey::Rsa {
            exponent: vec![1; 300],
            modulus: vec![0xC1; 256],
        };
        let mut out = Vec::new();
        big.emit(&mut out);
        assert_eq!(&out[..3], &[0, 1, 44]);
        assert_eq!(PublicKey::parse(2, &out).unwrap(), big);
    }

    #[test]
    fn rsa_errors() {
        assert_eq!(PublicKey::parse(2, &[]), Err(KeyError::Empty(2)));
        assert_eq!(PublicKey::parse(2, &[0]), Err(KeyError::RsaLengthTruncated));
        assert_eq!(
            PublicKey::parse(2, &[0, 1]),
            Err(KeyError::RsaLengthTruncated)
        );
        assert_eq!(
            PublicKey::parse(2, &[0, 0, 0, 1]),
            Err(KeyError::RsaEmptyExponent)
        );
        assert_eq!(
            PublicKey::parse(2, &[5, 1, 0, 1]),
            Err(KeyError::RsaExponentLength {
                claimed: 5,
                available: 3
            })
        );
        assert_eq!(
            PublicKey::parse(2, &[0, 1, 0, 1, 2]),
            Err(KeyError::RsaExponentLength {
                claimed: 256,
                available: 2
            })
        );
        assert_eq!(
            PublicKey::parse(2, &[3, 1, 0, 1]),
            Err(KeyError::RsaEmptyModulus)
        );
        assert_eq!(
            PublicKey::parse(2, &[1, 0, 7]),
            Err(KeyError::RsaLeadingZero("exponent"))
        );
        assert_eq!(
            PublicKey::parse(2, &[1, 3, 0, 7]),
            Err(KeyError::RsaLeadingZero("modulus"))
        );
    }

    #[test]
    fn rsa_usability_bounds() {
        let small = PublicKey::parse(2, &rsa(&[3], 128)).unwrap();
        assert_eq!(small.bits(), 1024);
        assert!(matches!(small.usability(), Usability::Unsupported(_)));
        let even = PublicKey::parse(2, &rsa(&[4], 256)).unwrap();
        assert!(matches!(even.usability(), Usability::Unsupported(_)));
        let huge = PublicKey::parse(2, &rsa(&[3], 1025)).unwrap();
        assert!(matches!(huge.usability(), Usability::Unsupported(_)));
    }

    #[test]
    fn curves_by_length() {
        assert!(matches!(
            PublicKey::parse(3, &[1; 64]),
            Ok(PublicKey::EcdsaP256(_))
        ));
        assert!(matches!(
            PublicKey::parse(3, &[1; 96]),
            Ok(PublicKey::EcdsaP384(_))
        ));
        assert_eq!(
            PublicKey::parse(3, &[1; 65]),
            Err(KeyError::EcdsaLength(65))
        );
        assert!(matches!(
            PublicKey::parse(4, &[1; 32]),
            Ok(PublicKey::Ed25519(_))
        ));
        let ed448 = PublicKey::parse(4, &[1; 57]).unwrap();
        assert_eq!(ed448.kind(), "Ed448");
        assert!(matches!(ed448.usability(), Usability::Unsupported(_)));
        assert_eq!(
            PublicKey::parse(4, &[1; 33]),
            Err(KeyError::EddsaLength(33))
        );
        assert_eq!(PublicKey::parse(4, &[]), Err(KeyError::Empty(4)));
        assert_eq!(PublicKey::parse(3, &[]), Err(KeyError::Empty(3)));
    }

    #[test]
    fn none_and_other() {
        assert_eq!(PublicKey::parse(0, &[]), Ok(PublicKey::None));
        assert_eq!(PublicKey::parse(0, &[1]), Err(KeyError::UnexpectedKey(1)));
        let dsa = PublicKey::parse(1, &[1, 2, 3]).unwrap();
        assert_eq!(dsa.kind(), "DSA");
        assert_eq!(dsa.algorithm(), 1);
        assert!(matches!(dsa.usability(), Usability::Unsupported(_)));
        assert_eq!(PublicKey::parse(200, &[]), Err(KeyError::Empty(200)));
    }
}
