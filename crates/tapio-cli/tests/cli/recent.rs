//! `tapio recent`: the window, its JSON form, `--limit`, and an empty
//! window.

use super::util::*;
use super::{fixture, MIN};

#[test]
fn recent_lists_the_window_oldest_first() {
    let d = fixture("recent");
    let o = tapio(&d, &["recent", "--since", "5m"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_text(
        &stdout(&o),
        "2026-04-03T14:27:00.000Z critical kernel.container.oom_kill count=1 comm=\"stress ng\" pid=4321\n\
         2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
    let o = tapio(&d, &["recent"]);
    assert_text(
        &stdout(&o),
        "2026-04-03T14:20:00.000Z warning kernel.network.retransmit_spike count=5 daddr=10.0.0.9\n\
         2026-04-03T14:27:00.000Z critical kernel.container.oom_kill count=1 comm=\"stress ng\" pid=4321\n\
         2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
}

#[test]
fn recent_json_emits_the_documents() {
    let d = fixture("recent-json");
    let o = tapio(&d, &["recent", "--since", "2026-04-03T14:27:30Z", "--json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], ulid(NOW_MS - 2 * MIN, 1));
    assert_eq!(lines[0]["data"]["dst_port"], 8080);
    assert_eq!(lines[0]["error"]["code"], "CONNECTION_REFUSED");
}

#[test]
fn recent_limit_keeps_the_newest() {
    let d = fixture("recent-limit");
    let o = tapio(&d, &["recent", "--limit", "1"]);
    assert_text(
        &stdout(&o),
        "2026-04-03T14:28:00.000Z warning kernel.network.connection_refused count=1 comm=curl dst_port=8080 pid=1234\n",
    );
    assert!(
        stderr(&o).contains("tapio: showing the newest 1 of 3 matching occurrences\n"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn recent_with_nothing_in_the_window_says_so() {
    let d = fixture("recent-none");
    let o = tapio(&d, &["recent", "--since", "30s"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).ends_with(&format!(
            "tapio: no occurrences since 2026-04-03T14:29:30.000Z in `{}`\n",
            d.display()
        )),
        "{}",
        stderr(&o)
    );
}
