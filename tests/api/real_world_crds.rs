//! Real-world CustomResourceDefinitions, unchanged from the projects that
//! publish them (tests/fixtures/crds/: cert-manager's six, five of the
//! Prometheus operator's, up to 830 KB each, with controller-gen's schemas
//! and CEL rules, and the Gateway API's Gateway and HTTPRoute, whose ~90
//! CEL rules use comprehensions, regexes and durations), applied the way their documentation says with real
//! kubectl 1.27 and 1.33. Their objects are defaulted, validated and shown
//! as upstream would: every refusal below is upstream's text.

use std::path::PathBuf;
use std::time::Instant;

use crate::common::{both_versions, header_columns, Proc};

both_versions!(cert_manager_prometheus_operator_and_gateway_api);

fn fixtures(project: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/crds")
        .join(project)
        .to_string_lossy()
        .into_owned()
}

const VALID: &str = r#"
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: root-ca}
spec: {ca: {secretName: root-ca-key}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web}
spec:
  secretName: web-tls
  dnsNames: [web.example.test]
  duration: 2160h
  privateKey: {algorithm: ECDSA, size: 256}
  usages: [digital signature, key encipherment, server auth]
  issuerRef: {name: selfsigned, kind: Issuer}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  endpoints:
  - {port: metrics, interval: 30s, scheme: https}
---
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  podMetricsEndpoints:
  - {port: metrics}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: web}
spec:
  groups:
  - name: web
    rules:
    - alert: WebDown
      expr: up{job="web"} == 0
      for: 5m
      labels: {severity: page}
---
apiVersion: monitoring.coreos.com/v1
kind: Prometheus
metadata: {name: main}
spec:
  replicas: 2
  serviceMonitorSelector: {matchLabels: {team: web}}
  retention: 15d
  resources: {requests: {memory: 400Mi}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: nanokube
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  hostnames: [web.example.test]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: web, port: 80}]
    timeouts: {request: 10s, backendRequest: 5s}
"#;

