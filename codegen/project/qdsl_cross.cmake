# The programs of a project whose kernels are for another machine (the
# arm64-a76 target). The project's build generates the kernels (Halide runs
# here); a second CMake build of the same folder, configured with a cross
# compiler and QDSL_CROSS_BUILD=ON, compiles predict and the runtime for
# that machine and links those kernels. Its programs land in build/cross/;
# run them there, or here under user-mode emulation:
#
#   qemu-aarch64 -L /usr/aarch64-linux-gnu DIR/build/cross/predict --input x.npy --output y.npy
#
# QDSL_CROSS_PROGRAMS: AUTO (default: when the cross compiler is found), ON
# (required) or OFF (kernels only). QDSL_CROSS_PREFIX: the prefix of the
# cross tools (aarch64-linux-gnu-: Debian's g++-aarch64-linux-gnu).
#
# The runtime's header-only libraries (nlohmann-json, fmt) come from this
# machine, copied: the cross compiler must not see this machine's
# /usr/include, whose C library headers are for another processor.

# In the project's build: the cross build, after every kernel is built.
# `processor` is CMAKE_SYSTEM_PROCESSOR there, `prefix` the default
# QDSL_CROSS_PREFIX, `kernels` the target that builds the kernels.
function(qdsl_cross_programs processor prefix kernels)
  set(QDSL_CROSS_PROGRAMS AUTO CACHE STRING "Build the programs with a cross compiler: AUTO, ON or OFF")
  set_property(CACHE QDSL_CROSS_PROGRAMS PROPERTY STRINGS AUTO ON OFF)
  set(QDSL_CROSS_PREFIX "${prefix}" CACHE STRING "Prefix of the cross compiler (PREFIXgcc, PREFIXg++)")
  if(NOT QDSL_CROSS_PROGRAMS MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "qdsl: QDSL_CROSS_PROGRAMS is '${QDSL_CROSS_PROGRAMS}'; expected AUTO, ON or OFF")
  endif()
  if(QDSL_CROSS_PROGRAMS STREQUAL "OFF")
    message(STATUS "qdsl: QDSL_CROSS_PROGRAMS=OFF: kernels only")
    return()
  endif()
  string(REGEX REPLACE "-$" "" triple "${QDSL_CROSS_PREFIX}")
  # A prefix changed since the last configure looks for its own compilers.
  if(NOT "${QDSL_CROSS_PREFIX}" STREQUAL "${_QDSL_CROSS_PREFIX_FOUND}")
    unset(QDSL_CROSS_CC CACHE)
    unset(QDSL_CROSS_CXX CACHE)
    set(_QDSL_CROSS_PREFIX_FOUND "${QDSL_CROSS_PREFIX}" CACHE INTERNAL "")
  endif()
  find_program(QDSL_CROSS_CC ${QDSL_CROSS_PREFIX}gcc)
  find_program(QDSL_CROSS_CXX ${QDSL_CROSS_PREFIX}g++)
  if(NOT QDSL_CROSS_CC OR NOT QDSL_CROSS_CXX)
    set(missing "no cross compiler ${QDSL_CROSS_PREFIX}g++ (on Debian: g++-${triple})")
    if(QDSL_CROSS_PROGRAMS STREQUAL "ON")
      message(FATAL_ERROR "qdsl: QDSL_CROSS_PROGRAMS=ON but ${missing}")
    endif()
    message(STATUS "qdsl: ${missing}: kernels only, no predict for ${processor}")
    return()
  endif()
  find_path(QDSL_HOST_JSON_INCLUDE nlohmann/json.hpp REQUIRED)
  find_path(QDSL_HOST_FMT_INCLUDE fmt/core.h REQUIRED)
  get_target_property(halide_include Halide::Runtime INTERFACE_INCLUDE_DIRECTORIES)
  # The sysroot is where the cross compiler's own C library lives.
  execute_process(COMMAND ${QDSL_CROSS_CC} -print-sysroot OUTPUT_VARIABLE sysroot
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT sysroot)
    get_filename_component(tools "${QDSL_CROSS_CC}" DIRECTORY)
    get_filename_component(sysroot "${tools}/../${triple}" ABSOLUTE)
  endif()
  set(toolchain "${CMAKE_CURRENT_BINARY_DIR}/cross-toolchain.cmake")
  file(WRITE "${toolchain}"
       "set(CMAKE_SYSTEM_NAME Linux)\n"
       "set(CMAKE_SYSTEM_PROCESSOR ${processor})\n"
       "set(CMAKE_C_COMPILER \"${QDSL_CROSS_CC}\")\n"
       "set(CMAKE_CXX_COMPILER \"${QDSL_CROSS_CXX}\")\n"
       "set(CMAKE_FIND_ROOT_PATH \"${sysroot}\")\n"
       "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n"
       "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n"
       "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)\n"
       "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)\n")
  include(ExternalProject)
  ExternalProject_Add(qdsl_cross_programs
    SOURCE_DIR "${CMAKE_CURRENT_SOURCE_DIR}"
    BINARY_DIR "${CMAKE_CURRENT_BINARY_DIR}/cross"
    LIST_SEPARATOR "|"
    CMAKE_ARGS -DQDSL_CROSS_BUILD=ON
               "-DCMAKE_TOOLCHAIN_FILE=${toolchain}"
               "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}"
               "-DQDSL_KERNEL_DIR=${CMAKE_CURRENT_BINARY_DIR}/kernels"
               "-DQDSL_HALIDE_INCLUDE=${halide_include}"
               "-DQDSL_HOST_HEADERS=${QDSL_HOST_JSON_INCLUDE}/nlohmann|${QDSL_HOST_FMT_INCLUDE}/fmt"
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON
    DEPENDS ${kernels})
  message(STATUS "qdsl: programs for ${processor} with ${QDSL_CROSS_CXX} in ${CMAKE_CURRENT_BINARY_DIR}/cross")
