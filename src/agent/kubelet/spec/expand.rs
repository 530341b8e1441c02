//! `$(VAR)` references in env values, command and args, with upstream's
//! rules: `$$` is an escaped `$`, an unknown or unterminated reference
//! stays as written, a `$` before anything else is kept.

/// Expands `$(VAR)` from `env` (the last definition of a name wins).
pub fn expand(template: &str, env: &[(String, String)]) -> String {
    expand_with(template, |name| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

/// Expands with a lookup; `None` keeps the reference as written.
pub(super) fn expand_with(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.is_empty() {
            // A trailing `$` is copied.
            out.push('$');
            rest = after;
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(close) => {
                    let name = &body[..close];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[close + 1..];
                }
                None => {
                    // Unterminated: `$(` is kept and scanning goes on after it.
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("EMPTY", ""),
            ("VAR_A", "A2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn follows_upstream_cases() {
        let cases = [
            ("$(VAR_B)", "B"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_B)", "A2-B"),
            ("$(EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(VAR_B)", "$(VAR_B)"),
            ("$$$(VAR_B)", "$B"),
            ("$$$$(VAR_B)", "$$(VAR_B)"),
            ("$(VAR_B", "$(VAR_B"),
            ("$(VAR_B$(VAR_A)", "$(VAR_B$(VAR_A)"),
            ("$VAR_B", "$VAR_B"),
            ("$", "$"),
            ("$$", "$"),
            ("a$", "a$"),
            ("$()", "$()"),
            ("x$(VAR_B)y$(VAR_B)z", "xByBz"),
            ("€$(VAR_B)€$é", "€B€$é"),
            ("no refs", "no refs"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env()), want, "{input}");
        }
    }

    #[test]
    fn values_are_not_expanded_again() {
        let env = vec![
            ("A".to_string(), "$(B)".to_string()),
            ("B".to_string(), "b".to_string()),
        ];
        assert_eq!(expand("$(A)", &env), "$(B)");
    }
}
