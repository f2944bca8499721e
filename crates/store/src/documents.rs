//! Imported documents as the API lists them, scoped to their client. The
//! sink holds the files; this table holds where they are and their
//! `metadata.json`.

use crate::{Result, Store, StoreError, to_millis};
use domain::document::DocumentMetadata;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    pub id: String,
    pub client_id: String,
    pub importer_id: String,
    /// `filesystem` or `webhook`.
    pub sink: String,
    /// The document folder, or the webhook URL.
    pub location: String,
    pub metadata: DocumentMetadata,
}

type DocumentRow = (String, String, String, String, String, String);

const SELECT: &str = "SELECT id, client_id, importer_id, sink, location, metadata FROM documents";

fn record_from_row(
    (id, client_id, importer_id, sink, location, metadata): DocumentRow,
) -> Result<DocumentRecord> {
    let metadata = serde_json::from_str(&metadata)
        .map_err(|e| StoreError::Corrupt(format!("document {id} metadata: {e}")))?;
    Ok(DocumentRecord {
        id,
        client_id,
        importer_id,
        sink,
        location,
        metadata,
    })
}

/// Keeps a listing to a bounded size.
pub const MAX_PAGE: u32 = 1000;

impl Store {
    /// Records a document; recording the same id again changes nothing and
    /// returns `false`.
    pub async fn insert_document(&self, doc: &DocumentRecord) -> Result<bool> {
        let metadata =
            serde_json::to_string(&doc.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let m = &doc.metadata;
        let done = sqlx::query(
            "INSERT INTO documents (id, client_id, importer_id, subject, sender, received_at, imported_at, sink, location, metadata) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&doc.id)
        .bind(&doc.client_id)
        .bind(&doc.importer_id)
        .bind(&m.subject)
        .bind(&m.from)
        .bind(m.received_at.map(to_millis))
        .bind(to_millis(m.imported_at))
        .bind(&doc.sink)
        .bind(&doc.location)
        .bind(metadata)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A client's documents, newest first; `importer_id` narrows to one importer.
    pub async fn list_documents(
        &self,
        client_id: &str,
        importer_id: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DocumentRecord>> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let rows: Vec<DocumentRow> = match importer_id {
            Some(importer) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE client_id = $1 AND importer_id = $2 ORDER BY imported_at DESC, id DESC LIMIT $3 OFFSET $4"
                )))
                .bind(client_id)
                .bind(importer)
                .bind(limit)
                .bind(i64::from(offset))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE client_id = $1 ORDER BY imported_at DESC, id DESC LIMIT $2 OFFSET $3"
                )))
                .bind(client_id)
                .bind(limit)
                .bind(i64::from(offset))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.into_iter().map(record_from_row).collect()
    }

    /// One document of `client_id`; another client's is `None`.
    pub async fn document(&self, client_id: &str, id: &str) -> Result<Option<DocumentRecord>> {
        let row: Option<DocumentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE client_id = $1 AND id = $2"
        )))
        .bind(client_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(record_from_row).transpose()
    }

    /// How many documents an importer has (for summaries and tests).
    pub async fn count_documents(&self, importer_id: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE importer_id = $1")
                .bind(importer_id)
                .fetch_one(self.pool())
                .await?,
        )
    }
}

/// Where a document is kept: what deleting it needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentLocation {
    pub id: String,
    pub importer_id: String,
    /// The sink's kind (`filesystem`, `webhook`).
    pub sink: String,
    pub location: String,
}

impl Store {
    /// A client's documents imported before `cutoff`, in id order after
    /// `after_id` (a cursor that survives deletions between batches).
    pub async fn documents_imported_before(
        &self,
        client_id: &str,
        cutoff: jiff::Timestamp,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<DocumentLocation>> {
        Ok(sqlx::query_as(
            "SELECT id, importer_id, sink, location FROM documents \
             WHERE client_id = $1 AND imported_at < $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(client_id)
        .bind(to_millis(cutoff))
        .bind(after_id)
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a document's row (its files are the sink's); returns whether
    /// there was one. The import ledger keeps the mail, so a purged
    /// document is never imported again.
    pub async fn delete_document(&self, client_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM documents WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
