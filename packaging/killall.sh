#!/bin/sh
# The settings block is the same in the uninstall script; not all are used.
# shellcheck disable=SC2034
# nanokube-killall.sh: stops nanokube and everything it runs, and removes
# what it set up at run time on this machine: its containerd and shims, the
# pods' processes and cgroups, mounts under the data dir, the CNI bridge and
# its veths, the VXLAN and DNS links, its nftables tables and iptables
# chains. State on disk stays (nanokube-uninstall.sh removes that).
#
# Only this installation's objects are touched: the names carry the node's
# instance id (the first 8 hex digits of sha256 of "<data-dir>/agent", as
# nanokube computes it), so other nanokube nodes on the machine are left
# alone.
set -e

# install.sh settings: begin
BIN_DIR='/usr/local/bin'
DATA_DIR='/var/lib/nanokube'
INIT='systemd'
SERVICE_NAME='nanokube'
FILE_SERVICE=''
FILE_ENV=''
# install.sh settings: end

[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"

# --- the services ---
case "$INIT" in
    systemd)
        for unit in "$(dirname "${FILE_SERVICE:-/etc/systemd/system/x}")"/nanokube*.service; do
            [ -f "$unit" ] || continue
            name=$(basename "$unit" .service)
            systemctl stop "$name" 2>/dev/null || true
        done
        ;;
    openrc)
        for script in /etc/init.d/nanokube*; do
            [ -f "$script" ] || continue
            rc-service "$(basename "$script")" stop 2>/dev/null || true
        done
        ;;
esac

# As nanokube: the canonical path, or the path itself while it does not exist.
AGENT_DIR=$(realpath "${DATA_DIR}/agent" 2>/dev/null) || AGENT_DIR=${DATA_DIR}/agent
ID=$(printf '%s' "$AGENT_DIR" | sha256sum | cut -c1-8)

# --- processes ---
# nanokube itself, and its containerd and shims (their command lines name
# the agent's containerd directory).
own_pids() {
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" != "$$" ] || continue
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        if [ "$exe" = "${BIN_DIR}/nanokube" ]; then
            echo "$pid"
            continue
        fi
        if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "${AGENT_DIR}/containerd/"; then
            echo "$pid"
        fi
    done
}

# The pods' processes: everything in the node's cgroups.
cgroup_dirs() {
    for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$root/nanokube-${ID}" ] && echo "$root/nanokube-${ID}"
    done
    return 0
}

cgroup_pids() {
    cgroup_dirs | while read -r d; do
        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
}

