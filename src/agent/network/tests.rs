//! The desired-state rules (pure), then the whole module against the
//! in-process API and a real kernel (root): each "host" is a network
//! namespace the test makes, the module runs on a thread inside it, and
//! the kernel's state is read back with `ip`, `bridge` and `nft`. The only
//! traffic sent (a ping) goes between namespaces the test made.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::model::*;
use super::*;
use crate::api::{Api, ServiceNetwork};
use crate::client::Local;
use crate::datastore::{SqliteBackend, SqliteOptions};

fn node(name: &str, cidr: &str, kind: &str, ip: &str, mac: Option<&str>) -> Value {
    let data = match mac {
        Some(m) => json!({ "VNI": 1, "VtepMAC": m }).to_string(),
        None => "null".into(),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                BACKEND_TYPE: kind,
                BACKEND_DATA: data,
                PUBLIC_IP: ip,
                SUBNET_MANAGER: "true",
            },
        },
        "spec": { "podCIDR": cidr, "podCIDRs": [cidr] },
    })
}

fn sn(s: &str) -> Subnet {
    Subnet::parse(s).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn subnets() {
    let s = sn("10.42.3.7/24");
    assert_eq!(s.to_string(), "10.42.3.0/24");
    assert!(s.contains(ip("10.42.3.255")));
    assert!(!s.contains(ip("10.42.4.0")));
    assert!(sn("10.42.0.0/16").covers(&s));
    assert!(!s.covers(&sn("10.42.0.0/16")));
    assert_eq!(sn("1.2.3.4/0").to_string(), "0.0.0.0/0");
    assert_eq!(sn("1.2.3.4/32").to_string(), "1.2.3.4/32");
    for bad in ["10.0.0.0", "10.0.0.0/33", "fd00::/64", "x/8", ""] {
        assert!(Subnet::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn macs() {
    let m = vtep_mac("node-a");
    assert_eq!(m, vtep_mac("node-a"));
    assert_ne!(m, vtep_mac("node-b"));
    assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
    assert_eq!(parse_mac(&format_mac(&m)), Some(m));
    assert_eq!(
        parse_mac("AA:bb:cc:dd:ee:0f"),
        Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
    );
    for bad in [
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aabb:cc:dd:ee:ff",
        "zz:bb:cc:dd:ee:ff",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad}");
    }
}

#[test]
fn peers_from_annotations() {
    let n = node(
        "b",
        "10.42.2.0/24",
        "vxlan",
        "192.0.2.2",
        Some("02:00:00:00:00:02"),
    );
    let p = peer(&n, Kind::Vxlan).unwrap();
    assert_eq!(p.name, "b");
    assert_eq!(p.subnet, sn("10.42.2.0/24"));
    assert_eq!(p.public_ip, ip("192.0.2.2"));
    assert_eq!(p.mac, Some([2, 0, 0, 0, 0, 2]));
    // Another backend, a bad MAC, no podCIDR, no annotations: not a peer.
    assert!(peer(&n, Kind::HostGw).is_none());
    let bad = node("b", "10.42.2.0/24", "vxlan", "192.0.2.2", Some("nope"));
    assert!(peer(&bad, Kind::Vxlan).is_none());
    let mut no_cidr = n.clone();
    no_cidr["spec"] = json!({});
    assert!(peer(&no_cidr, Kind::Vxlan).is_none());
    assert!(peer(&json!({"metadata": {"name": "hollow"}}), Kind::Vxlan).is_none());
    // podCIDRs alone, IPv6 first.
    let mut dual = node("c", "x", "host-gw", "192.0.2.3", None);
    dual["spec"] = json!({ "podCIDRs": ["fd00::/64", "10.42.3.0/24"] });
    let p = peer(&dual, Kind::HostGw).unwrap();
    assert_eq!((p.subnet, p.mac), (sn("10.42.3.0/24"), None));
}

#[test]
fn own_annotations_and_patch() {
    let mac = [2, 1, 2, 3, 4, 5];
    let want = own_annotations(Kind::Vxlan, ip("192.0.2.1"), &mac);
    assert_eq!(want[BACKEND_TYPE], "vxlan");
    assert_eq!(want[PUBLIC_IP], "192.0.2.1");
    assert_eq!(want[SUBNET_MANAGER], "true");
    let data: Value = serde_json::from_str(&want[BACKEND_DATA]).unwrap();
    assert_eq!(data, json!({ "VNI": 1, "VtepMAC": "02:01:02:03:04:05" }));
    let bare = json!({ "metadata": { "name": "a", "annotations": { "x": "y" } } });
    let patch = annotations_patch(&bare, &want).unwrap();
    assert_eq!(
        patch["metadata"]["annotations"].as_object().unwrap().len(),
        4
    );
    let mut done = bare.clone();
    for (k, v) in &want {
        done["metadata"]["annotations"][k] = json!(v);
    }
    assert_eq!(annotations_patch(&done, &want), None);
    let hg = own_annotations(Kind::HostGw, ip("192.0.2.1"), &mac);
    assert_eq!(hg[BACKEND_DATA], "null");
}

fn peers() -> Vec<Peer> {
    let m = |n: u8| Some([2, 0, 0, 0, 0, n]);
    vec![
        Peer {
            name: "c".into(),
            subnet: sn("10.42.3.0/24"),
            public_ip: ip("192.0.2.3"),
            mac: m(3),
        },
        Peer {
            name: "a".into(),
            subnet: sn("10.42.1.0/24"),
            public_ip: ip("192.0.2.1"),
            mac: m(1),
        },
        Peer {
            name: "b".into(),
            subnet: sn("10.42.2.0/24"),
            public_ip: ip("192.0.2.2"),
            mac: m(2),
        },
        // Claims b's range: b wins (first by name).
        Peer {
            name: "d".into(),
            subnet: sn("10.42.2.0/23"),
            public_ip: ip("192.0.2.4"),
            mac: m(4),
        },
        // Claims the own range.
        Peer {
            name: "e".into(),
            subnet: sn("10.42.1.128/25"),
            public_ip: ip("192.0.2.5"),
            mac: m(5),
        },
    ]
}

#[test]
fn wanted_vxlan_and_host_gw() {
    let w = wanted(Kind::Vxlan, "a", Some(sn("10.42.1.0/24")), &peers());
    assert_eq!(
        w.fdb,
        BTreeMap::from([
            ([2, 0, 0, 0, 0, 2], ip("192.0.2.2")),
            ([2, 0, 0, 0, 0, 3], ip("192.0.2.3"))
        ])
    );
    assert_eq!(w.neigh[&ip("10.42.2.0")], [2, 0, 0, 0, 0, 2]);
    assert_eq!(
        w.routes[&sn("10.42.3.0/24")],
        Route {
            gateway: ip("10.42.3.0"),
            via_device: true
        }
    );
    assert_eq!(w.routes.len(), 2);
    let w = wanted(Kind::HostGw, "a", Some(sn("10.42.1.0/24")), &peers());
    assert!(w.fdb.is_empty() && w.neigh.is_empty());
    assert_eq!(
        w.routes[&sn("10.42.2.0/24")],
        Route {
            gateway: ip("192.0.2.2"),
            via_device: false
        }
    );
    assert_eq!(w.routes.len(), 2);
    assert!(wanted(Kind::Vxlan, "a", None, &peers()[1..2]).is_empty());
}

#[test]
fn diffs() {
    let w = wanted(Kind::Vxlan, "a", Some(sn("10.42.1.0/24")), &peers());
    // From nothing: everything added, nothing removed.
    let c = diff(&w, &Current::default());
    assert_eq!(
        (c.add_fdb.len(), c.set_neigh.len(), c.set_routes.len()),
        (2, 2, 2)
    );
    assert!(c.del_fdb.is_empty() && c.del_neigh.is_empty() && c.del_routes.is_empty());
    // In place: nothing to do.
    let mut cur = Current {
        fdb: w.fdb.iter().map(|(m, i)| (*m, *i)).collect(),
        neigh: w.neigh.iter().map(|(i, m)| (*i, (*m, true))).collect(),
        routes: w.routes.clone(),
    };
    assert!(diff(&w, &cur).is_empty());
    // A moved peer, a learnt (not permanent) neighbour, a stale node, a
    // route through the wrong gateway.
    cur.fdb.remove(&([2, 0, 0, 0, 0, 2], ip("192.0.2.2")));
    cur.fdb.insert(([2, 0, 0, 0, 0, 2], ip("192.0.2.9")));
    cur.fdb.insert(([2, 0, 0, 0, 0, 7], ip("192.0.2.7")));
    cur.neigh
        .insert(ip("10.42.3.0"), ([2, 0, 0, 0, 0, 3], false));
    cur.neigh
        .insert(ip("10.42.7.0"), ([2, 0, 0, 0, 0, 7], true));
    let stale = Route {
        gateway: ip("10.42.7.0"),
        via_device: true,
    };
    cur.routes.insert(sn("10.42.7.0/24"), stale);
    let wrong = Route {
        gateway: ip("192.0.2.2"),
        via_device: false,
    };
    cur.routes.insert(sn("10.42.2.0/24"), wrong);
    let c = diff(&w, &cur);
    assert_eq!(
        c.del_fdb,
        vec![
            ([2, 0, 0, 0, 0, 2], ip("192.0.2.9")),
            ([2, 0, 0, 0, 0, 7], ip("192.0.2.7"))
        ]
    );
    assert_eq!(c.add_fdb, vec![([2, 0, 0, 0, 0, 2], ip("192.0.2.2"))]);
    assert_eq!(
        c.del_neigh,
        vec![
            (ip("10.42.3.0"), [2, 0, 0, 0, 0, 3]),
            (ip("10.42.7.0"), [2, 0, 0, 0, 0, 7])
        ]
    );
    assert_eq!(c.set_neigh, vec![(ip("10.42.3.0"), [2, 0, 0, 0, 0, 3])]);
    assert_eq!(
        c.del_routes,
        vec![(sn("10.42.2.0/24"), wrong), (sn("10.42.7.0/24"), stale)]
    );
    assert_eq!(
        c.set_routes,
        vec![(sn("10.42.2.0/24"), w.routes[&sn("10.42.2.0/24")])]
    );
}

// ---- against the kernel (root) ----

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the pod network tests program the kernel in network namespaces they make: run them as root"
    );
}

fn sh(args: &[&str]) -> (bool, String) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn must(args: &[&str]) -> String {
    let (ok, text) = sh(args);
    assert!(ok, "{args:?}: {text}");
    text
}

/// A network namespace, deleted (with everything in it) on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("nkt{}{tag}", std::process::id() % 100_000);
        let _ = sh(&["ip", "netns", "del", &name]);
        must(&["ip", "netns", "add", &name]);
        must(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Ns(name)
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "-n", &self.0];
        a.extend_from_slice(args);
        must(&a)
    }

    fn exec(&self, args: &[&str]) -> (bool, String) {
        let mut a = vec!["ip", "netns", "exec", &self.0];
        a.extend_from_slice(args);
        sh(&a)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

async fn local_api() -> (Local, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteBackend::open(&dir.path().join("state.db"), SqliteOptions::default()).unwrap();
    let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
        .await
        .unwrap();
    (Local::new(api), dir)
}

fn nodes_res() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

/// The module running on a thread inside `ns` until the returned sender
/// is dropped or sent to; the handle gives its result.
fn start_in(
    ns: &Ns,
    client: Local,
    settings: Settings,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<Result<(), String>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let path = format!("/var/run/netns/{}", ns.0);
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(run(client, settings, async move {
            let _ = rx.await;
        }))
        .map_err(|e| e.to_string())
    });
    (tx, handle)
}

