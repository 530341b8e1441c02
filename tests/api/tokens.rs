//! Join tokens against a real `nanokube server`: bootstrap tokens made by
//! `nanokube token create` authenticate as `system:bootstrap:<id>` (real
//! kubectl `auth whoami`), expire (401, then the token cleaner deletes the
//! Secret), are listed as kubeadm lists them and deleted; the server and
//! agent tokens authenticate and are written as k3s writes them; `token
//! rotate` makes the running server refuse the old server token and accept
//! the new one; malformed input fails with one clear line.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::users::{kubectl_with, token_kubeconfig};
use crate::common::{run_with_timeout, Proc, KUBECTL_NEWEST, NANOKUBE};
use serde_json::{json, Value};

/// `nanokube token <args>` with the server's admin kubeconfig.
fn token_cmd(server: &Proc, args: &[&str]) -> Output {
    let mut cmd = Command::new(NANOKUBE);
    cmd.arg("token")
        .arg("--data-dir")
        .arg(&server.data_dir)
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("NANOKUBE_TOKEN");
    run_with_timeout(&mut cmd, None, Duration::from_secs(30))
}

fn token_ok(server: &Proc, args: &[&str]) -> String {
    let out = token_cmd(server, args);
    assert!(
        out.status.success(),
        "nanokube token {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one-line error of a failing `nanokube token` call.
fn token_err(server: &Proc, args: &[&str]) -> String {
    let out = token_cmd(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "nanokube token {args:?} succeeded");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("nanokube: "), "{args:?}: {stderr}");
    stderr.trim_end().to_string()
}

/// Who `token` is (kubectl auth whoami), or the error kubectl printed.
fn whoami(server: &Proc, token: &str) -> Result<Value, String> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cfg = token_kubeconfig(server, token, &format!("t{n}"));
    let (ok, out) = kubectl_with(
        server,
        KUBECTL_NEWEST,
        &cfg,
        &["auth", "whoami", "-o", "json"],
    );
    match ok {
        true => Ok(serde_json::from_str::<Value>(&out).unwrap()["status"]["userInfo"].clone()),
        false => Err(out),
    }
}

/// The HTTP status of a SelfSubjectReview with `token` (any authenticated
/// user may create one: 201, else 401).
fn status_with(server: &Proc, token: &str) -> u16 {
    let header = format!("Authorization: Bearer {token}");
    let body = br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let args = ["-H", &header, "-H", "Content-Type: application/json"];
    server.curl(false, "POST", path, Some(body), &args).status
}

