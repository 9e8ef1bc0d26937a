# Sourced by scripts/test-kernels.sh --arch arm64: builds what the arm64 VMs
# run and defines run_arm64_vm. Sets bins (the aarch64 kernel_* test
# binaries), helpers (the examples they run), agent_bin, fuse_bin, bpf_dir;
# exports TAPIO_TOOLS_ROOT (the arm64
# root of busybox, dash and the tools, scripts/kernels/arm64-root.sh) and
# TAPIO_EARLY_MODULES (the report port's driver) for initramfs.sh.
# shellcheck shell=bash
a64=aarch64-unknown-linux-gnu
rustup target list --installed 2>/dev/null | grep -qx "$a64" || rustup target add "$a64" >&2
bpf_dir=$root/target/bpf-arm64
scripts/build-ebpf.sh --arch arm64 "$bpf_dir" >/dev/null
# Profile kmatrix (Cargo.toml): dev, optimised; a debug agent is too slow
# to start under TCG aarch64. With the default filter only the four test
# files holding the ARM64_TESTS are built (the dependencies dominate, but each
# test binary is a link of the whole agent library).
if [ -z "${TAPIO_MATRIX_FILTER:-}" ]; then
  test_targets=(--test kernel_network --test kernel_container --test kernel_storage --test kernel_btf)
else
  test_targets=(--test 'kernel_*')
fi
build_tests "$work/artifacts-arm64.txt" "$tdir/$a64/kmatrix" --target "$a64" --profile kmatrix
export TAPIO_TOOLS_ROOT=$work/arm64-root
"$kdir/arm64-root.sh" "$TAPIO_TOOLS_ROOT"
export TAPIO_EARLY_MODULES="virtio_pci virtio_console"
fuse_bin=$work/tapio_fuse_disk-arm64
alib=$TAPIO_TOOLS_ROOT/usr/lib/aarch64-linux-gnu
aarch64-linux-gnu-gcc -O2 -Wall -o "$fuse_bin" crates/tapio-agent/tests/fuse/tapio_fuse_disk.c \
  $(pkg-config --cflags fuse3) "$alib/libfuse3.so.3" -lpthread -Wl,-rpath-link="$alib"

# The tests list themselves by running: under qemu-aarch64 user mode here.
command -v qemu-aarch64-static >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
}
runner=(qemu-aarch64-static -L "$TAPIO_TOOLS_ROOT")

run_arm64_vm() { # VMLINUZ OUT
  # -M virt has one UART (the console); the report goes to a virtio console.
  timeout --foreground -k 10 "$vm_timeout" qemu-system-aarch64 \
    -M virt -cpu cortex-a57 -accel tcg -smp 1 -m 2048 -no-reboot -display none -monitor none \
    -kernel "$1" -initrd "$2/initrd" \
    -append "console=ttyAMA0 panic=-1 oops=panic quiet loglevel=4 cgroup_no_v1=all tapio.report=/dev/hvc0" \
    -serial "file:$2/console.log" \
    -device virtio-serial-pci -chardev "file,id=report,path=$2/results.log" \
    -device virtconsole,chardev=report \
    >"$2/qemu.log" 2>&1 || echo "qemu exit $?" >> "$2/qemu.log"
}
