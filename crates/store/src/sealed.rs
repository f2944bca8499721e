//! Secrets at rest: client secrets, IMAP passwords and OAuth tokens are
//! sealed with XChaCha20-Poly1305 under a master key that never enters the
//! database.
//!
//! The key file holds one key per line, `ID:BASE64(32 bytes)`; the **last**
//! line seals, every line opens. Rotation is therefore: append a key, re-seal
//! (`mailferry keys rotate` does both), then drop the old line.
//!
//! Envelope: `1 | len(id) | id | nonce(24) | ciphertext+tag`, with the row's
//! identity (`table/column/row id`) as associated data, so a sealed value
//! copied into another row does not open.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "cannot read the master key file {path}: {source}. Check MAILFERRY_MASTER_KEY_FILE and the file's permissions"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot create the master key file {path}: {source}. Make its directory writable or set MAILFERRY_MASTER_KEY_FILE"
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the master key file {path}, line {line}: {reason}. Each line must be `ID:BASE64` of 32 random bytes"
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "the master key file {0} holds no key. Restore it from your backup: without it sealed secrets cannot be opened"
    )]
    Empty(PathBuf),
    #[error(
        "a secret was sealed with key `{0}`, which the master key file no longer holds. Restore that key line, or enter the secret again"
    )]
    UnknownKey(String),
    #[error(
        "a sealed secret is damaged or belongs to another record ({0}). Enter the secret again"
    )]
    Damaged(&'static str),
}

/// A generated key not yet on disk.
pub struct NewKeyFile {
    line: Zeroizing<String>,
}

impl NewKeyFile {
    /// Creates the key file (mode 0600); refuses to replace one.
    pub fn write(&self, path: &Path) -> Result<(), SealError> {
        let create = |source| SealError::Create {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(create)?;
        }
        let mut file = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(create)?;
        file.write_all(self.line.as_bytes()).map_err(create)?;
        file.sync_all().map_err(create)
    }
}

struct MasterKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

/// The master keys: never none, the newest seals.
pub struct Keyring {
    /// The key file's last key: it seals, and opens.
    current: MasterKey,
    /// The file's earlier keys, oldest first: they only open.
    older: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

/// Where a sealed value lives; bound into the ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct SealedField<'a> {
    pub table: &'static str,
    pub column: &'static str,
    pub row_id: &'a str,
}

impl SealedField<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("{}/{}/{}", self.table, self.column, self.row_id).into_bytes()
    }
}

