//! The built-in add-ons that are objects, compiled in from `embedded/` and
//! staged into the manifests dir at every start, as k3s stages its own:
//! rewritten when their content differs (local edits do not survive a
//! restart; `<file>.skip` keeps the objects as they are), removed when
//! `--disable` names them, so the deploy loop deletes their objects.

use std::net::IpAddr;
use std::path::Path;

use super::Error;
use crate::config::Component;

struct Addon {
    file: &'static str,
    text: &'static str,
    disabled_by: &'static [Component],
}

const ADDONS: &[Addon] = &[Addon {
    file: "coredns.yaml",
    text: include_str!("../../embedded/manifests/coredns.yaml"),
    disabled_by: &[Component::Coredns, Component::Dns],
}];

/// The cluster settings the templates use.
pub struct Settings {
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
    pub disabled: Vec<Component>,
}

/// k3s's `%{NAME}%` placeholders.
fn render(text: &str, s: &Settings) -> String {
    text.replace("%{CLUSTER_DNS}%", &s.cluster_dns.to_string())
        .replace("%{CLUSTER_DOMAIN}%", &s.cluster_domain)
}

/// Writes (or removes, when disabled) every add-on's file under `dir`.
pub fn stage(dir: &Path, s: &Settings) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    for addon in ADDONS {
        let path = dir.join(addon.file);
        if addon.disabled_by.iter().any(|c| s.disabled.contains(c)) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = addon.file, "disabled add-on removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
            continue;
        }
        let content = render(addon.text, s);
        // Unchanged content is not rewritten: no write at each start.
        if std::fs::read(&path).ok().as_deref() == Some(content.as_bytes()) {
            continue;
        }
        let tmp = dir.join(format!(".{}.tmp", addon.file));
        std::fs::write(&tmp, &content).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        tracing::info!(file = addon.file, "add-on staged");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(disabled: Vec<Component>) -> Settings {
        Settings {
            cluster_dns: "10.43.0.10".parse().unwrap(),
            cluster_domain: "cluster.local".into(),
            disabled,
        }
    }

    #[test]
    fn stages_templated_and_removes_disabled() {
        let dir = tempfile::tempdir().unwrap();
        stage(dir.path(), &settings(vec![])).unwrap();
        let path = dir.path().join("coredns.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("clusterIP: 10.43.0.10"), "{text}");
        assert!(!text.contains("%{"), "{text}");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        stage(dir.path(), &settings(vec![])).unwrap();
        let after = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(before, after, "unchanged add-on rewritten");
        stage(dir.path(), &settings(vec![Component::Dns])).unwrap();
        assert!(!path.exists());
    }
}
