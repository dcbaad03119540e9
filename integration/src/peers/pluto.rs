//! Libreswan 4.10 pluto, unpacked privately (Debian's libreswan conflicts with strongSwan; see
//! `integration/setup-host.sh`), with its own NSS database and ipsec.conf.
//!
//! pluto hard-codes /usr/libexec/ipsec (addconn, _updown), so inside the mount namespace of `ip netns exec`
//! the unpacked libexec folder is overlaid on /usr/libexec; /run is a fresh tmpfs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::netns::Netns;
use crate::process::{run_ok, stdout_of, wait_until, Daemon};
use crate::require;

/// Placeholder in [`PlutoSetup::conns`] replaced by the CKAID of the imported RSA key.
pub const CKAID: &str = "@CKAID@";

/// What a test gives pluto.
#[derive(Debug, Clone, Default)]
pub struct PlutoSetup {
    /// `conn` sections of ipsec.conf (may use [`CKAID`] for `leftckaid=`).
    pub conns: String,
    /// Extra lines for `config setup` (e.g. `dnssec-rootkey-file=...`).
    pub setup_extra: String,
    /// An RSA private key (PKCS#8 PEM) imported into pluto's NSS database.
    pub rsa_key_pem: Option<String>,
    /// Text bind-mounted over /etc/resolv.conf for pluto's libunbound.
    pub resolv_conf: Option<String>,
    /// Opportunistic policy groups (file name, CIDR lines) for `right=%opportunisticgroup`
    /// conns: written to `ipsec.d/policies/` before the conns are added.
    pub policies: Vec<(String, String)>,
}

/// A running pluto.
#[derive(Debug)]
pub struct Pluto {
    daemon: Daemon,
    dir: tempfile::TempDir,
    ns: String,
    ckaid: Option<String>,
}

impl Pluto {
    /// Where Libreswan is unpacked (`$OE_LIBRESWAN/root`, default /opt/oe-testbed/libreswan/root).
    pub fn root() -> PathBuf {
        let base = std::env::var_os("OE_LIBRESWAN")
            .map_or_else(|| PathBuf::from("/opt/oe-testbed/libreswan"), PathBuf::from);
        base.join("root")
    }

    /// Fails unless Libreswan is unpacked and its libraries are installed.
    pub fn require() {
        require::root();
        let pluto = Self::root().join("usr/libexec/ipsec/pluto");
        if !pluto.exists() {
            panic!(
                "this test needs Libreswan 4.10 unpacked at {} (run integration/setup-host.sh)",
                Self::root().display()
            );
        }
        require::program("pk12util", "libnss3-tools");
        require::program("openssl", "openssl");
    }

