use serde_json::json;

use super::model::{Slice, State};
use super::nft_rules::*;
use super::test_fixtures::*;

const READY: [(&str, bool, bool, bool, &str); 3] = [
    ("10.42.0.5", true, true, false, "n1"),
    ("10.42.1.6", true, true, false, "n2"),
    ("10.42.0.7", true, true, false, "n1"),
];

/// The one chain whose name starts with `prefix`.
fn chain<'a>(rs: &'a Ruleset, prefix: &str) -> (&'a str, &'a str) {
    let found: Vec<_> = rs
        .chains
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "chains {prefix}*: {:?}", rs.chains.keys());
    (found[0].0, found[0].1)
}

fn map<'a>(rs: &'a Ruleset, name: &str) -> Vec<(&'a str, &'a str)> {
    rs.maps[name]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn cluster_ip_balances_ready_endpoints() {
    let rs = generate(
        &cfg(),
        &state(vec![web(json!({}))], vec![slice("web", 8080, &READY)]),
    );
    let (name, body) = chain(&rs, "svc-");
    assert!(name.ends_with("-default/web/tcp/http"), "{name}");
    assert_eq!(
        body,
        "ip daddr { 10.43.0.20 } ip saddr != 10.42.0.0/16 meta mark set meta mark or 0x4000\n\
         numgen random mod 3 == 0 meta l4proto tcp dnat to 10.42.0.5:8080\n\
         numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.1.6:8080\n\
         meta l4proto tcp dnat to 10.42.0.7:8080\n"
    );
    assert_eq!(
        map(&rs, "service-ips"),
        vec![("10.43.0.20 . tcp . 80", format!("goto {name}").as_str())]
    );
    assert!(rs.maps["no-endpoint-services"].is_empty());
    assert!(rs.maps["hairpin"].contains_key("10.42.1.6 . 10.42.1.6"));
    assert_eq!(
        rs.chains["services"],
        "ip daddr . meta l4proto . th dport vmap @service-ips\n\
         ip daddr { 192.0.2.5 } meta l4proto . th dport vmap @service-nodeports\n"
    );
    assert!(rs.chains["masquerading"]
        .starts_with("ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random\n"));
    assert!(!rs.chains.keys().any(|c| c.starts_with("ext-")));
}

#[test]
fn no_endpoints_reject_at_once() {
    let rs = generate(
        &cfg(),
        &state(
            vec![web(json!({"type": "NodePort", "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]}))],
            vec![],
        ),
    );
    assert_eq!(
        map(&rs, "no-endpoint-services"),
        vec![("10.43.0.20 . tcp . 80", "goto reject-chain")]
    );
    assert_eq!(
        map(&rs, "no-endpoint-nodeports"),
        vec![("tcp . 30080", "goto reject-chain")]
    );
    assert!(rs.maps["service-ips"].is_empty());
    assert_eq!(
        rs.chains["reject-chain"],
        "meta l4proto tcp reject with tcp reset\nreject\n"
    );
    assert_eq!(
        rs.chains["filter-output"],
        "ct state new jump endpoints-check\n"
    );
    assert!(!rs.chains.keys().any(|c| c.starts_with("svc-")));
}

#[test]
fn terminating_only_as_fallback() {
    let eps = [
        ("10.42.0.5", true, true, false, "n1"),
        ("10.42.0.6", false, true, true, "n1"),
    ];
    let rs = generate(
        &cfg(),
        &state(vec![web(json!({}))], vec![slice("web", 8080, &eps)]),
    );
    let (_, body) = chain(&rs, "svc-");
    assert!(!body.contains("10.42.0.6"), "{body}");
    let eps = [
        ("10.42.0.6", false, true, true, "n1"),
        ("10.42.0.7", false, false, true, "n1"),
    ];
    let rs = generate(
        &cfg(),
        &state(vec![web(json!({}))], vec![slice("web", 8080, &eps)]),
    );
    let (_, body) = chain(&rs, "svc-");
    assert!(body.contains("dnat to 10.42.0.6:8080"), "{body}");
    assert!(!body.contains("10.42.0.7"), "{body}");
}

#[test]
fn node_port_external_ips_and_load_balancer() {
    let (key, mut s) = web(
        json!({"type": "LoadBalancer", "externalIPs": ["198.51.100.1"],
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]}),
    );
    s.lb_ips = vec!["192.0.2.5".into()];
    let rs = generate(
        &cfg(),
        &state(vec![(key, s)], vec![slice("web", 8080, &READY)]),
    );
    let (ext, body) = chain(&rs, "ext-");
    let (svc, _) = chain(&rs, "svc-");
    assert_eq!(
        body,
        format!("meta mark set meta mark or 0x4000\ngoto {svc}\n")
    );
    let goto_ext = format!("goto {ext}");
    assert_eq!(
        map(&rs, "service-ips"),
        vec![
            ("10.43.0.20 . tcp . 80", format!("goto {svc}").as_str()),
            ("192.0.2.5 . tcp . 80", goto_ext.as_str()),
            ("198.51.100.1 . tcp . 80", goto_ext.as_str()),
        ]
    );
    assert_eq!(
        map(&rs, "service-nodeports"),
        vec![("tcp . 30080", goto_ext.as_str())]
    );
}

#[test]
fn external_local_keeps_source_and_drops_without_local() {
    let spec = json!({"type": "NodePort", "externalTrafficPolicy": "Local",
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30081}]});
    let rs = generate(
        &cfg(),
        &state(vec![web(spec.clone())], vec![slice("web", 8080, &READY)]),
    );
    let (_, ext) = chain(&rs, "ext-");
    let (svc, _) = chain(&rs, "svc-");
    let (loc, local) = chain(&rs, "loc-");
    assert_eq!(
        ext,
        format!(
            "ip saddr 10.42.0.0/16 goto {svc}\n\
             fib saddr type local meta mark set meta mark or 0x4000\n\
             fib saddr type local goto {svc}\n\
             goto {loc}\n"
        )
    );
    // Only this node's endpoints, and no masquerade mark.
    assert_eq!(
        local,
        "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.5:8080\n\
         meta l4proto tcp dnat to 10.42.0.7:8080\n"
    );
    let remote = [("10.42.1.6", true, true, false, "n2")];
    let rs = generate(
        &cfg(),
        &state(vec![web(spec)], vec![slice("web", 8080, &remote)]),
    );
    assert_eq!(
        map(&rs, "no-endpoint-nodeports"),
        vec![("tcp . 30081", "drop")]
    );
    assert!(rs.maps["service-nodeports"].is_empty());
    // The ClusterIP still balances over every endpoint.
    assert_eq!(rs.maps["service-ips"].len(), 1);
}

#[test]
fn internal_local_and_affinity() {
    let spec = json!({"internalTrafficPolicy": "Local", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}});
    let rs = generate(
        &cfg(),
        &state(vec![web(spec)], vec![slice("web", 8080, &READY)]),
    );
    let (loc, body) = chain(&rs, "loc-");
    assert!(!rs.chains.keys().any(|c| c.starts_with("svc-")));
    assert_eq!(
        map(&rs, "service-ips"),
        vec![("10.43.0.20 . tcp . 80", format!("goto {loc}").as_str())]
    );
    assert_eq!(rs.sets.len(), 2, "{:?}", rs.sets);
    assert!(rs.sets.values().all(|t| *t == 60));
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("ip daddr { 10.43.0.20 } ip saddr != 10.42.0.0/16"));
    assert!(lines[1].starts_with("ip saddr @aff-") && lines[1].contains(" goto ep-"));
    assert!(lines[3].starts_with("numgen random mod 2 == 0 goto ep-"));
    let (name, ep) = rs
        .chains
        .iter()
        .find(|(n, _)| n.starts_with("ep-") && n.ends_with("__10.42.0.5/8080"))
        .unwrap();
    let set = lines[1].split(' ').nth(2).unwrap();
    assert!(lines[1].ends_with(&format!("goto {name}")) || body.contains(&format!("{set} goto")));
    assert!(ep.starts_with("update @aff-"), "{ep}");
    assert!(
        ep.ends_with("{ ip saddr }\nmeta l4proto tcp dnat to 10.42.0.5:8080\n"),
        "{ep}"
    );
}

