//! The real `etcdctl` 3.4 against `nanokube datastore`, asserting etcd's
//! exact outputs.

use std::time::Duration;

use crate::common::{b64_field, poll_until, Proc};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The header revision of a `-w json` response.
fn header_rev(v: &serde_json::Value) -> i64 {
    v["header"]["revision"]
        .as_i64()
        .unwrap_or_else(|| panic!("no header.revision in {v}"))
}

/// The revision a `put` created.
fn put_rev(p: &Proc, key: &str, value: &str) -> i64 {
    header_rev(&json(&p.ctl_ok(&["put", key, value, "-w", "json"])))
}

const TXN_PROMPTS: &str =
    "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n";

/// Runs `etcdctl txn -i` with the given stdin and returns the output after
/// the three prompts.
fn txn(p: &Proc, input: &str) -> String {
    let out = p.ctl_stdin_ok(&["txn", "-i"], input);
    out.strip_prefix(TXN_PROMPTS)
        .unwrap_or_else(|| panic!("txn output lacks the prompts:\n{out}"))
        .to_string()
}

#[test]
fn put_and_get() {
    let p = Proc::datastore();
    let r1 = put_rev(&p, "/t/a", "1");
    assert_eq!(p.ctl_ok(&["put", "/t/b", "2"]), "OK\n");
    assert_eq!(p.ctl_ok(&["put", "/t/c", "3"]), "OK\n");
    assert_eq!(p.ctl_ok(&["put", "/u/x", "9"]), "OK\n");
    assert_eq!(p.ctl_ok(&["put", "/t/a", "11"]), "OK\n");
    // put --prev-kv prints the previous pair
    assert_eq!(
        p.ctl_ok(&["put", "--prev-kv", "/t/a", "111"]),
        "OK\n/t/a\n11\n"
    );

    assert_eq!(p.ctl_ok(&["get", "/t/a"]), "/t/a\n111\n");
    assert_eq!(p.ctl_ok(&["get", "/nope"]), "");
    assert_eq!(
        p.ctl_ok(&["get", "/t/", "--prefix"]),
        "/t/a\n111\n/t/b\n2\n/t/c\n3\n"
    );
    // explicit range [key, range_end)
    assert_eq!(p.ctl_ok(&["get", "/t/a", "/t/c"]), "/t/a\n111\n/t/b\n2\n");
    assert_eq!(
        p.ctl_ok(&["get", "--from-key", "/t/c"]),
        "/t/c\n3\n/u/x\n9\n"
    );
    assert_eq!(
        p.ctl_ok(&["get", "/t/", "--prefix", "--keys-only"]),
        "/t/a\n\n/t/b\n\n/t/c\n\n"
    );
    assert_eq!(
        p.ctl_ok(&["get", "/t/", "--prefix", "--limit", "2"]),
        "/t/a\n111\n/t/b\n2\n"
    );
    let limited = json(&p.ctl_ok(&["get", "/t/", "--prefix", "--limit", "2", "-w", "json"]));
    assert_eq!(limited["kvs"].as_array().unwrap().len(), 2, "{limited}");
    assert_eq!(limited["count"], 3, "count is the total: {limited}");
    assert_eq!(limited["more"], true, "{limited}");
    assert_eq!(
        p.ctl_ok(&["get", "/t/", "--prefix", "--order", "DESCEND"]),
        "/t/c\n3\n/t/b\n2\n/t/a\n111\n"
    );
    assert_eq!(
        p.ctl_ok(&[
            "get",
            "/t/",
            "--prefix",
            "--sort-by",
            "VALUE",
            "--order",
            "ASCEND"
        ]),
        "/t/a\n111\n/t/b\n2\n/t/c\n3\n"
    );
    assert_eq!(
        p.ctl_ok(&[
            "get",
            "/t/",
            "--prefix",
            "--sort-by",
            "MODIFY",
            "--order",
            "DESCEND"
        ]),
        "/t/a\n111\n/t/c\n3\n/t/b\n2\n"
    );
    assert_eq!(p.ctl_ok(&["get", "/t/a", "--print-value-only"]), "111\n");
    // the old value at the old revision
    assert_eq!(
        p.ctl_ok(&["get", "/t/a", "--rev", &r1.to_string()]),
        "/t/a\n1\n"
    );
    // before /t/b existed
    assert_eq!(
        p.ctl_ok(&["get", "/t/", "--prefix", "--rev", &r1.to_string()]),
        "/t/a\n1\n"
    );
    // values with spaces and binary-ish content survive
    assert_eq!(p.ctl_ok(&["put", "/sp", "a b  c"]), "OK\n");
    assert_eq!(p.ctl_ok(&["get", "/sp", "--print-value-only"]), "a b  c\n");
    assert_eq!(
        p.ctl_ok(&["get", "/sp", "--hex"]),
        "\\x2f\\x73\\x70\n\\x61\\x20\\x62\\x20\\x20\\x63\n"
    );
}

