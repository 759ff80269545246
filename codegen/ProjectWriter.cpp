//===- ProjectWriter.cpp - a self-contained CMake project per model -------===//

#include "codegen/ProjectWriter.h"

#include "codegen/HalideKernels.h"
#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"
#include "runtime/ReferenceExecutor.h"
#include "runtime/TensorFiles.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen {

namespace {

struct EmbeddedFile {
  const char *path;
  const char *data;
  size_t size;
};
#include "codegen/ProjectFiles.inc"

/// Where a repository file goes in a generated project.
std::string projectPath(llvm::StringRef repoPath) {
  if (repoPath.consume_front("codegen/halide/"))
    return ("generators/" + repoPath).str();
  if (repoPath.consume_front("codegen/project/"))
    return repoPath.str();
  return repoPath.str(); // runtime/...
}

std::string generatorSource(llvm::StringRef generator) {
  if (generator == "elementwise" || generator == "avgpool")
    return "elementwise_generator.cpp";
  return (generator + "_generator.cpp").str();
}

std::string cString(llvm::StringRef s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string shapeList(ArrayRef<int64_t> shape) {
  std::string s = "{";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}

/// One example's shape: the type without its leading (batch) dimension.
std::vector<int64_t> exampleShape(Type type) {
  auto shape = llvm::cast<RankedTensorType>(type).getShape();
  return std::vector<int64_t>(shape.begin() + 1, shape.end());
}

const char *initName(rt::InitKind kind) {
  switch (kind) {
  case rt::InitKind::Zeros: return "Zeros";
  case rt::InitKind::Ones: return "Ones";
  case rt::InitKind::Constant: return "Constant";
  case rt::InitKind::Normal: return "Normal";
  case rt::InitKind::TruncNormal: return "TruncNormal";
  case rt::InitKind::Uniform: return "Uniform";
  }
  return "Zeros";
}

/// The kernels of a model, with library names shared by configuration.
struct Plan {
  std::vector<KernelCall> calls;
  std::vector<std::string> library;           // per call
  std::vector<const KernelCall *> libraries;  // first call of each library
  llvm::DenseMap<Value, int> ids;             // activation ids; 0 = input
  Value output;
};

FailureOr<Plan> plan(func::FuncOp model, const Target &target) {
  Plan p;
  if (model.isExternal() || model.getNumArguments() != 1 ||
      model.getNumResults() != 1)
    return model.emitError("'") << model.getSymName()
                                << "' is not a model: it must take one tensor "
                                   "and return one";
  auto inputType = llvm::cast<RankedTensorType>(model.getArgument(0).getType());
  if (inputType.getRank() < 1 || !inputType.isDynamicDim(0) ||
      inputType.getNumDynamicDims() != 1)
    return model.emitError("the input of '")
           << model.getSymName() << "' must be " << describeType(inputType)
           << " with only a dynamic batch";
  p.ids[model.getArgument(0)] = 0;
  llvm::StringMap<std::string> byConfiguration;
  int next = 1;
  for (Operation &op : model.getBody().front()) {
    if (llvm::isa<WeightOp>(op))
      continue;
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      p.output = ret.getOperand(0);
      break;
    }
    if (auto choice = llvm::dyn_cast<ChoiceOp>(op))
      return choice.emitError("layer '")
             << choice.getLayer()
             << "' is a search choice: code can only be generated for a "
                "model with every candidate fixed";
    auto kernel = llvm::dyn_cast<KernelOp>(op);
    if (!kernel)
      return op.emitError("code generation needs every op inside a "
                          "quadra.kernel; run --quadra-form-kernels first");
    FailureOr<KernelCall> call = describeKernel(kernel, target);
    if (failed(call))
      return failure();
    std::string key = call->configuration();
    auto [it, inserted] = byConfiguration.try_emplace(
        key, "qdsl_k" + std::to_string(p.libraries.size()));
    p.calls.push_back(*call);
    p.library.push_back(it->second);
    if (inserted)
      p.libraries.push_back(&p.calls.back());
    p.ids[kernel.getResult()] = next++;
  }
  // libraries holds pointers into calls; rebuild them now that calls is final.
  p.libraries.clear();
  llvm::StringMap<bool> seen;
  for (auto [i, call] : llvm::enumerate(p.calls))
    if (seen.try_emplace(p.library[i], true).second)
      p.libraries.push_back(&call);
  if (!p.output || p.output == model.getArgument(0))
    return model.emitError("'") << model.getSymName()
                                << "' computes nothing to generate code for";
  return p;
}

bool writeFile(const std::string &path, const std::string &text,
               std::string &error) {
  return rt::writeFileAtomically(path, text, error);
}

std::string kernelsSource(func::FuncOp model, const Plan &p,
                          const Target &target, const ProjectOptions &options) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "// Generated by qdsl from " << options.source << ": model "
     << model.getSymName() << ", target " << target.name << ".\n"
     << "// The model's weights and its kernels in order; the rest of the\n"
     << "// model is qdsl_model.cpp. Do not edit: recompile the model.\n\n"
     << "#include \"qdsl_model_internal.h\"\n\n";
  for (const KernelCall *call : p.libraries) {
    (void)call;
  }
  for (size_t i = 0; i < p.libraries.size(); ++i)
    os << "#include \"qdsl_k" << i << ".h\"\n";
  os << "\nnamespace qdsl_model {\n\n";
  auto outputType = model.getResultTypes()[0];
  os << "const ModelInfo kModelInfo = {" << cString(model.getSymName()) << ", "
     << cString(options.source) << ", " << cString(target.name) << ", "
     << shapeList(exampleShape(model.getArgument(0).getType())) << ", "
     << shapeList(exampleShape(outputType)) << "};\n\n";

