//! `tapio health`: a verdict and its rule per observer, one observer, and a
//! stale agent.

use super::util::*;
use super::{fixture, write_status, MIN};

#[test]
fn health_gives_a_verdict_and_its_rule_per_observer() {
    let d = fixture("health");
    write_status(&d, 5_000);
    let o = tapio(&d, &["health"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Minutes oldest first: the folded retransmit spike 10 minutes ago (5 facts, the busiest
    // minute: `@`), the refused connect 2 minutes ago (1 of 5: `-`); the OOM kill 3 minutes ago.
    let net = format!("{}@{}-..", ".".repeat(49), ".".repeat(7));
    let con = format!("{}@...", ".".repeat(56));
    let quiet = ".".repeat(60);
    assert_text(
        &stdout(&o),
        &format!(
            "observer=network verdict=degraded rule=warning_15m last_hour=6 max_per_minute=5 minutes={net} detail=\"6 warning or critical in the last 15m (threshold 1)\"\n\
             observer=container verdict=critical rule=critical_5m last_hour=1 max_per_minute=1 minutes={con} detail=\"1 critical in the last 5m (threshold 1)\"\n\
             observer=storage verdict=healthy rule=quiet_15m last_hour=0 max_per_minute=0 minutes={quiet} detail=\"no warning or critical in the last 15m\"\n\
             observer=node verdict=unavailable rule=agent_unavailable last_hour=0 max_per_minute=0 minutes={quiet} detail=\"agent reports unavailable: perf_event_open cycles: ENOENT (no hardware PMU)\"\n\
             agent_status_file=present\n"
        ),
    );
}

#[test]
fn health_of_one_observer_and_a_stale_agent() {
    let d = fixture("health-one");
    write_status(&d, 10 * MIN);
    let o = tapio(&d, &["health", "network", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["observers"].as_array().unwrap().len(), 1);
    assert_eq!(v["observers"][0]["verdict"], "unknown");
    assert_eq!(v["observers"][0]["rule"], "agent_status_stale");
    assert_eq!(
        v["observers"][0]["detail"],
        "agent status last updated 10m ago (stale after 2m)"
    );
    assert_eq!(v["observers"][0]["last_hour"], 6);
    assert_eq!(v["observers"][0]["per_minute"][49], 5);
    assert_eq!(v["agent"]["status_file"], "stale");
    let o = tapio(&d, &["health", "dns"]);
    assert_eq!(o.status.code(), Some(2));
}
