//! Configuration: built-in defaults, then `--config mailferry.toml`, then
//! `MAILFERRY_*` environment variables and command-line flags (clap reads
//! both). A typo in the file is an error, not a silently ignored key.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// Options shared by every command; each also reads its `MAILFERRY_*` variable.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with any of the settings below (keys as in the env names, lower case, without the prefix).
    #[arg(long, global = true, env = "MAILFERRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "MAILFERRY_LISTEN")]
    pub listen: Option<String>,
    /// Base URL users and Microsoft reach this service under; redirect URIs derive from it [default: http://{listen}].
    #[arg(long, global = true, env = "MAILFERRY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// One OAuth redirect URI for every client, e.g. https://auth.example.com/api/v2/importers/email/authenticate/end,
    /// so a single Azure app registration serves them all [default: {public_url}/api/v2/importers/email/authenticate/end].
    #[arg(long, global = true, env = "MAILFERRY_OAUTH_REDIRECT_URL")]
    pub oauth_redirect_url: Option<String>,
    /// Directory for the SQLite database, the master key and the document spool [default: ./data].
    #[arg(long, global = true, env = "MAILFERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB` [default: sqlite://{data_dir}/mailferry.db].
    #[arg(
        long,
        global = true,
        env = "MAILFERRY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// File holding the database URL (its first line), so the password need not sit in the
    /// environment (a container or systemd credential); instead of --database-url.
    #[arg(long, global = true, env = "MAILFERRY_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// File holding the master key that seals secrets; created (mode 0600) when absent [default: {data_dir}/master.key].
    #[arg(long, global = true, env = "MAILFERRY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format: `human` or `json` [default: human].
    #[arg(long, global = true, env = "MAILFERRY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Importers this instance works at once, over all clients [default: 4 per core, 4 to 64].
    #[arg(long, global = true, env = "MAILFERRY_IMPORT_CONCURRENCY")]
    pub import_concurrency: Option<usize>,
    /// Subscribe Graph importers to change notifications at {public_url}/hooks/graph: `true` or `false` [default: true when public_url is https].
    #[arg(long, global = true, env = "MAILFERRY_GRAPH_NOTIFICATIONS")]
    pub graph_notifications: Option<bool>,
    /// Watch IMAP importers' Inboxes with IDLE and import new mail at once: `true` or `false` [default: true].
    #[arg(long, global = true, env = "MAILFERRY_IMAP_IDLE")]
    pub imap_idle: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    public_url: Option<String>,
    oauth_redirect_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    master_key_file: Option<PathBuf>,
    log_format: Option<String>,
    import_concurrency: Option<usize>,
    graph_notifications: Option<bool>,
    imap_idle: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The effective settings, every default resolved.
#[derive(Clone)]
pub struct Settings {
    pub listen: String,
    pub public_url: String,
    /// `None`: each redirect URI derives from `public_url`.
    pub oauth_redirect_url: Option<String>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_key_file: PathBuf,
    pub log_format: LogFormat,
    pub import_concurrency: usize,
    /// Graph importers subscribe to change notifications (push).
    pub graph_notifications: bool,
    /// IMAP importers' Inboxes are watched with IDLE (push).
    pub imap_idle: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("oauth_redirect_url", &self.oauth_redirect_url)
            .field("data_dir", &self.data_dir)
            .field("database_url", &store::redact_url(&self.database_url))
            .field("master_key_file", &self.master_key_file)
            .field("log_format", &self.log_format)
            .field("import_concurrency", &self.import_concurrency)
            .field("graph_notifications", &self.graph_notifications)
            .field("imap_idle", &self.imap_idle)
            .finish()
    }
}

impl Settings {
    pub fn resolve(args: &SettingsArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "listen: `{listen}` is not an address: write IP:PORT, e.g. 127.0.0.1:8080 or 0.0.0.0:8080"
            );
        }
        let public_url = args
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| format!("http://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let host = public_url
            .strip_prefix("https://")
            .or_else(|| public_url.strip_prefix("http://"));
        if host.is_none_or(str::is_empty) {
            bail!(
                "public_url: `{public_url}` is not an http(s) URL: write e.g. https://mailferry.example.com"
            );
        }
        let oauth_redirect_url = args
            .oauth_redirect_url
            .clone()
            .or(file.oauth_redirect_url)
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty());
        if let Some(url) = &oauth_redirect_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || !url.ends_with("/api/v2/importers/email/authenticate/end") {
                bail!(
                    "oauth_redirect_url: `{url}` must be an http(s) URL of a mailferry ending in /api/v2/importers/email/authenticate/end, e.g. https://auth.example.com/api/v2/importers/email/authenticate/end"
                );
            }
        }
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let database_url = match (
            args.database_url.clone().or(file.database_url),
            args.database_url_file.clone().or(file.database_url_file),
        ) {
            (Some(_), Some(path)) => bail!(
                "database_url and database_url_file ({}) are both set: keep one (the file keeps the password out of the environment)",
                path.display()
            ),
            (Some(url), None) => url,
            (None, Some(path)) => read_secret_file("database_url_file", &path)?,
            (None, None) => format!("sqlite://{}", data_dir.join("mailferry.db").display()),
        };
        let master_key_file = args
            .master_key_file
            .clone()
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join("master.key"));
        let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(other) => {
                bail!("log_format: `{other}` is not a log format: use `human` or `json`")
            }
        };
        let import_concurrency = match args.import_concurrency.or(file.import_concurrency) {
            None => runtime::default_import_concurrency(),
            Some(0) => bail!(
                "import_concurrency: 0 would import nothing: give at least 1 (the default is 4 per core)"
            ),
            Some(n) => n,
        };
        // Graph posts only to https; http is for the emulator on loopback.
        let graph_notifications = args
            .graph_notifications
            .or(file.graph_notifications)
            .unwrap_or_else(|| public_url.starts_with("https://"));
        Ok(Self {
            listen,
            public_url,
            oauth_redirect_url,
            data_dir,
            database_url,
            master_key_file,
            log_format,
            import_concurrency,
            graph_notifications,
            imap_idle: args.imap_idle.or(file.imap_idle).unwrap_or(true),
        })
    }
}

