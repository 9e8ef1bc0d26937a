//! Label sets of the attribution counters.

/// Outcome of looking up an occurrence's cgroup in the attribution cache
/// (`tapio_cgroup_lookups_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLookup {
    /// Cached path: the occurrence carries it.
    Hit = 0,
    /// Not cached (unknown, being resolved, deleted or unresolvable): the
    /// occurrence carries the id only.
    Miss = 1,
}

impl CgroupLookup {
    pub(super) const ALL: [CgroupLookup; 2] = [CgroupLookup::Hit, CgroupLookup::Miss];

    pub(super) const fn as_str(self) -> &'static str {
        match self {
            CgroupLookup::Hit => "hit",
            CgroupLookup::Miss => "miss",
        }
    }
}

/// Outcome of resolving one missed cgroup id off the drain path
/// (`tapio_cgroup_resolutions_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupResolution {
    /// Found in its hierarchy: cached for later occurrences.
    Resolved = 0,
    /// Absent from a complete walk started after the fact: the cgroup was
    /// removed (or lies outside the agent's view of the hierarchy).
    Deleted = 1,
    /// The walk stopped at its bound before finding it; retried later.
    Truncated = 2,
    /// The hierarchy the id belongs to is not mounted here.
    NoHierarchy = 3,
    /// The resolver's queue was full; retried on a later occurrence.
    QueueFull = 4,
}

impl CgroupResolution {
    pub(super) const ALL: [CgroupResolution; 5] = [
        CgroupResolution::Resolved,
        CgroupResolution::Deleted,
        CgroupResolution::Truncated,
        CgroupResolution::NoHierarchy,
        CgroupResolution::QueueFull,
    ];

    pub(super) const fn as_str(self) -> &'static str {
        match self {
            CgroupResolution::Resolved => "resolved",
            CgroupResolution::Deleted => "deleted",
            CgroupResolution::Truncated => "truncated",
            CgroupResolution::NoHierarchy => "no_hierarchy",
            CgroupResolution::QueueFull => "queue_full",
        }
    }
}