#[test]
fn json_revisions_and_versions() {
    let p = Proc::datastore();
    let kv_of = |key: &str| -> (serde_json::Value, serde_json::Value) {
        let v = json(&p.ctl_ok(&["get", key, "-w", "json"]));
        assert_eq!(v["count"], 1, "{v}");
        let kv = v["kvs"][0].clone();
        (v, kv)
    };

    let r1 = put_rev(&p, "k", "v1");
    let (resp, kv) = kv_of("k");
    assert_eq!(header_rev(&resp), r1);
    assert_eq!(b64_field(&kv, "key"), "k");
    assert_eq!(b64_field(&kv, "value"), "v1");
    assert_eq!(kv["create_revision"], r1, "{kv}");
    assert_eq!(kv["mod_revision"], r1, "{kv}");
    assert_eq!(kv["version"], 1, "{kv}");

    // other keys move the revision but not k's
    let r_other = put_rev(&p, "other", "x");
    assert_eq!(r_other, r1 + 1, "each put adds exactly one revision");

    let r2 = put_rev(&p, "k", "v2");
    assert_eq!(r2, r_other + 1);
    let (resp, kv) = kv_of("k");
    assert_eq!(header_rev(&resp), r2);
    assert_eq!(b64_field(&kv, "value"), "v2");
    assert_eq!(kv["create_revision"], r1, "{kv}");
    assert_eq!(kv["mod_revision"], r2, "{kv}");
    assert_eq!(kv["version"], 2, "{kv}");

    let del = json(&p.ctl_ok(&["del", "k", "-w", "json"]));
    assert_eq!(del["deleted"], 1, "{del}");
    let r_del = header_rev(&del);
    assert_eq!(r_del, r2 + 1);
    let gone = json(&p.ctl_ok(&["get", "k", "-w", "json"]));
    assert!(gone.get("kvs").is_none(), "{gone}");
    assert!(gone.get("count").is_none(), "count 0 is omitted: {gone}");

    let r3 = put_rev(&p, "k", "v3");
    assert_eq!(r3, r_del + 1);
    let (_, kv) = kv_of("k");
    assert_eq!(b64_field(&kv, "value"), "v3");
    assert_eq!(kv["create_revision"], r3, "recreated key: {kv}");
    assert_eq!(kv["mod_revision"], r3, "{kv}");
    assert_eq!(kv["version"], 1, "version resets after delete: {kv}");

    // the revision before the delete still shows the old generation
    let old = json(&p.ctl_ok(&["get", "k", "-w", "json", "--rev", &r2.to_string()]));
    let kv = &old["kvs"][0];
    assert_eq!(b64_field(kv, "value"), "v2");
    assert_eq!(kv["create_revision"], r1, "{kv}");
    assert_eq!(kv["version"], 2, "{kv}");
    // at the delete revision the key does not exist
    let at_del = json(&p.ctl_ok(&["get", "k", "-w", "json", "--rev", &r_del.to_string()]));
    assert!(at_del.get("kvs").is_none(), "{at_del}");

    // an empty value is stored and omitted from JSON like etcd does
    put_rev(&p, "empty", "");
    let (_, kv) = kv_of("empty");
    assert!(kv.get("value").is_none(), "{kv}");
    assert_eq!(p.ctl_ok(&["get", "empty"]), "empty\n\n");
}

