//! check-config against prepared roots: nothing readable, a kernel config,
//! cgroup v2 controllers, kernel versions.

use super::*;

fn levels(lines: &[Line]) -> Vec<(String, Level)> {
    lines.iter().map(|l| (l.name.clone(), l.level)).collect()
}

#[test]
fn an_empty_root_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let m = Machine::at(dir.path(), std::ffi::OsStr::new(""), None);
    let lines = run(&m);
    let l = levels(&lines);
    assert!(l.contains(&("kernel version".into(), Level::Warn)), "{l:?}");
    assert!(l.contains(&("kernel config".into(), Level::Warn)), "{l:?}");
    assert!(
        l.contains(&("cgroup hierarchy".into(), Level::Missing)),
        "{l:?}"
    );
    assert!(l.contains(&("containerd".into(), Level::Missing)), "{l:?}");
    assert!(l.contains(&("cni plugins".into(), Level::Missing)), "{l:?}");
    assert!(l.contains(&("overlay".into(), Level::Warn)), "{l:?}");
}

#[test]
fn kernel_config_decides_and_cgroup_v2_controllers_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let w = |p: &str, t: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    };
    w("proc/sys/kernel/osrelease", "6.1.0-rpi7\n");
    w(
        "boot/config-6.1.0-rpi7",
        "CONFIG_OVERLAY_FS=m\nCONFIG_BRIDGE=y\n# CONFIG_VETH is not set\n",
    );
    w("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n");
    let m = Machine::at(root, std::ffi::OsStr::new(""), None);
    let l = levels(&run(&m));
    assert!(l.contains(&("kernel version".into(), Level::Ok)), "{l:?}");
    assert!(l.contains(&("kernel config".into(), Level::Ok)), "{l:?}");
    assert!(l.contains(&("overlay".into(), Level::Ok)), "{l:?}");
    assert!(l.contains(&("bridge".into(), Level::Ok)), "{l:?}");
    assert!(l.contains(&("veth".into(), Level::Missing)), "{l:?}");
    assert!(l.contains(&("vxlan".into(), Level::Warn)), "{l:?}");
    assert!(l.contains(&("memory".into(), Level::Missing)), "{l:?}");
    assert!(l.contains(&("pids".into(), Level::Ok)), "{l:?}");
    assert!(l.contains(&("hugetlb".into(), Level::Warn)), "{l:?}");
}

#[test]
fn old_kernels() {
    assert_eq!(kernel_version(Some("2.6.32")).level, Level::Missing);
    assert_eq!(kernel_version(Some("4.19.0-25-amd64")).level, Level::Warn);
    assert_eq!(kernel_version(Some("6.18.44-fc")).level, Level::Ok);
}
