//! The Debian package (packaging/build-deb.sh, cargo-deb): built from the debug build, installed
//! with dpkg into a throwaway copy-on-write copy of this host's Debian root
//! (`oe_integration::package::FreshRoot`), then reinstalled and purged there.
//!
//! What it shows: the files and their modes; /etc/oe created 0700 and oe.toml a conffile whose
//! settings are all commented out; `oe --version`, `man oe` and `man oe-status` work there; the
//! bash completion loads; oe.service is enabled and no key is generated; a reinstall keeps the
//! administrator's choices; purge removes everything.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use oe_integration::package::{build_deb, FreshRoot};

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_package_installs_upgrades_and_purges_in_a_fresh_root() {
    let out = tempfile::tempdir().unwrap();
    let deb = build_deb(out.path());
    let root = FreshRoot::new();
    let deb = root.copy_in(&deb);
    root.sh_ok("test ! -e /usr/bin/oe && test ! -e /etc/oe");

    let install = root.sh(&format!("dpkg -i {deb} 2>&1"));
    let log = String::from_utf8_lossy(&install.stdout).into_owned();
    assert!(install.status.success(), "dpkg -i failed:\n{log}");
    assert!(
        log.contains("no host key"),
        "postinst says there is no key:\n{log}"
    );

    // Files and modes.
    let modes = root.sh_ok(
        "stat -c '%a %U %n' /etc/oe /etc/oe/oe.toml /usr/bin/oe \
         /usr/lib/systemd/system/oe.service /usr/share/man/man8/oe.8.gz \
         /usr/share/bash-completion/completions/oe /usr/share/zsh/vendor-completions/_oe \
         /usr/share/fish/vendor_completions.d/oe.fish /usr/share/doc/oe/status-protocol.md",
    );
    assert_eq!(
        lines(&modes),
        [
            "700 root /etc/oe",
            "644 root /etc/oe/oe.toml",
            "755 root /usr/bin/oe",
            "644 root /usr/lib/systemd/system/oe.service",
            "644 root /usr/share/man/man8/oe.8.gz",
            "644 root /usr/share/bash-completion/completions/oe",
            "644 root /usr/share/zsh/vendor-completions/_oe",
            "644 root /usr/share/fish/vendor_completions.d/oe.fish",
            "644 root /usr/share/doc/oe/status-protocol.md",
        ]
    );
    let conffiles = root.sh_ok("dpkg-query -W -f='${Conffiles}' oe");
    assert!(conffiles.contains("/etc/oe/oe.toml"), "{conffiles}");
    let unit = root.sh_ok("cat /usr/lib/systemd/system/oe.service");
    let source =
        std::fs::read_to_string(oe_integration::integration_dir().join("../config/oe.service"))
            .unwrap();
    assert_eq!(unit, source, "the packaged unit is config/oe.service");

    // The conffile changes nothing: every setting is a comment.
    let settings =
        root.sh_ok("grep -v -e '^#' -e '^\\[' -e '^[[:space:]]*$' /etc/oe/oe.toml || true");
    assert!(
        settings.trim().is_empty(),
        "uncommented settings: {settings}"
    );

    // The commands work there.
    let version = root.sh_ok("oe --version");
    assert_eq!(version.trim(), format!("oe {}", env!("CARGO_PKG_VERSION")));
    let page = root.sh_ok("MANWIDTH=100 man -P cat oe 2>&1");
    assert!(
        page.contains("oe-status(8)") && page.contains("/etc/oe/oe.toml"),
        "{page}"
    );
    let page = root.sh_ok("MANWIDTH=100 man -P cat 8 oe-lookup 2>&1");
    assert!(
        page.contains("EXIT STATUS") && page.contains("--trust-anchor"),
        "{page}"
    );
    let completion =
        root.sh_ok("bash -c '. /usr/share/bash-completion/completions/oe && complete -p oe'");
    assert!(
        completion.contains("-F") && completion.trim_end().ends_with(" oe"),
        "{completion}"
    );

    // Enabled, and no key was made.
    assert_eq!(root.sh_ok("systemctl is-enabled oe").trim(), "enabled");
    root.sh_ok("test -L /etc/systemd/system/multi-user.target.wants/oe.service");
    root.sh_ok("test ! -e /etc/oe/key.pem");

    // A reinstall (dpkg's upgrade path) keeps what the administrator chose.
    root.sh_ok("chmod 0750 /etc/oe && echo '# local note' >> /etc/oe/oe.toml");
    let again = root.sh(&format!("dpkg -i {deb} 2>&1"));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(root.sh_ok("stat -c %a /etc/oe").trim(), "750");
    root.sh_ok("grep -q '# local note' /etc/oe/oe.toml");

    // Purge removes the files, the conffile, the folder and the unit's symlink.
    root.sh_ok("oe keygen >/dev/null 2>&1 && test -e /etc/oe/key.pem");
    root.sh_ok("dpkg --purge oe >/dev/null 2>&1");
    root.sh_ok(
        "test ! -e /usr/bin/oe && test ! -e /etc/oe && \
         test ! -e /etc/systemd/system/multi-user.target.wants/oe.service && \
         test ! -e /usr/share/man/man8/oe.8.gz",
    );
}
