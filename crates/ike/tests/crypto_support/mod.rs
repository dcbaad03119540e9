//! Helpers shared by the crypto_* integration tests: vector files and test RNGs.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand_chacha::rand_core::{CryptoRng, Error, RngCore, SeedableRng};

/// One `[section]` of a vector file: its name and `key = value` lines.
pub struct Section {
    pub name: String,
    pub fields: BTreeMap<String, String>,
}

impl Section {
    /// A field as raw text.
    pub fn text(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("[{}] has no field {key}", self.name))
    }

    /// A hex field; spaces inside the value are ignored.
    pub fn hex(&self, key: &str) -> Vec<u8> {
        let text: String = self.text(key).split_whitespace().collect();
        hex::decode(text).unwrap_or_else(|e| panic!("[{}] {key}: {e}", self.name))
    }
}

/// Parses `tests/vectors/<file>`: `# comments`, `[section]` headers, `key = value` lines.
pub fn vectors(file: &str) -> Vec<Section> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(Section {
                name: name.to_string(),
                fields: BTreeMap::new(),
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let section = sections.last_mut().expect("field before any [section]");
        section
            .fields
            .insert(key.trim().to_string(), value.trim().to_string());
    }
    assert!(!sections.is_empty(), "{file} holds no vectors");
    sections
}

/// The section called `name`.
pub fn section<'a>(sections: &'a [Section], name: &str) -> &'a Section {
    sections
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no [{name}]"))
}

/// A generator that hands out fixed bytes, in order, and panics when they run
/// out: it pins exactly what a function draws.
pub struct ReplayRng(Vec<u8>);

impl ReplayRng {
    pub fn new(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "ReplayRng ran out of bytes");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ReplayRng {}

/// A generator whose every draw fails.
pub struct FailingRng;

impl RngCore for FailingRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, _dest: &mut [u8]) {
        panic!("FailingRng::fill_bytes must not be called: use try_fill_bytes");
    }
    fn try_fill_bytes(&mut self, _dest: &mut [u8]) -> Result<(), Error> {
        Err(Error::new("test generator refuses"))
    }
}

impl CryptoRng for FailingRng {}

/// A seeded ChaCha20 generator.
pub fn seeded(seed: u8) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::from_seed([seed; 32])
}

/// Bytes of `tests/vectors/<path>`.
pub fn vector_file(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full:?}: {e}"))
}