  os << "const std::vector<WeightSpec> kWeightSpecs = {\n";
  for (const rt::WeightInfo &w : rt::listWeights(model))
    os << "    {" << cString(w.name) << ", " << shapeList(w.shape)
       << ", qdsl::rt::InitKind::" << initName(w.init.kind) << ", "
       << formatFloat(w.init.value) << "},\n";
  os << "};\n\n";

  os << "const std::vector<PackSpec> kPackSpecs = {\n";
  llvm::StringMap<int> packs;
  for (const KernelCall &call : p.calls)
    for (const KernelArgument &arg : call.inputs)
      if (arg.view == View::PackedWeight && packs.try_emplace(arg.weight, arg.panel).second)
        os << "    {" << cString(arg.weight) << ", " << arg.panel << "},\n";
  os << "};\n\n";

  // Where each activation is last read, to give its memory back.
  llvm::DenseMap<Value, size_t> lastUse;
  for (auto [i, call] : llvm::enumerate(p.calls))
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation)
        lastUse[arg.activation] = i;

  os << "bool run_kernels(Pass &pass) {\n";
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    os << "    {  // " << call.name << " (" << call.family << ")\n";
    std::vector<std::string> args;
    for (auto [j, arg] : llvm::enumerate(call.inputs)) {
      std::string name = "a" + std::to_string(j);
      switch (arg.view) {
      case View::Image:
      case View::Rows:
        os << "        auto " << name << " = pass."
           << (arg.view == View::Image ? "image" : "rows") << "("
           << p.ids.lookup(arg.activation) << ", "
           << shapeList(exampleShape(arg.activation.getType())) << ");\n";
        args.push_back(name);
        break;
      case View::Weight:
        args.push_back("pass.weight(" + cString(arg.weight) + ")");
        break;
      case View::PackedWeight:
        args.push_back("pass.packed(" + cString(arg.weight) + ")");
        break;
      }
    }
    int id = call.result == p.output ? -1 : p.ids.lookup(call.result);
    os << "        auto out = pass."
       << (call.outputView == View::Image ? "new_image" : "new_rows") << "(" << id
       << ", " << shapeList(exampleShape(call.result.getType())) << ");\n";
    os << "        if (!pass.run(" << cString(call.name) << ", "
       << cString(call.family) << ", out, [&] { return " << p.library[i] << "(";
    for (const std::string &a : args)
      os << a << ", ";
    os << "out); }))\n            return false;\n";
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation && lastUse.lookup(arg.activation) == i &&
          p.ids.lookup(arg.activation) > 0)
        os << "        pass.release(" << p.ids.lookup(arg.activation) << ");\n";
    os << "    }\n";
  }
  os << "    return true;\n}\n\n}  // namespace qdsl_model\n";
  return s;
}

