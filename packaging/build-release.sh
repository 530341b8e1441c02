#!/usr/bin/env bash
# Builds the fully static release binaries into dist/, named as k3s names
# its artefacts (install.sh downloads exactly these names):
#
#   amd64  x86_64-unknown-linux-musl         dist/nanokube        dist/sha256sum-amd64.txt
#   arm64  aarch64-unknown-linux-musl        dist/nanokube-arm64  dist/sha256sum-arm64.txt
#   armhf  armv7-unknown-linux-musleabihf    dist/nanokube-armhf  dist/sha256sum-armhf.txt
#
# Usage: packaging/build-release.sh [--smoke] [amd64|arm64|armhf ...]
#   (no architecture: all three, in that order)
#   --smoke  also put the static amd64 binary through a smoke part of the
#            test suite (NANOKUBE_TEST_BIN=dist/nanokube cargo test ...)
#
# Each binary is checked: static (no ELF interpreter, no NEEDED libraries),
# at most 48 MiB, and it starts (`--version`, `check-config`): natively for
# amd64, under qemu-user for arm64/armhf when qemu-aarch64/qemu-arm exist.
#
# C code (bundled SQLite, ring, zstd) is cross-compiled with zig through
# cargo-zigbuild, which carries musl headers for every target; both come as
# Python wheels. Missing prerequisites are installed (pip, rustup) unless
# NANOKUBE_NO_INSTALL=true. When rustup has no prebuilt standard library for
# a target (armv7 musl is missing from some mirrors), the script builds it
# from source with the nightly toolchain's rust-src (-Zbuild-std).
#
# Variables:
#   DIST_DIR             output folder (default: <repo>/dist)
#   CARGO_TARGET_DIR     build folder (default: <repo>/target/dist, apart from
#                        the usual target dirs so their builds are not locked)
#   NANOKUBE_MAX_BYTES   size limit (default: 50331648 = 48 MiB)
#   NANOKUBE_NO_INSTALL  true: never install prerequisites, fail instead
#   NANOKUBE_NO_QEMU     true: skip the qemu-user start checks
#   SMOKE_TESTS          cargo test arguments for --smoke (default: --test api server)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIST_DIR=${DIST_DIR:-$ROOT/dist}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/dist}
MAX_BYTES=${NANOKUBE_MAX_BYTES:-50331648}
NO_INSTALL=${NANOKUBE_NO_INSTALL:-false}
NO_QEMU=${NANOKUBE_NO_QEMU:-false}
SMOKE_TESTS=${SMOKE_TESTS:---test api server}
PROFILE=dist

info() { printf '[INFO]  %s\n' "$*"; }
warn() { printf '[WARN]  %s\n' "$*" >&2; }
fatal() {
    printf '[ERROR] %s\n' "$*" >&2
    exit 1
}

# arch -> Rust target, artefact name, qemu-user binary
target_of() {
    case $1 in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    armhf) echo armv7-unknown-linux-musleabihf ;;
    *) fatal "unknown architecture '$1' (amd64, arm64 or armhf)" ;;
    esac
}
artefact_of() {
    case $1 in
    amd64) echo nanokube ;;
    *) echo "nanokube-$1" ;;
    esac
}
qemu_of() {
    case $1 in
    arm64) echo qemu-aarch64 ;;
    armhf) echo qemu-arm ;;
    *) echo "" ;;
    esac
}

install_or_fail() {
    # $1: what is missing, $2...: the command that installs it
    local what=$1
    shift
    if [ "$NO_INSTALL" = true ]; then
        fatal "$what is missing; install it with: $*"
    fi
    info "$what is missing; installing: $*"
    "$@" || fatal "could not install $what ($*)"
}