#[test]
fn dns_ip_skipped_and_udp_listed() {
    let dns = svc(
        "dns",
        json!({"clusterIP": "10.43.0.10",
            "ports": [{"name": "dns", "protocol": "UDP", "port": 53}]}),
    );
    let u = svc(
        "u",
        json!({"clusterIP": "10.43.0.30",
            "ports": [{"name": "dns", "protocol": "UDP", "port": 53}]}),
    );
    let obj = json!({"metadata": {"namespace": "default", "name": "u-1",
            "labels": {"kubernetes.io/service-name": "u"}},
        "addressType": "IPv4", "ports": [{"name": "dns", "protocol": "UDP", "port": 5353}],
        "endpoints": [{"addresses": ["10.42.0.9"]}]});
    let sl = ("default/u-1".to_string(), Slice::from_json(&obj).unwrap());
    let rs = generate(&cfg(), &state(vec![dns, u], vec![sl]));
    assert!(!rs.maps["service-ips"]
        .keys()
        .any(|k| k.starts_with("10.43.0.10")));
    assert!(!rs.maps["no-endpoint-services"]
        .keys()
        .any(|k| k.starts_with("10.43.0.10")));
    assert!(rs.maps["service-ips"].contains_key("10.43.0.30 . udp . 53"));
    assert_eq!(
        rs.udp["10.43.0.30"].iter().collect::<Vec<_>>(),
        vec!["10.42.0.9:5353"]
    );
}

