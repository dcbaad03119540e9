//! One finding of `oe doctor`: what was checked, the verdict, what was seen, and the fix.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// As it should be.
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// OE works, but worse than it could (or the check could not be made).
    Warn,
    /// OE cannot work until this is fixed.
    Fail,
}

impl Verdict {
    /// The word printed in the text report.
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        }
    }
}

/// A finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name of the check (`kernel-esp`, `resolver-dnssec`, ...).
    pub id: &'static str,
    pub verdict: Verdict,
    /// One sentence: what was found.
    pub summary: String,
    /// Further lines: one per resolver, name, port, policy...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A finding without details or fix.
    pub fn new(id: &'static str, verdict: Verdict, summary: impl Into<String>) -> Self {
        Self {
            id,
            verdict,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    /// Adds the fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// Adds detail lines.
    pub fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}
