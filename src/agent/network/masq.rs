//! Masquerade for the pod network, flannel's four rules in nftables, in
//! this instance's own table `ip nkn<instance>`: pod → pod keeps the pod
//! address (also across nodes), pod → outside is masqueraded, and outside
//! → a pod of another node is masqueraded so the answer comes back here.
//!
//! `nft` runs as a child of the calling thread (tokio's process spawn, not
//! a blocking pool thread): it inherits that thread's network namespace.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::model::Subnet;
use super::Error;

pub fn table_name(instance: &str) -> String {
    format!("nkn{instance}")
}

/// The whole table, replaced atomically (`flush` then the rules, in one
/// transaction). `node` is the own podCIDR, once known.
pub fn script(table: &str, cluster: Subnet, node: Option<Subnet>) -> String {
    let mut s = format!(
        "add table ip {table}\n\
         flush table ip {table}\n\
         add chain ip {table} postrouting {{ type nat hook postrouting priority 100; policy accept; }}\n\
         add rule ip {table} postrouting ip saddr {cluster} ip daddr {cluster} return\n\
         add rule ip {table} postrouting ip saddr {cluster} ip daddr != 224.0.0.0/4 masquerade fully-random\n"
    );
    if let Some(node) = node {
        s.push_str(&format!(
            "add rule ip {table} postrouting ip saddr != {cluster} ip daddr {node} return\n\
             add rule ip {table} postrouting ip saddr != {cluster} ip daddr {cluster} masquerade fully-random\n"
        ));
    }
    s
}

pub async fn apply(script: &str) -> Result<(), Error> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("nft: {e} (install the nftables package)")))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(script.as_bytes())
            .await
            .map_err(|e| Error::Nft(format!("nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Nft(format!("nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let short: Vec<&str> = err.lines().take(4).collect();
        return Err(Error::Nft(format!("nft -f: {}", short.join(" | "))));
    }
    Ok(())
}

pub async fn remove(table: &str) -> Result<(), Error> {
    apply(&format!("add table ip {table}\ndelete table ip {table}\n")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flannel_rules() {
        let cluster = Subnet::parse("10.42.0.0/16").unwrap();
        let s = script("nkn01234567", cluster, None);
        assert!(s.starts_with("add table ip nkn01234567\nflush table ip nkn01234567\n"));
        assert!(s.contains("ip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 return"));
        assert!(s.contains("ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade"));
        assert!(!s.contains("saddr !="));
        let s = script("t", cluster, Subnet::parse("10.42.3.0/24"));
        assert!(s.contains("ip saddr != 10.42.0.0/16 ip daddr 10.42.3.0/24 return"));
        assert!(s.contains("ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade"));
    }
}
