//! Small fixed-layout payloads: KE (3.4), Nonce (3.9), AUTH (3.8), CERT (3.6), CERTREQ (3.7).

use super::registry::{AuthMethodId, CertEncoding};
use super::{Reader, WireError, Writer};

/// Key Exchange payload (RFC 7296 3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KePayload {
    /// The key exchange method (Transform Type 4 ID).
    pub group: u16,
    pub data: Vec<u8>,
}

impl KePayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let group = r.u16("KE payload")?;
        let _reserved = r.u16("KE payload")?;
        Ok(Self {
            group,
            data: r.rest().to_vec(),
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u16(self.group);
        w.u16(0);
        w.bytes(&self.data);
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }
}

/// Nonce payload (RFC 7296 3.9): between 16 and 256 octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoncePayload(pub Vec<u8>);

impl NoncePayload {
    pub const MIN: usize = 16;
    pub const MAX: usize = 256;

    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        if !(Self::MIN..=Self::MAX).contains(&body.len()) {
            return Err(WireError::BadLength { what: "nonce" });
        }
        Ok(Self(body.to_vec()))
    }

    pub fn emit(&self, w: &mut Writer) {
        w.bytes(&self.0);
    }

    pub fn buffer_len(&self) -> usize {
        self.0.len()
    }
}

/// Authentication payload (RFC 7296 3.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPayload {
    pub method: AuthMethodId,
    pub data: Vec<u8>,
}

impl AuthPayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let method = AuthMethodId(r.u8("AUTH payload")?);
        let _reserved = r.take(3, "AUTH payload")?;
        Ok(Self {
            method,
            data: r.rest().to_vec(),
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.method.0);
        w.bytes(&[0; 3]);
        w.bytes(&self.data);
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }
}

/// CERT and CERTREQ payloads share a layout: encoding, then data (RFC 7296 3.6, 3.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPayload {
    pub encoding: CertEncoding,
    pub data: Vec<u8>,
}

impl CertPayload {
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let encoding = CertEncoding(r.u8("CERT payload")?);
        Ok(Self {
            encoding,
            data: r.rest().to_vec(),
        })
    }

    pub fn emit(&self, w: &mut Writer) {
        w.u8(self.encoding.0);
        w.bytes(&self.data);
    }

    pub fn buffer_len(&self) -> usize {
        1 + self.data.len()
    }
}
