//! The object of a CONNECT review: upstream decodes the query of
//! pods/exec, attach and portforward into `PodExecOptions`,
//! `PodAttachOptions` or `PodPortForwardOptions` (core v1) and sends that,
//! with Go's `omitempty` (false flags, an empty container and no ports are
//! left out; `command` is always there).

use serde_json::{json, Map, Value};

/// Upstream's boolean query parameters.
fn flag(q: &[(String, String)], key: &str) -> bool {
    q.iter()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "f" | "false"))
}

fn streams(out: &mut Map<String, Value>, q: &[(String, String)]) {
    for key in ["stdin", "stdout", "stderr", "tty"] {
        if flag(q, key) {
            out.insert(key.into(), true.into());
        }
    }
    if let Some((_, c)) = q.iter().find(|(k, v)| k == "container" && !v.is_empty()) {
        out.insert("container".into(), c.as_str().into());
    }
}

pub(super) fn options(subresource: &str, q: &[(String, String)]) -> Value {
    let mut out = Map::new();
    let kind = match subresource {
        "exec" => {
            streams(&mut out, q);
            let command: Vec<&str> = q
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.as_str())
                .collect();
            out.insert("command".into(), json!(command));
            "PodExecOptions"
        }
        "attach" => {
            streams(&mut out, q);
            "PodAttachOptions"
        }
        "portforward" => {
            let ports: Vec<u16> = q
                .iter()
                .filter(|(k, _)| k == "ports")
                .flat_map(|(_, v)| v.split(',').filter_map(|p| p.trim().parse().ok()))
                .collect();
            if !ports.is_empty() {
                out.insert("ports".into(), json!(ports));
            }
            "PodPortForwardOptions"
        }
        _ => {
            if let Some((_, p)) = q.iter().find(|(k, _)| k == "path") {
                out.insert("path".into(), p.as_str().into());
            }
            "PodProxyOptions"
        }
    };
    out.insert("kind".into(), kind.into());
    out.insert("apiVersion".into(), "v1".into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn exec_attach_and_portforward_options() {
        assert_eq!(
            options(
                "exec",
                &q("command=sh&command=-c&command=id&stdout=true&stderr=1&tty=false&container=app")
            ),
            json!({"kind": "PodExecOptions", "apiVersion": "v1", "stdout": true, "stderr": true,
                   "container": "app", "command": ["sh", "-c", "id"]})
        );
        assert_eq!(
            options("attach", &q("stdin=true")),
            json!({"kind": "PodAttachOptions", "apiVersion": "v1", "stdin": true})
        );
        assert_eq!(
            options("portforward", &q("ports=80,8080&ports=9")),
            json!({"kind": "PodPortForwardOptions", "apiVersion": "v1", "ports": [80, 8080, 9]})
        );
    }
}
