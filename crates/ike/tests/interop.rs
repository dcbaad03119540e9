//! Interop over real UDP between namespaces: the engine, driven by a small socket loop, against
//! strongSwan's charon 5.9.8 and Libreswan's pluto 4.10, each side initiating.
//!
//! Our default offer is the post-quantum hybrid (X25519, then ML-KEM-768 as an RFC 9370
//! additional key exchange): these peers lack RFC 9370 and ML-KEM, so every test here also
//! shows the fallback to X25519 alone (`assert_classical_fallback`).
//!
//! On the host kernel (no ESP) only the IKE SA can complete: the peers fail their child SA
//! install. The `_in_the_guest` tests run inside the UML kernel, where the peer installs its
//! child SA and reports it. Assertions use both views: the peer's status output and our events.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oe_ike::crypto::{PrivateKey, PublicKey};
use oe_ike::wire::Identity;
use oe_ike::{Config, Endpoint, Event, LocalAuth, PeerAuth};
use oe_integration::netns::Pair;
use oe_integration::peers::{Charon, CharonSetup, Pluto, PlutoSetup, CKAID};
use oe_integration::{keys_dir, test_key_ipseckey, uml};
use rand_chacha::rand_core::SeedableRng;

fn pem(name: &str) -> String {
    std::fs::read_to_string(keys_dir().join(name)).unwrap()
}

fn private(name: &str) -> PrivateKey {
    PrivateKey::from_pem(&pem(name)).unwrap()
}

fn addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 500)
}

/// Our engine bound to one UDP socket; answers NeedSpi and NeedPeerKey as the agent would.
struct Driver {
    ep: Endpoint,
    sock: UdpSocket,
    local: SocketAddr,
    peer_key: PublicKey,
    next_spi: u32,
    events: Vec<Event>,
}

impl Driver {
    /// `key` None: NULL authentication (RFC 7619), accepting NULL-authenticated peers.
    fn new(local: &str, key: Option<&str>, peer_key: PublicKey) -> Self {
        let auth = key.map_or(LocalAuth::Null, |k| LocalAuth::Key(Arc::new(private(k))));
        let ip: IpAddr = local.parse().unwrap();
        let id = match ip {
            IpAddr::V4(a) => Identity::Ipv4(a),
            IpAddr::V6(a) => Identity::Ipv6(a),
        };
        let mut config = Config::new(id, auth);
        config.liveness_interval = None;
        config.accept_null_peers = key.is_none();
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(std::process::id()));
        let local = addr(local);
        let sock = UdpSocket::bind(local).unwrap();
        Self {
            ep: Endpoint::new(config, Box::new(rng)),
            sock,
            local,
            peer_key,
            next_spi: 0xc100_0000,
            events: Vec::new(),
        }
    }

    /// Runs the socket loop until `done` holds for the events seen, or `limit` passes.
    fn run(&mut self, limit: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = vec![0u8; 65536];
        loop {
            let now = Instant::now();
            // Act on each event before sending what follows it (the crate's output contract).
            while let Some((h, e)) = self.ep.poll_event() {
                match &e {
                    Event::NeedSpi { .. } => {
                        self.next_spi += 1;
                        self.ep.supply_spi(now, h, self.next_spi);
                    }
                    Event::NeedPeerKey { .. } => {
                        self.ep
                            .supply_peer_keys(now, h, vec![self.peer_key.clone()])
                    }
                    _ => {}
                }
                self.events.push(e);
            }
            while let Some(t) = self.ep.poll_transmit() {
                self.sock.send_to(&t.contents, t.remote).unwrap();
            }
            if done(&self.events) {
                return true;
            }
            if now >= end {
                return false;
            }
            let wake = self.ep.poll_timeout().map_or(end, |t| t.min(end));
            let wait = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.ep
                        .handle_datagram(Instant::now(), from, self.local, &buf[..n])
                }
                Err(_) => self.ep.handle_timeout(Instant::now()),
            }
        }
    }

    /// Deletes the IKE SA (INFORMATIONAL Delete) and waits for the peer's answer.
    fn delete(&mut self, h: oe_ike::SaHandle) -> bool {
        self.ep.delete(Instant::now(), h);
        self.run(Duration::from_secs(10), failed)
    }

    fn established(&self) -> Option<(Identity, PeerAuth)> {
        self.events.iter().find_map(|e| match e {
            Event::IkeSaEstablished {
                peer_id, peer_auth, ..
            } => Some((peer_id.clone(), *peer_auth)),
            _ => None,
        })
    }

    fn child_ready(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::ChildSaReady { .. }))
    }
}

