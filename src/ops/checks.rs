//! The checks of `nanokube check-config`, after k3s's and moby's
//! check-config scripts: kernel version and features, cgroups, the
//! binaries the node agent runs, and the sysctls pod networking needs.
//! MISSING only on definite evidence (a kernel config without the
//! symbol, an absent controller or binary); without evidence, WARN.

use super::machine::{KernelConfig, Machine};
use super::report::{Level, Line};

/// A kernel feature: its config symbols (all needed) and what shows it at
/// run time when no kernel config can be read.
struct Feature {
    name: &'static str,
    symbols: &'static [&'static str],
    required: bool,
    /// A path whose existence shows the feature, or a (file, word) pair.
    probe: Probe,
    why: &'static str,
}

enum Probe {
    Path(&'static str),
    Word(&'static str, &'static str),
    None,
}

const FEATURES: &[Feature] = &[
    Feature {
        name: "overlay",
        symbols: &["OVERLAY_FS"],
        required: true,
        probe: Probe::Word("/proc/filesystems", "overlay"),
        why: "containerd's overlayfs snapshotter",
    },
    Feature {
        name: "bridge",
        symbols: &["BRIDGE"],
        required: true,
        probe: Probe::Path("/sys/module/bridge"),
        why: "the CNI bridge of the node's pods",
    },
    Feature {
        name: "br_netfilter",
        symbols: &["BRIDGE_NETFILTER"],
        required: true,
        probe: Probe::Path("/proc/sys/net/bridge"),
        why: "service traffic between pods on one bridge",
    },
    Feature {
        name: "veth",
        symbols: &["VETH"],
        required: true,
        probe: Probe::Path("/sys/module/veth"),
        why: "pod network interfaces",
    },
    Feature {
        name: "nf_tables",
        symbols: &[
            "NF_TABLES",
            "NF_TABLES_INET",
            "NFT_NAT",
            "NFT_CT",
            "NFT_MASQ",
        ],
        required: true,
        probe: Probe::Path("/sys/module/nf_tables"),
        why: "service rules (--proxy-mode nftables, the default) and masquerading",
    },
    Feature {
        name: "conntrack and nat",
        symbols: &["NF_CONNTRACK", "NF_NAT"],
        required: true,
        probe: Probe::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
        why: "service address translation",
    },
    Feature {
        name: "iptables",
        symbols: &[
            "IP_NF_IPTABLES",
            "IP_NF_FILTER",
            "IP_NF_NAT",
            "IP_NF_TARGET_MASQUERADE",
            "NETFILTER_XT_MATCH_ADDRTYPE",
            "NETFILTER_XT_MATCH_CONNTRACK",
            "NETFILTER_XT_MATCH_COMMENT",
            "NETFILTER_XT_MATCH_MULTIPORT",
            "NETFILTER_XT_MATCH_STATISTIC",
        ],
        required: false,
        probe: Probe::Path("/proc/net/ip_tables_names"),
        why: "needed only with --proxy-mode iptables",
    },
    Feature {
        name: "vxlan",
        symbols: &["VXLAN"],
        required: false,
        probe: Probe::Path("/sys/module/vxlan"),
        why: "pod traffic between nodes with --flannel-backend vxlan (the default)",
    },
    Feature {
        name: "cfs bandwidth",
        symbols: &["CFS_BANDWIDTH"],
        required: false,
        probe: Probe::None,
        why: "CPU limits of containers",
    },
    Feature {
        name: "seccomp",
        symbols: &["SECCOMP", "SECCOMP_FILTER"],
        required: false,
        probe: Probe::Word("/proc/self/status", "Seccomp:"),
        why: "seccompProfile RuntimeDefault",
    },
];

const KERNEL: &str = "Kernel";
const CGROUPS: &str = "Cgroups";
const BINARIES: &str = "Binaries";
const SYSCTLS: &str = "Sysctls";

/// Every check, in print order.
pub fn run(m: &Machine) -> Vec<Line> {
    let mut lines = Vec::new();
    let release = m.kernel_release();
    lines.push(kernel_version(release.as_deref()));
    let (config, looked) = m.kernel_config(release.as_deref());
    lines.push(match &config {
        Some(c) => Line::new(KERNEL, "kernel config", Level::Ok, format!("read from {}", c.source)),
        None => Line::new(
            KERNEL,
            "kernel config",
            Level::Warn,
            format!("not found ({looked}): features below are judged from /proc and /sys; pass --kernel-config PATH to check them exactly"),
        ),
    });
    lines.push(namespaces(m));
    for f in FEATURES {
        lines.push(feature(m, config.as_ref(), f));
    }
    lines.extend(cgroups(m));
    lines.extend(binaries(m));
    lines.extend(sysctls(m));
    lines
}

fn kernel_version(release: Option<&str>) -> Line {
    let Some(r) = release else {
        return Line::new(
            KERNEL,
            "kernel version",
            Level::Warn,
            "unknown: /proc/sys/kernel/osrelease cannot be read (is /proc mounted?)",
        );
    };
    let mut parts = r
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version < (3, 10) {
        Line::new(
            KERNEL,
            "kernel version",
            Level::Missing,
            format!("{r}: too old for containers; upgrade the kernel"),
        )
    } else if version < (5, 13) {
        Line::new(KERNEL, "kernel version", Level::Warn, format!("{r}: nftables service rules (the default) are tested on 5.13 and later, as upstream kube-proxy's nftables mode needs; upgrade the kernel or use --proxy-mode iptables"))
    } else {
        Line::new(KERNEL, "kernel version", Level::Ok, r)
    }
}

fn namespaces(m: &Machine) -> Line {
    if !m.exists("/proc/self") {
        return Line::new(
            KERNEL,
            "namespaces",
            Level::Warn,
            "/proc is not mounted: cannot tell",
        );
    }
    let missing: Vec<&str> = ["mnt", "net", "pid", "ipc", "uts"]
        .into_iter()
        .filter(|n| !m.exists(&format!("/proc/self/ns/{n}")))
        .collect();
    if missing.is_empty() {
        Line::new(KERNEL, "namespaces", Level::Ok, "mnt, net, pid, ipc, uts")
    } else {
        Line::new(
            KERNEL,
            "namespaces",
            Level::Missing,
            format!(
                "{} missing: enable CONFIG_NAMESPACES and each namespace in the kernel",
                missing.join(", ")
            ),
        )
    }
}

fn feature(m: &Machine, config: Option<&KernelConfig>, f: &Feature) -> Line {
    let miss = if f.required {
        Level::Missing
    } else {
        Level::Warn
    };
    if let Some(c) = config {
        let unset: Vec<String> = f
            .symbols
            .iter()
            .filter(|s| c.get(s).is_none())
            .map(|s| format!("CONFIG_{s}"))
            .collect();
        if unset.is_empty() {
            let modules = f.symbols.iter().any(|s| c.get(s) == Some('m'));
            let how = if modules {
                "enabled (some as modules: they must be loadable)"
            } else {
                "built in"
            };
            return Line::new(KERNEL, f.name, Level::Ok, how);
        }
        return Line::new(
            KERNEL,
            f.name,
            miss,
            format!(
                "{} not set, {}: use a kernel with them",
                unset.join(", "),
                f.why
            ),
        );
    }
    let seen = match f.probe {
        Probe::Path(p) => m.exists(p),
        Probe::Word(file, word) => m
            .read(file)
            .is_some_and(|t| t.split_whitespace().any(|w| w == word)),
        Probe::None => false,
    };
    if seen {
        Line::new(KERNEL, f.name, Level::Ok, "present")
    } else {
        // Built-in parts need not show in /sys/module: no evidence either way.
        Line::new(
            KERNEL,
            f.name,
            Level::Warn,
            format!(
                "not seen and no kernel config to check ({}); load its module if it is one",
                f.why
            ),
        )
    }
}

const MEMORY_FIX: &str = "enable it on the kernel command line: cgroup_memory=1 cgroup_enable=memory (Raspberry Pi: /boot/firmware/cmdline.txt), then reboot";

fn cgroups(m: &Machine) -> Vec<Line> {
    let mut lines = Vec::new();
    if !m.exists("/sys/fs/cgroup") {
        lines.push(Line::new(CGROUPS, "cgroup hierarchy", Level::Missing, "/sys/fs/cgroup does not exist: mount cgroup2 there (mount -t cgroup2 none /sys/fs/cgroup) or boot an init that does"));
        return lines;
    }
    if let Some(controllers) = m.read("/sys/fs/cgroup/cgroup.controllers") {
        lines.push(Line::new(
            CGROUPS,
            "cgroup hierarchy",
            Level::Ok,
            "v2 (unified)",
        ));
        let have: Vec<&str> = controllers.split_whitespace().collect();
        for (c, required) in [
            ("cpu", true),
            ("memory", true),
            ("pids", true),
            ("cpuset", false),
            ("io", false),
            ("hugetlb", false),
        ] {
            lines.push(if have.contains(&c) {
                Line::new(CGROUPS, c, Level::Ok, "available")
            } else if c == "memory" {
                Line::new(
                    CGROUPS,
                    c,
                    Level::Missing,
                    format!("not in /sys/fs/cgroup/cgroup.controllers: {MEMORY_FIX}"),
                )
            } else {
                let level = if required {
                    Level::Missing
                } else {
                    Level::Warn
                };
                Line::new(
                    CGROUPS,
                    c,
                    level,
                    "not in /sys/fs/cgroup/cgroup.controllers: enable it in the kernel",
                )
            });
        }
        return lines;
    }
    let hybrid = m.exists("/sys/fs/cgroup/unified");
    lines.push(Line::new(
        CGROUPS,
        "cgroup hierarchy",
        Level::Ok,
        if hybrid { "v1 (hybrid)" } else { "v1" },
    ));
    let Some(table) = m.read("/proc/cgroups") else {
        lines.push(Line::new(
            CGROUPS,
            "controllers",
            Level::Warn,
            "/proc/cgroups cannot be read: cannot tell which controllers are enabled",
        ));
        return lines;
    };
    // `#subsys_name hierarchy num_cgroups enabled`
    let enabled = |name: &str| {
        table.lines().filter(|l| !l.starts_with('#')).any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&name) && cols.get(3) == Some(&"1")
        })
    };
    for (c, required) in [
        ("cpu", true),
        ("cpuacct", true),
        ("memory", true),
        ("pids", true),
        ("devices", true),
        ("cpuset", false),
        ("freezer", false),
        ("hugetlb", false),
    ] {
        let miss = if required {
            Level::Missing
        } else {
            Level::Warn
        };
        lines.push(if !enabled(c) {
            let fix = if c == "memory" { MEMORY_FIX } else { "enable it in the kernel" };
            Line::new(CGROUPS, c, miss, format!("not enabled in /proc/cgroups: {fix}"))
        } else if !m.exists(&format!("/sys/fs/cgroup/{c}")) {
            Line::new(CGROUPS, c, miss, format!("enabled but not mounted at /sys/fs/cgroup/{c}: mount it (cgroupfs-mount does all)"))
        } else {
            Line::new(CGROUPS, c, Level::Ok, "enabled and mounted")
        });
    }
    lines
}

