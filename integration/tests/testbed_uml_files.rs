//! What the UML guest sees of the host's files (`integration/uml/oe-uml-run`): every path, `/tmp`
//! included, so a checkout anywhere runs its tests there; and what it may change: nothing of the host's,
//! except under `OE_UML_RWDIR`.
#![allow(clippy::unwrap_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Command, Output};

use oe_integration::uml;

/// Runs `script` (a shell script written to `dir/probe.sh`) in a fresh guest with `dir` as the working
/// directory, as a test whose checkout lives in `dir` would.
fn run_in_guest(dir: &Path, script: &str, rwdir: Option<&Path>) -> Output {
    uml::require();
    let probe = dir.join("probe.sh");
    std::fs::write(&probe, format!("#!/bin/sh\nset -e\n{script}\n")).unwrap();
    let mut cmd = Command::new(uml::runner());
    cmd.arg("/bin/sh")
        .arg(&probe)
        .current_dir(dir)
        .env("OE_UML_WARMUP", "0")
        .env_remove("OE_UML_RWDIR");
    if let Some(rw) = rwdir {
        cmd.env("OE_UML_RWDIR", rw);
    }
    let out = cmd.output().unwrap();
    println!("guest stdout: {}", String::from_utf8_lossy(&out.stdout));
    println!("guest stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn tmp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("oe-uml-files.")
        .tempdir_in("/tmp")
        .unwrap()
}

/// A clone under `/tmp` (where `mktemp -d` puts it) runs in the guest: the working directory, a script
/// and a data file there are all visible.
#[test]
fn a_checkout_under_tmp_is_visible_in_the_guest() {
    let dir = tmp_dir();
    std::fs::write(dir.path().join("data"), "from the host\n").unwrap();
    let out = run_in_guest(dir.path(), "echo \"cwd=$(pwd)\"; cat data", None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}", out.status.code());
    assert!(
        stdout.contains(&format!("cwd={}", dir.path().display())),
        "{stdout}"
    );
    assert!(stdout.contains("from the host"), "{stdout}");
}

/// The guest rewrites, deletes and creates files in a `/tmp` folder and in one outside `/tmp` (the
/// build's own tmp folder): the host sees none of it. Only `OE_UML_RWDIR` is shared read-write.
#[test]
fn guest_writes_reach_the_host_only_under_rwdir() {
    let in_tmp = tmp_dir();
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let rw = tmp_dir();
    for dir in [in_tmp.path(), outside.path()] {
        std::fs::write(dir.join("kept"), "host\n").unwrap();
        std::fs::write(dir.join("doomed"), "host\n").unwrap();
    }
    let script = format!(
        "for d in {tmp} {outside}; do echo guest > $d/kept; rm $d/doomed; echo guest > $d/new; done\n\
         cat {tmp}/kept {outside}/kept\n\
         echo guest > {rw}/shared",
        tmp = in_tmp.path().display(),
        outside = outside.path().display(),
        rw = rw.path().display(),
    );
    let out = run_in_guest(in_tmp.path(), &script, Some(rw.path()));
    assert!(out.status.success(), "exit {:?}", out.status.code());
    // The guest saw its own writes ...
    let stdout = String::from_utf8_lossy(&out.stdout);
    let read_back = stdout.lines().filter(|l| l.trim() == "guest").count();
    assert_eq!(read_back, 2, "the guest reads back what it wrote: {stdout}");
    // ... and the host kept its files.
    for dir in [in_tmp.path(), outside.path()] {
        assert_eq!(std::fs::read_to_string(dir.join("kept")).unwrap(), "host\n");
        assert!(
            dir.join("doomed").exists(),
            "{}/doomed deleted",
            dir.display()
        );
        assert!(!dir.join("new").exists(), "{}/new created", dir.display());
    }
    assert_eq!(
        std::fs::read_to_string(rw.path().join("shared")).unwrap(),
        "guest\n",
        "OE_UML_RWDIR is shared read-write"
    );
}
