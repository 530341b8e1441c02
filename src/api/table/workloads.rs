//! apps/v1 and batch/v1 workloads.

use serde_json::Value;

use super::clock::{age, human_duration, since, time_at, Nanos};
use super::docs;
use super::format::{
    arr, at, containers, format_label_selector, format_labels, i, map, name, opt_b, opt_i, opt_s,
    s, selector_string, Col, Printer, Row,
};

pub(super) fn lookup(group: &str, resource: &str) -> Option<&'static Printer> {
    Some(match (group, resource) {
        ("apps", "deployments") => &DEPLOYMENTS,
        ("apps", "replicasets") => &REPLICASETS,
        ("apps", "statefulsets") => &STATEFULSETS,
        ("apps", "daemonsets") => &DAEMONSETS,
        ("apps", "controllerrevisions") => &CONTROLLERREVISIONS,
        ("batch", "jobs") => &JOBS,
        ("batch", "cronjobs") => &CRONJOBS,
        _ => return None,
    })
}

const CONTAINERS: Col = Col::wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Col = Col::wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

fn template_containers(obj: &Value) -> (Value, Value) {
    containers(arr(obj, &["spec", "template", "spec", "containers"]))
}

const DEPLOYMENTS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Ready", "string", "Number of the pod with ready state"),
        Col::new("Up-to-date", "string", docs::DEPLOY_UPDATED),
        Col::new("Available", "string", docs::DEPLOY_AVAILABLE),
        Col::AGE,
        CONTAINERS,
        IMAGES,
        Col::wide("Selector", "string", docs::DEPLOY_SELECTOR),
    ],
    row: |d, now| {
        let (names, images) = template_containers(d);
        // Deployments print the raw selector string: "" when empty, "<invalid>" on error.
        let selector =
            selector_string(at(d, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".into());
        vec![
            name(d),
            Value::from(format!(
                "{}/{}",
                i(d, &["status", "readyReplicas"]),
                i(d, &["spec", "replicas"])
            )),
            Value::from(i(d, &["status", "updatedReplicas"])),
            Value::from(i(d, &["status", "availableReplicas"])),
            age(d, now),
            names,
            images,
            Value::from(selector),
        ]
        .into()
    },
};

const REPLICASETS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Desired", "integer", docs::RS_REPLICAS),
        Col::new("Current", "integer", docs::RS_CURRENT),
        Col::new("Ready", "integer", docs::RS_READY),
        Col::AGE,
        CONTAINERS,
        IMAGES,
        Col::wide("Selector", "string", docs::RS_SELECTOR),
    ],
    row: |rs, now| {
        let (names, images) = template_containers(rs);
        vec![
            name(rs),
            Value::from(i(rs, &["spec", "replicas"])),
            Value::from(i(rs, &["status", "replicas"])),
            Value::from(i(rs, &["status", "readyReplicas"])),
            age(rs, now),
            names,
            images,
            Value::from(format_label_selector(at(rs, &["spec", "selector"]))),
        ]
        .into()
    },
};

const STATEFULSETS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Ready", "string", "Number of the pod with ready state"),
        Col::AGE,
        CONTAINERS,
        IMAGES,
    ],
    row: |sts, now| {
        let (names, images) = template_containers(sts);
        let ready = format!(
            "{}/{}",
            i(sts, &["status", "readyReplicas"]),
            i(sts, &["spec", "replicas"])
        );
        vec![name(sts), Value::from(ready), age(sts, now), names, images].into()
    },
};

const DAEMONSETS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Desired", "integer", docs::DS_DESIRED),
        Col::new("Current", "integer", docs::DS_CURRENT),
        Col::new("Ready", "integer", docs::DS_READY),
        Col::new("Up-to-date", "integer", docs::DS_UPDATED),
        Col::new("Available", "integer", docs::DS_AVAILABLE),
        Col::new("Node Selector", "string", docs::POD_NODE_SELECTOR),
        Col::AGE,
        CONTAINERS,
        IMAGES,
        Col::wide("Selector", "string", docs::DS_SELECTOR),
    ],
    row: |ds, now| {
        let (names, images) = template_containers(ds);
        let status = |f: &str| Value::from(i(ds, &["status", f]));
        vec![
            name(ds),
            status("desiredNumberScheduled"),
            status("currentNumberScheduled"),
            status("numberReady"),
            status("updatedNumberScheduled"),
            status("numberAvailable"),
            Value::from(format_labels(map(
                ds,
                &["spec", "template", "spec", "nodeSelector"],
            ))),
            age(ds, now),
            names,
            images,
            Value::from(format_label_selector(at(ds, &["spec", "selector"]))),
        ]
        .into()
    },
};

