use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, ResourceFieldSelector, SecretEnvSource, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use super::super::testutil::{container, pod_with, FakeClient};
use super::*;

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(source),
    }
}

fn cm_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
    EnvVarSource {
        config_map_key_ref: Some(ConfigMapKeySelector {
            name: name.into(),
            key: key.into(),
            optional: Some(optional),
        }),
        ..Default::default()
    }
}

fn secret_key(name: &str, key: &str, optional: bool) -> EnvVarSource {
    EnvVarSource {
        secret_key_ref: Some(SecretKeySelector {
            name: name.into(),
            key: key.into(),
            optional: Some(optional),
        }),
        ..Default::default()
    }
}

fn objects() -> FakeClient {
    FakeClient::with(&[
        (
            "configmaps",
            json!({"metadata": {"name": "cfg", "namespace": "default"},
                   "data": {"MODE": "fast", "LEVEL": "3", "bad=key": "x", "dotted.key": "ok"}}),
        ),
        (
            "secrets",
            // "s3cr3t" and "admin" in base64.
            json!({"metadata": {"name": "creds", "namespace": "default"},
                   "data": {"PASSWORD": "czNjcjN0", "USER": "YWRtaW4="}}),
        ),
        (
            "services",
            json!({"metadata": {"name": "kubernetes", "namespace": "default"},
                   "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
        ),
        (
            "services",
            json!({"metadata": {"name": "redis-primary", "namespace": "default"},
                   "spec": {"clusterIP": "10.43.0.20", "ports": [{"port": 6379}, {"name": "metrics", "port": 9121, "protocol": "TCP"}]}}),
        ),
        (
            "services",
            json!({"metadata": {"name": "headless", "namespace": "default"},
                   "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        ),
        (
            "services",
            json!({"metadata": {"name": "elsewhere", "namespace": "other"},
                   "spec": {"clusterIP": "10.43.0.30", "ports": [{"port": 80}]}}),
        ),
    ])
}

async fn resolve(client: &FakeClient, pod: &Pod) -> Result<Vec<(String, String)>, SpecError> {
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let node = NodeAllocatable {
        cpu_millis: 2000,
        memory_bytes: 1 << 30,
        ephemeral_storage_bytes: 0,
    };
    resolve_env(
        client,
        pod,
        &c,
        Some("10.42.0.5".parse().unwrap()),
        Some("192.168.1.10".parse().unwrap()),
        &node,
    )
    .await
}

fn pod(env: Vec<EnvVar>, env_from: Vec<EnvFromSource>) -> Pod {
    let mut c = container("app", &[], &[("memory", "64Mi")]);
    c.env = Some(env);
    c.env_from = Some(env_from);
    pod_with(vec![c], vec![])
}

fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn env_from_then_env_in_order() {
    let client = objects();
    let p = pod(
        vec![
            var("MODE", "slow"),
            var(
                "GREETING",
                "hi $(USER) in $(MODE) mode, $$(MODE) and $(NOPE)",
            ),
            var("SVC", "$(KUBERNETES_SERVICE_HOST)"),
            from("PASS", secret_key("creds", "PASSWORD", false)),
            from("LVL", cm_key("cfg", "LEVEL", false)),
            from("LATER", cm_key("cfg", "MODE", false)),
            var("EMPTY", ""),
        ],
        vec![
            EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                secret_ref: None,
            },
            EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "creds".into(),
                    optional: None,
                }),
                prefix: None,
                config_map_ref: None,
            },
        ],
    );
    let env = resolve(&client, &p).await.unwrap();
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    // envFrom keys (sorted per source, invalid ones skipped), then env.
    assert_eq!(
        &names[..9],
        [
            "CFG_LEVEL",
            "CFG_MODE",
            "CFG_dotted.key",
            "PASSWORD",
            "USER",
            "MODE",
            "GREETING",
            "SVC",
            "PASS"
        ]
    );
    assert_eq!(value(&env, "CFG_MODE"), Some("fast"));
    assert_eq!(value(&env, "USER"), Some("admin"));
    assert_eq!(
        value(&env, "GREETING"),
        Some("hi admin in slow mode, $(MODE) and $(NOPE)")
    );
    assert_eq!(value(&env, "SVC"), Some("10.43.0.1"));
    assert_eq!(value(&env, "PASS"), Some("s3cr3t"));
    assert_eq!(value(&env, "LVL"), Some("3"));
    assert_eq!(value(&env, "LATER"), Some("fast"));
    assert_eq!(value(&env, "EMPTY"), Some(""));
    assert!(value(&env, "CFG_bad=key").is_none());
    // Each object was read once: one ConfigMap, one Secret, plus the
    // kubernetes service and the namespace's services.
    assert_eq!(*client.calls.lock().unwrap(), 4);
}

#[tokio::test]
async fn service_variables() {
    let client = objects();
    let env = resolve(
        &client,
        &pod(vec![var("REDIS_PRIMARY_SERVICE_HOST", "mine")], vec![]),
    )
    .await
    .unwrap();
    let want = [
        ("KUBERNETES_SERVICE_HOST", "10.43.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.43.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.43.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.43.0.1"),
        ("REDIS_PRIMARY_SERVICE_PORT", "6379"),
        ("REDIS_PRIMARY_SERVICE_PORT_METRICS", "9121"),
        ("REDIS_PRIMARY_PORT", "tcp://10.43.0.20:6379"),
        ("REDIS_PRIMARY_PORT_9121_TCP", "tcp://10.43.0.20:9121"),
        ("REDIS_PRIMARY_PORT_9121_TCP_ADDR", "10.43.0.20"),
    ];
    for (k, v) in want {
        assert_eq!(value(&env, k), Some(v), "{k}");
    }
    // The container's own definition wins and is listed once.
    assert_eq!(value(&env, "REDIS_PRIMARY_SERVICE_HOST"), Some("mine"));
    assert_eq!(
        env.iter()
            .filter(|(k, _)| k == "REDIS_PRIMARY_SERVICE_HOST")
            .count(),
        1
    );
    assert!(value(&env, "HEADLESS_SERVICE_HOST").is_none());
    assert!(value(&env, "ELSEWHERE_SERVICE_HOST").is_none());

    // Without service links only the master service remains.
    let mut p = pod(vec![], vec![]);
    p.spec.as_mut().unwrap().enable_service_links = Some(false);
    let env = resolve(&client, &p).await.unwrap();
    assert_eq!(value(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
    assert!(value(&env, "REDIS_PRIMARY_SERVICE_HOST").is_none());
}

#[tokio::test]
async fn ipv6_service_addresses_are_bracketed() {
    let client = FakeClient::with(&[(
        "services",
        json!({"metadata": {"name": "v6", "namespace": "default"},
               "spec": {"clusterIP": "fd00::10", "ports": [{"port": 80, "protocol": "UDP"}]}}),
    )]);
    let env = resolve(&client, &pod(vec![], vec![])).await.unwrap();
    assert_eq!(value(&env, "V6_PORT"), Some("udp://[fd00::10]:80"));
    assert_eq!(value(&env, "V6_PORT_80_UDP_PROTO"), Some("udp"));
    assert!(value(&env, "KUBERNETES_SERVICE_HOST").is_none());
}

#[tokio::test]
async fn missing_sources_wait_unless_optional() {
    let client = objects();
    let cases = [
        (
            from("X", cm_key("absent", "k", false)),
            "configmap \"absent\" not found",
        ),
        (
            from("X", cm_key("cfg", "nokey", false)),
            "couldn't find key nokey in ConfigMap default/cfg",
        ),
        (
            from("X", secret_key("absent", "k", false)),
            "secret \"absent\" not found",
        ),
        (
            from("X", secret_key("creds", "nokey", false)),
            "couldn't find key nokey in Secret default/creds",
        ),
    ];
    for (v, want) in cases {
        match resolve(&client, &pod(vec![v], vec![])).await {
            Err(SpecError::Waiting(m)) => assert_eq!(m, want),
            other => panic!("{want}: {other:?}"),
        }
    }
    let optional = pod(
        vec![
            from("A", cm_key("absent", "k", true)),
            from("B", cm_key("cfg", "nokey", true)),
            from("C", secret_key("absent", "k", true)),
            from("D", secret_key("creds", "nokey", true)),
        ],
        vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "absent".into(),
                optional: Some(true),
            }),
            ..Default::default()
        }],
    );
    let env = resolve(&client, &optional).await.unwrap();
    assert!(["A", "B", "C", "D"]
        .iter()
        .all(|k| value(&env, k).is_none()));
    let required_from = pod(
        vec![],
        vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: "absent".into(),
                optional: Some(false),
            }),
            ..Default::default()
        }],
    );
    assert!(matches!(
        resolve(&client, &required_from).await,
        Err(SpecError::Waiting(_))
    ));
}

