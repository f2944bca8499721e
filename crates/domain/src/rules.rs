//! The seed product's import rules: a sender allow-list checked first, then a
//! subject block-list. A mail a rule stops goes to the Error folder with the
//! rule named, so an admin can see why it was not imported.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::ValidationErrors;

/// Valid rules; the default allows every mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportRules {
    /// Sender address patterns (`*` matches any run of characters,
    /// case-insensitive), e.g. `*@contoso.com`; empty allows every sender.
    #[serde(default)]
    pub sender_allow: Vec<String>,
    /// Subject patterns (`*` wildcards, case-insensitive), e.g. `*newsletter*`;
    /// a matching subject stops the mail.
    #[serde(default)]
    pub subject_block: Vec<String>,
}

/// What an admin submits under `rules`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRulesInput {
    pub sender_allow: Option<Vec<String>>,
    pub subject_block: Option<Vec<String>>,
}

/// Which rule stopped a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStop {
    /// The sender matches no pattern of the allow-list.
    SenderNotAllowed { sender: Option<String> },
    /// The subject matches this pattern of the block-list.
    SubjectBlocked { pattern: String },
}

impl RuleStop {
    /// The rule's name as recorded in reasons: `sender_allow`, `subject_block`.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::SenderNotAllowed { .. } => "sender_allow",
            Self::SubjectBlocked { .. } => "subject_block",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::SenderNotAllowed { sender: Some(s) } => {
                format!("sender `{s}` matches no pattern of rules.sender_allow")
            }
            Self::SenderNotAllowed { sender: None } => {
                "the mail has no sender address, and rules.sender_allow is set".to_owned()
            }
            Self::SubjectBlocked { pattern } => {
                format!("subject matches rules.subject_block pattern `{pattern}`")
            }
        }
    }
}

const MAX_PATTERNS: usize = 500;
const MAX_PATTERN_CHARS: usize = 320;

impl ImportRules {
    /// Allow-list first (the seed product's order), then the block-list.
    pub fn check(&self, sender: Option<&str>, subject: &str) -> Result<(), RuleStop> {
        if !self.sender_allow.is_empty() {
            let allowed = sender.is_some_and(|s| {
                let s = s.trim().to_lowercase();
                self.sender_allow.iter().any(|p| wildcard_match(p, &s))
            });
            if !allowed {
                return Err(RuleStop::SenderNotAllowed {
                    sender: sender.map(str::to_owned),
                });
            }
        }
        let subject = subject.to_lowercase();
        match self
            .subject_block
            .iter()
            .find(|p| wildcard_match(p, &subject))
        {
            Some(pattern) => Err(RuleStop::SubjectBlocked {
                pattern: pattern.clone(),
            }),
            None => Ok(()),
        }
    }
}

impl ImportRulesInput {
    /// Parses the `rules` field of an importer; patterns are stored lower case.
    pub fn parse(&self, errors: &mut ValidationErrors) -> Option<ImportRules> {
        let before = errors.errors.len();
        let sender_allow = parse_patterns(
            "rules.sender_allow",
            self.sender_allow.as_ref(),
            Pattern::Address,
            errors,
        );
        let subject_block = parse_patterns(
            "rules.subject_block",
            self.subject_block.as_ref(),
            Pattern::Text,
            errors,
        );
        (errors.errors.len() == before).then_some(ImportRules {
            sender_allow,
            subject_block,
        })
    }
}

/// What a list of [`wildcard_match`] patterns is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A sender address: no spaces.
    Address,
    /// A subject or a file name.
    Text,
}

/// Parses a list of `*` patterns (the `field` of an importer), stored lower
/// case; each bad one is named as `field[i]`.
pub fn parse_patterns(
    field: &str,
    raw: Option<&Vec<String>>,
    kind: Pattern,
    errors: &mut ValidationErrors,
) -> Vec<String> {
    let raw = raw.map(Vec::as_slice).unwrap_or_default();
    if raw.len() > MAX_PATTERNS {
        errors.add(field, format!("may have at most {MAX_PATTERNS} patterns"));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        match parse_pattern(p, kind) {
            Ok(p) => out.push(p),
            Err(m) => errors.add(format!("{field}[{i}]"), m),
        }
    }
    out
}

/// One `*` pattern, lower case, or what is wrong with it.
pub fn parse_pattern(raw: &str, kind: Pattern) -> Result<String, String> {
    let example = match kind {
        Pattern::Address => "`*@contoso.com`",
        Pattern::Text => "`*agb*.pdf`",
    };
    let p = raw.trim().to_lowercase();
    if p.is_empty() {
        Err(format!("is empty: write a pattern such as {example}"))
    } else if p.chars().count() > MAX_PATTERN_CHARS {
        Err(format!("may have at most {MAX_PATTERN_CHARS} characters"))
    } else if p.chars().any(char::is_control) {
        Err("contains a control character".to_owned())
    } else if kind == Pattern::Address && p.contains(char::is_whitespace) {
        Err(format!(
            "`{p}` is not an address pattern: no spaces; use `*` as a wildcard, e.g. {example}"
        ))
    } else {
        Ok(p)
    }
}