/// (object, what upstream answers): schema types, required fields, enums,
/// minimum, pattern, CEL rules at three depths, strict decoding.
const REFUSED: &[(&str, &str)] = &[
    (
        "kind: Certificate\napiVersion: cert-manager.io/v1\nmetadata: {name: bad}\n\
         spec: {issuerRef: {name: selfsigned}, dnsNames: [a.test]}",
        r#"The Certificate "bad" is invalid: spec.secretName: Required value"#,
    ),
    (
        "kind: Certificate\napiVersion: cert-manager.io/v1\nmetadata: {name: bad}\n\
         spec: {secretName: s, issuerRef: {name: selfsigned}, privateKey: {algorithm: DSA}}",
        r#"The Certificate "bad" is invalid: spec.privateKey.algorithm: Unsupported value: "DSA": supported values: "RSA", "ECDSA", "Ed25519""#,
    ),
    (
        "kind: Certificate\napiVersion: cert-manager.io/v1\nmetadata: {name: bad}\n\
         spec: {secretName: s, issuerRef: {name: x}, duration: 90}",
        r#"The Certificate "bad" is invalid: spec.duration: Invalid value: "integer": spec.duration in body must be of type string: "integer""#,
    ),
    (
        "kind: Issuer\napiVersion: cert-manager.io/v1\nmetadata: {name: bad}\n\
         spec: {venafi: {zone: z}}",
        r#"The Issuer "bad" is invalid: spec.venafi: Invalid value: "object": exactly one of tpp, cloud, or ngts must be configured"#,
    ),
    (
        "kind: ServiceMonitor\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {selector: {}, endpoints: [{port: m, scheme: ftp}]}",
        r#"The ServiceMonitor "bad" is invalid: spec.endpoints[0].scheme: Unsupported value: "ftp": supported values: "http", "https", "HTTP", "HTTPS""#,
    ),
    (
        "kind: ServiceMonitor\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {selector: {}, endpoints: [], sampleLimit: -1}",
        r#"The ServiceMonitor "bad" is invalid: spec.sampleLimit: Invalid value: -1: spec.sampleLimit in body should be greater than or equal to 0"#,
    ),
    (
        "kind: Prometheus\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {scrapeInterval: 5 minutes}",
        r#"The Prometheus "bad" is invalid: spec.scrapeInterval: Invalid value: "5 minutes": spec.scrapeInterval in body should match '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'"#,
    ),
    (
        "kind: Prometheus\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {shardingStrategy: {mode: Address, topology: {values: [a, b]}}}",
        r#"The Prometheus "bad" is invalid: spec.shardingStrategy: Invalid value: "object": topology can only be defined when mode is set to 'Topology'"#,
    ),
    (
        "kind: Prometheus\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {shards: 1, shardingStrategy: {mode: Topology, topology: {values: [a, b, c]}}}",
        r#"The Prometheus "bad" is invalid: spec: Invalid value: "object": shards must be greater than or equal to the number of topology values when sharding strategy mode is Topology"#,
    ),
    (
        "kind: Prometheus\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {remoteWrite: [{url: 'https://m.test/w', sigv4: {externalId: e}}]}",
        r#"The Prometheus "bad" is invalid: spec.remoteWrite[0].sigv4: Invalid value: "object": externalId can only be used when roleArn is specified"#,
    ),
    (
        "kind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: bad}\n\
         spec: {rules: [{matches: [{path: {type: PathPrefix, value: api}}]}]}",
        r#"The HTTPRoute "bad" is invalid: spec.rules[0].matches[0].path: Invalid value: "object": value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"#,
    ),
    (
        "kind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: bad}\n\
         spec: {rules: [{backendRefs: [{name: web}]}]}",
        r#"The HTTPRoute "bad" is invalid: spec.rules[0].backendRefs[0]: Invalid value: "object": Must have port for Service reference"#,
    ),
    (
        "kind: HTTPRoute\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: bad}\n\
         spec: {rules: [{timeouts: {request: 10s, backendRequest: 20s}}]}",
        r#"The HTTPRoute "bad" is invalid: spec.rules[0].timeouts: Invalid value: "object": backendRequest timeout cannot be longer than request timeout"#,
    ),
    (
        "kind: Gateway\napiVersion: gateway.networking.k8s.io/v1\nmetadata: {name: bad}\n\
         spec: {gatewayClassName: c, listeners: [{name: http, port: 80, protocol: HTTP}, \
         {name: http, port: 8080, protocol: HTTP}]}",
        r#"The Gateway "bad" is invalid: spec.listeners[1]: Duplicate value: map[string]interface {}{"name":"http"}"#,
    ),
    (
        "kind: PrometheusRule\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {groups: [{rules: []}]}",
        r#"The PrometheusRule "bad" is invalid: spec.groups[0].name: Required value"#,
    ),
    (
        "kind: PrometheusRule\napiVersion: monitoring.coreos.com/v1\nmetadata: {name: bad}\n\
         spec: {groups: [{name: g, bogus: 1}]}",
        r#"PrometheusRule in version "v1" cannot be handled as a PrometheusRule: strict decoding error: unknown field "spec.groups[0].bogus""#,
    ),
];

const CRD_COUNT: usize = 13;

