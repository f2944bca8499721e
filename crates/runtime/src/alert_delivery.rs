//! Sending an alert: a line in the server's log, a JSON POST to the
//! client's webhook (bounded retries, as the webhook sink does) and an
//! e-mail through its SMTP server (lettre; STARTTLS, TLS or, for a trusted
//! relay, none).

use std::time::Duration;

use domain::alert::{AlertEvent, AlertSettings, Problem, SmtpSecurity, SmtpSettings};
use jiff::Timestamp;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// One alert as it is sent.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    pub event: AlertEvent,
    pub client: &'a str,
    pub problem: &'a Problem,
    pub raised_at: Timestamp,
    pub at: Timestamp,
}

/// The `tracing` target of the log target's lines, so a log collector (or
/// `RUST_LOG`) can pick alerts out of the rest.
pub const LOG_TARGET: &str = "mailferry::alert";
/// How the log target is named in a delivery.
pub const LOG_DELIVERED: &str = "the server log";

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(15);

impl Alert<'_> {
    fn subject(&self) -> String {
        format!(
            "[mailferry] {}: {}",
            self.event.headline(),
            self.problem.summary
        )
    }

    fn text(&self) -> String {
        let p = self.problem;
        let what = match self.event {
            AlertEvent::Resolved => "This problem is gone; nothing more to do.".to_owned(),
            _ => format!("What to do: {}", p.fix),
        };
        format!(
            "{}\n\n{what}\n\nClient: {}\nImporter: {} ({})\nSince: {} (UTC)\n",
            p.summary,
            self.client,
            p.importer_name,
            p.importer_id,
            self.raised_at.strftime("%Y-%m-%d %H:%M"),
        )
    }

    /// The log target's line: the subject and what to do, in one line.
    pub fn log_line(&self) -> String {
        let p = self.problem;
        let what = match self.event {
            AlertEvent::Resolved => "nothing more to do".to_owned(),
            _ => p.fix.clone(),
        };
        format!(
            "{} (client {}, importer {}); what to do: {what}",
            self.subject(),
            self.client,
            p.importer_name,
        )
    }

    fn json(&self) -> serde_json::Value {
        let p = self.problem;
        json!({
            "event": self.event,
            "client": self.client,
            "importer": { "id": p.importer_id, "name": p.importer_name },
            "problem": p.key,
            "severity": p.severity,
            "summary": p.summary,
            "fix": p.fix,
            "raised_at": self.raised_at.to_string(),
            "at": self.at.to_string(),
        })
    }
}

/// What became of an alert: the targets that took it and why the others
/// did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: Vec<String>,
    pub failed: Vec<String>,
}

/// Sends `alert` to every target of `settings`.
pub async fn send(
    settings: &AlertSettings,
    smtp_password: Option<&SecretString>,
    alert: &Alert<'_>,
) -> Delivery {
    let mut delivered = Vec::new();
    let mut failed = Vec::new();
    if settings.log {
        // WARN whatever the severity: the default filter (`info`) shows it,
        // and an alert is by nature something to look at.
        tracing::warn!(
            target: LOG_TARGET,
            event = ?alert.event,
            problem = %alert.problem.key,
            severity = ?alert.problem.severity,
            importer_id = %alert.problem.importer_id,
            "{}",
            alert.log_line()
        );
        delivered.push(LOG_DELIVERED.to_owned());
    }
    if let Some(url) = &settings.webhook_url {
        match post(url, &alert.json()).await {
            Ok(()) => delivered.push(format!("webhook {}", without_query(url))),
            Err(e) => failed.push(format!("webhook {}: {e}", without_query(url))),
        }
    }
    if let Some(smtp) = &settings.smtp
        && !settings.emails.is_empty()
    {
        match email(smtp, smtp_password, &settings.emails, alert).await {
            Ok(()) => delivered.push(format!("e-mail to {}", settings.emails.join(", "))),
            Err(e) => failed.push(format!("e-mail via {}:{}: {e}", smtp.host, smtp.port)),
        }
    }
    Delivery { delivered, failed }
}

