#!/bin/sh
# nanokube installer: one command to a running, supervised cluster.
#
#   From a checkout:   sudo ./install.sh
#   From a release:    curl -sfL https://github.com/nanokube/nanokube/releases/latest/download/install.sh | sudo sh -
#   Add an agent:      curl -sfL .../install.sh | sudo NANOKUBE_URL=https://server:6443 NANOKUBE_TOKEN=xxx sh -
#   Remove:            sudo nanokube-uninstall.sh   (nanokube-agent-uninstall.sh on agents)
#
# Arguments after the script (`sh -s - server --tls-san x`) are added to the
# service's command line, as INSTALL_NANOKUBE_EXEC is.
#
# Environment variables (the names mirror k3s's INSTALL_K3S_* / K3S_*):
#   INSTALL_NANOKUBE_BIN           a nanokube binary to install (a file path); no download
#   INSTALL_NANOKUBE_SKIP_DOWNLOAD true: use $BIN_DIR/nanokube as it is, or, run from a
#                                  checkout, target/release/nanokube (built with
#                                  `cargo build --release` when absent); the default
#                                  when run from a checkout without a VERSION or
#                                  RELEASE_URL (`sudo ./install.sh`)
#   INSTALL_NANOKUBE_VERSION       the release to download (default: the latest)
#   INSTALL_NANOKUBE_RELEASE_URL   where the release's files are (default
#                                  https://github.com/nanokube/nanokube/releases/download/$VERSION,
#                                  .../releases/latest/download without a version); the files:
#                                  nanokube (amd64), nanokube-arm64, nanokube-armhf,
#                                  sha256sum-<arch>.txt, and the service/script files of packaging/
#   INSTALL_NANOKUBE_ARCH          the architecture to install for (default: uname -m)
#   INSTALL_NANOKUBE_SKIP_DEPS     true: do not install containerd, runc, CNI plugins,
#                                  iptables, nftables, conntrack with the package manager
#   INSTALL_NANOKUBE_SKIP_ENABLE   true: do not enable the service at boot (implies SKIP_START)
#   INSTALL_NANOKUBE_SKIP_START    true: do not start or restart the service
#   INSTALL_NANOKUBE_FORCE_RESTART true: restart the service even when nothing changed
#   INSTALL_NANOKUBE_BIN_DIR       where nanokube and its scripts go (default /usr/local/bin)
#   INSTALL_NANOKUBE_SYSTEMD_DIR   where the systemd unit goes (default /etc/systemd/system)
#   INSTALL_NANOKUBE_EXEC          the command and flags of the service: `server ...` or
#                                  `agent ...`; flags alone go to the default command
#   NANOKUBE_URL                   a server to join: installs nanokube-agent instead of a server
#   NANOKUBE_TOKEN                 the join token (NANOKUBE_TOKEN_FILE: a file holding it); needed
#                                  with NANOKUBE_URL
#   NANOKUBE_DATA_DIR              nanokube's state (default /var/lib/nanokube)
# Every NANOKUBE_* variable is written to the service's environment file (mode 600).
set -e

GITHUB_URL=https://github.com/nanokube/nanokube/releases
CONFIG_DIR=/etc/nanokube
CONFIG_FILE=${CONFIG_DIR}/config.yaml

# --- helpers ---
# printf, not echo: dash's echo would expand backslashes in paths and flags.
info() { printf '[INFO]  %s\n' "$*"; }
warn() { printf '[WARN]  %s\n' "$*" >&2; }
fatal() {
    printf '[ERROR] %s\n' "$*" >&2
    exit 1
}

# sha256 of a file, empty when it does not exist.
file_sha() {
    if [ -f "$1" ]; then sha256sum "$1" | cut -d' ' -f1; fi
}

# Installs $1 as $2 with mode $3 unless identical; sets CHANGED. Returns 0
# when it wrote the file.
install_if_changed() {
    if [ -f "$2" ] && [ "$(file_sha "$1")" = "$(file_sha "$2")" ]; then
        chmod "$3" "$2"
        return 1
    fi
    # A copy next to the target, then a rename: a running binary is never
    # half-written.
    cp "$1" "$2.nanokube-new"
    chmod "$3" "$2.nanokube-new"
    mv -f "$2.nanokube-new" "$2"
    CHANGED=true
    return 0
}

is_true() { [ "$1" = true ]; }

# --- steps ---
verify_root() {
    [ "$(id -u)" -eq 0 ] || fatal "run as root: sudo $0 (nanokube installs a system service)"
}

