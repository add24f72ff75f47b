//! A private PostgreSQL instance for tests and chaos runs that restart or stop the database: a
//! fresh cluster (`initdb`) in a temporary directory, on a free port of 127.0.0.1, with trust
//! authentication and the superuser `surechat`. Restarting the machine's shared PostgreSQL would
//! break every other test running against it; this one belongs to its owner alone.
//!
//! It runs Debian's binaries (`/usr/lib/postgresql/<version>/bin`, the newest version found, or
//! the directory in `SURECHAT_POSTGRES_BIN`). PostgreSQL refuses to run as root, so as root the
//! binaries run as the `postgres` OS user (`runuser -u postgres --`) and the directory is handed
//! to that user. Dropping the instance stops the server (`-m immediate`) and removes the
//! directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian installs one directory per PostgreSQL major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// Attempts to start on a free port: another process may take the port between picking it and
/// the server binding it.
const START_ATTEMPTS_MAX: u32 = 3;

/// How long `pg_ctl` waits for a start, restart or stop before it gives up, in seconds.
const PG_CTL_TIMEOUT_S: u32 = 60;

/// The OS user that runs the server when we are root.
const OS_USER: &str = "postgres";

/// The machine's shared PostgreSQL database the tests use: `SURECHAT_TEST_DATABASE`, or
/// `postgres://root@127.0.0.1:5432/test`. Tests there work in fresh schemas of their own.
pub fn shared_database() -> String {
    std::env::var("SURECHAT_TEST_DATABASE")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// The database superuser the instance is created with.
pub const SUPERUSER: &str = "surechat";

/// A running private PostgreSQL.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// Holds `data/`, the socket and `log`; removed on drop.
    root: Option<tempfile::TempDir>,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// Creates a cluster in a fresh temporary directory and starts it.
    pub fn start() -> Result<Postgres, String> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let root = tempfile::Builder::new()
            .prefix("surechat-postgres-")
            .tempdir()
            .map_err(|e| format!("creating the instance's directory: {e}"))?;
        if as_postgres {
            // The server's user must own its directory (and reach it: the temporary directory
            // is private to its creator).
            run(Command::new("chown").args([
                &format!("{OS_USER}:{OS_USER}"),
                root.path().to_str().ok_or("temporary path is not UTF-8")?,
            ]))?;
        }
        let mut instance = Postgres {
            bin,
            root: Some(root),
            port: 0,
            as_postgres,
        };
        let data = instance.data();
        instance.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
        )?;
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            instance.port = free_port()?;
            match instance.ctl(&["start"]) {
                Ok(()) => return Ok(instance),
                Err(err) => last = err,
            }
        }
        Err(format!(
            "PostgreSQL did not start in {START_ATTEMPTS_MAX} attempts: {last}"
        ))
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `postgres` as the superuser.
    pub fn url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m fast`: connections are terminated, the server shuts down cleanly and
    /// starts again on the same port; returns once it accepts connections.
    pub fn restart(&self) -> Result<(), String> {
        self.ctl(&["restart", "-m", "fast"])
    }

    /// `pg_ctl stop -m fast`: connections are terminated and nothing listens on the port until
    /// [`Postgres::start_again`].
    pub fn stop(&self) -> Result<(), String> {
        self.ctl(&["stop", "-m", "fast"])
    }

    /// Starts a stopped instance again, on the same port; returns once it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        self.ctl(&["start"])
    }

    /// The server's log so far (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root_path().join("log")).unwrap_or_default()
    }

    fn root_path(&self) -> &Path {
        self.root.as_ref().expect("present until drop").path()
    }

    fn data(&self) -> String {
        self.root_path().join("data").display().to_string()
    }

    fn ctl(&self, action: &[&str]) -> Result<(), String> {
        let root = self.root_path().display().to_string();
        // The server's own settings, kept by pg_ctl for restarts: only 127.0.0.1, the socket in
        // our directory (not the shared /var/run/postgresql), enough connections for a few nodes.
        let options = format!(
            "-p {} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=100",
            self.port
        );
        let log = format!("{root}/log");
        let timeout = PG_CTL_TIMEOUT_S.to_string();
        let data = self.data();
        let mut args = vec![
            "-D", &data, "-w", "-t", &timeout, "-l", &log, "-o", &options,
        ];
        args.extend(action);
        self.pg("pg_ctl", &args)
    }

    /// Runs one of the server's binaries, as `postgres` when we are root.
    fn pg(&self, binary: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(binary);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", OS_USER, "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        // pg_ctl's children inherit the working directory, which `postgres` may not be able
        // to read.
        command.args(args).current_dir(self.root_path());
        run(&mut command).map_err(|e| format!("{binary}: {e}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.root.is_some() {
            let _ = self.pg(
                "pg_ctl",
                &["-D", &self.data(), "-w", "-m", "immediate", "stop"],
            );
        }
        if let Some(root) = self.root.take() {
            let _ = root.close();
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ))
    }
}

/// The directory of `initdb` and `pg_ctl`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("SURECHAT_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .map_err(|e| format!("no PostgreSQL under {DEBIAN_ROOT} ({e}); set SURECHAT_POSTGRES_BIN"))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no initdb under {DEBIAN_ROOT}/*/bin; set SURECHAT_POSTGRES_BIN"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}
