//! The node's CNI network: one conflist in `A/etc/cni/net.d/` that the
//! CRI plugin reads (it watches the directory and picks changes up).
//!
//! bridge (`nk<id>`, gateway, hairpin) with host-local IPAM over the node's
//! pod CIDR, then portmap for hostPort. Loopback is set up by the CRI plugin
//! itself. cniVersion 0.4.0 suits Debian's plugins (1.1.1).
//!
//! No `ipMasq`: the bridge plugin would masquerade everything leaving the
//! node's /24, pods on other nodes included; `agent::network` masquerades
//! only what leaves the cluster network, so pod → pod keeps the pod IP.

use std::net::IpAddr;
use std::path::Path;

use super::config::write_if_changed;
use super::Error;

pub const CONFLIST: &str = "10-nanokube.conflist";

pub fn conflist(
    network: &str,
    bridge: &str,
    pod_cidr: &str,
    ipam_dir: &Path,
) -> Result<String, Error> {
    let (addr, prefix) = pod_cidr
        .split_once('/')
        .ok_or_else(|| Error::InvalidCidr(pod_cidr.to_string()))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| Error::InvalidCidr(pod_cidr.to_string()))?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| Error::InvalidCidr(pod_cidr.to_string()))?;
    let (max, default_route) = match addr {
        IpAddr::V4(_) => (30, "0.0.0.0/0"),
        IpAddr::V6(_) => (126, "::/0"),
    };
    if prefix > max {
        return Err(Error::InvalidCidr(pod_cidr.to_string()));
    }
    let doc = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr }]],
                    "routes": [{ "dst": default_route }],
                    "dataDir": ipam_dir,
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
                "snat": true,
            },
        ],
    });
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Config(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Writes the conflist unless it is already current.
pub fn write(conf_dir: &Path, text: &str) -> Result<bool, Error> {
    std::fs::create_dir_all(conf_dir).map_err(|e| Error::Io {
        path: conf_dir.display().to_string(),
        source: e,
    })?;
    write_if_changed(&conf_dir.join(CONFLIST), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_and_portmap() {
        let text = conflist(
            "nanokube-0123abcd",
            "nk0123abcd",
            "10.42.0.0/24",
            Path::new("/a/cni"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["name"], "nanokube-0123abcd");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "nk0123abcd");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.0.0/24");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(bridge["ipam"]["dataDir"], "/a/cni");
        let portmap = &v["plugins"][1];
        assert_eq!(portmap["capabilities"]["portMappings"], true);
        assert_eq!(portmap["snat"], true);
        let v6 = conflist("n", "b", "fd00::/64", Path::new("/a")).unwrap();
        assert!(v6.contains("\"::/0\""));
    }

    #[test]
    fn bad_cidrs() {
        for bad in [
            "10.42.0.0",
            "10.42.0/24",
            "10.42.0.0/33",
            "x/8",
            "10.0.0.0/31",
        ] {
            assert!(conflist("n", "b", bad, Path::new("/a")).is_err(), "{bad}");
        }
    }

    #[test]
    fn rewrites_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let text = conflist("n", "b", "10.1.0.0/24", Path::new("/a")).unwrap();
        assert!(write(dir.path(), &text).unwrap());
        assert!(!write(dir.path(), &text).unwrap());
    }
}