setup_env() {
    BIN_DIR=${INSTALL_NANOKUBE_BIN_DIR:-/usr/local/bin}
    SYSTEMD_DIR=${INSTALL_NANOKUBE_SYSTEMD_DIR:-/etc/systemd/system}
    DATA_DIR=${NANOKUBE_DATA_DIR:-/var/lib/nanokube}
    CHANGED=false
    UNIT_CHANGED=false

    # The command: the first word of INSTALL_NANOKUBE_EXEC (or of the
    # arguments) when it is one, else agent with NANOKUBE_URL, else server.
    # Splitting INSTALL_NANOKUBE_EXEC on blanks is intended (as k3s).
    # No globbing of the words.
    set -f
    # shellcheck disable=SC2086
    set -- ${INSTALL_NANOKUBE_EXEC} "$@"
    set +f
    case "$1" in
        server | agent)
            CMD_NANOKUBE=$1
            shift
            ;;
        -* | '')
            if [ -n "${NANOKUBE_URL}" ]; then CMD_NANOKUBE=agent; else CMD_NANOKUBE=server; fi
            ;;
        *) fatal "unknown command '$1' in INSTALL_NANOKUBE_EXEC or the arguments: use server or agent" ;;
    esac
    EXEC_ARGS=""
    prev=""
    for arg in "$@"; do
        EXEC_ARGS="${EXEC_ARGS}${arg}
"
        # The scripts clean up the data dir the service uses.
        case "$prev:$arg" in
            --data-dir:* | -d:*) DATA_DIR=$arg ;;
            *:--data-dir=*) DATA_DIR=${arg#--data-dir=} ;;
        esac
        prev=$arg
    done
    case "$DATA_DIR" in /*) ;; *) fatal "the data dir must be an absolute path, got '$DATA_DIR'" ;; esac
    if [ "$CMD_NANOKUBE" = agent ]; then
        [ -n "${NANOKUBE_URL}" ] || fatal "an agent needs NANOKUBE_URL (the server to join, https://host:6443)"
        if [ -z "${NANOKUBE_TOKEN}" ] && [ -z "${NANOKUBE_TOKEN_FILE}" ]; then
            fatal "NANOKUBE_URL is set: the agent needs NANOKUBE_TOKEN or NANOKUBE_TOKEN_FILE (on the server: cat ${DATA_DIR}/server/token)"
        fi
        case "${NANOKUBE_URL}" in https://*) ;; *) fatal "NANOKUBE_URL must start with https://, got '${NANOKUBE_URL}'" ;; esac
        SERVICE_NAME=nanokube-agent
        UNINSTALL_NAME=nanokube-agent-uninstall.sh
    else
        SERVICE_NAME=nanokube
        UNINSTALL_NAME=nanokube-uninstall.sh
    fi

    # Run from a checkout: packaging/ sits next to the script.
    SOURCE_DIR=""
    if [ -f "$0" ]; then
        dir=$(cd "$(dirname "$0")" && pwd)
        if [ -f "$dir/packaging/killall.sh" ]; then SOURCE_DIR=$dir; fi
    fi

    if [ -n "$SOURCE_DIR" ] && [ -z "${INSTALL_NANOKUBE_SKIP_DOWNLOAD}" ] &&
        [ -z "${INSTALL_NANOKUBE_VERSION}" ] && [ -z "${INSTALL_NANOKUBE_RELEASE_URL}" ]; then
        INSTALL_NANOKUBE_SKIP_DOWNLOAD=true
    fi

    TMP_DIR=$(mktemp -d -t nanokube-install.XXXXXXXX)
    trap 'rm -rf "$TMP_DIR"' EXIT
}

detect_arch() {
    machine=${INSTALL_NANOKUBE_ARCH:-$(uname -m)}
    case "$machine" in
        x86_64 | amd64)
            ARCH=amd64
            ASSET=nanokube
            ;;
        aarch64 | arm64)
            ARCH=arm64
            ASSET=nanokube-arm64
            ;;
        armv7l | armv7 | armhf)
            ARCH=armhf
            ASSET=nanokube-armhf
            ;;
        *) fatal "unsupported architecture '$machine': nanokube is built for x86_64, aarch64 and armv7l" ;;
    esac
}

detect_init() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        INIT=systemd
        FILE_SERVICE=${SYSTEMD_DIR}/${SERVICE_NAME}.service
        FILE_ENV=${FILE_SERVICE}.env
    elif command -v openrc-run >/dev/null 2>&1 && command -v rc-update >/dev/null 2>&1; then
        INIT=openrc
        FILE_SERVICE=/etc/init.d/${SERVICE_NAME}
        FILE_ENV=${CONFIG_DIR}/${SERVICE_NAME}.env
    else
        INIT=none
    fi
    info "architecture ${ARCH}, init system ${INIT}, service ${SERVICE_NAME}"
}

downloader() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL -o "$2" "$1" || fatal "download of $1 failed"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || fatal "download of $1 failed"
    else
        fatal "neither curl nor wget is installed: install one, or use INSTALL_NANOKUBE_BIN=<file>"
    fi
}

release_url() {
    if [ -n "${INSTALL_NANOKUBE_RELEASE_URL}" ]; then
        RELEASE_URL=${INSTALL_NANOKUBE_RELEASE_URL%/}
    elif [ -n "${INSTALL_NANOKUBE_VERSION}" ]; then
        RELEASE_URL=${GITHUB_URL}/download/${INSTALL_NANOKUBE_VERSION}
    else
        RELEASE_URL=${GITHUB_URL}/latest/download
    fi
}

# The checksum file, fetched once.
fetch_checksums() {
    if [ ! -f "$TMP_DIR/sha256sum.txt" ]; then
        info "downloading ${RELEASE_URL}/sha256sum-${ARCH}.txt"
        downloader "${RELEASE_URL}/sha256sum-${ARCH}.txt" "$TMP_DIR/sha256sum.txt"
    fi
}

# Expected hash of release file $1 ('' when the checksum file lists none).
expected_sha() {
    awk -v f="$1" '{ n = $2; sub(/^\*/, "", n); if (n == f) { print $1; exit } }' "$TMP_DIR/sha256sum.txt"
}