fn binaries(m: &Machine) -> Vec<Line> {
    let mut lines = Vec::new();
    let bins: [(&str, bool, &str); 7] = [
        ("containerd", true, "install containerd (Debian/Ubuntu: apt-get install containerd)"),
        ("runc", true, "install runc (apt-get install runc)"),
        ("nft", true, "install nftables (apt-get install nftables): service rules and masquerading"),
        ("ip", true, "install iproute2 (apt-get install iproute2): the cluster DNS address"),
        ("iptables", false, "install iptables: needed only with --proxy-mode iptables"),
        ("conntrack", false, "install conntrack: stale UDP entries of removed service endpoints are flushed with it (--proxy-mode iptables)"),
        ("kubectl", false, "install kubectl to use nanokube kubectl"),
    ];
    for (name, required, fix) in bins {
        lines.push(match m.binary(name) {
            Some(p) => Line::new(BINARIES, name, Level::Ok, p.display().to_string()),
            None => Line::new(
                BINARIES,
                name,
                if required {
                    Level::Missing
                } else {
                    Level::Warn
                },
                format!("not found: {fix}"),
            ),
        });
    }
    // The node agent looks in these unless --cni-bin-dir says otherwise.
    let plugins = ["bridge", "host-local", "loopback", "portmap"];
    lines.push(match m.dir_with(&["/usr/lib/cni", "/opt/cni/bin"], &plugins) {
        Some(d) => Line::new(BINARIES, "cni plugins", Level::Ok, format!("{d} (bridge, host-local, loopback, portmap)")),
        None => Line::new(BINARIES, "cni plugins", Level::Missing, "bridge, host-local, loopback and portmap not found in /usr/lib/cni or /opt/cni/bin: install containernetworking-plugins (or pass --cni-bin-dir)"),
    });
    lines
}

fn sysctls(m: &Machine) -> Vec<Line> {
    [
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", "pods reach beyond the node"),
        ("net.bridge.bridge-nf-call-iptables", "/proc/sys/net/bridge/bridge-nf-call-iptables", "pod to service to pod on one bridge"),
    ]
    .into_iter()
    .map(|(key, file, why)| match m.read(file).map(|v| v.trim().to_string()) {
        Some(v) if v == "1" => Line::new(SYSCTLS, key, Level::Ok, "1"),
        Some(v) => Line::new(SYSCTLS, key, Level::Warn, format!("{v} ({why}): nanokube sets it to 1 at start when run as root; to keep it: echo {key}=1 > /etc/sysctl.d/90-nanokube.conf")),
        None if key.starts_with("net.bridge") => Line::new(SYSCTLS, key, Level::Warn, format!("absent ({why}): load br_netfilter (modprobe br_netfilter)")),
        None => Line::new(SYSCTLS, key, Level::Warn, format!("{file} cannot be read: cannot tell")),
    })
    .collect()
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
