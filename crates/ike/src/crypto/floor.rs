//! The crypto floor of one IKE handshake: what one side must compute, whatever
//! the engine around it does. Benchmarks time [`HandshakeFloor::run`] in the same
//! run as the engine's handshake and report the ratio (DEVELOPERS.md: "Measure").
//!
//! One side (initiator or responder alike) of IKE_SA_INIT + IKE_AUTH with one
//! child SA does, in RFC 7296 terms:
//!
//! 1. key exchange: generate a key share and agree with the peer's (section 1.2);
//! 2. SKEYSEED = prf(Ni | Nr, g^ir), then prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
//!    for SK_d, SK_ai/ar, SK_ei/er, SK_pi/pr (section 2.14), and key both SK
//!    directions;
//! 3. seal one IKE_AUTH message and open the peer's (section 3.14);
//! 4. prf(SK_px, ID') for both sides' signed octets (section 2.15);
//! 5. sign our AUTH and verify the peer's (RFC 7427), or for NULL authentication
//!    compute and check the two MACs (RFC 7619);
//! 6. KEYMAT = prf+(SK_d, Ni | Nr) for the child SA (section 2.17).
//!
//! With an additional key exchange (RFC 9370, [`HandshakeFloor::with_additional_ke`]) one side
//! also does, per IKE_INTERMEDIATE exchange: its half of the KEM (the initiator generates a key
//! pair and decapsulates, the responder encapsulates); SKEYSEED(n) = prf(SK_d, SK(n) | Ni | Nr)
//! and prf+ for the seven keys, keying both SK directions; sealing its message and opening the
//! peer's; and the two IntAuth prfs over those messages (RFC 9242 3.3).
//!
//! Cookies, retransmissions, rekeys and the wire codec are not part of the floor.
//! The incoming IKE_AUTH is opened under a cipher keyed once in [`HandshakeFloor::new`]
//! (opening costs the same under any key); everything else runs on fresh values.

use std::fmt;

use super::{
    sign_auth, verify_auth, AuthMethod, CryptoError, CryptoRng, DhGroup, EncrAlg, IntegAlg,
    KeyShare, PrfAlg, PrivateKey, PublicKey, SigHash, SkCipher,
};

/// Size of the inner payloads of an IKE_AUTH message used for the floor (IDs,
/// AUTH, SA, TSi, TSr and notifies of a host-to-host child SA).
pub const IKE_AUTH_INNER_LEN: usize = 512;
/// Size of the IKE_SA_INIT message that the signed octets start with.
pub const IKE_SA_INIT_LEN: usize = 300;
const NONCE_LEN: usize = 32;

/// The negotiated algorithms a handshake uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// Key exchange group.
    pub group: DhGroup,
    /// PRF.
    pub prf: PrfAlg,
    /// SK payload encryption (and, for the floor, the child SA's).
    pub encr: EncrAlg,
    /// Integrity, for AES-CBC only.
    pub integ: Option<IntegAlg>,
}

/// One side's handshake crypto, prepared once and run per handshake.
pub struct HandshakeFloor<'k> {
    suite: Suite,
    our_key: Option<&'k PrivateKey>,
    peer_public: Option<PublicKey>,
    peer_ke: Vec<u8>,
    peer_auth: Vec<u8>,
    peer_octets: Vec<u8>,
    peer_sk: SkCipher,
    peer_body: Vec<u8>,
    addke: Option<AddKeFloor>,
}

/// One additional key exchange of the floor.
struct AddKeFloor {
    method: DhGroup,
    initiator: bool,
    /// The peer's KE data: a ciphertext for the initiator, an encapsulation key for the
    /// responder.
    peer_ke: Vec<u8>,
    /// The peer's sealed IKE_INTERMEDIATE message.
    peer_body: Vec<u8>,
}

impl fmt::Debug for HandshakeFloor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeFloor")
            .field("suite", &self.suite)
            .field("our_key", &self.our_key)
            .field(
                "peer_public",
                &self.peer_public.as_ref().map(PublicKey::describe),
            )
            .finish_non_exhaustive()
    }
}

