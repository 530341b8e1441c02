//! Lifecycle hooks (upstream `pkg/kubelet/lifecycle/handlers.go`): exec,
//! httpGet and sleep handlers for postStart and preStop, with upstream's
//! failure texts.
//!
//! As upstream: an exec hook fails on a non-zero exit; an httpGet hook only
//! when no answer came (any status code is fine), and an HTTPS hook
//! answered in plain HTTP is retried over HTTP; postStart has no time
//! limit; preStop is bounded by the grace period left, after which the
//! kubelet goes on with the kill.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::exec::{self, ExecError};
use super::http::{self, Get, PLAIN_HTTP_ANSWER};
use super::{Error, Target};

/// The waiting reason of a container whose postStart hook failed (upstream
/// `ErrPostStartHook`).
pub const POST_START_HOOK_ERROR: &str = "PostStartHookError";
/// Event reasons of failed hooks (upstream `events.FailedPostStartHook`,
/// `events.FailedPreStopHook`).
pub const REASON_FAILED_POST_START_HOOK: &str = "FailedPostStartHook";
pub const REASON_FAILED_PRE_STOP_HOOK: &str = "FailedPreStopHook";

/// A failed hook: `reason` is the event reason, `message` upstream's event
/// text (also the waiting message after a failed postStart), e.g.
/// `Exec lifecycle hook ([sh -c exit 3]) for Container "app" failed -
/// error: command 'sh -c exit 3' exited with 3: , message: ""`.
/// Displayed as `PostStartHookError: <message>` for postStart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookError {
    pub reason: &'static str,
    pub message: String,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == REASON_FAILED_POST_START_HOOK {
            write!(f, "{POST_START_HOOK_ERROR}: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for HookError {}

/// Runs a postStart handler; on error the kubelet kills the container
/// (reason `FailedPostStartHook`) and reports it waiting with
/// [`POST_START_HOOK_ERROR`].
pub async fn post_start(
    handler: &LifecycleHandler,
    container: &Container,
    target: &Target,
) -> Result<(), HookError> {
    run(handler, container, target).await.map_err(|message| {
        tracing::info!(container = %container.name, id = %target.container_id, %message, "postStart hook failed");
        HookError {
            reason: REASON_FAILED_POST_START_HOOK,
            message,
        }
    })
}

/// Runs a preStop handler for at most `deadline` (the grace period left);
/// running out of time is not an error: the kill goes on, as upstream.
pub async fn pre_stop(
    handler: &LifecycleHandler,
    container: &Container,
    target: &Target,
    deadline: Duration,
) -> Result<(), HookError> {
    match tokio::time::timeout(deadline, run(handler, container, target)).await {
        Err(_) => {
            tracing::info!(
                container = %container.name,
                id = %target.container_id,
                "preStop hook did not complete within the grace period"
            );
            Ok(())
        }
        Ok(result) => result.map_err(|message| {
            tracing::info!(container = %container.name, id = %target.container_id, %message, "preStop hook failed");
            HookError {
                reason: REASON_FAILED_PRE_STOP_HOOK,
                message,
            }
        }),
    }
}

/// One handler; the error is upstream's event text.
async fn run(
    handler: &LifecycleHandler,
    container: &Container,
    target: &Target,
) -> Result<(), String> {
    if let Some(action) = &handler.exec {
        let cmd = action.command.clone().unwrap_or_default();
        // Upstream passes no timeout to hooks' ExecSync.
        let (error, output) = match exec::exec_sync(target, &cmd, None).await {
            Ok(resp) if resp.exit_code == 0 => return Ok(()),
            Ok(resp) => (exec::exit_error(&cmd, &resp), exec::output(&resp)),
            Err(ExecError::TimedOut) => (exec::timed_out(&cmd), String::new()),
            Err(ExecError::Runtime(err)) => (err, String::new()),
        };
        return Err(format!(
            "Exec lifecycle hook ([{}]) for Container {:?} failed - error: {error}, message: {output:?}",
            cmd.join(" "),
            container.name
        ));
    }
    if let Some(action) = &handler.http_get {
        let path = action.path.as_deref().unwrap_or_default();
        return run_http(action, container, target).await.map_err(|error| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {:?} failed - error: {error}",
                container.name
            )
        });
    }
    if let Some(action) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(action.seconds.max(0) as u64)).await;
        return Ok(());
    }
    let err = Error::InvalidHandler(format!("{handler:?}"));
    Err(format!("Cannot run handler: {err}"))
}

