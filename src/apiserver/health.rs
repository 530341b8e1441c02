//! /healthz, /livez and /readyz, with `?verbose` and per-check paths.

use http::Response;

use super::codec::{self, Body};
use super::Server;

/// (check name, whether it passes).
fn checks(server: &Server, kind: &str) -> Vec<(&'static str, bool)> {
    let mut out = vec![("ping", true), ("log", true), ("etcd", true)];
    if kind == "readyz" {
        out.push(("informer-sync", server.api.ready()));
        out.push(("poststarthook/start-apiextensions-controllers", true));
    }
    out
}

pub fn respond(
    server: &Server,
    kind: &'static str,
    verbose: bool,
    only: Option<&str>,
) -> Response<Body> {
    let all = checks(server, kind);
    if let Some(name) = only {
        return match all.iter().find(|(n, _)| *n == name) {
            Some((_, true)) => codec::raw(200, "ok".into(), "text/plain; charset=utf-8"),
            Some((_, false)) => codec::raw(
                500,
                format!("[-]{name} failed: reason withheld\n").into(),
                "text/plain; charset=utf-8",
            ),
            None => codec::raw(
                404,
                "404 page not found\n".into(),
                "text/plain; charset=utf-8",
            ),
        };
    }
    let ok = all.iter().all(|(_, pass)| *pass);
    let code = if ok { 200 } else { 500 };
    if !verbose && ok {
        return codec::raw(200, "ok".into(), "text/plain; charset=utf-8");
    }
    let mut text = String::new();
    for (name, pass) in &all {
        if *pass {
            text.push_str(&format!("[+]{name} ok\n"));
        } else {
            text.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    if ok {
        text.push_str(&format!("{kind} check passed\n"));
    } else {
        text.push_str(&format!("{kind} check failed\n"));
    }
    let _ = server.started;
    codec::raw(code, text.into(), "text/plain; charset=utf-8")
}