#[tokio::test]
async fn downward_values() {
    let client = FakeClient::default();
    let p = pod(
        vec![
            from(
                "POD_IP",
                EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: Some("v1".into()),
                        field_path: "status.podIP".into(),
                    }),
                    ..Default::default()
                },
            ),
            from(
                "MEM",
                EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.memory".into(),
                        divisor: Some(Quantity("1Mi".into())),
                        container_name: None,
                    }),
                    ..Default::default()
                },
            ),
            from(
                "CPU",
                EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.cpu".into(),
                        divisor: None,
                        container_name: None,
                    }),
                    ..Default::default()
                },
            ),
            var("URL", "http://$(POD_IP):80"),
        ],
        vec![],
    );
    let env = resolve(&client, &p).await.unwrap();
    assert_eq!(value(&env, "POD_IP"), Some("10.42.0.5"));
    assert_eq!(value(&env, "MEM"), Some("64"));
    assert_eq!(value(&env, "CPU"), Some("2"));
    assert_eq!(value(&env, "URL"), Some("http://10.42.0.5:80"));
    let bad = pod(
        vec![from(
            "X",
            EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: "spec.nope".into(),
                }),
                ..Default::default()
            },
        )],
        vec![],
    );
    assert!(matches!(
        resolve(&client, &bad).await,
        Err(SpecError::Invalid(_))
    ));
}
