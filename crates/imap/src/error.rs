//! What can go wrong with an IMAP server, and what the admin does about it.

use domain::mailbox::{MailboxError, MailboxErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    #[error("cannot reach the IMAP server: {0}")]
    Connect(String),
    #[error("{0}")]
    Tls(String),
    #[error("the IMAP server refused the login: {0}")]
    Login(String),
    #[error("the IMAP server timed out: {0}")]
    Timeout(String),
    #[error("the connection to the IMAP server broke: {0}")]
    Dropped(String),
    #[error("the IMAP server answered NO: {0}")]
    No(String),
    #[error("the IMAP server cannot do this: {0}")]
    Unsupported(String),
    #[error("{0}")]
    NotFound(String),
}

impl ImapError {
    /// Whether the session's state is unknown after this: the connection
    /// is dropped and the next request opens a new one.
    pub fn breaks_connection(&self) -> bool {
        matches!(self, Self::Dropped(_) | Self::Timeout(_))
    }

    /// The port's error: whether waiting helps, and the fix.
    pub fn into_mailbox_error(self, server: &str) -> MailboxError {
        let (kind, fix) = match &self {
            Self::Connect(_) | Self::Timeout(_) | Self::Dropped(_) => (
                MailboxErrorKind::Transient,
                format!("nothing to do if {server} is only busy: the next run tries again; otherwise check host and port"),
            ),
            Self::Tls(_) => (
                MailboxErrorKind::Permanent,
                "check security (tls on port 993, starttls on 143) and, for a private CA or self-signed certificate, paste it as tls_ca_pem".to_owned(),
            ),
            Self::Login(_) => (
                MailboxErrorKind::Token,
                "check the username and password (or press Authenticate for XOAUTH2) on the importer".to_owned(),
            ),
            Self::No(_) => (
                MailboxErrorKind::Permanent,
                "check the folder settings and the account's rights on the server".to_owned(),
            ),
            Self::Unsupported(_) => (
                MailboxErrorKind::Permanent,
                "ask the server's administrator for the named capability".to_owned(),
            ),
            Self::NotFound(_) => (
                MailboxErrorKind::NotFound,
                "nothing to fix if the mail was moved or deleted meanwhile".to_owned(),
            ),
        };
        MailboxError::new(kind, self.to_string(), fix)
    }

    pub(crate) fn from_imap(e: async_imap::error::Error) -> Self {
        use async_imap::error::Error as E;
        match e {
            E::No(text) => Self::No(server_text(&text)),
            E::Bad(text) => Self::No(format!("BAD {}", server_text(&text))),
            E::Io(io) => Self::Dropped(io.to_string()),
            E::ConnectionLost => Self::Dropped("the server closed the connection".to_owned()),
            other => Self::Dropped(other.to_string()),
        }
    }
}

/// The server's own words from async-imap's rendering of a NO or BAD
/// (`code: …, info: Some("…")`), or the rendering as it is.
pub(crate) fn server_text(rendered: &str) -> String {
    rendered
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.replace("\\\"", "\""))
        .unwrap_or_else(|| rendered.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_words_are_kept_and_the_rendering_dropped() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(server_text("plain words"), "plain words");
    }
}
