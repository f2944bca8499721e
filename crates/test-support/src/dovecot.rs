//! The test Dovecot that `scripts/peers.sh start_dovecot` runs on loopback
//! (its settings come from `MAILFERRY_TEST_DOVECOT_*`). Each test gets a
//! mailbox user of its own, so tests running at once never see each
//! other's mail; mail goes in and is read back with `doveadm`, not through
//! mailferry's IMAP client, so what the tests see is the server's word.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Dovecot {
    pub host: String,
    /// Implicit TLS.
    pub imaps_port: u16,
    /// Plain, with STARTTLS.
    pub imap_port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: String,
    conf: PathBuf,
    ctl: PathBuf,
}

/// A message as `doveadm fetch` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMail {
    pub uid: u32,
    pub flags: Vec<String>,
    pub message_id: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts a Dovecot for them (or `source scripts/peers.sh && start_dovecot`)")
    })
}

impl Dovecot {
    pub fn from_env() -> Self {
        let ca = var("MAILFERRY_TEST_DOVECOT_CA");
        Self {
            host: var("MAILFERRY_TEST_DOVECOT_HOST"),
            imaps_port: var("MAILFERRY_TEST_DOVECOT_IMAPS_PORT")
                .parse()
                .expect("port"),
            imap_port: var("MAILFERRY_TEST_DOVECOT_IMAP_PORT")
                .parse()
                .expect("port"),
            ca_pem: std::fs::read_to_string(&ca).expect("the Dovecot CA"),
            conf: PathBuf::from(var("MAILFERRY_TEST_DOVECOT_CONF")),
            ctl: PathBuf::from(var("MAILFERRY_TEST_DOVECOT_CTL")),
        }
    }

    fn dir(&self) -> &Path {
        self.conf
            .parent()
            .expect("the config lives in Dovecot's dir")
    }

    /// A new mailbox user with a password, with the folders `Exported`,
    /// `Error`, `Archive/Invoices`, `INBOX/Invoices` (one name, two parents)
    /// and `Archiv/Überweisungen` (modified UTF-7 on the wire).
    pub fn new_user(&self) -> (String, String) {
        let user = format!("t{}@example.test", uuid::Uuid::new_v4().simple());
        let password = format!("pw \"{}\" ü", uuid::Uuid::new_v4().simple());
        // Dovecot reads a passwd-file again when its modification time
        // changes, in whole seconds: tests adding users in the same second
        // move it forward a second each, so none goes unnoticed.
        for (file, line) in [
            ("passwd", format!("{user}:{{PLAIN}}{password}\n")),
            ("userdb", format!("{user}::::::\n")),
        ] {
            let path = self.dir().join(file);
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("the users file");
            (&f).write_all(line.as_bytes()).expect("add the user");
            let before = f.metadata().and_then(|m| m.modified()).expect("mtime");
            let later = std::cmp::max(std::time::SystemTime::now(), before)
                + std::time::Duration::from_secs(1);
            f.set_modified(later).expect("move the mtime on");
        }
        // The auth process notices the change within a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.user_exists(&user) || !self.logs_in(&user, &password) {
            assert!(
                std::time::Instant::now() < deadline,
                "Dovecot did not pick up the new user {user}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        for folder in [
            "Exported",
            "Error",
            "Archive/Invoices",
            "INBOX/Invoices",
            "Archiv/Überweisungen",
        ] {
            self.doveadm(&["mailbox", "create", "-u", &user, folder], None);
        }
        (user, password)
    }

    fn user_exists(&self, user: &str) -> bool {
        Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .args(["user", user])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn logs_in(&self, user: &str, password: &str) -> bool {
        Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .args(["auth", "test", user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn doveadm(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let mut cmd = Command::new("doveadm");
        cmd.arg("-c").arg(&self.conf).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("doveadm");
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes).expect("doveadm stdin");
        }
        let out = child.wait_with_output().expect("doveadm");
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Delivers `raw` into `folder` of `user`.
    pub fn save(&self, user: &str, folder: &str, raw: &[u8]) {
        self.doveadm(&["save", "-u", user, "-m", folder], Some(raw));
    }

    /// The mails of `folder`, by UID.
    pub fn mails(&self, user: &str, folder: &str) -> Vec<StoredMail> {
        let out = self.doveadm(
            &[
                "-f",
                "tab",
                "fetch",
                "-u",
                user,
                "uid flags hdr.message-id",
                "mailbox",
                folder,
                "ALL",
            ],
            None,
        );
        out.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut cols = line.split('\t');
                StoredMail {
                    uid: cols.next().unwrap_or("0").parse().unwrap_or(0),
                    flags: cols
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                    message_id: cols.next().unwrap_or("").trim().to_owned(),
                }
            })
            .collect()
    }

    /// `stop`, `start` or `restart` the server (for tests of a server that
    /// goes away mid-run).
    pub fn ctl(&self, what: &str) {
        let status = Command::new(&self.ctl)
            .arg(what)
            .status()
            .expect("dovecot ctl");
        assert!(status.success(), "dovecot {what}");
    }
}
