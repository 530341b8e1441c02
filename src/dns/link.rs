//! The host interface holding the cluster DNS address as a /32: a dummy
//! link where the kernel has them, else a bridge without ports (some
//! kernels, like the CI machines', lack the dummy driver). Either way the
//! address is local, so the host reaches it directly and pods through
//! their default route.

use std::net::IpAddr;

use tokio::process::Command;

use super::Error;

/// `nkd<instance>`: at most 15 characters (IFNAMSIZ).
pub(crate) fn name(instance: &str) -> String {
    let mut n = format!("nkd{instance}");
    n.truncate(15);
    n
}

async fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates the link (replacing a stale one of an earlier run) with
/// `address/32` on it, up.
pub(crate) async fn create(link: &str, address: IpAddr) -> Result<(), Error> {
    // A stale link from a run that did not clean up: start afresh.
    let _ = ip(&["link", "del", link]).await;
    if ip(&["link", "add", link, "type", "dummy"]).await.is_err() {
        ip(&["link", "add", link, "type", "bridge"])
            .await
            .map_err(Error::Setup)?;
    }
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    let cidr = format!("{address}/{prefix}");
    let set = async {
        ip(&["addr", "add", &cidr, "dev", link]).await?;
        ip(&["link", "set", link, "up"]).await
    };
    if let Err(e) = set.await {
        let _ = ip(&["link", "del", link]).await;
        return Err(Error::Setup(e));
    }
    Ok(())
}

pub(crate) async fn remove(link: &str) {
    if let Err(e) = ip(&["link", "del", link]).await {
        tracing::warn!(link, error = %e, "cannot remove the cluster dns link");
    }
}
