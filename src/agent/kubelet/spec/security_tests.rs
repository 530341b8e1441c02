use k8s_openapi::api::core::v1::Capabilities;

use super::super::testutil::{container, pod_with};
use super::*;
use api::NamespaceMode;

fn sc_pod() -> Pod {
    let mut pod = pod_with(vec![container("app", &[], &[])], vec![]);
    let spec = pod.spec.as_mut().unwrap();
    spec.security_context = Some(PodSecurityContext {
        run_as_user: Some(1000),
        run_as_group: Some(3000),
        fs_group: Some(2000),
        supplemental_groups: Some(vec![4000, 5000]),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    });
    pod
}

#[test]
fn pod_fields_fill_the_container() {
    let pod = sc_pod();
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let s = container_security(&pod, c, &ImageUser::Unknown, None).unwrap();
    assert_eq!(s.run_as_user.map(|v| v.value), Some(1000));
    assert_eq!(s.run_as_group.map(|v| v.value), Some(3000));
    assert_eq!(s.supplemental_groups, vec![2000, 4000, 5000]);
    assert_eq!(
        s.seccomp.unwrap().profile_type,
        ProfileType::RuntimeDefault as i32
    );
    assert!(!s.no_new_privs && !s.privileged && !s.readonly_rootfs);
    assert_eq!(s.masked_paths.len(), 11);
    assert_eq!(s.readonly_paths, READONLY_PATHS.map(String::from).to_vec());
    let ns = s.namespace_options.unwrap();
    assert_eq!(
        (ns.network, ns.pid, ns.ipc),
        (
            NamespaceMode::Pod as i32,
            NamespaceMode::Container as i32,
            NamespaceMode::Pod as i32
        )
    );
}

