#!/bin/sh
# nanokube-uninstall.sh (nanokube-agent-uninstall.sh on agents): removes
# what install.sh installed and what nanokube created at run time: the
# service, its environment file, the binary and scripts, /etc/nanokube
# (configuration, admin kubeconfig), the data dir, the openrc log. Runs
# nanokube-killall.sh first for processes, mounts, links, rules, cgroups.
# When a server and an agent are both installed, the first uninstall removes
# only its own service; the last one removes the rest.
# The settings block is the same in the killall script; not all are used.
# shellcheck disable=SC2034
set -e

# install.sh settings: begin
BIN_DIR='/usr/local/bin'
DATA_DIR='/var/lib/nanokube'
INIT='systemd'
SERVICE_NAME='nanokube'
FILE_SERVICE='/etc/systemd/system/nanokube.service'
FILE_ENV='/etc/systemd/system/nanokube.service.env'
# install.sh settings: end

[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"

SELF=$(basename "$0")
trap 'rm -f "${BIN_DIR}/${SELF}"' EXIT

if [ -x "${BIN_DIR}/nanokube-killall.sh" ]; then
    "${BIN_DIR}/nanokube-killall.sh"
fi

case "$INIT" in
    systemd)
        if [ -f "$FILE_SERVICE" ]; then
            systemctl disable "$SERVICE_NAME" 2>/dev/null || true
            rm -f "$FILE_SERVICE" "$FILE_ENV"
            systemctl reset-failed "$SERVICE_NAME" 2>/dev/null || true
            systemctl daemon-reload
        fi
        ;;
    openrc)
        if [ -f "$FILE_SERVICE" ]; then
            rc-update delete "$SERVICE_NAME" default 2>/dev/null || true
            rm -f "$FILE_SERVICE" "$FILE_ENV"
        fi
        rm -f "/var/log/${SERVICE_NAME}.log" "/run/${SERVICE_NAME}.pid"
        ;;
esac

# The other flavour is still installed: it keeps the shared files.
for other in nanokube-uninstall.sh nanokube-agent-uninstall.sh; do
    if [ "$other" != "$SELF" ] && [ -f "${BIN_DIR}/${other}" ]; then
        echo "another nanokube service is installed (${BIN_DIR}/${other}): keeping the binary and data"
        exit 0
    fi
done

rm -f "${BIN_DIR}/nanokube" "${BIN_DIR}/nanokube-killall.sh"
rm -rf /etc/nanokube "${DATA_DIR}"
echo "nanokube is uninstalled"