/// The `K10<hash>::` prefix of the server's own token file.
fn ca_prefix(server: &Proc) -> String {
    let text = read(&server.data_dir.join("server/token"));
    let (prefix, _) = text.split_once("::").unwrap();
    format!("{prefix}::")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `<id>.<secret>` a printed join token carries.
fn bootstrap_of(join: &str, prefix: &str) -> String {
    let creds = join.trim().strip_prefix(prefix).unwrap_or_else(|| {
        panic!("{join:?} does not start with the cluster's {prefix:?}");
    });
    assert_eq!(creds.len(), 23, "{creds}");
    creds.to_string()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn bootstrap_tokens_authenticate_expire_list_and_delete() {
    let server = Proc::server();
    let prefix = ca_prefix(&server);

    // A random token, default usages and group: system:bootstrap:<id>.
    let join = token_ok(&server, &["create", "--description", "pi nodes"]);
    assert_eq!(join.lines().count(), 1, "{join}");
    let random = bootstrap_of(&join, &prefix);
    let (id, _) = random.split_once('.').unwrap();
    let user = whoami(&server, &random).unwrap();
    assert_eq!(user["username"], format!("system:bootstrap:{id}"));
    assert_eq!(
        user["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:nanokube:default-node-token",
            "system:authenticated"
        ])
    );
    // The whole join token is no bearer credential; a wrong secret is 401.
    assert_eq!(status_with(&server, join.trim()), 401);
    assert_eq!(status_with(&server, &format!("{id}.0000000000000000")), 401);

    // A chosen token that never expires, with extra groups.
    let fixed = "abcdef.0123456789abcdef";
    let fixed_join = token_ok(
        &server,
        &[
            "create",
            fixed,
            "--ttl",
            "0",
            "--groups",
            "system:bootstrappers:workers,system:bootstrappers:pis",
        ],
    );
    assert_eq!(fixed_join.trim(), format!("{prefix}{fixed}"));
    let user = whoami(&server, fixed).unwrap();
    assert_eq!(user["username"], "system:bootstrap:abcdef");
    assert_eq!(
        user["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:workers",
            "system:bootstrappers:pis",
            "system:authenticated"
        ])
    );
    let err = token_err(&server, &["create", fixed]);
    assert_eq!(
        err,
        "nanokube: a bootstrap token with id \"abcdef\" already exists"
    );

    // Signing only: no authentication.
    let signing = bootstrap_of(
        &token_ok(&server, &["create", "--usages", "signing"]),
        &prefix,
    );
    assert_eq!(status_with(&server, &signing), 401);

    // The list, as kubeadm prints it.
    let list = token_ok(&server, &["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "TOKEN",
            "TTL",
            "EXPIRES",
            "USAGES",
            "DESCRIPTION",
            "EXTRA GROUPS"
        ],
        "{list}"
    );
    let row = |t: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("{t} not listed:\n{list}"))
    };
    let r = row(&random);
    assert!(
        r.contains(" 23h ") && r.contains("authentication,signing"),
        "{r}"
    );
    assert!(r.contains("pi nodes"), "{r}");
    assert!(
        r.ends_with("system:bootstrappers:nanokube:default-node-token"),
        "{r}"
    );
    let f = row(fixed);
    assert!(f.contains("<forever>") && f.contains("<never>"), "{f}");
    assert!(
        f.ends_with("system:bootstrappers:workers,system:bootstrappers:pis"),
        "{f}"
    );
    let json_out = token_ok(&server, &["list", "-o", "json"]);
    let objects: Vec<Value> = serde_json::Deserializer::from_str(&json_out)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(objects.len(), 3, "{json_out}");
    let fixed_obj = objects.iter().find(|o| o["token"] == fixed).unwrap();
    assert_eq!(fixed_obj["kind"], "BootstrapToken");
    assert_eq!(fixed_obj["usages"], json!(["authentication", "signing"]));
    assert!(fixed_obj.get("expires").is_none(), "{fixed_obj}");
    let yaml = token_ok(&server, &["list", "-o", "yaml"]);
    assert!(yaml.contains(&format!("token: {fixed}")), "{yaml}");

    // Expiry: refused once past, then the token cleaner deletes the Secret.
    let short = bootstrap_of(&token_ok(&server, &["create", "--ttl", "3s"]), &prefix);
    let (short_id, _) = short.split_once('.').unwrap();
    assert_eq!(status_with(&server, &short), 201);
    wait_for(
        "the expired token is refused",
        Duration::from_secs(10),
        || status_with(&server, &short) == 401,
    );
    let kubectl = server.kubectl(KUBECTL_NEWEST);
    let secret = format!("secrets/bootstrap-token-{short_id}");
    wait_for(
        "the cleaner deletes the Secret",
        Duration::from_secs(10),
        || {
            let out = kubectl.run(&["get", "-n", "kube-system", &secret]);
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound")
        },
    );

    // Delete by id and by whole join token; deleted tokens are refused.
    let out = token_ok(&server, &["delete", id, fixed_join.trim()]);
    assert_eq!(
        out,
        format!("bootstrap token \"{id}\" deleted\nbootstrap token \"abcdef\" deleted\n")
    );
    assert_eq!(status_with(&server, &random), 401);
    assert_eq!(status_with(&server, fixed), 401);
    let err = token_err(&server, &["delete", "abcdef"]);
    assert_eq!(err, "nanokube: bootstrap token \"abcdef\" not found");
    assert_eq!(token_ok(&server, &["list"]).lines().count(), 2);

    // Malformed input: one clear line each, nothing created.
    for (args, expected) in [
        (
            &["create", "ABCDEF.0123456789abcdef"][..],
            "invalid bootstrap token \"ABCDEF.0123456789abcdef\"",
        ),
        (&["create", "--ttl", "5x"][..], "invalid --ttl \"5x\""),
        (&["create", "--ttl=-1h"][..], "invalid --ttl \"-1h\""),
        (
            &["create", "--usages", "signing,bogus"][..],
            "invalid usage \"bogus\"",
        ),
        (
            &["create", "--groups", "system:masters"][..],
            "invalid extra group \"system:masters\"",
        ),
        (
            &["delete", "nope!"][..],
            "invalid bootstrap token id \"nope!\"",
        ),
        (&["list", "-o", "xml"][..], "invalid --output \"xml\""),
    ] {
        let err = token_err(&server, args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert_eq!(token_ok(&server, &["list"]).lines().count(), 2);
}

#[test]
fn server_and_agent_tokens_authenticate_and_rotate() {
    let server = Proc::server_with(|data_dir| {
        let file = data_dir.with_file_name("token.txt");
        std::fs::write(&file, "  file-s3cret\n").unwrap();
        vec![
            "--token-file".into(),
            file.to_string_lossy().into_owned(),
            "--agent-token".into(),
            "agent-s3cret".into(),
        ]
    });
    let prefix = ca_prefix(&server);
    let dir = server.data_dir.join("server");
    assert_eq!(
        read(&dir.join("token")),
        format!("{prefix}server:file-s3cret\n")
    );
    assert_eq!(
        read(&dir.join("agent-token")),
        format!("{prefix}node:agent-s3cret\n")
    );
    assert_eq!(
        read(&dir.join("node-token")),
        read(&dir.join("agent-token"))
    );
    for token in ["node:file-s3cret", "node:agent-s3cret", "agent-s3cret"] {
        let user = whoami(&server, token).unwrap();
        assert_eq!(user["username"], "nanokube:agent", "{token}");
    }

    // Rotation needs the current server token and a token of this cluster.
    let err = token_err(&server, &["rotate", "--token", "wrong", "--new-token", "x"]);
    assert!(
        err.contains("the current server token does not match"),
        "{err}"
    );
    let other = format!("K10{}::server:x", "ab".repeat(32));
    let err = token_err(&server, &["rotate", "--new-token", &other]);
    assert!(err.contains("invalid new token"), "{err}");
    let err = token_err(&server, &["rotate", "--new-token", "K10zz::server:x"]);
    assert!(err.contains("invalid new token"), "{err}");
    assert_eq!(status_with(&server, "node:file-s3cret"), 201);

    // The current token comes from <data-dir>/server/token; the new one is
    // random and printed last.
    let out = token_ok(&server, &["rotate"]);
    let new = out.lines().last().unwrap().to_string();
    assert!(new.starts_with(&format!("{prefix}server:")), "{out}");
    let secret = new.rsplit(':').next().unwrap();
    assert_eq!(secret.len(), 32, "{new}");
    assert_eq!(status_with(&server, "node:file-s3cret"), 401);
    assert_eq!(status_with(&server, &new), 201);
    assert_eq!(
        whoami(&server, &format!("node:{secret}")).unwrap()["username"],
        "nanokube:agent"
    );
    assert_eq!(status_with(&server, "node:agent-s3cret"), 201);
    assert_eq!(read(&dir.join("token")), format!("{new}\n"));
    assert_eq!(
        read(&dir.join("node-token")),
        read(&dir.join("agent-token"))
    );

    // A chosen new token, given bare; the old one must be given now.
    let out = token_ok(
        &server,
        &["rotate", "--token", &new, "--new-token", "chosen-s3cret"],
    );
    assert_eq!(
        out.lines().last().unwrap(),
        format!("{prefix}server:chosen-s3cret")
    );
    assert_eq!(status_with(&server, &new), 401);
    assert_eq!(status_with(&server, "chosen-s3cret"), 201);
    // Rotation is for cluster admins only: a token user may not.
    let header = "Authorization: Bearer node:chosen-s3cret";
    let r = server.curl(
        false,
        "POST",
        "/nanokube/v1/token/rotate",
        Some(br#"{"token":"chosen-s3cret","newToken":"mine"}"#),
        &["-H", header, "-H", "Content-Type: application/json"],
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(status_with(&server, "chosen-s3cret"), 201);
}