const CONTROLLERREVISIONS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Controller", "string", "Controller of the object"),
        Col::new("Revision", "string", docs::CR_REVISION),
        Col::AGE,
    ],
    row: |cr, now| {
        vec![
            name(cr),
            Value::from(controller_of(cr)),
            Value::from(i(cr, &["revision"])),
            age(cr, now),
        ]
        .into()
    },
};

/// "<kind>.<group>/<name>" of the controlling owner reference, lower-cased kind
/// and group; "<none>" without one.
pub(super) fn controller_of(obj: &Value) -> String {
    let owner = arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| opt_b(o, &["controller"]) == Some(true));
    let Some(owner) = owner else {
        return "<none>".into();
    };
    let owner_name = s(owner, &["name"]);
    let kind = s(owner, &["kind"]);
    let group = match s(owner, &["apiVersion"]).split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    match (kind, group) {
        ("", "") => owner_name.to_string(),
        (k, "") => format!("{}/{owner_name}", k.to_lowercase()),
        (k, g) => format!("{}/{owner_name}", format!("{k}.{g}").to_lowercase()),
    }
}

const JOBS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Status", "string", "Status of the job."),
        Col::new("Completions", "string", docs::JOB_SUCCEEDED),
        Col::new("Duration", "string", "Time required to complete the job."),
        Col::AGE,
        CONTAINERS,
        IMAGES,
        Col::wide("Selector", "string", docs::JOB_SELECTOR),
    ],
    row: print_job,
};

/// True when the first condition of this type has status True (hasJobCondition).
fn job_condition(job: &Value, ty: &str) -> bool {
    arr(job, &["status", "conditions"])
        .iter()
        .find(|c| s(c, &["type"]) == ty)
        .is_some_and(|c| s(c, &["status"]) == "True")
}

fn print_job(job: &Value, now: Nanos) -> Row {
    let succeeded = i(job, &["status", "succeeded"]);
    let completions = match opt_i(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match i(job, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now - start),
        (Some(start), Some(end)) => human_duration(end - start),
    };
    let deleting = at(job, &["metadata", "deletionTimestamp"]).is_some_and(|d| !d.is_null());
    let status = if job_condition(job, "Complete") {
        "Complete"
    } else if job_condition(job, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if job_condition(job, "Suspended") {
        "Suspended"
    } else if job_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = template_containers(job);
    vec![
        name(job),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        names,
        images,
        Value::from(format_label_selector(at(job, &["spec", "selector"]))),
    ]
    .into()
}

const CRONJOBS: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Schedule", "string", docs::CJ_SCHEDULE),
        Col::new("Timezone", "string", docs::CJ_TIMEZONE),
        Col::new("Suspend", "boolean", docs::CJ_SUSPEND),
        Col::new("Active", "integer", docs::CJ_ACTIVE),
        Col::new("Last Schedule", "string", docs::CJ_LAST),
        Col::AGE,
        CONTAINERS,
        IMAGES,
        Col::wide("Selector", "string", docs::JOB_SELECTOR),
    ],
    row: |cj, now| {
        let last = match time_at(cj, &["status", "lastScheduleTime"]) {
            Some(t) => since(Some(t), now),
            None => "<none>".into(),
        };
        let job_spec = at(cj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
        let (names, images) = containers(arr(job_spec, &["template", "spec", "containers"]));
        vec![
            name(cj),
            Value::from(s(cj, &["spec", "schedule"])),
            Value::from(opt_s(cj, &["spec", "timeZone"]).unwrap_or("<none>")),
            Value::from(super::format::bool_ptr(opt_b(cj, &["spec", "suspend"]))),
            Value::from(super::format::len_of(cj, &["status", "active"])),
            Value::from(last),
            age(cj, now),
            names,
            images,
            Value::from(format_label_selector(at(job_spec, &["selector"]))),
        ]
        .into()
    },
};
