//! The generic payload header and payload chains (RFC 7296 3.2).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Payload  |C|  RESERVED   |         Payload Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::cp::CpPayload;
use super::delete::DeletePayload;
use super::id::Identity;
use super::notify::NotifyPayload;
use super::registry::PayloadType;
use super::sa::SaPayload;
use super::simple::{AuthPayload, CertPayload, KePayload, NoncePayload};
use super::ts::TsPayload;
use super::{Reader, WireError, Writer};

/// Generic payload header size.
pub const GENERIC_HEADER_LEN: usize = 4;
const CRITICAL: u8 = 0x80;

/// Any payload we can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    Sa(SaPayload),
    Ke(KePayload),
    IdI(Identity),
    IdR(Identity),
    Cert(CertPayload),
    CertReq(CertPayload),
    Auth(AuthPayload),
    Nonce(NoncePayload),
    Notify(NotifyPayload),
    Delete(DeletePayload),
    Vendor(Vec<u8>),
    TsI(TsPayload),
    TsR(TsPayload),
    /// Configuration (RFC 7296 3.15).
    Cp(CpPayload),
    /// Encrypted and Authenticated payload (RFC 7296 3.14); always last.
    Sk(Encrypted),
    /// Encrypted and Authenticated Fragment (RFC 7383 2.5); always last and alone.
    Skf(Fragment),
    /// A payload we do not process, skipped because its critical bit is clear.
    Unknown {
        ty: PayloadType,
        critical: bool,
        body: Vec<u8>,
    },
}

/// The SK payload as received: still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// Type of the first payload inside (the SK payload's Next Payload field).
    pub first_inner: PayloadType,
    /// Offset of `body` in the datagram: the bytes before it are the AEAD's associated data.
    pub aad_len: usize,
    /// IV || ciphertext || ICV.
    pub body: Vec<u8>,
}

/// One SKF fragment as received (RFC 7383 2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// Non-zero only in fragment number 1.
    pub first_inner: PayloadType,
    pub number: u16,
    pub total: u16,
    pub aad_len: usize,
    pub body: Vec<u8>,
}

impl Payload {
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::Sa(_) => PayloadType::SA,
            Self::Ke(_) => PayloadType::KE,
            Self::IdI(_) => PayloadType::IDI,
            Self::IdR(_) => PayloadType::IDR,
            Self::Cert(_) => PayloadType::CERT,
            Self::CertReq(_) => PayloadType::CERTREQ,
            Self::Auth(_) => PayloadType::AUTH,
            Self::Nonce(_) => PayloadType::NONCE,
            Self::Notify(_) => PayloadType::NOTIFY,
            Self::Delete(_) => PayloadType::DELETE,
            Self::Vendor(_) => PayloadType::VENDOR,
            Self::TsI(_) => PayloadType::TSI,
            Self::TsR(_) => PayloadType::TSR,
            Self::Cp(_) => PayloadType::CP,
            Self::Sk(_) => PayloadType::SK,
            Self::Skf(_) => PayloadType::SKF,
            Self::Unknown { ty, .. } => *ty,
        }
    }

    fn parse_body(ty: PayloadType, body: &[u8]) -> Result<Option<Self>, WireError> {
        Ok(Some(match ty {
            PayloadType::SA => Self::Sa(SaPayload::parse(body)?),
            PayloadType::KE => Self::Ke(KePayload::parse(body)?),
            PayloadType::IDI => Self::IdI(Identity::parse(body)?),
            PayloadType::IDR => Self::IdR(Identity::parse(body)?),
            PayloadType::CERT => Self::Cert(CertPayload::parse(body)?),
            PayloadType::CERTREQ => Self::CertReq(CertPayload::parse(body)?),
            PayloadType::AUTH => Self::Auth(AuthPayload::parse(body)?),
            PayloadType::NONCE => Self::Nonce(NoncePayload::parse(body)?),
            PayloadType::NOTIFY => Self::Notify(NotifyPayload::parse(body)?),
            PayloadType::DELETE => Self::Delete(DeletePayload::parse(body)?),
            PayloadType::VENDOR => Self::Vendor(body.to_vec()),
            PayloadType::TSI => Self::TsI(TsPayload::parse(body)?),
            PayloadType::TSR => Self::TsR(TsPayload::parse(body)?),
            PayloadType::CP => Self::Cp(CpPayload::parse(body)?),
            _ => return Ok(None),
        }))
    }

    fn emit_body(&self, w: &mut Writer) {
        match self {
            Self::Sa(p) => p.emit(w),
            Self::Ke(p) => p.emit(w),
            Self::IdI(p) | Self::IdR(p) => p.emit(w),
            Self::Cert(p) | Self::CertReq(p) => p.emit(w),
            Self::Auth(p) => p.emit(w),
            Self::Nonce(p) => p.emit(w),
            Self::Notify(p) => p.emit(w),
            Self::Delete(p) => p.emit(w),
            Self::TsI(p) | Self::TsR(p) => p.emit(w),
            Self::Cp(p) => p.emit(w),
            Self::Sk(e) => w.bytes(&e.body),
            Self::Skf(f) => {
                w.u16(f.number);
                w.u16(f.total);
                w.bytes(&f.body);
            }
            Self::Vendor(b) | Self::Unknown { body: b, .. } => w.bytes(b),
        }
    }

    /// Size of the body, without the generic header.
    pub fn body_len(&self) -> usize {
        match self {
            Self::Sa(p) => p.buffer_len(),
            Self::Ke(p) => p.buffer_len(),
            Self::IdI(p) | Self::IdR(p) => p.buffer_len(),
            Self::Cert(p) | Self::CertReq(p) => p.buffer_len(),
            Self::Auth(p) => p.buffer_len(),
            Self::Nonce(p) => p.buffer_len(),
            Self::Notify(p) => p.buffer_len(),
            Self::Delete(p) => p.buffer_len(),
            Self::TsI(p) | Self::TsR(p) => p.buffer_len(),
            Self::Cp(p) => p.buffer_len(),
            Self::Sk(e) => e.body.len(),
            Self::Skf(f) => 4 + f.body.len(),
            Self::Vendor(b) | Self::Unknown { body: b, .. } => b.len(),
        }
    }

    /// Size including the generic header.
    pub fn buffer_len(&self) -> usize {
        GENERIC_HEADER_LEN + self.body_len()
    }

    /// The Next Payload value this payload's own header carries when it is last in a chain.
    fn chain_end(&self) -> PayloadType {
        match self {
            Self::Sk(e) => e.first_inner,
            Self::Skf(f) => f.first_inner,
            _ => PayloadType::NONE,
        }
    }
}

