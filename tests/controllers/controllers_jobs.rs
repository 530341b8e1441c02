//! The Job, CronJob and TTL-after-finished controllers against a real
//! server with hollow nodes, driven by kubectl: parallel and Indexed Jobs
//! complete, failing Jobs stop at the backoff limit, the deadline or a pod
//! failure policy rule, suspended Jobs wait, finished Jobs expire, and
//! CronJobs create Jobs on schedule and prune their history.
//!
//! Pods name their node (`spec.nodeName`), so the scheduler plays no part.

use std::time::{Duration, Instant};

use crate::common::hollow::*;
use crate::common::*;
use serde_json::Value;

const NODE: &str = "hollow-hollow-0";

/// A server and one hollow node whose finite pods run 1 s.
fn cluster() -> (Proc, HollowAgent) {
    let server = Proc::server();
    let agent = hollow_agent(&server, 1, &["--hollow-run-seconds", "1"]);
    (server, agent)
}

/// A Job manifest; `spec` lines are indented under `spec:`, `annotations`
/// go on the pod template.
fn job_yaml(name: &str, spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{spec}  template:\n    \
         metadata:\n      annotations: {{{annotations}}}\n    spec:\n      nodeName: {NODE}\n      \
         restartPolicy: Never\n      containers:\n      - name: main\n        image: busybox\n"
    )
}

fn get(server: &Proc, kind: &str, name: &str) -> Value {
    kubectl(server).json(&["get", kind, name])
}

/// Polls `probe` every 200 ms until it returns Some, at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until Job `name` has condition `kind` True; panics with its status.
fn wait_job(server: &Proc, name: &str, kind: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let job = get(server, "job", name);
        if condition(&job, kind).is_some() {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {name} not {kind} within {secs} s: {}\npods: {:?}\nevents:\n{}",
            job["status"],
            pods_of(server, name)
                .iter()
                .map(|p| (
                    p["metadata"]["name"].clone(),
                    p["status"]["phase"].clone(),
                    p["metadata"]["finalizers"].clone(),
                    p["metadata"]["deletionGracePeriodSeconds"].clone()
                ))
                .collect::<Vec<_>>(),
            events_of(server, name)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

fn pods_of(server: &Proc, job: &str) -> Vec<Value> {
    let list = kubectl(server).json(&["get", "pods", "-l", &format!("job-name={job}")]);
    list["items"].as_array().cloned().unwrap_or_default()
}

fn events_of(server: &Proc, name: &str) -> String {
    kubectl(server).ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "custom-columns=REASON:.reason,MESSAGE:.message",
    ])
}

#[test]
fn parallel_and_indexed_jobs_complete() {
    let (server, _agent) = cluster();
    let k = kubectl(&server);
    k.create_yaml(&job_yaml(
        "five",
        "  completions: 5\n  parallelism: 2\n",
        "",
    ));
    k.create_yaml(&job_yaml(
        "indexed",
        "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n",
        "",
    ));
    // Never more than parallelism pods running at once.
    let done = wait_for(60, "job five to complete", || {
        let job = get(&server, "job", "five");
        let running = pods_of(&server, "five")
            .iter()
            .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        assert!(running <= 2, "{running} pods of five active at once");
        assert!(job["status"]["active"].as_i64().unwrap_or(0) <= 2);
        condition(&job, "Complete").is_some().then_some(job)
    });
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/five",
        "--timeout=30s",
    ]);
    assert_eq!(done["status"]["succeeded"], 5, "{}", done["status"]);
    assert!(done["status"]["completionTime"].is_string());
    let met = condition(&done, "SuccessCriteriaMet").expect("SuccessCriteriaMet");
    assert_eq!(met["reason"], "CompletionsReached");
    assert_eq!(
        condition(&done, "Complete").unwrap()["message"],
        "Reached expected number of succeeded pods"
    );
    let pods = pods_of(&server, "five");
    assert_eq!(pods.len(), 5, "one pod per completion");
    for p in &pods {
        assert!(
            p["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty()),
            "counted pods keep no finalizer: {}",
            p["metadata"]
        );
    }
    let events = events_of(&server, "five");
    assert!(
        events.contains("SuccessfulCreate") && events.contains("Created pod: five-"),
        "{events}"
    );
    assert!(events.contains("Job completed"), "{events}");
    // A finished Job is left alone: nothing writes it any more.
    let rv = get(&server, "job", "five")["metadata"]["resourceVersion"].clone();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        get(&server, "job", "five")["metadata"]["resourceVersion"],
        rv
    );

    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/indexed",
        "--timeout=60s",
    ]);
    let indexed = get(&server, "job", "indexed");
    assert_eq!(indexed["status"]["completedIndexes"], "0-2");
    assert_eq!(indexed["status"]["succeeded"], 3);
    let mut hosts: Vec<String> = pods_of(&server, "indexed")
        .iter()
        .map(|p| {
            let ix = &p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"];
            assert_eq!(
                p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
                *ix
            );
            p["spec"]["hostname"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["indexed-0", "indexed-1", "indexed-2"]);
}

#[test]
fn failing_jobs_stop_at_the_backoff_limit_deadline_or_policy() {
    let (server, _agent) = cluster();
    let k = kubectl(&server);
    let failing = r#""hollow.nanokube.io/exit-code": "1""#;
    k.create_yaml(&job_yaml("flaky", "  backoffLimit: 1\n", failing));
    k.create_yaml(&job_yaml(
        "slow",
        "  activeDeadlineSeconds: 3\n",
        r#""hollow.nanokube.io/run-seconds": "600""#,
    ));
    k.create_yaml(&job_yaml(
        "policy",
        "  podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes:\n        \
         operator: In\n        values: [3]\n",
        r#""hollow.nanokube.io/exit-code": "3""#,
    ));

    let policy = wait_job(&server, "policy", "Failed", 30);
    let failed = condition(&policy, "Failed").unwrap();
    assert_eq!(failed["reason"], "PodFailurePolicy");
    let msg = failed["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("Container main for pod default/policy-"),
        "{msg}"
    );
    assert!(
        msg.ends_with("failed with exit code 3 matching FailJob rule at index 0"),
        "{msg}"
    );

    // One failure, 10 s backoff, a second failure: over the limit of 1.
    let flaky = wait_job(&server, "flaky", "Failed", 60);
    let failed = condition(&flaky, "Failed").unwrap();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(flaky["status"]["failed"], 2, "{}", flaky["status"]);
    assert_eq!(pods_of(&server, "flaky").len(), 2);
    let events = events_of(&server, "flaky");
    assert!(events.contains("BackoffLimitExceeded"), "{events}");

    let slow = wait_job(&server, "slow", "Failed", 30);
    let failed = condition(&slow, "Failed").unwrap();
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["message"],
        "Job was active longer than specified deadline"
    );
    assert!(condition(&slow, "FailureTarget").is_some());
    assert_eq!(slow["status"]["active"].as_i64().unwrap_or(0), 0);
    wait_for(30, "the deadline job's pod to go", || {
        pods_of(&server, "slow").is_empty().then_some(())
    });
}

