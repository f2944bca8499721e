//! A message's id: `{uidvalidity}:{uid}:{folder}`, the folder last because
//! its name may contain `:`.

use std::fmt;

use crate::error::ImapError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    pub uid_validity: u32,
    pub uid: u32,
    /// As the server names it (modified UTF-7).
    pub folder: String,
}

impl MessageId {
    pub fn parse(raw: &str) -> Result<Self, ImapError> {
        let mut parts = raw.splitn(3, ':');
        let (Some(validity), Some(uid), Some(folder)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(not_ours(raw));
        };
        Ok(Self {
            uid_validity: validity.parse().map_err(|_| not_ours(raw))?,
            uid: uid.parse().map_err(|_| not_ours(raw))?,
            folder: folder.to_owned(),
        })
    }
}

fn not_ours(raw: &str) -> ImapError {
    ImapError::NotFound(format!(
        "`{raw}` is not an IMAP message id of mailferry (uidvalidity:uid:folder)"
    ))
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.uid_validity, self.uid, self.folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_with_colons_in_the_folder() {
        let id = MessageId {
            uid_validity: 1_700_000_000,
            uid: 42,
            folder: "Archiv/&ANw-berweisungen:2026".to_owned(),
        };
        assert_eq!(MessageId::parse(&id.to_string()), Ok(id));
        assert!(
            MessageId::parse("AAMkAGI2=").is_err(),
            "a Graph id is not ours"
        );
        assert!(MessageId::parse("x:1:INBOX").is_err());
    }
}