need_tools() {
    command -v cargo >/dev/null || fatal "cargo is missing: install Rust with rustup (https://rustup.rs)"
    command -v rustup >/dev/null || fatal "rustup is missing: the musl standard libraries come from rustup"
    command -v readelf >/dev/null || install_or_fail "readelf (binutils)" apt-get install -y binutils
    command -v sha256sum >/dev/null || fatal "sha256sum (coreutils) is missing"
    if ! command -v cargo-zigbuild >/dev/null; then
        command -v pip3 >/dev/null || fatal "cargo-zigbuild and pip3 are missing: install python3-pip, then pip3 install ziglang cargo-zigbuild"
        install_or_fail "cargo-zigbuild and zig" pip3 install ziglang cargo-zigbuild
    fi
    # cargo-zigbuild uses `zig` from PATH, else the ziglang Python package.
    if ! command -v zig >/dev/null && ! python3 -c 'import ziglang' 2>/dev/null; then
        install_or_fail "zig" pip3 install ziglang
    fi
}

# Prints "" when rustup has the target's standard library, "nightly" when it
# must be built from source with that toolchain.
toolchain_for() {
    local target=$1
    if rustup target list --installed | grep -qx "$target"; then
        return 0
    fi
    if [ "$NO_INSTALL" != true ] && rustup target add "$target" >/dev/null 2>&1; then
        return 0
    fi
    # Without rust-std the standard library is built from source (nightly
    # -Zbuild-std) and zig links musl's own startup files and libc, since
    # rustc's self-contained crt1.o only ships with rust-std.
    if [ "${NANOKUBE_BUILD_STD:-true}" != true ]; then
        fatal "no prebuilt standard library for $target (rustup target add $target failed);" \
            "install it with rustup, or drop NANOKUBE_BUILD_STD=false (nightly -Zbuild-std)"
    fi
    warn "no prebuilt standard library for $target; building it from source (nightly rust-src)"
    if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
        install_or_fail "nightly rust-src" rustup component add rust-src --toolchain nightly >&2
    fi
    echo nightly
}

check_static() {
    local bin=$1
    if readelf -lW "$bin" | grep -q 'program interpreter'; then
        fatal "$bin is not static: it asks for an ELF interpreter ($(readelf -lW "$bin" | grep 'program interpreter'))"
    fi
    if readelf -dW "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
        fatal "$bin is not static: it needs $(readelf -dW "$bin" | grep '(NEEDED)' | tr -s ' ' | tr '\n' ' ')"
    fi
    info "static: no interpreter, no NEEDED libraries${FILE_DESC:+ ($FILE_DESC)}"
}

check_size() {
    local bin=$1 size
    size=$(stat -c %s "$bin")
    SIZES="$SIZES$(awk -v n="$(basename "$bin")" -v s="$size" 'BEGIN { printf "  %-22s %6.1f MiB (%d bytes)", n, s / 1048576, s }')
"
    if [ "$size" -gt "$MAX_BYTES" ]; then
        fatal "$bin is $size bytes, over the limit of $MAX_BYTES bytes (48 MiB)"
    fi
    info "size: $size bytes (limit $MAX_BYTES)"
}

# Runs the binary (natively or under qemu-user): --version must work;
# check-config must run to its verdict (0: all OK, 1: something missing on
# this machine) and not crash.
check_starts() {
    local arch=$1 bin=$2 runner=() qemu out rc
    qemu=$(qemu_of "$arch")
    if [ -n "$qemu" ]; then
        if [ "$NO_QEMU" = true ]; then
            info "start check skipped (NANOKUBE_NO_QEMU=true)"
            return 0
        fi
        if ! command -v "$qemu" >/dev/null; then
            warn "$qemu not found: start check NOT run. Manual step: apt-get install qemu-user" \
                "(or qemu-user-static), then: $qemu $bin --version && $qemu $bin check-config"
            RESULTS="$RESULTS  $arch: start check not run ($qemu missing)
"
            return 0
        fi
        runner=("$qemu")
    fi
    out=$("${runner[@]}" "$bin" --version 2>&1) || fatal "${runner[*]} $bin --version failed: $out"
    info "${runner[*]:+${runner[*]} }$(basename "$bin") --version: $out"
    rc=0
    out=$("${runner[@]}" "$bin" check-config 2>&1) || rc=$?
    printf '%s\n' "$out" | tail -n 15 | sed 's/^/        /'
    case $rc in
    0 | 1) info "check-config ran (exit $rc)" ;;
    *) fatal "${runner[*]} $bin check-config failed (exit $rc)" ;;
    esac
    RESULTS="$RESULTS  $arch: --version ok, check-config exit $rc${runner[*]:+ (under ${runner[*]})}
