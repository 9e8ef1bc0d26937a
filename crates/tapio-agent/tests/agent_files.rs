//! The real agent binary without eBPF objects (root, no BPF program loads):
//! exit codes, the data directory's safety checks, and hostile symlinks at
//! every path the agent writes.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tapio-agent");
const OBSERVERS: [(&str, &str); 4] = [
    ("network", "network_monitor"),
    ("container", "container_monitor"),
    ("storage", "storage_monitor"),
    ("node", "node_pmc_monitor"),
];

/// True when the agent's preflight can pass (root). Outside CI a non-root
/// run skips, saying so; under CI=true it fails.
mod skip;

fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip::cannot_run(
        "agent_files needs root (the agent's preflight checks CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN)",
    );
    false
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let root =
            std::env::temp_dir().join(format!("tapio-agent-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("empty-ebpf")).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        Scratch(root)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// Runs the agent with the file sink on `data`, no eBPF objects and the
    /// TOML `toml`.
    fn agent(&self, data: &Path, toml: &str) -> Output {
        let cfg = self.path("tapio.toml");
        fs::write(&cfg, toml).unwrap();
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["--sink", "file", "--data-dir"])
            .arg(data)
            .arg("--ebpf-dir")
            .arg(self.path("empty-ebpf"))
            .env_remove("TAPIO_CONTROLLER_TOKEN")
            .output()
            .unwrap()
    }

    /// Every entry under `outside/`: name, type, mode, content.
    fn outside(&self) -> Vec<(String, bool, u32, String)> {
        let mut v: Vec<_> = fs::read_dir(self.path("outside"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    m.is_file(),
                    m.mode() & 0o7777,
                    fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The lines the agent prints last when no observer loads from `ebpf`.
fn no_observer_lines(ebpf: &Path) -> String {
    let mut s = String::from("tapio-agent: no observer could start on this host:\n");
    for (name, object) in OBSERVERS {
        s.push_str(&format!(
            "tapio-agent:   {name}: eBPF object `{}/{object}.o` not found\n",
            ebpf.display()
        ));
    }
    s
}

#[test]
fn no_loadable_observer_exits_3_with_one_line_per_observer() {
    if !root() {
        return;
    }
    let s = Scratch::new("exit3");
    let data = s.path("data");
    let out = s.agent(&data, "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(out.stdout.is_empty());
    let want = no_observer_lines(&s.path("empty-ebpf"));
    assert!(
        err.ends_with(&want),
        "stderr:\n{err}\nwanted it to end with:\n{want}"
    );
    // `tapio status` can show why after the exit: the status file has each
    // observer's reason.
    let st: serde_json::Value =
        serde_json::from_slice(&fs::read(data.join(".tapio-status.json")).unwrap()).unwrap();
    for (i, (name, object)) in OBSERVERS.iter().enumerate() {
        let o = &st["observers"][i];
        assert_eq!(o["name"], *name);
        assert_eq!(o["state"], "unavailable");
        assert_eq!(
            o["reason"],
            format!(
                "eBPF object `{}/{object}.o` not found",
                s.path("empty-ebpf").display()
            )
        );
    }
    // Created 0750, the status file 0640.
    assert_eq!(fs::metadata(&data).unwrap().mode() & 0o777, 0o750);
    assert_eq!(
        fs::metadata(data.join(".tapio-status.json"))
            .unwrap()
            .mode()
            & 0o777,
        0o640
    );
}

#[test]
fn unsafe_data_dirs_are_refused_with_exit_2_unless_allowed() {
    if !root() {
        return;
    }
    let s = Scratch::new("exit2");
    let link = s.path("link");
    symlink(s.path("outside"), &link).unwrap();
    let open = s.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let file = s.path("file");
    fs::write(&file, "").unwrap();
    let cases = [
        (
            &link,
            format!("tapio-agent: data dir `{}` is a symlink; refusing to follow it (point --data-dir at the real directory, or set [file] allow_unsafe_data_dir = true)\n", link.display()),
        ),
        (
            &open,
            format!("tapio-agent: data dir `{}` is writable by group and others (mode 0777); refusing it (chmod go-w, or set [file] allow_unsafe_data_dir = true)\n", open.display()),
        ),
        (
            &file,
            format!("tapio-agent: data dir `{}` is not a directory\n", file.display()),
        ),
    ];
    let before = s.outside();
    for (dir, want) in &cases {
        let out = s.agent(dir, "");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stderr(&out), *want);
    }
    assert_eq!(s.outside(), before);
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    // The documented TOML key lets the operator accept them.
    for dir in [&link, &open] {
        let out = s.agent(dir, "[file]\nallow_unsafe_data_dir = true\n");
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert!(dir.join(".tapio-status.json").is_file());
    }
}

#[test]
fn hostile_symlinks_at_every_path_the_agent_writes_change_nothing_outside() {
    if !root() {
        return;
    }
    let s = Scratch::new("hostile");
    let data = s.path("data");
    fs::create_dir(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o750)).unwrap();
    let victims: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = s.path(&format!("outside/victim{i}"));
            fs::write(&p, format!("precious {i}")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            p
        })
        .collect();
    // The status file, the fixed temp name earlier agents used for it, and
    // an occurrence's old fixed temp name.
    symlink(&victims[0], data.join(".tapio-status.json")).unwrap();
    symlink(&victims[1], data.join(".tapio-status.json.tmp")).unwrap();
    symlink(
        &victims[2],
        data.join(".01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp"),
    )
    .unwrap();
    let before = s.outside();
    let out = s.agent(&data, "");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(s.outside(), before);
    let status = data.join(".tapio-status.json");
    let m = fs::symlink_metadata(&status).unwrap();
    assert!(m.is_file(), "status file is not a regular file: {m:?}");
    assert_eq!(m.mode() & 0o777, 0o640);
    // The stale temp links were removed (not followed); nothing else is left.
    let names: Vec<String> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![".tapio-status.json".to_owned()]);
}

#[test]
fn the_default_data_dir_is_absolute() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("File sink output directory [default: /var/lib/tapio/occurrences]"),
        "{help}"
    );
}
