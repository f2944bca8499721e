//! Importer configurations, scoped to their client, with the secret sealed.

use domain::content::ContentKeys;
use domain::importer::{ImporterSettings, SecretChange, SecretKind, ValidImporter};
use domain::sink::SinkSecretChange;
use jiff::Timestamp;
use secrecy::SecretString;

use crate::sealed::SealedField;
use crate::{Result, Store, StoreError, from_millis, new_id, to_millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImporterRecord {
    pub id: String,
    pub client_id: String,
    pub settings: ImporterSettings,
    /// Which secret is sealed for this importer, if any (its value never leaves the store unasked).
    pub stored_secret: Option<SecretKind>,
    /// The sink's own credential is sealed (a webhook's token).
    pub sink_secret_set: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What saving an importer did to its authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImporter {
    pub record: ImporterRecord,
    /// The OAuth grant was dropped because the change made it unusable.
    pub grant_dropped: bool,
}

type ImporterRow = (String, String, String, Option<String>, i64, i64, i64);

fn secret_field(importer_id: &str) -> SealedField<'_> {
    SealedField {
        table: "importers",
        column: "secret_sealed",
        row_id: importer_id,
    }
}

fn sink_secret_field(importer_id: &str) -> SealedField<'_> {
    SealedField {
        table: "importers",
        column: "sink_secret_sealed",
        row_id: importer_id,
    }
}

fn content_keys_field(importer_id: &str) -> SealedField<'_> {
    SealedField {
        table: "importers",
        column: "content_keys_sealed",
        row_id: importer_id,
    }
}

/// The settings as the sealed keys make them: which senders have a ZIP
/// password and whether an S/MIME key is set is decided here, from what is
/// actually sealed, and nowhere else.
fn settings_with_keys(settings: &ImporterSettings, keys: &ContentKeys) -> ImporterSettings {
    let mut settings = settings.clone();
    settings.zip.password_senders = keys
        .zip_passwords
        .iter()
        .map(|z| z.sender.clone())
        .collect();
    settings.smime.key_set = keys.smime_pkcs12_base64.is_some();
    settings
}

fn record_from_row(
    (id, client_id, settings, secret_kind, sink_secret_set, created_at, updated_at): ImporterRow,
) -> Result<ImporterRecord> {
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::Corrupt(format!("importer {id} {what}: {e}"))
    };
    Ok(ImporterRecord {
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("settings", e))?,
        stored_secret: secret_kind
            .map(|k| serde_json::from_value(serde_json::Value::String(k)))
            .transpose()
            .map_err(|e| corrupt("secret kind", e))?,
        sink_secret_set: sink_secret_set != 0,
        created_at: from_millis(created_at)?,
        updated_at: from_millis(updated_at)?,
        id,
        client_id,
    })
}

fn secret_kind_name(kind: SecretKind) -> &'static str {
    kind.field()
}

const SELECT: &str = "SELECT id, client_id, settings, secret_kind, CASE WHEN sink_secret_sealed IS NULL THEN 0 ELSE 1 END, created_at, updated_at FROM importers";

impl Store {
    pub async fn create_importer(
        &self,
        client_id: &str,
        valid: &ValidImporter,
        now: Timestamp,
    ) -> Result<ImporterRecord> {
        let id = new_id();
        let (kind, sealed) = match &valid.secret {
            Some((kind, SecretChange::Set(secret))) => (
                Some(*kind),
                Some(
                    self.keyring()
                        .seal(secret_field(&id), &SecretString::from(secret.clone())),
                ),
            ),
            // A new importer has nothing to keep: validation without a stored secret demands one.
            Some((_, SecretChange::Keep)) | None => (None, None),
        };
        let sink_sealed = match &valid.sink_secret {
            SinkSecretChange::Set(token) => Some(
                self.keyring()
                    .seal(sink_secret_field(&id), &SecretString::from(token.clone())),
            ),
            SinkSecretChange::Keep | SinkSecretChange::Clear => None,
        };
        let sink_secret_set = sink_sealed.is_some();
        let keys = ContentKeys::default().apply(&valid.content_keys);
        let keys_sealed = self.seal_content_keys(&id, &keys)?;
        let settings_value = settings_with_keys(&valid.settings, &keys);
        let settings = serde_json::to_string(&settings_value)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO importers (id, client_id, name, protocol, settings, secret_kind, secret_sealed, sink_secret_sealed, content_keys_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(client_id)
        .bind(&valid.settings.name)
        .bind(valid.settings.protocol.as_str())
        .bind(settings)
        .bind(kind.map(secret_kind_name))
        .bind(sealed)
        .bind(sink_sealed)
        .bind(keys_sealed)
        .bind(to_millis(now))
        .execute(self.pool())
        .await?;
        Ok(ImporterRecord {
            id,
            client_id: client_id.to_owned(),
            settings: settings_value,
            stored_secret: kind,
            sink_secret_set,
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn list_importers(&self, client_id: &str) -> Result<Vec<ImporterRecord>> {
        let rows: Vec<ImporterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE client_id = $1 ORDER BY created_at, id"
        )))
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// Every importer of every client (for scripts that serve them all).
    pub async fn list_all_importers(&self) -> Result<Vec<ImporterRecord>> {
        let rows: Vec<ImporterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} ORDER BY created_at, id"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// One importer of `client_id`; another client's importer is `None`, as if it did not exist.
    pub async fn importer(&self, client_id: &str, id: &str) -> Result<Option<ImporterRecord>> {
        let row: Option<ImporterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE client_id = $1 AND id = $2"
        )))
        .bind(client_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(record_from_row).transpose()
    }

