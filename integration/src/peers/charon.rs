//! strongSwan 5.9 charon with a swanctl configuration of the test's own.
//!
//! charon writes its PID file to the fixed path /run/charon.pid, so each instance runs in its own mount
//! namespace (from `ip netns exec`) with a fresh tmpfs on /run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{wait_until, Daemon};
use crate::require;

/// Plugins charon loads by default: enough for raw public keys, X25519/ECP, AES-GCM/CBC, ChaCha20-Poly1305,
/// kernel-netlink and the vici control socket.
pub const DEFAULT_PLUGINS: &str =
    "random nonce openssl pem pkcs1 pkcs8 pubkey curve25519 sha1 sha2 hmac kdf \
     aes gcm chapoly kernel-netlink socket-default vici";

/// What a test gives charon.
#[derive(Debug, Clone, Default)]
pub struct CharonSetup {
    /// The swanctl.conf text (connections, and optionally secrets).
    pub swanctl_conf: String,
    /// Private keys (file name, PEM) placed in swanctl/private/.
    pub private_keys: Vec<(String, String)>,
    /// Public keys (file name, PEM) placed in swanctl/pubkey/.
    pub public_keys: Vec<(String, String)>,
    /// Extra plugins appended to [`DEFAULT_PLUGINS`] (e.g. "ipseckey unbound").
    pub extra_plugins: String,
    /// Extra text inside the `charon { }` section of strongswan.conf.
    pub charon_extra: String,
}

/// A running charon.
#[derive(Debug)]
pub struct Charon {
    daemon: Daemon,
    dir: tempfile::TempDir,
    ns: String,
}

impl Charon {
    /// Starts charon inside `ns`, waits for its control socket and loads the configuration.
    pub fn start(ns: &Netns, setup: &CharonSetup) -> Self {
        require::root();
        require::file("/usr/lib/ipsec/charon", "strongswan-charon");
        require::program("swanctl", "strongswan-swanctl");
        let dir = tempfile::Builder::new()
            .prefix("oe-charon.")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        write_config(dir.path(), setup);
        let conf = dir.path().join("strongswan.conf");
        let script = format!(
            "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF={} exec /usr/lib/ipsec/charon",
            conf.display()
        );
        let mut cmd = ns.cmd("sh");
        cmd.args(["-c", &script]);
        let daemon = Daemon::spawn("charon", cmd, &dir.path().join("charon.stdout"))
            .unwrap_or_else(|e| panic!("cannot start charon: {e}"));
        let charon = Self {
            daemon,
            dir,
            ns: ns.name().to_owned(),
        };
        let vici = charon.vici_path();
        assert!(
            wait_until(Duration::from_secs(10), || vici.exists()),
            "charon did not open its vici socket; log: {}",
            charon.log()
        );
        let out = charon.swanctl(&[
            "--load-all",
            "--file",
            &charon.swanctl_conf().to_string_lossy(),
        ]);
        assert!(
            out.status.success(),
            "swanctl --load-all failed: {}",
            text(&out)
        );
        charon
    }

    /// Runs `swanctl ARGS --uri <this charon>` inside the namespace.
    pub fn swanctl(&self, args: &[&str]) -> Output {
        let uri = format!("unix://{}", self.vici_path().display());
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "swanctl"])
            .args(args)
            .args(["--uri", &uri])
            .env("STRONGSWAN_CONF", self.dir.path().join("strongswan.conf"))
            .output()
            .unwrap_or_else(|e| panic!("swanctl: {e}"))
    }

    /// `swanctl --list-sas` output.
    pub fn list_sas(&self) -> String {
        text(&self.swanctl(&["--list-sas"]))
    }

    /// charon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("charon.log")).unwrap_or_default()
    }

    /// The state folder (strongswan.conf, swanctl/, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    fn vici_path(&self) -> PathBuf {
        self.dir.path().join("charon.vici")
    }

    fn swanctl_conf(&self) -> PathBuf {
        self.dir.path().join("swanctl/swanctl.conf")
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn write(path: &Path, content: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn write_config(dir: &Path, setup: &CharonSetup) {
    let d = dir.display();
    let strongswan_conf = format!(
        "charon {{
  load_modular = no
  load = {DEFAULT_PLUGINS} {extra}
  install_routes = no
  retransmit_tries = 3
  plugins {{ vici {{ socket = unix://{d}/charon.vici }} }}
  filelog {{ main {{ path = {d}/charon.log
      time_format = %H:%M:%S
      time_add_ms = yes
      default = 1
      ike = 2
      knl = 2
      cfg = 2
      flush_line = yes }} }}
  syslog {{ daemon {{ default = -1 }} auth {{ default = -1 }} }}
{charon_extra}
}}
swanctl {{ load = pem pkcs1 pkcs8 openssl pubkey curve25519 random nonce }}
",
        extra = setup.extra_plugins,
        charon_extra = setup.charon_extra,
    );
    write(&dir.join("strongswan.conf"), &strongswan_conf);
    write(&dir.join("swanctl/swanctl.conf"), &setup.swanctl_conf);
    for (name, pem) in &setup.private_keys {
        write(&dir.join("swanctl/private").join(name), pem);
    }
    for (name, pem) in &setup.public_keys {
        write(&dir.join("swanctl/pubkey").join(name), pem);
    }
}
