//! Network observer: refused and timed-out connects (B1, B2), retransmit
//! spikes (B3) and RTT degradation (B4) from `network_monitor.o` records.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tapio_common::ebpf::network::{
    NetworkConfig, NetworkRecord, CFG_CONNECT, CFG_RETRANSMIT, CFG_RTT, REC_CONNECT_FAILED,
    REC_F_OWNER_KNOWN, REC_F_RST, REC_RETRANSMIT, REC_RTT_SAMPLE,
};
use tapio_common::ebpf::{as_bytes, ConfigHeader};
use tapio_common::{Anomaly, Comm, Fact, Facts, Observer, Outcome, Severity};
use tapio_wire::{CompiledConfig, NetworkSettings};

use super::{parse_record, Classifier, Malformed};
use crate::clock::Clock;
use crate::counters::{Counters, FactDrop};
use crate::fold::{Candidate, RawKey};

pub mod rtt_hook;
mod windows;
pub use windows::{Destination, RetransmitWindows, RttBaselines};

const ECONNREFUSED: i32 = 111;
const ETIMEDOUT: i32 = 110;
const EHOSTUNREACH: i32 = 113;
const ENETUNREACH: i32 = 101;
const AF_INET6: u16 = 10;

/// How a connect left SYN_SENT for CLOSE (B1, B2), from the kernel's facts.
/// Written down in docs/architecture.md ("Connect failures").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectEnd {
    /// An RST answered the SYN (`ECONNREFUSED`).
    Refused,
    /// The kernel gave up: SYN retries exhausted (`ETIMEDOUT`).
    SynRetriesExhausted,
    /// An ICMP unreachable ended the attempt (`EHOSTUNREACH` /
    /// `ENETUNREACH`): reported as a timeout whose cause is the ICMP.
    IcmpUnreachable(&'static str),
    /// The application closed a socket whose SYN went out and stayed
    /// unanswered at least the configured floor.
    ApplicationGaveUp,
}

/// Classifies a SYN_SENT -> CLOSE record, or names why it is no evidence.
fn connect_end(r: &NetworkRecord, floor_ms: u32) -> Result<ConnectEnd, FactDrop> {
    match r.sk_err {
        ECONNREFUSED => Ok(ConnectEnd::Refused),
        ETIMEDOUT => Ok(ConnectEnd::SynRetriesExhausted),
        EHOSTUNREACH => Ok(ConnectEnd::IcmpUnreachable("host")),
        ENETUNREACH => Ok(ConnectEnd::IcmpUnreachable("net")),
        // No error: the SYN never left (port exhaustion, no buffer, ...)
        // or the socket was closed while connecting.
        0 if r.segs_out == 0 => Err(FactDrop::ConnectNotSent),
        0 if r.duration_ns < u64::from(floor_ms) * 1_000_000 => {
            Err(FactDrop::ConnectAbandonedEarly)
        }
        0 => Ok(ConnectEnd::ApplicationGaveUp),
        _ => Err(FactDrop::ConnectOtherErrno),
    }
}

/// The `tapio_config` carrier of `network_monitor.o` for `cfg`.
#[must_use]
pub fn carrier(cfg: &CompiledConfig, generation: u64) -> Vec<u8> {
    let n = &cfg.network;
    let wanted = [
        (n.connect_failures, CFG_CONNECT),
        (n.retransmits, CFG_RETRANSMIT),
        (n.rtt && n.rtt_sample_interval_ms > 0, CFG_RTT),
    ];
    let c = NetworkConfig {
        hdr: ConfigHeader::configured(n.enabled, &wanted, generation),
        rtt_sample_interval_ms: n.rtt_sample_interval_ms,
        _pad0: 0,
    };
    as_bytes(&c).to_vec()
}

/// Classifies network records.
pub struct NetworkClassifier {
    settings: NetworkSettings,
    retransmits: RetransmitWindows,
    rtt: RttBaselines,
    counters: Option<Arc<Counters>>,
    /// A config was taken (before it, the carrier is inert: no passes).
    configured: bool,
}

impl Default for NetworkClassifier {
    fn default() -> Self {
        let settings = CompiledConfig::production_default().network;
        NetworkClassifier {
            retransmits: RetransmitWindows::new(&settings),
            rtt: RttBaselines::new(&settings),
            settings,
            counters: None,
            configured: false,
        }
    }
}