    /// Replaces an importer's settings. Its grant is dropped only when the
    /// change makes it unusable (see `ImporterSettings::grant_survives_change_to`).
    pub async fn update_importer(
        &self,
        client_id: &str,
        id: &str,
        valid: &ValidImporter,
        now: Timestamp,
    ) -> Result<SavedImporter> {
        let mut tx = self.pool().begin().await?;
        let row: Option<ImporterRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE client_id = $1 AND id = $2"
        )))
        .bind(client_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let old = row
            .map(record_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound("importer"))?;
        let secret_changed = matches!(valid.secret, Some((_, SecretChange::Set(_))));
        let old_keys = self.content_keys_in(&mut tx, id).await?;
        let keys = old_keys.apply(&valid.content_keys);
        sqlx::query("UPDATE importers SET content_keys_sealed = $1 WHERE id = $2")
            .bind(self.seal_content_keys(id, &keys)?)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let settings_value = settings_with_keys(&valid.settings, &keys);
        let settings = serde_json::to_string(&settings_value)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let stored_secret = match &valid.secret {
            Some((kind, SecretChange::Set(secret))) => {
                let sealed = self
                    .keyring()
                    .seal(secret_field(id), &SecretString::from(secret.clone()));
                sqlx::query(
                    "UPDATE importers SET secret_kind = $1, secret_sealed = $2 WHERE id = $3",
                )
                .bind(secret_kind_name(*kind))
                .bind(sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                Some(*kind)
            }
            Some((kind, SecretChange::Keep)) => Some(*kind),
            None => {
                sqlx::query(
                    "UPDATE importers SET secret_kind = NULL, secret_sealed = NULL WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                None
            }
        };
        let sink_secret_set = match &valid.sink_secret {
            SinkSecretChange::Keep => old.sink_secret_set,
            change => {
                let sealed = match change {
                    SinkSecretChange::Set(token) => Some(
                        self.keyring()
                            .seal(sink_secret_field(id), &SecretString::from(token.clone())),
                    ),
                    _ => None,
                };
                let set = sealed.is_some();
                sqlx::query("UPDATE importers SET sink_secret_sealed = $1 WHERE id = $2")
                    .bind(sealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                set
            }
        };
        sqlx::query("UPDATE importers SET name = $1, protocol = $2, settings = $3, updated_at = $4 WHERE id = $5")
            .bind(&valid.settings.name)
            .bind(valid.settings.protocol.as_str())
            .bind(settings)
            .bind(to_millis(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let grant_dropped = if old
            .settings
            .grant_survives_change_to(&settings_value, secret_changed)
        {
            false
        } else {
            let deleted = sqlx::query("DELETE FROM oauth_grants WHERE importer_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            deleted.rows_affected() > 0
        };
        tx.commit().await?;
        Ok(SavedImporter {
            record: ImporterRecord {
                id: id.to_owned(),
                client_id: client_id.to_owned(),
                settings: settings_value,
                stored_secret,
                sink_secret_set,
                created_at: old.created_at,
                updated_at: now,
            },
            grant_dropped,
        })
    }

    /// Deletes an importer with its grant; `false` when the client has no such importer.
    pub async fn delete_importer(&self, client_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        // Explicit deletes: PostgreSQL and SQLite agree on them even where
        // a connection runs without foreign-key enforcement.
        for table in [
            "oauth_grants",
            "oauth_states",
            "import_runs",
            "graph_subscriptions",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE importer_id = $1 AND importer_id IN (SELECT id FROM importers WHERE client_id = $2)")))
                .bind(id)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM importers WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Opens the importer's sealed secret (client secret or IMAP password).
    pub async fn importer_secret(&self, client_id: &str, id: &str) -> Result<Option<SecretString>> {
        self.open_sealed(client_id, secret_field(id)).await
    }

    /// Opens the sink's own sealed credential (a webhook's token).
    pub async fn sink_secret(&self, client_id: &str, id: &str) -> Result<Option<SecretString>> {
        self.open_sealed(client_id, sink_secret_field(id)).await
    }

    /// Opens the importer's content keys (ZIP passwords, S/MIME key); none
    /// sealed is the empty set.
    pub async fn content_keys(&self, client_id: &str, id: &str) -> Result<ContentKeys> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(
            "SELECT content_keys_sealed FROM importers WHERE client_id = $1 AND id = $2",
        )
        .bind(client_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        self.open_content_keys(id, row.and_then(|(s,)| s))
    }

    async fn content_keys_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: &str,
    ) -> Result<ContentKeys> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT content_keys_sealed FROM importers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        self.open_content_keys(id, row.and_then(|(s,)| s))
    }

    fn open_content_keys(&self, id: &str, sealed: Option<Vec<u8>>) -> Result<ContentKeys> {
        let Some(sealed) = sealed else {
            return Ok(ContentKeys::default());
        };
        let plain = self.keyring().open_bytes(content_keys_field(id), &sealed)?;
        // serde's message may quote a value: a secret must not reach a log.
        serde_json::from_slice(&plain).map_err(|e| {
            StoreError::Corrupt(format!(
                "importer {id}: its sealed content keys are not readable ({:?} error at column {})",
                e.classify(),
                e.column()
            ))
        })
    }

    fn seal_content_keys(&self, id: &str, keys: &ContentKeys) -> Result<Option<Vec<u8>>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(keys).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        Ok(Some(
            self.keyring().seal_bytes(content_keys_field(id), &plain),
        ))
    }

    /// Opens one sealed column of an importer of `client_id`.
    async fn open_sealed(
        &self,
        client_id: &str,
        field: SealedField<'_>,
    ) -> Result<Option<SecretString>> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM importers WHERE client_id = $1 AND id = $2",
            field.column
        )))
        .bind(client_id)
        .bind(field.row_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some((Some(sealed),)) => Ok(Some(self.keyring().open(field, &sealed)?)),
            _ => Ok(None),
        }
    }
}