#[test]
fn delete() {
    let p = Proc::datastore();
    for k in ["/d/1", "/d/2", "/d/3", "/e/1"] {
        p.ctl_ok(&["put", k, "v"]);
    }
    p.ctl_ok(&["put", "/p", "val"]);
    assert_eq!(p.ctl_ok(&["del", "/d/", "--prefix"]), "3\n");
    assert_eq!(p.ctl_ok(&["del", "/d/", "--prefix"]), "0\n");
    assert_eq!(p.ctl_ok(&["del", "/missing"]), "0\n");
    assert_eq!(
        p.ctl_ok(&["get", "/", "--prefix", "--keys-only"]),
        "/e/1\n\n/p\n\n"
    );
    assert_eq!(p.ctl_ok(&["del", "--prev-kv", "/p"]), "1\n/p\nval\n");
    assert_eq!(p.ctl_ok(&["get", "/p"]), "");
    // range delete [key, range_end)
    for k in ["/r/a", "/r/b", "/r/c"] {
        p.ctl_ok(&["put", k, k]);
    }
    assert_eq!(
        p.ctl_ok(&["del", "--prev-kv", "/r/a", "/r/c"]),
        "2\n/r/a\n/r/a\n/r/b\n/r/b\n"
    );
    assert_eq!(p.ctl_ok(&["get", "/r/", "--prefix"]), "/r/c\n/r/c\n");
    // one delete is one revision, however many keys it removes
    let before = p.revision();
    p.ctl_ok(&["put", "/m/1", "x"]);
    p.ctl_ok(&["put", "/m/2", "x"]);
    p.ctl_ok(&["del", "--prefix", "/m/"]);
    assert_eq!(p.revision(), before + 3);
    // deleting nothing does not create a revision
    p.ctl_ok(&["del", "--prefix", "/m/"]);
    assert_eq!(p.revision(), before + 3);
}

