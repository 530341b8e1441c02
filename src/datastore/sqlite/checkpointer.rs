//! WAL checkpoints on their own thread and connection, so a commit never
//! waits for the database file to be written and fsynced. SQLite's
//! autocheckpoint would run them inside the writer's commit and add tens of
//! milliseconds to an unlucky write. Only restarting the WAL (to bound its
//! size) is left to the writer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use crate::datastore::error::Result;

/// WAL pages (1 KiB each, see schema.rs) after which a passive checkpoint
/// is started: 4 MiB.
const PASSIVE_PAGES: i32 = 4096;
/// WAL pages after which the writer itself restarts the WAL between two
/// batches: 16 MiB. Passive checkpoints never restart it while writes keep
/// coming, and another connection cannot win the write lock from a busy
/// writer, so only the writer can bound the file.
pub const RESTART_PAGES: i32 = 16384;

#[derive(Default)]
struct State {
    pages: i32,
    stop: bool,
}

type Signal = Arc<(Mutex<State>, Condvar)>;

pub struct Checkpointer {
    signal: Signal,
    restart: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Hooks into `writer`'s commits and starts the checkpoint thread.
    pub fn start(path: &Path, writer: &mut Connection) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let signal: Signal = Arc::default();
        let hook_signal = signal.clone();
        let restart = Arc::new(AtomicBool::new(false));
        let hook_restart = restart.clone();
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= RESTART_PAGES {
                hook_restart.store(true, Ordering::Release);
            }
            if pages >= PASSIVE_PAGES {
                let (state, cv) = &*hook_signal;
                state.lock().unwrap_or_else(|p| p.into_inner()).pages = pages;
                cv.notify_one();
            }
            Ok(())
        }))?;
        let thread_signal = signal.clone();
        let thread = std::thread::Builder::new()
            .name("datastore-checkpoint".into())
            .spawn(move || run(conn, thread_signal))?;
        Ok(Checkpointer {
            signal,
            restart,
            thread: Some(thread),
        })
    }

    /// Restarts the WAL from its beginning if it grew past `RESTART_PAGES`.
    /// Called by the writer between batches, holding no transaction; most
    /// frames are already copied by the passive checkpoints, so this is short.
    pub fn restart_if_due(&self, writer: &Connection) {
        if !self.restart.swap(false, Ordering::AcqRel) {
            return;
        }
        match writer.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART) {
            Ok((log, done)) => tracing::debug!(log, done, "wal restarted"),
            Err(err) => tracing::warn!(%err, "wal restart failed"),
        }
    }

    pub fn stop(&mut self) {
        {
            let (state, cv) = &*self.signal;
            state.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
            cv.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: Connection, signal: Signal) {
    let (state, cv) = &*signal;
    loop {
        let pages = {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            while s.pages == 0 && !s.stop {
                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                return;
            }
            std::mem::take(&mut s.pages)
        };
        // A connection that has not read the database since the WAL was
        // (re)started does not know the file is in WAL mode, and its
        // checkpoint silently does nothing (log = -1): read the header first.
        if let Err(err) = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0)) {
            tracing::warn!(%err, "reading the database before a checkpoint failed");
        }
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((-1, _)) => tracing::warn!(pages, "wal checkpoint did not run"),
            Ok((log, done)) => tracing::debug!(pages, log, done, "wal checkpoint"),
            Err(err) => tracing::warn!(%err, "wal checkpoint failed"),
        }
    }
}
