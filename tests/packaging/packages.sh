#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the three Debian packages (scripts/package), installs them on this
# machine with dpkg, checks what an operator gets (binaries, configuration,
# units, man pages, bash completion), and purges them again, leaving nothing
# behind, whether it passes or fails. Root only; skipped (77) otherwise, or
# when vmtide packages or /var/lib/vmtide are already there (it would
# replace or delete them).
#   usage: packages.sh SOURCE_DIR PKG_BUILD_DIR
set -euo pipefail
src=$1
pkgbuild=$2
[[ $(id -u) -eq 0 ]] || { echo "SKIPPED: installing packages needs root"; exit 77; }
for t in dpkg dpkg-deb cpack; do
    command -v "$t" >/dev/null || { echo "SKIPPED: $t is not installed"; exit 77; }
done
pkgs=(vmtide-agent vmtide-controller vmtide-tools)
for p in "${pkgs[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv 'not-installed'; then
        echo "SKIPPED: $p is already installed here (dpkg -l $p); this test would replace it"
        exit 77
    fi
done
if [[ -e /var/lib/vmtide ]]; then
    echo "SKIPPED: /var/lib/vmtide exists (a controller's decision log?); purging vmtide-controller would delete it"
    exit 77
fi
had_user=0
getent passwd vmtide >/dev/null && had_user=1
had_etc=0  # an operator's keys may live there: then it stays, rightly
[[ -e /etc/vmtide ]] && had_etc=1
work=$(mktemp -d /tmp/vmtide-pkg.XXXXXX)
cleanup() {
    dpkg --purge "${pkgs[@]}" >"$work/purge.log" 2>&1 || cat "$work/purge.log"
    # The controller's package leaves its system user on purge (Debian's
    # advice); this test leaves the machine as it found it.
    if [[ $had_user -eq 0 ]] && getent passwd vmtide >/dev/null; then
        userdel vmtide 2>/dev/null || true
        if getent group vmtide >/dev/null; then groupdel vmtide 2>/dev/null || true; fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== build the packages"
start=$(date +%s)
VMTIDE_PKG_BUILD_DIR=$pkgbuild "$src/scripts/package" >"$work/debs" 2>"$work/build.log" ||
    { tail -n 40 "$work/build.log"; fail "scripts/package failed"; }
echo "built in $(($(date +%s) - start)) s:"
cat "$work/debs"
[[ $(wc -l <"$work/debs") -eq 3 ]] || fail "expected 3 .deb files"
deb() { grep "/$1_" "$work/debs"; }

echo "== control data"
for p in "${pkgs[@]}"; do
    dpkg-deb -f "$(deb "$p")" Package | grep -qx "$p" || fail "$(deb "$p") is not $p"
done
agent_deps=$(dpkg-deb -f "$(deb vmtide-agent)" Depends)
echo "vmtide-agent Depends: $agent_deps"
for lib in libbpf1 libvirt0 libzmq5 libc6 'libstdc\+\+6'; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$agent_deps" || fail "vmtide-agent does not depend on $lib"
done
controller_deps=$(dpkg-deb -f "$(deb vmtide-controller)" Depends)
echo "vmtide-controller Depends: $controller_deps"
for lib in libvirt0 libzmq5 adduser; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$controller_deps" || fail "vmtide-controller does not depend on $lib"
done
grep -q libzmq5 <<<"$(dpkg-deb -f "$(deb vmtide-tools)" Depends)" || fail "vmtide-tools does not depend on libzmq5"
dpkg-deb --ctrl-tarfile "$(deb vmtide-agent)" | tar -xO ./conffiles | grep -qx /etc/vmtide/agent.toml ||
    fail "agent.toml is not a conffile"
dpkg-deb --ctrl-tarfile "$(deb vmtide-controller)" | tar -xO ./conffiles | grep -qx /etc/vmtide/controller.toml ||
    fail "controller.toml is not a conffile"
# The BPF programs are inside the agent (skeletons), not files beside it.
dpkg-deb -c "$(deb vmtide-agent)" | grep -E '\.(bpf\.)?o$' && fail "the agent package ships object files"

echo "== install"
mapfile -t debs <"$work/debs"
dpkg -i "${debs[@]}" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
for p in "${pkgs[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p") == "install ok installed" ]] || fail "$p is not installed"
done
cmp /etc/vmtide/agent.toml "$src/packaging/agent.toml" || fail "/etc/vmtide/agent.toml differs from packaging/agent.toml"
cmp /etc/vmtide/controller.toml "$src/packaging/controller.toml" || fail "controller.toml differs"
getent passwd vmtide | grep -q ':/usr/sbin/nologin$' || fail "no vmtide system user with a nologin shell"
[[ $(stat -c %U /var/lib/vmtide) == vmtide ]] || fail "/var/lib/vmtide is not the vmtide user's"

echo "== binaries"
/usr/bin/vmtide-agent --version | grep -E '^vmtide-agent [0-9]+\.[0-9]+\.[0-9]+ ' || fail "vmtide-agent --version"
/usr/bin/vmtide-agent --check-config >"$work/agent.toml" 2>"$work/agent.err" || { cat "$work/agent.err"; fail "agent --check-config"; }
grep -qx 'vmtide-agent: configuration OK (/etc/vmtide/agent.toml)' "$work/agent.err" ||
    { cat "$work/agent.err"; fail "the agent did not read /etc/vmtide/agent.toml"; }