# Downloads release file $1 to $2; with $3 = required the checksum must be listed.
download_verified() {
    info "downloading ${RELEASE_URL}/$1"
    downloader "${RELEASE_URL}/$1" "$2"
    want=$(expected_sha "$1")
    if [ -z "$want" ]; then
        [ "$3" != required ] || fatal "sha256sum-${ARCH}.txt does not list $1"
        warn "sha256sum-${ARCH}.txt does not list $1: not verified"
        return
    fi
    got=$(file_sha "$2")
    [ "$want" = "$got" ] || fatal "checksum mismatch for $1: expected $want, downloaded $got"
}

# Sets BIN_SOURCE to the file to install as $BIN_DIR/nanokube.
get_binary() {
    if [ -n "${INSTALL_NANOKUBE_BIN}" ]; then
        [ -f "${INSTALL_NANOKUBE_BIN}" ] || fatal "INSTALL_NANOKUBE_BIN=${INSTALL_NANOKUBE_BIN} is not a file"
        BIN_SOURCE=${INSTALL_NANOKUBE_BIN}
    elif is_true "${INSTALL_NANOKUBE_SKIP_DOWNLOAD}"; then
        if [ -n "$SOURCE_DIR" ]; then
            BIN_SOURCE=$SOURCE_DIR/target/release/nanokube
            [ -x "$BIN_SOURCE" ] || build_from_checkout
            info "run from a checkout: installing $BIN_SOURCE"
        elif [ -x "${BIN_DIR}/nanokube" ]; then
            BIN_SOURCE=${BIN_DIR}/nanokube
        else
            fatal "INSTALL_NANOKUBE_SKIP_DOWNLOAD=true but ${BIN_DIR}/nanokube does not exist: put the binary there or set INSTALL_NANOKUBE_BIN"
        fi
    else
        fetch_checksums
        download_verified "$ASSET" "$TMP_DIR/nanokube" required
        chmod 755 "$TMP_DIR/nanokube"
        BIN_SOURCE=$TMP_DIR/nanokube
    fi
    "$BIN_SOURCE" --version >/dev/null 2>&1 || fatal "$BIN_SOURCE does not run on this machine (${ARCH})"
}

