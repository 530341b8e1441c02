//! `/containerLogs`: reads the container's CRI log file and streams it out,
//! following it while the container runs when asked (polling the file, no
//! inotify: a tenth of a second is quick enough for people watching logs).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::agent::cri::{api, Cri};
use crate::apiserver::upgrade::{self, Body};

use super::logs::{tail_offset, Formatter, LogOptions, TAIL_SLACK};
use super::lookup;
use super::params::Target;

const POLL: Duration = Duration::from_millis(100);
/// How often a follow at the end of the file asks whether the container
/// is still running.
const STATE_CHECK: Duration = Duration::from_secs(1);
const CHUNK: usize = 64 * 1024;

/// An error answer: status and the text upstream's kubelet would write.
pub type Refusal = (StatusCode, String);

fn internal(e: impl std::fmt::Display) -> Refusal {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Answers a log request: finds the instance, opens its file, and returns
/// the body that streams it.
pub async fn serve(cri: &Cri, t: &Target, opts: LogOptions) -> Result<Body, Refusal> {
    let list = lookup::instances(cri, t).await.map_err(internal)?;
    let instance = if opts.previous {
        lookup::previous(&list).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "previous terminated container {:?} in pod {:?} not found",
                    t.container, t.pod
                ),
            )
        })?
    } else {
        lookup::current(&list).ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "container {:?} in pod {:?} is waiting to start: ContainerCreating",
                    t.container, t.pod
                ),
            )
        })?
    };
    let id = instance.id.clone();
    let status = lookup::status(cri, &id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("container {:?} in pod {:?} is gone", t.container, t.pod),
            )
        })?;
    if status.state == api::ContainerState::ContainerCreated as i32 {
        return Err((
            StatusCode::BAD_REQUEST,
            format!(
                "container {:?} in pod {:?} is waiting to start: ContainerCreating",
                t.container, t.pod
            ),
        ));
    }
    let path = PathBuf::from(&status.log_path);
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        internal(format!(
            "failed to open log file {:?} of container {:?}: {e}",
            path.display().to_string(),
            t.container
        ))
    })?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let cri = cri.clone();
    tokio::spawn(async move {
        if let Err(e) = pump(file, cri, id, opts, tx).await {
            tracing::debug!(path = %path.display(), error = %e, "log stream ended with an error");
        }
    });
    let frames = ReceiverStream::new(rx).map(|b| Ok(Frame::data(b)));
    Ok(StreamBody::new(frames).boxed_unsync())
}

/// Whether the container has stopped for good (exited or removed).
async fn stopped(cri: &Cri, id: &str) -> bool {
    match lookup::status(cri, id).await {
        Ok(None) => true,
        Ok(Some(s)) => s.state == api::ContainerState::ContainerExited as i32,
        // The runtime being away says nothing about the container.
        Err(_) => false,
    }
}

async fn pump(
    mut file: tokio::fs::File,
    cri: Cri,
    id: String,
    opts: LogOptions,
    tx: mpsc::Sender<Bytes>,
) -> std::io::Result<()> {
    let len = file.metadata().await?.len();
    let start = match opts.tail {
        Some(n) => {
            let mut std_file = file.try_clone().await?.into_std().await;
            tokio::task::spawn_blocking(move || {
                tail_offset(&mut std_file, len, n.saturating_add(TAIL_SLACK), CHUNK)
            })
            .await
            .map_err(std::io::Error::other)??
        }
        None => 0,
    };
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut fmt = Formatter::new(&opts);
    let mut pos = start;
    let mut backlog = true;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut last_check: Option<Instant> = None;
    let mut exited = false;
    loop {
        let n = file.read(&mut chunk).await?;
        let mut out = Vec::new();
        if n > 0 {
            pending.extend_from_slice(&chunk[..n]);
            pos += n as u64;
            let mut used = 0;
            while let Some(i) = pending[used..].iter().position(|c| *c == b'\n') {
                fmt.push(&pending[used..used + i], &mut out);
                used += i + 1;
            }
            pending.drain(..used);
        }
        // The tail is cut once the file as it was at the start is read.
        if backlog && (n == 0 || pos >= len) {
            fmt.end_backlog(&mut out);
            backlog = false;
        }
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return Ok(()); // the client went away
        }
        if fmt.done() {
            return Ok(());
        }
        if n > 0 {
            continue;
        }
        // At the end of the file.
        if !opts.follow || exited {
            return Ok(());
        }
        if last_check.is_none_or(|t| t.elapsed() >= STATE_CHECK) {
            last_check = Some(Instant::now());
            if stopped(&cri, &id).await {
                // Read once more: lines written just before the exit.
                exited = true;
                continue;
            }
        }
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A refusal as the kubelet's plain-text answer.
pub fn refusal_response((code, text): Refusal) -> http::Response<Body> {
    upgrade::text(code, &text)
}
