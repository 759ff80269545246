# Compiled Halide kernels, shared between projects through a per-user cache.
#
# qdsl names every compiled function after a hash of what determines its
# code (generator source, generator, parameters, Halide target, scheduler),
# so the same name means the same object code in any project. A kernel found
# in the cache is copied in at configure time and the generator is not run
# (nor built, when nothing misses); a missing one is generated and then
# stored. Entries are written to a private directory and renamed into place,
# and each carries the SHA-256 of its files, so concurrent builds and
# half-written or damaged entries are safe: an entry that does not verify
# is ignored and replaced.
#
# QDSL_KERNEL_CACHE: the cache directory; empty disables the cache.

# Also run as a script (below), where no project has set the policies.
cmake_policy(VERSION 3.21)
set(QDSL_CACHE_SCRIPT "${CMAKE_CURRENT_LIST_FILE}")

# Whether `entry` holds `name`'s files with the checksums of its manifest.
function(_qdsl_entry_valid entry name files out)
  set(${out} FALSE PARENT_SCOPE)
  if(NOT EXISTS "${entry}/manifest.txt")
    return()
  endif()
  file(STRINGS "${entry}/manifest.txt" lines)
  list(LENGTH files expected)
  list(LENGTH lines got)
  if(NOT got EQUAL expected)
    return()
  endif()
  foreach(f IN LISTS files)
    if(NOT EXISTS "${entry}/${f}")
      return()
    endif()
    file(SHA256 "${entry}/${f}" sum)
    if(NOT "${f} ${sum}" IN_LIST lines)
      return()
    endif()
  endforeach()
  set(${out} TRUE PARENT_SCOPE)
endfunction()

# Script mode: store the files of DIR (FILES, ;-separated) as cache entry
# CACHE/NAME.
if(CMAKE_SCRIPT_MODE_FILE)
  string(RANDOM LENGTH 12 token)
  set(staging "${CACHE}/.staging-${NAME}-${token}")
  file(MAKE_DIRECTORY "${staging}")
  set(manifest "")
  foreach(f IN LISTS FILES)
    file(COPY "${DIR}/${f}" DESTINATION "${staging}")
    file(SHA256 "${staging}/${f}" sum)
    string(APPEND manifest "${f} ${sum}\n")
  endforeach()
  # Written last: an entry without it is incomplete.
  file(WRITE "${staging}/manifest.txt" "${manifest}")
  set(entry "${CACHE}/${NAME}")
  _qdsl_entry_valid("${entry}" "${NAME}" "${FILES}" valid)
  if(NOT valid AND EXISTS "${entry}")
    file(RENAME "${entry}" "${CACHE}/.broken-${NAME}-${token}" RESULT moved)
    file(REMOVE_RECURSE "${CACHE}/.broken-${NAME}-${token}")
  endif()
  file(RENAME "${staging}" "${entry}" RESULT renamed)
  # Another build may have stored the same kernel first: keep theirs.
  file(REMOVE_RECURSE "${staging}")
  return()
endif()

# `qdsl profile` records the Halide version its measurements were made with.
file(WRITE "${CMAKE_BINARY_DIR}/qdsl_halide_version.txt" "${Halide_VERSION}\n")

if(QDSL_KERNEL_CACHE)
  set(_qdsl_cache "${QDSL_KERNEL_CACHE}/halide-${Halide_VERSION}")
  file(MAKE_DIRECTORY "${_qdsl_cache}")
endif()

# Adds `name` as a library whose files come from the cache or from running
# the command after GENERATE in `${CMAKE_CURRENT_BINARY_DIR}/kernels/name`.
function(_qdsl_cached_library name files)
  cmake_parse_arguments(ARG "" "" "GENERATE" ${ARGN})
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/kernels/${name}")
  file(MAKE_DIRECTORY "${dir}")
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES IMPORTED_LOCATION "${dir}/${name}.a"
                                           INTERFACE_INCLUDE_DIRECTORIES "${dir}")
  set(valid FALSE)
  if(_qdsl_cache)
    _qdsl_entry_valid("${_qdsl_cache}/${name}" "${name}" "${files}" valid)
  endif()
  if(valid)
    foreach(f IN LISTS files)
      file(COPY "${_qdsl_cache}/${name}/${f}" DESTINATION "${dir}")
    endforeach()
    set_property(GLOBAL APPEND PROPERTY QDSL_KERNELS_FROM_CACHE ${name})
    return()
  endif()
  set(outputs "${files}")
  list(TRANSFORM outputs PREPEND "${dir}/")
  set(store "")
  if(_qdsl_cache)
    string(REPLACE ";" "\\;" file_list "${files}")
    set(store COMMAND "${CMAKE_COMMAND}" "-DCACHE=${_qdsl_cache}" "-DNAME=${name}"
              "-DDIR=${dir}" "-DFILES=${file_list}" -P "${QDSL_CACHE_SCRIPT}")
  endif()
  add_custom_command(OUTPUT ${outputs} COMMAND ${ARG_GENERATE} ${store}
                     WORKING_DIRECTORY "${dir}" VERBATIM)
  add_custom_target(${name}.update DEPENDS ${outputs})
  add_dependencies(${name} ${name}.update)
  set_property(GLOBAL APPEND PROPERTY QDSL_KERNELS_GENERATED ${name})
endfunction()

# The Halide runtime all kernels share (they are built with no_runtime).
function(qdsl_halide_runtime name target)
  _qdsl_cached_library(${name} "${name}.a"
    GENERATE qdsl_generators -r ${name} -e static_library -o . target=${target})
  find_package(Threads REQUIRED)
  set_property(TARGET ${name} APPEND PROPERTY INTERFACE_LINK_LIBRARIES
               Halide::Runtime Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

# One kernel: qdsl_kernel(NAME GENERATOR g TARGET t RUNTIME r
#                         [AUTOSCHEDULER s] PARAMS k=v ...)
function(qdsl_kernel name)
  cmake_parse_arguments(ARG "" "GENERATOR;TARGET;RUNTIME;AUTOSCHEDULER" "PARAMS" ${ARGN})
  set(schedule "")
  if(ARG_AUTOSCHEDULER)
    set(schedule -p "$<TARGET_FILE:Halide::${ARG_AUTOSCHEDULER}>"
                 -s ${ARG_AUTOSCHEDULER} auto_schedule=true)
  endif()
  _qdsl_cached_library(${name} "${name}.a;${name}.h"
    GENERATE qdsl_generators -g ${ARG_GENERATOR} -f ${name} -e static_library,c_header
             -o . ${schedule} target=${ARG_TARGET}-no_runtime ${ARG_PARAMS})
  set_property(TARGET ${name} APPEND PROPERTY INTERFACE_LINK_LIBRARIES ${ARG_RUNTIME})
endfunction()

# Prints how many kernels came from the cache.
function(qdsl_report_kernels)
  get_property(hits GLOBAL PROPERTY QDSL_KERNELS_FROM_CACHE)
  get_property(misses GLOBAL PROPERTY QDSL_KERNELS_GENERATED)
  list(LENGTH hits h)
  list(LENGTH misses m)
  if(_qdsl_cache)
    message(STATUS "qdsl kernels: ${h} from the cache ${_qdsl_cache}, ${m} to generate")
  else()
    message(STATUS "qdsl kernels: ${m} to generate (no kernel cache)")
  endif()
endfunction()
