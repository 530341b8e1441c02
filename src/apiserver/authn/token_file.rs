//! `--token-auth-file`: upstream's static bearer tokens, CSV records
//! `token,user,uid[,"group1,group2"]`, read once at start.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::AuthnError;
use crate::api::authz::UserInfo;

/// Tokens and the users they authenticate (groups as written, without
/// `system:authenticated`, which authentication adds to everyone).
#[derive(Clone, Default)]
pub struct TokenFile {
    users: Arc<HashMap<String, UserInfo>>,
}

impl TokenFile {
    /// Reads `path`; a missing file or a short record is an error (the
    /// server refuses to start), as upstream.
    pub fn load(path: &Path) -> Result<TokenFile, AuthnError> {
        let text = std::fs::read(path).map_err(|source| AuthnError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| AuthnError::Invalid {
            path: path.display().to_string(),
            reason,
        })
    }

    fn parse(text: &[u8]) -> Result<TokenFile, String> {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text);
        let mut users = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("record {}: {e}", i + 1))?;
            if record.len() < 3 {
                return Err(format!(
                    "record {}: must have at least 3 columns (token, user name, user uid), found {}",
                    i + 1,
                    record.len()
                ));
            }
            let token = record[0].to_string();
            if token.is_empty() {
                return Err(format!("record {}: the token is empty", i + 1));
            }
            let groups = record
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: record[1].to_string(),
                uid: record[2].to_string(),
                groups,
                extra: Default::default(),
            };
            if users.insert(token, user).is_some() {
                tracing::warn!(record = i + 1, "duplicate token in the token file");
            }
        }
        Ok(TokenFile {
            users: Arc::new(users),
        })
    }

    /// The user `token` stands for.
    pub fn user(&self, token: &str) -> Option<&UserInfo> {
        self.users.get(token)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upstream_records() {
        let f = TokenFile::parse(
            b"t1,alice,1001,\"dev, ops\"\nt2,bob,1002\n\"t,3\",carol,1003,viewers\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        let a = f.user("t1").unwrap();
        assert_eq!((a.name.as_str(), a.uid.as_str()), ("alice", "1001"));
        assert_eq!(a.groups, ["dev", "ops"]);
        assert!(f.user("t2").unwrap().groups.is_empty());
        assert_eq!(f.user("t,3").unwrap().name, "carol");
        assert!(f.user("t4").is_none());
    }

    #[test]
    fn bad_files_are_refused() {
        let e = TokenFile::parse(b"t1,alice\n").err().unwrap();
        assert!(e.contains("at least 3 columns"), "{e}");
        assert!(TokenFile::parse(b",alice,1\n").is_err());
        assert!(TokenFile::parse(b"t1,\"alice,1\n").is_err());
        assert!(TokenFile::load(Path::new("/nonexistent/tokens.csv")).is_err());
    }
}