/// The address of a record; an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, a
/// dual-stack socket talking IPv4) is the IPv4 address it maps, so it is
/// keyed and reported as the same peer as over `AF_INET`.
fn addr(family: u16, raw: &[u8; 16]) -> IpAddr {
    if family == AF_INET6 {
        let v6 = Ipv6Addr::from(*raw);
        v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

/// Owner facts (pid = process, tid = thread) when captured at connect.
fn owner_facts(r: &NetworkRecord, f: &mut Facts) -> bool {
    let known = r.flags & REC_F_OWNER_KNOWN != 0;
    if known {
        f.u64("pid", u64::from(r.tgid))
            .set("comm", Fact::Comm(Comm(r.comm)))
            .u64("cgroup_id", r.cgroup_id);
    }
    known
}

/// `error.message` of connect failures, as templates over the candidate's
/// own facts: the text is written with the occurrence, never built per
/// record. ` pid=<pid> comm=<comm>` or ` owner=unknown` ends each.
mod summary {
    use tapio_common::Piece::{Fact as F, Lit as L};
    use tapio_common::{template, Template};

    const TO: Template = &[L("connect to "), F("dst_addr"), L(":"), F("dst_port")];
    /// Index 0: owner unknown; 1: known.
    const OWNER: [Template; 2] = [
        &[L(" owner=unknown")],
        &[L(" pid="), F("pid"), L(" comm="), F("comm")],
    ];
    const TIMED_OUT_GAVE_UP: Template = &[L(" timed out ("), F("gave_up"), L(" gave up)")];
    const ICMP_UNREACHABLE: Template = &[
        L(" failed: ICMP "),
        F("icmp_unreachable"),
        L(" unreachable"),
    ];

    pub(super) const REFUSED: [Template; 2] = [
        template!(TO, &[L(" refused")], OWNER[0]),
        template!(TO, &[L(" refused")], OWNER[1]),
    ];
    pub(super) const TIMED_OUT: [Template; 2] = [
        template!(TO, TIMED_OUT_GAVE_UP, OWNER[0]),
        template!(TO, TIMED_OUT_GAVE_UP, OWNER[1]),
    ];
    pub(super) const ICMP: [Template; 2] = [
        template!(TO, ICMP_UNREACHABLE, OWNER[0]),
        template!(TO, ICMP_UNREACHABLE, OWNER[1]),
    ];
}

impl NetworkClassifier {
    fn connect_failed(&self, r: &NetworkRecord, unix_ns: u64) -> Result<Candidate, FactDrop> {
        let end = connect_end(r, self.settings.connect_give_up_floor_ms)?;
        let dst = addr(r.family, &r.daddr);
        let src = addr(r.family, &r.saddr);
        let mut key = Facts::with_capacity(8);
        key.set("dst_addr", Fact::Addr(dst))
            .u64("dst_port", u64::from(r.dport));
        let known = owner_facts(r, &mut key);
        let mut detail = Facts::with_capacity(9);
        if known {
            detail.u64("tid", u64::from(r.pid));
        }
        detail
            .set("src_addr", Fact::Addr(src))
            .u64("src_port", u64::from(r.sport))
            .u64("syn_retransmits", u64::from(r.retransmits))
            .u64("syn_sent_ns", r.duration_ns)
            .i64("errno", i64::from(r.sk_err));
        let owner = usize::from(known);
        let (anomaly, template) = match end {
            ConnectEnd::Refused => {
                detail.bool("reset_received", r.flags & REC_F_RST != 0);
                (Anomaly::ConnectionRefused, summary::REFUSED[owner])
            }
            ConnectEnd::SynRetriesExhausted | ConnectEnd::ApplicationGaveUp => {
                let side = if end == ConnectEnd::ApplicationGaveUp {
                    "application"
                } else {
                    "kernel"
                };
                key.str("gave_up", side);
                (Anomaly::ConnectionTimeout, summary::TIMED_OUT[owner])
            }
            ConnectEnd::IcmpUnreachable(what) => {
                key.str("gave_up", "kernel");
                detail.str("icmp_unreachable", what);
                (Anomaly::ConnectionTimeout, summary::ICMP[owner])
            }
        };
        Ok(Candidate {
            anomaly,
            severity: Severity::Warning,
            outcome: Outcome::Failure,
            unix_ns,
            generation: r.hdr.generation,
            key,
            detail,
            summary: String::new(),
            template: Some(template),
            fold: true,
        })
    }

    fn drop(&self, r: FactDrop) {
        if let Some(c) = &self.counters {
            c.fact_drop(Observer::Network, r);
        }
    }
}

impl Classifier for NetworkClassifier {
    fn observer(&self) -> Observer {
        Observer::Network
    }

    fn raw_fold_key(&self, bytes: &[u8]) -> Option<(RawKey, u64, Option<u64>)> {
        let (hdr, r): (_, NetworkRecord) = parse_record(bytes, &[REC_CONNECT_FAILED]).ok()?;
        // The fields `connect_failed` builds its key facts from.
        let (anomaly, class) = match connect_end(&r, self.settings.connect_give_up_floor_ms) {
            Ok(ConnectEnd::Refused) => (Anomaly::ConnectionRefused, 0u8),
            Ok(ConnectEnd::SynRetriesExhausted | ConnectEnd::IcmpUnreachable(_)) => {
                (Anomaly::ConnectionTimeout, 1)
            }
            Ok(ConnectEnd::ApplicationGaveUp) => (Anomaly::ConnectionTimeout, 2),
            Err(_) => return None,
        };
        let mut k = [0u8; 64];
        // Keyed as `addr` reports it: a v4-mapped peer as its IPv4 address.
        let (family, daddr) = match addr(r.family, &r.daddr) {
            IpAddr::V4(v4) => {
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&v4.octets());
                (2u16, a)
            }
            IpAddr::V6(v6) => (AF_INET6, v6.octets()),
        };
        k[..16].copy_from_slice(&daddr);
        k[16..18].copy_from_slice(&r.dport.to_ne_bytes());
        k[18..20].copy_from_slice(&family.to_ne_bytes());
        k[20] = class;
        if r.flags & REC_F_OWNER_KNOWN != 0 {
            k[21] = 1;
            k[22..26].copy_from_slice(&r.tgid.to_ne_bytes());
            // The name only (`Comm::name`): what follows its NUL is not
            // zeroed by every kernel's bpf_get_current_comm.
            let name = Comm(r.comm);
            let name = name.name();
            k[26..26 + name.len()].copy_from_slice(name);
            k[42..50].copy_from_slice(&r.cgroup_id.to_ne_bytes());
        }
        let key = RawKey {
            anomaly,
            generation: hdr.generation,
            bytes: k,
        };
        // `src_port`, the fact a connect storm's follow-up summarises.
        Some((key, hdr.ts_boot_ns, Some(u64::from(r.sport))))
    }

    fn record(
        &mut self,
        bytes: &[u8],
        clock: &Clock,
        out: &mut Vec<Candidate>,
    ) -> Result<(), Malformed> {
        let (hdr, r): (_, NetworkRecord) =
            parse_record(bytes, &[REC_CONNECT_FAILED, REC_RETRANSMIT, REC_RTT_SAMPLE])?;
        let unix_ns = clock.unix_ns(hdr.ts_boot_ns);
        let dest = Destination {
            addr: addr(r.family, &r.daddr),
            port: r.dport,
        };
        match hdr.kind {
            REC_CONNECT_FAILED => match self.connect_failed(&r, unix_ns) {
                Ok(c) => out.push(c),
                Err(d) => self.drop(d),
            },
            REC_RETRANSMIT => {
                if !self.retransmits.add(dest, &r, unix_ns, out) {
                    self.drop(FactDrop::TableFull);
                }
            }
            _ => {
                if !self.rtt.sample(dest, &r, unix_ns, out) {
                    self.drop(FactDrop::TableFull);
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self, now_unix_ns: u64, out: &mut Vec<Candidate>) {
        self.retransmits.close_before(now_unix_ns, out);
    }

    fn finish(&mut self, out: &mut Vec<Candidate>) {
        self.retransmits.close_before(u64::MAX, out);
    }

    fn configure(&mut self, cfg: &CompiledConfig, _generation: u64) {
        self.configured = true;
        self.settings = cfg.network.clone();
        self.retransmits.configure(&self.settings);
        self.rtt.configure(&self.settings);
    }

    /// The RTT iterator's cadence: the sample interval, while RTT is on.
    fn pass_every(&self) -> Option<std::time::Duration> {
        let n = &self.settings;
        (self.configured && n.enabled && n.rtt && n.rtt_sample_interval_ms > 0)
            .then(|| std::time::Duration::from_millis(u64::from(n.rtt_sample_interval_ms)))
    }

    fn set_counters(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
    }
}

#[cfg(test)]
mod tests;
