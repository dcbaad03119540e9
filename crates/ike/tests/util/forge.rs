//! Hand-built datagrams an attacker who sees an IKE SA's traffic can send without its keys: the
//! SA's SPIs and a chosen message ID and exchange type, with no SK payload, or with an SK / SKF
//! payload whose ICV does not verify (RFC 7296 3.1 header, 3.14 SK, RFC 7383 2.5 SKF).
#![allow(clippy::indexing_slicing)]

/// Exchange types (RFC 7296 3.1).
pub const IKE_SA_INIT: u8 = 34;
pub const IKE_AUTH: u8 = 35;
pub const CREATE_CHILD_SA: u8 = 36;
pub const INFORMATIONAL: u8 = 37;
pub const EXCHANGES: [u8; 4] = [IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL];

const I_FLAG: u8 = 0x08;
const R_FLAG: u8 = 0x20;
const HDR: usize = 28;
const NOTIFY: u8 = 41;
const DELETE: u8 = 42;
const SK: u8 = 46;
const SKF: u8 = 53;

/// Who the forgery pretends to be, relative to a real datagram `d` sent by X.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// A request from X (sent to X's peer).
    RequestFromX,
    /// A request from X's peer (sent to X).
    RequestToX,
    /// A response from X's peer (sent to X).
    ResponseToX,
}

/// The message forms tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The header alone (no payloads at all).
    HeaderOnly,
    /// An unencrypted error notification (AUTHENTICATION_FAILED).
    PlainNotify,
    /// An unencrypted Delete of the IKE SA.
    PlainDelete,
    /// The real SK payload with one bit of its ICV flipped.
    BadIcv,
    /// The real SK body re-wrapped as fragment 1 of 1, ICV flipped.
    BadSkf,
    /// The real SK body as fragment 2 of 2, ICV flipped.
    BadSkfSecond,
}

pub const FORMS: [Form; 6] = [
    Form::HeaderOnly,
    Form::PlainNotify,
    Form::PlainDelete,
    Form::BadIcv,
    Form::BadSkf,
    Form::BadSkfSecond,
];

/// The flags byte of a datagram sent by X (taken from `d`) for the forged role.
fn flags(d: &[u8], role: As) -> u8 {
    let sender_i = d[19] & I_FLAG;
    match role {
        As::RequestFromX => sender_i,
        As::RequestToX => sender_i ^ I_FLAG,
        As::ResponseToX => (sender_i ^ I_FLAG) | R_FLAG,
    }
}

fn header(d: &[u8], role: As, exchange: u8, mid: u32, next: u8) -> Vec<u8> {
    let mut h = d[..HDR].to_vec();
    h[16] = next;
    h[18] = exchange;
    h[19] = flags(d, role);
    h[20..24].copy_from_slice(&mid.to_be_bytes());
    h
}

fn finish(mut m: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(m.len()).unwrap().to_be_bytes();
    m[24..28].copy_from_slice(&len);
    m
}

fn payload(next: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + body.len()).unwrap().to_be_bytes();
    [&[next, 0][..], &len, body].concat()
}

/// The real datagram's SK payload (generic header first), which must follow the IKE header.
fn sk_payload(d: &[u8]) -> &[u8] {
    assert_eq!(d[16], SK, "a real SK datagram to forge from");
    &d[HDR..]
}

/// One forged datagram built from `d`, a real SK datagram sent by X.
pub fn forge(d: &[u8], role: As, exchange: u8, mid: u32, form: Form) -> Vec<u8> {
    let sk = sk_payload(d);
    let body = &sk[4..];
    let flip = |b: &[u8]| {
        let mut b = b.to_vec();
        *b.last_mut().unwrap() ^= 1;
        b
    };
    let m = match form {
        Form::HeaderOnly => header(d, role, exchange, mid, 0),
        Form::PlainNotify => {
            // Protocol 0, SPI size 0, AUTHENTICATION_FAILED (24).
            let n = payload(0, &[0, 0, 0, 24]);
            [header(d, role, exchange, mid, NOTIFY), n].concat()
        }
        Form::PlainDelete => {
            // Protocol IKE (1), SPI size 0, no SPIs.
            let del = payload(0, &[1, 0, 0, 0]);
            [header(d, role, exchange, mid, DELETE), del].concat()
        }
        Form::BadIcv => {
            let p = payload(sk[0], &flip(body));
            [header(d, role, exchange, mid, SK), p].concat()
        }
        Form::BadSkf | Form::BadSkfSecond => {
            let (number, total, next) = match form {
                Form::BadSkf => (1u16, 1u16, sk[0]),
                _ => (2, 2, 0),
            };
            let frag = [&number.to_be_bytes()[..], &total.to_be_bytes(), &flip(body)].concat();
            [header(d, role, exchange, mid, SKF), payload(next, &frag)].concat()
        }
    };
    finish(m)
}

/// The message ID of a datagram.
pub fn mid(d: &[u8]) -> u32 {
    u32::from_be_bytes(d[20..24].try_into().unwrap())
}

/// Whether a datagram is a response.
pub fn is_response(d: &[u8]) -> bool {
    d[19] & R_FLAG != 0
}

/// The header of `d` alone, with its message ID replaced: what an attacker sends to trigger a
/// replay of a cached response.
pub fn header_with_mid(d: &[u8], mid: u32) -> Vec<u8> {
    let mut h = d[..HDR].to_vec();
    h[16] = 0;
    h[20..24].copy_from_slice(&mid.to_be_bytes());
    finish(h)
}
