//! `oe keygen` and `oe ipseckey` run as processes: the key files they leave, and records that
//! parse back with oe-dns's presentation parser and hold the key oe-ike loads.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use oe_agent::keys::{dns_key_to_ike, load_private_key};
use oe_dns::{Gateway, IpsecKey};

fn oe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oe"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The `owner IN IPSECKEY rdata` lines of `oe ipseckey` output, parsed.
fn records(output: &str) -> Vec<(String, IpsecKey)> {
    output
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let owner = fields.next().unwrap().to_owned();
            assert_eq!(fields.next(), Some("IN"), "{line}");
            assert_eq!(fields.next(), Some("IPSECKEY"), "{line}");
            (owner, fields.next().unwrap().parse::<IpsecKey>().unwrap())
        })
        .collect()
}

#[test]
fn each_key_type_is_published_as_the_key_oe_ike_loads() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra, alg) in [
        ("ed25519", None, 4),
        ("ecdsa-p256", None, 3),
        ("rsa", Some("2048"), 2),
    ] {
        let path = dir.path().join(format!("keys/{kind}.pem"));
        let path_s = path.to_str().unwrap();
        let mut args = vec!["keygen", "--type", kind, "--out", path_s];
        if let Some(bits) = extra {
            args.extend(["--bits", bits]);
        }
        let out = oe(&args);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&path), 0o600, "{kind}");
        let key = load_private_key(&path).unwrap();

        let out = oe(&[
            "ipseckey",
            "--key",
            path_s,
            "--name",
            "host.example.org",
            "--address",
            "192.0.2.7",
            "--address",
            "2001:db8::7",
            "--precedence",
            "20",
        ]);
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let output = text(&out);
        let records = records(&output);
        let owners: Vec<&str> = records.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(
            owners,
            [
                "host.example.org.",
                "7.2.0.192.in-addr.arpa.",
                "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
            ]
        );
        for (owner, record) in &records {
            assert_eq!(record.precedence, 20, "{owner}");
            assert_eq!(record.gateway, Gateway::None, "{owner}");
            assert_eq!(record.key.algorithm(), alg, "{owner}");
            assert_eq!(
                dns_key_to_ike(&record.key),
                Some(key.public_key()),
                "{kind} {owner}"
            );
        }
        assert!(
            output.contains("id = \"fqdn:host.example.org\""),
            "{output}"
        );
    }
}

#[test]
fn keygen_never_replaces_a_key_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    let path_s = path.to_str().unwrap();
    assert!(oe(&["keygen", "--out", path_s]).status.success());
    let first = std::fs::read(&path).unwrap();
    let again = oe(&["keygen", "--out", path_s]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), first);
    assert!(oe(&["keygen", "--out", path_s, "--force"]).status.success());
    assert_ne!(std::fs::read(&path).unwrap(), first);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn default_paths_and_identity_come_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("etc/oe/key.pem");
    let config = dir.path().join("oe.toml");
    let setting = format!(
        "[identity]\nkey = {:?}\nid = \"fqdn:ws.example.net\"\n",
        key.to_str().unwrap()
    );
    std::fs::write(&config, setting).unwrap();
    let config_s = config.to_str().unwrap();

    let out = oe(&["keygen", "--config", config_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&key), 0o600);
    assert!(!text(&out).contains("set [identity]"), "{}", text(&out));

    let out = oe(&["ipseckey", "--config", config_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&text(&out));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].0, "ws.example.net.");
    let loaded = load_private_key(&key).unwrap();
    assert_eq!(dns_key_to_ike(&records[0].1.key), Some(loaded.public_key()));

    let out = oe(&[
        "ipseckey",
        "--config",
        config_s,
        "--address",
        "198.51.100.9",
    ]);
    assert!(
        text(&out).contains("[identity] id = \"address\""),
        "{}",
        text(&out)
    );
}

#[test]
fn mistakes_get_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("k.pem");
    let out_s = out_path.to_str().unwrap();
    let bad_bits = oe(&[
        "keygen", "--type", "ed25519", "--bits", "2048", "--out", out_s,
    ]);
    assert_eq!(bad_bits.status.code(), Some(2));
    assert!(!out_path.exists());
    assert_eq!(
        oe(&["keygen", "--type", "rsa", "--bits", "1024", "--out", out_s])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(oe(&["keygen", "--type", "dsa"]).status.code(), Some(2));

    // Default configuration: identity.id = "address", so names or addresses must be given.
    let none = oe(&["ipseckey", "--key", out_s]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--name"));
    let missing = oe(&["ipseckey", "--key", out_s, "--name", "h.example.org"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("oe keygen"));
}
