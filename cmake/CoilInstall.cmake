# Installation of libcoil: public headers, the shared and static library, a CMake package
# (find_package(coil) gives coil::coil and coil::coil_static) and a pkg-config file (coil.pc).
#
# coil_objects is an OBJECT library whose objects are compiled into both libraries through
# $<TARGET_OBJECTS>; neither library links it, so it is not part of the export set.

include(CMakePackageConfigHelpers)

set(COIL_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/coil
  CACHE STRING "Where coilConfig.cmake is installed, relative to the prefix")
mark_as_advanced(COIL_INSTALL_CMAKEDIR)

# The public headers use C++20; consumers of the installed targets must compile as C++20 or later.
foreach(target coil_shared coil_static)
  target_compile_features(${target} INTERFACE cxx_std_20)
endforeach()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/coil ${PROJECT_SOURCE_DIR}/hook/include/coil
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT coil_development
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")

install(TARGETS coil_shared coil_static
  EXPORT coilTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    COMPONENT coil_runtime
    NAMELINK_COMPONENT coil_development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT coil_development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT coil_runtime)

install(EXPORT coilTargets
  NAMESPACE coil::
  DESTINATION ${COIL_INSTALL_CMAKEDIR}
  COMPONENT coil_development)

# The config file finds what the exported targets link: Threads always, Boost's headers always
# (the public headers use Boost.Intrusive), Boost.Context only with the boost backend.
if(COIL_CONTEXT STREQUAL "boost")
  set(COIL_BOOST_COMPONENTS "COMPONENTS context")
else()
  set(COIL_BOOST_COMPONENTS "")
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/coilConfig.cmake.in
  ${PROJECT_BINARY_DIR}/coilConfig.cmake
  INSTALL_DESTINATION ${COIL_INSTALL_CMAKEDIR})
# 0.x releases make no promise across minor versions.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/coilConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/coilConfig.cmake ${PROJECT_BINARY_DIR}/coilConfigVersion.cmake
  DESTINATION ${COIL_INSTALL_CMAKEDIR}
  COMPONENT coil_development)

# coil.pc is relocatable: its prefix is found from the file's own place (${pcfiledir}), so
# `cmake --install --prefix DIR` works without reconfiguring. Absolute install dirs are kept.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(COIL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(COIL_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _coil_pc_up "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" _coil_pc_up "${_coil_pc_up}")
  set(COIL_PC_PREFIX "\${pcfiledir}/${_coil_pc_up}")
  set(COIL_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(COIL_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(COIL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Boost has no pkg-config files, so its flags are spelled out: an include directory only when it
# is not one the compiler searches anyway, and -lboost_context (for static links) with the boost
# backend.
set(COIL_PC_CFLAGS_EXTRA "")
get_target_property(_coil_boost_includes Boost::headers INTERFACE_INCLUDE_DIRECTORIES)
foreach(dir IN LISTS _coil_boost_includes)
  if(dir AND NOT dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES)
    string(APPEND COIL_PC_CFLAGS_EXTRA " -I${dir}")
  endif()
endforeach()
set(COIL_PC_LIBS_PRIVATE "-pthread -luring")
if(COIL_CONTEXT STREQUAL "boost")
  get_target_property(_coil_boost_context Boost::context LOCATION)
  if(_coil_boost_context)
    get_filename_component(_coil_boost_libdir "${_coil_boost_context}" DIRECTORY)
    if(NOT _coil_boost_libdir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      string(APPEND COIL_PC_LIBS_PRIVATE " -L${_coil_boost_libdir}")
    endif()
  endif()
  string(APPEND COIL_PC_LIBS_PRIVATE " -lboost_context")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/coil.pc.in ${PROJECT_BINARY_DIR}/coil.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/coil.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT coil_development)

# The gdb extension (info coroutines, coroutine bt): `source <prefix>/share/coil/coil-gdb.py`.
install(FILES ${PROJECT_SOURCE_DIR}/tools/coil-gdb.py
  DESTINATION ${CMAKE_INSTALL_DATADIR}/coil
  COMPONENT coil_development)