#[test]
fn suspended_jobs_wait_and_finished_jobs_expire() {
    let (server, _agent) = cluster();
    let k = kubectl(&server);
    k.create_yaml(&job_yaml(
        "later",
        "  suspend: true\n  ttlSecondsAfterFinished: 2\n",
        "",
    ));
    let suspended = wait_job(&server, "later", "Suspended", 20);
    assert_eq!(
        condition(&suspended, "Suspended").unwrap()["reason"],
        "JobSuspended"
    );
    assert!(suspended["status"]["startTime"].is_null());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        pods_of(&server, "later").is_empty(),
        "a suspended job runs no pod"
    );

    k.ok(&[
        "patch",
        "job",
        "later",
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]);
    let done = wait_job(&server, "later", "Complete", 30);
    let resumed = done["status"]["conditions"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["type"] == "Suspended"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (resumed["status"].as_str(), resumed["reason"].as_str()),
        (Some("False"), Some("JobResumed"))
    );
    let events = events_of(&server, "later");
    assert!(
        events.contains("Suspended") && events.contains("Resumed"),
        "{events}"
    );

    // TTL: the Job goes about 2 s after it finished.
    wait_for(30, "job later to be deleted after its ttl", || {
        let out = k.run(&["get", "job", "later", "-o", "json"]);
        if !out.status.success() {
            return Some(());
        }
        let j: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (!j["metadata"]["deletionTimestamp"].is_null()).then_some(())
    });
}

#[test]
fn cronjobs_create_jobs_on_schedule_and_prune_history() {
    let (server, _agent) = cluster();
    let k = kubectl(&server);
    k.create_yaml(&format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: tick\nspec:\n  schedule: \"*/1 * * * *\"\n  \
         successfulJobsHistoryLimit: 1\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          \
         nodeName: {NODE}\n          restartPolicy: OnFailure\n          containers:\n          - name: main\n            \
         image: busybox\n"
    ));
    // Two manual runs owned by the CronJob finish at once; only one stays.
    k.ok(&["create", "job", "manual-a", "--from=cronjob/tick"]);
    k.ok(&["create", "job", "manual-b", "--from=cronjob/tick"]);
    let scheduled = wait_for(75, "a scheduled job", || {
        let list = k.json(&["get", "jobs"]);
        list["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|j| {
                    j["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("tick-"))
                })
                .cloned()
        })
    });
    let name = scheduled["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let minutes: i64 = name
        .trim_start_matches("tick-")
        .parse()
        .expect("minutes since epoch");
    let at = scheduled["metadata"]["annotations"]
        ["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(at.ends_with(":00Z"), "scheduled at {at}");
    assert_eq!(
        scheduled["metadata"]["ownerReferences"][0]["kind"],
        "CronJob"
    );
    assert!(minutes > 28_000_000, "{name}");
    let cj = wait_for(30, "lastScheduleTime", || {
        let cj = get(&server, "cronjob", "tick");
        cj["status"]["lastScheduleTime"].is_string().then_some(cj)
    });
    assert_eq!(cj["status"]["lastScheduleTime"], at);
    // Three jobs complete; the history keeps one.
    wait_for(40, "history pruned to one successful job", || {
        let list = k.json(&["get", "jobs"]);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let live: Vec<&Value> = items
            .iter()
            .filter(|j| j["metadata"]["deletionTimestamp"].is_null())
            .collect();
        (live.len() == 1 && condition(live[0], "Complete").is_some()).then_some(())
    });
    let events = events_of(&server, "tick");
    assert!(events.contains(&format!("Created job {name}")), "{events}");
    assert!(events.contains("Deleted job manual-"), "{events}");
    let cj = wait_for(30, "lastSuccessfulTime and an empty active list", || {
        let cj = get(&server, "cronjob", "tick");
        (cj["status"]["lastSuccessfulTime"].is_string()
            && cj["status"]["active"]
                .as_array()
                .is_none_or(|a| a.is_empty()))
        .then_some(cj)
    });
    assert!(cj["status"]["lastSuccessfulTime"].is_string());
}