fn without_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// POST with the webhook sink's rules: a 2xx takes it; a 4xx other than
/// 408/425/429 is final; anything else is tried again, 3 times in all.
async fn post(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut wait = Duration::from_millis(500);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match http.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                last = format!("answered {status}");
                let retry = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
                if !retry {
                    return Err(format!("{last}; check webhook_url"));
                }
            }
            Err(e) => last = format!("not reachable ({e})"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(format!("{last} after {ATTEMPTS} attempts"))
}

async fn email(
    smtp: &SmtpSettings,
    password: Option<&SecretString>,
    to: &[String],
    alert: &Alert<'_>,
) -> Result<(), String> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| format!("smtp.from `{}` is not an address ({e})", smtp.from))?;
    let mut message = Message::builder().from(from).subject(alert.subject());
    for address in to {
        message = message.to(address
            .parse()
            .map_err(|e| format!("`{address}` is not an address ({e})"))?);
    }
    let message = message
        .body(alert.text())
        .map_err(|e| format!("the e-mail could not be built: {e}"))?;
    let tls = |smtp: &SmtpSettings| -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(smtp.host.clone());
        if let Some(pem) = &smtp.tls_ca_pem {
            builder = builder.add_root_certificate(
                Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| format!("smtp.tls_ca_pem: {e}"))?,
            );
        }
        builder
            .build_rustls()
            .map_err(|e| format!("TLS settings: {e}"))
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .timeout(Some(TIMEOUT));
    transport = match smtp.security {
        SmtpSecurity::Starttls => transport.tls(Tls::Required(tls(smtp)?)),
        SmtpSecurity::Tls => transport.tls(Tls::Wrapper(tls(smtp)?)),
        SmtpSecurity::None => transport.tls(Tls::None),
    };
    if let Some(user) = &smtp.username {
        let password = password
            .map(|p| p.expose_secret().to_owned())
            .ok_or("smtp.password is not set: enter it in the alert settings")?;
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e}; check smtp.host, smtp.port, smtp.security and the login"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use domain::alert::Severity;

    use super::*;

    /// What the subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    fn problem() -> Problem {
        Problem {
            key: "reauth_required:imp-1".to_owned(),
            importer_id: "imp-1".to_owned(),
            importer_name: "Invoices".to_owned(),
            severity: Severity::Critical,
            summary: "importer “Invoices” needs re-authentication".to_owned(),
            fix: "press Authenticate and sign in again".to_owned(),
        }
    }

    // Current-thread: the capturing subscriber is this thread's default.
    #[tokio::test(flavor = "current_thread")]
    async fn the_log_target_writes_one_warn_line_naming_the_importer_and_the_fix() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let problem = problem();
        let now: Timestamp = "2026-03-29T08:00:00Z".parse().expect("ts");
        let alert = |event| Alert {
            event,
            client: "Contoso",
            problem: &problem,
            raised_at: now,
            at: now,
        };

        let settings = AlertSettings {
            log: true,
            ..AlertSettings::default()
        };
        let delivery = send(&settings, None, &alert(AlertEvent::Raised)).await;
        assert_eq!(delivery.delivered, [LOG_DELIVERED]);
        assert!(delivery.failed.is_empty(), "{delivery:?}");
        let text = captured.text();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(LOG_TARGET)).collect();
        assert_eq!(lines.len(), 1, "{text}");
        for part in [
            "WARN",
            "[mailferry] Action needed: importer “Invoices” needs re-authentication",
            "client Contoso",
            "what to do: press Authenticate and sign in again",
            "problem=reauth_required:imp-1",
        ] {
            assert!(lines[0].contains(part), "{part}: {}", lines[0]);
        }

        let resolved = send(&settings, None, &alert(AlertEvent::Resolved)).await;
        assert_eq!(resolved.delivered, [LOG_DELIVERED]);
        assert!(
            captured
                .text()
                .lines()
                .any(|l| l.contains("[mailferry] Resolved:") && l.contains("nothing more to do")),
            "{}",
            captured.text()
        );

        // Without `log` nothing is written and nothing delivered.
        let before = captured.text().len();
        let none = send(&AlertSettings::default(), None, &alert(AlertEvent::Raised)).await;
        assert_eq!(none, Delivery::default());
        assert_eq!(captured.text().len(), before, "{}", captured.text());
    }
}
