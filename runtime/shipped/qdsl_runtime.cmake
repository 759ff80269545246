# The runtime of generated programs: plain C++17, no MLIR. qdsl copies this
# folder (runtime/shipped/) into every project it generates and includes
# this file there; qdsl's own build includes it too (runtime/CMakeLists.txt),
# so the list of sources below is the only one.
#
#   qdsl_runtime           tensors, safetensors and .npy files, initial
#                          weights, the arena planner (nlohmann-json)
#   qdsl_training_runtime  data sets, AdamW and checkpoints, progress and
#                          metrics (zlib, fmt); only when
#                          QDSL_RUNTIME_TRAINING is set
#
# Sources include each other as "runtime/shipped/X.h": the folder two levels
# up is on the include path.
set(_qdsl_runtime_dir "${CMAKE_CURRENT_LIST_DIR}")
get_filename_component(_qdsl_runtime_root "${_qdsl_runtime_dir}/../.." ABSOLUTE)

find_package(nlohmann_json 3 REQUIRED)
add_library(qdsl_runtime STATIC
  ${_qdsl_runtime_dir}/TensorFiles.cpp
  ${_qdsl_runtime_dir}/WeightInit.cpp
  ${_qdsl_runtime_dir}/ArenaPlanner.cpp)
target_include_directories(qdsl_runtime PUBLIC ${_qdsl_runtime_root})
target_link_libraries(qdsl_runtime PUBLIC nlohmann_json::nlohmann_json)

if(QDSL_RUNTIME_TRAINING)
  find_package(ZLIB REQUIRED)
  find_package(fmt REQUIRED)
  add_library(qdsl_training_runtime STATIC
    ${_qdsl_runtime_dir}/Datasets.cpp
    ${_qdsl_runtime_dir}/Optimizer.cpp
    ${_qdsl_runtime_dir}/Progress.cpp)
  target_link_libraries(qdsl_training_runtime PUBLIC qdsl_runtime ZLIB::ZLIB fmt::fmt)
endif()