impl<'k> HandshakeFloor<'k> {
    /// Prepares the peer's side: its KE value, its AUTH data (signed with
    /// `peer_key`, or a NULL MAC when `None`) and its sealed IKE_AUTH. `our_key`
    /// `None` means we authenticate with NULL.
    pub fn new(
        suite: Suite,
        our_key: Option<&'k PrivateKey>,
        peer_key: Option<&PrivateKey>,
        rng: &mut dyn CryptoRng,
    ) -> Result<Self, CryptoError> {
        let peer_ke = KeyShare::generate(suite.group, rng)?.public().to_vec();
        let peer_octets = vec![0x5a; IKE_SA_INIT_LEN + NONCE_LEN + suite.prf.output_len()];
        let peer_auth = match peer_key {
            Some(k) => sign_auth(
                k,
                AuthMethod::DigitalSignature,
                &SigHash::ALL,
                &peer_octets,
                rng,
            )?,
            None => null_mac(suite.prf, &[1; 32], &peer_octets).to_vec(),
        };
        let sk_e = vec![7; suite.encr.key_material_len()];
        let sk_a = suite.integ.map_or(Vec::new(), |i| vec![8; i.key_len()]);
        let peer_sk = SkCipher::new(suite.encr, suite.integ, &sk_e, &sk_a)?;
        let peer_body = peer_sk.seal(&[0; 32], &[0; IKE_AUTH_INNER_LEN], rng)?;
        Ok(Self {
            suite,
            our_key,
            peer_public: peer_key.map(PrivateKey::public_key),
            peer_ke,
            peer_auth,
            peer_octets,
            peer_sk,
            peer_body,
            addke: None,
        })
    }

    /// Adds one additional key exchange of `method` (ML-KEM: RFC 9370 in IKE_INTERMEDIATE),
    /// as the initiator or the responder side does it.
    pub fn with_additional_ke(
        mut self,
        method: DhGroup,
        initiator: bool,
        rng: &mut dyn CryptoRng,
    ) -> Result<Self, CryptoError> {
        let ek = KeyShare::generate(method, rng)?.public().to_vec();
        let peer_ke = if initiator {
            KeyShare::respond(method, &ek, rng)?.0
        } else {
            ek
        };
        let peer_len = 8 + if initiator {
            method.response_len()
        } else {
            method.public_len()
        };
        let peer_body = self.peer_sk.seal(&[0; 32], &vec![0; peer_len], rng)?;
        self.addke = Some(AddKeFloor {
            method,
            initiator,
            peer_ke,
            peer_body,
        });
        Ok(self)
    }

    /// Does one side's handshake crypto once (see the module docs for the list).
    pub fn run(&self, rng: &mut dyn CryptoRng) -> Result<(), CryptoError> {
        let Suite {
            group,
            prf,
            encr,
            integ,
        } = self.suite;
        let nonces = [0x11; 2 * NONCE_LEN];
        // 1. Key exchange.
        let shared = KeyShare::generate(group, rng)?.agree(&self.peer_ke)?;
        // 2. SKEYSEED and the seven SK keys; key both directions.
        let skeyseed = prf.prf(&nonces, shared.as_bytes());
        let (prf_len, e_len) = (prf.output_len(), encr.key_material_len());
        let a_len = integ.map_or(0, IntegAlg::key_len);
        let seed = [&nonces[..], &[0x22; 16][..]].concat();
        let keys = prf.prf_plus(&skeyseed, &seed, 3 * prf_len + 2 * a_len + 2 * e_len)?;
        let split = |at: usize, len: usize| keys.get(at..at + len).ok_or(CryptoError::Internal);
        let sk_d = split(0, prf_len)?;
        let (sk_ai, sk_ar) = (split(prf_len, a_len)?, split(prf_len + a_len, a_len)?);
        let e_at = prf_len + 2 * a_len;
        let (sk_ei, sk_er) = (split(e_at, e_len)?, split(e_at + e_len, e_len)?);
        let p_at = e_at + 2 * e_len;
        let (sk_pi, sk_pr) = (split(p_at, prf_len)?, split(p_at + prf_len, prf_len)?);
        let _incoming = SkCipher::new(encr, integ, sk_ei, sk_ai)?;
        let outgoing = SkCipher::new(encr, integ, sk_er, sk_ar)?;
        if let Some(a) = &self.addke {
            self.additional(a, &outgoing, sk_d, rng)?;
        }
        // 3. Open the peer's IKE_AUTH, seal ours.
        self.peer_sk.open(&[0; 32], &self.peer_body)?;
        outgoing.seal(&[0; 32], &[0; IKE_AUTH_INNER_LEN], rng)?;
        // 4. prf(SK_p, ID') for both sides' signed octets. The peer's AUTH was made
        // in `new` over octets of the same length; it is verified over those.
        let _peer_mac = prf.prf(sk_pi, b"IDi'");
        let mut our_octets = vec![0x5a; IKE_SA_INIT_LEN + NONCE_LEN];
        our_octets.extend_from_slice(&prf.prf(sk_pr, b"IDr'"));
        // 5. Authentication.
        self.verify_peer()?;
        self.sign_ours(&our_octets, rng)?;
        // 6. Child SA KEYMAT.
        prf.prf_plus(sk_d, &nonces, 2 * e_len + 2 * a_len)?;
        Ok(())
    }