#[test]
fn txn_interactive() {
    let p = Proc::datastore();
    let ra = put_rev(&p, "a", "1");
    p.ctl_ok(&["put", "b", "2"]);
    p.ctl_ok(&["put", "a", "1"]); // version 2

    // mod > 0 and create = 0 (absent key): success branch runs put, get, del.
    let out = txn(
        &p,
        "mod(\"a\") > \"0\"\ncreate(\"new\") = \"0\"\n\nput new n1\nget b\ndel b\n\nput fail x\n\n",
    );
    assert_eq!(out, "SUCCESS\n\nOK\n\nb\n2\n\n1\n");
    assert_eq!(p.ctl_ok(&["get", "new"]), "new\nn1\n");
    assert_eq!(p.ctl_ok(&["get", "b"]), "");
    assert_eq!(p.ctl_ok(&["get", "fail"]), "");

    // value = wrong: failure branch.
    let out = txn(
        &p,
        "value(\"a\") = \"wrong\"\n\nput never x\n\nput f1 y\nget a\n\n",
    );
    assert_eq!(out, "FAILURE\n\nOK\n\na\n1\n");
    assert_eq!(p.ctl_ok(&["get", "never"]), "");
    assert_eq!(p.ctl_ok(&["get", "f1"]), "f1\ny\n");

    // value = right
    let out = txn(&p, "value(\"a\") = \"1\"\n\nget a\n\n\n");
    assert_eq!(out, "SUCCESS\n\na\n1\n");

    // version
    assert_eq!(txn(&p, "version(\"a\") = \"2\"\n\n\n\n"), "SUCCESS\n");
    assert_eq!(txn(&p, "version(\"a\") = \"1\"\n\n\n\n"), "FAILURE\n");
    assert_eq!(txn(&p, "version(\"a\") > \"1\"\n\n\n\n"), "SUCCESS\n");
    assert_eq!(txn(&p, "version(\"a\") < \"2\"\n\n\n\n"), "FAILURE\n");
    assert_eq!(txn(&p, "version(\"a\") != \"3\"\n\n\n\n"), "SUCCESS\n");
    assert_eq!(txn(&p, "version(\"nokey\") = \"0\"\n\n\n\n"), "SUCCESS\n");

    // create revision, exact
    let c = format!("create(\"a\") = \"{ra}\"\n\n\n\n");
    assert_eq!(txn(&p, &c), "SUCCESS\n");
    let c = format!("create(\"a\") = \"{}\"\n\n\n\n", ra + 1);
    assert_eq!(txn(&p, &c), "FAILURE\n");
    assert_eq!(txn(&p, "create(\"new\") = \"0\"\n\n\n\n"), "FAILURE\n");

    // mod revision
    let cur = p.revision();
    let rnew = put_rev(&p, "m", "x");
    assert_eq!(rnew, cur + 1);
    let c = format!("mod(\"m\") = \"{rnew}\"\n\nput m y\n\n\n");
    assert_eq!(txn(&p, &c), "SUCCESS\n\nOK\n");
    // the same compare now fails (optimistic concurrency)
    let c = format!("mod(\"m\") = \"{rnew}\"\n\nput m z\n\nget m\n\n");
    assert_eq!(txn(&p, &c), "FAILURE\n\nm\ny\n");
    assert_eq!(txn(&p, "mod(\"m\") < \"1\"\n\n\n\n"), "FAILURE\n");

    // value comparisons are byte-wise
    assert_eq!(txn(&p, "value(\"m\") > \"x\"\n\n\n\n"), "SUCCESS\n");
    assert_eq!(txn(&p, "value(\"m\") < \"x\"\n\n\n\n"), "FAILURE\n");

    // several compares: all must hold
    assert_eq!(
        txn(&p, "value(\"a\") = \"1\"\nvalue(\"m\") = \"nope\"\n\n\n\n"),
        "FAILURE\n"
    );

    // all writes of one txn share one revision
    let before = p.revision();
    let out = txn(&p, "\nput t1 1\nput t2 2\ndel a\n\n\n");
    assert_eq!(out, "SUCCESS\n\nOK\n\nOK\n\n1\n");
    assert_eq!(p.revision(), before + 1);
    let t1 = json(&p.ctl_ok(&["get", "t1", "-w", "json"]));
    let t2 = json(&p.ctl_ok(&["get", "t2", "-w", "json"]));
    assert_eq!(t1["kvs"][0]["mod_revision"], before + 1);
    assert_eq!(t2["kvs"][0]["mod_revision"], before + 1);
    // a read-only txn does not create a revision
    txn(&p, "\nget t1\n\n\n");
    assert_eq!(p.revision(), before + 1);
}

/// Reads `PUT`/`DELETE` blocks of 3 lines (type, key, value), skipping the
/// sentinel key, until `n` blocks were read.
fn read_events(w: &crate::common::LineReader, n: usize, skip_key: &str) -> Vec<[String; 3]> {
    let mut events = Vec::new();
    while events.len() < n {
        let l = w.expect_lines(3, Duration::from_secs(10));
        if l[1] == skip_key {
            continue;
        }
        events.push([l[0].clone(), l[1].clone(), l[2].clone()]);
    }
    events
}

fn ev(t: &str, k: &str, v: &str) -> [String; 3] {
    [t.to_string(), k.to_string(), v.to_string()]
}

