//! Storage observer ABI (`ebpf/storage_monitor.h`).
