//! Alerts: what reaches people when an importer needs them (a grant to
//! renew, a mailbox that fails, a secret about to expire, imports failing
//! run after run), where it goes (a webhook and e-mail addresses, per
//! client), and what an alert says. One alert per problem, a reminder after
//! a day, and a notice when the problem is gone.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::ValidationErrors;

/// How a client's alerts reach people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlertSettings {
    /// Receives each alert as a JSON POST.
    pub webhook_url: Option<String>,
    /// Receive each alert as an e-mail (needs `smtp`).
    pub emails: Vec<String>,
    pub smtp: Option<SmtpSettings>,
    /// Write each alert to the server's log as one `WARN` line (target
    /// `mailferry::alert`): a target without network, for the demo and
    /// for setups whose log collector already pages someone. Settings
    /// saved before it existed read as `false`.
    #[serde(default)]
    pub log: bool,
    /// Imports failing this many runs in a row raise an alert.
    pub failing_runs: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// The sender, e.g. `mailferry <alerts@example.com>`.
    pub from: String,
    /// Trust exactly this CA (or self-signed certificate) for the server.
    pub tls_ca_pem: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (port 587); refused without it.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: loopback or a trusted relay only.
    None,
}

/// What an admin submits (`PUT /api/v2/alerts/settings`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSettingsInput {
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    pub smtp: Option<SmtpInput>,
    /// Write each alert to the server's log (default `false`).
    #[serde(default)]
    pub log: bool,
    pub failing_runs: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpInput {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub security: Option<SmtpSecurity>,
    pub username: Option<String>,
    /// Write-only; omit it on update to keep the stored one.
    pub password: Option<String>,
    pub from: Option<String>,
    pub tls_ca_pem: Option<String>,
}

const DEFAULT_FAILING_RUNS: u32 = 3;

impl Default for AlertSettings {
    /// No target yet; failures alerted after the default number of runs.
    fn default() -> Self {
        Self {
            webhook_url: None,
            emails: Vec::new(),
            smtp: None,
            log: false,
            failing_runs: DEFAULT_FAILING_RUNS,
        }
    }
}

impl AlertSettings {
    /// Whether any target would take an alert: without one, problems are
    /// not tracked as sent and "Send test alert" has nothing to send to.
    pub fn has_target(&self) -> bool {
        self.log || self.webhook_url.is_some() || (self.smtp.is_some() && !self.emails.is_empty())
    }
}

impl AlertSettingsInput {
    /// The settings, and the SMTP password given (if any); every problem
    /// named by its field.
    pub fn parse(&self) -> Result<(AlertSettings, Option<String>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let webhook_url = match self.webhook_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                crate::sink::http_url("webhook_url", raw, &mut errors).map(|_| raw.to_owned())
            }
        };
        let mut emails = Vec::new();
        for (i, raw) in self.emails.iter().enumerate() {
            let e = raw.trim();
            let plausible = e.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace)
            });
            if plausible {
                emails.push(e.to_owned());
            } else {
                errors.add(
                    format!("emails[{i}]"),
                    format!("`{e}` is not an e-mail address"),
                );
            }
        }
        let smtp = self.smtp.as_ref().and_then(|s| s.parse(&mut errors));
        if !self.emails.is_empty() && self.smtp.is_none() {
            errors.add(
                "smtp",
                "is required to send e-mail: the server that delivers the alerts",
            );
        }
        let failing_runs = self.failing_runs.unwrap_or(DEFAULT_FAILING_RUNS);
        if !(1..=100).contains(&failing_runs) {
            errors.add(
                "failing_runs",
                format!("{failing_runs} is out of range: use 1–100 runs"),
            );
        }
        let password = self
            .smtp
            .as_ref()
            .and_then(|s| s.password.as_deref())
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        errors.into_result((
            AlertSettings {
                webhook_url,
                emails,
                smtp,
                log: self.log,
                failing_runs,
            },
            password,
        ))
    }
}

