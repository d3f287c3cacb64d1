#!/bin/sh
# Builds BUILD_DIR/warren_<version>_amd64.deb (BUILD_DIR: default build/): a build tree of
# its own with the prefix /usr (BUILD_DIR/deb: the installed paths are compiled in), the
# two programs and the manual page only, then CPack's DEB generator (tools/package/
# package.cmake; dpkg-shlibdeps computes the library dependencies). `tools/setup.sh deb`
# runs it after installing the build dependencies. Extra arguments go to cmake.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$top/build}" && cd "${1:-$top/build}" && pwd)
[ $# -gt 0 ] && shift
tree=$out/deb

cmake -S "$top" -B "$tree" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DWARREN_SYSTEMD_UNIT_DIR=/lib/systemd/system "$@" >/dev/null
cmake --build "$tree" -j"$(nproc)" --target warren guest-init warren_manpage
rm -f "$tree"/cpack/warren_*.deb
(cd "$tree" && cpack -G DEB -B "$tree/cpack" >/dev/null)
deb=$(ls "$tree"/cpack/warren_*_amd64.deb)
cp "$deb" "$out/"
echo "build-deb: $out/$(basename "$deb")"
