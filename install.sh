#!/bin/sh
# nanokube installer (from a source checkout).
#
# Builds nanokube, installs it and starts `nanokube server`.
# The full one-line installer (release downloads with checksums, agents,
# openrc, uninstall scripts) arrives with the install/packaging issue; this
# script is the from-source path and stays valid after it.
#
# Variables:
#   INSTALL_NANOKUBE_BIN_DIR     where the binary goes (default /usr/local/bin)
#   INSTALL_NANOKUBE_SKIP_DEPS   "true": do not install packages
#   INSTALL_NANOKUBE_SKIP_START  "true": install only, do not start
#   INSTALL_NANOKUBE_EXEC        extra flags for `nanokube server`
set -eu

BIN_DIR=${INSTALL_NANOKUBE_BIN_DIR:-/usr/local/bin}
SKIP_DEPS=${INSTALL_NANOKUBE_SKIP_DEPS:-false}
SKIP_START=${INSTALL_NANOKUBE_SKIP_START:-false}
EXEC_FLAGS=${INSTALL_NANOKUBE_EXEC:-}
SRC_DIR=$(cd "$(dirname "$0")" && pwd)

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || fatal "run as root (sudo $0)"
}

# Build and runtime packages, plus the test tools when run from a checkout.
install_deps() {
    [ "$SKIP_DEPS" = "true" ] && return 0
    command -v apt-get >/dev/null 2>&1 || {
        warn "no apt-get: install protoc, gcc, pkg-config, etcd-client yourself"
        return 0
    }
    missing=""
    for pkg in protobuf-compiler build-essential pkg-config ca-certificates etcd-client etcd-server \
        containerd runc containernetworking-plugins iptables nftables conntrack iproute2 busybox-static; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        info "installing packages:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
}

find_cargo() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    command -v cargo >/dev/null 2>&1 ||
        fatal "cargo not found: install Rust (https://rustup.rs), then run $0 again"
}

build() {
    info "building nanokube (release)"
    (cd "$SRC_DIR" && cargo build --release --locked --bin nanokube)
    install -d "$BIN_DIR"
    install -m 0755 "$SRC_DIR/target/release/nanokube" "$BIN_DIR/nanokube"
    info "installed $BIN_DIR/nanokube ($("$BIN_DIR/nanokube" version))"
}

start() {
    [ "$SKIP_START" = "true" ] && return 0
    if [ -d /run/systemd/system ]; then
        sed "s|/usr/local/bin/nanokube server|$BIN_DIR/nanokube server $EXEC_FLAGS|" \
            "$SRC_DIR/packaging/nanokube.service" >/etc/systemd/system/nanokube.service
        systemctl daemon-reload
        systemctl enable --now nanokube.service
        info "nanokube.service started (journalctl -u nanokube -f)"
    else
        mkdir -p /var/log
        # shellcheck disable=SC2086
        nohup "$BIN_DIR/nanokube" server $EXEC_FLAGS >>/var/log/nanokube.log 2>&1 &
        info "no systemd: started nanokube server in the background (pid $!, log /var/log/nanokube.log)"
    fi
    info "etcd API: ETCDCTL_API=3 etcdctl --endpoints=unix:///var/lib/nanokube/server/etcd.sock get / --prefix"
}

{
    need_root
    install_deps
    find_cargo
    build
    start
}
