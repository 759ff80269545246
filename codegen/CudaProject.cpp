//===- CudaProject.cpp - a project of CUDA kernels ------------------------===//
//
// The cuda target (codegen/cuda/): model_kernels.cpp calls the kernels of
// qdsl_cuda.h with named parameters and tensors; CMake builds them with nvcc
// (or on the CPU emulation).

#include "codegen/ProjectParts.h"

#include "codegen/CString.h"
#include "codegen/KernelFamilies.h"
#include "dialect/QuadraOps.h"

#include <array>

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen::project {

namespace {

std::string paramValue(const KernelCall &call, llvm::StringRef name) {
  for (const auto &[key, value] : call.params)
    if (key == name)
      return value;
  return "";
}

bool flag(const KernelCall &call, llvm::StringRef name) { return paramValue(call, name) == "true"; }

/// Whether a pointwise call runs as a matmul with the layer scale folded
/// into its weights (qdsl_cuda.h, pointwise).
bool foldsLayerScale(const KernelCall &call) {
  return call.implementation == "pointwise" && flag(call, "scale_residual") &&
         !flag(call, "norm") &&
         !flag(call, "quadratic") && paramValue(call, "activation") == "0";
}

/// Elements of `v`: per example times `n` when batched, else all of it.
std::string elementCount(Value v) {
  auto shape = llvm::cast<RankedTensorType>(v.getType()).getShape();
  int64_t count = 1;
  for (size_t i = isBatched(v) ? 1 : 0; i < shape.size(); ++i)
    count *= shape[i];
  return std::to_string(count) + (isBatched(v) ? " * static_cast<size_t>(n)" : "");
}

LogicalResult emitCudaKernelCalls(const FunctionPlan &p, raw_ostream &os,
                                  std::vector<std::array<std::string, 3>> &folds) {
  os << "    const int n = pass.batch();\n";
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    const KernelImplementation *implementation = lookupKernelImplementation(call.implementation);
    Operation *kernel = call.results[0].getDefiningOp();
    if (!implementation || !hasImplementation(Backend::Cuda, *implementation))
      return kernel->emitError("kernel '") << call.name << "' calls '" << call.implementation
                                           << "', which the cuda target cannot pass tensors to";
    if (p.paths[i].any())
      return kernel->emitError("the cuda target does not run supernets (kernel '")
             << call.name << "')";
    os << "    {  // " << call.name << " (" << call.family << ")\n"
       << "        qdsl_cuda::" << implementation->cudaParams << " p;\n";
    for (const auto &[name, value] : call.params)
      os << "        p." << name << " = "
         << (name == "op" ? "qdsl_cuda::ElementwiseOp::" + value : value) << ";\n";
    // Sizes the Halide generators take from their buffers.
    auto shape = llvm::cast<RankedTensorType>(call.inputs[0].activation.getType()).getShape();
    int64_t inner = 1;
    for (size_t d = 1; d + 1 < shape.size(); ++d)
      inner *= shape[d];
    if (implementation->cudaTakesRowsPerExample)
      os << "        p.rows_per_example = " << inner << ";\n";
    for (const KernelArgument &arg : call.inputs)
      if (arg.transposed)
        os << "        p.weight_transposed = true;\n";
    if (implementation->cudaTakesPixels)
      os << "        p.pixels = " << inner << ";\n";
    os << "        qdsl_cuda::" << implementation->cudaTensors << " t;\n";
    for (const KernelArgument &arg : call.inputs) {
      os << "        t." << arg.role << " = ";
      if (arg.view == View::Labels)
        os << "pass.labels();\n";
      else if (arg.activation)
        os << "pass.in(" << p.ids.lookup(arg.activation) << ", "
           << elementCount(arg.activation) << ");\n";
      else
        os << "pass.weight(" << cString(arg.weight) << ");\n";
    }
    if (foldsLayerScale(call)) {
      auto weightOf = [&inputs = call.inputs](llvm::StringRef role) {
        for (const KernelArgument &arg : inputs)
          if (arg.role == role)
            return arg.weight;
        return std::string();
      };
      const std::string weight = weightOf("w");
      const bool bias = flag(call, "bias");
      folds.push_back({weight, weightOf("bias"), weightOf("gamma")});
      os << "        t.w_scaled = pass.scaled_weight(" << cString(weight) << ");\n";
      if (bias)
        os << "        t.bias_scaled = pass.scaled_bias(" << cString(weight) << ");\n";
    }
    for (auto [j, result] : llvm::enumerate(call.results))
      os << "        t." << call.outputRoles[j] << " = pass.out(" << p.ids.lookup(result) << ", "
         << elementCount(result) << ");\n";
    os << "        if (!pass.run(" << cString(call.name) << ", " << cString(call.family)
       << ", [&] { return qdsl_cuda::" << implementation->name
       << "(p, t, n, pass.context()); }))\n"
       << "            return false;\n"
       << "    }\n";
  }
  os << "    return true;\n";
  return success();
}

} // namespace