/// We offered the hybrid, and the peer (without RFC 9370) got a classical IKE SA from it.
fn assert_classical_fallback(d: &Driver, h: oe_ike::SaHandle) {
    assert_eq!(d.ep.config().additional_ke, oe_ike::AdditionalKe::hybrid());
    let info = d.ep.sa_info(h).unwrap();
    assert!(!info.is_post_quantum(), "{info:?}");
    let proposal = info.proposal.unwrap();
    assert!(!proposal.contains("KE1"), "{proposal}");
}

fn up(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::IkeSaEstablished { .. }))
        && events
            .iter()
            .any(|e| matches!(e, Event::ChildSaReady { .. } | Event::ChildSaFailed { .. }))
}

fn failed(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Closed { .. }))
}

/// charon at B with raw keys, expecting A (us) to authenticate with `our_pub`.
fn charon_setup(charon_key: &str, our_pub: &str) -> CharonSetup {
    charon_setup_esp(charon_key, our_pub, "aes128gcm16,aes256gcm16")
}

/// As [`charon_setup`], with these child SA proposals (`aes128gcm16-x25519` for PFS).
fn charon_setup_esp(charon_key: &str, our_pub: &str, esp: &str) -> CharonSetup {
    let (local, remote) = (Pair::B4, Pair::A4);
    CharonSetup {
        swanctl_conf: format!(
            "connections {{ peer {{ version = 2\n mobike = no\n local_addrs = {local}\n remote_addrs = {remote}\n\
             proposals = aes256gcm16-prfsha256-x25519,aes128gcm16-prfsha256-ecp256\n\
             local {{ auth = pubkey\n id = {local}\n pubkeys = self.pub }}\n\
             remote {{ auth = pubkey\n id = {remote}\n pubkeys = peer.pub }}\n\
             children {{ t {{ mode = transport\n esp_proposals = {esp} }} }} }} }}\n"
        ),
        private_keys: vec![("self.pem".into(), pem(&format!("{charon_key}.pem")))],
        public_keys: vec![
            ("self.pub".into(), pem(&format!("{charon_key}.pub.pem"))),
            ("peer.pub".into(), pem(&format!("{our_pub}.pub.pem"))),
        ],
        ..CharonSetup::default()
    }
}