#[test]
fn container_fields_override() {
    let mut pod = sc_pod();
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    c.security_context = Some(SecurityContext {
        run_as_user: Some(0),
        privileged: Some(true),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            add: Some(vec!["NET_ADMIN".into(), "cap_sys_time".into()]),
            drop: Some(vec!["ALL".into()]),
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "Unconfined".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    });
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let s = container_security(&pod, &c, &ImageUser::Uid(5), None).unwrap();
    assert_eq!(s.run_as_user.map(|v| v.value), Some(0));
    assert_eq!(s.run_as_group.map(|v| v.value), Some(3000));
    assert!(s.privileged && s.readonly_rootfs);
    assert!(s.masked_paths.is_empty() && s.readonly_paths.is_empty());
    let caps = s.capabilities.unwrap();
    assert_eq!(caps.add_capabilities, vec!["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(caps.drop_capabilities, vec!["ALL"]);
    assert_eq!(
        s.seccomp.unwrap().profile_type,
        ProfileType::Unconfined as i32
    );
    assert!(sandbox_security(&pod).privileged);
}

#[test]
fn no_new_privs_only_when_escalation_is_refused() {
    let mut pod = pod_with(vec![container("app", &[], &[])], vec![]);
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    assert!(
        !container_security(&pod, &c, &ImageUser::Unknown, None)
            .unwrap()
            .no_new_privs
    );
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    c.security_context = Some(SecurityContext {
        allow_privilege_escalation: Some(false),
        ..Default::default()
    });
    let c = c.clone();
    let s = container_security(&pod, &c, &ImageUser::Unknown, None).unwrap();
    assert!(s.no_new_privs);
    // No pod-level profile: Unconfined.
    assert_eq!(
        s.seccomp.unwrap().profile_type,
        ProfileType::Unconfined as i32
    );
}

#[test]
fn image_user_fills_in() {
    let pod = pod_with(vec![container("app", &[], &[])], vec![]);
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let s = container_security(&pod, c, &ImageUser::Uid(33), None).unwrap();
    assert_eq!(s.run_as_user.map(|v| v.value), Some(33));
    let s = container_security(&pod, c, &ImageUser::Name("nginx".into()), None).unwrap();
    assert_eq!((s.run_as_user, s.run_as_username.as_str()), (None, "nginx"));
    let s = container_security(&pod, c, &ImageUser::Unknown, None).unwrap();
    assert_eq!((s.run_as_user, s.run_as_username.as_str()), (None, ""));
    let named = api::Image {
        username: "www".into(),
        ..Default::default()
    };
    assert_eq!(image_user(&named), ImageUser::Name("www".into()));
    assert_eq!(image_user(&api::Image::default()), ImageUser::Uid(0));
    let uid = api::Image {
        uid: Some(api::Int64Value { value: 7 }),
        ..Default::default()
    };
    assert_eq!(image_user(&uid), ImageUser::Uid(7));
}

#[test]
fn run_as_non_root_checks() {
    let mut pod = pod_with(vec![container("app", &[], &[])], vec![]);
    pod.spec.as_mut().unwrap().security_context = Some(PodSecurityContext {
        run_as_non_root: Some(true),
        ..Default::default()
    });
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let check = |pod: &Pod, image: ImageUser| container_security(pod, &c, &image, None);
    assert!(check(&pod, ImageUser::Unknown).is_ok());
    assert!(check(&pod, ImageUser::Uid(1000)).is_ok());
    let err = check(&pod, ImageUser::Uid(0)).unwrap_err().to_string();
    assert_eq!(
        err,
        "container has runAsNonRoot and image will run as root (pod: \"web_default(uid-1)\", container: app)"
    );
    let err = check(&pod, ImageUser::Name("bob".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("non-numeric user (bob)"), "{err}");
    let mut root = pod.clone();
    root.spec
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .run_as_user = Some(0);
    let err = check(&root, ImageUser::Uid(1000)).unwrap_err();
    assert!(
        matches!(&err, SpecError::Invalid(m) if m.starts_with("container's runAsUser breaks non-root policy"))
    );
    let mut ok = pod.clone();
    ok.spec
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .run_as_user = Some(1);
    assert!(check(&ok, ImageUser::Uid(0)).is_ok());
}

#[test]
fn localhost_profiles() {
    let local = |name: Option<&str>| SeccompProfile {
        type_: "Localhost".into(),
        localhost_profile: name.map(String::from),
    };
    let root = Path::new("/var/lib/nk/seccomp");
    let p = seccomp(Some(&local(Some("profiles/audit.json"))), Some(root)).unwrap();
    assert_eq!(p.profile_type, ProfileType::Localhost as i32);
    assert_eq!(p.localhost_ref, "/var/lib/nk/seccomp/profiles/audit.json");
    for bad in [None, Some("../etc/x"), Some("/abs"), Some("")] {
        assert!(seccomp(Some(&local(bad)), Some(root)).is_err(), "{bad:?}");
    }
    assert!(seccomp(Some(&local(Some("a.json"))), None).is_err());
    let odd = SeccompProfile {
        type_: "Bogus".into(),
        localhost_profile: None,
    };
    assert!(seccomp(Some(&odd), None).is_err());
}

#[test]
fn host_namespaces_and_shared_pid() {
    let mut pod = pod_with(vec![container("app", &[], &[])], vec![]);
    let spec = pod.spec.as_mut().unwrap();
    spec.host_network = Some(true);
    spec.host_ipc = Some(true);
    spec.share_process_namespace = Some(true);
    let ns = namespaces(&pod);
    assert_eq!(
        (ns.network, ns.pid, ns.ipc),
        (
            NamespaceMode::Node as i32,
            NamespaceMode::Pod as i32,
            NamespaceMode::Node as i32
        )
    );
    pod.spec.as_mut().unwrap().host_pid = Some(true);
    assert_eq!(namespaces(&pod).pid, NamespaceMode::Node as i32);
}

#[test]
fn sandbox_context() {
    let pod = sc_pod();
    let s = sandbox_security(&pod);
    assert_eq!(s.run_as_user.map(|v| v.value), Some(1000));
    assert_eq!(s.run_as_group.map(|v| v.value), Some(3000));
    assert_eq!(s.supplemental_groups, vec![2000, 4000, 5000]);
    assert_eq!(
        s.seccomp.unwrap().profile_type,
        ProfileType::RuntimeDefault as i32
    );
    assert!(!s.privileged && !s.readonly_rootfs);
}
