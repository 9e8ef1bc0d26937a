//! The agent under test: the real binary, its occurrences (stdout, JSON
//! lines) and its log (stderr), collected by two reader threads.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{ebpf_dir, scaled, tempdir};

/// A running agent printing JSON lines on stdout.
pub struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
    log: Arc<Mutex<Vec<String>>>,
    pub dir: std::path::PathBuf,
}

impl Agent {
    /// Starts the agent with `config` (a CompiledConfig JSON) and extra
    /// args; waits until it reports the config applied.
    pub fn start(tag: &str, config: &Value, extra: &[&str]) -> Agent {
        Agent::launch(tag, config, "", extra, &[])
    }

    /// As [`Agent::start`], with extra environment variables for the agent.
    pub fn start_with_env(
        tag: &str,
        config: &Value,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        Agent::launch(tag, config, "", extra, env)
    }

    /// [`Agent::start`] with `toml_extra` appended to the agent's TOML
    /// (e.g. a `[metrics]` section).
    pub fn start_toml(tag: &str, config: &Value, toml_extra: &str, extra: &[&str]) -> Agent {
        Agent::launch(tag, config, toml_extra, extra, &[])
    }

    fn launch(
        tag: &str,
        config: &Value,
        toml_extra: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = tempdir(tag);
        let cfg_path = dir.join("compiled.json");
        std::fs::write(&cfg_path, serde_json::to_vec(config).unwrap()).unwrap();
        let toml = format!(
            "compiled_config = {:?}\n{toml_extra}\n[drain]\ntick_ms = 50\n",
            cfg_path.display().to_string()
        );
        let agent = Agent::spawn(dir, &toml, extra, env, true);
        // Loading every observer takes 10-25 s in the kernel-matrix VMs (TCG)
        // when the host is busy: 20 s failed there (kernel_kubelet, 2026-11-30).
        agent.wait_log("config applied", Duration::from_secs(60));
        agent
    }

    /// Starts the agent with `toml` as its config file and `extra` args,
    /// printing occurrences on stdout, without waiting for a config (for
    /// controller mode, where none may ever come).
    pub fn start_unconfigured(tag: &str, toml: &str, extra: &[&str]) -> Agent {
        Agent::spawn(tempdir(tag), toml, extra, &[], false)
    }

    /// Writes `toml` into `dir`, starts the agent on it with the test's
    /// eBPF objects and a stdout sink, and starts the two reader threads.
    /// `strict`: a stdout line that is not JSON fails the test (else it is
    /// skipped).
    fn spawn(
        dir: std::path::PathBuf,
        toml: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        strict: bool,
    ) -> Agent {
        let toml_path = dir.join("tapio.toml");
        std::fs::write(&toml_path, toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapio-agent"))
            .arg("--config")
            .arg(&toml_path)
            .arg("--ebpf-dir")
            .arg(ebpf_dir())
            .arg("--sink")
            .arg("stdout")
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tapio-agent");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => l.lock().unwrap().push(v),
                    Err(e) if strict => panic!("agent printed non-JSON {line:?}: {e}"),
                    Err(_) => {}
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let g = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("agent: {line}");
                g.lock().unwrap().push(line);
            }
        });
        Agent {
            child,
            lines,
            log,
            dir,
        }
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let timeout = scaled(timeout);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "agent did not log {needle:?} within {timeout:?}; log: {:#?}",
            self.log.lock().unwrap()
        );
    }

    /// Waits until `needle` appears in at least `n` log lines.
    pub fn wait_log_count(&self, needle: &str, n: usize, timeout: Duration) {
        let timeout = scaled(timeout);
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log_count(needle) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "agent did not log {needle:?} {n} times within {timeout:?}; log: {:#?}",
            self.log_lines()
        );
    }

    /// Log lines containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Occurrences printed so far.
    pub fn occurrences(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the occurrences printed so far.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let end = Instant::now() + scaled(timeout);
        loop {
            let now = self.occurrences();
            if pred(&now) || Instant::now() > end {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to the agent.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        let rc = unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    /// SIGTERM, wait for exit; returns the exit code and every occurrence.
    pub fn stop(mut self) -> (i32, Vec<Value>) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(i32::try_from(self.child.id()).unwrap(), libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(15);
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < end,
                "agent did not exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
        (code, self.occurrences())
    }

    /// Waits (15 s at most, scaled) for the agent to exit after a signal
    /// the caller sent; its exit code (`None`: killed by a signal) and log.
    pub fn stop_after_signal(mut self) -> (Option<i32>, Vec<String>) {
        let end = Instant::now() + scaled(Duration::from_secs(15));
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < end, "agent did not exit after the signal");
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(200));
        let _ = std::fs::remove_dir_all(&self.dir);
        (status.code(), self.log_lines())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
