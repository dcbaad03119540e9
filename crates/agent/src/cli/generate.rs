//! `oe generate DIR` (hidden): writes the man pages and shell completions that the Debian package
//! ships, rendered from the same clap definitions ([`super::Cli`]) the binary parses, so they cannot
//! drift from the commands they document.
//!
//! Output, all reproducible (no dates, no paths of the build machine):
//! - `DIR/man/oe.8` and one page per visible subcommand, `oe-status.8`, `oe-run.8`, ...
//!   (section 8: system administration commands and daemons);
//! - `DIR/completions/oe.bash`, `DIR/completions/_oe` (zsh), `DIR/completions/oe.fish`;
//! - `DIR/oe.toml`: the package's conffile, the built-in defaults (`config/oe.toml`) with every
//!   setting commented out, so the file changes nothing until the administrator says so.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::config::DEFAULT_TOML;

/// Arguments of `oe generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Folder to write `man/` and `completions/` into (created if missing).
    pub dir: PathBuf,
}

/// The man pages' section: system administration commands and daemons.
const SECTION: &str = "8";

/// Runs `oe generate DIR`.
pub fn run(args: &GenerateArgs) -> ExitCode {
    match write_all(&args.dir) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oe generate: {}: {e}", args.dir.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes every man page and completion file under `dir`; returns their paths.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = man_pages(&dir.join("man"))?;
    files.extend(completions(&dir.join("completions"))?);
    let conffile = dir.join("oe.toml");
    fs::write(&conffile, commented_config(DEFAULT_TOML))?;
    files.push(conffile);
    Ok(files)
}

/// The command tree as the man pages and completions see it: built, so subcommands carry their
/// display names (`oe-status`) and bin names (`oe status`).
pub fn command() -> clap::Command {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let root = command();
    let mut files = vec![write_page(dir, &root, &root_extra())?];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        files.push(write_page(dir, sub, &see_also())?);
    }
    Ok(files)
}

fn write_page(dir: &Path, cmd: &clap::Command, extra: &Roff) -> io::Result<PathBuf> {
    let source = format!("oe {}", env!("CARGO_PKG_VERSION"));
    let man = Man::new(cmd.clone())
        .section(SECTION)
        .source(source)
        .manual("oe");
    let path = dir.join(man.get_filename());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    notes(cmd).to_writer(&mut out)?;
    extra.to_writer(&mut out)?;
    fs::write(&path, out)?;
    Ok(path)
}

/// The command's after-help text (its exit statuses, mostly), kept as written: its lines are
/// tables that filling would run together.
fn notes(cmd: &clap::Command) -> Roff {
    let mut roff = Roff::default();
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return roff;
    };
    let text = text.to_string();
    let heading = if text.starts_with("Exit status") {
        "EXIT STATUS"
    } else {
        "NOTES"
    };
    roff.control("SH", [heading]);
    roff.control("nf", []);
    for line in text.lines().skip_while(|l| l.starts_with("Exit status")) {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    roff
}

/// FILES and SEE ALSO for oe(8).
fn root_extra() -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["FILES"]);
    for (path, what) in FILES {
        roff.control("TP", []);
        roff.text([bold(*path)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "systemctl(1), journalctl(1), ip-xfrm(8); the status socket's protocol in \
         /usr/share/doc/oe/status-protocol.md",
    )]);
    roff
}

fn see_also() -> Roff {
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman("oe(8)")]);
    roff
}

const FILES: &[(&str, &str)] = &[
    (
        "/etc/oe/oe.toml",
        "The configuration; every setting is documented there with its default.",
    ),
    (
        "/etc/oe/key.pem",
        "This host's private key (from oe keygen); without it the agent is an anonymous client.",
    ),
    ("/run/oe/oe.sock", "The status socket."),
    (
        "/usr/lib/systemd/system/oe.service",
        "The systemd unit: systemctl start, reload and stop the agent.",
    ),
];

/// Completion files, named as each shell's vendor folder expects them.
const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "oe.bash"),
    (Shell::Zsh, "_oe"),
    (Shell::Fish, "oe.fish"),
];

fn completions(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (shell, name) in SHELLS {
        let mut out = Vec::new();
        clap_complete::generate(*shell, &mut command(), "oe", &mut out);
        let path = dir.join(name);
        fs::File::create(&path)?.write_all(&out)?;
        files.push(path);
    }
    Ok(files)
}

const CONFFILE_HEADER: &str = "\
# /etc/oe/oe.toml: the configuration `oe run` reads (`systemctl reload oe` re-reads it).
# Every setting below is commented out and shows its built-in default: uncomment a line (all the
# lines of a list) to change it.
#
";

/// `text` (TOML) with every setting line commented out as `#line`; comments, blank lines and
/// section headers stay as they are, so uncommenting a setting needs no section added.
pub fn commented_config(text: &str) -> String {
    let mut out = String::from(CONFFILE_HEADER);
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('[') {
            out.push_str(line);
        } else {
            out.push('#');
            out.push_str(trimmed);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_visible_subcommand_and_no_hidden_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_all(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "oe.8",
            "oe-status.8",
            "oe-run.8",
            "oe-lookup.8",
            "oe.bash",
            "_oe",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");
        let pages = names.iter().filter(|n| n.ends_with(".8")).count();
        let visible = command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .count();
        assert_eq!(pages, visible + 1);
    }

    #[test]
    fn output_is_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (fa, fb) = (write_all(a.path()).unwrap(), write_all(b.path()).unwrap());
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(
                fs::read(x).unwrap(),
                fs::read(y).unwrap(),
                "{}",
                x.display()
            );
        }
        let page = fs::read_to_string(a.path().join("man/oe-status.8")).unwrap();
        assert!(page.contains(".TH oe-status 8"), "{page}");
        assert!(page.contains(&format!("\"oe {}\"", env!("CARGO_PKG_VERSION"))));
        assert!(page.contains(".SH \"EXIT STATUS\""), "{page}");
        assert!(
            page.contains("oe status"),
            "the synopsis names the full command"
        );
        assert!(!page.contains(&a.path().display().to_string()));
    }

    /// The lines `commented_config` commented out, uncommented again.
    fn uncomment(text: &str) -> String {
        text.lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_conffile_changes_nothing_and_holds_every_setting() {
        use crate::config::Config;
        let origin = Path::new("oe.toml");
        let commented = commented_config(DEFAULT_TOML);
        assert!(commented.starts_with(CONFFILE_HEADER));
        // As shipped: every setting is a comment, so the agent runs on its defaults.
        assert_eq!(
            Config::parse(&commented, origin).unwrap(),
            Config::embedded()
        );
        let settings = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with(['#', '[']))
                .map(str::to_owned)
                .collect()
        };
        assert!(settings(&commented).is_empty());
        // Uncommented, it is the built-in text again, setting for setting.
        let restored = uncomment(&commented);
        assert_eq!(settings(&restored), settings(DEFAULT_TOML));
        assert_eq!(
            Config::parse(&restored, origin).unwrap(),
            Config::embedded()
        );
        assert_eq!(
            Config::parse(DEFAULT_TOML, origin).unwrap(),
            Config::embedded()
        );
    }
}
