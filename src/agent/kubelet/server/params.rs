//! The kubelet's streaming URLs and their query parameters, as the API
//! server sends them (upstream's names: `input`, `output`, `error`, `tty`
//! with value `1`; `true` and the PodExecOptions names are taken too).

use super::logs::{LogOptions, StreamFilter};

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Healthz,
    Logs(Target),
    Exec(Target),
    Attach(Target),
    PortForward(Target),
    Unknown,
}

/// A pod (and for most endpoints one of its containers). `uid` pins the
/// pod when several with that name exist (upstream's optional segment).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub uid: Option<String>,
    pub container: String,
}

fn decode(seg: &str) -> String {
    // Path segments are percent-encoded; `+` means itself in a path.
    let raw = seg.replace('+', "%2B");
    form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub fn parse_path(path: &str) -> Endpoint {
    let segs: Vec<String> = path
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let t = |ns: &str, pod: &str, uid: Option<&str>, c: &str| Target {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        uid: uid.map(str::to_string),
        container: c.to_string(),
    };
    if s.iter().skip(1).any(|x| x.is_empty()) {
        return Endpoint::Unknown;
    }
    match s.as_slice() {
        ["healthz"] => Endpoint::Healthz,
        ["containerLogs", ns, pod, c] => Endpoint::Logs(t(ns, pod, None, c)),
        ["exec", ns, pod, c] => Endpoint::Exec(t(ns, pod, None, c)),
        ["exec", ns, pod, uid, c] => Endpoint::Exec(t(ns, pod, Some(uid), c)),
        ["attach", ns, pod, c] => Endpoint::Attach(t(ns, pod, None, c)),
        ["attach", ns, pod, uid, c] => Endpoint::Attach(t(ns, pod, Some(uid), c)),
        ["portForward", ns, pod] => Endpoint::PortForward(t(ns, pod, None, "")),
        ["portForward", ns, pod, uid] => Endpoint::PortForward(t(ns, pod, Some(uid), "")),
        _ => Endpoint::Unknown,
    }
}

/// Every query parameter in order (`command` and `port` repeat).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true")
}

fn flag(q: &[(String, String)], names: &[&str]) -> bool {
    names.iter().any(|n| first(q, n).is_some_and(truthy))
}

/// exec and attach: which streams, and the command (exec).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecParams {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

pub fn exec_params(q: &[(String, String)], needs_command: bool) -> Result<ExecParams, String> {
    let mut p = ExecParams {
        command: q
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        stdin: flag(q, &["input", "stdin"]),
        stdout: flag(q, &["output", "stdout"]),
        stderr: flag(q, &["error", "stderr"]),
        tty: flag(q, &["tty"]),
    };
    if !p.stdin && !p.stdout && !p.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    // A terminal merges stderr into stdout (upstream drops the stream).
    if p.tty {
        p.stderr = false;
    }
    if needs_command && p.command.is_empty() {
        return Err("you must specify at least 1 command".into());
    }
    Ok(p)
}

/// port-forward: the ports asked for in the URL (WebSocket clients; SPDY
/// clients name them per stream instead).
pub fn ports(q: &[(String, String)]) -> Result<Vec<i32>, String> {
    q.iter()
        .filter(|(k, _)| k == "port" || k == "ports")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(i32::from(n)),
            _ => Err(format!("invalid port {p:?}")),
        })
        .collect()
}

fn number(q: &[(String, String)], key: &str) -> Result<Option<i64>, String> {
    match first(q, key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {key} {v:?}: not an integer")),
    }
}

