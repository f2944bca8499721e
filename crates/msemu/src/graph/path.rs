//! Parsing Graph resource paths ourselves rather than with the router, because Graph's answer
//! to an unescaped `/` inside an id is `ErrorInvalidIdMalformed`, not a generic 404.

/// Whose mailbox a request addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Me,
    User(String),
}

/// What below a message is addressed.
#[derive(Debug, Clone, PartialEq)]
pub enum MessagePart {
    Itself,
    Value,
    Move,
    Copy,
    Attachments,
    Attachment(String),
    AttachmentValue(String),
}

/// The addressed resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    User,
    /// Children of the root (empty chain) or of the folder the chain ends at.
    FolderList(Vec<String>),
    FolderDelta,
    Folder(Vec<String>),
    /// Messages of a folder, or of the whole mailbox.
    MessageList(Option<Vec<String>>),
    Message {
        folder: Option<Vec<String>>,
        id: String,
        part: MessagePart,
    },
}

/// A path that does not name a resource. `after_id` is the id just before the unexpected
/// segment, if any: a malformed id there means the client split an id by not escaping it.
#[derive(Debug, Clone, PartialEq)]
pub struct BadPath {
    pub segment: String,
    pub after_id: Option<String>,
}

/// Splits `/v1.0/...` into percent-decoded segments, expanding `name('key')` forms.
pub fn segments(raw_path: &str) -> Vec<String> {
    let mut out = vec![];
    for seg in raw_path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_encoding::percent_decode_str(seg)
            .decode_utf8_lossy()
            .into_owned();
        match decoded.split_once("('") {
            Some((name, rest)) if rest.ends_with("')") => {
                out.push(name.to_string());
                out.push(rest[..rest.len() - 2].replace("''", "'"));
            }
            _ => out.push(decoded),
        }
    }
    out
}

fn bad(segment: &str, after_id: Option<&String>) -> BadPath {
    BadPath {
        segment: segment.to_string(),
        after_id: after_id.cloned(),
    }
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses the segments after `/v1.0`.
pub fn parse(segs: &[String]) -> Result<(Target, Resource), BadPath> {
    let (target, rest) = match segs {
        [first, rest @ ..] if eq(first, "me") => (Target::Me, rest),
        [first, key, rest @ ..] if eq(first, "users") => (Target::User(key.clone()), rest),
        [first, ..] => return Err(bad(first, None)),
        [] => return Err(bad("", None)),
    };
    let resource = match rest {
        [] => Resource::User,
        [mf] if eq(mf, "mailFolders") => Resource::FolderList(vec![]),
        [mf, d] if eq(mf, "mailFolders") && eq(d, "delta") => Resource::FolderDelta,
        [mf, key, more @ ..] if eq(mf, "mailFolders") => {
            let mut chain = vec![key.clone()];
            let mut more = more;
            loop {
                match more {
                    [] => break Resource::Folder(chain),
                    [cf] if eq(cf, "childFolders") => break Resource::FolderList(chain),
                    [cf, child, tail @ ..] if eq(cf, "childFolders") => {
                        chain.push(child.clone());
                        more = tail;
                    }
                    [m, tail @ ..] if eq(m, "messages") => break message(Some(chain), tail)?,
                    [other, ..] => return Err(bad(other, chain.last())),
                }
            }
        }
        [m, tail @ ..] if eq(m, "messages") => message(None, tail)?,
        [other, ..] => return Err(bad(other, None)),
    };
    Ok((target, resource))
}

fn message(folder: Option<Vec<String>>, tail: &[String]) -> Result<Resource, BadPath> {
    let (id, part) = match tail {
        [] => return Ok(Resource::MessageList(folder)),
        [id] => (id, MessagePart::Itself),
        [id, v] if v == "$value" => (id, MessagePart::Value),
        [id, v] if eq(v, "move") || eq(v, "microsoft.graph.move") => (id, MessagePart::Move),
        [id, v] if eq(v, "copy") || eq(v, "microsoft.graph.copy") => (id, MessagePart::Copy),
        [id, a] if eq(a, "attachments") => (id, MessagePart::Attachments),
        [id, a, aid] if eq(a, "attachments") => (id, MessagePart::Attachment(aid.clone())),
        [id, a, aid, v] if eq(a, "attachments") && v == "$value" => {
            (id, MessagePart::AttachmentValue(aid.clone()))
        }
        [id, other, ..] => return Err(bad(other, Some(id))),
    };
    Ok(Resource::Message {
        folder,
        id: id.clone(),
        part,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_encoded_and_unencoded_ids() {
        let segs = segments("/me/mailFolders('Inbox')/messages/AAMk%2Fab%2Bc%3D/%24value");
        assert_eq!(
            parse(&segs),
            Ok((
                Target::Me,
                Resource::Message {
                    folder: Some(vec!["Inbox".into()]),
                    id: "AAMk/ab+c=".into(),
                    part: MessagePart::Value
                }
            ))
        );
        let segs = segments("/me/messages/AAMk/ab+c=/$value");
        assert_eq!(
            parse(&segs),
            Err(BadPath {
                segment: "ab+c=".into(),
                after_id: Some("AAMk".into())
            })
        );
    }
}