#[test]
fn watch_prefix_live() {
    let p = Proc::datastore();
    let w = p.ctl_background(&["watch", "--prefix", "/w/"]);
    // Wait until the watch is established: write a sentinel until it shows.
    let mut n = 0;
    let established = poll_until(Duration::from_secs(15), Duration::from_millis(1), || {
        n += 1;
        p.ctl_ok(&["put", "/w/sentinel", &n.to_string()]);
        match w.next_line(Duration::from_millis(300)) {
            Some(line) => {
                assert_eq!(line, "PUT");
                let rest = w.expect_lines(2, Duration::from_secs(5));
                assert_eq!(rest[0], "/w/sentinel");
                true
            }
            None => false,
        }
    });
    assert!(
        established,
        "watch never delivered; stderr:\n{}",
        w.stderr()
    );

    p.ctl_ok(&["put", "/w/a", "1"]);
    p.ctl_ok(&["put", "/x/ignored", "nope"]);
    p.ctl_ok(&["put", "/w/b", "two words"]);
    p.ctl_ok(&["put", "/w/a", "3"]);
    p.ctl_ok(&["del", "/w/a"]);
    p.ctl_ok(&["del", "/x/ignored"]);
    p.ctl_ok(&["put", "/w/end", "e"]);
    let events = read_events(&w, 5, "/w/sentinel");
    assert_eq!(
        events,
        vec![
            ev("PUT", "/w/a", "1"),
            ev("PUT", "/w/b", "two words"),
            ev("PUT", "/w/a", "3"),
            ev("DELETE", "/w/a", ""),
            ev("PUT", "/w/end", "e"),
        ]
    );
    // a prefix delete produces one DELETE per key
    p.ctl_ok(&["del", "--prefix", "/w/"]);
    let mut dels = read_events(&w, 3, "");
    dels.sort();
    assert_eq!(
        dels,
        vec![
            ev("DELETE", "/w/b", ""),
            ev("DELETE", "/w/end", ""),
            ev("DELETE", "/w/sentinel", ""),
        ]
    );
    assert_eq!(w.next_line(Duration::from_millis(300)), None);
}

#[test]
fn watch_rev_replays_history() {
    let p = Proc::datastore();
    let r = put_rev(&p, "/r/a", "1");
    p.ctl_ok(&["put", "/r/a", "2"]);
    p.ctl_ok(&["put", "/other", "x"]);
    p.ctl_ok(&["del", "/r/a"]);
    p.ctl_ok(&["put", "/r/b", "3"]);

    let w = p.ctl_background(&["watch", "--prefix", "/r/", "--rev", &r.to_string()]);
    assert_eq!(
        read_events(&w, 4, ""),
        vec![
            ev("PUT", "/r/a", "1"),
            ev("PUT", "/r/a", "2"),
            ev("DELETE", "/r/a", ""),
            ev("PUT", "/r/b", "3"),
        ]
    );
    // then live events follow
    p.ctl_ok(&["put", "/r/c", "4"]);
    assert_eq!(read_events(&w, 1, ""), vec![ev("PUT", "/r/c", "4")]);

    // single key from a later revision
    let w2 = p.ctl_background(&["watch", "/r/a", "--rev", &(r + 1).to_string()]);
    assert_eq!(
        read_events(&w2, 2, ""),
        vec![ev("PUT", "/r/a", "2"), ev("DELETE", "/r/a", "")]
    );
    assert_eq!(w2.next_line(Duration::from_millis(300)), None);
}

#[test]
fn watch_prev_kv() {
    let p = Proc::datastore();
    p.ctl_ok(&["put", "/pk", "1"]);
    let next = p.revision() + 1;
    let w = p.ctl_background(&["watch", "--prev-kv", "/pk", "--rev", &next.to_string()]);
    p.ctl_ok(&["put", "/pk", "2"]);
    p.ctl_ok(&["del", "/pk"]);
    p.ctl_ok(&["put", "/pk", "3"]);
    let lines = w.expect_lines(5 + 5 + 3, Duration::from_secs(10));
    assert_eq!(
        lines,
        vec![
            "PUT", "/pk", "1", "/pk", "2", // prev, then current
            "DELETE", "/pk", "2", "/pk", "", // prev, then the tombstone
            "PUT", "/pk", "3", // a new key has no previous pair
        ]
    );
}

