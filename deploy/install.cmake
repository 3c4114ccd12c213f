# Install rules and the Debian package (README "Deploy"). With the default prefix /usr:
#   /usr/bin/bangfu                               (bot/CMakeLists.txt)
#   /usr/share/bangfu/templates/*.mustache        the installed binary's default templates_dir
#   /usr/share/doc/bangfu/                        config.example.json, README.md, SECURITY.md,
#                                                 docs/, the nginx site
#   /usr/lib/systemd/system/bangfu.service        + bangfu-backup.service, bangfu-backup.timer
#   /usr/libexec/bangfu/backup                    the backup-and-retention script the timer runs
#   /etc/bangfu/config.json                       only if absent: never overwrites a config
# `cpack -G DEB` in the build folder makes bangfu_<version>_amd64.deb from the same rules.

# Every file of templates/ (data the district may reword, not sources), so a template added
# later is installed too.
file(GLOB bangfu_all_templates CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/templates/*.mustache")
install(FILES ${bangfu_all_templates} DESTINATION "${CMAKE_INSTALL_DATADIR}/bangfu/templates")

install(FILES config.example.json README.md SECURITY.md DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(FILES docs/domain.md docs/protocols.md DESTINATION "${CMAKE_INSTALL_DOCDIR}/docs")
install(FILES deploy/nginx/bangfu.conf DESTINATION "${CMAKE_INSTALL_DOCDIR}/nginx")

foreach(unit bangfu.service bangfu-backup.service)
  configure_file("${PROJECT_SOURCE_DIR}/deploy/systemd/${unit}.in"
                 "${PROJECT_BINARY_DIR}/deploy/${unit}" @ONLY)
  install(FILES "${PROJECT_BINARY_DIR}/deploy/${unit}" DESTINATION lib/systemd/system)
endforeach()
install(FILES deploy/systemd/bangfu-backup.timer DESTINATION lib/systemd/system)
install(PROGRAMS deploy/bangfu-backup.sh DESTINATION "${CMAKE_INSTALL_LIBEXECDIR}/bangfu"
        RENAME backup)

# /etc/bangfu/config.json: the sane default (no secrets; `bangfu config check` lists what is
# missing). An existing config is left as it is, by `cmake --install` and by the package (dpkg
# conffile). The folder follows the prefix given at install time: /etc for /usr (the package,
# `cmake --install build --prefix /usr`), <prefix>/etc otherwise, so that an install into a
# scratch prefix does not write to the real /etc. DESTDIR is honoured (CPack stages with it).
install(CODE "set(BANGFU_ETC_CONFIG \"${PROJECT_SOURCE_DIR}/deploy/config.json\")")
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(bangfu_etc "/etc/bangfu")
  else()
    set(bangfu_etc "${CMAKE_INSTALL_PREFIX}/etc/bangfu")
  endif()
  if(EXISTS "$ENV{DESTDIR}${bangfu_etc}/config.json")
    message(STATUS "Kept (not overwritten): $ENV{DESTDIR}${bangfu_etc}/config.json")
  else()
    # file(INSTALL) prefixes DESTDIR itself.
    file(INSTALL "${BANGFU_ETC_CONFIG}" DESTINATION "${bangfu_etc}"
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  endif()
]])
# The Debian package.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bangfu)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WeCom bot for paired assistance (结对帮扶)")
set(CPACK_PACKAGE_DESCRIPTION
    "bangfu (帮扶助手) is the bot in a district's paired-assistance work group on WeCom: helpers\n"
    "check in after each visit with one short Chinese message; it keeps the monthly ledgers\n"
    "(台账) in SQLite and posts the monthly bulletins and quarterly reviews.")
set(CPACK_PACKAGE_CONTACT "bangfu maintainers <bangfu@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # bangfu_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the shared libraries the binary links (dpkg-shlibdeps, from dpkg-dev), adduser for
# the postinst, and a font with Chinese characters for the coverage charts (a data package that
# dpkg-shlibdeps cannot see; without it the charts are left out, said in the log).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, fonts-noto-cjk")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx | apache2, systemd-timesyncd | chrony, sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/deploy/debian/conffiles" "${PROJECT_SOURCE_DIR}/deploy/debian/postinst"
    "${PROJECT_SOURCE_DIR}/deploy/debian/prerm" "${PROJECT_SOURCE_DIR}/deploy/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_OUTPUT_FILE_PREFIX "${PROJECT_BINARY_DIR}/packages")
include(CPack)
