//! Exec probes and exec hooks: CRI `ExecSync` in the container.

use std::time::Duration;

use k8s_openapi::api::core::v1::Container;

use super::{resolve, Probed, Target, MAX_OUTPUT};
use crate::agent::cri::api::{ExecSyncRequest, ExecSyncResponse};

/// Extra time the runtime gets past the command's own timeout before we
/// stop waiting for its answer (it kills the command at the timeout).
const RUNTIME_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExecError {
    /// The command ran past its timeout.
    TimedOut,
    /// The runtime could not run it (container gone, runtime down).
    Runtime(String),
}

/// Runs `cmd` in the target container; `timeout` None waits as long as it
/// takes (upstream hooks pass no timeout).
pub(super) async fn exec_sync(
    target: &Target,
    cmd: &[String],
    timeout: Option<Duration>,
) -> Result<ExecSyncResponse, ExecError> {
    let request = ExecSyncRequest {
        container_id: target.container_id.clone(),
        cmd: cmd.to_vec(),
        // CRI takes whole seconds; 0 means no timeout.
        timeout: timeout.map_or(0, |t| t.as_secs().max(1) as i64),
    };
    let mut client = target.cri.runtime();
    let call = client.exec_sync(request);
    let answer = match timeout {
        Some(t) => match tokio::time::timeout(t + RUNTIME_GRACE, call).await {
            Ok(answer) => answer,
            Err(_) => return Err(ExecError::TimedOut),
        },
        None => call.await,
    };
    match answer {
        Ok(resp) => Ok(resp.into_inner()),
        // containerd reports the command's timeout as DeadlineExceeded, as
        // the upstream kubelet expects.
        Err(status) if status.code() == tonic::Code::DeadlineExceeded => Err(ExecError::TimedOut),
        Err(status) => Err(ExecError::Runtime(status.message().to_string())),
    }
}

/// stdout then stderr, at most 10 KiB, as upstream's probe output.
pub(super) fn output(resp: &ExecSyncResponse) -> String {
    let mut data = Vec::with_capacity(resp.stdout.len() + resp.stderr.len());
    data.extend_from_slice(&resp.stdout);
    data.extend_from_slice(&resp.stderr);
    data.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&data).into_owned()
}

/// The runtime's error for a non-zero exit, as upstream's remote runtime
/// words it: `command 'sh -c exit 3' exited with 3: <stderr>`.
pub(super) fn exit_error(cmd: &[String], resp: &ExecSyncResponse) -> String {
    format!(
        "command '{}' exited with {}: {}",
        cmd.join(" "),
        resp.exit_code,
        String::from_utf8_lossy(&resp.stderr)
    )
}

pub(super) fn timed_out(cmd: &[String]) -> String {
    format!("command {:?} timed out", cmd.join(" "))
}

/// Upstream's exec prober: exit 0 is success, any other exit a failure
/// whose message is the output; a timeout is a failure too.
pub(super) fn interpret(cmd: &[String], answer: Result<ExecSyncResponse, ExecError>) -> Probed {
    match answer {
        Ok(resp) if resp.exit_code == 0 => Probed::Success,
        Ok(resp) => Probed::Failure(output(&resp)),
        Err(ExecError::TimedOut) => Probed::Failure(timed_out(cmd)),
        Err(ExecError::Runtime(err)) => Probed::Error(err),
    }
}

pub(super) async fn probe(
    target: &Target,
    container: &Container,
    command: &[String],
    timeout: Duration,
) -> Probed {
    let cmd = resolve::expand_static(command, container);
    let answer = exec_sync(target, &cmd, Some(timeout)).await;
    interpret(&cmd, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(code: i32, out: &str, err: &str) -> ExecSyncResponse {
        ExecSyncResponse {
            stdout: out.as_bytes().to_vec(),
            stderr: err.as_bytes().to_vec(),
            exit_code: code,
        }
    }

    #[test]
    fn results() {
        let cmd = vec!["cat".to_string(), "/tmp/healthy".to_string()];
        assert_eq!(interpret(&cmd, Ok(resp(0, "ok", ""))), Probed::Success);
        assert_eq!(
            interpret(
                &cmd,
                Ok(resp(1, "", "cat: can't open '/tmp/healthy': No such file"))
            ),
            Probed::Failure("cat: can't open '/tmp/healthy': No such file".into())
        );
        assert_eq!(
            interpret(&cmd, Err(ExecError::TimedOut)),
            Probed::Failure("command \"cat /tmp/healthy\" timed out".into())
        );
        assert_eq!(
            interpret(&cmd, Err(ExecError::Runtime("not found".into()))),
            Probed::Error("not found".into())
        );
        assert_eq!(
            exit_error(&cmd, &resp(3, "x", "oops")),
            "command 'cat /tmp/healthy' exited with 3: oops"
        );
    }

    #[test]
    fn output_is_limited() {
        let big = "a".repeat(MAX_OUTPUT);
        let out = output(&resp(1, &big, "tail"));
        assert_eq!(out.len(), MAX_OUTPUT);
        assert_eq!(output(&resp(1, "out ", "err")), "out err");
    }

    mod with_fake_runtime {
        use k8s_openapi::api::core::v1::{EnvVar, ExecAction, Probe};

        use crate::agent::kubelet::probes::testing::fake_cri;
        use crate::agent::kubelet::probes::{run_once, Kind, Outcome};

        use super::*;

        fn exec(cmd: &[&str]) -> Probe {
            Probe {
                exec: Some(ExecAction {
                    command: Some(cmd.iter().map(|s| s.to_string()).collect()),
                }),
                timeout_seconds: Some(2),
                ..Default::default()
            }
        }

        #[tokio::test]
        async fn exec_probes_through_cri() {
            let dir = tempfile::tempdir().unwrap();
            let (t, calls) = fake_cri(dir.path());
            let container = Container {
                name: "app".into(),
                env: Some(vec![EnvVar {
                    name: "WORD".into(),
                    value: Some("hi".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let once = |p: Probe| {
                let (c, t) = (container.clone(), t.clone());
                async move { run_once(Kind::Liveness, &p, &c, &t).await }
            };
            assert_eq!(once(exec(&["true"])).await, Outcome::Success);
            assert_eq!(
                once(exec(&["cat", "/tmp/healthy"])).await,
                Outcome::Failure(
                    "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory\n"
                        .into()
                )
            );
            assert_eq!(
                once(exec(&["sleep", "5"])).await,
                Outcome::Failure("Liveness probe failed: command \"sleep 5\" timed out".into())
            );
            assert_eq!(once(exec(&["echo", "$(WORD)"])).await, Outcome::Success);
            let Outcome::Unknown(msg) = once(exec(&["nope"])).await else {
                panic!("a runtime error is no failure");
            };
            assert_eq!(
                msg,
                "Liveness probe errored and resulted in unknown state: container \"c0ffee\" not found"
            );
            let calls = calls.lock().unwrap();
            assert_eq!(calls[0].container_id, "c0ffee");
            assert_eq!(calls[0].timeout, 2);
            assert_eq!(calls[3].cmd, ["echo", "hi"]);
        }
    }
}