    /// One IKE_INTERMEDIATE exchange: the KEM half, the key update, seal/open, IntAuth.
    fn additional(
        &self,
        a: &AddKeFloor,
        outgoing: &SkCipher,
        sk_d: &[u8],
        rng: &mut dyn CryptoRng,
    ) -> Result<(), CryptoError> {
        let Suite {
            prf, encr, integ, ..
        } = self.suite;
        let (shared, ours_len) = if a.initiator {
            let share = KeyShare::generate(a.method, rng)?;
            let len = share.public().len();
            (share.agree(&a.peer_ke)?, len)
        } else {
            let (c, k) = KeyShare::respond(a.method, &a.peer_ke, rng)?;
            (k, c.len())
        };
        let nonces = [0x11; 2 * NONCE_LEN];
        let skeyseed = prf.prf(sk_d, &[shared.as_bytes(), &nonces[..]].concat());
        let (prf_len, e_len) = (prf.output_len(), encr.key_material_len());
        let a_len = integ.map_or(0, IntegAlg::key_len);
        let seed = [&nonces[..], &[0x22; 16][..]].concat();
        let keys = prf.prf_plus(&skeyseed, &seed, 3 * prf_len + 2 * a_len + 2 * e_len)?;
        let e_at = prf_len + 2 * a_len;
        let part = |at: usize, len: usize| keys.get(at..at + len).ok_or(CryptoError::Internal);
        SkCipher::new(encr, integ, part(e_at, e_len)?, part(prf_len, a_len)?)?;
        SkCipher::new(
            encr,
            integ,
            part(e_at + e_len, e_len)?,
            part(prf_len, a_len)?,
        )?;
        let ours = vec![0; 8 + ours_len];
        outgoing.seal(&[0; 32], &ours, rng)?;
        let theirs = self.peer_sk.open(&[0; 32], &a.peer_body)?;
        let sk_p = part(0, prf_len)?;
        prf.prf(sk_p, &ours);
        prf.prf(sk_p, &theirs);
        Ok(())
    }

    fn verify_peer(&self) -> Result<(), CryptoError> {
        match &self.peer_public {
            Some(k) => verify_auth(
                k,
                AuthMethod::DigitalSignature,
                &self.peer_auth,
                &self.peer_octets,
            ),
            None => {
                let mac = null_mac(self.suite.prf, &[1; 32], &self.peer_octets);
                (*mac == *self.peer_auth)
                    .then_some(())
                    .ok_or(CryptoError::Internal)
            }
        }
    }

    fn sign_ours(&self, octets: &[u8], rng: &mut dyn CryptoRng) -> Result<(), CryptoError> {
        match self.our_key {
            Some(k) => {
                sign_auth(k, AuthMethod::DigitalSignature, &SigHash::ALL, octets, rng).map(drop)
            }
            None => {
                null_mac(self.suite.prf, &[2; 32], octets);
                Ok(())
            }
        }
    }
}

/// RFC 7296 section 2.15 shared-key style MAC that NULL authentication uses (RFC 7619).
fn null_mac(prf: PrfAlg, sk_p: &[u8], octets: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    prf.prf(&prf.prf(sk_p, b"Key Pad for IKEv2"), octets)
}
