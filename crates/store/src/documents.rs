//! Imported documents as the API lists them, scoped to their client. The
//! sink holds the files; this table holds where they are and their
//! `metadata.json`.

use jiff::Timestamp;

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

/// Which documents a search returns; every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct DocumentQuery {
    pub importer_id: Option<String>,
    /// Part of the subject, in any case.
    pub subject_contains: Option<String>,
    /// Part of the sender (name or address), in any case.
    pub sender_contains: Option<String>,
    /// Received at or after (the import's instant for a mail without a date).
    pub since: Option<Timestamp>,
    /// Received before.
    pub until: Option<Timestamp>,
    pub limit: u32,
    pub offset: u32,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// `%text%` in lower case, with LIKE's own characters taken literally.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
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
        self.search_documents(
            client_id,
            &DocumentQuery {
                importer_id: importer_id.map(str::to_owned),
                limit,
                offset,
                ..DocumentQuery::default()
            },
        )
        .await
    }

    /// A client's documents that match every filter of `query`, newest first.
    pub async fn search_documents(
        &self,
        client_id: &str,
        query: &DocumentQuery,
    ) -> Result<Vec<DocumentRecord>> {
        let mut sql = format!("{SELECT} WHERE client_id = $1");
        let mut binds: Vec<Bind> = vec![Bind::Text(client_id.to_owned())];
        let mut add = |clause: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(importer) = &query.importer_id {
            add(" AND importer_id = ?", Bind::Text(importer.clone()));
        }
        // Case-insensitive on both backends (PostgreSQL's LIKE is not).
        if let Some(subject) = &query.subject_contains {
            add(
                " AND LOWER(COALESCE(subject, '')) LIKE ? ESCAPE '\\'",
                Bind::Text(like_pattern(subject)),
            );
        }
        if let Some(sender) = &query.sender_contains {
            add(
                " AND LOWER(COALESCE(sender, '')) LIKE ? ESCAPE '\\'",
                Bind::Text(like_pattern(sender)),
            );
        }
        // A mail without a Date header counts as received when imported.
        if let Some(since) = query.since {
            add(
                " AND COALESCE(received_at, imported_at) >= ?",
                Bind::Int(to_millis(since)),
            );
        }
        if let Some(until) = query.until {
            add(
                " AND COALESCE(received_at, imported_at) < ?",
                Bind::Int(to_millis(until)),
            );
        }
        let limit = i64::from(query.limit.clamp(1, MAX_PAGE));
        sql.push_str(&format!(
            " ORDER BY imported_at DESC, id DESC LIMIT {limit} OFFSET {}",
            query.offset
        ));
        let mut q = sqlx::query_as::<_, DocumentRow>(sqlx::AssertSqlSafe(sql));
        for bind in binds {
            q = match bind {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.pool()).await?;
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
