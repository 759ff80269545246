# The runtime of generated programs: plain C++17, no MLIR. qdsl copies this
# folder (runtime/shipped/) into every project it generates and includes
# this file there; qdsl's own build includes it too (runtime/CMakeLists.txt),
# so the list of sources below is the only one.
#
#   qdsl_runtime           tensors, safetensors and .npy files, initial
#                          weights, the arena planner (nlohmann-json)
#   qdsl_training_runtime  data sets, AdamW and checkpoints, progress and
#                          metrics, data-parallel processes (zlib, fmt,
#                          MPI when found); only when QDSL_RUNTIME_TRAINING
#                          is set
#
# QDSL_MPI: AUTO (default: MPI when CMake's FindMPI finds one), ON (required)
# or OFF. Without MPI the programs run as one process and refuse to run under
# an MPI launcher (runtime/shipped/Distributed.h).
#
# nlohmann-json and fmt may come as headers alone (a GPU machine with only
# the CUDA toolkit): put their folder on CMAKE_INCLUDE_PATH.
#
# The sources include each other as "X.h"; their users include
# "runtime/shipped/X.h", so the folder two levels up is on the include path.
#
# qdsl reads the line setting QDSL_TRAINING_RUNTIME_SOURCES to leave those
# files (and their headers) out of a project that does not train.
set(QDSL_RUNTIME_SOURCES TensorFiles.cpp WeightInit.cpp ArenaPlanner.cpp)
set(QDSL_TRAINING_RUNTIME_SOURCES BatchLoader.cpp Datasets.cpp Images.cpp Optimizer.cpp Progress.cpp ArchitectureSearch.cpp Distributed.cpp)

set(_qdsl_runtime_dir "${CMAKE_CURRENT_LIST_DIR}")
get_filename_component(_qdsl_runtime_root "${_qdsl_runtime_dir}/../.." ABSOLUTE)

# nlohmann-json is header-only: without its CMake package (a GPU machine with
# only the CUDA toolkit, say) its header on the include path will do.
find_package(nlohmann_json 3 QUIET)
if(NOT nlohmann_json_FOUND AND NOT TARGET nlohmann_json::nlohmann_json)
  find_path(QDSL_NLOHMANN_JSON_INCLUDE nlohmann/json.hpp REQUIRED)
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  target_include_directories(nlohmann_json::nlohmann_json INTERFACE ${QDSL_NLOHMANN_JSON_INCLUDE})
endif()
list(TRANSFORM QDSL_RUNTIME_SOURCES PREPEND "${_qdsl_runtime_dir}/")
add_library(qdsl_runtime STATIC ${QDSL_RUNTIME_SOURCES})
target_include_directories(qdsl_runtime PUBLIC ${_qdsl_runtime_root})
target_link_libraries(qdsl_runtime PUBLIC nlohmann_json::nlohmann_json)

# fmt likewise: its package, or its headers alone (header-only).
find_package(fmt QUIET)
if(NOT TARGET fmt::fmt)
  find_path(QDSL_FMT_INCLUDE fmt/core.h REQUIRED)
  add_library(fmt::fmt INTERFACE IMPORTED)
  target_include_directories(fmt::fmt INTERFACE ${QDSL_FMT_INCLUDE})
  target_compile_definitions(fmt::fmt INTERFACE FMT_HEADER_ONLY)
endif()

if(QDSL_RUNTIME_TRAINING)
  find_package(ZLIB REQUIRED)
  list(TRANSFORM QDSL_TRAINING_RUNTIME_SOURCES PREPEND "${_qdsl_runtime_dir}/")
  add_library(qdsl_training_runtime STATIC ${QDSL_TRAINING_RUNTIME_SOURCES})
  target_link_libraries(qdsl_training_runtime PUBLIC qdsl_runtime ZLIB::ZLIB fmt::fmt)
  # Folders of images (train --dataset folder): JPEG through libjpeg-turbo's
  # TurboJPEG, PNG through libpng. Either may be missing (a GPU machine with
  # only the CUDA toolkit): the programs then say so when they meet such a file.
  find_path(QDSL_TURBOJPEG_INCLUDE turbojpeg.h)
  find_library(QDSL_TURBOJPEG_LIBRARY turbojpeg)
  if(QDSL_TURBOJPEG_INCLUDE AND QDSL_TURBOJPEG_LIBRARY)
    target_include_directories(qdsl_training_runtime PRIVATE ${QDSL_TURBOJPEG_INCLUDE})
    target_link_libraries(qdsl_training_runtime PUBLIC ${QDSL_TURBOJPEG_LIBRARY})
    target_compile_definitions(qdsl_training_runtime PRIVATE QDSL_WITH_JPEG)
  else()
    message(STATUS "qdsl: no TurboJPEG (libturbojpeg0-dev): training reads no JPEG files")
  endif()
  find_package(PNG QUIET)
  if(PNG_FOUND)
    target_link_libraries(qdsl_training_runtime PUBLIC PNG::PNG)
    target_compile_definitions(qdsl_training_runtime PRIVATE QDSL_WITH_PNG)
  else()
    message(STATUS "qdsl: no libpng (libpng-dev): training reads no PNG files")
  endif()
  set(QDSL_MPI AUTO CACHE STRING "Data-parallel training over MPI: AUTO, ON or OFF")
  set_property(CACHE QDSL_MPI PROPERTY STRINGS AUTO ON OFF)
  if(NOT QDSL_MPI STREQUAL "OFF")
    if(QDSL_MPI STREQUAL "ON")
      find_package(MPI REQUIRED COMPONENTS C)
    else()
      find_package(MPI QUIET COMPONENTS C)
    endif()
  endif()
  if(MPI_C_FOUND)
    target_link_libraries(qdsl_training_runtime PUBLIC MPI::MPI_C)
    target_compile_definitions(qdsl_training_runtime PRIVATE QDSL_WITH_MPI)
    message(STATUS "qdsl: data-parallel training with MPI ${MPI_C_VERSION}")
  else()
    message(STATUS "qdsl: no MPI (QDSL_MPI=${QDSL_MPI}): training runs as one process")
  endif()
endif()