/// We initiate to charon, then charon initiates to us; returns charon's status after each.
fn with_charon(our_key: &str, charon_key: &str, expect_child: bool) {
    let pair = Pair::new();
    let charon = Charon::start(&pair.b, &charon_setup(charon_key, our_key));
    let charon_pub = private(&format!("{charon_key}.pem")).public_key();

    // The engine initiates.
    let d = pair.a.run(|| {
        let mut d = Driver::new(
            Pair::A4,
            Some(&format!("{our_key}.pem")),
            charon_pub.clone(),
        );
        let h = d.ep.connect(Instant::now(), addr(Pair::A4), addr(Pair::B4));
        let ok = d.run(Duration::from_secs(20), |e| up(e) || failed(e));
        assert!(ok, "no outcome: {:?}", d.events);
        assert_classical_fallback(&d, h);
        let status = charon.list_sas();
        assert!(d.delete(h), "delete answered");
        (d.established(), d.child_ready(), status, charon.list_sas())
    });
    let status = d.2;
    assert!(
        !d.3.contains("ESTABLISHED"),
        "charon removed the IKE SA on our delete: {}",
        d.3
    );
    assert_eq!(
        d.0,
        Some((
            Identity::Ipv4(Pair::B4.parse().unwrap()),
            PeerAuth::Signature
        )),
        "charon log:\n{}",
        charon.log()
    );
    assert!(status.contains("ESTABLISHED"), "charon: {status}");
    assert!(status.contains(Pair::A4));
    if expect_child {
        assert!(d.1, "child SA from charon");
        assert!(status.contains("INSTALLED, TRANSPORT"), "charon: {status}");
    }

    // charon initiates.
    let events = std::thread::scope(|s| {
        let engine = s.spawn(|| {
            pair.a.run(|| {
                let mut d = Driver::new(
                    Pair::A4,
                    Some(&format!("{our_key}.pem")),
                    charon_pub.clone(),
                );
                d.run(Duration::from_secs(20), |e| up(e) || failed(e));
                (d.established(), d.child_ready())
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        let out = charon.swanctl(&[
            "--initiate",
            "--child",
            "t",
            "--ike",
            "peer",
            "--timeout",
            "15",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (engine.join().unwrap(), text)
    });
    let status = charon.list_sas();
    assert_eq!(
        events.0 .0,
        Some((
            Identity::Ipv4(Pair::B4.parse().unwrap()),
            PeerAuth::Signature
        )),
        "initiate: {}\n{}",
        events.1,
        charon.log()
    );
    assert!(events.0 .1, "we answer with a child SA");
    assert!(status.contains("ESTABLISHED"), "charon: {status}");
    if expect_child {
        assert!(
            events.1.contains("initiate completed successfully"),
            "{}",
            events.1
        );
    }
}

#[test]
fn charon_ed25519_ike_sa() {
    with_charon("host-ed25519", "ws-ed25519", false);
}

#[test]
fn charon_rsa_and_ecdsa_ike_sa() {
    with_charon("host-rsa2048", "host-p256", false);
}

#[test]
fn charon_ed25519_child_sa_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("charon_ed25519_child_sa_in_the_guest");
    }
    with_charon("host-ed25519", "ws-ed25519", true);
}

/// pluto at B with the RSA-3072 key, expecting us to sign with RSA-2048.
fn pluto_setup() -> PlutoSetup {
    let (local, remote) = (Pair::B4, Pair::A4);
    PlutoSetup {
        conns: format!(
            "conn peer\n    authby=rsasig\n    type=transport\n    left={local}\n    leftid={local}\n    \
             leftckaid={CKAID}\n    right={remote}\n    rightid={remote}\n    rightrsasigkey=0s{rsa}\n    \
             ike=aes_gcm256-sha2_256;dh31\n    esp=aes_gcm128-null\n    leftupdown=%disabled\n    auto=add\n",
            rsa = test_key_ipseckey("host-rsa2048"),
        ),
        rsa_key_pem: Some(pem("host-rsa3072.pem")),
        ..PlutoSetup::default()
    }
}

/// pluto at B with NULL authentication on both sides (Libreswan's anonymous OE, RFC 7619).
fn pluto_null_setup() -> PlutoSetup {
    let (local, remote) = (Pair::B4, Pair::A4);
    PlutoSetup {
        conns: format!(
            "conn peer\n    authby=null\n    type=transport\n    left={local}\n    leftid=%null\n    \
             right={remote}\n    rightid=%null\n    \
             ike=aes_gcm256-sha2_256;dh31\n    esp=aes_gcm128-null\n    leftupdown=%disabled\n    auto=add\n",
        ),
        ..PlutoSetup::default()
    }
}

/// `null`: both sides use NULL authentication; otherwise raw RSA keys.
fn with_pluto(expect_child: bool, null: bool) {
    let pair = Pair::new();
    let pluto = Pluto::start(
        &pair.b,
        &if null {
            pluto_null_setup()
        } else {
            pluto_setup()
        },
    );
    let pluto_pub = private("host-rsa3072.pem").public_key();
    let key = (!null).then_some("host-rsa2048.pem");
    let expected = if null {
        (Identity::Null, PeerAuth::Null)
    } else {
        (
            Identity::Ipv4(Pair::B4.parse().unwrap()),
            PeerAuth::Signature,
        )
    };
    let d = pair.a.run(|| {
        let mut d = Driver::new(Pair::A4, key, pluto_pub.clone());
        let h = d.ep.connect(Instant::now(), addr(Pair::A4), addr(Pair::B4));
        let ok = d.run(Duration::from_secs(20), |e| up(e) || failed(e));
        assert!(ok, "no outcome: {:?}", d.events);
        assert_classical_fallback(&d, h);
        let status = pluto.traffic_status();
        assert!(d.delete(h), "delete answered");
        (d.established(), d.child_ready(), status)
    });
    assert_eq!(d.0, Some(expected.clone()), "pluto log:\n{}", pluto.log());
    if expect_child {
        assert!(d.1);
        assert!(d.2.contains("peer"), "pluto: {}", d.2);
    }
    let log = pluto.log();
    assert!(
        log.contains("established IKE SA") || log.contains("IKE SA established"),
        "pluto log:\n{log}"
    );

    // pluto initiates.
    let events = std::thread::scope(|s| {
        let engine = s.spawn(|| {
            pair.a.run(|| {
                let mut d = Driver::new(Pair::A4, key, pluto_pub.clone());
                d.run(Duration::from_secs(20), |e| up(e) || failed(e));
                (d.established(), d.child_ready())
            })
        });
        std::thread::sleep(Duration::from_millis(300));
        let out = pluto.whack(&["--initiate", "--name", "peer"]);
        (
            engine.join().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    });
    assert_eq!(
        events.0 .0,
        Some(expected),
        "whack: {}\n{}",
        events.1,
        pluto.log()
    );
    if expect_child {
        assert!(events.1.contains("established Child SA"), "{}", events.1);
    }
}

#[test]
fn pluto_rsa_ike_sa() {
    with_pluto(false, false);
}

#[test]
fn pluto_null_auth_ike_sa() {
    with_pluto(false, true);
}

#[test]
fn pluto_null_auth_child_sa_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("pluto_null_auth_child_sa_in_the_guest");
    }
    with_pluto(true, true);
}

#[test]
fn pluto_rsa_child_sa_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("pluto_rsa_child_sa_in_the_guest");
    }
    with_pluto(true, false);
}

/// Child SAs that replaced another one, and IKE SA rekeys, among the events.
fn rekeys(events: &[Event]) -> (usize, usize) {
    let children = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChildSaReady {
                    replaces: Some(_),
                    ..
                }
            )
        })
        .count();
    let ike = events
        .iter()
        .filter(|e| matches!(e, Event::IkeSaRekeyed))
        .count();
    (children, ike)
}

