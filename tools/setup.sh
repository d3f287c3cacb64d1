#!/usr/bin/env bash
# Sets warren up on a fresh Debian 12 machine, then serves or tests.
#
#   tools/setup.sh serve [warren serve options]   install, build, run `warren serve`
#   tools/setup.sh test                           install, build (-Werror), run ctest
#   tools/setup.sh build                          install and build only
#   tools/setup.sh deb                            install, build build/warren_<version>_amd64.deb
#
# Installs the Debian packages warren builds and runs with (apt-get; sudo when not root),
# the guest kernel of the VM backends (tools/build-guest-kernel.sh, from Debian's
# packages) and the npm packages of the integration tests (tests/integration).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

APT_PACKAGES=(
    build-essential cmake pkg-config git
    libuv1-dev libcjson-dev libsqlite3-dev libseccomp-dev libgit2-dev libssh2-1-dev
    libhttp-parser-dev libssl-dev libwslay-dev openssh-server openssh-client
    qemu-system-x86 qemu-system-common
    skopeo libarchive-tools
    # network: true: user-mode NAT into the sandbox's namespace, and its firewall rules
    slirp4netns nftables
    # sandbox disks: mkfs.ext4 makes the template image each disk is copied from
    e2fsprogs
    nodejs npm curl
    kmod iproute2
    # the tests' own registry and images: docker-registry, umoci, mmdebstrap, busybox-static
    docker-registry umoci mmdebstrap busybox-static
    # the package test: a fresh Debian 12 root (mmdebstrap) booted with systemd-nspawn
    systemd-container
    # the web UI's browser tests (driven by playwright-core from npm)
    chromium
)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Node may come from elsewhere (nvm, a tarball): then only its apt packages are skipped.
    if command -v node >/dev/null && command -v npm >/dev/null; then
        local keep=()
        for p in "${missing[@]}"; do
            [ "$p" = nodejs ] || [ "$p" = npm ] || keep+=("$p")
        done
        missing=("${keep[@]}")
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}" >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}"
    fi
}

build() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build build -j"$(nproc)"
    # The VM backends' guest kernel, from Debian's linux-image-cloud-amd64 (once). Without
    # it the jail still works and the VM tests skip, so a mirror hiccup only warns.
    if ! tools/build-guest-kernel.sh build/guest; then
        echo "setup: WARNING: no guest kernel (tools/build-guest-kernel.sh failed): the qemu" \
             "and cloud-hypervisor backends cannot boot VMs until it succeeds" >&2
    fi
}

install_node_packages() {
    (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
}

mode=${1:-}
[ $# -gt 0 ] && shift
case "$mode" in
serve)
    install_packages
    build
    exec build/warren serve "$@"
    ;;
test)
    install_packages
    build -DWARREN_WERROR=ON
    install_node_packages
    cd build
    exec ctest --output-on-failure --timeout 900 "$@"
    ;;
build)
    install_packages
    build "$@"
    ;;
deb)
    install_packages
    exec tools/package/build-deb.sh build "$@"
    ;;
*)
    echo "usage: tools/setup.sh serve [warren serve options] | test [ctest options] | build | deb" >&2
    exit 2
    ;;
esac