/// Parses a chain of payloads starting with type `first`.
///
/// `base` is the offset of `bytes` within the datagram (recorded for SK/SKF associated data).
pub fn parse_chain(
    first: PayloadType,
    bytes: &[u8],
    base: usize,
) -> Result<Vec<Payload>, WireError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    let mut ty = first;
    while ty != PayloadType::NONE {
        let next = PayloadType(r.u8("payload header")?);
        let critical = r.u8("payload header")? & CRITICAL != 0;
        let len = usize::from(r.u16("payload header")?);
        let body_len = len
            .checked_sub(GENERIC_HEADER_LEN)
            .ok_or(WireError::BadLength { what: "payload" })?;
        let aad_len = base + r.position();
        let body = r.take(body_len, "payload body")?;
        if ty == PayloadType::SK || ty == PayloadType::SKF {
            // RFC 7296 3.14 / RFC 7383 2.5: the encrypted payload is the last one.
            r.finish("encrypted payload")?;
            out.push(encrypted(ty, next, aad_len, body)?);
            return Ok(out);
        }
        match Payload::parse_body(ty, body)? {
            Some(p) => out.push(p),
            None if critical => return Err(WireError::UnsupportedCritical { payload: ty }),
            None => out.push(Payload::Unknown {
                ty,
                critical,
                body: body.to_vec(),
            }),
        }
        ty = next;
    }
    r.finish("payload chain")?;
    Ok(out)
}

fn encrypted(
    ty: PayloadType,
    next: PayloadType,
    aad_len: usize,
    body: &[u8],
) -> Result<Payload, WireError> {
    if ty == PayloadType::SK {
        return Ok(Payload::Sk(Encrypted {
            first_inner: next,
            aad_len,
            body: body.to_vec(),
        }));
    }
    let mut r = Reader::new(body);
    let number = r.u16("SKF payload")?;
    let total = r.u16("SKF payload")?;
    // RFC 7383 2.5: numbers start at 1 and never exceed the total.
    if number == 0 || number > total {
        return Err(WireError::Invalid {
            what: "fragment number",
        });
    }
    let body = r.rest().to_vec();
    Ok(Payload::Skf(Fragment {
        first_inner: next,
        number,
        total,
        aad_len: aad_len + 4,
        body,
    }))
}

/// Emits a chain of payloads and returns the type of the first (NONE when empty).
pub fn emit_chain(payloads: &[Payload], w: &mut Writer) -> PayloadType {
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map_or_else(|| p.chain_end(), Payload::payload_type);
        emit_generic_header(
            w,
            next,
            matches!(p, Payload::Unknown { critical: true, .. }),
            p.body_len(),
        );
        p.emit_body(w);
    }
    payloads
        .first()
        .map_or(PayloadType::NONE, Payload::payload_type)
}

/// Size of a chain including generic headers.
pub fn chain_len(payloads: &[Payload]) -> usize {
    payloads.iter().map(Payload::buffer_len).sum()
}

/// Writes one generic payload header for a body of `body_len` bytes.
pub(crate) fn emit_generic_header(
    w: &mut Writer,
    next: PayloadType,
    critical: bool,
    body_len: usize,
) {
    w.u8(next.0);
    w.u8(if critical { CRITICAL } else { 0 });
    w.u16(u16::try_from(GENERIC_HEADER_LEN + body_len).unwrap_or(u16::MAX));
}
