//! A shallow read of an IKE_SA_INIT request: the header and the generic payload headers only
//! (RFC 7296 3.1, 3.2), no proposal, key share or notification decoded. A responder under load
//! answers most requests with a COOKIE (2.6), and deciding that needs only the first payload
//! and the nonce; decoding every proposal of a spoofed flood first would spend the CPU the
//! cookie is meant to save.

use super::registry::{NotifyType, PayloadType};
use super::{Header, NoncePayload, Reader, WireError, GENERIC_HEADER_LEN};

/// What a COOKIE decision reads from an IKE_SA_INIT request, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitPeek<'a> {
    pub header: Header,
    /// The first payload's type and body (2.6: a returned cookie must be the first payload).
    pub first: Option<(PayloadType, &'a [u8])>,
    /// The first Nonce payload's body, whatever its size.
    first_nonce: Option<&'a [u8]>,
    /// How many payloads the chain holds.
    pub count: usize,
}

impl<'a> InitPeek<'a> {
    /// Walks the chain's generic headers; fails where `Message::parse` would on the framing.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(datagram);
        let header = Header::parse(&mut r, datagram.len())?;
        let mut peek = Self {
            header,
            first: None,
            first_nonce: None,
            count: 0,
        };
        let mut ty = header.next_payload;
        while ty != PayloadType::NONE {
            let next = PayloadType(r.u8("payload header")?);
            let _critical = r.u8("payload header")?;
            let len = usize::from(r.u16("payload header")?);
            let body_len = len
                .checked_sub(GENERIC_HEADER_LEN)
                .ok_or(WireError::BadLength { what: "payload" })?;
            let body = r.take(body_len, "payload body")?;
            peek.record(ty, body);
            if ty == PayloadType::SK || ty == PayloadType::SKF {
                break; // 3.14: nothing follows the encrypted payload in the outer chain
            }
            ty = next;
        }
        r.finish("payload chain")?;
        Ok(peek)
    }

    fn record(&mut self, ty: PayloadType, body: &'a [u8]) {
        if self.count == 0 {
            self.first = Some((ty, body));
        }
        self.count += 1;
        if ty == PayloadType::NONCE && self.first_nonce.is_none() {
            self.first_nonce = Some(body);
        }
    }

    /// The first Nonce payload's body (Ni), if its size is valid (3.9).
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.first_nonce
            .filter(|n| (NoncePayload::MIN..=NoncePayload::MAX).contains(&n.len()))
    }

    /// The data of the first payload when it is a COOKIE notification (3.10: protocol, SPI
    /// size, type, SPI, data).
    pub fn first_cookie(&self) -> Option<&'a [u8]> {
        let (PayloadType::NOTIFY, body) = self.first? else {
            return None;
        };
        let mut r = Reader::new(body);
        let _protocol = r.u8("notify payload").ok()?;
        let spi_size = usize::from(r.u8("notify payload").ok()?);
        let ty = NotifyType(r.u16("notify payload").ok()?);
        r.take(spi_size, "notify SPI").ok()?;
        (ty == NotifyType::COOKIE).then(|| r.rest())
    }

    /// Whether the request carries nothing but a COOKIE notification.
    pub fn only_cookie(&self) -> bool {
        self.count < 2 && self.first_cookie().is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::wire::{ExchangeType, Message, NotifyPayload, Payload};

    fn init(payloads: Vec<Payload>) -> Vec<u8> {
        let header = Header {
            spi_i: 0x0102_0304_0506_0708,
            spi_r: 0,
            next_payload: PayloadType::NONE,
            version: Header::VERSION_2_0,
            exchange: ExchangeType::IKE_SA_INIT,
            flags: crate::wire::flags::INITIATOR,
            message_id: 0,
            length: 0,
        };
        Message { header, payloads }.emit()
    }

    #[test]
    fn reads_what_a_cookie_decision_needs() {
        let ni = vec![7; 32];
        let d = init(vec![
            Payload::Notify(NotifyPayload::new(NotifyType::COOKIE, vec![1, 2, 3])),
            Payload::Nonce(NoncePayload(ni.clone())),
        ]);
        let peek = InitPeek::parse(&d).unwrap();
        assert_eq!(peek.header.spi_i, 0x0102_0304_0506_0708);
        assert_eq!(peek.count, 2);
        assert_eq!(peek.nonce(), Some(&ni[..]));
        assert_eq!(peek.first_cookie(), Some(&[1, 2, 3][..]));
        assert!(!peek.only_cookie());
    }

    #[test]
    fn a_cookie_not_first_or_a_nonce_of_bad_size_does_not_count() {
        let d = init(vec![
            Payload::Nonce(NoncePayload(vec![7; 8])),
            Payload::Notify(NotifyPayload::new(NotifyType::COOKIE, vec![1])),
        ]);
        let peek = InitPeek::parse(&d).unwrap();
        assert_eq!(peek.nonce(), None);
        assert_eq!(peek.first_cookie(), None);
    }

    #[test]
    fn framing_errors_fail_as_the_full_parser_does() {
        let d = init(vec![Payload::Nonce(NoncePayload(vec![7; 32]))]);
        for cut in 0..d.len() {
            let short = &d[..cut];
            assert!(InitPeek::parse(short).is_err());
            assert!(Message::parse(short).is_err());
        }
    }
}
