//! How an admin names a mailbox folder: a path (`Inbox/Invoices`) or a bare
//! display name (`Exported`). Resolution against a real folder tree lives
//! with the mailbox code; this module only guarantees the spec is well formed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A folder as configured: one or more non-empty segments separated by `/`.
/// One segment is a *bare name* (matched anywhere in the tree); more are a
/// *path* from the top of the mailbox, whose first segment may be a
/// well-known name such as `inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FolderSpec {
    segments: Vec<String>,
}

/// Longest display name Exchange accepts for a folder.
const MAX_SEGMENT_CHARS: usize = 255;

impl FolderSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(
                "must not be empty: name a folder such as `Inbox` or `Inbox/Invoices`".into(),
            );
        }
        if raw.starts_with('/') || raw.ends_with('/') {
            return Err(format!(
                "`{raw}` starts or ends with `/`: write the path without them, e.g. `Inbox/Invoices`"
            ));
        }
        let mut segments = Vec::new();
        for segment in raw.split('/') {
            let segment = segment.trim();
            if segment.is_empty() {
                return Err(format!(
                    "`{raw}` has an empty level (`//`): every level between `/` needs a name"
                ));
            }
            if segment.chars().count() > MAX_SEGMENT_CHARS {
                return Err(format!(
                    "a folder name may have at most {MAX_SEGMENT_CHARS} characters"
                ));
            }
            if segment.chars().any(char::is_control) {
                return Err(format!("`{segment}` contains a control character"));
            }
            segments.push(segment.to_owned());
        }
        Ok(Self { segments })
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// A bare name is searched in the whole tree; a path is followed from the top.
    pub fn is_bare_name(&self) -> bool {
        self.segments.len() == 1
    }

    /// Two specs that would certainly name the same folder. Exchange compares
    /// folder names without regard to case, so `inbox/x` and `Inbox/X` do.
    pub fn same_as(&self, other: &Self) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|(a, b)| a.to_lowercase() == b.to_lowercase())
    }
}

impl fmt::Display for FolderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

impl TryFrom<String> for FolderSpec {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FolderSpec> for String {
    fn from(value: FolderSpec) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_name_and_path_are_told_apart() {
        let bare = FolderSpec::parse(" Exported ").expect("valid");
        assert!(bare.is_bare_name());
        assert_eq!(bare.to_string(), "Exported");
        let path = FolderSpec::parse("Inbox / Invoices/2026").expect("valid");
        assert!(!path.is_bare_name());
        assert_eq!(path.segments(), ["Inbox", "Invoices", "2026"]);
        assert_eq!(path.to_string(), "Inbox/Invoices/2026");
    }

    #[test]
    fn malformed_specs_say_what_is_wrong() {
        assert!(
            FolderSpec::parse("")
                .expect_err("invalid")
                .contains("must not be empty")
        );
        assert!(
            FolderSpec::parse("/Inbox")
                .expect_err("invalid")
                .contains("starts or ends")
        );
        assert!(
            FolderSpec::parse("Inbox/")
                .expect_err("invalid")
                .contains("starts or ends")
        );
        assert!(
            FolderSpec::parse("Inbox//X")
                .expect_err("invalid")
                .contains("empty level")
        );
        assert!(
            FolderSpec::parse("In\u{0}box")
                .expect_err("invalid")
                .contains("control")
        );
        assert!(
            FolderSpec::parse(&"x".repeat(256))
                .expect_err("invalid")
                .contains("at most 255")
        );
    }

    #[test]
    fn sameness_ignores_case_but_not_structure() {
        let a = FolderSpec::parse("Inbox/Überweisungen").expect("valid");
        let b = FolderSpec::parse("inbox/überweisungen").expect("valid");
        let c = FolderSpec::parse("Überweisungen").expect("valid");
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }

    #[test]
    fn serde_round_trip_rejects_bad_specs() {
        let spec: FolderSpec = serde_json::from_str("\"Inbox/Done\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&spec).expect("serialise"),
            "\"Inbox/Done\""
        );
        assert!(serde_json::from_str::<FolderSpec>("\"a//b\"").is_err());
    }
}
