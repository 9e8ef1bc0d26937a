//! Cgroup hierarchies of this mount namespace, read from
//! `/proc/self/mountinfo`: the cgroup v2 mount and the cgroup v1 mount that
//! carries the memory controller.

use std::path::PathBuf;

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub dir: PathBuf,
    /// The cgroup the mount shows as its top (`/` unless the mount is a
    /// bind of a subtree or made inside a cgroup namespace): the prefix of
    /// every path under `dir`.
    pub root: String,
    /// Mount points below `dir` (other filesystems): never walked into.
    pub nested: Vec<PathBuf>,
}

/// The hierarchies attribution resolves in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// cgroup v2 (`cgroup2`): network owners and task cgroups.
    pub v2: Option<Mount>,
    /// cgroup v1 with the `memory` controller: v1 memcgs of OOM kills and
    /// exits.
    pub memory_v1: Option<Mount>,
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mounts {
    /// Reads this process's mount table; empty when unreadable.
    #[must_use]
    pub fn read() -> Mounts {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| Mounts::parse(&t))
            .unwrap_or_default()
    }

    /// Parses mountinfo text; the first mount of each kind wins unless a
    /// later one is mounted over it.
    #[must_use]
    pub fn parse(text: &str) -> Mounts {
        let mut m = Mounts::default();
        let mut all = Vec::new();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.len() < 5 || r.len() < 3 {
                continue;
            }
            let dir = PathBuf::from(unescape(f[4]));
            all.push(dir.clone());
            // A root above this cgroup namespace (`/..`): a bind of the host's
            // top cgroup seen from inside a container; paths below it are the
            // host's own.
            let root = unescape(f[3]);
            let root = if root.starts_with("/..") {
                "/".to_owned()
            } else {
                root
            };
            let mount = || Mount {
                dir: dir.clone(),
                root: root.clone(),
                nested: Vec::new(),
            };
            // The first mount of a kind wins, except that a later mount at
            // the same place shadows it (a host cgroupfs mounted over a
            // container's own).
            let take = |cur: &Option<Mount>| cur.as_ref().is_none_or(|c| c.dir == dir);
            match r[0] {
                "cgroup2" if take(&m.v2) => m.v2 = Some(mount()),
                "cgroup" if take(&m.memory_v1) && r[2].split(',').any(|o| o == "memory") => {
                    m.memory_v1 = Some(mount());
                }
                _ => {}
            }
        }
        for mount in [&mut m.v2, &mut m.memory_v1].into_iter().flatten() {
            mount.nested = all
                .iter()
                .filter(|d| *d != &mount.dir && d.starts_with(&mount.dir))
                .cloned()
                .collect();
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_layout_finds_both_hierarchies() {
        let m = Mounts::parse(HYBRID);
        let v2 = m.v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.root, "/");
        assert!(v2.nested.is_empty());
        assert_eq!(
            m.memory_v1.unwrap().dir,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
    }

    #[test]
    fn pure_v2_in_a_cgroup_namespace_keeps_the_root_and_nested_mounts() {
        let t = "\
40 1 0:30 /kubepods.slice/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw
41 40 0:31 / /sys/fs/cgroup/odd\\040dir rw - tmpfs tmpfs rw
42 1 0:32 / /sys/fs/cgroup2-again rw - cgroup2 cgroup2 rw
";
        let m = Mounts::parse(t);
        let v2 = m.v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(v2.root, "/kubepods.slice/x");
        assert_eq!(v2.nested, vec![PathBuf::from("/sys/fs/cgroup/odd dir")]);
        assert!(m.memory_v1.is_none());
    }

    #[test]
    fn a_host_cgroupfs_mounted_over_the_containers_own_wins() {
        let t = "\
50 40 0:30 / /sys/fs/cgroup ro - cgroup2 cgroup rw
60 40 0:30 /../../.. /sys/fs/cgroup ro - cgroup2 cgroup2 rw
61 40 0:31 / /other rw - cgroup2 cgroup2 rw
";
        let v2 = Mounts::parse(t).v2.unwrap();
        assert_eq!(v2.dir, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(v2.root, "/", "above the namespace: the host's top");
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let m = Mounts::parse("x\n1 2 3\n - cgroup2\n\\");
        assert_eq!(m, Mounts::default());
    }
}
