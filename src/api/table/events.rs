//! Events: core/v1 and events.k8s.io/v1 share upstream's printer (the latter is
//! converted to the core shape first, as the internal API does).

use serde_json::{json, Value};

use super::clock::{since, time_at, Nanos};
use super::docs;
use super::format::{at, opt_i, s, Col, Printer, Row};

pub(super) const CORE_EVENTS: Printer = Printer {
    columns: COLUMNS,
    row: print_core_event,
};
pub(super) const EVENTS_V1: Printer = Printer {
    columns: COLUMNS,
    row: print_events_v1,
};

const COLUMNS: &[Col] = &[
    Col::new("Last Seen", "string", docs::EV_LAST),
    Col::new("Type", "string", docs::EV_TYPE),
    Col::new("Reason", "string", docs::EV_REASON),
    Col::new("Object", "string", docs::EV_OBJECT),
    Col::wide("Subobject", "string", docs::EV_FIELD_PATH),
    Col::wide("Source", "string", docs::EV_SOURCE),
    Col::new("Message", "string", docs::EV_MESSAGE),
    Col::wide("First Seen", "string", docs::EV_FIRST),
    Col::wide("Count", "string", docs::EV_COUNT),
    Col {
        priority: 1,
        ..Col::NAME
    },
];

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn print_core_event(ev: &Value, now: Nanos) -> Row {
    let first = match time_at(ev, &["firstTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => since(time_at(ev, &["eventTime"]), now),
    };
    let mut last = match time_at(ev, &["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = opt_i(ev, &["count"]).unwrap_or(0);
    if let Some(series) = at(ev, &["series"]).filter(|v| v.is_object()) {
        last = since(time_at(series, &["lastObservedTime"]), now);
        count = opt_i(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let kind = s(ev, &["involvedObject", "kind"]).to_lowercase();
    let target = match s(ev, &["involvedObject", "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(
        s(ev, &["source", "component"]),
        s(ev, &["reportingComponent"]),
    );
    let host = first_non_empty(s(ev, &["source", "host"]), s(ev, &["reportingInstance"]));
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        Value::from(last),
        Value::from(s(ev, &["type"])),
        Value::from(s(ev, &["reason"])),
        Value::from(target),
        Value::from(s(ev, &["involvedObject", "fieldPath"])),
        Value::from(source),
        Value::from(s(ev, &["message"]).trim()),
        Value::from(first),
        Value::from(count),
        Value::from(s(ev, &["metadata", "name"])),
    ]
    .into()
}

/// events.k8s.io/v1 -> core/v1 field mapping, mirroring upstream's conversion.
pub(super) fn events_v1_to_core(ev: &Value) -> Value {
    let pick = |key: &str| at(ev, &[key]).cloned().unwrap_or(Value::Null);
    json!({
        "metadata": pick("metadata"),
        "involvedObject": pick("regarding"),
        "related": pick("related"),
        "reason": pick("reason"),
        "message": pick("note"),
        "type": pick("type"),
        "action": pick("action"),
        "eventTime": pick("eventTime"),
        "series": pick("series"),
        "source": pick("deprecatedSource"),
        "firstTimestamp": pick("deprecatedFirstTimestamp"),
        "lastTimestamp": pick("deprecatedLastTimestamp"),
        "count": pick("deprecatedCount"),
        "reportingComponent": pick("reportingController"),
        "reportingInstance": pick("reportingInstance"),
    })
}

fn print_events_v1(ev: &Value, now: Nanos) -> Row {
    print_core_event(&events_v1_to_core(ev), now)
}
