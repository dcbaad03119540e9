//! A hand-built IKE_SA_INIT request (RFC 7296 section 1.2), independent of oe-ike, used to prove that a peer
//! daemon is up and answering IKE before any engine of ours is involved.
//!
//! The request offers exactly one proposal: AES-GCM-16-256, PRF HMAC-SHA2-256, X25519 (group 31).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const SA: u8 = 33;
const KE: u8 = 34;
const NONCE: u8 = 40;
const IKE_SA_INIT: u8 = 34;
const FLAG_INITIATOR: u8 = 0x08;
const FLAG_RESPONSE: u8 = 0x20;

/// What the peer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The responder's SPI (non-zero when it created state).
    pub responder_spi: u64,
    /// The first payload type of the response (33 = SA for a normal answer, 41 = Notify).
    pub first_payload: u8,
}

/// The request bytes for initiator SPI `spi`, key share `ke` (32 bytes) and nonce `nonce` (32 bytes).
pub fn ike_sa_init_request(spi: u64, ke: &[u8; 32], nonce: &[u8; 32]) -> Vec<u8> {
    let transform = |last: bool, kind: u8, id: u16, attr: &[u8]| {
        let len = u16::try_from(8 + attr.len()).unwrap_or(u16::MAX);
        let mut t = vec![if last { 0 } else { 3 }, 0];
        t.extend_from_slice(&len.to_be_bytes());
        t.extend_from_slice(&[kind, 0]);
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(attr);
        t
    };
    let key_length_256 = [0x80, 14, 0x01, 0x00];
    let transforms = [
        transform(false, 1, 20, &key_length_256),
        transform(false, 2, 5, &[]),
        transform(true, 4, 31, &[]),
    ]
    .concat();
    let mut proposal = vec![0, 0];
    proposal.extend_from_slice(
        &u16::try_from(8 + transforms.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    proposal.extend_from_slice(&[1, 1, 0, 3]);
    proposal.extend_from_slice(&transforms);
    let mut ke_body = vec![0, 31, 0, 0];
    ke_body.extend_from_slice(ke);
    let payloads = [
        payload(KE, &proposal),
        payload(NONCE, &ke_body),
        payload(0, nonce),
    ]
    .concat();
    let mut msg = spi.to_be_bytes().to_vec();
    msg.extend_from_slice(&[0; 8]);
    msg.extend_from_slice(&[SA, 0x20, IKE_SA_INIT, FLAG_INITIATOR, 0, 0, 0, 0]);
    msg.extend_from_slice(
        &u32::try_from(28 + payloads.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    msg.extend_from_slice(&payloads);
    msg
}

fn payload(next: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![next, 0];
    p.extend_from_slice(
        &u16::try_from(4 + body.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    p.extend_from_slice(body);
    p
}

/// Sends an IKE_SA_INIT from `local` (port 500 is typical) to `peer` and waits for the matching response.
pub fn probe(
    local: SocketAddr,
    peer: SocketAddr,
    timeout: Duration,
) -> Result<ProbeAnswer, String> {
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let spi = 0x6f65_7465_7374_0001_u64;
    let request = ike_sa_init_request(spi, &[0x42; 32], &[0x17; 32]);
    socket
        .send_to(&request, peer)
        .map_err(|e| format!("send to {peer}: {e}"))?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("no answer from {peer}: {e}"))?;
        let msg = buf.get(..n).unwrap_or_default();
        if from == peer {
            if let Some(answer) = parse_answer(msg, spi) {
                return Ok(answer);
            }
        }
    }
}

fn parse_answer(msg: &[u8], spi: u64) -> Option<ProbeAnswer> {
    let header = msg.get(..28)?;
    let ispi = u64::from_be_bytes(header.get(0..8)?.try_into().ok()?);
    let rspi = u64::from_be_bytes(header.get(8..16)?.try_into().ok()?);
    let (next, exchange, flags) = (*header.get(16)?, *header.get(18)?, *header.get(19)?);
    (ispi == spi && exchange == IKE_SA_INIT && flags & FLAG_RESPONSE != 0).then_some(ProbeAnswer {
        responder_spi: rspi,
        first_payload: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lengths_add_up() {
        let msg = ike_sa_init_request(1, &[0; 32], &[0; 32]);
        let total = u32::from_be_bytes(msg[24..28].try_into().unwrap()) as usize;
        assert_eq!(total, msg.len());
        // SA payload length covers the proposal; the proposal covers 3 transforms (12 + 8 + 8 bytes).
        assert_eq!(u16::from_be_bytes([msg[30], msg[31]]), 4 + 8 + 28);
        assert_eq!(msg[28], KE);
    }

    #[test]
    fn answer_must_match_spi_and_be_a_response() {
        let mut answer = ike_sa_init_request(7, &[0; 32], &[0; 32]);
        answer[8..16].copy_from_slice(&9u64.to_be_bytes());
        assert_eq!(parse_answer(&answer, 7), None, "a request is not an answer");
        answer[19] = FLAG_RESPONSE;
        assert_eq!(
            parse_answer(&answer, 7),
            Some(ProbeAnswer {
                responder_spi: 9,
                first_payload: SA
            })
        );
        assert_eq!(parse_answer(&answer, 8), None);
        assert_eq!(parse_answer(&answer[..20], 7), None);
    }
}
