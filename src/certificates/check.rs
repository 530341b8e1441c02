//! `nanokube certificate check`: every certificate file of the server's
//! TLS directory and of the node agent's credentials, with its subject,
//! issuer, expiry and days left.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::pki;

use super::{Error, Output};

/// One certificate file as printed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Row {
    file: String,
    subject: String,
    issuer: String,
    serial: String,
    ca: bool,
    not_after: String,
    days_left: i64,
    status: &'static str,
}

/// Certificate files (`*.crt`) of `dir`, sorted; none when it is absent.
fn crt_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "crt"))
        .collect();
    out.sort();
    Ok(out)
}

fn status(days_left: i64, ca: bool) -> &'static str {
    match days_left {
        d if d < 0 => "EXPIRED",
        // CAs are not renewed automatically; leaves are (90 days before).
        d if d < 90 && !ca => "RENEW AT START",
        d if d < 90 => "EXPIRES SOON",
        _ => "OK",
    }
}

pub(super) fn rows(data_dir: &Path, now: i64) -> Result<Vec<Row>, Error> {
    let mut files = crt_files(&pki::tls_dir(data_dir))?;
    files.extend(crt_files(&data_dir.join("agent").join("credentials"))?);
    let mut rows = Vec::new();
    for path in files {
        let pem = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let info = pki::inspect_certificate(&path, &pem)?;
        let days_left = (info.not_after - now).div_euclid(86_400);
        rows.push(Row {
            file: path
                .strip_prefix(data_dir)
                .unwrap_or(&path)
                .display()
                .to_string(),
            subject: info.subject_text,
            issuer: info.issuer_text,
            serial: info.serial,
            ca: info.is_ca,
            not_after: jiff::Timestamp::from_second(info.not_after)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| info.not_after.to_string()),
            days_left,
            status: status(days_left, info.is_ca),
        });
    }
    Ok(rows)
}

fn table(rows: &[Row]) -> String {
    let head = [
        "FILE",
        "SUBJECT",
        "ISSUER",
        "NOT AFTER",
        "DAYS LEFT",
        "STATUS",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.file.clone(),
                r.subject.clone(),
                r.issuer.clone(),
                r.not_after.clone(),
                r.days_left.to_string(),
                r.status.to_string(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: [&str; 6]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(width).enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(head);
    for row in &cells {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

pub fn run(data_dir: &Path, output: Output) -> Result<(), Error> {
    let rows = rows(data_dir, jiff::Timestamp::now().as_second())?;
    if rows.is_empty() {
        return Err(Error::NoPki(pki::tls_dir(data_dir)));
    }
    let text = match output {
        Output::Table => table(&rows),
        Output::Json => serde_json::to_string_pretty(&rows)? + "\n",
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_listed_with_days_left() {
        let dir = tempfile::tempdir().unwrap();
        let names = pki::serving_names("h", &[], &[], "cluster.local", "10.43.0.0/16").unwrap();
        pki::ensure(&pki::tls_dir(dir.path()), &names).unwrap();
        let now = jiff::Timestamp::now().as_second();
        let listed = rows(dir.path(), now).unwrap();
        let files: Vec<&str> = listed.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "server/tls/client-admin.crt",
                "server/tls/client-ca.crt",
                "server/tls/server-ca.crt",
                "server/tls/serving-kube-apiserver.crt"
            ]
        );
        for r in &listed {
            assert_eq!(r.status, "OK", "{r:?}");
            let want = if r.ca { 3650 } else { 365 };
            assert!((want - 1..=want).contains(&r.days_left), "{r:?}");
        }
        let text = table(&listed);
        assert!(text.starts_with("FILE"), "{text}");
        assert!(text.contains("CN=system:admin"), "{text}");
        // A year later the leaves are past due and the CAs still fine.
        let later = rows(dir.path(), now + 300 * 86_400).unwrap();
        assert_eq!(later[0].status, "RENEW AT START");
        assert_eq!(later[1].status, "OK");
    }

    #[test]
    fn statuses() {
        assert_eq!(status(-1, false), "EXPIRED");
        assert_eq!(status(10, false), "RENEW AT START");
        assert_eq!(status(10, true), "EXPIRES SOON");
        assert_eq!(status(200, true), "OK");
    }
}
