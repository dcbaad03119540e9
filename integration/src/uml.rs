//! Tests that need real ESP run inside a User-Mode-Linux kernel (`integration/uml/oe-uml-run`).
//!
//! The host kernel of our machines has XFRM netlink and ACQUIRE but no ESP. A test that needs ESP re-runs
//! itself inside the guest kernel:
//!
//! ```no_run
//! use oe_integration::uml;
//! #[test]
//! fn esp_pair() {
//!     if !uml::in_guest() {
//!         return uml::rerun_in_guest("esp_pair");
//!     }
//!     // Runs as root inside the guest: esp4/esp6, xfrm_user and veth are loaded.
//! }
//! ```
//!
//! The guest sees the host's files read-only (with a tmpfs overlay), so the same test binary runs there,
//! wherever the checkout is (under `/tmp` too). The kernel is a private one that `uml/install-kernel.sh`
//! unpacks (run by `setup-host.sh`): Debian 12's own panics on CPUs with AVX-512 or AMX.

use std::process::Command;
use std::time::Instant;

use crate::require;

/// Set in the guest's environment for the re-run test.
pub const GUEST_ENV: &str = "OE_UML_GUEST";

/// Whether this process runs inside the UML guest.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some_and(|v| v == "1")
}

/// The runner script.
pub fn runner() -> std::path::PathBuf {
    crate::integration_dir().join("uml/oe-uml-run")
}

/// The guest kernel that `uml/install-kernel.sh` unpacks (`$OE_UML_DIR/linux.uml`).
pub fn kernel() -> std::path::PathBuf {
    std::env::var_os("OE_UML_DIR")
        .map_or_else(|| "/opt/oe-testbed/uml".into(), std::path::PathBuf::from)
        .join("linux.uml")
}

/// Fails unless the host can boot the guest kernel.
pub fn require() {
    require::root();
    let kernel = kernel();
    if !kernel.exists() {
        panic!(
            "this test needs the UML kernel {}: run integration/uml/install-kernel.sh \
             (integration/setup-host.sh does)",
            kernel.display()
        );
    }
    require::file("/bin/busybox", "busybox-static");
    require::program("modprobe", "kmod");
}

/// Re-runs the test named `test` (its path as `cargo test -- --exact` wants it) from this test binary
/// inside a fresh UML guest, and panics unless it passed there. The guest's console output is printed
/// (and so captured by the test harness like any other output).
pub fn rerun_in_guest(test: &str) {
    require();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let started = Instant::now();
    let mut cmd = Command::new(runner());
    cmd.arg(&exe)
        // The host chose to run it: an ignored test runs in the guest too.
        .args([
            "--exact",
            test,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(GUEST_ENV, "1")
        .env("OE_UML_ENV", passed_env_names());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", runner().display()));
    println!("---- UML guest output ({test}) ----");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let secs = started.elapsed().as_secs_f64();
    println!(
        "---- UML guest ran {test} in {secs:.1} s, exit {:?} ----",
        out.status.code()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test} failed inside the UML guest (exit {:?})",
        out.status.code()
    );
    // The filter must have matched exactly one test, or the guest ran nothing and "passed".
    assert!(
        stdout.contains("1 passed"),
        "the guest did not run exactly one test named {test}: is the name the test's full path?"
    );
}

/// Runs this program again, with the same arguments, inside a fresh UML guest, with the guest's console on
/// our stdout; returns the guest's exit status. For programs (demos, benches) rather than tests.
pub fn exec_self_in_guest() -> std::process::ExitStatus {
    require();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    Command::new(runner())
        .arg(&exe)
        .args(std::env::args_os().skip(1))
        .env(GUEST_ENV, "1")
        .env("OE_UML_ENV", passed_env_names())
        .status()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", runner().display()))
}

/// Names of host variables the guest inherits: ours, and the usual Rust diagnostics.
fn passed_env_names() -> String {
    let mut names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("OE_") || k == "RUST_LOG" || k == "RUST_BACKTRACE")
        .collect();
    names.push(GUEST_ENV.to_owned());
    names.sort();
    names.dedup();
    names.join(" ")
}