/// Parses `lease 694d77aa9e38260f granted with TTL(30s)` and returns the id.
fn lease_id(grant_output: &str) -> String {
    let mut words = grant_output.split_whitespace();
    assert_eq!(words.next(), Some("lease"), "{grant_output}");
    let id = words.next().expect("lease id").to_string();
    i64::from_str_radix(&id, 16).unwrap_or_else(|_| panic!("lease id is not hex: {id}"));
    id
}

#[test]
fn leases() {
    let p = Proc::datastore();
    let out = p.ctl_ok(&["lease", "grant", "30"]);
    let id = lease_id(&out);
    assert_eq!(out, format!("lease {id} granted with TTL(30s)\n"));

    assert_eq!(
        p.ctl_ok(&["put", &format!("--lease={id}"), "/l/k", "v"]),
        "OK\n"
    );
    assert_eq!(
        p.ctl_ok(&["put", &format!("--lease={id}"), "/l/k2", "v"]),
        "OK\n"
    );
    let kv = json(&p.ctl_ok(&["get", "/l/k", "-w", "json"]));
    assert_eq!(
        kv["kvs"][0]["lease"].as_i64(),
        Some(i64::from_str_radix(&id, 16).unwrap()),
        "{kv}"
    );

    let ttl = p.ctl_ok(&["lease", "timetolive", &id, "--keys"]);
    let prefix = format!("lease {id} granted with TTL(30s), remaining(");
    let rest = ttl
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("unexpected timetolive output: {ttl}"));
    let (remaining, keys) = rest.split_once("s), ").expect("remaining(Ns), ");
    let remaining: i64 = remaining.parse().expect("remaining seconds");
    assert!((25..=30).contains(&remaining), "{ttl}");
    assert_eq!(keys, "attached keys([/l/k /l/k2])\n", "{ttl}");

    let ttl = p.ctl_ok(&["lease", "timetolive", &id]);
    assert!(ttl.starts_with(&prefix) && ttl.ends_with("s)\n"), "{ttl}");

    assert_eq!(
        p.ctl_ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(30)\n")
    );
    assert_eq!(
        p.ctl_ok(&["lease", "list"]),
        format!("found 1 leases\n{id}\n")
    );

    assert_eq!(
        p.ctl_ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(p.ctl_ok(&["get", "/l/", "--prefix"]), "");
    assert_eq!(
        p.ctl_ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(p.ctl_ok(&["lease", "list"]), "found 0 leases\n");
    let err = p.ctl_err(&["lease", "revoke", &id]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let err = p.ctl_err(&["put", &format!("--lease={id}"), "/l/k", "v"]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );

    // a chosen-by-the-client id
    let out = p.ctl_ok(&["lease", "grant", "60"]);
    let id2 = lease_id(&out);
    assert_ne!(id2, id, "lease ids are not reused");
}

#[test]
fn lease_expires() {
    let p = Proc::datastore();
    let id = lease_id(&p.ctl_ok(&["lease", "grant", "2"]));
    p.ctl_ok(&["put", &format!("--lease={id}"), "/exp", "soon"]);
    p.ctl_ok(&["put", "/stay", "here"]);
    assert_eq!(p.ctl_ok(&["get", "/exp"]), "/exp\nsoon\n");
    let expired = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        p.ctl_ok(&["get", "/exp"]).is_empty()
    });
    assert!(
        expired,
        "key of a 2 s lease still present after 10 s; server stderr:\n{}",
        p.log()
    );
    assert_eq!(
        p.ctl_ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(p.ctl_ok(&["get", "/stay"]), "/stay\nhere\n");
}

#[test]
fn compaction() {
    let p = Proc::datastore();
    let revs: Vec<i64> = (1..=5)
        .map(|i| put_rev(&p, "ck", &format!("v{i}")))
        .collect();
    let compact_at = revs[2];
    assert_eq!(
        p.ctl_ok(&["compaction", &compact_at.to_string()]),
        format!("compacted revision {compact_at}\n")
    );
    let err = p.ctl_err(&["get", "ck", "--rev", &revs[1].to_string()]);
    assert!(
        err.contains("etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    let err = p.ctl_err(&["get", "ck", "--rev", &revs[0].to_string()]);
    assert!(
        err.contains("required revision has been compacted"),
        "{err}"
    );
    // the compaction revision itself and later ones stay readable
    assert_eq!(
        p.ctl_ok(&["get", "ck", "--rev", &compact_at.to_string()]),
        "ck\nv3\n"
    );
    assert_eq!(
        p.ctl_ok(&["get", "ck", "--rev", &revs[3].to_string()]),
        "ck\nv4\n"
    );
    assert_eq!(p.ctl_ok(&["get", "ck"]), "ck\nv5\n");
    // compacting again at or below is an error
    let err = p.ctl_err(&["compaction", &compact_at.to_string()]);
    assert!(
        err.contains("required revision has been compacted"),
        "{err}"
    );
    let future = (revs[4] + 100).to_string();
    let err = p.ctl_err(&["compaction", &future]);
    assert!(
        err.contains("required revision is a future revision"),
        "{err}"
    );
    let err = p.ctl_err(&["get", "ck", "--rev", &future]);
    assert!(
        err.contains("etcdserver: mvcc: required revision is a future revision"),
        "{err}"
    );
    // watching from a compacted revision is cancelled by the server
    let out = p.ctl(&["watch", "ck", "--rev", &revs[0].to_string()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "watch was canceled (etcdserver: mvcc: required revision has been compacted)"
        ),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn endpoint_and_member() {
    let p = Proc::datastore();
    p.ctl_ok(&["put", "x", "y"]);
    let rev = p.revision();

    let status = p.ctl_ok(&["endpoint", "status"]);
    assert!(
        status.starts_with(&format!("{}, ", p.endpoint())),
        "{status}"
    );
    let st = json(&p.ctl_ok(&["endpoint", "status", "-w", "json"]));
    let arr = st.as_array().expect("endpoint status -w json is an array");
    assert_eq!(arr.len(), 1, "{st}");
    assert_eq!(arr[0]["Endpoint"], p.endpoint(), "{st}");
    assert_eq!(arr[0]["Status"]["header"]["revision"], rev, "{st}");
    assert!(arr[0]["Status"]["version"].is_string(), "{st}");
    assert!(arr[0]["Status"]["dbSize"].as_i64().unwrap_or(0) > 0, "{st}");

    // etcdctl 3.4 prints the simple health line on stderr
    let out = p.ctl(&["endpoint", "health"]);
    let health = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{health}");
    assert!(
        health.contains(&format!("{} is healthy", p.endpoint())),
        "{health}"
    );
    let h = json(&p.ctl_ok(&["endpoint", "health", "-w", "json"]));
    assert_eq!(h[0]["health"], true, "{h}");
    assert_eq!(h[0]["endpoint"], p.endpoint(), "{h}");

    let members = p.ctl_ok(&["member", "list"]);
    let lines: Vec<&str> = members.lines().collect();
    assert_eq!(lines.len(), 1, "one member: {members}");
    assert!(lines[0].contains(", started, "), "{members}");
    let ml = json(&p.ctl_ok(&["member", "list", "-w", "json"]));
    assert_eq!(ml["members"].as_array().map(|a| a.len()), Some(1), "{ml}");
}