async fn run_http(
    action: &k8s_openapi::api::core::v1::HTTPGetAction,
    container: &Container,
    target: &Target,
) -> Result<(), String> {
    let req = Get::new(action, container, target.default_host(), "lifecycle")
        .map_err(|e| e.to_string())?;
    // Any answer will do: upstream does not look at the status.
    let Err(error) = http::get(&req, None).await else {
        return Ok(());
    };
    if !(req.url.https && error.ends_with(PLAIN_HTTP_ANSWER)) {
        return Err(error);
    }
    let mut plain = req.clone();
    plain.url.https = false;
    match http::get(&plain, None).await {
        Ok(_) => {
            tracing::warn!(
                container = %container.name,
                host = %plain.url.host,
                "request to HTTPS lifecycle hook got HTTP response, retry with HTTP succeeded"
            );
            Ok(())
        }
        Err(_) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, SleepAction, TCPSocketAction};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use crate::agent::kubelet::probes::testing::{fake_cri, serve_http, target};

    fn app() -> Container {
        Container {
            name: "app".into(),
            ..Default::default()
        }
    }

    fn http_get(port: u16, path: &str, https: bool) -> LifecycleHandler {
        LifecycleHandler {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(i32::from(port)),
                scheme: https.then(|| "HTTPS".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn http_hooks() {
        let s = serve_http(false).await;
        let t = target();
        assert_eq!(
            post_start(&http_get(s.port, "/ok", false), &app(), &t).await,
            Ok(())
        );
        // The status does not matter, only that an answer came.
        assert_eq!(
            post_start(&http_get(s.port, "/fail", false), &app(), &t).await,
            Ok(())
        );
        let seen = s.seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(seen.headers["user-agent"], "kube-lifecycle/1.33");
        // HTTPS answered in plain HTTP is retried over HTTP.
        let before = s.paths().len();
        let hook = http_get(s.port, "/ok", true);
        assert_eq!(
            pre_stop(&hook, &app(), &t, Duration::from_secs(5)).await,
            Ok(())
        );
        assert_eq!(s.paths().len(), before + 1);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = post_start(&http_get(port, "/ok", false), &app(), &t)
            .await
            .unwrap_err();
        assert_eq!(err.reason, REASON_FAILED_POST_START_HOOK);
        assert_eq!(
            err.to_string(),
            format!(
                "PostStartHookError: HTTP lifecycle hook (/ok) for Container \"app\" failed - \
                 error: Get \"http://127.0.0.1:{port}/ok\": dial tcp 127.0.0.1:{port}: connect: \
                 connection refused"
            )
        );
    }

    #[tokio::test]
    async fn sleep_hooks_and_deadlines() {
        let sleep = |seconds| LifecycleHandler {
            sleep: Some(SleepAction { seconds }),
            ..Default::default()
        };
        let t = target();
        let t0 = tokio::time::Instant::now();
        assert_eq!(post_start(&sleep(1), &app(), &t).await, Ok(()));
        assert_eq!(t0.elapsed().as_secs(), 1);
        let t0 = tokio::time::Instant::now();
        let deadline = Duration::from_millis(500);
        assert_eq!(pre_stop(&sleep(30), &app(), &t, deadline).await, Ok(()));
        let took = t0.elapsed();
        assert!(
            took >= deadline && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn exec_without_runtime_and_invalid_handlers() {
        let t = target();
        let exec = LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["sh".into(), "-c".into(), "true".into()]),
            }),
            ..Default::default()
        };
        let err = pre_stop(&exec, &app(), &t, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.reason, REASON_FAILED_PRE_STOP_HOOK);
        assert!(
            err.message.starts_with(
                "Exec lifecycle hook ([sh -c true]) for Container \"app\" failed - error: "
            ),
            "{}",
            err.message
        );
        let tcp = LifecycleHandler {
            tcp_socket: Some(TCPSocketAction {
                host: None,
                port: IntOrString::Int(80),
            }),
            ..Default::default()
        };
        let err = post_start(&tcp, &app(), &t).await.unwrap_err();
        assert!(
            err.message
                .starts_with("Cannot run handler: invalid handler: "),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn exec_hooks_through_cri() {
        let dir = tempfile::tempdir().unwrap();
        let (t, calls) = fake_cri(dir.path());
        let exec = |cmd: &[&str]| LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(cmd.iter().map(|s| s.to_string()).collect()),
            }),
            ..Default::default()
        };
        assert_eq!(post_start(&exec(&["true"]), &app(), &t).await, Ok(()));
        let err = post_start(&exec(&["sh", "-c", "exit 3"]), &app(), &t)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "PostStartHookError: Exec lifecycle hook ([sh -c exit 3]) for Container \"app\" \
             failed - error: command 'sh -c exit 3' exited with 3: oops, message: \"outoops\""
        );
        // Hooks run without a runtime timeout, as upstream's.
        assert!(calls.lock().unwrap().iter().all(|c| c.timeout == 0));
    }
}