grep -qE "^endpoint = [\"']tcp://\*:7470[\"']$" "$work/agent.toml" || fail "agent --check-config printed no endpoint"
/usr/bin/vmtide-controller --version | grep -q '^vmtide-controller ' || fail "vmtide-controller --version"
/usr/bin/vmtide-controller --check-config >/dev/null 2>"$work/controller.err" || { cat "$work/controller.err"; fail "controller --check-config"; }
grep -qx 'vmtide-controller: configuration OK (/etc/vmtide/controller.toml)' "$work/controller.err" ||
    { cat "$work/controller.err"; fail "the controller did not read /etc/vmtide/controller.toml"; }
/usr/bin/vmtide --help | grep -q '^  tap ' || fail "vmtide --help lists no tap"
/usr/bin/vmtide-sim --help | grep -q compare || fail "vmtide-sim --help"
# The installed agent, as the unit runs it but for two ticks: with root and
# kernel BTF its embedded BPF programs load.
/usr/bin/vmtide-agent --endpoint 'tcp://127.0.0.1:*' --metrics off --discovery procfs --ticks 2 --interval 0.2 \
    2>"$work/run.log" || { cat "$work/run.log"; fail "the installed agent did not run"; }
if [[ -r /sys/kernel/btf/vmlinux ]]; then
    grep -q 'BPF collectors off' "$work/run.log" && { cat "$work/run.log"; fail "the installed agent loaded no BPF programs"; }
    echo "the installed agent loaded its BPF programs"
fi

echo "== systemd units"
units=(/lib/systemd/system/vmtide-agent.service /lib/systemd/system/vmtide-controller.service)
for u in "${units[@]}"; do [[ -f $u ]] || fail "$u is not installed"; done
if command -v systemd-analyze >/dev/null; then
    # verify warns on stderr about units it cannot load; any line naming ours fails.
    systemd-analyze verify "${units[@]}" >"$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
    if grep -E 'vmtide' "$work/verify.log"; then fail "systemd-analyze verify complained"; fi
    for u in "${units[@]}"; do
        systemd-analyze security --offline=true --no-pager "$u" | tail -n1
    done
else
    echo "note: no systemd-analyze; units not verified"
fi

echo "== man pages"
for m in man8/vmtide-agent.8 man8/vmtide-controller.8 man1/vmtide.1 man1/vmtide-sim.1; do
    f=/usr/share/man/$m.gz
    gzip -t "$f" || fail "$f is not a valid gzip file"
    if command -v man >/dev/null; then
        MANWIDTH=100 man -P cat -l "$f" >"$work/man.txt" 2>"$work/man.err" || { cat "$work/man.err"; fail "man -l $f"; }
        [[ -s $work/man.err ]] && { cat "$work/man.err"; fail "man -l $f warned"; }
    else
        zcat "$f" | groff -man -Tutf8 -ww -z || fail "groff $f"
        zcat "$f" | groff -man -Tutf8 >"$work/man.txt"
    fi
    grep -q '^OPTIONS' "$work/man.txt" || fail "$f has no OPTIONS"
done
MANWIDTH=100 man -P cat -l /usr/share/man/man8/vmtide-agent.8.gz | grep -q -- '--check-config' || fail "vmtide-agent(8) lacks --check-config"
MANWIDTH=100 man -P cat -l /usr/share/man/man1/vmtide.1.gz | grep -q -- 'vmtide explain' || fail "vmtide(1) lacks explain"

echo "== bash completion"
comp=/usr/share/bash-completion/completions/vmtide
[[ -f $comp ]] || fail "$comp is not installed"
# complete(1) knows vmtide, and `vmtide t<TAB>` offers tap and top.
out=$(bash --norc -c ". $comp; complete -p vmtide") || fail "sourcing $comp"
[[ $out == 'complete -F _vmtide vmtide' ]] || fail "complete -p vmtide: $out"
out=$(bash --norc -c ". $comp; COMP_WORDS=(vmtide t); COMP_CWORD=1; _vmtide; echo \"\${COMPREPLY[*]}\"")
[[ $out == "tap top" ]] || fail "vmtide t<TAB> offered '$out'"
out=$(bash --norc -c ". $comp; COMP_WORDS=(vmtide tap --kind d); COMP_CWORD=3; _vmtide; echo \"\${COMPREPLY[*]}\"")
[[ $out == "decision" ]] || fail "vmtide tap --kind d<TAB> offered '$out'"
# Each command's options in the completion are exactly those of its --help.
for cmd in "" tap top keygen plan explain predict; do
    want=$(/usr/bin/vmtide $cmd --help | grep -oE '^  (-[a-zA-Z],)?--[a-z-]+(,--[a-z-]+)*' | tr ',' '\n' | tr -d ' ' | sort)
    got=$(bash --norc -c ". $comp; _vmtide_options '$cmd'" | tr ' ' '\n' | sort)
    [[ $want == "$got" ]] || fail "completion of 'vmtide $cmd' options: $(diff <(echo "$want") <(echo "$got") | grep '^[<>]' | tr '\n' ' ')"
done
echo "completion matches every command's --help"

echo "== purge"
files=$(dpkg -L "${pkgs[@]}" | sort -u)
dpkg --purge "${pkgs[@]}" >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
for p in "${pkgs[@]}"; do
    dpkg -L "$p" >/dev/null 2>&1 && fail "dpkg still lists files of $p"
done
left=""
while read -r f; do
    [[ -d $f ]] && continue  # shared directories (/usr/bin, ...)
    [[ -e $f ]] && left+=" $f"
done <<<"$files"
[[ -z $left ]] || fail "left behind after purge:$left"
compgen -G '/usr/bin/vmtide*' && fail "/usr/bin/vmtide* left behind"
[[ -e /var/lib/vmtide ]] && fail "/var/lib/vmtide left behind"
[[ $had_etc -eq 0 && -e /etc/vmtide ]] && fail "/etc/vmtide left behind"
for u in "${units[@]}"; do [[ -e $u ]] && fail "$u left behind"; done
echo ok