/// The outbound SPI of the newest child SA.
fn newest_outbound(events: &[Event]) -> u32 {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::ChildSaReady { child, .. } => Some(child.outbound_spi),
            _ => None,
        })
        .unwrap()
}

impl Driver {
    /// Runs until `(child rekeys, IKE SA rekeys)` reach `want` and `peer_command` (which may
    /// wait for the exchanges it starts, deletes included) has returned.
    fn rekeyed_while(&mut self, want: (usize, usize), peer_command: impl FnOnce() + Send) {
        std::thread::scope(|s| {
            let command = s.spawn(peer_command);
            let end = Instant::now() + Duration::from_secs(30);
            loop {
                self.run(Duration::from_millis(100), failed);
                let got = rekeys(&self.events);
                let done = got.0 >= want.0 && got.1 >= want.1 && command.is_finished();
                if done || failed(&self.events) || Instant::now() >= end {
                    assert!(done, "rekeys {want:?}: {:?}", self.events);
                    return;
                }
            }
        });
    }
}

/// Every rekey between us and a peer without RFC 9370, in the guest where child SAs exist: we
/// rekey the child (our offer leads with PFS and ML-KEM proposals, which the peer skips, RFC 7296
/// 3.3.6), then the IKE SA, then the peer does both. `status` reads the peer's SAs; each new
/// child's SPI must be the one the peer uses.
fn rekeys_with(
    d: &mut Driver,
    h: oe_ike::SaHandle,
    status: &dyn Fn() -> String,
    log: &dyn Fn() -> String,
    peer_rekeys_child: &(dyn Fn() + Sync),
    peer_rekeys_ike: &(dyn Fn() + Sync),
    pfs: Option<&str>,
) {
    let spi_seen = |d: &Driver, what: &str| {
        // charon prints SPIs as 8 hex digits, pluto as `esp.SPI@` without leading zeros.
        let spi = newest_outbound(&d.events);
        let text = status();
        let seen = text.contains(&format!("{spi:08x}")) || text.contains(&format!("esp.{spi:x}@"));
        assert!(seen, "{what}: {spi:08x} not in\n{text}\n{}", log());
    };
    let first = d
        .events
        .iter()
        .find_map(|e| match e {
            Event::ChildSaReady { child, .. } => Some(child.inbound_spi),
            _ => None,
        })
        .unwrap();
    d.ep.rekey_child(Instant::now(), h, first);
    d.rekeyed_while((1, 0), || {});
    spi_seen(d, "our child rekey");
    d.ep.rekey_ike(Instant::now(), h);
    d.rekeyed_while((1, 1), || {});
    assert_classical_fallback(d, h);
    d.rekeyed_while((2, 1), peer_rekeys_child);
    spi_seen(d, "the peer's child rekey");
    d.rekeyed_while((2, 2), peer_rekeys_ike);
    assert_classical_fallback(d, h);
    // The rekeyed IKE SA still carries exchanges: one more child rekey of ours.
    let live = newest_inbound(&d.events);
    d.ep.rekey_child(Instant::now(), h, live);
    d.rekeyed_while((3, 2), || {});
    spi_seen(d, "a child rekey on the rekeyed IKE SA");
    // With PFS, the peer logs the group of each of the three child rekeys.
    if let Some(group) = pfs {
        let log = log();
        assert!(
            log.matches(group).count() >= 3,
            "{group} not logged 3 times:\n{log}"
        );
    }
}

