//! Most of the WAL checkpointing off the writer's path. SQLite checkpoints on the connection whose
//! commit takes the WAL past 1,000 pages: the writer thread itself copies those pages into the
//! database file and fsyncs it, and every send queued meanwhile waits. This thread, poked after
//! the writer's commits, runs a `PASSIVE` checkpoint on a connection of its own, which never
//! blocks the writer or the readers, so that when the writer's own checkpoint comes, most pages
//! are copied already. The writer's stays on: only a checkpoint between two of its transactions
//! catches up with the end of the WAL and lets the next one start it over. (With the writer's
//! turned off, the WAL of a steady load was never caught up and grew by gigabytes a minute.)
//! Durability does not depend on either: every commit is in the fsync'd WAL before it is
//! acknowledged; a checkpoint only moves committed pages into the main file.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// The shortest time between two checkpoints: under a steady load a checkpoint copies what this
/// much time committed, in one fsync of the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Wakes the checkpoint thread; it stops when this is dropped (after a last checkpoint).
pub(super) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread on a connection of its own to `path`.
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Checkpointer> {
        let conn = super::open_connection(path, false, busy_timeout)?;
        let (wake, woken) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            // Under 16 bytes, so that `ps -T` and `perf` tell it from `surechat-sqlite-writer`.
            .name("surechat-ckpt".into())
            .spawn(move || run(&conn, &woken))
            .expect("spawning the checkpoint thread");
        Ok(Checkpointer { wake })
    }

    /// Something was committed: a checkpoint is due within [`CHECKPOINT_INTERVAL`]. Never waits.
    pub(super) fn committed(&self) {
        // Full means a checkpoint is already due: one is enough.
        let _ = self.wake.try_send(());
    }
}

fn run(conn: &Connection, woken: &mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        checkpoint(conn);
        // Commits during the pause are picked up by the next checkpoint, in one pass.
        std::thread::sleep(CHECKPOINT_INTERVAL);
    }
    checkpoint(conn);
}

fn checkpoint(conn: &Connection) {
    // PASSIVE copies what no reader still needs, without waiting on anyone. A failure costs only
    // a larger WAL until the next one.
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    if let Err(err) = done {
        tracing::warn!(%err, "a WAL checkpoint failed; the next one will try again");
    }
}