fn settings(node: &str, node_ip: &str, backend: FlannelBackend, instance: &str) -> Settings {
    Settings {
        node_name: node.into(),
        node_ip: node_ip.parse().unwrap(),
        iface: None,
        backend,
        cluster_cidr: "10.244.0.0/16".into(),
        instance: instance.into(),
        leave_running: false,
    }
}

/// Polls `check` until it holds (10 s at most).
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn instance() -> String {
    format!("{:08x}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_kernel_state_follows_nodes() {
    require_root();
    let host = Ns::new("v");
    host.ip(&[
        "link", "add", "nkt0", "type", "veth", "peer", "name", "nkt1",
    ]);
    host.ip(&["addr", "add", "192.0.2.1/24", "dev", "nkt0"]);
    host.ip(&["link", "set", "nkt0", "up"]);
    host.ip(&["link", "set", "nkt1", "up"]);
    let (client, _dir) = local_api().await;
    let own = node("a", "10.244.1.0/24", "x", "x", None);
    let mut own = own;
    own["metadata"]["annotations"] = json!({});
    client.create(&nodes_res(), None, own).await.unwrap();
    let b = node(
        "b",
        "10.244.2.0/24",
        "vxlan",
        "192.0.2.2",
        Some("02:00:00:00:00:0b"),
    );
    client.create(&nodes_res(), None, b).await.unwrap();
    // A node without the annotations (a hollow node) is left alone.
    let mut c = node("c", "10.244.3.0/24", "vxlan", "x", None);
    c["metadata"]["annotations"] = json!({});
    client.create(&nodes_res(), None, c).await.unwrap();
    let inst = instance();
    let dev = format!("nk{inst}.1");
    let (stop, done) = start_in(
        &host,
        client.clone(),
        settings("a", "192.0.2.1", FlannelBackend::Vxlan, &inst),
    );

    let fdb = || sh(&["bridge", "-n", &host.0, "fdb", "show", "dev", &dev]).1;
    let neigh = || sh(&["ip", "-n", &host.0, "neigh", "show", "dev", &dev]).1;
    let routes = || sh(&["ip", "-n", &host.0, "route", "show", "proto", "157"]).1;
    eventually("the peer's fdb entry", || {
        fdb().contains("02:00:00:00:00:0b dst 192.0.2.2")
    })
    .await;
    let link = host.ip(&["-d", "link", "show", &dev]);
    assert!(
        link.contains("vxlan id 1 local 192.0.2.1 dev nkt0"),
        "{link}"
    );
    assert!(link.contains("dstport 8472 nolearning"), "{link}");
    assert!(
        link.contains("mtu 1450") && link.contains(&format_mac(&vtep_mac("a"))),
        "{link}"
    );
    let addr = host.ip(&["-4", "addr", "show", &dev]);
    assert!(addr.contains("inet 10.244.1.0/32"), "{addr}");
    assert!(
        neigh().contains("10.244.2.0 lladdr 02:00:00:00:00:0b PERMANENT"),
        "{}",
        neigh()
    );
    let r = routes();
    assert!(
        r.contains(&format!("10.244.2.0/24 via 10.244.2.0 dev {dev} onlink")),
        "{r}"
    );
    assert!(!r.contains("10.244.3.0"), "{r}");
    assert_eq!(
        must(&[
            "ip",
            "netns",
            "exec",
            &host.0,
            "cat",
            "/proc/sys/net/ipv4/ip_forward"
        ])
        .trim(),
        "1"
    );
    let (ok, table) = host.exec(&["nft", "list", "table", "ip", &format!("nkn{inst}")]);
    assert!(ok && table.contains("masquerade"), "{table}");
    assert!(table.contains("ip daddr 10.244.1.0/24 return"), "{table}");
    // The own node was annotated.
    let a = client.get(&nodes_res(), None, "a").await.unwrap();
    assert_eq!(a["metadata"]["annotations"][BACKEND_TYPE], "vxlan");
    assert_eq!(a["metadata"]["annotations"][PUBLIC_IP], "192.0.2.1");
    let data: Value =
        serde_json::from_str(a["metadata"]["annotations"][BACKEND_DATA].as_str().unwrap()).unwrap();
    assert_eq!(data["VtepMAC"], format_mac(&vtep_mac("a")));

    // Manual deletions are repaired by the periodic resync.
    host.ip(&["route", "del", "10.244.2.0/24"]);
    must(&[
        "bridge",
        "-n",
        &host.0,
        "fdb",
        "del",
        "02:00:00:00:00:0b",
        "dev",
        &dev,
        "dst",
        "192.0.2.2",
    ]);
    eventually("repair", || {
        routes().contains("10.244.2.0/24") && fdb().contains("02:00:00:00:00:0b")
    })
    .await;

    // The peer moves: its entries follow.
    let patch = json!({ "metadata": { "annotations": { PUBLIC_IP: "192.0.2.3" } } });
    client
        .patch(&nodes_res(), None, "b", PatchType::Merge, &patch, None)
        .await
        .unwrap();
    eventually("the moved fdb entry", || {
        let f = fdb();
        f.contains("02:00:00:00:00:0b dst 192.0.2.3") && !f.contains("192.0.2.2")
    })
    .await;

    // The peer goes: so do its entries, and the device with the last one.
    client
        .delete(&nodes_res(), None, "b", &Default::default())
        .await
        .unwrap();
    eventually("the device removed", || {
        !sh(&["ip", "-n", &host.0, "link", "show", &dev]).0
    })
    .await;
    assert!(!routes().contains("10.244.2.0"));

    // Back again, then shutdown removes everything.
    let b = node(
        "b",
        "10.244.2.0/24",
        "vxlan",
        "192.0.2.2",
        Some("02:00:00:00:00:0b"),
    );
    client.create(&nodes_res(), None, b).await.unwrap();
    eventually("the route back", || routes().contains("10.244.2.0/24")).await;
    stop.send(()).unwrap();
    done.join().unwrap().unwrap();
    assert!(!sh(&["ip", "-n", &host.0, "link", "show", &dev]).0);
    assert!(routes().trim().is_empty(), "{}", routes());
    assert!(
        !host
            .exec(&["nft", "list", "table", "ip", &format!("nkn{inst}")])
            .0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gw_routes_follow_nodes() {
    require_root();
    let host = Ns::new("h");
    host.ip(&[
        "link", "add", "nkt0", "type", "veth", "peer", "name", "nkt1",
    ]);
    host.ip(&["addr", "add", "192.0.2.1/24", "dev", "nkt0"]);
    host.ip(&["link", "set", "nkt0", "up"]);
    host.ip(&["link", "set", "nkt1", "up"]);
    let (client, _dir) = local_api().await;
    let mut own = node("a", "10.244.1.0/24", "x", "x", None);
    own["metadata"]["annotations"] = json!({});
    client.create(&nodes_res(), None, own).await.unwrap();
    let b = node("b", "10.244.2.0/24", "host-gw", "192.0.2.2", None);
    client.create(&nodes_res(), None, b).await.unwrap();
    // A vxlan node is not reachable by host-gw.
    let c = node(
        "c",
        "10.244.3.0/24",
        "vxlan",
        "192.0.2.3",
        Some("02:00:00:00:00:0c"),
    );
    client.create(&nodes_res(), None, c).await.unwrap();
    let inst = format!("{:08x}", std::process::id() ^ 0x5a5a);
    // --flannel-iface: the public address is the interface's.
    let mut s = settings("a", "127.0.0.1", FlannelBackend::HostGw, &inst);
    s.iface = Some("nkt0".into());
    let (stop, done) = start_in(&host, client.clone(), s);
    let routes = || sh(&["ip", "-n", &host.0, "route", "show", "proto", "157"]).1;
    eventually("the host-gw route", || {
        routes().contains("10.244.2.0/24 via 192.0.2.2 dev nkt0")
    })
    .await;
    assert!(!routes().contains("10.244.3.0"));
    assert!(!sh(&["ip", "-n", &host.0, "link", "show", &format!("nk{inst}.1")]).0);
    let a = client.get(&nodes_res(), None, "a").await.unwrap();
    assert_eq!(a["metadata"]["annotations"][BACKEND_TYPE], "host-gw");
    assert_eq!(a["metadata"]["annotations"][PUBLIC_IP], "192.0.2.1");
    assert_eq!(a["metadata"]["annotations"][BACKEND_DATA], "null");
    client
        .delete(&nodes_res(), None, "b", &Default::default())
        .await
        .unwrap();
    eventually("the route removed", || !routes().contains("10.244.2.0")).await;
    let b = node("b", "10.244.2.0/24", "host-gw", "192.0.2.2", None);
    client.create(&nodes_res(), None, b).await.unwrap();
    eventually("the route back", || routes().contains("10.244.2.0/24")).await;
    stop.send(()).unwrap();
    done.join().unwrap().unwrap();
    assert!(routes().trim().is_empty(), "{}", routes());
    assert!(
        !host
            .exec(&["nft", "list", "table", "ip", &format!("nkn{inst}")])
            .0
    );
}

/// Two hosts joined by a veth pair, a "pod" namespace behind each: pods
/// reach each other over VXLAN, keeping their addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_two_hosts_talk_over_vxlan() {
    require_root();
    let (ha, hb) = (Ns::new("a"), Ns::new("b"));
    let (pa, pb) = (Ns::new("pa"), Ns::new("pb"));
    ha.ip(&[
        "link", "add", "nkt0", "type", "veth", "peer", "name", "nkt0", "netns", &hb.0,
    ]);
    for (h, p, n) in [(&ha, &pa, 1), (&hb, &pb, 2)] {
        h.ip(&["addr", "add", &format!("192.0.2.{n}/24"), "dev", "nkt0"]);
        h.ip(&["link", "set", "nkt0", "up"]);
        h.ip(&[
            "link", "add", "nkp0", "type", "veth", "peer", "name", "eth0", "netns", &p.0,
        ]);
        h.ip(&["addr", "add", &format!("10.244.{n}.1/24"), "dev", "nkp0"]);
        h.ip(&["link", "set", "nkp0", "up"]);
        p.ip(&["addr", "add", &format!("10.244.{n}.2/24"), "dev", "eth0"]);
        p.ip(&["link", "set", "eth0", "up"]);
        p.ip(&["route", "add", "default", "via", &format!("10.244.{n}.1")]);
    }
    let (client, _dir) = local_api().await;
    for (name, cidr) in [("a", "10.244.1.0/24"), ("b", "10.244.2.0/24")] {
        let mut n = node(name, cidr, "x", "x", None);
        n["metadata"]["annotations"] = json!({});
        client.create(&nodes_res(), None, n).await.unwrap();
    }
    let base = std::process::id() & 0xfff_fff0;
    let (ia, ib) = (format!("{:08x}", base | 1), format!("{:08x}", base | 2));
    let (stop_a, done_a) = start_in(
        &ha,
        client.clone(),
        settings("a", "192.0.2.1", FlannelBackend::Vxlan, &ia),
    );
    let (stop_b, done_b) = start_in(
        &hb,
        client.clone(),
        settings("b", "192.0.2.2", FlannelBackend::Vxlan, &ib),
    );
    // busybox-static's ping (the CI machine has no iputils).
    let ping = |from: &Ns, to: &str| from.exec(&["busybox", "ping", "-c", "1", "-W", "1", to]).0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ping(&pa, "10.244.2.2") {
        if Instant::now() > deadline {
            for h in [&ha, &hb] {
                for cmd in [
                    &["ip", "-d", "link"][..],
                    &["ip", "addr"],
                    &["ip", "route"],
                    &["ip", "neigh"],
                    &["bridge", "fdb"],
                    &["nft", "list", "ruleset"],
                    &["sysctl", "net.ipv4.ip_forward"],
                ] {
                    eprintln!("{} {cmd:?}:\n{}", h.0, h.exec(cmd).1);
                }
            }
            panic!("pod a cannot reach pod b");
        }
    }
    assert!(ping(&pb, "10.244.1.2"), "pod b → pod a");
    // The pod's address arrives unchanged (no masquerade inside the
    // cluster network): b's conntrack saw a's pod address.
    let (ok, ct) = hb.exec(&["conntrack", "-L", "-p", "icmp"]);
    assert!(ok && ct.contains("src=10.244.1.2 dst=10.244.2.2"), "{ct}");
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    done_a.join().unwrap().unwrap();
    done_b.join().unwrap().unwrap();
    assert!(
        !ping(&pa, "10.244.2.2"),
        "the network is gone after shutdown"
    );
}