# `sudo ./install.sh` from a checkout without a release build: build it as
# the user who called sudo (cargo and its caches are theirs).
build_from_checkout() {
    info "building nanokube in ${SOURCE_DIR} (cargo build --release)"
    if [ -n "${SUDO_USER}" ] && [ "${SUDO_USER}" != root ]; then
        su - "${SUDO_USER}" -c "cd '${SOURCE_DIR}' && cargo build --release --locked --bin nanokube" ||
            fatal "cargo build --release failed (run it yourself in ${SOURCE_DIR}, then this script again)"
    else
        # shellcheck disable=SC1091
        if [ -f "${HOME}/.cargo/env" ]; then . "${HOME}/.cargo/env"; fi
        command -v cargo >/dev/null 2>&1 ||
            fatal "cargo is not installed: install Rust (https://rustup.rs) and run 'cargo build --release' in ${SOURCE_DIR}, or set INSTALL_NANOKUBE_BIN"
        (cd "$SOURCE_DIR" && cargo build --release --locked --bin nanokube) || fatal "cargo build --release failed"
    fi
    [ -x "$BIN_SOURCE" ] || fatal "the build did not produce $BIN_SOURCE"
}

install_binary() {
    mkdir -p "$BIN_DIR"
    if [ "$BIN_SOURCE" = "${BIN_DIR}/nanokube" ]; then
        info "using ${BIN_DIR}/nanokube as it is"
        return
    fi
    if install_if_changed "$BIN_SOURCE" "${BIN_DIR}/nanokube" 755; then
        info "installed ${BIN_DIR}/nanokube"
    else
        info "${BIN_DIR}/nanokube is up to date"
    fi
}

# A file of packaging/: from the checkout, else from the release.
packaging_file() {
    if [ -n "$SOURCE_DIR" ]; then
        cp "$SOURCE_DIR/packaging/$1" "$2"
    else
        fetch_checksums
        download_verified "$1" "$2" optional
    fi
}

# Missing runtime dependencies, installed with the system's package manager.
install_deps() {
    if is_true "${INSTALL_NANOKUBE_SKIP_DEPS}"; then
        info "skipping dependencies (INSTALL_NANOKUBE_SKIP_DEPS=true)"
        return
    fi
    if command -v apt-get >/dev/null 2>&1; then
        PM=apt
    elif command -v dnf >/dev/null 2>&1; then
        PM=dnf
    elif command -v yum >/dev/null 2>&1; then
        PM=yum
    elif command -v apk >/dev/null 2>&1; then
        PM=apk
    elif command -v pacman >/dev/null 2>&1; then
        PM=pacman
    elif command -v zypper >/dev/null 2>&1; then
        PM=zypper
    else
        PM=none
    fi
    missing=""
    # containerd, runc, CNI plugins, iptables, nftables, conntrack: the
    # package name per manager.
    for dep in containerd runc cni iptables nft conntrack; do
        case "$dep" in
            cni)
                found=false
                for d in /usr/lib/cni /opt/cni/bin /usr/libexec/cni; do
                    if [ -x "$d/bridge" ]; then found=true; fi
                done
                ;;
            *) if command -v "$dep" >/dev/null 2>&1; then found=true; else found=false; fi ;;
        esac
        "$found" && continue
        case "$PM:$dep" in
            apt:cni) pkg=containernetworking-plugins ;;
            dnf:cni | yum:cni) pkg=containernetworking-plugins ;;
            *:cni) pkg=cni-plugins ;;
            *:nft) pkg=nftables ;;
            apt:conntrack) pkg=conntrack ;;
            *:conntrack) pkg=conntrack-tools ;;
            *) pkg=$dep ;;
        esac
        missing="$missing $pkg"
    done
    # From a checkout on Debian/Ubuntu: what building and the tests need too.
    if [ -n "$SOURCE_DIR" ] && [ "$PM" = apt ]; then
        for pkg in protobuf-compiler libprotobuf-dev build-essential pkg-config ca-certificates etcd-client \
            etcd-server iproute2 busybox-static shellcheck python3; do
            dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
        done
    fi
    if [ -z "$missing" ]; then
        info "dependencies present (containerd, runc, CNI plugins, iptables, nftables, conntrack)"
        return
    fi
    info "installing${missing} with ${PM}"
    # Package names are single words: splitting $missing is intended.
    # shellcheck disable=SC2086
    case "$PM" in
        apt) apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing ;;
        dnf) dnf install -y $missing ;;
        yum) yum install -y $missing ;;
        apk) apk add --no-cache $missing ;;
        pacman) pacman -S --noconfirm --needed $missing ;;
        zypper) zypper --non-interactive install $missing ;;
        none) fatal "no supported package manager (apt, dnf, yum, apk, pacman, zypper): install${missing} yourself, then run this again with INSTALL_NANOKUBE_SKIP_DEPS=true" ;;
    esac || fatal "installing${missing} with ${PM} failed"
}

