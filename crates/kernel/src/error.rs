//! Errors: the kernel refused, the kernel sent garbage, we asked wrongly, or I/O failed.

use crate::types::InvalidRequest;
use crate::wire::ParseError;

/// An operation on the kernel's IPsec state failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused the request with an errno (and, on recent kernels, a reason).
    #[error("{op}: {}{}", std::io::Error::from_raw_os_error(*.errno), reason(.message))]
    Kernel {
        /// The netlink message type, e.g. `XFRM_MSG_NEWSA`.
        op: &'static str,
        /// Positive errno.
        errno: i32,
        /// The kernel's extended-ack message, if any.
        message: Option<String>,
    },
    /// The kernel's reply could not be parsed.
    #[error("{op}: malformed reply: {source}")]
    Malformed {
        /// The request.
        op: &'static str,
        /// What was wrong with it.
        source: ParseError,
    },
    /// The reply parsed but was not what the request calls for.
    #[error("{op}: unexpected reply")]
    UnexpectedReply {
        /// The request.
        op: &'static str,
    },
    /// The kernel's tables changed during a dump; the result may be inconsistent.
    #[error("{op}: dump interrupted by concurrent changes")]
    DumpInterrupted {
        /// The request.
        op: &'static str,
    },
    /// No complete answer in time.
    #[error("{op}: no answer from the kernel")]
    Timeout {
        /// The request.
        op: &'static str,
    },
    /// The entry to update or delete is not oe's (see [`crate::ownership`]): left alone.
    #[error("refusing to change {entry}: it is not oe's")]
    Foreign {
        /// What was found.
        entry: String,
    },
    /// The request was invalid before it reached the kernel.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// Socket error.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
}

fn reason(message: &Option<String>) -> String {
    message
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

impl Error {
    /// The kernel's errno, if the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// The entry did not exist (`ENOENT` or `ESRCH`).
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT | libc::ESRCH))
    }

    /// The entry already existed (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_text() {
        let e = Error::Kernel {
            op: "XFRM_MSG_NEWSA",
            errno: libc::ENOSYS,
            message: Some("Requested AEAD algorithm not found".into()),
        };
        let text = e.to_string();
        assert!(text.starts_with("XFRM_MSG_NEWSA: "), "{text}");
        assert!(
            text.ends_with("(Requested AEAD algorithm not found)"),
            "{text}"
        );
        assert!(!e.is_not_found());
        let e = Error::Kernel {
            op: "XFRM_MSG_DELSA",
            errno: libc::ESRCH,
            message: None,
        };
        assert!(e.is_not_found());
    }
}
