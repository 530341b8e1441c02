//! The server's scheduled snapshots: one task sleeping until the next cron
//! time, saving, then pruning the oldest scheduled snapshots of this node.
//! A failed snapshot is logged and tried again at the next tick.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use croner::parser::{CronParser, Seconds};
use croner::Cron;

use super::files::{self, Source};
use crate::datastore::SqliteBackend;

/// Five fields as cron (k3s's `0 */12 * * *`), or six with seconds first.
pub fn parse(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}

/// For clap: checks the expression when the flags are parsed.
pub fn valid(expr: &str) -> Result<String, String> {
    parse(expr).map(|_| expr.to_string())
}

pub struct Plan {
    pub cron: Cron,
    pub expr: String,
    pub dir: PathBuf,
    pub name: String,
    pub node: String,
    pub retention: usize,
}

pub async fn run(plan: Plan, store: Arc<SqliteBackend>) {
    tracing::info!(
        schedule = %plan.expr,
        dir = %plan.dir.display(),
        retention = plan.retention,
        "scheduled datastore snapshots on"
    );
    let plan = Arc::new(plan);
    loop {
        let now = jiff::Zoned::now();
        let next = match plan.cron.find_next_occurrence(&now, false) {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(%err, schedule = %plan.expr, "no next snapshot time: scheduled snapshots stop");
                return;
            }
        };
        let wait = now
            .timestamp()
            .duration_until(next.timestamp())
            .try_into()
            .unwrap_or(Duration::ZERO);
        tokio::time::sleep(wait).await;
        // Named by the tick, not the clock: two ticks never share a name.
        let unix = u64::try_from(next.timestamp().as_second()).unwrap_or(0);
        let (plan, store) = (plan.clone(), store.clone());
        let done = tokio::task::spawn_blocking(move || take(&plan, &store, unix)).await;
        if let Err(err) = done {
            tracing::warn!(%err, "scheduled snapshot task failed; trying again at the next tick");
        }
    }
}

fn take(plan: &Plan, store: &SqliteBackend, unix: u64) {
    let started = Instant::now();
    let saved = files::file_name(&plan.name, &plan.node, unix)
        .and_then(|name| files::save(Source::Backend(store), &plan.dir, &name));
    match saved {
        Ok(entry) => tracing::info!(
            name = %entry.name,
            revision = entry.revision.unwrap_or(0),
            bytes = entry.size,
            ms = started.elapsed().as_millis() as u64,
            "datastore snapshot saved"
        ),
        Err(err) => {
            tracing::warn!(%err, "scheduled snapshot failed; trying again at the next tick");
            return;
        }
    }
    match files::prune(&plan.dir, &plan.name, &plan.node, plan.retention) {
        Ok(pruned) if !pruned.is_empty() => {
            tracing::info!(deleted = ?pruned, "old scheduled snapshots pruned")
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "pruning scheduled snapshots failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_expressions() {
        let every_12h = parse("0 */12 * * *").unwrap();
        let at: jiff::Zoned = "2026-01-01T05:30:00+00:00[UTC]".parse().unwrap();
        let next = every_12h.find_next_occurrence(&at, false).unwrap();
        assert_eq!(next.hour(), 12);
        assert_eq!(next.minute(), 0);
        let every_second = parse("*/1 * * * * *").unwrap();
        let next = every_second.find_next_occurrence(&at, false).unwrap();
        assert_eq!(next.second(), 1);
        assert!(valid("not cron").is_err());
        assert!(valid("61 * * * *").is_err());
    }
}