# A shim's socket and its sandbox's CNI result cache, which a killed shim
# leaves behind: containerd names the socket /run/containerd/s/<sha256 of
# "<address>/<namespace>/<id>">, libcni the cache <network>-<id>-<ifname>.
shim_leftovers() {
    tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | awk '
        prev == "-namespace" { ns = $0 } prev == "-id" { id = $0 } prev == "-address" { a = $0 }
        { prev = $0 }
        END { if (ns != "" && id != "" && a != "") print a "/" ns "/" id; print id }' | {
        read -r key || return 0
        read -r id || return 0
        echo "/run/containerd/s/$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)"
        # Sandbox ids are 64 hex digits: never a pattern matching others.
        case "$id" in *[!0-9a-f]*) return 0 ;; esac
        [ "${#id}" -eq 64 ] || return 0
        for f in /var/lib/cni/results/*-"$id"-*; do
            [ -e "$f" ] && echo "$f"
        done
        return 0
    }
}

kill_all() {
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        pids=$( (own_pids; cgroup_pids) | sort -u)
        [ -n "$pids" ] || return 0
        for pid in $pids; do shim_leftovers "$pid"; done >>"$LEFT"
        if [ "$attempt" -lt 4 ]; then sig=TERM; else sig=KILL; fi
        # One pid per word: splitting is intended.
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null || true
        sleep 1
    done
    echo "nanokube-killall.sh: processes still running: $pids" >&2
}
LEFT=$(mktemp)
trap 'rm -f "$LEFT"' EXIT
kill_all
sort -u "$LEFT" | while read -r f; do
    rm -f "$f"
done

# --- mounts under the data dir (volumes, netns, snapshots), deepest first ---
if [ -r /proc/self/mounts ]; then
    awk -v d="${DATA_DIR}/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
fi

# --- cgroups, deepest first ---
cgroup_dirs | while read -r d; do
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# --- links: the CNI bridge's veths, the bridge, VXLAN, DNS ---
if command -v ip >/dev/null 2>&1; then
    if ip link show "nk${ID}" >/dev/null 2>&1; then
        ip -o link show master "nk${ID}" 2>/dev/null | awk -F': ' '{ split($2, n, "@"); print n[1] }' |
            while read -r veth; do
                ip link delete "$veth" 2>/dev/null || true
            done
    fi
    for link in "nk${ID}" "nk${ID}.1" "nkd${ID}"; do
        if ip link show "$link" >/dev/null 2>&1; then ip link delete "$link" || true; fi
    done
fi

# --- service proxy and masquerading rules ---
if command -v nft >/dev/null 2>&1; then
    for table in "nk${ID}" "nkn${ID}"; do
        if nft list table ip "$table" >/dev/null 2>&1; then nft delete table ip "$table" || true; fi
    done
fi
# iptables: the proxy's NK<id>-* chains, the CNI plugins' rules (their
# comments name the network nanokube-<id>), and the user chains reached only
# from those (a host port's CNI-DN-* chain). Deleted with --noflush: rules
# others add meanwhile stay.
iptables_cleanup() {
    iptables-save -t "$1" 2>/dev/null | awk -v t="$1" -v a="NK${ID}-" -v b="nanokube-${ID}" '
        /^:/ { split(substr($0, 2), w, " "); if (w[2] == "-") user[w[1]] = 1; next }
        /^-A / {
            n++; line[n] = $0; chain[n] = $2; target[n] = ""
            for (i = 3; i < NF; i++) if ($i == "-j" || $i == "-g") target[n] = $(i + 1)
            mine[n] = index($0, a) || index($0, b)
            if (target[n] != "") refs[target[n]] = refs[target[n]] " " n
        }
        # Membership tests only ("x in doomed"): reading doomed[x] would
        # create x, and only user chains may ever be flushed.
        END {
            for (c in user) if (index(c, a) == 1) doomed[c] = 1
            do {
                grew = 0
                for (c in user) {
                    if ((c in doomed) || !(c in refs)) continue
                    k = split(refs[c], r, " "); all = 1; some = 0
                    for (j = 1; j <= k; j++) {
                        if (mine[r[j]]) some = 1
                        else if (!(chain[r[j]] in doomed)) all = 0
                    }
                    if (all && some) { doomed[c] = 1; grew = 1 }
                }
            } while (grew)
            out = ""
            for (i = 1; i <= n; i++)
                if (!(chain[i] in doomed) && (mine[i] || (target[i] in doomed))) out = out "-D" substr(line[i], 3) "\n"
            for (c in doomed) out = out "-F " c "\n"
            for (c in doomed) out = out "-X " c "\n"
            if (out != "") printf "*%s\n%sCOMMIT\n", t, out
        }' >"$LEFT"
    if [ -s "$LEFT" ]; then
        iptables-restore --noflush <"$LEFT" || echo "nanokube-killall.sh: could not remove the $1 rules: $(cat "$LEFT")" >&2
    fi
}
if command -v iptables-save >/dev/null 2>&1; then
    for table in filter nat mangle raw; do iptables_cleanup "$table"; done
fi

# --- CNI state outside the data dir ---
rm -rf "/var/lib/cni/networks/nanokube-${ID}"
for f in /var/lib/cni/results/nanokube-"${ID}"-*; do
    [ -e "$f" ] && rm -f "$f"
done
exit 0
