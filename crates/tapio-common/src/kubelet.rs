//! Kubelet cgroup path parser: the pod UID, QoS class, container ID and
//! runtime a cgroup path states by the kubelet's naming conventions.
//!
//! ## Design constraints
//! - Pure: a path in, facts out. No lookups, no I/O, no guesses. A path that
//!   does not follow a known layout states nothing ([`parse`] is `None`);
//!   a pod level that is followed by something other than a known container
//!   form states the pod only.
//! - Known layouts, under any prefix (a kubelet `--cgroup-root`, a kind
//!   node's own cgroup), starting at the first `kubepods` level:
//!   - systemd driver: `kubepods.slice/kubepods-<qos>.slice/
//!     kubepods-<qos>-pod<uid with _>.slice/<runtime>-<64 hex>.scope`, the QoS
//!     level absent for Guaranteed pods (`kubepods-pod<uid>.slice`), and any
//!     `<x>-kubepods.slice` stem (`kubelet-kubepods.slice`);
//!   - cgroupfs driver: `kubepods/<qos>/pod<uid>/<64 hex>`, QoS level absent
//!     for Guaranteed pods; the bare id states no runtime, `crio-<id>`,
//!     `docker-<id>` and `cri-containerd-<id>` do.
//! - Runtime prefixes: `cri-containerd-` (containerd), `crio-` (CRI-O),
//!   `docker-` (Docker). CRI-O's `crio-conmon-<id>.scope` holds the
//!   container's monitor, not the container: it states the pod only.
//! - A pod UID is a lowercase RFC 4122 UUID (36 characters) or, for static
//!   pods, 32 lowercase hex digits; a container ID is 64 lowercase hex
//!   digits. Anything else is malformed and states nothing at that level.
//! - Levels below the container (a container's own sub-cgroups) still
//!   belong to it.

/// Kubernetes QoS class, as the kubelet's cgroup layout states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QosClass {
    /// Pod cgroup directly under `kubepods`.
    Guaranteed,
    /// Under the `burstable` level.
    Burstable,
    /// Under the `besteffort` level.
    BestEffort,
}

impl QosClass {
    /// The Kubernetes API name (`status.qosClass`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }
}

/// Container runtime named by a cgroup's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `cri-containerd-<id>`.
    Containerd,
    /// `crio-<id>`.
    CriO,
    /// `docker-<id>`.
    Docker,
}

impl Runtime {
    /// The OpenTelemetry `container.runtime` value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Docker => "docker",
        }
    }
}

/// A container the path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// 64 lowercase hex digits.
    pub id: String,
    /// `None` for the cgroupfs driver's bare id: the path does not say.
    pub runtime: Option<Runtime>,
}

/// What a kubelet-shaped path states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletPath {
    /// The pod UID, dashed (the systemd form's `_` turned back into `-`).
    pub pod_uid: String,
    /// The QoS class of the pod's level.
    pub qos_class: QosClass,
    /// The container, when the path goes down to one.
    pub container: Option<Container>,
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A pod UID written with `sep` between the UUID groups (or 32 hex digits),
/// returned dashed.
fn pod_uid(s: &str, sep: u8) -> Option<String> {
    if s.len() == 32 && is_lower_hex(s) {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = if matches!(i, 8 | 13 | 18 | 23) {
            c == sep
        } else {
            c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
        };
        if !ok {
            return None;
        }
    }
    Some(s.replace(char::from(sep), "-"))
}

fn container_id(s: &str) -> Option<String> {
    (s.len() == 64 && is_lower_hex(s)).then(|| s.to_owned())
}

/// A container level: `<prefix><id><suffix>`; `bare` allows a prefix-less id.
fn container(name: &str, suffix: &str, bare: bool) -> Option<Container> {
    let name = name.strip_suffix(suffix)?;
    if name.starts_with("crio-conmon-") {
        return None;
    }
    for (prefix, rt) in [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("docker-", Runtime::Docker),
    ] {
        if let Some(id) = name.strip_prefix(prefix) {
            return Some(Container {
                id: container_id(id)?,
                runtime: Some(rt),
            });
        }
    }
    if bare {
        return Some(Container {
            id: container_id(name)?,
            runtime: None,
        });
    }
    None
}

fn systemd<'a>(stem: &str, mut rest: impl Iterator<Item = &'a str>) -> Option<KubeletPath> {
    let level = rest.next()?;
    let (qos, pod_level) = if level == format!("{stem}-burstable.slice") {
        (QosClass::Burstable, rest.next()?)
    } else if level == format!("{stem}-besteffort.slice") {
        (QosClass::BestEffort, rest.next()?)
    } else {
        (QosClass::Guaranteed, level)
    };
    let pod_prefix = match qos {
        QosClass::Guaranteed => format!("{stem}-pod"),
        QosClass::Burstable => format!("{stem}-burstable-pod"),
        QosClass::BestEffort => format!("{stem}-besteffort-pod"),
    };
    let uid = pod_level
        .strip_prefix(pod_prefix.as_str())?
        .strip_suffix(".slice")?;
    Some(KubeletPath {
        pod_uid: pod_uid(uid, b'_')?,
        qos_class: qos,
        container: rest.next().and_then(|c| container(c, ".scope", false)),
    })
}

fn cgroupfs<'a>(mut rest: impl Iterator<Item = &'a str>) -> Option<KubeletPath> {
    let level = rest.next()?;
    let (qos, pod_level) = match level {
        "burstable" => (QosClass::Burstable, rest.next()?),
        "besteffort" => (QosClass::BestEffort, rest.next()?),
        _ => (QosClass::Guaranteed, level),
    };
    Some(KubeletPath {
        pod_uid: pod_uid(pod_level.strip_prefix("pod")?, b'-')?,
        qos_class: qos,
        container: rest.next().and_then(|c| container(c, "", true)),
    })
}

/// What `path` (a cgroup path, `/`-separated, relative to its hierarchy's
/// root or not) states by the kubelet's conventions; `None` when it follows
/// none of them.
#[must_use]
pub fn parse(path: &str) -> Option<KubeletPath> {
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    while let Some(p) = parts.next() {
        if p == "kubepods" {
            return cgroupfs(parts);
        }
        if let Some(stem) = p.strip_suffix(".slice") {
            if stem == "kubepods" || stem.ends_with("-kubepods") {
                return systemd(stem, parts);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
