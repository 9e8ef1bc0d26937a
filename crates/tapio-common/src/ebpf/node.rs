//! Node observer ABI (`ebpf/node_pmc_monitor.h`).