    /// Prepares the NSS database, writes ipsec.conf, starts pluto inside `ns`, and adds the connections.
    pub fn start(ns: &Netns, setup: &PlutoSetup) -> Self {
        Self::require();
        let dir = tempfile::Builder::new()
            .prefix("oe-pluto.")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        for sub in ["nss", "run", "ipsec.d/policies"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap_or_else(|e| panic!("{e}"));
        }
        for (name, cidrs) in &setup.policies {
            std::fs::write(dir.path().join("ipsec.d/policies").join(name), cidrs)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(dir.path().join("ipsec.secrets"), "").unwrap_or_else(|e| panic!("{e}"));
        run_ok(
            ipsec_cmd(dir.path())
                .args(["initnss", "--nssdir"])
                .arg(dir.path().join("nss")),
        );
        let ckaid = setup
            .rsa_key_pem
            .as_deref()
            .map(|pem| import_rsa_key(dir.path(), pem));
        write_ipsec_conf(dir.path(), setup, ckaid.as_deref());
        if let Some(resolv) = &setup.resolv_conf {
            std::fs::write(dir.path().join("resolv.conf"), resolv)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let daemon = spawn_pluto(ns, dir.path(), setup.resolv_conf.is_some());
        let pluto = Self {
            daemon,
            dir,
            ns: ns.name().to_owned(),
            ckaid,
        };
        let ctl = pluto.ctl_path();
        assert!(
            wait_until(Duration::from_secs(10), || ctl.exists()),
            "pluto did not open its control socket; log: {}",
            pluto.log()
        );
        run_ok(&mut pluto.whack_cmd(&["--listen"]));
        let conf = pluto.dir.path().join("ipsec.conf");
        run_ok(
            Command::new("ip")
                .args(["netns", "exec", &pluto.ns])
                .arg(Self::root().join("usr/libexec/ipsec/addconn"))
                .arg("--config")
                .arg(&conf)
                .arg("--ctlsocket")
                .arg(pluto.ctl_path())
                .arg("--autoall"),
        );
        pluto
    }

    /// Runs `whack ARGS` against this pluto (inside the namespace).
    pub fn whack(&self, args: &[&str]) -> Output {
        self.whack_cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("whack: {e}"))
    }

    /// `whack --trafficstatus` output.
    pub fn traffic_status(&self) -> String {
        let out = self.whack(&["--trafficstatus"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The CKAID of the imported RSA key, if one was given.
    pub fn ckaid(&self) -> Option<&str> {
        self.ckaid.as_deref()
    }

    /// pluto's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pluto.log")).unwrap_or_default()
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    fn ctl_path(&self) -> PathBuf {
        self.dir.path().join("run/pluto.ctl")
    }

    fn whack_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(Self::root().join("usr/libexec/ipsec/whack"))
            .arg("--ctlsocket")
            .arg(self.ctl_path())
            .args(args);
        cmd
    }
}

/// The `ipsec` front-end script of the unpacked Libreswan, with its folders pointed at `dir`.
fn ipsec_cmd(dir: &Path) -> Command {
    let root = Pluto::root();
    let mut cmd = Command::new(root.join("usr/sbin/ipsec"));
    let path = format!(
        "{}:{}",
        root.join("usr/sbin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("IPSEC_EXECDIR", root.join("usr/libexec/ipsec"))
        .env("IPSEC_SBINDIR", root.join("usr/sbin"))
        .env("IPSEC_CONF", dir.join("ipsec.conf"))
        .env("IPSEC_CONFDDIR", dir.join("ipsec.d"))
        .env("IPSEC_RUNDIR", dir.join("run"))
        .env("IPSEC_NSSDIR", dir.join("nss"))
        .env("PATH", path);
    cmd
}

/// Imports an RSA private key into the NSS database (through a throwaway self-signed certificate and
/// PKCS#12, which is what NSS imports; the certificate is then deleted) and returns its CKAID.
fn import_rsa_key(dir: &Path, pem: &str) -> String {
    let key = dir.join("import-key.pem");
    let (cert, p12) = (dir.join("import-cert.pem"), dir.join("import.p12"));
    std::fs::write(&key, pem).unwrap_or_else(|e| panic!("{e}"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-new",
                "-subj",
                "/CN=oe-test",
                "-days",
                "3650",
            ])
            .arg("-key")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "pkcs12", "-export", "-passout", "pass:oe", "-name", "oe-test",
            ])
            .arg("-inkey")
            .arg(&key)
            .arg("-in")
            .arg(&cert)
            .arg("-out")
            .arg(&p12),
    );
    run_ok(
        Command::new("pk12util")
            .arg("-i")
            .arg(&p12)
            .arg("-d")
            .arg(format!("sql:{}", dir.join("nss").display()))
            .args(["-W", "oe"]),
    );
    // Keep the private key only: with the certificate present, pluto would send it in IKE_AUTH.
    run_ok(
        Command::new("certutil")
            .arg("-D")
            .arg("-d")
            .arg(format!("sql:{}", dir.join("nss").display()))
            .args(["-n", "oe-test"]),
    );
    for f in [&key, &cert, &p12] {
        let _ = std::fs::remove_file(f);
    }
    let list = stdout_of(
        ipsec_cmd(dir)
            .args(["showhostkey", "--list", "--nssdir"])
            .arg(dir.join("nss")),
    );
    list.split_whitespace()
        .skip_while(|w| *w != "ckaid:")
        .nth(1)
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no ckaid in `ipsec showhostkey --list`: {list}"))
}

fn write_ipsec_conf(dir: &Path, setup: &PlutoSetup, ckaid: Option<&str>) {
    let conns = match ckaid {
        Some(ckaid) => setup.conns.replace(CKAID, ckaid),
        None => setup.conns.clone(),
    };
    let text = format!(
        "config setup\n    logfile={}/pluto.log\n    logappend=no\n    logtime=yes\n    plutodebug=none\n    \
         ikev1-policy=drop\n{}\n{}\n",
        dir.display(),
        setup.setup_extra,
        conns
    );
    std::fs::write(dir.join("ipsec.conf"), text).unwrap_or_else(|e| panic!("{e}"));
}

fn spawn_pluto(ns: &Netns, dir: &Path, own_resolv: bool) -> Daemon {
    let root = Pluto::root();
    let d = dir.display();
    let resolv = if own_resolv {
        format!("mount --bind {d}/resolv.conf /etc/resolv.conf && ")
    } else {
        String::new()
    };
    let script = format!(
        "mount -t tmpfs tmpfs /run && {resolv}mount -t overlay overlay -o lowerdir={libexec}:/usr/libexec /usr/libexec \
         && PATH={sbin}:$PATH exec /usr/libexec/ipsec/pluto --nofork --config {d}/ipsec.conf --rundir {d}/run \
         --nssdir {d}/nss --secretsfile {d}/ipsec.secrets --ipsecdir {d}/ipsec.d --dumpdir {d}/run",
        libexec = root.join("usr/libexec").display(),
        sbin = root.join("usr/sbin").display(),
    );
    let mut cmd = ns.cmd("sh");
    cmd.args(["-c", &script]);
    Daemon::spawn("pluto", cmd, &dir.join("pluto.stdout"))
        .unwrap_or_else(|e| panic!("cannot start pluto: {e}"))
}
