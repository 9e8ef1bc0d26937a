use super::*;

const UID: &str = "0c8a2d4e-57b1-4f3e-9a6d-1b2c3d4e5f60";
const UID_: &str = "0c8a2d4e_57b1_4f3e_9a6d_1b2c3d4e5f60";
const STATIC: &str = "8a6c1c3e1f1e0c3b0a3e4b5c6d7e8f90";
const CID: &str = "3f1a0b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8";

fn pod(uid: &str, qos: QosClass, c: Option<(&str, Option<Runtime>)>) -> Option<KubeletPath> {
    Some(KubeletPath {
        pod_uid: uid.to_owned(),
        qos_class: qos,
        container: c.map(|(id, runtime)| Container {
            id: id.to_owned(),
            runtime,
        }),
    })
}

#[test]
fn systemd_driver_every_qos_and_runtime() {
    for (qos, level, runtime, prefix) in [
        (
            QosClass::Burstable,
            "kubepods-burstable.slice/kubepods-burstable-pod",
            Runtime::Containerd,
            "cri-containerd-",
        ),
        (
            QosClass::BestEffort,
            "kubepods-besteffort.slice/kubepods-besteffort-pod",
            Runtime::CriO,
            "crio-",
        ),
        (
            QosClass::Guaranteed,
            "kubepods-pod",
            Runtime::Docker,
            "docker-",
        ),
    ] {
        let p = format!("/kubepods.slice/{level}{UID_}.slice/{prefix}{CID}.scope");
        assert_eq!(parse(&p), pod(UID, qos, Some((CID, Some(runtime)))), "{p}");
    }
}

#[test]
fn cgroupfs_driver_every_qos_and_runtime() {
    for (qos, level) in [
        (QosClass::Burstable, "burstable/"),
        (QosClass::BestEffort, "besteffort/"),
        (QosClass::Guaranteed, ""),
    ] {
        let p = format!("/kubepods/{level}pod{UID}/{CID}");
        assert_eq!(parse(&p), pod(UID, qos, Some((CID, None))), "{p}");
    }
    let p = format!("/kubepods/burstable/pod{UID}/crio-{CID}");
    assert_eq!(
        parse(&p),
        pod(UID, QosClass::Burstable, Some((CID, Some(Runtime::CriO))))
    );
    let p = format!("/kubepods/pod{UID}/docker-{CID}");
    assert_eq!(
        parse(&p),
        pod(
            UID,
            QosClass::Guaranteed,
            Some((CID, Some(Runtime::Docker)))
        )
    );
}

#[test]
fn any_prefix_before_kubepods_and_a_nested_kubepods_slice_stem() {
    let p = format!("/tapio-test-1/kubepods/besteffort/pod{UID}/{CID}");
    assert_eq!(parse(&p), pod(UID, QosClass::BestEffort, Some((CID, None))));
    let p = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"
    );
    assert_eq!(
        parse(&p),
        pod(
            UID,
            QosClass::Burstable,
            Some((CID, Some(Runtime::Containerd)))
        )
    );
    // A kind node: the node's own docker scope comes first.
    let p = format!("/system.slice/docker-{CID}.scope/kubepods/pod{UID}/{CID}");
    assert_eq!(parse(&p), pod(UID, QosClass::Guaranteed, Some((CID, None))));
}

#[test]
fn static_pod_uid_is_32_hex() {
    let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC}.slice/crio-{CID}.scope");
    assert_eq!(
        parse(&p),
        pod(
            STATIC,
            QosClass::Burstable,
            Some((CID, Some(Runtime::CriO)))
        )
    );
    let p = format!("/kubepods/pod{STATIC}");
    assert_eq!(parse(&p), pod(STATIC, QosClass::Guaranteed, None));
}

#[test]
fn pod_level_and_unknown_children_state_the_pod_only() {
    let p = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
    assert_eq!(parse(&p), pod(UID, QosClass::Burstable, None));
    for child in [
        format!("crio-conmon-{CID}.scope"),
        "init.scope".to_owned(),
        format!("cri-containerd-{CID}"), // no .scope under systemd
        format!("{CID}.scope"),          // bare id: cgroupfs only
        format!("cri-containerd-{}.scope", &CID[1..]),
    ] {
        let p = format!("/kubepods.slice/kubepods-pod{UID_}.slice/{child}");
        assert_eq!(parse(&p), pod(UID, QosClass::Guaranteed, None), "{p}");
    }
    let p = format!("/kubepods/burstable/pod{UID}/{}", CID.to_uppercase());
    assert_eq!(parse(&p), pod(UID, QosClass::Burstable, None));
}

#[test]
fn levels_below_the_container_belong_to_it() {
    let p = format!("/kubepods/pod{UID}/{CID}/init.scope/x");
    assert_eq!(parse(&p), pod(UID, QosClass::Guaranteed, Some((CID, None))));
}

#[test]
fn malformed_and_foreign_paths_state_nothing() {
    for p in [
        String::new(),
        "/".to_owned(),
        "/system.slice/containerd.service".to_owned(),
        format!("/system.slice/docker-{CID}.scope"),
        "/kubepods".to_owned(),
        "/kubepods/burstable".to_owned(),
        "/kubepods.slice".to_owned(),
        "/kubepods.slice/kubepods-burstable.slice".to_owned(),
        // Dashes in the systemd form, underscores in the cgroupfs form.
        format!("/kubepods.slice/kubepods-pod{UID}.slice/crio-{CID}.scope"),
        format!("/kubepods/pod{UID_}/{CID}"),
        // QoS level and pod level disagree.
        format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-burstable-pod{UID_}.slice"),
        format!("/kubepods.slice/kubepods-burstable-pod{UID_}.slice"),
        // Bad UIDs: short, uppercase, non-hex, misplaced separator.
        format!("/kubepods/pod{}/{CID}", &UID[1..]),
        format!("/kubepods/pod{}/{CID}", UID.to_uppercase()),
        format!("/kubepods/pod{}/{CID}", UID.replace('a', "g")),
        "/kubepods/pod0c8a2d4e5-7b1-4f3e-9a6d-1b2c3d4e5f60".to_owned(),
        format!("/kubepods/guaranteed/pod{UID}/{CID}"),
        format!("/kubepods/pod{UID}x/{CID}"),
        format!("/xkubepods/pod{UID}/{CID}"),
        format!("/kubepods.slicex/kubepods-pod{UID_}.slice"),
        format!("/kubepods.slice/kubepods-pod{UID_}.slicex"),
    ] {
        assert_eq!(parse(&p), None, "{p}");
    }
}

#[test]
fn names_are_the_api_and_semconv_values() {
    assert_eq!(QosClass::BestEffort.as_str(), "BestEffort");
    assert_eq!(Runtime::CriO.as_str(), "cri-o");
    assert_eq!(Runtime::Containerd.as_str(), "containerd");
}
