//! Container observer ABI (`ebpf/container_monitor.h`).
