//! The Debian package (`packaging/build-deb.sh`) and a throwaway root to install it in.
//!
//! [`build_deb`] packages the debug build of `oe` (no release build: the package's contents are
//! the same, only unoptimized). [`FreshRoot`] is this host's Debian installation seen through a
//! tmpfs overlay in a private mount namespace: dpkg there checks the package's dependencies
//! against a real system and runs its maintainer scripts for real, and every change vanishes
//! when the root is dropped. The host's own files are never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::process::{run_ok, wait_until, Daemon};
use crate::require;

/// Builds the package from the debug build into `out`; returns the `.deb`'s path.
pub fn build_deb(out: &Path) -> PathBuf {
    require::program(
        "cargo-deb",
        "cargo-deb (cargo install --locked cargo-deb; setup-host.sh does)",
    );
    require::program("dpkg-shlibdeps", "dpkg-dev");
    let oe = crate::agent::oe_binary();
    let script = crate::integration_dir().join("../packaging/build-deb.sh");
    let built = run_ok(
        Command::new("bash")
            .arg(&script)
            .args(["--dev", "--fast", "--output"])
            .arg(out)
            // The target folder of the oe binary under test, whatever the caller's setup.
            .env("CARGO_TARGET_DIR", target_dir(&oe)),
    );
    let stdout = String::from_utf8_lossy(&built.stdout);
    let deb = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("build-deb.sh named no .deb:\n{stdout}"));
    PathBuf::from(deb.trim())
}

/// `target/` above `target/debug/oe`.
fn target_dir(oe: &Path) -> PathBuf {
    oe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("no target folder above {}", oe.display()))
        .to_owned()
}

/// A copy-on-write root: the host's `/` under a tmpfs overlay, with fresh `/run` and `/tmp`, in a
/// mount namespace held by a sleeping process of ours. Commands run chrooted into it.
#[derive(Debug)]
pub struct FreshRoot {
    holder: Daemon,
    dir: tempfile::TempDir,
}

const SETUP: &str = r#"set -e
T="$1"
mount -t tmpfs tmpfs "$T/m"
mkdir -p "$T/m/upper" "$T/m/work" "$T/m/root"
R="$T/m/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$T/m/upper,workdir=$T/m/work" "$R"
if [ "$2" = chroot ]; then
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs tmpfs "$R/run"
  mount -t tmpfs tmpfs "$R/tmp"
fi
touch "$T/ready"
exec sleep infinity
"#;

impl FreshRoot {
    /// A root to chroot into ([`Self::sh`]): with /proc, /dev, and fresh /run and /tmp.
    pub fn new() -> Self {
        Self::setup("chroot")
    }

    /// A bare root for a container manager, which mounts /proc, /dev and /run itself.
    pub fn for_container() -> Self {
        Self::setup("bare")
    }

    /// Sets the root up; panics unless it is ready within 10 s.
    fn setup(kind: &str) -> Self {
        require::root();
        require::program("unshare", "util-linux");
        require::program("nsenter", "util-linux");
        let dir = tempfile::Builder::new()
            .prefix("oe-root.")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        std::fs::create_dir(dir.path().join("m")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            SETUP,
            "setup",
        ])
        .arg(dir.path())
        .arg(kind);
        let log = dir.path().join("setup.log");
        let mut holder =
            Daemon::spawn("fresh-root", cmd, &log).unwrap_or_else(|e| panic!("unshare: {e}"));
        let ready = wait_until(Duration::from_secs(10), || {
            dir.path().join("ready").exists() || !holder.is_running()
        });
        assert!(
            ready && holder.is_running(),
            "the overlay root did not come up:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { holder, dir }
    }

    /// The root as seen from inside the holder's mount namespace ([`Self::nsenter`]).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("m/root")
    }

    /// A path in this root's scratch folder on the host (outside the overlay), for logs.
    pub fn host_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A command prefix that runs the rest inside the holder's mount namespace (not chrooted).
    pub fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.holder.pid().to_string())
            .args(["--mount", "--"]);
        cmd
    }

    /// Writes a file into the root (parents created).
    pub fn write(&self, inside: &str, text: &str) {
        let path = self.root().join(inside.trim_start_matches('/'));
        let script = "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\"";
        let mut child = self
            .nsenter()
            .args(["sh", "-c", script, "write"])
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("nsenter: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("writing {inside}: {e}"));
        }
        let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "cannot write {inside} in the fresh root");
    }

    /// Runs a shell script chrooted into the root; returns its output whatever its status.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg("--target")
            .arg(self.holder.pid().to_string())
            .args(["--mount", "--", "chroot"])
            .arg(self.root())
            .args(["sh", "-c", script])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .output()
            .unwrap_or_else(|e| panic!("nsenter: {e}"))
    }

    /// Runs a script in the root and panics, with its output, unless it succeeds; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        crate::process::stdout_if_ok(&self.sh(script), "the fresh root", script)
    }

    /// Copies a host file into the root's `/root`; returns its path inside the root.
    pub fn copy_in(&self, file: &Path) -> String {
        let name = file
            .file_name()
            .unwrap_or_else(|| panic!("{} has no file name", file.display()))
            .to_string_lossy()
            .into_owned();
        let inside = format!("/root/{name}");
        run_ok(
            self.nsenter()
                .arg("cp")
                .arg(file)
                .arg(self.root().join(inside.trim_start_matches('/'))),
        );
        inside
    }
}

impl Default for FreshRoot {
    fn default() -> Self {
        Self::new()
    }
}