impl SmtpInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Option<SmtpSettings> {
        let before = errors.errors.len();
        let host = self.host.as_deref().map(str::trim).unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) {
            errors.add(
                "smtp.host",
                "is required: the SMTP server's name, e.g. smtp.example.com",
            );
        }
        let security = self.security.unwrap_or(SmtpSecurity::Starttls);
        let port = self.port.unwrap_or(match security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::None => 25,
        });
        if port == 0 {
            errors.add(
                "smtp.port",
                "0 is not a port: use 587 (STARTTLS), 465 (TLS) or 25",
            );
        }
        let from = self.from.as_deref().map(str::trim).unwrap_or_default();
        if !from.contains('@') {
            errors.add(
                "smtp.from",
                "is required: the sender address, e.g. mailferry <alerts@example.com>",
            );
        }
        let username = self
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let tls_ca_pem = self
            .tls_ca_pem
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        if tls_ca_pem
            .as_ref()
            .is_some_and(|p| !p.contains("-----BEGIN CERTIFICATE-----"))
        {
            errors.add(
                "smtp.tls_ca_pem",
                "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
            );
        }
        (errors.errors.len() == before).then(|| SmtpSettings {
            host: host.to_owned(),
            port,
            security,
            username,
            from: from.to_owned(),
            tls_ca_pem,
        })
    }
}

/// How bad a problem is; alerts and badges are coloured by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Something will break (a secret expiring, a token idling).
    Warning,
    /// Mail is not being imported until someone acts.
    Critical,
}

/// A problem of one importer that people must hear about.
// Named apart in the OpenAPI document: `Problem` there is the API's error
// body, and one name for both made clients read alerts as errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = AlertProblem)]
pub struct Problem {
    /// Stable while the problem lasts: `reauth_required:{importer id}`.
    pub key: String,
    pub importer_id: String,
    pub importer_name: String,
    pub severity: Severity,
    /// What is wrong, naming the importer.
    pub summary: String,
    /// What to do.
    pub fix: String,
}

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A new problem.
    Raised,
    /// Still there a day later.
    Reminder,
    /// Gone.
    Resolved,
    /// "Send test alert".
    Test,
}

impl AlertEvent {
    /// The e-mail subject's start.
    pub fn headline(self) -> &'static str {
        match self {
            Self::Raised => "Action needed",
            Self::Reminder => "Still needs action",
            Self::Resolved => "Resolved",
            Self::Test => "Test alert",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_each_bad_field() {
        let input: AlertSettingsInput = serde_json::from_value(serde_json::json!({
            "webhook_url": "ftp://x", "emails": ["ops@example.com", "nobody"],
            "smtp": {"host": "", "from": "x"}, "failing_runs": 0
        }))
        .expect("input");
        let errors = input.parse().expect_err("invalid");
        for field in [
            "webhook_url",
            "emails[1]",
            "smtp.host",
            "smtp.from",
            "failing_runs",
        ] {
            assert!(errors.mentions(field), "{field}: {errors}");
        }
        let input: AlertSettingsInput = serde_json::from_value(serde_json::json!({
            "emails": ["ops@example.com"],
            "smtp": {"host": "smtp.example.com", "from": "alerts@example.com", "password": "pw"}
        }))
        .expect("input");
        let (settings, password) = input.parse().expect("valid");
        assert_eq!(settings.smtp.expect("smtp").port, 587);
        assert_eq!(password.as_deref(), Some("pw"));
        assert_eq!(settings.failing_runs, 3);
        let no_server: AlertSettingsInput =
            serde_json::from_value(serde_json::json!({"emails": ["ops@example.com"]}))
                .expect("input");
        assert!(no_server.parse().expect_err("no smtp").mentions("smtp"));
    }

    #[test]
    fn the_log_target_alone_is_a_target_and_old_settings_read_without_it() {
        let input: AlertSettingsInput =
            serde_json::from_value(serde_json::json!({"log": true})).expect("input");
        let (settings, _) = input.parse().expect("valid");
        assert!(settings.log && settings.has_target());
        assert!(!AlertSettings::default().has_target());
        let stored: AlertSettings = serde_json::from_value(serde_json::json!({
            "webhook_url": null, "emails": [], "smtp": null, "failing_runs": 3
        }))
        .expect("settings saved before `log` existed");
        assert!(!stored.log && !stored.has_target());
        let bad: Result<AlertSettingsInput, _> =
            serde_json::from_value(serde_json::json!({"log": "yes"}));
        assert!(bad.is_err(), "`log` takes true or false");
    }
}