FailureOr<std::string> cudaKernelsSource(const Plan &p, const Target &target,
                                         const ProjectOptions &options) {
  func::FuncOp model = p.forward.function;
  std::string calls, trainCalls;
  llvm::raw_string_ostream callStream(calls), trainStream(trainCalls);
  std::vector<std::array<std::string, 3>> folds;
  if (failed(emitCudaKernelCalls(p.forward, callStream, folds)))
    return failure();
  if (p.train) {
    if (failed(emitCudaKernelCalls(*p.train, trainStream, folds)))
      return failure();
  } else {
    trainStream << "    (void)pass;\n    return false;\n";
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "// Generated by qdsl from " << options.source << ": model " << model.getSymName()
     << ", target " << target.name << ".\n"
     << "// The model's weights and its kernels in order (codegen/cuda/qdsl_cuda.h); the\n"
     << "// rest of the model is cuda/qdsl_cuda_model.cpp. Do not edit: recompile the model.\n\n"
     << "#include \"cuda/qdsl_cuda_model.h\"\n\n"
     << "namespace qdsl_model {\n\n";
  emitModelTables(p, target, options, os);
  os << "// Pointwise layers whose layer scale is folded into their weights.\n"
     << "const std::vector<FoldSpec> kFoldSpecs = {\n";
  std::set<std::string> folded;
  for (const auto &[weight, bias, gamma] : folds)
    if (folded.insert(weight).second)
      os << "    {" << cString(weight) << ", " << (bias.empty() ? "nullptr" : cString(bias))
         << ", " << cString(gamma) << "},\n";
  os << "};\n\n";
  os << "const std::vector<SearchLayer> kSearchLayers = {};\n\n"
     << "bool run_kernels(DevicePass &pass) {\n"
     << calls << "}\n\n"
     << "bool run_train_kernels(DevicePass &pass) {\n"
     << trainCalls << "}\n\n}  // namespace qdsl_model\n";
  return s;
}

std::string cudaCmakeSource(const Plan &p, const Target &target, const ProjectOptions &options) {
  func::FuncOp model = p.forward.function;
  std::string s;
  llvm::raw_string_ostream os(s);
  os << kProjectMarker << " from " << options.source << ": model " << model.getSymName()
     << ", target " << target.name << ".\n"
     << "# Build with `qdsl build DIR`, or cmake -S DIR -B DIR/build -G Ninja && cmake --build "
        "DIR/build.\n"
     << "# Needs the CUDA toolkit (nvcc, cuBLASLt) and nlohmann-json; nothing of qdsl, MLIR or "
        "Halide.\n"
     << "# -DQDSL_CUDA_EMULATE=ON builds the same program on the CPU, without CUDA, to\n"
     << "# check its arithmetic (cuda/qdsl_cuda_emulate.cpp; slow).\n"
     << "cmake_minimum_required(VERSION 3.24)\n"
     << "option(QDSL_CUDA_EMULATE \"Run the CUDA kernels on the CPU\" OFF)\n"
     << "if(QDSL_CUDA_EMULATE)\n"
     << "  project(" << model.getSymName() << " C CXX)\n"
     << "else()\n"
     << "  # nvcc from CUDACXX or PATH, else the toolkit's usual place.\n"
     << "  find_program(QDSL_NVCC nvcc)\n"
     << "  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND NOT QDSL_NVCC\n"
     << "     AND EXISTS /usr/local/cuda/bin/nvcc)\n"
     << "    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)\n"
     << "  endif()\n"
     << "  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)\n"
     << "    set(CMAKE_CUDA_ARCHITECTURES \"" << options.cudaArchitectures << "\")\n"
     << "  endif()\n"
     << "  project(" << model.getSymName() << " C CXX CUDA)\n"
     << "  find_package(CUDAToolkit REQUIRED)\n"
     << "endif()\n\n"
     << "set(CMAKE_CXX_STANDARD 17)\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
     << "set(CMAKE_CUDA_STANDARD 17)\n"
     << "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n\n"
     << "# Tensor files, initial weights, the arena planner"
     << (p.train ? "; data sets, AdamW,\n# checkpoints and progress for train.\nset(QDSL_RUNTIME_TRAINING ON)\n"
                 : ".\n")
     << "include(runtime/shipped/qdsl_runtime.cmake)\n\n"
     << "if(QDSL_CUDA_EMULATE)\n"
     << "  add_library(qdsl_cuda STATIC cuda/qdsl_cuda_emulate.cpp)\n"
     << "else()\n"
     << "  add_library(qdsl_cuda STATIC cuda/qdsl_cuda_kernels.cu)\n"
     << "  target_link_libraries(qdsl_cuda PUBLIC CUDA::cudart CUDA::cublasLt)\n"
     << "  # Source lines in compute-sanitizer's and the profilers' reports.\n"
     << "  target_compile_options(qdsl_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)\n"
     << "endif()\n"
     << "target_include_directories(qdsl_cuda PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n\n"
     << "add_library(qdsl_model STATIC model_kernels.cpp cuda/qdsl_cuda_model.cpp "
        "qdsl_model_common.cpp)\n"
     << "target_include_directories(qdsl_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n"
     << "target_link_libraries(qdsl_model PUBLIC qdsl_cuda qdsl_runtime)\n\n"
     << "add_executable(predict predict.cpp)\n"
     << "target_link_libraries(predict PRIVATE qdsl_model fmt::fmt)\n";
  if (p.train)
    os << "\n# The training program: the step on the GPU, AdamW on the host.\n"
       << "add_executable(train train.cpp)\n"
       << "target_link_libraries(train PRIVATE qdsl_model qdsl_training_runtime)\n"
       << "\n# Data-parallel training on GPUs (docs/DISTRIBUTED.md): with MPI and the toolkit's\n"
       << "# NCCL, the processes' gradients are averaged on the devices; without NCCL, on\n"
       << "# the host through MPI.\n"
       << "if(MPI_C_FOUND AND NOT QDSL_CUDA_EMULATE)\n"
       << "  find_path(QDSL_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})\n"
       << "  find_library(QDSL_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})\n"
       << "  if(QDSL_NCCL_INCLUDE AND QDSL_NCCL_LIBRARY)\n"
       << "    target_compile_definitions(qdsl_model PRIVATE QDSL_WITH_NCCL)\n"
       << "    target_include_directories(qdsl_model PRIVATE ${QDSL_NCCL_INCLUDE})\n"
       << "    target_link_libraries(qdsl_model PUBLIC ${QDSL_NCCL_LIBRARY})\n"
       << "    message(STATUS \"qdsl: gradients averaged across GPUs with NCCL (${QDSL_NCCL_LIBRARY})\")\n"
       << "  endif()\n"
       << "endif()\n";
  return s;
}

} // namespace qdsl::codegen::project