endfunction()

# In the cross build: predict for the other machine, from the kernel
# libraries the project's build made (QDSL_KERNEL_DIR/NAME/NAME.a).
function(qdsl_cross_build_programs runtime)
  set(headers "${CMAKE_BINARY_DIR}/host_headers")
  foreach(dir IN LISTS QDSL_HOST_HEADERS)
    file(COPY "${dir}" DESTINATION "${headers}")
  endforeach()
  set(QDSL_NLOHMANN_JSON_INCLUDE "${headers}" CACHE PATH "nlohmann-json (copied)" FORCE)
  set(QDSL_FMT_INCLUDE "${headers}" CACHE PATH "fmt (copied)" FORCE)
  include(${CMAKE_CURRENT_SOURCE_DIR}/runtime/shipped/qdsl_runtime.cmake)
  find_package(Threads REQUIRED)
  set(libraries "")
  foreach(name IN ITEMS ${ARGN} ${runtime})
    add_library(${name} STATIC IMPORTED)
    set_target_properties(${name} PROPERTIES
      IMPORTED_LOCATION "${QDSL_KERNEL_DIR}/${name}/${name}.a"
      INTERFACE_INCLUDE_DIRECTORIES "${QDSL_KERNEL_DIR}/${name}")
    list(APPEND libraries ${name})
  endforeach()
  add_library(qdsl_model STATIC model_kernels.cpp qdsl_model.cpp qdsl_model_common.cpp)
  target_include_directories(qdsl_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR} ${QDSL_HALIDE_INCLUDE})
  # The kernels first: they call into the Halide runtime, listed last.
  target_link_libraries(qdsl_model PUBLIC ${libraries} qdsl_runtime fmt::fmt Threads::Threads
                        ${CMAKE_DL_LIBS})
  add_executable(predict predict.cpp)
  target_link_libraries(predict PRIVATE qdsl_model)
endfunction()
