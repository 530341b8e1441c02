//! Small pure helpers shared by the probe kinds and hooks: named ports,
//! `$(VAR)` expansion of exec commands, and Go-like texts for durations,
//! addresses and socket errors (upstream's messages come from Go's net
//! package, and users grep events for them).

use std::io;
use std::time::Duration;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Error;

/// A probe's or hook's port: a number, or the name of one of the
/// container's ports (upstream `probe.ResolveContainerPort`). A string that
/// names no port but is a number is taken as the number, as lifecycle hooks
/// always did upstream.
pub(super) fn port(port: &IntOrString, container: &Container) -> Result<u16, Error> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match (named, name.parse::<i64>()) {
                (Some(p), _) => i64::from(p.container_port),
                (None, Ok(n)) => n,
                (None, Err(_)) => return Err(Error::PortNotFound(name.clone())),
            }
        }
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(Error::InvalidPort(number))
}

/// Expands `$(VAR)` in an exec probe's command with the container's
/// literal env values only (upstream `ExpandContainerCommandOnlyStatic`:
/// probes do not see valueFrom or envFrom). `$$` escapes a dollar; unknown
/// references stay as written.
pub(super) fn expand_static(command: &[String], container: &Container) -> Vec<String> {
    let env: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    command
        .iter()
        .map(|arg| crate::agent::kubelet::spec::expand(arg, &env))
        .collect()
}

/// `host:port`, with brackets around IPv6 addresses (Go's JoinHostPort).
pub(super) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A whole-second duration as Go prints it: `1s`, `1m30s`, `1h0m0s`.
pub(super) fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    if secs == 0 && millis > 0 {
        return format!("{millis}ms");
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A socket error in Go's words (`connect: connection refused`).
pub(super) fn go_io_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        io::ErrorKind::ConnectionReset => "read: connection reset by peer".into(),
        io::ErrorKind::HostUnreachable => "connect: no route to host".into(),
        io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".into(),
        io::ErrorKind::TimedOut => "i/o timeout".into(),
        io::ErrorKind::UnexpectedEof => "EOF".into(),
        _ => {
            let text = err.to_string();
            // Rust appends " (os error N)"; Go does not.
            match text.find(" (os error") {
                Some(at) => text[..at].to_lowercase(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, EnvVar};

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![
                ContainerPort {
                    name: Some("http".into()),
                    container_port: 8080,
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("metrics".into()),
                    container_port: 9090,
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                EnvVar {
                    name: "DIR".into(),
                    value: Some("/tmp".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "FROM".into(),
                    value: None,
                    value_from: Some(Default::default()),
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn named_ports() {
        let c = container();
        assert_eq!(port(&IntOrString::Int(80), &c).unwrap(), 80);
        assert_eq!(port(&IntOrString::String("http".into()), &c).unwrap(), 8080);
        assert_eq!(
            port(&IntOrString::String("metrics".into()), &c).unwrap(),
            9090
        );
        assert_eq!(port(&IntOrString::String("81".into()), &c).unwrap(), 81);
        assert_eq!(
            port(&IntOrString::String("admin".into()), &c)
                .unwrap_err()
                .to_string(),
            "port \"admin\" not found"
        );
        assert_eq!(
            port(&IntOrString::Int(0), &c).unwrap_err().to_string(),
            "invalid port number: 0"
        );
        assert!(port(&IntOrString::Int(70000), &c).is_err());
        let bare = Container::default();
        assert!(port(&IntOrString::String("http".into()), &bare).is_err());
    }

    #[test]
    fn static_expansion() {
        let c = container();
        let cmd = |s: &str| expand_static(&[s.to_string()], &c).remove(0);
        assert_eq!(cmd("cat $(DIR)/healthy"), "cat /tmp/healthy");
        assert_eq!(cmd("$(FROM)"), "$(FROM)");
        assert_eq!(cmd("$(NOPE)x"), "$(NOPE)x");
        assert_eq!(cmd("$$(DIR)"), "$(DIR)");
        assert_eq!(cmd("a$b $"), "a$b $");
        assert_eq!(cmd("$(DIR"), "$(DIR");
        assert_eq!(cmd("$(DIR)$(DIR)"), "/tmp/tmp");
    }

    #[test]
    fn go_texts() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(go_io_error(&refused), "connect: connection refused");
    }
}
