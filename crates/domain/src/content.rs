//! What an importer does with wrapped content: ZIP archives (some
//! encrypted, with a password agreed per sender) and S/MIME mails (signed,
//! encrypted). The settings here are public; the passwords and the key live
//! in [`ContentKeys`], sealed apart like every secret.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::rules::{Pattern, parse_pattern, wildcard_match};
use crate::validation::ValidationErrors;

/// How deep ZIPs inside ZIPs are opened.
pub const MAX_ZIP_DEPTH: u32 = 3;
/// Most files taken from one mail's archives: a million empty files is a bomb too.
pub const MAX_ZIP_ENTRIES: usize = 10_000;
/// Compression ratio beyond which a large entry is a bomb (real documents
/// compress 2–10×; a bomb compresses 1000×).
pub const MAX_ZIP_RATIO: u64 = 200;

/// ZIP handling. Every ZIP attachment is unpacked; its files pass the
/// same attachment rules as the mail's own attachments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipSettings {
    /// Sender patterns that have a sealed password, in the order they are
    /// tried: the first one matching the mail's sender is used.
    #[serde(default)]
    pub password_senders: Vec<String>,
    /// Keep the archive itself beside the files taken from it.
    #[serde(default = "keep_archive_default")]
    pub keep_archive: bool,
}

fn keep_archive_default() -> bool {
    true
}

impl Default for ZipSettings {
    fn default() -> Self {
        Self {
            password_senders: Vec::new(),
            keep_archive: true,
        }
    }
}

/// What happens to a mail whose S/MIME signature does not verify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBadSignature {
    /// The mail goes to Error with `smime_invalid_signature`.
    #[default]
    Error,
    /// The mail is imported; the failed verdict is recorded in its metadata.
    Import,
}

impl OnBadSignature {
    pub const ALL: [Self; 2] = [Self::Error, Self::Import];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Import => "import",
        }
    }
}

/// S/MIME: signed mails are verified and unwrapped, encrypted ones
/// decrypted with the importer's key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmimeSettings {
    /// CA certificates (PEM) that signers may chain to.
    #[serde(default)]
    pub trusted_ca_pem: Option<String>,
    /// Whether the operating system's root CAs are trusted as well.
    #[serde(default = "platform_roots_default")]
    pub platform_roots: bool,
    #[serde(default)]
    pub on_bad_signature: OnBadSignature,
    /// Set when a key (PKCS#12) is sealed for this importer (kept by the
    /// store in step with what it seals).
    #[serde(default)]
    pub key_set: bool,
}

fn platform_roots_default() -> bool {
    true
}

/// The sealed part of content handling: ZIP passwords per sender pattern
/// and the S/MIME decryption key. Serialized only into the keyring.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ContentKeys {
    #[serde(default)]
    pub zip_passwords: Vec<ZipPassword>,
    /// The PKCS#12 file (DER, base64) holding the key and certificate.
    #[serde(default, serialize_with = "expose_opt")]
    pub smime_pkcs12_base64: Option<SecretString>,
    #[serde(default, serialize_with = "expose_opt")]
    pub smime_pkcs12_password: Option<SecretString>,
}

impl std::fmt::Debug for ContentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let senders: Vec<&str> = self
            .zip_passwords
            .iter()
            .map(|z| z.sender.as_str())
            .collect();
        f.debug_struct("ContentKeys")
            .field("zip_password_senders", &senders)
            .field("smime_key", &self.smime_pkcs12_base64.is_some())
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ZipPassword {
    /// A sender pattern, lower case (`*@supplier.example`).
    pub sender: String,
    #[serde(serialize_with = "expose")]
    pub password: SecretString,
}

fn expose_opt<S: serde::Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(s.expose_secret()),
        None => ser.serialize_none(),
    }
}

fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl ContentKeys {
    /// The first password whose sender pattern matches `from`, with that pattern.
    pub fn zip_password_for(&self, from: Option<&str>) -> Option<(&str, &SecretString)> {
        let from = from?.to_lowercase();
        self.zip_passwords
            .iter()
            .find(|z| wildcard_match(&z.sender, &from))
            .map(|z| (z.sender.as_str(), &z.password))
    }

    /// The keys after an update: submitted passwords replace, omitted
    /// ones are kept from `self` for the same sender pattern.
    pub fn apply(&self, change: &ContentKeysChange) -> ContentKeys {
        let zip_passwords = change
            .zip_passwords
            .iter()
            .filter_map(|(sender, password)| {
                let password = match password {
                    Some(p) => Some(SecretString::from(p.clone())),
                    None => self
                        .zip_passwords
                        .iter()
                        .find(|z| &z.sender == sender)
                        .map(|z| z.password.clone()),
                }?;
                Some(ZipPassword {
                    sender: sender.clone(),
                    password,
                })
            })
            .collect();
        let (smime_pkcs12_base64, smime_pkcs12_password) = match &change.smime_key {
            KeyChange::Keep => (
                self.smime_pkcs12_base64.clone(),
                self.smime_pkcs12_password.clone(),
            ),
            KeyChange::Clear => (None, None),
            KeyChange::Set {
                pkcs12_base64,
                password,
            } => (
                Some(SecretString::from(pkcs12_base64.clone())),
                Some(SecretString::from(password.clone())),
            ),
        };
        ContentKeys {
            zip_passwords,
            smime_pkcs12_base64,
            smime_pkcs12_password,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.zip_passwords.is_empty() && self.smime_pkcs12_base64.is_none()
    }
}

/// What a submitted importer says about its content keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentKeysChange {
    /// Sender pattern → a new password, or `None` to keep the stored one.
    pub zip_passwords: Vec<(String, Option<String>)>,
    pub smime_key: KeyChange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyChange {
    #[default]
    Keep,
    Clear,
    Set {
        pkcs12_base64: String,
        password: String,
    },
}

/// `zip_passwords` as submitted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZipPasswordInput {
    /// A sender pattern such as `*@supplier.example`.
    pub sender: Option<String>,
    /// Write-only. Omit it on update to keep the stored one for this sender.
    pub password: Option<String>,
}

/// `smime` as submitted.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmimeInput {
    /// CA certificates (PEM) that signers may chain to.
    pub trusted_ca_pem: Option<String>,
    /// Trust the operating system's root CAs too (default true).
    pub platform_roots: Option<bool>,
    /// The key and certificate for encrypted mails, a PKCS#12 file in
    /// base64. Write-only; omit to keep, `""` to remove.
    pub key_pkcs12_base64: Option<String>,
    /// Write-only: the PKCS#12 file's password.
    pub pkcs12_password: Option<String>,
    /// `error` (default) or `import`.
    pub on_bad_signature: Option<String>,
}

const MAX_ZIP_PASSWORDS: usize = 50;

/// Parses `zip_passwords`: the public sender list and the change to the keys.
pub fn parse_zip_passwords(
    raw: Option<&Vec<ZipPasswordInput>>,
    errors: &mut ValidationErrors,
) -> (Vec<String>, Vec<(String, Option<String>)>) {
    let raw = raw.map(Vec::as_slice).unwrap_or_default();
    if raw.len() > MAX_ZIP_PASSWORDS {
        errors.add(
            "zip_passwords",
            format!("may have at most {MAX_ZIP_PASSWORDS} entries"),
        );
        return (Vec::new(), Vec::new());
    }
    let mut senders = Vec::new();
    let mut change = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let field = format!("zip_passwords[{i}].sender");
        let Some(sender) = entry.sender.clone() else {
            errors.add(
                field,
                "is required: the senders this password is for, e.g. `*@supplier.example`",
            );
            continue;
        };
        let sender = match parse_pattern(&sender, Pattern::Address) {
            Ok(s) => s,
            Err(m) => {
                errors.add(field, m);
                continue;
            }
        };
        if senders.contains(&sender) {
            errors.add(
                field,
                format!("`{sender}` is listed twice: one password per sender pattern"),
            );
            continue;
        }
        let password = match entry.password.as_deref() {
            Some("") => {
                errors.add(
                    format!("zip_passwords[{i}].password"),
                    "is empty: give the password, or omit the field to keep the stored one",
                );
                continue;
            }
            p => p.map(str::to_owned),
        };
        senders.push(sender.clone());
        change.push((sender, password));
    }
    (senders, change)
}

