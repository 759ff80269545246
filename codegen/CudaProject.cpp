//===- CudaProject.cpp - a project of CUDA kernels ------------------------===//
//
// The cuda target (codegen/cuda/): model_kernels.cpp calls the kernels of
// qdsl_cuda.h with named parameters and tensors; CMake builds them with nvcc
// (or on the CPU emulation).

#include "codegen/ProjectParts.h"

#include "codegen/CString.h"
#include "codegen/KernelFamilies.h"
#include "codegen/ProjectTemplate.h"
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
  TemplateValues t;
  func::FuncOp function = p.forward.function;
  const std::string model = function.getSymName().str();
  t.values = {{"HEADER", std::string(kProjectMarker) + " from " + options.source + ": model " +
                             model + ", target " + target.name + "."},
              {"MODEL", model},
              {"CUDA_ARCHITECTURES", options.cudaArchitectures}};
  t.switches = {{"TRAIN", p.train.has_value()}};
  return fillProjectTemplate("cuda_project.cmake.in", t);
}

} // namespace qdsl::codegen::project
