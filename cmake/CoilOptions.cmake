# Build options of coil and the one function that applies them to every target.

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(_coil_default_context asm)
else()
  set(_coil_default_context boost)
endif()
set(COIL_CONTEXT ${_coil_default_context} CACHE STRING "Context-switch backend: asm or boost")
set_property(CACHE COIL_CONTEXT PROPERTY STRINGS asm boost)
if(NOT COIL_CONTEXT MATCHES "^(asm|boost)$")
  message(FATAL_ERROR "COIL_CONTEXT must be 'asm' or 'boost', not '${COIL_CONTEXT}'")
endif()
if(COIL_CONTEXT STREQUAL "asm" AND NOT CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  message(FATAL_ERROR "COIL_CONTEXT=asm needs x86-64; use COIL_CONTEXT=boost on ${CMAKE_SYSTEM_PROCESSOR}")
endif()
message(STATUS "coil: context-switch backend: ${COIL_CONTEXT}")

set(COIL_SANITIZE "" CACHE STRING "Sanitizers: address,undefined | thread | empty")
if(COIL_SANITIZE AND NOT COIL_SANITIZE MATCHES "^(address|undefined|address,undefined|undefined,address|thread)$")
  message(FATAL_ERROR "COIL_SANITIZE must be address, undefined, address,undefined or thread, not '${COIL_SANITIZE}'")
endif()
if(COIL_SANITIZE)
  message(STATUS "coil: sanitizers: ${COIL_SANITIZE}")
endif()

option(COIL_BUILD_TESTS "Build the GoogleTest suites" ON)
option(COIL_BUILD_EXAMPLES "Build the example programs" ON)
option(COIL_BUILD_TOOLS "Build tools and benchmarks" ON)
option(COIL_WERROR "Treat warnings as errors" OFF)

# coil_set_target_options(target) applies warnings and sanitizer flags. Every coil target calls it.
function(coil_set_target_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:C,CXX>:-Wall -Wextra -Wshadow -Wno-missing-field-initializers>
    $<$<AND:$<BOOL:${COIL_WERROR}>,$<COMPILE_LANGUAGE:C,CXX>>:-Werror>)
  if(COIL_SANITIZE)
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=${COIL_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all>)
    target_link_options(${target} PRIVATE -fsanitize=${COIL_SANITIZE})
  endif()
endfunction()
