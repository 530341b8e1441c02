//! Preemption (upstream DefaultPreemption): for a pod that fits nowhere,
//! find the node where evicting the fewest, least important lower-priority
//! pods makes it fit.

use std::collections::HashMap;
use std::sync::Arc;

use super::cache::{Cache, NodeInfo};
use super::filters::{self, PodContext, Status, NOT_HELPFUL};
use super::objects::PodInfo;

pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";

#[derive(Debug)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Whether the pod may preempt at all (upstream PodEligibleToPreemptOthers).
pub fn eligible(pod: &PodInfo, cache: &Cache) -> Result<(), &'static str> {
    if pod.preempt_never {
        return Err(NEVER);
    }
    // Victims on the nominated node are still terminating: wait for them.
    if let Some(node) = cache.node(&pod.nominated_node) {
        if node
            .pods
            .values()
            .any(|p| p.deleting && p.priority < pod.priority)
        {
            return Err(TERMINATING);
        }
    }
    Ok(())
}

/// Victims on one node, or why there are none.
fn select_victims(ctx: &PodContext, node: &NodeInfo) -> Result<Vec<Arc<PodInfo>>, Status> {
    let pod = ctx.pod;
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods
        .values()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return Err(Status {
            reasons: vec![NO_VICTIMS.into()],
            unresolvable: true,
        });
    }
    let mut trial = node.clone();
    for p in &lower {
        trial.remove_pod(&p.key);
    }
    ctx.filter(&trial)?;
    // Keep (reprieve) the most important pods first; older before newer.
    lower.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then_with(|| a.created.cmp(&b.created))
    });
    let mut victims = Vec::new();
    for p in lower {
        trial.add_pod(p.clone());
        if ctx.filter(&trial).is_err() {
            trial.remove_pod(&p.key);
            victims.push(p);
        }
    }
    Ok(victims)
}

/// Picks the candidate node, or returns the "0/N nodes are available: ..."
/// text explaining why preemption cannot help.
pub fn find(
    ctx: &PodContext,
    cache: &Cache,
    statuses: &HashMap<String, Status>,
    total: usize,
) -> Result<Candidate, String> {
    let mut outcome: Vec<Status> = Vec::new();
    let mut best: Option<((i64, i64, usize), Candidate)> = None;
    for name in cache.node_names() {
        let Some(node) = cache.node(name) else {
            continue;
        };
        let helpful = statuses.get(name).is_some_and(|s| !s.unresolvable);
        if !helpful {
            outcome.push(Status {
                reasons: vec![NOT_HELPFUL.into()],
                unresolvable: true,
            });
            continue;
        }
        match select_victims(ctx, node) {
            Ok(victims) if !victims.is_empty() => {
                let rank = (
                    victims.iter().map(|v| v.priority).max().unwrap_or(i64::MIN),
                    victims.iter().map(|v| v.priority).sum::<i64>(),
                    victims.len(),
                );
                if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                    best = Some((
                        rank,
                        Candidate {
                            node: name.clone(),
                            victims,
                        },
                    ));
                }
            }
            Ok(_) => outcome.push(Status {
                reasons: vec![format!("expected at least one victim pod on node {name:?}")],
                unresolvable: false,
            }),
            Err(s) => outcome.push(s),
        }
    }
    match best {
        Some((_, c)) => Ok(c),
        None => Err(filters::fit_message(
            total,
            None,
            &filters::histogram(outcome.iter()),
            "",
        )),
    }
}