impl Keyring {
    /// Loads the key file, creating it (mode 0600, one fresh key) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        if !path.exists() {
            Self::append_new_key(path)?;
        }
        Self::load(path)
    }

    /// A keyring of one fresh key, in memory: written (by
    /// [`NewKeyFile::write`]) only once it is known that no database
    /// secret needs another key.
    pub fn generate() -> Result<(Self, NewKeyFile), SealError> {
        let id = format!("k1-{}", jiff::Timestamp::now().as_second());
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(Key::generate().into());
        let line = Zeroizing::new(format!("{id}:{}\n", STANDARD.encode(key.as_slice())));
        let ring = Self::parse(&line, Path::new("(new key)"))?;
        Ok((ring, NewKeyFile { line }))
    }

    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| SealError::Read {
            path: path.to_owned(),
            source,
        })?);
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, SealError> {
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file is readable by other users: chmod 600 it");
        }
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: &str| SealError::Malformed {
                path: path.to_owned(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let (id, encoded) = line
                .split_once(':')
                .ok_or_else(|| malformed("no `:` between id and key"))?;
            if id.is_empty()
                || id.len() > 32
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(malformed("the id must be 1–32 letters, digits, `-` or `_`"));
            }
            let bytes = Zeroizing::new(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| malformed("the key is not base64"))?,
            );
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| malformed("the key is not 32 bytes"))?;
            keys.push(MasterKey {
                id: id.to_owned(),
                cipher,
            });
        }
        let Some(current) = keys.pop() else {
            return Err(SealError::Empty(path.to_owned()));
        };
        Ok(Self {
            current,
            older: keys,
        })
    }

    /// Appends a freshly generated key, which becomes the sealing key.
    /// Returns its id.
    pub fn append_new_key(path: &Path) -> Result<String, SealError> {
        let create = |source| SealError::Create {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(create)?;
        }
        let existing = if path.exists() {
            Self::load(path)?.keys().count()
        } else {
            0
        };
        let id = format!("k{}-{}", existing + 1, jiff::Timestamp::now().as_second());
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(Key::generate().into());
        let line = Zeroizing::new(format!("{id}:{}\n", STANDARD.encode(key.as_slice())));
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(create)?;
        file.write_all(line.as_bytes()).map_err(create)?;
        file.sync_all().map_err(create)?;
        Ok(id)
    }

    /// The id of the key `sealed` was sealed with, if it is an envelope.
    pub fn key_id_of(sealed: &[u8]) -> Option<&str> {
        let len = usize::from(*sealed.get(1)?);
        std::str::from_utf8(sealed.get(2..2 + len)?).ok()
    }

    pub fn current_key_id(&self) -> &str {
        self.current().id.as_str()
    }

    fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Every key, oldest first.
    fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        self.older.iter().chain(std::iter::once(&self.current))
    }

    pub fn seal(&self, field: SealedField<'_>, secret: &SecretString) -> Vec<u8> {
        self.seal_bytes(field, secret.expose_secret().as_bytes())
    }

    pub fn seal_bytes(&self, field: SealedField<'_>, plaintext: &[u8]) -> Vec<u8> {
        let key = self.current();
        let nonce = XNonce::generate();
        let aad = field.associated_data();
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // XChaCha20-Poly1305 only fails for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(2 + key.id.len() + NONCE_LEN + ciphertext.len());
        out.push(ENVELOPE_VERSION);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, field: SealedField<'_>, sealed: &[u8]) -> Result<SecretString, SealError> {
        let bytes = self.open_bytes(field, sealed)?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| SealError::Damaged("not text"))?;
        Ok(SecretString::from(text))
    }

    pub fn open_bytes(
        &self,
        field: SealedField<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Damaged("empty"))?;
        if version != ENVELOPE_VERSION {
            return Err(SealError::Damaged("unknown envelope version"));
        }
        let (&id_len, rest) = rest.split_first().ok_or(SealError::Damaged("truncated"))?;
        let id_len = usize::from(id_len);
        if rest.len() < id_len + NONCE_LEN {
            return Err(SealError::Damaged("truncated"));
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let id = std::str::from_utf8(id).map_err(|_| SealError::Damaged("bad key id"))?;
        let key = self
            .keys()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Damaged("bad nonce"))?;
        let aad = field.associated_data();
        key.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Damaged("authentication failed"))
    }

    /// Whether a sealed value was made with an older key and should be
    /// re-sealed during rotation.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        let current = self.current_key_id().as_bytes();
        sealed.get(2..2 + current.len()) != Some(current)
            || sealed.get(1).map(|&l| usize::from(l)) != Some(current.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELD: SealedField<'static> = SealedField {
        table: "importers",
        column: "secret_sealed",
        row_id: "row-1",
    };

    #[test]
    fn key_file_is_created_private_and_seals_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/master.key");
        let ring = Keyring::load_or_create(&path).expect("created");
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = ring.seal(FIELD, &SecretString::from("hunter2"));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(
            ring.open(FIELD, &sealed).expect("opens").expose_secret(),
            "hunter2"
        );
    }

    #[test]
    fn a_sealed_value_does_not_open_in_another_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = Keyring::load_or_create(&dir.path().join("k")).expect("created");
        let sealed = ring.seal(FIELD, &SecretString::from("x"));
        let other = SealedField {
            row_id: "row-2",
            ..FIELD
        };
        assert!(matches!(
            ring.open(other, &sealed),
            Err(SealError::Damaged(_))
        ));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(ring.open(FIELD, &tampered).is_err());
        assert!(ring.open(FIELD, &[]).is_err());
        assert!(ring.open(FIELD, &sealed[..10]).is_err());
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_and_seals_with_the_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let old = Keyring::load_or_create(&path).expect("created");
        let sealed_old = old.seal(FIELD, &SecretString::from("before"));
        let new_id = Keyring::append_new_key(&path).expect("appended");
        let ring = Keyring::load(&path).expect("loads");
        assert_eq!(ring.current_key_id(), new_id);
        assert!(ring.needs_reseal(&sealed_old));
        assert_eq!(
            ring.open(FIELD, &sealed_old)
                .expect("old opens")
                .expose_secret(),
            "before"
        );
        let sealed_new = ring.seal(FIELD, &SecretString::from("after"));
        assert!(!ring.needs_reseal(&sealed_new));
        // a keyring without the old key says which key is missing
        let only_new = path.with_extension("new");
        let text = fs::read_to_string(&path).expect("read");
        fs::write(&only_new, text.lines().last().expect("line")).expect("write");
        let ring_new = Keyring::load(&only_new).expect("loads");
        assert!(matches!(
            ring_new.open(FIELD, &sealed_old),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn malformed_key_files_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        fs::write(&path, "# comment\nk1:not-base64!\n").expect("write");
        let err = Keyring::load(&path).expect_err("malformed");
        assert!(err.to_string().contains("line 2"), "{err}");
        fs::write(&path, "# only a comment\n").expect("write");
        assert!(matches!(Keyring::load(&path), Err(SealError::Empty(_))));
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let ring = Keyring::load_or_create(&path).expect("created");
        let text = fs::read_to_string(&path).expect("read");
        let key_b64 = text.trim().split_once(':').expect("line").1.to_owned();
        assert!(!format!("{ring:?}").contains(&key_b64));
    }
}