/// containerLogs: upstream's PodLogOptions query.
pub fn log_options(q: &[(String, String)], now: jiff::Timestamp) -> Result<LogOptions, String> {
    let since_seconds = number(q, "sinceSeconds")?;
    let since_time = match first(q, "sinceTime").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse::<jiff::Timestamp>()
                .map_err(|e| format!("invalid sinceTime {v:?}: {e}"))?,
        ),
    };
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into())
        }
        (Some(s), None) if s < 1 => return Err("sinceSeconds must be greater than 0".into()),
        (Some(s), None) => Some(now - jiff::SignedDuration::from_secs(s)),
        (None, t) => t,
    };
    let tail = match number(q, "tailLines")? {
        Some(n) if n < 0 => return Err("tailLines must be greater than or equal to 0".into()),
        n => n.map(|n| n as u64),
    };
    let limit_bytes = match number(q, "limitBytes")? {
        Some(n) if n < 1 => return Err("limitBytes must be greater than 0".into()),
        n => n.map(|n| n as u64),
    };
    let stream = match first(q, "stream").unwrap_or("") {
        "" | "All" => StreamFilter::All,
        "Stdout" => StreamFilter::Stdout,
        "Stderr" => StreamFilter::Stderr,
        other => {
            return Err(format!(
                "invalid stream {other:?}: must be All, Stdout or Stderr"
            ))
        }
    };
    Ok(LogOptions {
        follow: flag(q, &["follow"]),
        previous: flag(q, &["previous"]),
        timestamps: flag(q, &["timestamps"]),
        since,
        tail,
        limit_bytes,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        query_pairs(Some(s))
    }

    #[test]
    fn paths() {
        let t = |c: &str| Target {
            namespace: "ns".into(),
            pod: "p".into(),
            uid: None,
            container: c.into(),
        };
        assert_eq!(parse_path("/healthz"), Endpoint::Healthz);
        assert_eq!(parse_path("/containerLogs/ns/p/c"), Endpoint::Logs(t("c")));
        assert_eq!(parse_path("/exec/ns/p/c"), Endpoint::Exec(t("c")));
        assert_eq!(
            parse_path("/exec/ns/p/u1/c"),
            Endpoint::Exec(Target {
                uid: Some("u1".into()),
                ..t("c")
            })
        );
        assert_eq!(parse_path("/attach/ns/p/c"), Endpoint::Attach(t("c")));
        assert_eq!(
            parse_path("/portForward/ns/p"),
            Endpoint::PortForward(t(""))
        );
        assert_eq!(parse_path("/exec/ns//c"), Endpoint::Unknown);
        assert_eq!(parse_path("/containerLogs/ns/p"), Endpoint::Unknown);
        assert_eq!(parse_path("/pods"), Endpoint::Unknown);
        assert_eq!(
            parse_path("/containerLogs/n%2Ds/p/c+d"),
            Endpoint::Logs(Target {
                namespace: "n-s".into(),
                container: "c+d".into(),
                ..t("")
            })
        );
    }

    #[test]
    fn exec_query_in_both_spellings() {
        let p = exec_params(
            &q("command=sh&command=-c&command=a+b&input=1&output=1&tty=1&error=1"),
            true,
        )
        .unwrap();
        assert_eq!(p.command, vec!["sh", "-c", "a b"]);
        assert!(p.stdin && p.stdout && p.tty && !p.stderr);
        let p = exec_params(&q("command=ls&stdout=true&stderr=true"), true).unwrap();
        assert!(!p.stdin && p.stdout && p.stderr && !p.tty);
        assert!(exec_params(&q("command=ls"), true).is_err());
        assert!(exec_params(&q("output=1"), true).is_err());
        assert!(exec_params(&q("output=1"), false).is_ok());
    }

    #[test]
    fn port_lists() {
        assert_eq!(ports(&q("port=80&port=8080")).unwrap(), vec![80, 8080]);
        assert_eq!(ports(&q("ports=80,81")).unwrap(), vec![80, 81]);
        assert!(ports(&q("port=0")).is_err());
        assert!(ports(&q("port=99999")).is_err());
        assert_eq!(ports(&q("")).unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn log_query() {
        let now: jiff::Timestamp = "2024-01-01T00:01:00Z".parse().unwrap();
        let o = log_options(
            &q("follow=true&tailLines=5&timestamps=true&limitBytes=10&sinceSeconds=30"),
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail, Some(5));
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(o.since, Some("2024-01-01T00:00:30Z".parse().unwrap()));
        let o = log_options(
            &q("sinceTime=2024-01-01T00:00:00Z&previous=true&stream=Stderr"),
            now,
        )
        .unwrap();
        assert_eq!(o.since, Some("2024-01-01T00:00:00Z".parse().unwrap()));
        assert!(o.previous);
        assert_eq!(o.stream, StreamFilter::Stderr);
        assert!(log_options(&q("tailLines=-1"), now).is_err());
        assert!(log_options(&q("limitBytes=0"), now).is_err());
        assert!(log_options(&q("sinceSeconds=1&sinceTime=2024-01-01T00:00:00Z"), now).is_err());
        assert!(log_options(&q("stream=both"), now).is_err());
        let o = log_options(&q(""), now).unwrap();
        assert_eq!((o.tail, o.since, o.follow), (None, None, false));
    }
}
