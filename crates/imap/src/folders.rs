//! `LIST` → the folder tree the resolver understands: ids are the names as
//! the server spells them (modified UTF-7, RFC 3501 §5.1.3), display names
//! are decoded, the hierarchy follows the server's delimiter, SPECIAL-USE
//! attributes (RFC 6154) become well-known names.

use std::collections::BTreeMap;

use async_imap::types::{Name, NameAttribute};
use domain::mailbox::{FolderNode, FolderTree};

use crate::error::ImapError;

/// A folder name for people: modified UTF-7 (RFC 3501 §5.1.3) decoded; a
/// name that is not valid modified UTF-7 is shown as the server sent it.
/// Our own decoder: the `utf7-imap` crate panicked on a malformed name,
/// which a hostile server could send (found by fuzzing).
pub fn display(raw: &str) -> String {
    decode_modified_utf7(raw).unwrap_or_else(|| raw.to_owned())
}

fn decode_modified_utf7(raw: &str) -> Option<String> {
    use base64::Engine;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((plain, shifted)) = rest.split_once('&') {
        out.push_str(plain);
        let (encoded, after) = shifted.split_once('-')?;
        if encoded.is_empty() {
            out.push('&');
        } else {
            let standard = encoded.replace(',', "/");
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(standard)
                .ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes.chunks_exact(2).filter_map(|pair| match pair {
                [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                _ => None,
            });
            for c in char::decode_utf16(units) {
                out.push(c.ok()?);
            }
        }
        rest = after;
    }
    out.push_str(rest);
    Some(out)
}

/// The well-known name (as Graph names them, which folder resolution
/// understands) for a SPECIAL-USE attribute.
fn well_known(attribute: &NameAttribute<'_>) -> Option<&'static str> {
    Some(match attribute {
        NameAttribute::Sent => "sentitems",
        NameAttribute::Trash => "deleteditems",
        NameAttribute::Junk => "junkemail",
        NameAttribute::Drafts => "drafts",
        NameAttribute::Archive => "archive",
        _ => return None,
    })
}

struct Listed {
    leaf: String,
    parent: Option<String>,
    selectable: bool,
    well_known: Option<&'static str>,
}

pub fn tree(names: &[Name]) -> Result<FolderTree, ImapError> {
    let mut folders: BTreeMap<String, Listed> = BTreeMap::new();
    for name in names {
        let raw = name.name().to_owned();
        let delimiter = name.delimiter().filter(|d| !d.is_empty());
        let (parent, leaf) = match delimiter.and_then(|d| raw.rsplit_once(d)) {
            Some((parent, leaf)) => (Some(parent.to_owned()), leaf.to_owned()),
            None => (None, raw.clone()),
        };
        let selectable = !name
            .attributes()
            .iter()
            .any(|a| matches!(a, NameAttribute::NoSelect));
        let special = name.attributes().iter().find_map(well_known);
        let well_known = if raw.eq_ignore_ascii_case("INBOX") {
            Some("inbox")
        } else {
            special
        };
        // Parents the server did not list (a child's path implies them)
        // are shown, but hold no mail.
        let mut ancestor = parent.clone();
        while let (Some(a), Some(d)) = (ancestor.clone(), delimiter) {
            let (up, leaf) = match a.rsplit_once(d) {
                Some((up, leaf)) => (Some(up.to_owned()), leaf.to_owned()),
                None => (None, a.clone()),
            };
            folders.entry(a).or_insert(Listed {
                leaf,
                parent: up.clone(),
                selectable: false,
                well_known: None,
            });
            ancestor = up;
        }
        folders.insert(
            raw,
            Listed {
                leaf,
                parent,
                selectable,
                well_known,
            },
        );
    }
    let nodes = folders
        .into_iter()
        .map(|(raw, f)| {
            let mut node =
                FolderNode::new(raw, display(&f.leaf), f.parent).selectable(f.selectable);
            if let Some(w) = f.well_known {
                node = node.well_known(w);
            }
            node
        })
        .collect();
    FolderTree::build(nodes)
        .map_err(|e| ImapError::No(format!("the folder list is inconsistent: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_names_are_shown_decoded() {
        assert_eq!(display("Archiv/&ANw-berweisungen"), "Archiv/Überweisungen");
        assert_eq!(display("INBOX"), "INBOX");
        assert_eq!(display("Tom &- Jerry"), "Tom & Jerry");
        assert_eq!(
            display("&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            "Отправленные"
        );
    }

    /// Found by fuzzing: this answer made imap-proto 0.17 (the parser
    /// async-imap uses) panic; the patched copy in vendor/ reads it.
    #[test]
    fn a_hostile_continuation_answer_does_not_panic_the_parser() {
        let bytes = include_bytes!("../tests/fixtures/fuzz-outcome-slice.bin");
        let mut rest: &[u8] = bytes;
        while let Ok((next, _)) = async_imap::imap_proto::Response::parse(rest) {
            if next.len() >= rest.len() {
                break;
            }
            rest = next;
        }
    }

    #[test]
    fn a_malformed_name_is_shown_as_sent() {
        // Found by fuzzing: this made the former decoder panic.
        for raw in ["&AM%-r\u{98}e", "&A-", "&AA-", "&2D3d-", "open &AAA"] {
            assert_eq!(display(raw), raw, "{raw:?}");
        }
    }
}