std::string cmakeSource(func::FuncOp model, const Plan &p, const Target &target,
                        const ProjectOptions &options,
                        const std::vector<std::string> &generators) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "# Generated by qdsl from " << options.source << ": model "
     << model.getSymName() << ", target " << target.name << ".\n"
     << "# Build with `qdsl build DIR`, or cmake -S DIR -B DIR/build -G Ninja "
        "&& cmake --build DIR/build.\n"
     << "cmake_minimum_required(VERSION 3.20)\n"
     << "project(" << model.getSymName() << " C CXX)\n\n"
     << "set(CMAKE_CXX_STANDARD 17)\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
     << "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n\n"
     << "find_package(Halide 14 REQUIRED)\n"
     << "find_package(nlohmann_json 3 REQUIRED)\n\n"
     << "# Halide target: explicit, never `host`.\n"
     << "set(QDSL_HALIDE_TARGET \"" << target.halideTarget << "\")\n\n"
     << "add_halide_generator(qdsl_generators SOURCES";
  for (const std::string &g : generators)
    os << " generators/" << g;
  os << ")\ntarget_include_directories(qdsl_generators PRIVATE generators)\n\n";
  os << "# One function per distinct kernel configuration, sharing one runtime.\n";
  for (auto [i, call] : llvm::enumerate(p.libraries)) {
    os << "add_halide_library(qdsl_k" << i << " FROM qdsl_generators GENERATOR "
       << call->generator << "\n  TARGETS ${QDSL_HALIDE_TARGET}";
    if (i > 0)
      os << " USE_RUNTIME qdsl_k0.runtime";
    if (!options.autoscheduler.empty())
      os << " AUTOSCHEDULER Halide::" << options.autoscheduler;
    os << "\n  PARAMS";
    for (const auto &[name, value] : call->params)
      os << " " << name << "=" << value;
    os << ")\n";
  }
  os << "set(QDSL_KERNELS";
  for (size_t i = 0; i < p.libraries.size(); ++i)
    os << " qdsl_k" << i;
  os << ")\n\n";
  if (target.runnableHere) {
    os << "add_library(qdsl_model STATIC model_kernels.cpp qdsl_model.cpp\n"
       << "            runtime/TensorFiles.cpp runtime/WeightInit.cpp)\n"
       << "target_include_directories(qdsl_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n"
       << "target_link_libraries(qdsl_model PUBLIC ${QDSL_KERNELS} "
          "nlohmann_json::nlohmann_json)\n\n"
       << "add_executable(predict predict.cpp)\n"
       << "target_link_libraries(predict PRIVATE qdsl_model)\n";
  } else {
    os << "# The kernels are object code for another machine: build them, link "
          "nothing here.\n"
       << "add_custom_target(qdsl_kernels ALL DEPENDS ${QDSL_KERNELS})\n";
  }
  return s;
}

} // namespace

FailureOr<std::vector<KernelListing>> listKernels(func::FuncOp model,
                                                  const Target &target) {
  FailureOr<Plan> p = plan(model, target);
  if (failed(p))
    return failure();
  std::vector<KernelListing> listing;
  for (auto [i, call] : llvm::enumerate(p->calls)) {
    KernelListing entry;
    entry.name = call.name;
    entry.family = call.family;
    entry.configuration = call.configuration();
    entry.library = p->library[i];
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation)
        entry.inputs += (entry.inputs.empty() ? "" : ", ") +
                        describeType(arg.activation.getType());
    entry.output = describeType(call.result.getType());
    auto kernel = call.result.getDefiningOp<KernelOp>();
    FailureOr<uint64_t> macs = kernel.getMacs(1);
    entry.macs = succeeded(macs) ? *macs : 0;
    listing.push_back(entry);
  }
  return listing;
}

LogicalResult writeProject(func::FuncOp model, const Target &target,
                           const std::string &directory,
                           const ProjectOptions &options) {
  FailureOr<Plan> p = plan(model, target);
  if (failed(p))
    return failure();
  std::set<std::string> used;
  for (const KernelCall *call : p->libraries)
    used.insert(generatorSource(call->generator));
  std::vector<std::string> generators(used.begin(), used.end());

  auto fail = [&](const std::string &message) {
    return model.emitError(message);
  };
  for (const char *sub : {"", "/generators", "/runtime"})
    if (std::error_code ec = llvm::sys::fs::create_directories(directory + sub))
      return fail("cannot create '" + directory + sub + "': " + ec.message());
  std::string error;
  for (const EmbeddedFile &file : embeddedFiles) {
    std::string relative = projectPath(file.path);
    if (llvm::StringRef(relative).starts_with("generators/") &&
        llvm::StringRef(relative).ends_with(".cpp") &&
        !used.count(llvm::sys::path::filename(relative).str()))
      continue;
    if (!writeFile(directory + "/" + relative, std::string(file.data, file.size), error))
      return fail(error);
  }
  if (!writeFile(directory + "/model_kernels.cpp",
                 kernelsSource(model, *p, target, options), error) ||
      !writeFile(directory + "/CMakeLists.txt",
                 cmakeSource(model, *p, target, options, generators), error))
    return fail(error);
  return success();
}

} // namespace qdsl::codegen