/// The first line of a `*_file` setting's file, which holds a secret.
fn read_secret_file(setting: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{setting}: cannot read {}: check the path and that mailferry's user may read it",
            path.display()
        )
    })?;
    match text.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => Ok(line.to_owned()),
        _ => bail!(
            "{setting}: {} is empty: write the value on its first line",
            path.display()
        ),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    config::Config::builder()
        .add_source(
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true),
        )
        .build()
        .and_then(|c| c.try_deserialize::<FileSettings>())
        .with_context(|| format!("configuration file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_derive_from_listen_and_data_dir() {
        let s = Settings::resolve(&SettingsArgs::default()).expect("defaults");
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://data/mailferry.db");
        assert_eq!(s.master_key_file, PathBuf::from("data/master.key"));
    }

    #[test]
    fn file_is_read_and_flags_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mailferry.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\npublic_url = \"https://mf.example.com/\"\ndata_dir = \"/var/lib/mf\"\n").expect("write");
        let args = SettingsArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&args).expect("settings");
        assert_eq!(s.listen, "127.0.0.1:9001");
        assert_eq!(s.public_url, "https://mf.example.com");
        assert_eq!(s.database_url, "sqlite:///var/lib/mf/mailferry.db");
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mailferry.toml");
        std::fs::write(&path, "lisen = \"x\"\n").expect("write");
        let err = Settings::resolve(&SettingsArgs {
            config: Some(path),
            ..Default::default()
        })
        .expect_err("typo");
        assert!(format!("{err:#}").contains("lisen"), "{err:#}");
        let err = Settings::resolve(&SettingsArgs {
            listen: Some("localhost".into()),
            ..Default::default()
        })
        .expect_err("bad");
        assert!(err.to_string().starts_with("listen:"));
        let err = Settings::resolve(&SettingsArgs {
            public_url: Some("mf.example.com".into()),
            ..Default::default()
        })
        .expect_err("bad");
        assert!(err.to_string().starts_with("public_url:"));
        let err = Settings::resolve(&SettingsArgs {
            log_format: Some("xml".into()),
            ..Default::default()
        })
        .expect_err("bad");
        assert!(err.to_string().starts_with("log_format:"));
        let err = Settings::resolve(&SettingsArgs {
            oauth_redirect_url: Some("https://auth.example.com/callback".into()),
            ..Default::default()
        })
        .expect_err("bad");
        assert!(err.to_string().starts_with("oauth_redirect_url:"));
    }

    #[test]
    fn a_central_redirect_uri_is_kept_as_given() {
        let s = Settings::resolve(&SettingsArgs {
            oauth_redirect_url: Some(
                "https://auth.example.com/api/v2/importers/email/authenticate/end".into(),
            ),
            ..Default::default()
        })
        .expect("settings");
        assert_eq!(
            s.oauth_redirect_url.as_deref(),
            Some("https://auth.example.com/api/v2/importers/email/authenticate/end")
        );
        assert_eq!(
            Settings::resolve(&SettingsArgs::default())
                .expect("defaults")
                .oauth_redirect_url,
            None
        );
    }

    #[test]
    fn the_database_url_can_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db-url");
        std::fs::write(&path, "postgres://mf:hunter2@db:5432/mf\n").expect("write");
        let from_file = |path: &Path| SettingsArgs {
            database_url_file: Some(path.to_path_buf()),
            ..Default::default()
        };
        let s = Settings::resolve(&from_file(&path)).expect("settings");
        assert_eq!(s.database_url, "postgres://mf:hunter2@db:5432/mf");

        let both = SettingsArgs {
            database_url: Some("sqlite://x.db".into()),
            ..from_file(&path)
        };
        let err = Settings::resolve(&both).expect_err("both").to_string();
        assert!(err.contains("both set"), "{err}");

        let missing = dir.path().join("nope");
        let err = format!(
            "{:#}",
            Settings::resolve(&from_file(&missing)).expect_err("missing")
        );
        assert!(
            err.starts_with("database_url_file: cannot read") && err.contains("nope"),
            "{err}"
        );

        std::fs::write(&path, "\n").expect("write");
        let err = Settings::resolve(&from_file(&path))
            .expect_err("empty")
            .to_string();
        assert!(err.contains("is empty"), "{err}");
    }

    #[test]
    fn debug_hides_the_database_password() {
        let s = Settings::resolve(&SettingsArgs {
            database_url: Some("postgres://mf:hunter2@db:5432/mf".into()),
            ..Default::default()
        })
        .expect("settings");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
