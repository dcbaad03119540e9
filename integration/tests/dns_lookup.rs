//! oe-dns against the real signed DNS fixture (nsd + knot behind a non-validating unbound):
//! every verdict the agent's policy depends on, forward and reverse, and `oe lookup` as a user
//! runs it.

// Test helpers outside #[test] functions: failing loudly is their job.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::time::Duration;

use oe_dns::{
    lookup_blocking, AnchorSet, Answer, Denial, LookupError, LookupTarget, PublicKey, Upstream,
    ValidatorConfig,
};
use oe_integration::dns::{names, DnsFixture};
use oe_integration::netns::Netns;

struct Bed {
    ns: Netns,
    fixture: DnsFixture,
}

fn bed() -> Bed {
    let ns = Netns::new("dnslk");
    let fixture = DnsFixture::start_in(&ns);
    Bed { ns, fixture }
}

impl Bed {
    fn config(&self, anchor: PathBuf) -> ValidatorConfig {
        ValidatorConfig {
            upstream: Upstream::Servers(vec![self.fixture.resolver()]),
            anchors: AnchorSet::from_file(&anchor).unwrap(),
            lookup_timeout: Duration::from_secs(10),
            ..ValidatorConfig::default()
        }
    }

    fn lookup(&self, target: &str) -> Result<Answer, LookupError> {
        self.lookup_with(target, self.fixture.trust_anchor_dnskey())
    }

    fn lookup_with(&self, target: &str, anchor: PathBuf) -> Result<Answer, LookupError> {
        let config = self.config(anchor);
        let target: LookupTarget = target.parse().unwrap();
        self.ns.run(move || lookup_blocking(config, &target).0)
    }
}

fn secure_key(answer: &Result<Answer, LookupError>) -> &PublicKey {
    let Ok(a @ Answer::Secure(_)) = answer else {
        panic!("not secure: {answer:?}")
    };
    let keys = a.usable_keys();
    assert_eq!(keys.len(), 1, "{answer:?}");
    &keys[0].key
}

