//! One line per check (`OK`, `WARN`, `MISSING`, with what to do), grouped,
//! then one summary line.

use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Missing,
}

#[derive(Debug, Clone)]
pub struct Line {
    pub group: &'static str,
    pub name: String,
    pub level: Level,
    pub detail: String,
}

impl Line {
    pub fn new(
        group: &'static str,
        name: impl Into<String>,
        level: Level,
        detail: impl Into<String>,
    ) -> Line {
        Line {
            group,
            name: name.into(),
            level,
            detail: detail.into(),
        }
    }
}

/// Prints `lines`; the number of required checks that failed. The summary
/// of a failure is the caller's error (one line on stderr).
pub fn print(out: &mut impl Write, lines: &[Line]) -> usize {
    let mut group = "";
    for l in lines {
        if l.group != group {
            group = l.group;
            let _ = writeln!(out, "{group}:");
        }
        let tag = match l.level {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Missing => "MISSING",
        };
        let _ = writeln!(out, "  {tag:<8}{}: {}", l.name, l.detail);
    }
    let failed = lines.iter().filter(|l| l.level == Level::Missing).count();
    let warned = lines.iter().filter(|l| l.level == Level::Warn).count();
    if failed == 0 {
        let _ = writeln!(
            out,
            "check-config: all required checks passed ({} checks, {warned} warnings)",
            lines.len()
        );
    }
    failed
}
