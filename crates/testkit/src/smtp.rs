//! A real SMTP server for tests that send email: a Python `aiosmtpd` process (the script is
//! `smtp_sink.py`, built into this crate) on a free port of 127.0.0.1 that accepts every message
//! and keeps it in a private directory, where [`Sink::messages`] reads it back with its body
//! decoded. It can be stopped and started again on the same port (the relay going down and
//! coming back) and told to refuse every message with `451` (a temporary failure). Dropping the
//! sink kills the process and removes the directory.
//!
//! It needs Debian's `python3-aiosmtpd` (`scripts/test` installs it); without it the sink panics
//! saying so rather than letting a test pass without email.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's source, run with `python3 -c`.
const SCRIPT: &str = include_str!("smtp_sink.py");

/// What the script prints once it accepts connections.
const LISTENING: &str = "listening";

/// Attempts to start on a free port: another process may take the port between picking it and
/// the sink binding it.
const START_ATTEMPTS_MAX: u32 = 3;

/// How often [`Sink::wait_for`] looks at the directory.
const POLL: Duration = Duration::from_millis(20);

/// Interpreters tried in turn when `SURECHAT_PYTHON` is not set: the first `python3` on the path
/// may be one (pyenv's, say) that cannot see Debian's packages.
const PYTHONS: [&str; 2] = ["python3", "/usr/bin/python3"];

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The message as received (headers and encoded body, CRLF line ends).
    pub raw: String,
    /// Every header in order, its value decoded (RFC 2047 words turned back into Unicode).
    pub headers: Vec<(String, String)>,
    /// The `text/plain` body with its transfer encoding and charset undone, lines ending in
    /// `\n`; empty if the message has no plain-text part.
    pub text: String,
}

impl Received {
    /// The decoded value of the first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running (or stopped) SMTP sink.
pub struct Sink {
    python: String,
    port: u16,
    /// Holds `messages/`, `tmp/`, the `fail` switch and `log`; removed on drop.
    root: tempfile::TempDir,
    /// The process and its stdin (closing stdin also ends it); `None` while stopped.
    process: Option<(Child, ChildStdin)>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("port", &self.port)
            .field("root", &self.root.path())
            .field("running", &self.process.is_some())
            .finish()
    }
}

impl Sink {
    /// Starts a sink that accepts every message.
    pub fn start() -> Sink {
        Sink::launch(false)
    }

    /// Starts a sink that answers `451` to every message until [`Sink::set_failing`]`(false)`.
    pub fn start_failing() -> Sink {
        Sink::launch(true)
    }

    fn launch(failing: bool) -> Sink {
        let root = tempfile::Builder::new()
            .prefix("surechat-smtp-")
            .tempdir()
            .expect("creating the SMTP sink's directory");
        let mut sink = Sink {
            python: python(),
            port: 0,
            root,
            process: None,
        };
        sink.set_failing(failing);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            sink.port = free_port();
            match sink.spawn() {
                Ok(()) => return sink,
                Err(err) => last = err,
            }
        }
        panic!("the SMTP sink did not start in {START_ATTEMPTS_MAX} attempts: {last}");
    }

    /// The port it listens on, the same across [`Sink::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1`, where it listens.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Every message accepted so far (also those from before a restart), in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        let dir = self.root.path().join("messages");
        let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names.iter().map(|path| read(path)).collect()
    }

    /// Waits until at least `count` messages were accepted and returns them all; panics after
    /// `timeout` with what did arrive and the server's log.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the SMTP sink received {} of {count} messages in {timeout:?}: {messages:#?}\nlog:\n{}",
                    messages.len(),
                    self.log()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// While `failing`, every message is refused with `451` at the end of DATA (the connection,
    /// `MAIL FROM` and `RCPT TO` still succeed). Takes effect for the next message.
    pub fn set_failing(&self, failing: bool) {
        let switch = self.root.path().join("fail");
        if failing {
            std::fs::write(&switch, b"").expect("creating the sink's fail switch");
        } else if let Err(err) = std::fs::remove_file(&switch) {
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        }
    }

    /// Kills the server: from its return until [`Sink::restart`], connections to the port are
    /// refused. Messages already accepted stay readable.
    pub fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.process.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (stopping it first if it runs);
    /// returns once it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(err) = self.spawn() {
            panic!("restarting the SMTP sink on port {}: {err}", self.port);
        }
    }

    /// What the server printed to stderr so far (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("log")).unwrap_or_default()
    }

    /// Spawns the script on `self.port` and waits for it to say it listens.
    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("log"))
            .map_err(|e| format!("opening the sink's log: {e}"))?;
        let mut child = Command::new(&self.python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(self.port.to_string())
            .arg(self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.python))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        // The first line comes once the socket is bound; the stream ends if the script fails
        // (the port taken, for instance). Read on a thread so that a script that hangs instead
        // fails the test after WAIT.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let failure = match rx.recv_timeout(crate::WAIT) {
            Ok(line) if line.trim_end() == LISTENING => {
                self.process = Some((child, stdin));
                return Ok(());
            }
            Ok(_) => "exited before listening",
            Err(_) => "did not listen in time",
        };
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "the sink on port {} {failure}; log:\n{}",
            self.port,
            self.log()
        ))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One saved message.
fn read(path: &Path) -> Received {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let string = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Received {
        from: string(&json["from"]),
        to: json["to"]
            .as_array()
            .map(|to| to.iter().map(string).collect())
            .unwrap_or_default(),
        raw: string(&json["raw"]),
        headers: json["headers"]
            .as_array()
            .map(|headers| {
                headers
                    .iter()
                    .map(|pair| (string(&pair[0]), string(&pair[1])))
                    .collect()
            })
            .unwrap_or_default(),
        text: string(&json["text"]),
    }
}

/// The interpreter to run the sink with: `SURECHAT_PYTHON` when set, else the first of [`PYTHONS`];
/// panics if it cannot import `aiosmtpd`.
fn python() -> String {
    let candidates: Vec<String> = match std::env::var("SURECHAT_PYTHON") {
        Ok(python) => vec![python],
        Err(_) => PYTHONS.iter().map(|p| p.to_string()).collect(),
    };
    candidates
        .iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", "import aiosmtpd"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the SMTP sink needs Python's aiosmtpd, which none of {candidates:?} can import: \
                 install it (apt-get install python3-aiosmtpd) or point SURECHAT_PYTHON at a \
                 python3 that has it"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}