/// `*` matches any run of characters (also none); everything else matches
/// itself. `text` must already be lower case; the pattern is lowered here.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Greedy with backtracking to the last star: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&tc) = text.get(t) {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&pc) if pc == tc => {
                p += 1;
                t += 1;
            }
            _ => {
                let Some((sp, st)) = star else {
                    return false;
                };
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
        }
    }
    pattern.iter().skip(p).all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], block: &[&str]) -> ImportRules {
        let input = ImportRulesInput {
            sender_allow: Some(allow.iter().map(|s| s.to_string()).collect()),
            subject_block: Some(block.iter().map(|s| s.to_string()).collect()),
        };
        let mut errors = ValidationErrors::default();
        input.parse(&mut errors).expect("valid rules")
    }

    #[test]
    fn wildcards_match_like_the_seed_product() {
        assert!(wildcard_match("*@contoso.com", "anna@contoso.com"));
        assert!(!wildcard_match(
            "*@contoso.com",
            "anna@contoso.com.evil.org"
        ));
        assert!(wildcard_match("*newsletter*", "your weekly newsletter!"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "x"));
        assert!(wildcard_match("INVOICE*", "invoice 42"));
    }

    #[test]
    fn default_rules_allow_everything() {
        let r = ImportRules::default();
        assert_eq!(r.check(None, "anything"), Ok(()));
        assert_eq!(r.check(Some("x@y.z"), ""), Ok(()));
    }

    #[test]
    fn sender_allow_list_is_checked_before_the_subject_block_list() {
        let r = rules(&["*@contoso.com"], &["*newsletter*"]);
        assert_eq!(r.check(Some("Anna@Contoso.com"), "Invoice"), Ok(()));
        let stop = r
            .check(Some("bob@fabrikam.com"), "Newsletter")
            .expect_err("stopped");
        assert_eq!(stop.rule(), "sender_allow");
        assert!(stop.detail().contains("bob@fabrikam.com"));
        let stop = r
            .check(Some("anna@contoso.com"), "March NEWSLETTER")
            .expect_err("stopped");
        assert_eq!(stop.rule(), "subject_block");
        assert!(stop.detail().contains("*newsletter*"));
        assert_eq!(
            r.check(None, "x").expect_err("no sender").rule(),
            "sender_allow"
        );
    }

    #[test]
    fn bad_patterns_are_named_by_field() {
        let input = ImportRulesInput {
            sender_allow: Some(vec!["ok@x.com".into(), "  ".into(), "a b@x".into()]),
            subject_block: Some(vec!["fine".into(), "bad\u{7}".into()]),
        };
        let mut errors = ValidationErrors::default();
        assert_eq!(input.parse(&mut errors), None);
        assert!(errors.mentions("rules.sender_allow[1]"));
        assert!(errors.mentions("rules.sender_allow[2]"));
        assert!(errors.mentions("rules.subject_block[1]"));
        assert!(!errors.mentions("rules.sender_allow[0]"));
    }

    fn importer_body(rules: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "name": "Invoices",
            "protocol": "graph_delegated",
            "client_id": "11111111-2222-3333-4444-555555555555",
            "client_secret": "s3cr3t",
            "tenant_id": "contoso.onmicrosoft.com",
            "folders": { "inbox": "Inbox", "exported": "Exported", "error": "Error" },
            "rules": rules
        })
    }

    #[test]
    fn importer_rules_are_parsed_and_named_when_bad() {
        use crate::importer::ImporterInput;
        let input: ImporterInput = serde_json::from_value(importer_body(serde_json::json!({
            "sender_allow": ["*@Contoso.com"], "subject_block": ["*newsletter*"]
        })))
        .expect("json");
        let valid = input.validate(None).expect("valid");
        assert_eq!(valid.settings.rules.sender_allow, ["*@contoso.com"]);
        assert_eq!(valid.settings.rules.subject_block, ["*newsletter*"]);

        let input: ImporterInput = serde_json::from_value(importer_body(serde_json::json!({
            "sender_allow": [""]
        })))
        .expect("json");
        let errors = input.validate(None).expect_err("invalid");
        assert!(errors.mentions("rules.sender_allow[0]"), "{errors}");

        let unknown = serde_json::from_value::<ImporterInput>(importer_body(
            serde_json::json!({"sender_block": []}),
        ));
        assert!(unknown.is_err(), "unknown rule fields are refused");
    }

    #[test]
    fn settings_saved_before_rules_existed_allow_everything() {
        use crate::importer::{ImporterInput, ImporterSettings};
        let input: ImporterInput =
            serde_json::from_value(importer_body(serde_json::Value::Null)).expect("json");
        let settings = input.validate(None).expect("valid").settings;
        assert_eq!(settings.rules, ImportRules::default());
        let mut stored = serde_json::to_value(&settings).expect("serialize");
        stored
            .as_object_mut()
            .expect("object")
            .remove("rules")
            .expect("rules serialized");
        let old: ImporterSettings = serde_json::from_value(stored).expect("old settings parse");
        assert_eq!(old, settings);
    }
}
