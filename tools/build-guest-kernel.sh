#!/bin/sh
# Fetches the guest kernel of warren's VM backends from Debian's package mirror and
# installs it into OUTDIR (default build/guest):
#
#   OUTDIR/vmlinuz          the bzImage of linux-image-cloud-amd64 (QEMU and Cloud
#                           Hypervisor boot it directly)
#   OUTDIR/modules/*.ko     only the modules guest-init needs, uncompressed
#   OUTDIR/modules/order    their names in load order (dependencies first)
#   OUTDIR/VERSION          the package name and version
#   OUTDIR/MODULES          the wanted module list; when it and VERSION already match,
#                           the script does nothing
#
# The Debian cloud kernel builds virtio, virtiofs, vsock, the balloon and virtio_net (for
# network: true on QEMU) as modules.
# vmm/backends/guest-image.c packs OUTDIR/modules into the initramfs and guest-init loads them
# with finit_module in the order of modules/order. Needs apt-get, dpkg-deb and modinfo
# (kmod), all in a base Debian 12; runs as any user.
set -eu

OUTDIR=${1:-build/guest}
META=${WARREN_KERNEL_PACKAGE:-linux-image-cloud-amd64}
# What guest-init needs, in the order DESIGN.md gives; dependencies found in the
# modules' own metadata are put in front of whoever needs them.
WANTED="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
virtio_balloon fuse virtiofs vsock vmw_vsock_virtio_transport_common
vmw_vsock_virtio_transport virtio_console virtio_net"

die() {
    echo "build-guest-kernel: $*" >&2
    exit 1
}

PATH=$PATH:/usr/sbin:/sbin
for tool in apt-cache apt-get dpkg-deb modinfo; do
    command -v "$tool" >/dev/null || die "$tool not found (a Debian system with apt and kmod is needed)"
done

# The metapackage depends on exactly one versioned image package.
PKG=$(apt-cache depends "$META" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
[ -n "$PKG" ] || die "cannot resolve $META (run apt-get update?)"
PKGVER=$(apt-cache policy "$PKG" | sed -n 's/^ *Candidate: //p')
if [ -z "$PKGVER" ] || [ "$PKGVER" = "(none)" ]; then
    die "no installable version of $PKG"
fi
STAMP="$PKG $PKGVER"
# The wanted list on one line: a changed list re-extracts even when VERSION matches.
MODULES=$(printf '%s' "$WANTED" | tr '\n' ' ')

if [ -f "$OUTDIR/VERSION" ] && [ -f "$OUTDIR/vmlinuz" ] && [ -f "$OUTDIR/modules/order" ] &&
    [ "$(cat "$OUTDIR/VERSION")" = "$STAMP" ] && [ -f "$OUTDIR/MODULES" ] &&
    [ "$(cat "$OUTDIR/MODULES")" = "$MODULES" ]; then
    echo "build-guest-kernel: $OUTDIR is up to date ($STAMP)"
    exit 0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/warren-guest-kernel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "build-guest-kernel: downloading $PKG $PKGVER"
# apt-get download writes into the current directory; it warns that it cannot drop to
# the _apt user for a directory that user cannot write, which is harmless here.
(cd "$WORK" && apt-get download -q "$PKG=$PKGVER" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
    true
DEB=$(find "$WORK" -maxdepth 1 -name "${PKG}_*.deb" | head -n1)
[ -n "$DEB" ] || die "apt-get download $PKG=$PKGVER failed"
dpkg-deb -x "$DEB" "$WORK/root"

KVER=${PKG#linux-image-}
MODDIR=$WORK/root/lib/modules/$KVER
[ -d "$MODDIR" ] || MODDIR=$WORK/root/usr/lib/modules/$KVER
[ -d "$MODDIR" ] || die "no modules directory for $KVER in $PKG"
KERNEL=$WORK/root/boot/vmlinuz-$KVER
[ -f "$KERNEL" ] || die "no /boot/vmlinuz-$KVER in $PKG"

# Prints the path of module $1 in the package (any compression), or nothing.
module_file() {
    find "$MODDIR/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" |
        head -n1
}

is_builtin() {
    grep -q "/$1\.ko\$" "$MODDIR/modules.builtin" 2>/dev/null
}

STAGE=$WORK/out
mkdir -p "$STAGE/modules"
: >"$STAGE/modules/order"

# Depth-first: a module's dependencies are installed (and listed) before it. modinfo
# reads "depends=" from the module itself: the package carries no modules.dep (depmod
# writes it when the package is installed).
# "local" is not POSIX but dash, bash and busybox sh have it; the recursion needs it.
# shellcheck disable=SC3043
add_module() {
    local name="$1" file deps dep
    grep -qx "$name" "$STAGE/modules/order" && return 0
    if is_builtin "$name"; then
        echo "build-guest-kernel: $name is built in"
        return 0
    fi
    file=$(module_file "$name")
    [ -n "$file" ] || die "module $name is neither built in nor in $PKG"
    deps=$(modinfo -F depends "$file" | tr ',' ' ')
    for dep in $deps; do
        add_module "$dep"
    done
    case "$file" in
    *.xz) xz -dc "$file" >"$STAGE/modules/$name.ko" ;;
    *.zst) zstd -qdc "$file" >"$STAGE/modules/$name.ko" ;;
    *.gz) gzip -dc "$file" >"$STAGE/modules/$name.ko" ;;
    *) cp "$file" "$STAGE/modules/$name.ko" ;;
    esac
    echo "$name" >>"$STAGE/modules/order"
}

for m in $WANTED; do
    add_module "$m"
done
cp "$KERNEL" "$STAGE/vmlinuz"
echo "$STAMP" >"$STAGE/VERSION"

# Replace OUTDIR's contents; VERSION and MODULES go last so that an interrupted run is
# redone.
mkdir -p "$OUTDIR"
rm -f "$OUTDIR/VERSION" "$OUTDIR/MODULES"
rm -rf "$OUTDIR/modules"
cp "$STAGE/vmlinuz" "$OUTDIR/vmlinuz.tmp" && mv "$OUTDIR/vmlinuz.tmp" "$OUTDIR/vmlinuz"
cp -r "$STAGE/modules" "$OUTDIR/modules"
cp "$STAGE/VERSION" "$OUTDIR/VERSION"
echo "$MODULES" >"$OUTDIR/MODULES"
echo "build-guest-kernel: installed $STAMP into $OUTDIR ($(wc -l <"$OUTDIR/modules/order") modules)"
