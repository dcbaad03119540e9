//! Preconditions of real-component tests. Each check panics with a message that names what is missing and
//! how to get it, so a test never passes by skipping its work.

use std::path::Path;

/// The test must run as root (namespaces, netlink, daemons).
pub fn root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test needs root (network namespaces, XFRM netlink, daemons): \
             run the suite as root, e.g. `sudo bash integration/test-all.sh`"
        );
    }
}

/// An executable must be present at `path` (from the named Debian package).
pub fn file(path: &str, package: &str) {
    if !Path::new(path).exists() {
        panic!("this test needs {path} (Debian package `{package}`): apt-get install {package}");
    }
}

/// A program must be on PATH (from the named Debian package).
pub fn program(name: &str, package: &str) {
    if which(name).is_none() {
        panic!("this test needs `{name}` on PATH (Debian package `{package}`): apt-get install {package}");
    }
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Root plus `ip` (iproute2): what every namespace test needs.
pub fn netns() {
    root();
    program("ip", "iproute2");
}
