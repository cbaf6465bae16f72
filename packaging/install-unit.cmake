# install-unit.cmake: run at install time (install(CODE) includes it) to
# configure a systemd unit template for the prefix actually in use, which for
# `cpack` (/usr) differs from the configure-time CMAKE_INSTALL_PREFIX.
# Inputs: DRV_UNIT_IN (template), DRV_UNIT_OUT (configured copy), DRV_SBINDIR
# (relative sbin directory).
set(sbindir "${CMAKE_INSTALL_PREFIX}/${DRV_SBINDIR}")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  # Debian 12 ships units in /lib/systemd/system (lintian insists).
  set(_unitdir /lib/systemd/system)
else()
  # systemd also reads /usr/local/lib/systemd/system and the like.
  set(_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
configure_file("${DRV_UNIT_IN}" "${DRV_UNIT_OUT}" @ONLY)
file(INSTALL "${DRV_UNIT_OUT}" DESTINATION "${_unitdir}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
