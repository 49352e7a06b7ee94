#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Boots Debian 12's own kernel (6.1) under QEMU TCG with a busybox initramfs
# holding a test binary and its shared libraries, runs it, and exits with its
# status. The kernel matrix: the BPF tests run here as on the host kernel,
# proving that one CO-RE build loads on both, and exercising what the host
# kernel may lack (soft-dirty). Exit 77 (ctest: skipped) with the reason
# printed when the kernel or QEMU is missing.
#   usage: run.sh TEST_BINARY [ARGS...]
#   VMTIDE_VMTEST_KERNEL_DIR  unpacked kernel (default /var/cache/vmtide/vmtest/current, from scripts/deps)
#   VMTIDE_VMTEST_TIMEOUT     seconds before the guest is killed (default 600)
set -euo pipefail
bin=$(readlink -f "$1")
shift
kdir=${VMTIDE_VMTEST_KERNEL_DIR:-/var/cache/vmtide/vmtest/current}
timeout_s=${VMTIDE_VMTEST_TIMEOUT:-600}

skip() { echo "vmtest: SKIPPED: $*"; exit 77; }
kernels=("$kdir"/boot/vmlinuz-*)
vmlinuz=${kernels[0]}
[[ -e $vmlinuz ]] || vmlinuz=
[[ -n $vmlinuz ]] || skip "no Debian kernel in $kdir (scripts/deps fetches it)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/deps)"
busybox=$(command -v busybox || true)
[[ -n $busybox ]] && file_is_static=$(ldd "$busybox" 2>&1 | grep -c "not a dynamic" || true)
[[ -n $busybox && ${file_is_static:-0} -gt 0 ]] || skip "static busybox not found (package busybox-static)"
kver=$(basename "$vmlinuz" | sed 's/^vmlinuz-//')

work=$(mktemp -d /tmp/vmtide-vmtest.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,test,lib,lib64,usr/lib}

cp "$busybox" "$root/bin/busybox"
for app in sh mount mkdir cat echo poweroff insmod uname ls sync sleep dd losetup mkfs.ext2 rm; do
    ln -s busybox "$root/bin/$app"
done
# The test binary under /vmtest (not its host path: that may lie under
# /tmp, where the guest mounts a tmpfs), plus every shared library it
# needs, at their host paths.
mkdir -p "$root/vmtest"
cp "$bin" "$root/vmtest/"
guest_bin=/vmtest/$(basename "$bin")
ldd "$bin" | awk '/=> \// {print $3} /^[ \t]*\// {print $1}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Kernel modules the tests may insmod (e.g. loop), at the usual path.
if [[ -d $kdir/lib/modules/$kver ]]; then
    mkdir -p "$root/lib/modules/$kver/kernel/drivers/block"
    cp "$kdir/lib/modules/$kver/kernel/drivers/block/loop.ko"* "$root/lib/modules/$kver/kernel/drivers/block/" 2>/dev/null || true
fi

# shellcheck disable=SC2016  # the quoted lines are the guest's script, expanded there
{
    echo '#!/bin/sh'
    echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs tmp /tmp'
    echo 'for m in /lib/modules/*/kernel/drivers/block/loop.ko*; do [ -e "$m" ] && insmod "$m"; done'
    echo 'echo "vmtest: kernel $(uname -r)"'
    printf 'cd /test && %q' "$guest_bin"
    for a in "$@"; do printf ' %q' "$a"; done
    echo
    echo 'echo "VMTEST-EXIT=$?"'
    echo 'sync; poweroff -f'
} >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

echo "vmtest: booting $kver under QEMU TCG with $(basename "$bin") $*"
log=$work/console.log
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -smp 2 -m 1024 -no-reboot \
    -display none -nodefaults -serial stdio \
    -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
status=$(sed -n 's/^VMTEST-EXIT=\([0-9]*\).*/\1/p' "$log" | tail -n1)
if [[ -z $status ]]; then
    echo "vmtest: the guest did not report an exit status (qemu exited $qemu_status; 124 means timeout after ${timeout_s}s)"
    exit 1
fi
exit "$status"
