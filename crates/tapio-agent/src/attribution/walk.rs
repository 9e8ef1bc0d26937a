//! Bounded walk of one mounted cgroup hierarchy: every cgroup directory's
//! id with its path.
//!
//! ## Design constraints
//! - A cgroup's id is its directory's inode number on the hierarchy's
//!   kernfs (v2: the cgroup id `bpf_get_current_cgroup_id` returns; v1: the
//!   memcg's `kn->id`). Directory entries carry it (`d_ino`), so the walk
//!   reads directories and stats only the top: no per-cgroup `stat`.
//! - At most `max_dirs` directories and `MAX_DEPTH` levels; a walk that
//!   stops at either bound says so ([`Walk::complete`] is false) and an id
//!   it did not find is then not called deleted.
//! - Never enters another filesystem mounted inside the hierarchy.

use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::PathBuf;

use super::mounts::Mount;

/// Deepest level walked below the mount (kubelet paths are 4-6 deep).
pub const MAX_DEPTH: usize = 32;

/// What one walk saw.
#[derive(Debug, Default)]
pub struct Walk {
    /// (cgroup id, cgroup path) of every directory seen, the top included.
    pub dirs: Vec<(u64, String)>,
    /// True when no bound cut the walk short and the top was readable.
    pub complete: bool,
}

fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Walks `mount`, visiting at most `max_dirs` directories.
#[must_use]
pub fn walk(mount: &Mount, max_dirs: usize) -> Walk {
    let mut w = Walk::default();
    let Ok(top) = std::fs::metadata(&mount.dir) else {
        return w;
    };
    w.dirs.push((top.ino(), mount.root.clone()));
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(mount.dir.clone(), mount.root.clone(), 0)];
    let mut complete = true;
    while let Some((dir, cg, depth)) = stack.pop() {
        // A directory removed while walking is fine: it is gone.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            if mount.nested.iter().any(|n| n == &path) {
                continue;
            }
            if w.dirs.len() >= max_dirs {
                complete = false;
                break;
            }
            let name = e.file_name();
            let child = join(&cg, &name.to_string_lossy());
            w.dirs.push((e.ino(), child.clone()));
            if depth + 1 < MAX_DEPTH {
                stack.push((path, child, depth + 1));
            } else {
                complete = false;
            }
        }
        if !complete && w.dirs.len() >= max_dirs {
            break;
        }
    }
    w.complete = complete;
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(tag: &str) -> (PathBuf, Mount) {
        let d = std::env::temp_dir().join(format!("tapio-walk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a/b/c")).unwrap();
        std::fs::create_dir_all(d.join("mnt/x")).unwrap();
        std::fs::write(d.join("a/file"), "").unwrap();
        let m = Mount {
            dir: d.clone(),
            root: "/".into(),
            nested: vec![d.join("mnt")],
        };
        (d, m)
    }

    #[test]
    fn every_directory_with_its_inode_and_path_skipping_nested_mounts() {
        let (d, m) = tree("all");
        let w = walk(&m, 100);
        assert!(w.complete);
        let mut paths: Vec<&str> = w.dirs.iter().map(|(_, p)| p.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, vec!["/", "/a", "/a/b", "/a/b/c"]);
        let ino = std::fs::metadata(d.join("a/b")).unwrap().ino();
        assert!(w.dirs.contains(&(ino, "/a/b".to_owned())));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_bound_makes_the_walk_incomplete() {
        let (d, m) = tree("bound");
        let w = walk(&m, 2);
        assert!(!w.complete);
        assert_eq!(w.dirs.len(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_unreadable_top_is_incomplete() {
        let m = Mount {
            dir: "/nonexistent/tapio".into(),
            root: "/".into(),
            nested: vec![],
        };
        assert!(!walk(&m, 10).complete);
    }
}
