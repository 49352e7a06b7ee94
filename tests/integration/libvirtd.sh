#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a private libvirtd for tests, its whole state under DIR: in a mount
# namespace of its own, DIR's subdirectories are bind-mounted over libvirt's
# fixed paths (/etc/libvirt, /run/libvirt, /var/lib/libvirt, ...), so the
# host's libvirt, if any, is untouched. Clients reach it through
# qemu+unix:///system?socket=DIR/run/libvirt-sock. The script execs
# libvirtd in the foreground: signal its pid to stop it.
#   usage: libvirtd.sh DIR
# Settings (as in docs/lab.md): QEMU runs as root without a security
# driver, and logs to files (no virtlogd); TCP listening stays off.
set -euo pipefail
d=$1
command -v libvirtd >/dev/null || { echo "libvirtd.sh: libvirtd not installed (scripts/deps)" >&2; exit 77; }
mkdir -p "$d"/{etc,run,lib/qemu,cache/qemu,log/qemu}
[[ -e $d/etc/libvirtd.conf ]] || cp -a /etc/libvirt/. "$d/etc/" 2>/dev/null || true
cat >"$d/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
security_driver = "none"
dynamic_ownership = 0
stdio_handler = "file"
CONF
cat >"$d/etc/libvirtd.conf" <<'CONF'
listen_tcp = 0
listen_tls = 0
unix_sock_rw_perms = "0700"
log_outputs = "3:stderr"
CONF
exec unshare --mount --propagation private sh -c "
set -e
mkdir -p /etc/libvirt
mount --bind '$d/etc' /etc/libvirt
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
mount --bind '$d/run' /run/libvirt
mount --bind '$d/lib' /var/lib/libvirt
mount --bind '$d/cache' /var/cache/libvirt
mount --bind '$d/log' /var/log/libvirt
exec libvirtd --pid-file '$d/run/libvirtd.pid'
"
