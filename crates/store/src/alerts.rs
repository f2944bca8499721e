//! A client's alert settings (the SMTP password sealed) and the problems
//! it was alerted about, so each problem is alerted once, reminded daily
//! and announced resolved once.

use domain::alert::{AlertSettings, Problem};
use jiff::Timestamp;
use secrecy::SecretString;

use crate::sealed::SealedField;
use crate::{Result, Store, StoreError, from_millis, to_millis};

fn password_field(client_id: &str) -> SealedField<'_> {
    SealedField {
        table: "alert_settings",
        column: "smtp_password_sealed",
        row_id: client_id,
    }
}

/// A problem alerted about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    pub problem: Problem,
    pub raised_at: Timestamp,
    pub last_sent_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
}

type AlertRow = (String, i64, Option<i64>, Option<i64>);

impl Store {
    /// The client's alert settings, and whether an SMTP password is stored.
    pub async fn alert_settings(&self, client_id: &str) -> Result<(AlertSettings, bool)> {
        let row: Option<(String, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT settings, smtp_password_sealed FROM alert_settings WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            None => Ok((AlertSettings::default(), false)),
            Some((json, sealed)) => Ok((
                serde_json::from_str(&json).map_err(|e| {
                    StoreError::Corrupt(format!("alert settings of client {client_id}: {e}"))
                })?,
                sealed.is_some(),
            )),
        }
    }

    /// Saves the settings; `password`: `Some` replaces the stored SMTP
    /// password, `None` keeps it (dropped when there is no SMTP server).
    pub async fn put_alert_settings(
        &self,
        client_id: &str,
        settings: &AlertSettings,
        password: Option<&SecretString>,
        now: Timestamp,
    ) -> Result<()> {
        let json = serde_json::to_string(settings)
            .map_err(|e| StoreError::Corrupt(format!("alert settings: {e}")))?;
        let sealed = password.map(|p| self.keyring().seal(password_field(client_id), p));
        sqlx::query(
            "INSERT INTO alert_settings (client_id, settings, smtp_password_sealed, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (client_id) DO UPDATE SET settings = excluded.settings, \
             smtp_password_sealed = CASE WHEN $5 THEN NULL \
                 ELSE COALESCE(excluded.smtp_password_sealed, alert_settings.smtp_password_sealed) END, \
             updated_at = excluded.updated_at",
        )
        .bind(client_id)
        .bind(json)
        .bind(sealed)
        .bind(to_millis(now))
        .bind(settings.smtp.is_none())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn smtp_password(&self, client_id: &str) -> Result<Option<SecretString>> {
        let row: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT smtp_password_sealed FROM alert_settings WHERE client_id = $1")
                .bind(client_id)
                .fetch_optional(self.pool())
                .await?;
        match row {
            Some((Some(sealed),)) => Ok(Some(
                self.keyring().open(password_field(client_id), &sealed)?,
            )),
            _ => Ok(None),
        }
    }

    /// The client's alerts, open ones first, newest first.
    pub async fn alerts(&self, client_id: &str) -> Result<Vec<AlertRecord>> {
        let rows: Vec<AlertRow> = sqlx::query_as(
            "SELECT problem, raised_at, last_sent_at, resolved_at FROM alerts WHERE client_id = $1 \
             ORDER BY (resolved_at IS NULL) DESC, raised_at DESC",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(problem, raised, sent, resolved)| {
                Ok(AlertRecord {
                    problem: serde_json::from_str(&problem)
                        .map_err(|e| StoreError::Corrupt(format!("alert: {e}")))?,
                    raised_at: from_millis(raised)?,
                    last_sent_at: sent.map(from_millis).transpose()?,
                    resolved_at: resolved.map(from_millis).transpose()?,
                })
            })
            .collect()
    }

    /// Records `problem` as open (raised now, unless it already is),
    /// with `sent_at` when an alert about it went out.
    pub async fn put_alert(
        &self,
        client_id: &str,
        problem: &Problem,
        raised_at: Timestamp,
        sent_at: Option<Timestamp>,
    ) -> Result<()> {
        let json = serde_json::to_string(problem)
            .map_err(|e| StoreError::Corrupt(format!("alert: {e}")))?;
        sqlx::query(
            "INSERT INTO alerts (client_id, problem_key, importer_id, problem, raised_at, last_sent_at, resolved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL) \
             ON CONFLICT (client_id, problem_key) DO UPDATE SET problem = excluded.problem, \
             raised_at = excluded.raised_at, last_sent_at = excluded.last_sent_at, resolved_at = NULL",
        )
        .bind(client_id)
        .bind(&problem.key)
        .bind(&problem.importer_id)
        .bind(json)
        .bind(to_millis(raised_at))
        .bind(sent_at.map(to_millis))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn resolve_alert(&self, client_id: &str, key: &str, at: Timestamp) -> Result<()> {
        sqlx::query("UPDATE alerts SET resolved_at = $1 WHERE client_id = $2 AND problem_key = $3")
            .bind(to_millis(at))
            .bind(client_id)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
