//! Request latency histograms as upstream's
//! `apiserver_request_duration_seconds` (same buckets, Prometheus text
//! format at `/metrics`), recorded for requests over HTTPS and for the
//! in-process clients alike, so the API latency SLO covers everything.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upstream's buckets (seconds).
const BUCKETS: [f64; 24] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0,
    8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// (verb, resource, component) → latencies.
static REQUESTS: Mutex<BTreeMap<(&'static str, String, &'static str), Histogram>> =
    Mutex::new(BTreeMap::new());

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Http,
    InProcess,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Http => "apiserver",
            Origin::InProcess => "in-process",
        }
    }
}

/// Records one request: `verb` as upstream labels it (GET, LIST, WATCH,
/// POST, PUT, PATCH, DELETE, DELETECOLLECTION).
pub fn observe(verb: &'static str, resource: &str, origin: Origin, took: Duration) {
    let secs = took.as_secs_f64();
    let mut map = REQUESTS.lock().unwrap_or_else(|p| p.into_inner());
    let h = map
        .entry((verb, resource.to_string(), origin.label()))
        .or_default();
    h.count += 1;
    h.sum += secs;
    for (i, le) in BUCKETS.iter().enumerate() {
        if secs <= *le {
            h.counts[i] += 1;
        }
    }
}

/// The Prometheus text exposition of every histogram.
pub fn render() -> String {
    let map = REQUESTS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut out = String::new();
    out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, resource and component.\n");
    out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
    for ((verb, resource, component), h) in &map {
        let labels = format!("component=\"{component}\",resource=\"{resource}\",verb=\"{verb}\"");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "apiserver_request_duration_seconds_sum{{{labels}}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "apiserver_request_duration_seconds_count{{{labels}}} {}",
            h.count
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_cumulative_buckets() {
        observe(
            "POST",
            "metricstest",
            Origin::InProcess,
            Duration::from_millis(30),
        );
        observe(
            "POST",
            "metricstest",
            Origin::InProcess,
            Duration::from_millis(3),
        );
        let text = render();
        let line = |le: &str| {
            text.lines()
                .find(|l| {
                    l.contains("resource=\"metricstest\"") && l.contains(&format!("le=\"{le}\""))
                })
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
        };
        assert_eq!(line("0.005").as_deref(), Some("1"));
        assert_eq!(line("0.05").as_deref(), Some("2"));
        assert_eq!(line("+Inf").as_deref(), Some("2"));
    }
}
