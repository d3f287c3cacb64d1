# `cmake --install` and the Debian package (CPack's DEB generator). `tools/setup.sh deb`
# configures a build tree with the prefix /usr and runs cpack there: see its deb step.
#
# Installed files (prefix /usr):
#   /usr/bin/warren                          the server
#   /usr/libexec/warren/guest-init           PID 1 of every sandbox (static)
#   /usr/libexec/warren/fetch-guest-kernel   tools/build-guest-kernel.sh
#   /lib/systemd/system/warren.service       the unit (WARREN_SYSTEMD_UNIT_DIR)
#   /etc/warren/warren.conf                  every key, commented out, with its default
#   /usr/share/doc/warren/copyright          LICENSE (Apache-2.0)
#   /usr/share/doc/warren/README.md
#   /usr/share/man/man1/warren.1.gz          the manual page
set(WARREN_SYSTEMD_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system CACHE PATH
  "Where `cmake --install` puts warren.service (the Debian package: /lib/systemd/system)")
set(WARREN_DOCDIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/warren)
set(pkg ${CMAKE_CURRENT_SOURCE_DIR}/tools/package)
set(pkg_out ${CMAKE_CURRENT_BINARY_DIR}/package)

configure_file(${pkg}/warren.service.in ${pkg_out}/warren.service @ONLY)
configure_file(${pkg}/postinst.in ${pkg_out}/postinst @ONLY
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
  WORLD_EXECUTE)
configure_file(${pkg}/postrm.in ${pkg_out}/postrm @ONLY
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
  WORLD_EXECUTE)
file(COPY ${pkg}/prerm DESTINATION ${pkg_out}
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
  WORLD_EXECUTE)
file(WRITE ${pkg_out}/conffiles "${WARREN_SYSCONFDIR}/warren.conf\n")
# The manual page and the changelog, gzip'ed as Debian wants them (-n: no timestamp).
foreach(doc warren.1 changelog)
  add_custom_command(OUTPUT ${pkg_out}/${doc}.gz
    COMMAND sh -c "gzip -9 -n -c \"$1\" > \"$2\"" gzip ${pkg}/${doc} ${pkg_out}/${doc}.gz
    DEPENDS ${pkg}/${doc} VERBATIM)
endforeach()
add_custom_target(warren_manpage ALL DEPENDS ${pkg_out}/warren.1.gz ${pkg_out}/changelog.gz)

install(TARGETS warren RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS guest-init RUNTIME DESTINATION ${WARREN_LIBEXECDIR})
install(PROGRAMS tools/build-guest-kernel.sh DESTINATION ${WARREN_LIBEXECDIR}
  RENAME fetch-guest-kernel)
install(FILES ${pkg_out}/warren.service DESTINATION ${WARREN_SYSTEMD_UNIT_DIR})
install(FILES ${pkg}/warren.conf DESTINATION ${WARREN_SYSCONFDIR})
install(FILES LICENSE DESTINATION ${WARREN_DOCDIR} RENAME copyright)
install(FILES README.md DESTINATION ${WARREN_DOCDIR})
install(FILES ${pkg_out}/warren.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${pkg_out}/changelog.gz DESTINATION ${WARREN_DOCDIR})
# guest-init is static on purpose (PID 1 of VMs and of sandboxes of any image).
install(FILES ${pkg}/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
  RENAME warren)

# `cpack` builds the package from what is built: it does not build the tests first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME warren)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(WARREN_PACKAGE_MAINTAINER "warren maintainers <maintainers@users.noreply.b-seed-b52a737d.example>"
  CACHE STRING "The Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${WARREN_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "MCP server that gives AI agents sandboxes")
set(CPACK_PACKAGE_DESCRIPTION "warren serves the Model Context Protocol (stdio and
Streamable HTTP) and gives each agent session a sandbox: a QEMU or Cloud
Hypervisor microVM, or a namespace jail where there is no KVM, with
copy-on-write workspaces, snapshots and git commits back to the user's
repository.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries come from dpkg-shlibdeps (libuv1, libcjson1, libsqlite3-0, libseccomp2,
# libgit2-1.5, libssh2-1, libssl3, libhttp-parser2.9, libwslay1, libc6). The programs
# warren runs: mkfs.ext4 (sandbox disks), nft and slirp4netns (network: true), nsenter and
# mount (util-linux); ss (iproute2); the fetch script needs apt, dpkg-deb and modinfo (kmod).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# (util-linux is Essential: not listed.)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "e2fsprogs, nftables, slirp4netns, iproute2, kmod")
# The VM backends (QEMU and its virtiofsd) and OCI image pulls (skopeo) are recommended:
# the jail backend runs without them, and `apt install --no-install-recommends` leaves out
# QEMU with the graphics and sound libraries its own packages bring.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "qemu-system-x86, skopeo")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cloud-hypervisor")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${pkg_out}/postinst;${pkg_out}/prerm;${pkg_out}/postrm;${pkg_out}/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