#[test]
fn full_render_is_one_transaction() {
    let st = state(vec![web(json!({}))], vec![slice("web", 8080, &READY)]);
    let rs = generate(&cfg(), &st);
    let t = table_name(&cfg().prefix);
    assert_eq!(t, "nk0a1b2c3d");
    let first = render_full(&t, None, &rs);
    assert!(first.starts_with("add table ip nk0a1b2c3d\ndelete table ip nk0a1b2c3d\n"));
    assert!(first.contains(
        "chain nat-prerouting { type nat hook prerouting priority -100; policy accept; }"
    ));
    assert!(first.contains("set hairpin { type ipv4_addr . ipv4_addr; }"));
    assert!(
        first.contains("add element ip nk0a1b2c3d service-ips { 10.43.0.20 . tcp . 80 : goto svc-")
    );
    assert!(!first.contains("flush"));
    // Over an earlier sync: no delete table (affinity sets survive),
    // every chain flushed, stale ones deleted.
    let empty = generate(&cfg(), &state(vec![], vec![]));
    let again = render_full(&t, Some(&rs), &empty);
    assert!(!again.contains("delete table"));
    assert!(again.contains("flush map ip nk0a1b2c3d service-ips\n"));
    assert!(again.contains("flush set ip nk0a1b2c3d hairpin\n"));
    let (svc, _) = chain(&rs, "svc-");
    assert!(again.contains(&format!("flush chain ip nk0a1b2c3d {svc}\n")));
    assert!(again.ends_with(&format!("delete chain ip nk0a1b2c3d {svc}\n")));
}

#[test]
fn changes_touch_only_what_changed() {
    let t = "nk0a1b2c3d";
    let before = generate(
        &cfg(),
        &state(vec![web(json!({}))], vec![slice("web", 8080, &READY)]),
    );
    assert_eq!(render_changes(t, &before, &before), "");
    let after = generate(
        &cfg(),
        &state(vec![web(json!({}))], vec![slice("web", 8080, &READY[..2])]),
    );
    let (svc, _) = chain(&after, "svc-");
    let text = render_changes(t, &before, &after);
    assert_eq!(
        text,
        format!(
            "flush chain ip {t} {svc}\n\
             table ip {t} {{\n  chain {svc} {{\n\
             ip daddr {{ 10.43.0.20 }} ip saddr != 10.42.0.0/16 meta mark set meta mark or 0x4000\n\
             numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.5:8080\n\
             meta l4proto tcp dnat to 10.42.1.6:8080\n  }}\n}}\n\
             delete element ip {t} hairpin {{ 10.42.0.7 . 10.42.0.7 }}\n"
        )
    );
    // Scaled to 0: the chain goes, the address rejects.
    let gone = generate(&cfg(), &state(vec![web(json!({}))], vec![]));
    let text = render_changes(t, &after, &gone);
    assert!(text.contains(&format!(
        "delete element ip {t} service-ips {{ 10.43.0.20 . tcp . 80 }}\n"
    )));
    assert!(text.contains(&format!(
        "add element ip {t} no-endpoint-services {{ 10.43.0.20 . tcp . 80 : goto reject-chain }}\n"
    )));
    assert!(text.ends_with(&format!("delete chain ip {t} {svc}\n")));
    // Affinity turned on: new sets and endpoint chains declared first.
    let sticky = generate(
        &cfg(),
        &state(
            vec![web(json!({"sessionAffinity": "ClientIP"}))],
            vec![slice("web", 8080, &READY)],
        ),
    );
    let text = render_changes(t, &before, &sticky);
    let decl = text.find("flags dynamic,timeout; timeout 10800s;").unwrap();
    assert!(decl < text.find("update @aff-").unwrap(), "{text}");
}

#[test]
fn thousand_services_generate_fast() {
    let mut st = State {
        node_ips: vec!["192.0.2.5".into()],
        ..Default::default()
    };
    for i in 0..1000 {
        let name = format!("s{i}");
        let (k, s) = svc(
            &name,
            json!({"clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}),
        );
        st.services.insert(k, s);
        let eps: Vec<(String, bool, bool, bool, &str)> = (0..5)
            .map(|j| {
                (
                    format!("10.42.{}.{}", i % 250, j + 1),
                    true,
                    true,
                    false,
                    "n1",
                )
            })
            .collect();
        let eps: Vec<(&str, bool, bool, bool, &str)> = eps
            .iter()
            .map(|(a, b, c, d, e)| (a.as_str(), *b, *c, *d, *e))
            .collect();
        let (k, s) = slice(&name, 8080, &eps);
        st.slices.insert(k, s);
    }
    let t0 = std::time::Instant::now();
    let rs = generate(&cfg(), &st);
    let text = render_full("nk0a1b2c3d", None, &rs);
    // One of them has the DNS address, skipped.
    assert_eq!(rs.maps["service-ips"].len(), 999);
    assert!(text.lines().count() > 6000);
    // Debug builds are slow; this only guards against a quadratic slip.
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
}
