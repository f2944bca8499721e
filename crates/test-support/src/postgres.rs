//! A PostgreSQL server of a test's own (initdb in a temp dir, a free
//! loopback port), which the test may stop and start again without
//! disturbing the shared one other tests use. As root it runs as the
//! `postgres` user, as PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args…`, as the `postgres` user when this process is root.
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (scripts/install-test-deps.sh)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("a PostgreSQL version with initdb");
        let dir = tempfile::Builder::new()
            .prefix("mailferry-private-pg")
            .tempdir()
            .expect("tempdir");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.arg("postgres:").arg(dir.path());
                    c
                },
                "chown the data dir to postgres",
            );
        }
        let mut initdb = pg_command(&bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres"]);
        run(initdb, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Self { bin, dir, port };
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self) -> Command {
        let mut cmd = pg_command(&self.bin.join("pg_ctl"));
        cmd.arg("-D").arg(self.dir.path().join("data"));
        cmd
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let mut cmd = self.pg_ctl();
        cmd.arg("-l")
            .arg(self.dir.path().join("server.log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.path().display()
            ))
            .arg("start");
        run(cmd, "pg_ctl start");
    }

    /// Stops the server at once, as a crash would (`-m immediate`: no
    /// checkpoint, every connection cut).
    pub fn stop_immediately(&self) {
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "immediate", "-w", "stop"]);
        run(cmd, "pg_ctl stop");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let mut cmd = self.pg_ctl();
        cmd.args(["-m", "immediate", "-w", "stop"]);
        let _ = cmd.output();
    }
}
