//! Opaque identifiers shaped like Exchange's: case-sensitive, base64-like, and always
//! containing `/`, `+` and `=`, so a client that forgets to percent-encode them fails
//! here instead of in production.

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// Length of every generated item id: a 4-character kind prefix plus 48 base64 characters.
const ID_LEN: usize = 52;

/// The kind of object an id names; the prefix mimics Exchange's id families.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    Message,
    Folder,
    Attachment,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::Message => "AAMk",
            IdKind::Folder => "AQMk",
            IdKind::Attachment => "AAMA",
        }
    }
}

/// Random bytes from the system RNG; the emulator has no use for a seedable RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails if the OS RNG is unavailable; a zeroed buffer still
    // yields distinct ids through the counter mixed in by callers that need uniqueness.
    let _ = SystemRandom::new().fill(&mut buf);
    buf
}

/// A fresh id of the given kind.
pub fn new_id(kind: IdKind) -> String {
    let bytes = random_bytes::<35>();
    let body = base64::engine::general_purpose::STANDARD.encode(bytes);
    // Force the characters clients must escape, in fixed places, so every id has them.
    let last = body.chars().count().saturating_sub(1);
    let body: String = body
        .chars()
        .enumerate()
        .map(|(i, c)| match i {
            7 => '/',
            19 => '+',
            i if i == last => '=',
            _ => c,
        })
        .collect();
    format!("{}{body}", kind.prefix())
}

/// A random URL-safe token (codes, refresh tokens, session and paging tokens).
pub fn new_token(prefix: &str, len_bytes: usize) -> String {
    let mut buf = vec![0u8; len_bytes];
    let _ = SystemRandom::new().fill(&mut buf);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    )
}

/// A random GUID string (trace ids, correlation ids, request ids).
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `s` has the shape of an id this emulator issues. Graph answers a
/// malformed id with 400 `ErrorInvalidIdMalformed`, a well-formed unknown one with 404.
pub fn is_well_formed(s: &str) -> bool {
    s.len() == ID_LEN
        && s.ends_with('=')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_need_escaping_and_are_well_formed() {
        for kind in [IdKind::Message, IdKind::Folder, IdKind::Attachment] {
            let id = new_id(kind);
            assert!(
                id.contains('/') && id.contains('+') && id.ends_with('='),
                "{id}"
            );
            assert!(is_well_formed(&id), "{id}");
        }
        assert!(!is_well_formed("AAMk"));
    }
}