"
}

build_one() {
    local arch=$1 target name toolchain bin start secs
    target=$(target_of "$arch")
    name=$(artefact_of "$arch")
    toolchain=$(toolchain_for "$target") || exit 1
    # -Z goes after the subcommand: cargo does not pass it on to cargo-zigbuild.
    local cargo=(cargo) extra=()
    if [ -n "$toolchain" ]; then
        cargo=(cargo "+$toolchain")
        extra=("-Zbuild-std=std,panic_unwind")
    fi
    info "building $name ($target${toolchain:+, std built from source with $toolchain})"
    start=$(date +%s)
    local rustflags=${RUSTFLAGS:-}
    if [ -n "$toolchain" ]; then
        rustflags="$rustflags -C link-self-contained=no"
    fi
    (cd "$ROOT" && RUSTFLAGS="$rustflags" nice -n 19 "${cargo[@]}" zigbuild "${extra[@]}" --locked \
        --profile "$PROFILE" --target "$target" --bin nanokube) || fatal "build for $target failed"
    secs=$(($(date +%s) - start))
    bin=$CARGO_TARGET_DIR/$target/$PROFILE/nanokube
    mkdir -p "$DIST_DIR"
    cp "$bin" "$DIST_DIR/$name.tmp"
    mv "$DIST_DIR/$name.tmp" "$DIST_DIR/$name"
    (cd "$DIST_DIR" && sha256sum "$name" >"sha256sum-$arch.txt")
    info "$DIST_DIR/$name built in ${secs}s; checksum in $DIST_DIR/sha256sum-$arch.txt"
    FILE_DESC=""
    if command -v file >/dev/null; then
        FILE_DESC=$(file -b "$DIST_DIR/$name" | cut -d, -f1-2)
    fi
    check_static "$DIST_DIR/$name"
    check_size "$DIST_DIR/$name"
    check_starts "$arch" "$DIST_DIR/$name"
    TIMES="$TIMES  $name: ${secs}s
"
}

smoke() {
    info "smoke tests with the static binary: NANOKUBE_TEST_BIN=$DIST_DIR/nanokube cargo test $SMOKE_TESTS"
    # shellcheck disable=SC2086 # SMOKE_TESTS is a list of cargo arguments
    (cd "$ROOT" && env -u CARGO_TARGET_DIR NANOKUBE_TEST_BIN="$DIST_DIR/nanokube" \
        cargo test $SMOKE_TESTS) || fatal "smoke tests failed with $DIST_DIR/nanokube"
    RESULTS="$RESULTS  amd64: smoke tests passed (cargo test $SMOKE_TESTS)
"
}

main() {
    local run_smoke=false arches=() arch
    for a in "$@"; do
        case $a in
        --smoke) run_smoke=true ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) arches+=("$a") ;;
        esac
    done
    [ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf)
    for arch in "${arches[@]}"; do target_of "$arch" >/dev/null; done
    if [ "$run_smoke" = true ] && [[ " ${arches[*]} " != *" amd64 "* ]]; then
        fatal "--smoke runs the amd64 binary: build amd64 too"
    fi
    need_tools
    SIZES="" TIMES="" RESULTS=""
    for arch in "${arches[@]}"; do
        build_one "$arch"
    done
    [ "$run_smoke" = false ] || smoke
    printf '\nSizes (limit 48 MiB):\n%sBuild times:\n%sChecks:\n%s' "$SIZES" "$TIMES" "$RESULTS"
}

main "$@"