fn cert_manager_prometheus_operator_and_gateway_api(kubectl: &str) {
    let p = Proc::server();
    let k = p.kubectl(kubectl);

    // As the projects document it: cert-manager's with `kubectl apply`, the
    // Prometheus operator's (too big for client-side apply's annotation)
    // and the Gateway API's with `--server-side`.
    let started = Instant::now();
    let out = k.ok(&["apply", "-f", &fixtures("cert-manager")]);
    assert_eq!(out.matches(" created").count(), 6, "{out}");
    let out = k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &fixtures("prometheus-operator"),
    ]);
    assert_eq!(out.matches("serverside-applied").count(), 5, "{out}");
    let out = k.ok(&["apply", "--server-side", "-f", &fixtures("gateway-api")]);
    assert_eq!(out.matches("serverside-applied").count(), 2, "{out}");
    let out = k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd",
        "--all",
    ]);
    assert_eq!(out.lines().count(), CRD_COUNT, "{out}");
    println!(
        "{CRD_COUNT} real-world definitions applied and established in {:?}",
        started.elapsed()
    );
    // Upstream refuses the big one under client-side apply: its
    // last-applied annotation would exceed 256 KiB.
    let err = k.err(&[
        "apply",
        "-f",
        &format!(
            "{}/monitoring.coreos.com_prometheuses.yaml",
            fixtures("prometheus-operator")
        ),
    ]);
    assert!(
        err.contains(
            r#"The CustomResourceDefinition "prometheuses.monitoring.coreos.com" is invalid: metadata.annotations: Too long: must have at most 262144 bytes"#
        ),
        "{err}"
    );
    let resources = k.ok(&["api-resources", "--api-group=cert-manager.io"]);
    for (plural, short) in [("certificates", "cert,certs"), ("issuers", "iss")] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([plural, short])),
            "{resources}"
        );
    }

    // Valid objects are accepted and defaulted from the schemas.
    k.stdin_ok(&["apply", "-f", "-"], VALID);
    let prom = k.json(&["get", "prometheus", "main"]);
    assert_eq!(prom["spec"]["shards"], 1, "{prom}");
    assert_eq!(prom["spec"]["portName"], "web", "{prom}");
    assert_eq!(prom["spec"]["evaluationInterval"], "30s", "{prom}");
    let route = k.json(&["get", "httproute", "web"]);
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0],
        serde_json::json!({"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 1}),
        "{route}"
    );

    // Printer columns (Issuer/Status/Expiration are priority 1: -o wide),
    // short names, categories, the status subresource.
    k.ok(&[
        "patch",
        "cert",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Issued","message":"issued"}],"notAfter":"2027-01-01T00:00:00Z"}}"#,
    ]);
    let table = k.ok(&["get", "certs"]);
    assert_eq!(
        header_columns(&table),
        ["NAME", "READY", "SECRET", "AGE"],
        "{table}"
    );
    assert!(table.contains("web    True    web-tls"), "{table}");
    let wide = k.ok(&["get", "cert", "-o", "wide"]);
    assert_eq!(
        header_columns(&wide),
        [
            "NAME",
            "READY",
            "SECRET",
            "ISSUER",
            "STATUS",
            "EXPIRATION",
            "AGE"
        ],
        "{wide}"
    );
    let category = k.ok(&["get", "cert-manager"]);
    for name in [
        "certificate.cert-manager.io/web",
        "issuer.cert-manager.io/selfsigned",
        "clusterissuer.cert-manager.io/root-ca",
    ] {
        assert!(category.contains(name), "{category}");
    }
    let table = k.ok(&["get", "httproutes"]);
    assert_eq!(
        header_columns(&table),
        ["NAME", "HOSTNAMES", "AGE"],
        "{table}"
    );
    assert!(table.contains(r#"["web.example.test"]"#), "{table}");
    let table = k.ok(&["get", "prometheus"]);
    assert_eq!(
        header_columns(&table),
        [
            "NAME",
            "VERSION",
            "DESIRED",
            "READY",
            "RECONCILED",
            "AVAILABLE",
            "AGE"
        ],
        "{table}"
    );

    // Invalid objects: upstream's field errors, word for word.
    for (object, answer) in REFUSED {
        let err = k.stdin_err(&["apply", "-f", "-"], object);
        assert!(err.contains(answer), "{object}\n=> {err}");
    }

    // explain reads the published schemas.
    let explained = k.ok(&["explain", "certificate.spec.privateKey.algorithm"]);
    assert!(
        explained.contains("Algorithm is the private key algorithm"),
        "{explained}"
    );
    let explained = k.ok(&["explain", "servicemonitor.spec.endpoints"]);
    assert!(explained.contains("scheme"), "{explained}");

    // Removing the definitions removes their objects.
    let out = k.ok(&["delete", "crd", "--all", "--timeout=60s"]);
    assert_eq!(out.lines().count(), CRD_COUNT, "{out}");
    // kubectl may still have the type in its discovery cache.
    let err = k.err(&["get", "certificates"]);
    assert!(
        err.contains(r#"the server doesn't have a resource type "certificates""#)
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    // Defined again, it starts empty: the objects went with it.
    k.ok(&[
        "apply",
        "-f",
        &format!(
            "{}/cert-manager.io_certificates.yaml",
            fixtures("cert-manager")
        ),
    ]);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/certificates.cert-manager.io",
    ]);
    crate::common::poll_until(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || k.run(&["get", "certificates"]).status.success(),
    );
    let out = k.run(&["get", "certificates"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No resources found in default namespace."),
        "{out:?}"
    );
}