# /etc/nanokube/config.yaml, only when absent: the user's file is theirs.
write_config() {
    if [ -e "$CONFIG_FILE" ]; then
        info "$CONFIG_FILE exists: left as it is"
        return
    fi
    mkdir -p "$CONFIG_DIR"
    cni_line=""
    if [ ! -x /usr/lib/cni/bridge ] && [ ! -x /opt/cni/bin/bridge ] && [ -x /usr/libexec/cni/bridge ]; then
        cni_line="cni-bin-dir: /usr/libexec/cni"
    fi
    cat >"$TMP_DIR/config.yaml" <<EOF
# nanokube configuration: keys are the long flag names of \`nanokube ${CMD_NANOKUBE} --help\`;
# flags on the command line win. Drop-ins: ${CONFIG_DIR}/config.yaml.d/*.yaml.
# Examples:
#   write-kubeconfig-mode: "644"
#   tls-san:
#     - my.host.example
#   node-label:
#     - role=edge
${cni_line}
EOF
    install_if_changed "$TMP_DIR/config.yaml" "$CONFIG_FILE" 600 || true
    info "wrote $CONFIG_FILE"
}

# NANOKUBE_* variables of this environment, for the service (mode 600:
# it may hold the token).
write_env_file() {
    [ "$INIT" != none ] || return 0
    mkdir -p "$(dirname "$FILE_ENV")"
    env | grep -E '^NANOKUBE_[A-Z0-9_]*=' | LC_ALL=C sort | while IFS= read -r line; do
        name=${line%%=*}
        value=${line#*=}
        printf '%s="%s"\n' "$name" "$(dq_escape "$value")"
    done >"$TMP_DIR/service.env"
    if install_if_changed "$TMP_DIR/service.env" "$FILE_ENV" 600; then
        UNIT_CHANGED=true
        info "wrote $FILE_ENV"
    fi
}

# The extra arguments quoted for systemd's ExecStart (double quotes; $ and %
# doubled) or for a shell (single quotes).
quoted_args() {
    printf '%s' "$EXEC_ARGS" | while IFS= read -r arg; do
        if [ "$1" = systemd ]; then
            q=$(printf '%s' "$arg" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g' -e 's/%/%%/g')
            printf ' "%s"' "$q"
        else
            q=$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")
            printf " '%s'" "$q"
        fi
    done
}

# $1 made safe inside a double-quoted sh string.
dq_escape() {
    # Literal $ and ` are what gets escaped.
    # shellcheck disable=SC2016
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/\\$/g' -e 's/`/\\`/g'
}

write_service() {
    [ "$INIT" != none ] || return 0
    mkdir -p "$(dirname "$FILE_SERVICE")"
    if [ "$INIT" = systemd ]; then
        packaging_file "${SERVICE_NAME}.service" "$TMP_DIR/template"
        NK_EXEC="ExecStart=${BIN_DIR}/nanokube ${CMD_NANOKUBE}$(quoted_args systemd)"
        NK_ENV="EnvironmentFile=-${FILE_ENV}"
        export NK_EXEC NK_ENV
        awk '/^ExecStart=/ { print ENVIRON["NK_EXEC"]; next }
             /^EnvironmentFile=/ { print ENVIRON["NK_ENV"]; next }
             { print }' "$TMP_DIR/template" >"$TMP_DIR/service"
        mode=644
    else
        packaging_file "${SERVICE_NAME}.openrc" "$TMP_DIR/template"
        NK_COMMAND=$(printf 'command="%s"' "${BIN_DIR}/nanokube")
        NK_ARGS=$(printf 'command_args="%s"' "$(dq_escape "${CMD_NANOKUBE}$(quoted_args shell)")")
        NK_ENV=$(printf 'env_file="%s"' "${FILE_ENV}")
        export NK_COMMAND NK_ARGS NK_ENV
        awk '/^command=/ { print ENVIRON["NK_COMMAND"]; next }
             /^command_args=/ { print ENVIRON["NK_ARGS"]; next }
             /^env_file=/ { print ENVIRON["NK_ENV"]; next }
             { print }' "$TMP_DIR/template" >"$TMP_DIR/service"
        mode=755
    fi
    if install_if_changed "$TMP_DIR/service" "$FILE_SERVICE" "$mode"; then
        UNIT_CHANGED=true
        info "wrote $FILE_SERVICE"
    else
        info "$FILE_SERVICE is up to date"
    fi
}

# killall and uninstall scripts with this installation's settings filled in
# between the `# install.sh settings` markers.
write_scripts() {
    cat >"$TMP_DIR/settings" <<EOF
BIN_DIR='${BIN_DIR}'
DATA_DIR='${DATA_DIR}'
INIT='${INIT}'
SERVICE_NAME='${SERVICE_NAME}'
FILE_SERVICE='${FILE_SERVICE:-}'
FILE_ENV='${FILE_ENV:-}'
EOF
    for pair in killall.sh:nanokube-killall.sh "uninstall.sh:${UNINSTALL_NAME}"; do
        packaging_file "${pair%%:*}" "$TMP_DIR/script"
        awk -v settings="$TMP_DIR/settings" '
            /^# install.sh settings: begin/ { print; while ((getline l < settings) > 0) print l; skip = 1; next }
            /^# install.sh settings: end/ { skip = 0 }
            !skip { print }' "$TMP_DIR/script" >"$TMP_DIR/script.filled"
        if install_if_changed "$TMP_DIR/script.filled" "${BIN_DIR}/${pair#*:}" 755; then
            info "wrote ${BIN_DIR}/${pair#*:}"
        fi
    done
}

check_kubectl() {
    # No kubectl symlink to nanokube (k3s makes one): `nanokube kubectl`
    # runs the kubectl found on PATH, it does not contain one.
    if ! command -v kubectl >/dev/null 2>&1; then
        info "kubectl is not installed: install it (https://kubernetes.io/docs/tasks/tools/), then 'nanokube kubectl get nodes' uses the admin kubeconfig"
    fi
}

start_service() {
    case "$INIT" in
        none)
            info "no supported init system found (systemd: /run/systemd/system and systemctl; openrc: openrc-run and rc-update)"
            if [ "$CMD_NANOKUBE" = agent ]; then
                info "start nanokube by hand: sudo ${BIN_DIR}/nanokube agent --server '${NANOKUBE_URL}' --token <token>$(quoted_args shell)"
            else
                info "start nanokube by hand: sudo ${BIN_DIR}/nanokube server$(quoted_args shell)"
            fi
            info "installed: ${BIN_DIR}/nanokube, ${BIN_DIR}/nanokube-killall.sh, ${BIN_DIR}/${UNINSTALL_NAME}"
            return
            ;;
        systemd)
            if is_true "$UNIT_CHANGED"; then systemctl daemon-reload; fi
            if is_true "${INSTALL_NANOKUBE_SKIP_ENABLE}"; then
                info "not enabling ${SERVICE_NAME} (INSTALL_NANOKUBE_SKIP_ENABLE=true)"
                return
            fi
            systemctl is-enabled --quiet "$SERVICE_NAME" 2>/dev/null || systemctl enable "$SERVICE_NAME"
            ;;
        openrc)
            if is_true "${INSTALL_NANOKUBE_SKIP_ENABLE}"; then
                info "not enabling ${SERVICE_NAME} (INSTALL_NANOKUBE_SKIP_ENABLE=true)"
                return
            fi
            rc-update show default 2>/dev/null | awk -v s="$SERVICE_NAME" '$1 == s { f = 1 } END { exit !f }' ||
                rc-update add "$SERVICE_NAME" default
            ;;
    esac
    if is_true "${INSTALL_NANOKUBE_SKIP_START}"; then
        info "not starting ${SERVICE_NAME} (INSTALL_NANOKUBE_SKIP_START=true)"
        return
    fi
    if is_true "$CHANGED" || is_true "${INSTALL_NANOKUBE_FORCE_RESTART}"; then
        info "(re)starting ${SERVICE_NAME}"
        if [ "$INIT" = systemd ]; then systemctl restart "$SERVICE_NAME"; else rc-service "$SERVICE_NAME" restart; fi
    elif [ "$INIT" = systemd ]; then
        systemctl is-active --quiet "$SERVICE_NAME" || systemctl start "$SERVICE_NAME"
        info "nothing changed: ${SERVICE_NAME} left running"
    else
        rc-service "$SERVICE_NAME" status >/dev/null 2>&1 || rc-service "$SERVICE_NAME" start
        info "nothing changed: ${SERVICE_NAME} left running"
    fi
}

# --- run ---
{
    verify_root
    setup_env "$@"
    detect_arch
    detect_init
    release_url
    install_deps
    get_binary
    install_binary
    write_config
    write_env_file
    write_service
    write_scripts
    check_kubectl
    start_service
}