#[test]
fn verdicts_against_the_signed_tree() {
    let bed = bed();
    // Secure, one per signing algorithm; the key types follow the records.
    assert!(matches!(
        secure_key(&bed.lookup(names::RSA_HOST)),
        PublicKey::Rsa { .. }
    ));
    assert!(matches!(
        secure_key(&bed.lookup(names::ECDSA_HOST)),
        PublicKey::EcdsaP256(_)
    ));
    assert!(matches!(
        secure_key(&bed.lookup(names::ED_HOST)),
        PublicKey::Ed25519(_)
    ));
    assert!(matches!(
        secure_key(&bed.lookup(names::NSEC3_HOST)),
        PublicKey::Ed25519(_)
    ));

    // Reverse, IPv4 and IPv6, by address.
    assert!(matches!(
        secure_key(&bed.lookup("192.0.2.10")),
        PublicKey::Rsa { .. }
    ));
    assert!(matches!(
        secure_key(&bed.lookup("192.0.2.20")),
        PublicKey::EcdsaP256(_)
    ));
    assert!(matches!(
        secure_key(&bed.lookup("192.0.2.30")),
        PublicKey::Ed25519(_)
    ));
    assert!(matches!(
        secure_key(&bed.lookup("2001:db8::10")),
        PublicKey::Rsa { .. }
    ));
    assert!(matches!(
        secure_key(&bed.lookup("2001:db8::30")),
        PublicKey::Ed25519(_)
    ));

    // Proven absent: NSEC and NSEC3, NODATA and NXDOMAIN.
    for (name, denial, nxdomain) in [
        (names::NSEC_NOKEY, Denial::Nsec, false),
        (names::NSEC_NXDOMAIN, Denial::Nsec, true),
        (names::NSEC3_NOKEY, Denial::Nsec3, false),
        (names::NSEC3_NXDOMAIN, Denial::Nsec3, true),
        ("192.0.2.31", Denial::Nsec, false),
    ] {
        match bed.lookup(name) {
            Ok(Answer::Absent(a)) => {
                assert_eq!((a.denial, a.nxdomain), (denial, nxdomain), "{name}: {a:?}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    // No record in an unsigned zone: absent, and not proven.
    match bed.lookup("nothing.insecure.example.") {
        Ok(Answer::Absent(a)) => assert_eq!(a.denial, Denial::Unsigned, "{a:?}"),
        other => panic!("absent in unsigned zone: {other:?}"),
    }

    // Provably unsigned: records shown, never usable.
    match bed.lookup(names::INSECURE_HOST) {
        Ok(a @ Answer::Insecure(_)) => assert!(a.usable_keys().is_empty()),
        other => panic!("insecure: {other:?}"),
    }

    // Bogus: an error, never an answer with keys.
    for name in [names::EXPIRED_HOST, names::TAMPERED_HOST] {
        match bed.lookup(name) {
            Err(LookupError::Bogus(why)) => println!("{name}: bogus: {why}"),
            other => panic!("{name} must be bogus: {other:?}"),
        }
    }
}

#[test]
fn ds_trust_anchor_and_wrong_anchor() {
    let bed = bed();
    // The root's DS instead of its DNSKEY: matched against the served root DNSKEY RRset.
    let ds = bed.fixture.trust_anchor_ds();
    assert!(matches!(
        bed.lookup_with(names::ED_HOST, ds),
        Ok(Answer::Secure(_))
    ));
    // The IANA root keys do not sign this private root: everything is bogus, nothing insecure.
    let config = ValidatorConfig {
        upstream: Upstream::Servers(vec![bed.fixture.resolver()]),
        ..ValidatorConfig::default()
    };
    let target: LookupTarget = names::ED_HOST.parse().unwrap();
    let outcome = bed.ns.run(move || lookup_blocking(config, &target).0);
    assert!(matches!(outcome, Err(LookupError::Bogus(_))), "{outcome:?}");
}

#[test]
fn unreachable_upstream_is_a_failure() {
    let bed = bed();
    let mut config = bed.config(bed.fixture.trust_anchor_dnskey());
    // Nothing listens there inside the namespace.
    config.upstream = Upstream::Servers(vec!["127.0.0.9:53".parse().unwrap()]);
    config.lookup_timeout = Duration::from_secs(3);
    config.query_timeout = Duration::from_millis(500);
    let target: LookupTarget = names::ED_HOST.parse().unwrap();
    let outcome = bed.ns.run(move || lookup_blocking(config, &target).0);
    assert!(
        matches!(outcome, Err(LookupError::Failure(_))),
        "{outcome:?}"
    );
}

#[test]
fn gateway_types_and_lifetimes() {
    let bed = bed();
    let Ok(Answer::Secure(s)) = bed.lookup(names::GATEWAYS) else {
        panic!("gateways")
    };
    let gateways: Vec<String> = s
        .records
        .iter()
        .map(|r| r.data.as_ref().unwrap().gateway.to_string())
        .collect();
    assert_eq!(gateways, ["192.0.2.38", "2001:db8::38", "gw.ed.example."]);
    // Usable no longer than the TTL allows nor past the signature's expiration.
    let now = std::time::SystemTime::now();
    assert!(s.usable_until <= now + Duration::from_secs(u64::from(s.ttl)));
    assert!(s.usable_until <= s.signature.expiration);
    assert_eq!(s.signature.signer.to_string(), "ed.example.");
}

/// hickory 0.26.3 reports this NSEC-signed wildcard answer bogus (upstream PR #3812 adds the
/// failing test); oe-dns re-checks RFC 4035 section 5.3.4 on the validated records.
#[test]
fn nsec_wildcard_one_label_below_is_secure() {
    let bed = bed();
    let answer = bed.lookup(names::WILDCARD_HOST);
    assert!(matches!(secure_key(&answer), PublicKey::Ed25519(_)));
    let Ok(Answer::Secure(s)) = &answer else {
        unreachable!()
    };
    assert_eq!(s.owner.to_string(), names::WILDCARD_HOST);
    // A name that is not under the wildcard stays absent.
    assert!(matches!(
        bed.lookup("nothing.ed.example."),
        Ok(Answer::Absent(_))
    ));
}

/// Fifty requests for one host at once (a burst of ACQUIREs): one validated lookup, one answer.
#[test]
fn cache_coalesces_a_burst_into_one_lookup() {
    use oe_dns::{CacheConfig, KeyCache, Validator};
    let bed = bed();
    let config = bed.config(bed.fixture.trust_anchor_dnskey());
    let (secure, snapshot) = bed.ns.run(move || {
        let rt = oe_dns::current_thread_runtime().unwrap();
        rt.block_on(async move {
            let cache = KeyCache::new(Validator::new(config).unwrap(), CacheConfig::default());
            let target: LookupTarget = names::ED_HOST.parse().unwrap();
            let burst: Vec<_> = (0..50)
                .map(|_| {
                    let (cache, target) = (cache.clone(), target.clone());
                    std::thread::spawn(move || {
                        let rt = oe_dns::current_thread_runtime().unwrap();
                        rt.block_on(async move { cache.get(&target).await })
                    })
                })
                .collect();
            let outcomes: Vec<_> = burst.into_iter().map(|t| t.join().unwrap()).collect();
            let secure = outcomes
                .iter()
                .filter(|o| matches!(o.as_ref(), Ok(Answer::Secure(_))))
                .count();
            (secure, cache.snapshot())
        })
    });
    assert_eq!(secure, 50);
    assert_eq!(snapshot.counters.misses, 1, "{snapshot:?}");
    assert_eq!(snapshot.counters.coalesced + snapshot.counters.hits, 49);
    assert_eq!(snapshot.entries.len(), 1);
    assert_eq!(snapshot.entries[0].state, "secure");
}

/// `oe lookup` as a user runs it: the state it prints and its exit status, for every case.
#[test]
fn oe_lookup_command_states_and_exit_codes() {
    let bed = bed();
    let oe = oe_binary();
    let anchor = bed.fixture.trust_anchor_dnskey();
    let server = bed.fixture.resolver().to_string();
    let run = |target: &str, extra: &[&str]| {
        let out = bed
            .ns
            .cmd(oe.to_str().unwrap())
            .args(["lookup", target, "--server", &server, "--trust-anchor"])
            .arg(&anchor)
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let cases: &[(&str, i32, &str)] = &[
        (names::RSA_HOST, 0, "IPSECKEY: SECURE\n"),
        (names::ECDSA_HOST, 0, "IPSECKEY: SECURE\n"),
        (names::ED_HOST, 0, "IPSECKEY: SECURE\n"),
        (names::NSEC3_HOST, 0, "IPSECKEY: SECURE\n"),
        (names::WILDCARD_HOST, 0, "IPSECKEY: SECURE\n"),
        (
            "192.0.2.20",
            0,
            "20.2.0.192.in-addr.arpa.) IPSECKEY: SECURE\n",
        ),
        ("2001:db8::30", 0, "ip6.arpa.) IPSECKEY: SECURE\n"),
        (names::INSECURE_HOST, 4, "IPSECKEY: INSECURE\n"),
        (names::NSEC_NOKEY, 5, "proven by validated NSEC records"),
        (
            names::NSEC3_NXDOMAIN,
            5,
            "NXDOMAIN), proven by validated NSEC3 records",
        ),
        (names::EXPIRED_HOST, 6, "IPSECKEY: BOGUS\n"),
        (names::TAMPERED_HOST, 6, "IPSECKEY: BOGUS\n"),
    ];
    for (target, code, expect) in cases {
        let (status, text) = run(target, &[]);
        println!("$ oe lookup {target}  (exit {status:?})\n{text}");
        assert_eq!(status, Some(*code), "{target}: {text}");
        assert!(
            text.contains(expect),
            "{target}: want {expect:?} in\n{text}"
        );
    }
    // Secure output names the chain and the key.
    let (_, text) = run(names::ED_HOST, &[]);
    assert!(text.contains("signed by ed.example. (ED25519"), "{text}");
    assert!(
        text.contains("Ed25519 (255 bits)") && text.contains(", usable\n"),
        "{text}"
    );
    // JSON for scripts.
    let (status, text) = run(names::RSA_HOST, &["--json"]);
    assert_eq!(status, Some(0));
    let v: serde_like::Json = serde_like::parse(&text);
    assert!(
        v.has("\"state\":\"secure\"") && v.has("\"key_type\":\"RSA\"") && v.has("\"usable\":true"),
        "{text}"
    );
    let (status, text) = run(names::EXPIRED_HOST, &["--json"]);
    assert_eq!(status, Some(6));
    assert!(
        serde_like::parse(&text).has("\"state\":\"bogus\""),
        "{text}"
    );
    // A resolver that does not answer: lookup failure.
    let out = bed
        .ns
        .cmd(oe.to_str().unwrap())
        .args([
            "lookup",
            names::ED_HOST,
            "--server",
            "127.0.0.9",
            "--timeout",
            "2",
            "--trust-anchor",
        ])
        .arg(&anchor)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Bad input.
    let (status, _) = run("not a name!", &[]);
    assert_eq!(status, Some(1));
    // The exit codes are documented in --help.
    let help = bed
        .ns
        .cmd(oe.to_str().unwrap())
        .args(["lookup", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for line in [
        "0  secure",
        "4  insecure",
        "5  absent",
        "6  bogus",
        "7  lookup failed",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

/// The `oe` binary next to this test's executable (built by `cargo build --workspace`).
fn oe_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let oe = dir.join("oe");
    assert!(
        oe.exists(),
        "{} is missing: run `cargo build -p oe-agent` first",
        oe.display()
    );
    oe
}

/// JSON checks without a JSON dependency: compact the text and look for members.
mod serde_like {
    pub(crate) struct Json(String);

    pub(crate) fn parse(text: &str) -> Json {
        let compact: String = text.split_whitespace().collect();
        assert!(
            compact.starts_with('{') && compact.ends_with('}'),
            "not a JSON object: {text}"
        );
        Json(compact)
    }

    impl Json {
        pub(crate) fn has(&self, member: &str) -> bool {
            self.0.contains(member)
        }
    }
}

/// DNS-over-TLS: an unbound speaking TLS on port 853 in front of the fixture's resolver, with a
/// certificate from a test CA; a wrong server name is refused.
#[test]
fn dns_over_tls_upstream() {
    use oe_integration::process::Daemon;
    let bed = bed();
    let dir = bed.fixture.dir().join("dot");
    std::fs::create_dir_all(&dir).unwrap();
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -subj /CN=oe-test-ca -days 2 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign 2>/dev/null",
    );
    sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dot.key -out dot.csr \
        -subj /CN=dot.test 2>/dev/null && printf 'subjectAltName=DNS:dot.test\\nextendedKeyUsage=serverAuth\\n' > ext \
        && openssl x509 -req -in dot.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out dot.pem \
        -days 2 -extfile ext 2>/dev/null");
    let conf = format!(
        "server:\n  interface: 127.0.0.77@853\n  tls-port: 853\n  tls-service-key: \"{d}/dot.key\"\n  \
         tls-service-pem: \"{d}/dot.pem\"\n  do-ip6: no\n  do-not-query-localhost: no\n  \
         access-control: 127.0.0.0/8 allow\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  \
         pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n  module-config: \"iterator\"\n  \
         local-zone: \"example.\" nodefault\n\
         forward-zone:\n  name: \".\"\n  forward-addr: {r}\nremote-control:\n  control-enable: no\n",
        d = dir.display(),
        r = bed.fixture.resolver().ip()
    );
    std::fs::write(dir.join("unbound.conf"), conf).unwrap();
    bed.ns.ip(&["addr", "add", "127.0.0.77/8", "dev", "lo"]);
    let mut cmd = bed.ns.cmd("unbound");
    cmd.args(["-d", "-c"]).arg(dir.join("unbound.conf"));
    let _dot = Daemon::spawn("unbound-dot", cmd, &dir.join("unbound.log")).unwrap();
    let ready = oe_integration::process::wait_until(Duration::from_secs(10), || {
        bed.ns
            .cmd("sh")
            .args(["-c", "ss -ltn | grep -q 127.0.0.77:853"])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        ready,
        "unbound did not listen on 853: {}",
        std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default()
    );
    let tls = |name: &str| {
        let mut config = bed.config(bed.fixture.trust_anchor_dnskey());
        config.upstream = Upstream::Tls {
            servers: vec!["127.0.0.77:853".parse().unwrap()],
            server_name: name.into(),
            ca_file: Some(dir.join("ca.pem")),
        };
        config.lookup_timeout = Duration::from_secs(5);
        let target: LookupTarget = names::ED_HOST.parse().unwrap();
        bed.ns.run(move || lookup_blocking(config, &target).0)
    };
    assert!(matches!(
        secure_key(&tls("dot.test")),
        PublicKey::Ed25519(_)
    ));
    let wrong = tls("other.test");
    assert!(matches!(wrong, Err(LookupError::Failure(_))), "{wrong:?}");
}

/// The chain of trust is fetched once per zone, not once per lookup (DNSKEY and DS responses are
/// kept, and validated again on every use); a bogus outcome makes the next lookup fetch it afresh.
#[test]
fn the_chain_of_trust_is_fetched_once_per_zone() {
    use oe_dns::Validator;
    let bed = bed();
    let config = bed.config(bed.fixture.trust_anchor_dnskey());
    let costs = bed.ns.run(move || {
        let rt = oe_dns::current_thread_runtime().unwrap();
        rt.block_on(async move {
            let validator = Validator::new(config).unwrap();
            let mut costs = Vec::new();
            for name in [
                names::ED_HOST,
                names::NSEC_NXDOMAIN,
                "nokey.ed.example.",
                names::TAMPERED_HOST,
                names::GATEWAYS,
            ] {
                let target: LookupTarget = name.parse().unwrap();
                let (outcome, cost) = validator.lookup_with_cost(&target).await;
                costs.push((name, outcome.is_ok(), cost.queries));
            }
            let hits = validator
                .stats()
                .chain_hits
                .load(std::sync::atomic::Ordering::Relaxed);
            (costs, hits)
        })
    });
    println!("{costs:?}");
    let (costs, hits) = costs;
    // Cold: the name, ed.example DNSKEY and DS, the root DNSKEY.
    assert_eq!(costs[0], (names::ED_HOST, true, 4));
    // Warm: one query each, the chain comes from the cache.
    assert_eq!(costs[1], (names::NSEC_NXDOMAIN, true, 1));
    assert_eq!(costs[2], ("nokey.ed.example.", true, 1));
    assert!(hits >= 2, "{hits}");
    // Tampered: bogus, and the chain is flushed, so the next name in the zone fetches it again.
    assert!(!costs[3].1);
    assert!(costs[4].1 && costs[4].2 > 1, "{:?}", costs[4]);
}