/// Parses `smime`: the public settings and the change to the key.
pub fn parse_smime(
    raw: Option<&SmimeInput>,
    errors: &mut ValidationErrors,
) -> Option<(SmimeSettings, KeyChange)> {
    let input = raw.cloned().unwrap_or_default();
    let before = errors.errors.len();
    let trusted_ca_pem = match input.trusted_ca_pem.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem.to_owned()),
        Some(_) => {
            errors.add(
                "smime.trusted_ca_pem",
                "is not PEM: paste the CA certificates as text starting with `-----BEGIN CERTIFICATE-----`",
            );
            None
        }
    };
    let on_bad_signature = match input.on_bad_signature.as_deref() {
        None => OnBadSignature::Error,
        Some(raw) => OnBadSignature::ALL
            .into_iter()
            .find(|o| o.as_str() == raw)
            .unwrap_or_else(|| {
                errors.add(
                    "smime.on_bad_signature",
                    format!("`{raw}` is not a choice: one of `error`, `import`"),
                );
                OnBadSignature::Error
            }),
    };
    let key = match (
        input.key_pkcs12_base64.as_deref().map(str::trim),
        input.pkcs12_password.as_deref(),
    ) {
        (Some(""), _) => KeyChange::Clear,
        (Some(p12), Some(password)) => KeyChange::Set {
            pkcs12_base64: p12.split_whitespace().collect(),
            password: password.to_owned(),
        },
        (Some(_), None) => {
            errors.add(
                "smime.pkcs12_password",
                "is required with smime.key_pkcs12_base64: the password the PKCS#12 file was exported with (write-only)",
            );
            KeyChange::Keep
        }
        (None, Some(_)) => {
            errors.add(
                "smime.key_pkcs12_base64",
                "is required with smime.pkcs12_password: the PKCS#12 file (.p12/.pfx) in base64 (the password alone changes nothing)",
            );
            KeyChange::Keep
        }
        (None, _) => KeyChange::Keep,
    };
    (errors.errors.len() == before).then_some((
        SmimeSettings {
            trusted_ca_pem,
            platform_roots: input.platform_roots.unwrap_or(true),
            on_bad_signature,
            // Decided by the store from the keys it seals.
            key_set: false,
        },
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> ContentKeys {
        ContentKeys {
            zip_passwords: pairs
                .iter()
                .map(|(s, p)| ZipPassword {
                    sender: (*s).to_owned(),
                    password: SecretString::from(*p),
                })
                .collect(),
            ..ContentKeys::default()
        }
    }

    #[test]
    fn the_first_matching_sender_pattern_gives_the_password() {
        let k = keys(&[("*@a.example", "one"), ("*", "two")]);
        let (p, pw) = k.zip_password_for(Some("Bob@A.example")).expect("match");
        assert_eq!((p, pw.expose_secret()), ("*@a.example", "one"));
        let (p, _) = k.zip_password_for(Some("x@b.example")).expect("match");
        assert_eq!(p, "*");
        assert!(
            keys(&[("*@a.example", "one")])
                .zip_password_for(Some("x@b.example"))
                .is_none()
        );
        assert!(k.zip_password_for(None).is_none());
    }

    #[test]
    fn an_omitted_password_keeps_the_stored_one_of_the_same_sender_only() {
        let stored = keys(&[("*@a.example", "one"), ("*@b.example", "two")]);
        let change = ContentKeysChange {
            zip_passwords: vec![
                ("*@a.example".into(), None),
                ("*@c.example".into(), None),
                ("*@b.example".into(), Some("new".into())),
            ],
            smime_key: KeyChange::Keep,
        };
        let next = stored.apply(&change);
        let got: Vec<(&str, &str)> = next
            .zip_passwords
            .iter()
            .map(|z| (z.sender.as_str(), z.password.expose_secret()))
            .collect();
        assert_eq!(got, [("*@a.example", "one"), ("*@b.example", "new")]);
    }

    #[test]
    fn zip_passwords_are_validated_with_the_field_named() {
        let mut errors = ValidationErrors::default();
        let input = vec![
            ZipPasswordInput {
                sender: Some("*@A.example".into()),
                password: Some("pw".into()),
            },
            ZipPasswordInput {
                sender: Some("two words".into()),
                password: Some("pw".into()),
            },
            ZipPasswordInput {
                sender: None,
                password: None,
            },
            ZipPasswordInput {
                sender: Some("*@a.example".into()),
                password: None,
            },
        ];
        let (senders, _) = parse_zip_passwords(Some(&input), &mut errors);
        assert_eq!(senders, ["*@a.example"]);
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "zip_passwords[1].sender",
                "zip_passwords[2].sender",
                "zip_passwords[3].sender"
            ]
        );
    }

    #[test]
    fn a_pkcs12_needs_its_password_and_an_empty_one_removes_the_key() {
        let mut errors = ValidationErrors::default();
        let input = SmimeInput {
            key_pkcs12_base64: Some("AAAA".into()),
            ..SmimeInput::default()
        };
        assert!(parse_smime(Some(&input), &mut errors).is_none());
        assert_eq!(errors.errors[0].field, "smime.pkcs12_password");
        let mut errors = ValidationErrors::default();
        let clear = SmimeInput {
            key_pkcs12_base64: Some(String::new()),
            ..SmimeInput::default()
        };
        let (_, k) = parse_smime(Some(&clear), &mut errors).expect("valid");
        assert_eq!(k, KeyChange::Clear);
        let (s, k) = parse_smime(None, &mut errors).expect("valid");
        assert_eq!((k, s.platform_roots), (KeyChange::Keep, true));
    }
}
