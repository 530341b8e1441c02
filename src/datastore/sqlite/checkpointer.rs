//! WAL checkpoints on their own thread and connection, so a commit never
//! waits for the database file to be written and fsynced. SQLite's
//! autocheckpoint would run them inside the writer's commit and add tens of
//! milliseconds to an unlucky write.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

use crate::datastore::error::Result;

/// WAL pages after which a passive checkpoint is started (4 MiB).
const PASSIVE_PAGES: i32 = 1000;
/// WAL pages after which the checkpoint waits for the writer so the WAL can
/// restart from its beginning (64 MiB); passive checkpoints alone can be
/// starved by a continuous stream of writes.
const TRUNCATE_PAGES: i32 = 16384;

#[derive(Default)]
struct State {
    pages: i32,
    stop: bool,
}

type Signal = Arc<(Mutex<State>, Condvar)>;

pub struct Checkpointer {
    signal: Signal,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Hooks into `writer`'s commits and starts the checkpoint thread.
    pub fn start(path: &Path, writer: &mut Connection) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let signal: Signal = Arc::default();
        let hook_signal = signal.clone();
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
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
            thread: Some(thread),
        })
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
        let mode = if pages >= TRUNCATE_PAGES {
            CheckpointMode::TRUNCATE
        } else {
            CheckpointMode::PASSIVE
        };
        match conn.wal_checkpoint_v2(None::<&str>, mode) {
            Ok((log, done)) => tracing::debug!(pages, log, done, "wal checkpoint"),
            Err(err) => tracing::warn!(%err, "wal checkpoint failed"),
        }
    }
}
