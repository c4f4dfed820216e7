# Registers install_consumer, which installs this build into a temporary prefix and builds
# tests/install/consumer.cpp against it with CMake and with pkg-config. Include it from
# tests/CMakeLists.txt.
#
# Not under sanitizers: the installed library would then need the sanitizer runtime on every
# consumer's link line, which neither coil::coil nor coil.pc promises.
if(NOT COIL_SANITIZE)
  add_test(NAME install_consumer
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/check_install.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(install_consumer PROPERTIES LABELS install TIMEOUT 600)
endif()