fn newest_inbound(events: &[Event]) -> u32 {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::ChildSaReady { child, .. } => Some(child.inbound_spi),
            _ => None,
        })
        .unwrap()
}

/// charon without (`pfs` false) or with PFS in its child proposals.
fn charon_rekeys(pfs: bool) {
    let esp = if pfs {
        "aes128gcm16-x25519"
    } else {
        "aes128gcm16"
    };
    let pair = Pair::new();
    let setup = charon_setup_esp("ws-ed25519", "host-ed25519", esp);
    let charon = Charon::start(&pair.b, &setup);
    let charon_pub = private("ws-ed25519.pem").public_key();
    pair.a.run(|| {
        let mut d = Driver::new(Pair::A4, Some("host-ed25519.pem"), charon_pub.clone());
        let h = d.ep.connect(Instant::now(), addr(Pair::A4), addr(Pair::B4));
        assert!(
            d.run(Duration::from_secs(20), up) && d.child_ready(),
            "{:?}",
            d.events
        );
        let swanctl = |args: &[&str]| {
            let out = charon.swanctl(args);
            assert!(out.status.success(), "swanctl {args:?}: {out:?}");
        };
        rekeys_with(
            &mut d,
            h,
            &|| charon.list_sas(),
            &|| charon.log(),
            &|| swanctl(&["--rekey", "--child", "t"]),
            &|| swanctl(&["--rekey", "--ike", "peer"]),
            pfs.then_some("/CURVE_25519/NO_EXT_SEQ"),
        );
    });
}

#[test]
fn charon_rekeys_without_pfs_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("charon_rekeys_without_pfs_in_the_guest");
    }
    charon_rekeys(false);
}

#[test]
fn charon_rekeys_with_pfs_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("charon_rekeys_with_pfs_in_the_guest");
    }
    charon_rekeys(true);
}

/// pluto, which rekeys child SAs with PFS by default (Libreswan's pfs=yes).
#[test]
fn pluto_rekeys_in_the_guest() {
    if !uml::in_guest() {
        return uml::rerun_in_guest("pluto_rekeys_in_the_guest");
    }
    let pair = Pair::new();
    let pluto = Pluto::start(&pair.b, &pluto_setup());
    let pluto_pub = private("host-rsa3072.pem").public_key();
    pair.a.run(|| {
        let mut d = Driver::new(Pair::A4, Some("host-rsa2048.pem"), pluto_pub.clone());
        let h = d.ep.connect(Instant::now(), addr(Pair::A4), addr(Pair::B4));
        assert!(
            d.run(Duration::from_secs(20), up) && d.child_ready(),
            "{:?}",
            d.events
        );
        let whack = |args: &[&str]| {
            let out = pluto.whack(args);
            assert!(out.status.success(), "whack {args:?}: {out:?}");
        };
        rekeys_with(
            &mut d,
            h,
            &|| String::from_utf8_lossy(&pluto.whack(&["--status"]).stdout).into_owned(),
            &|| pluto.log(),
            &|| whack(&["--rekey-ipsec", "--name", "peer"]),
            &|| whack(&["--rekey-ike", "--name", "peer"]),
            Some("xfrm=AES_GCM_16_128-NONE-DH31"),
        );
    });
}
