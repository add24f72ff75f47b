//! A `surechat serve` (or `demo`) process started by a test: spawned from the test's own
//! `Command` (each test sets its own arguments and settings), known by the address it prints, and
//! killed and reaped when dropped, so no test leaves a server running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::Http;

/// What the server prints once it listens, before its base URL.
const LISTENING: &str = "surechat listening on ";

/// A running server process.
pub struct Served {
    /// The process.
    pub child: Child,
    /// `http://IP:PORT`.
    pub base: String,
}

impl Served {
    /// Spawns `command` (its stdout is taken) and waits until the server says where it listens.
    pub fn spawn(command: &mut Command) -> Served {
        Served::try_spawn(command, |_| {}).expect("the server prints its address")
    }

    /// Like [`Served::spawn`], handing every line printed before the address to `line` (the
    /// demo prints tokens there); `None` if the process exits before listening (its port still
    /// taken, for instance).
    pub fn try_spawn(command: &mut Command, mut line: impl FnMut(&str)) -> Option<Served> {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        loop {
            match lines.next() {
                Some(Ok(text)) => match text.strip_prefix(LISTENING) {
                    Some(base) => {
                        return Some(Served {
                            child,
                            base: base.to_owned(),
                        })
                    }
                    None => line(&text),
                },
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// An HTTP client for it.
    pub fn http(&self) -> Http {
        Http::new(&self.base)
    }

    /// Its WebSocket endpoint, `ws://IP:PORT/v1/ws`.
    pub fn ws(&self) -> String {
        self.base.replacen("http", "ws", 1) + "/v1/ws"
    }

    /// `IP:PORT`.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
