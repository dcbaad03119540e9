//! `kernel-esp`: can this kernel install ESP SAs? The same probe the agent runs at start
//! (oe-kernel `probe`: a throwaway SA per family and algorithm), with the kernel modules that
//! provide ESP (`esp4`, `esp6`, RFC 4303) and the XFRM netlink interface (`xfrm_user`) named in
//! the fix.

use oe_kernel::probe::{Capabilities, EspUnavailable};
use oe_kernel::{Family, Ownership, Xfrm};

use super::check::{Check, Verdict};

const ID: &str = "kernel-esp";

/// Where a kernel module is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Loaded,
    BuiltIn,
    /// A module file exists but is not loaded.
    Available,
    Missing,
}

/// Where `name` is, from /proc/modules, modules.builtin and modules.dep texts.
pub fn module_state(name: &str, loaded: &str, builtin: &str, dep: &str) -> Module {
    let file = format!("/{name}.ko");
    let listed = |text: &str| {
        text.lines().any(|l| {
            let path = l.split(':').next().unwrap_or("");
            path.ends_with(&file) || path.contains(&format!("{file}."))
        })
    };
    if loaded
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
    {
        Module::Loaded
    } else if listed(builtin) {
        Module::BuiltIn
    } else if listed(dep) {
        Module::Available
    } else {
        Module::Missing
    }
}

fn module(name: &str) -> Module {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = format!("/lib/modules/{}", release.trim());
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    module_state(
        name,
        &read("/proc/modules"),
        &read(&format!("{dir}/modules.builtin")),
        &read(&format!("{dir}/modules.dep")),
    )
}

/// The fix for a missing ESP, from where `esp4`/`esp6` are.
pub fn esp_fix(modules: &[(&str, Module)]) -> String {
    let loadable: Vec<&str> = modules
        .iter()
        .filter(|(_, m)| *m == Module::Available)
        .map(|(n, _)| *n)
        .collect();
    if loadable.is_empty() {
        "this kernel has no ESP (CONFIG_INET_ESP, CONFIG_INET6_ESP): boot one that has \
         (Debian's linux-image-amd64 has them as modules); until then the agent only serves status"
            .to_owned()
    } else {
        format!(
            "load the modules: modprobe {} (and make them load at boot: /etc/modules-load.d/oe.conf)",
            loadable.join(" ")
        )
    }
}

/// Judges the probe's findings.
pub fn judge(caps: &Capabilities, modules: &[(&str, Module)]) -> Check {
    let v4 = caps.esp(Family::V4);
    let v6 = caps.esp(Family::V6);
    let names = |f: Family| {
        caps.algorithms(f)
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&v4, &v6) {
        (Ok(()), Ok(())) => Check::new(
            ID,
            Verdict::Ok,
            "the kernel installs ESP SAs for IPv4 and IPv6",
        )
        .details(vec![
            format!("IPv4: {}", names(Family::V4)),
            format!("IPv6: {}", names(Family::V6)),
        ]),
        (Ok(()), Err(why)) => {
            Check::new(ID, Verdict::Warn, format!("ESP works for IPv4 only: {why}"))
                .fix(esp_fix(modules))
        }
        (Err(why), _) => {
            let fix = match why {
                EspUnavailable::NoEsp(_) => esp_fix(modules),
                EspUnavailable::NoAlgorithm(_) => {
                    "load the AEAD modules: modprobe gcm ghash_generic chacha20poly1305 authenc"
                        .to_owned()
                }
                _ => "run oe doctor as root (the probe installs a test SA)".to_owned(),
            };
            Check::new(
                ID,
                Verdict::Fail,
                format!("the kernel cannot install ESP SAs: {why}"),
            )
            .fix(fix)
        }
    }
}

/// Runs the probe.
pub fn check() -> Check {
    let probed = oe_kernel::block_on(async {
        let mut xfrm = Xfrm::open(Ownership::default())?;
        oe_kernel::probe::probe(&mut xfrm).await
    });
    let caps = match probed {
        Ok(Ok(caps)) => caps,
        Ok(Err(e)) => {
            return Check::new(
                ID,
                Verdict::Fail,
                format!("XFRM netlink is unavailable: {e}"),
            )
            .fix("run oe doctor as root; modprobe xfrm_user (CONFIG_XFRM_USER)")
        }
        Err(e) => return Check::new(ID, Verdict::Warn, format!("cannot run the probe: {e}")),
    };
    let modules = [("esp4", module("esp4")), ("esp6", module("esp6"))];
    judge(&caps, &modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_found_where_they_are() {
        let loaded = "esp4 24576 0 - Live 0x0\nxfrm_user 40960 0 - Live 0x0\n";
        let builtin = "kernel/net/xfrm/xfrm_algo.ko\n";
        let dep = "kernel/net/ipv6/esp6.ko.xz: kernel/net/xfrm/xfrm_algo.ko\nkernel/net/ipv4/esp4_offload.ko:\n";
        assert_eq!(module_state("esp4", loaded, builtin, dep), Module::Loaded);
        assert_eq!(
            module_state("esp6", loaded, builtin, dep),
            Module::Available
        );
        assert_eq!(module_state("xfrm_algo", "", builtin, dep), Module::BuiltIn);
        assert_eq!(
            module_state("esp4", "", builtin, dep),
            Module::Missing,
            "esp4_offload is not esp4"
        );
    }

    #[test]
    fn the_fix_depends_on_the_modules() {
        assert!(
            esp_fix(&[("esp4", Module::Available), ("esp6", Module::Available)])
                .contains("modprobe esp4 esp6")
        );
        assert!(
            esp_fix(&[("esp4", Module::Missing), ("esp6", Module::Missing)])
                .contains("CONFIG_INET_ESP")
        );
    }
}
