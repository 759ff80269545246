//===- ProjectWriter.cpp - a self-contained CMake project per model -------===//

#include "codegen/ProjectWriter.h"

#include "codegen/CString.h"
#include "codegen/KernelCalls.h"
#include "codegen/KernelFamilies.h"
#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"
#include "runtime/reference/ReferenceExecutor.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen {

namespace {

#include "codegen/ProjectFiles.inc"

// The embedded files are the three folders whose code runs in (or builds)
// a generated project; each keeps its place there:
//   codegen/halide/X   -> generators/X   (the Halide generators)
//   codegen/project/X  -> X              (model library, predict, train)
//   runtime/shipped/X  -> runtime/shipped/X
constexpr llvm::StringLiteral kGeneratorFolder = "codegen/halide/";

/// Where a repository file goes in a generated project.
std::string projectPath(llvm::StringRef repoPath) {
  if (repoPath.consume_front(kGeneratorFolder))
    return ("generators/" + repoPath).str();
  if (repoPath.consume_front("codegen/project/"))
    return repoPath.str();
  if (repoPath.consume_front("codegen/cuda/"))
    return ("cuda/" + repoPath).str();
  return repoPath.str();
}

/// One generator per file, named after it.
std::string generatorSource(llvm::StringRef generator) {
  return (generator + "_generator.cpp").str();
}

llvm::StringRef embeddedFile(llvm::StringRef repoPath) {
  for (const EmbeddedFile &file : embeddedFiles)
    if (repoPath == file.path)
      return llvm::StringRef(file.data, file.size);
  return {};
}

/// The Halide generator of a call: describeKernel() chose an implementation
/// the target's back end has.
llvm::StringRef halideGenerator(const KernelCall &call) {
  return lookupKernelImplementation(call.implementation)->halideGenerator;
}

/// A generator source and every project header it includes, directly or
/// not ("x.h" next to it, or "runtime/shipped/x.h"): what its object code
/// depends on besides its parameters.
std::vector<std::string> generatorFiles(llvm::StringRef generator) {
  std::vector<std::string> files = {(kGeneratorFolder + generatorSource(generator)).str()};
  for (size_t i = 0; i < files.size(); ++i) {
    llvm::SmallVector<llvm::StringRef> lines;
    embeddedFile(files[i]).split(lines, '\n');
    for (llvm::StringRef line : lines) {
      if (!line.consume_front("#include \""))
        continue;
      llvm::StringRef header = line.take_until([](char c) { return c == '"'; });
      for (std::string candidate : {(kGeneratorFolder + header).str(), header.str()})
        if (!embeddedFile(candidate).empty()) {
          if (!llvm::is_contained(files, candidate))
            files.push_back(candidate);
          break;
        }
    }
  }
  return files;
}

/// The files only a project that trains needs: train.cpp, and the training
/// runtime's sources and headers, as qdsl_runtime.cmake lists them.
std::set<std::string> trainingOnlyFiles() {
  std::set<std::string> files = {"codegen/project/train.cpp", "codegen/project/program_support.h"};
  llvm::SmallVector<llvm::StringRef> lines;
  embeddedFile("runtime/shipped/qdsl_runtime.cmake").split(lines, '\n');
  for (llvm::StringRef line : lines)
    if (line.consume_front("set(QDSL_TRAINING_RUNTIME_SOURCES ")) {
      llvm::SmallVector<llvm::StringRef> sources;
      line.take_until([](char c) { return c == ')'; }).split(sources, ' ', -1, false);
      for (llvm::StringRef source : sources) {
        files.insert(("runtime/shipped/" + source).str());
        files.insert(("runtime/shipped/" + source.drop_back(4) + ".h").str());
      }
    }
  return files;
}

std::string hexDigest(llvm::StringRef text) {
  std::array<uint8_t, 32> hash = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < 8; ++i) {
    hex += digits[hash[i] >> 4];
    hex += digits[hash[i] & 15];
  }
  return hex;
}

} // namespace

std::string generatorsDigest() {
  std::string all = "qdsl generators v1\n";
  for (const EmbeddedFile &file : embeddedFiles)
    if (llvm::StringRef(file.path).starts_with(kGeneratorFolder))
      all += std::string(file.path) + "\n" + std::string(file.data, file.size);
  return hexDigest(all);
}

namespace {

/// The compiled function of `call`: named after a hash of everything that
/// determines its object code, so that equal names mean equal code in any
/// project and the kernel cache (qdsl_kernels.cmake) can share it.
std::string kernelFunctionName(const KernelCall &call, const Target &target,
                               llvm::StringRef autoscheduler) {
  std::string key = "qdsl kernel v2\n";
  key += target.halideTarget + "\n" + autoscheduler.str() + "\n" +
         call.configuration() + "\n";
  for (const std::string &file : generatorFiles(halideGenerator(call)))
    key += file + "\n" + embeddedFile(file).str();
  return "qk_" + hexDigest(key);
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

/// The supernet path a kernel belongs to (quadra.path): it runs when
/// candidate `candidate` of search layer `layer` is on the current path
/// (kind 0), or is recomputed for its gate gradient (kind 1).
struct KernelPath {
  int64_t layer = -1, candidate = -1, kind = 0;
  bool any() const { return layer >= 0; }
  bool operator!=(const KernelPath &o) const {
    return layer != o.layer || candidate != o.candidate || kind != o.kind;
  }
};

KernelPath pathOf(Operation *op) {
  KernelPath path;
  if (auto tag = op ? op->getAttrOfType<DenseI64ArrayAttr>(kPathAttr) : DenseI64ArrayAttr()) {
    path.layer = tag[0];
    path.candidate = tag[1];
    path.kind = tag.size() > 2 ? tag[2] : 0;
  }
  return path;
}

/// The kernels of one function (the model, or its training step) in order.
struct FunctionPlan {
  func::FuncOp function;
  std::vector<KernelCall> calls;
  std::vector<std::string> library;  // per call
  /// Per call: its supernet path, and per result whether something off
  /// that path reads it (so a skipped kernel must leave zeros there).
  std::vector<KernelPath> paths;
  std::vector<std::vector<bool>> escaping;
  /// Activation ids (runtime/shipped/Contract.h: the images argument, the
  /// model's output, the gradients); the labels of a training step have
  /// none (View::Labels).
  llvm::DenseMap<Value, int> ids;
  std::vector<Value> returned;
};

/// A project: the model's kernels, its training step's if compiled with
/// --train, and the compiled functions they share by configuration.
struct Plan {
  FunctionPlan forward;
  std::optional<FunctionPlan> train;
  std::vector<const KernelCall *> libraries;  // first call of each library
};

LogicalResult planFunction(func::FuncOp function, bool isTrainStep,
                           const Target &target, llvm::StringRef autoscheduler,
                           llvm::StringMap<std::string> &byConfiguration,
                           FunctionPlan &p) {
  p.function = function;
  unsigned arguments = isTrainStep ? 2 : 1;
  if (function.isExternal() || function.getNumArguments() != arguments ||
      (!isTrainStep && function.getNumResults() != 1))
    return function.emitError("'") << function.getSymName()
                                   << "' is not a model: it must take one tensor "
                                      "and return one";
  auto inputType = llvm::cast<RankedTensorType>(function.getArgument(0).getType());
  if (inputType.getRank() < 1 || !inputType.isDynamicDim(0) ||
      inputType.getNumDynamicDims() != 1)
    return function.emitError("the input of '")
           << function.getSymName() << "' must be " << describeType(inputType)
           << " with only a dynamic batch";
  p.ids[function.getArgument(0)] = contract::kInputActivation;
  int next = contract::kFirstArenaActivation;
  for (Operation &op : function.getBody().front()) {
    if (llvm::isa<WeightOp>(op))
      continue;
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      p.returned.assign(ret.getOperands().begin(), ret.getOperands().end());
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
    auto [it, inserted] = byConfiguration.try_emplace(
        call->configuration(), kernelFunctionName(*call, target, autoscheduler));
    p.calls.push_back(*call);
    p.library.push_back(it->second);
    KernelPath path = pathOf(kernel);
    std::vector<bool> escapes;
    for (Value result : kernel.getOutputs())
      escapes.push_back(path.any() && llvm::any_of(result.getUsers(), [&](Operation *user) {
                          return isa<func::ReturnOp>(user) || pathOf(user) != path;
                        }));
    p.paths.push_back(path);
    p.escaping.push_back(std::move(escapes));
    for (Value result : kernel.getOutputs())
      p.ids[result] = next++;
  }
  for (Value v : p.returned)
    if (!p.ids.count(v) || (!isTrainStep && v == function.getArgument(0)))
      return function.emitError("'") << function.getSymName()
                                     << "' returns a value no kernel computes";
  if (!isTrainStep) {
    p.ids[p.returned[0]] = contract::kOutputActivation;
    return success();
  }
  // The gradients go straight into the caller's tensors (their own ids, in
  // order): no arena space, no copy. A value returned twice stays in the
  // arena and is copied.
  llvm::DenseMap<Value, int> returns;
  for (Value v : p.returned)
    ++returns[v];
  for (size_t g = 2; g < p.returned.size(); ++g)
    if (returns[p.returned[g]] == 1)
      p.ids[p.returned[g]] = contract::gradientActivation(g - 2);
  return success();
}

FailureOr<Plan> plan(func::FuncOp model, func::FuncOp trainStep,
                     const Target &target, llvm::StringRef autoscheduler) {
  Plan p;
  llvm::StringMap<std::string> byConfiguration;
  if (failed(planFunction(model, false, target, autoscheduler, byConfiguration, p.forward)))
    return failure();
  if (trainStep) {
    p.train.emplace();
    if (failed(planFunction(trainStep, true, target, autoscheduler, byConfiguration, *p.train)))
      return failure();
  }
  llvm::StringMap<bool> seen;
  for (FunctionPlan *f : {&p.forward, p.train ? &*p.train : nullptr})
    if (f)
      for (auto [i, call] : llvm::enumerate(f->calls))
        if (seen.try_emplace(f->library[i], true).second)
          p.libraries.push_back(&call);
  return p;
}

/// Writes `path` unless it already holds `text`: recompiling a project
/// leaves unchanged files alone, so its build redoes only what changed.
bool writeFile(const std::string &path, const std::string &text,
               std::string &error) {
  if (auto existing = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                                  /*RequiresNullTerminator=*/false))
    if ((*existing)->getBuffer() == text)
      return true;
  return rt::writeFileAtomically(path, text, error);
}

/// `{28, 28, 1}` for an activation (one example), the whole shape
/// otherwise, and whether it carries the batch.
std::string viewShape(Value v) {
  if (isBatched(v))
    return shapeList(exampleShape(v.getType()));
  return shapeList(llvm::cast<RankedTensorType>(v.getType()).getShape());
}

/// The activations of a function with their sizes and lifetimes (kernel
/// positions; returned values live to the end), for the arena planner.
void emitBufferTable(const FunctionPlan &p, llvm::StringRef name, raw_ostream &os) {
  struct Entry {
    uint64_t exampleBytes = 0, fixedBytes = 0;
    int64_t first = 0, last = 0;
    int64_t group = -1, member = -1;
  };
  std::map<int, Entry> entries;
  auto bytes = [](Value v) {
    auto shape = llvm::cast<RankedTensorType>(v.getType()).getShape();
    uint64_t n = 4;
    for (size_t i = isBatched(v) ? 1 : 0; i < shape.size(); ++i)
      n *= static_cast<uint64_t>(shape[i]);
    return n;
  };
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    for (Value result : call.results) {
      int id = p.ids.lookup(result);
      if (!contract::isArenaActivation(id))
        continue;
      Entry &e = entries[id];
      (isBatched(result) ? e.exampleBytes : e.fixedBytes) = bytes(result);
      e.first = e.last = static_cast<int64_t>(i);
      // Only one candidate of a search layer is on the path: the tensors
      // that never leave it may share memory with the other candidates'.
      const KernelPath &path = p.paths[i];
      size_t j = llvm::find(call.results, result) - call.results.begin();
      if (path.any() && path.kind == 0 && !p.escaping[i][j]) {
        e.group = path.layer;
        e.member = path.candidate;
      }
    }
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation && contract::isArenaActivation(p.ids.lookup(arg.activation)))
        entries[p.ids.lookup(arg.activation)].last = static_cast<int64_t>(i);
  }
  for (Value v : p.returned)
    if (contract::isArenaActivation(p.ids.lookup(v)))
      entries[p.ids.lookup(v)].last = static_cast<int64_t>(p.calls.size());
  os << "const std::vector<BufferSpec> " << name << " = {\n";
  for (const auto &[id, e] : entries)
    os << "    {" << id << ", " << e.exampleBytes << ", " << e.fixedBytes << ", " << e.first
       << ", " << e.last << ", " << e.group << ", " << e.member << "},\n";
  os << "};\n\n";
}

/// The body of run_kernels or run_train_kernels.
void emitKernelCalls(const FunctionPlan &p, raw_ostream &os) {
  auto access = [&](View view, Value v, bool fresh) {
    std::string batched = isBatched(v) ? "" : ", false";
    std::string prefix = fresh ? "new_" : "";
    switch (view) {
    case View::Image:
      return "pass." + prefix + "image(" + std::to_string(p.ids.lookup(v)) + ", " +
             viewShape(v) + ")";
    case View::Rows:
      return "pass." + prefix + "rows(" + std::to_string(p.ids.lookup(v)) + ", " +
             viewShape(v) + batched + ")";
    case View::Tensor:
      return "pass." + prefix + "tensor(" + std::to_string(p.ids.lookup(v)) + ", " +
             viewShape(v) + ")";
    default:
      return std::string("pass.labels()");
    }
  };
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    os << "    {  // " << call.name << " (" << call.family << ")\n";
    std::vector<std::string> args;
    for (auto [j, arg] : llvm::enumerate(call.inputs)) {
      std::string name = "a" + std::to_string(j);
      switch (arg.view) {
      case View::Weight:
        args.push_back("pass.weight(" + cString(arg.weight) + ")");
        break;
      case View::PackedWeight:
        args.push_back("pass.packed(" + cString(arg.weight) + ", " +
                       (arg.transposed ? "true" : "false") + ")");
        break;
      case View::Labels:
        os << "        auto " << name << " = pass.labels();\n";
        args.push_back(name);
        break;
      default:
        os << "        auto " << name << " = " << access(arg.view, arg.activation, false)
           << ";\n";
        args.push_back(name);
        break;
      }
    }
    std::string outputs, zeroed;
    for (auto [j, result] : llvm::enumerate(call.results)) {
      std::string name = "out" + std::to_string(j);
      os << "        auto " << name << " = " << access(call.outputViews[j], result, true)
         << ";\n";
      args.push_back(name);
      outputs += (j ? ", &" : "&") + name;
      if (p.escaping[i][j])
        zeroed += (zeroed.empty() ? "&" : ", &") + name;
    }
    const KernelPath &path = p.paths[i];
    if (path.any())
      os << "        if (!pass.on_path(" << path.layer << ", " << path.candidate << ", "
         << path.kind << "))\n            pass.zero({" << zeroed << "});\n        else ";
    else
      os << "        ";
    os << "if (!pass.run(" << cString(call.name) << ", " << cString(call.family)
       << ", {" << outputs << "}, [&] { return " << p.library[i] << "(";
    for (auto [j, a] : llvm::enumerate(args))
      os << (j ? ", " : "") << a;
    os << "); }))\n            return false;\n";
    os << "    }\n";
  }
  os << "    return true;\n";
}

/// The tables of qdsl_model_tables.h both back ends' model_kernels.cpp
/// define: the model's name and shapes, its weights, and its training step's
/// results (kSearchLayers is the Halide back end's alone to fill).
void emitModelTables(const Plan &p, const Target &target, const ProjectOptions &options,
                     raw_ostream &os) {
  func::FuncOp model = p.forward.function;
  os << "const ModelInfo kModelInfo = {" << cString(model.getSymName()) << ", "
     << cString(options.source) << ", " << cString(target.name) << ", "
     << shapeList(exampleShape(model.getArgument(0).getType())) << ", "
     << shapeList(exampleShape(model.getResultTypes()[0])) << "};\n\n";
  os << "const std::vector<WeightSpec> kWeightSpecs = {\n";
  for (const rt::WeightInfo &w : rt::listWeights(model))
    os << "    {" << cString(w.name) << ", " << shapeList(w.shape)
       << ", qdsl::rt::InitKind::" << initName(w.init.kind) << ", "
       << formatFloat(w.init.value) << "},\n";
  os << "};\n\n";
  os << "// Activation sizes (per example, fixed) and lifetimes (first and last\n"
     << "// kernel) by id: the model library lays them out in one arena.\n";
  emitBufferTable(p.forward, "kForwardBuffers", os);
  if (p.train)
    emitBufferTable(*p.train, "kTrainBuffers", os);
  else
    os << "const std::vector<BufferSpec> kTrainBuffers = {};\n\n";
  os << "// The training step: its results are the loss, the logits and one\n"
     << "// gradient per weight of kGradientNames.\n"
     << "const std::vector<int> kTrainResults = {";
  if (p.train)
    for (auto [i, v] : llvm::enumerate(p.train->returned))
      os << (i ? ", " : "") << p.train->ids.lookup(v);
  os << "};\n";
  os << "const std::vector<std::string> kGradientNames = {";
  if (p.train)
    if (auto names = p.train->function->getAttrOfType<ArrayAttr>(kGradientsAttr))
      for (auto [i, name] : llvm::enumerate(names.getAsValueRange<StringAttr>()))
        os << (i ? ", " : "") << cString(name);
  os << "};\n";
  os << "const char *const kTrainingSetup = "
     << cString(p.train ? options.trainingSetup : std::string()) << ";\n\n";
}

std::string kernelsSource(const Plan &p, const Target &target,
                          const ProjectOptions &options) {
  func::FuncOp model = p.forward.function;
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "// Generated by qdsl from " << options.source << ": model "
     << model.getSymName() << ", target " << target.name << ".\n"
     << "// The model's weights and its kernels in order";
  if (p.train)
    os << ", and its training step's";
  os << "; the rest of the\n"
     << "// model is qdsl_model.cpp. Do not edit: recompile the model.\n\n"
     << "#include \"qdsl_model_internal.h\"\n\n";
  for (const KernelCall *call : p.libraries)
    os << "#include \"" << kernelFunctionName(*call, target, options.autoscheduler)
       << ".h\"\n";
  os << "\nnamespace qdsl_model {\n\n";
  emitModelTables(p, target, options, os);
  os << "const std::vector<PackSpec> kPackSpecs = {\n";
  std::set<std::pair<std::string, bool>> packs;
  for (const FunctionPlan *f : {&p.forward, p.train ? &*p.train : nullptr})
    if (f)
      for (const KernelCall &call : f->calls)
        for (const KernelArgument &arg : call.inputs)
          if (arg.view == View::PackedWeight &&
              packs.insert({arg.weight, arg.transposed}).second)
            os << "    {" << cString(arg.weight) << ", " << arg.panel << ", "
               << (arg.transposed ? "true" : "false") << "},\n";
  os << "};\n\n";
  os << "// The search layers of a supernet (--quadra-supernet): each one's\n"
     << "// candidates and the weights that gate them.\n"
     << "const std::vector<SearchLayer> kSearchLayers = {\n";
  if (auto layers = model->getAttrOfType<ArrayAttr>(kSupernetAttr))
    for (auto layer : layers.getAsRange<DictionaryAttr>()) {
      os << "    {" << cString(layer.getAs<StringAttr>("layer").getValue()) << ", {";
      for (auto [i, c] : llvm::enumerate(
               layer.getAs<ArrayAttr>("candidates").getAsValueRange<StringAttr>()))
        os << (i ? ", " : "") << cString(c);
      os << "}, {";
      for (auto [i, g] :
           llvm::enumerate(layer.getAs<ArrayAttr>("gates").getAsValueRange<StringAttr>()))
        os << (i ? ", " : "") << cString(g);
      os << "}},\n";
    }
  os << "};\n\n";
  os << "bool run_kernels(Pass &pass) {\n";
  emitKernelCalls(p.forward, os);
  os << "}\n\n";
  os << "bool run_train_kernels(Pass &pass) {\n";
  if (p.train)
    emitKernelCalls(*p.train, os);
  else
    os << "    (void)pass;\n    return false;\n";
  os << "}\n\n}  // namespace qdsl_model\n";
  return s;
}

std::string cmakeSource(const Plan &p, const Target &target,
                        const ProjectOptions &options,
                        const std::vector<std::string> &generators) {
  func::FuncOp model = p.forward.function;
  std::string s;
  llvm::raw_string_ostream os(s);
  os << kProjectMarker << " from " << options.source << ": model "
     << model.getSymName() << ", target " << target.name << ".\n"
     << "# Build with `qdsl build DIR`, or cmake -S DIR -B DIR/build -G Ninja "
        "&& cmake --build DIR/build.\n"
     << "cmake_minimum_required(VERSION 3.21)\n"
     << "project(" << model.getSymName() << " C CXX)\n\n"
     << "set(CMAKE_CXX_STANDARD 17)\nset(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
     << "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n\n";
  std::string runtime = "qk_runtime_" + hexDigest("qdsl runtime v1\n" + target.halideTarget);
  std::vector<std::string> names;
  for (const KernelCall *call : p.libraries)
    names.push_back(kernelFunctionName(*call, target, options.autoscheduler));
  auto emitKernelList = [&] {
    os << "set(QDSL_KERNELS";
    for (const std::string &name : names)
      os << " " << name;
    os << ")\n";
  };
  const bool cross = !target.runnableHere && !target.crossProcessor.empty();
  if (cross) {
    os << "# The programs for the " << target.crossProcessor
       << " machine come from a second build of this folder\n"
       << "# with a cross compiler (qdsl_cross.cmake), which stops here.\n";
    emitKernelList();
    os << "if(QDSL_CROSS_BUILD)\n"
       << "  include(qdsl_cross.cmake)\n"
       << "  qdsl_cross_build_programs(" << runtime << " ${QDSL_KERNELS})\n"
       << "  return()\n"
       << "endif()\n\n";
  }
  os << "find_package(Halide 14 REQUIRED)\n";
  os << "\n# Halide target: explicit, never `host`.\n"
     << "set(QDSL_HALIDE_TARGET \"" << target.halideTarget << "\")\n\n"
     << "add_halide_generator(qdsl_generators SOURCES";
  for (const std::string &g : generators)
    os << " generators/" << g;
  os << ")\n# Generators include their helpers and runtime/shipped/Contract.h.\n"
     << "target_include_directories(qdsl_generators PRIVATE generators "
        "${CMAKE_CURRENT_SOURCE_DIR})\n"
     << "# One generator per file: Halide.h is parsed once for all of them.\n"
     << "target_precompile_headers(qdsl_generators PRIVATE <Halide.h>)\n\n";
  os << "set_target_properties(qdsl_generators PROPERTIES EXCLUDE_FROM_ALL ON)\n\n";
  os << "# Compiled kernels come from (and go to) this per-user cache; empty\n"
     << "# disables it. See qdsl_kernels.cmake.\n"
     << "set(QDSL_KERNEL_CACHE " << cString(options.kernelCache)
     << " CACHE PATH \"Cache of compiled qdsl kernels\")\n"
     << "include(qdsl_kernels.cmake)\n\n";
  os << "# One function per distinct kernel configuration, sharing one runtime.\n"
     << "qdsl_halide_runtime(" << runtime << " ${QDSL_HALIDE_TARGET})\n";
  for (auto [call, name] : llvm::zip(p.libraries, names)) {
    os << "qdsl_kernel(" << name << " GENERATOR " << halideGenerator(*call)
       << " TARGET ${QDSL_HALIDE_TARGET} RUNTIME " << runtime;
    if (!options.autoscheduler.empty())
      os << " AUTOSCHEDULER " << options.autoscheduler;
    os << "\n  PARAMS";
    for (const auto &[name, value] : call->params)
      os << " " << name << "=" << value;
    os << ")\n";
  }
  os << "qdsl_report_kernels()\n";
  if (!cross)
    emitKernelList();
  os << "\n";
  if (target.runnableHere) {
    os << "# The runtime: tensor files, initial weights, arena planner";
    if (p.train)
      os << "; data sets,\n# AdamW, checkpoints and progress for train.\n"
         << "set(QDSL_RUNTIME_TRAINING ON)\n";
    else
      os << ".\n";
    os << "include(runtime/shipped/qdsl_runtime.cmake)\n"
       << "find_package(fmt REQUIRED)\n\n"
       << "add_library(qdsl_model STATIC model_kernels.cpp qdsl_model.cpp qdsl_model_common.cpp)\n"
       << "target_include_directories(qdsl_model PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n"
       << "target_link_libraries(qdsl_model PUBLIC ${QDSL_KERNELS} qdsl_runtime fmt::fmt)\n\n"
       << "add_executable(predict predict.cpp)\n"
       << "target_link_libraries(predict PRIVATE qdsl_model)\n";
    if (p.train)
      os << "\n# The training program.\n"
         << "add_executable(train train.cpp)\n"
         << "target_link_libraries(train PRIVATE qdsl_model qdsl_training_runtime)\n";
    if (p.train && !options.searchConstraints.empty())
      os << "\n# The architecture search (search_constraints.h: the latency model).\n"
         << "add_executable(search search.cpp)\n"
         << "target_link_libraries(search PRIVATE qdsl_model qdsl_training_runtime)\n";
  } else {
    os << "# The kernels are object code for another machine: build them here";
    if (cross)
      os << ",\n# and the programs with a cross compiler when there is one.\n";
    else
      os << ".\n";
    os << "add_custom_target(qdsl_kernels ALL)\n"
       << "foreach(kernel IN LISTS QDSL_KERNELS ITEMS " << runtime << ")\n"
       << "  if(TARGET ${kernel}.update)\n"
       << "    add_dependencies(qdsl_kernels ${kernel}.update)\n"
       << "  endif()\n"
       << "endforeach()\n";
    if (cross)
      os << "include(qdsl_cross.cmake)\n"
         << "qdsl_cross_programs(" << target.crossProcessor << " " << target.crossToolPrefix
         << " qdsl_kernels)\n";
  }
  return s;
}

// --- The cuda target (codegen/cuda/): model_kernels.cpp calls the kernels of
// qdsl_cuda.h with named parameters and tensors; CMake builds them with nvcc.

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
      auto weightOf = [&](llvm::StringRef role) {
        for (const KernelArgument &arg : call.inputs)
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

} // namespace

bool isProject(const std::string &directory) {
  auto text = llvm::MemoryBuffer::getFile(directory + "/CMakeLists.txt");
  return text && (*text)->getBuffer().starts_with(kProjectMarker);
}

bool mayWriteProject(const std::string &directory, std::string &error) {
  if (!llvm::sys::fs::exists(directory))
    return true;
  if (!llvm::sys::fs::is_directory(directory)) {
    error = "'" + directory + "' is a file; a project needs a directory";
    return false;
  }
  std::error_code ec;
  llvm::sys::fs::directory_iterator first(directory, ec), end;
  if (ec) {
    error = "cannot read '" + directory + "': " + ec.message();
    return false;
  }
  if (first == end || isProject(directory))
    return true;
  error = "'" + directory + "' holds files that are not a project qdsl wrote (no CMakeLists.txt "
          "it generated); give a new or empty directory, or one of qdsl's projects to rewrite";
  return false;
}

std::string defaultKernelCache() {
  if (const char *dir = std::getenv("QDSL_KERNEL_CACHE"))
    return dir;
  llvm::SmallString<256> path;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    path = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(path, home, ".cache");
  else
    return "";
  llvm::sys::path::append(path, "qdsl", "kernels");
  return std::string(path);
}

FailureOr<std::vector<KernelListing>> listKernels(func::FuncOp function,
                                                  const Target &target) {
  FunctionPlan p;
  llvm::StringMap<std::string> byConfiguration;
  bool isTrainStep = function->hasAttr(kTrainStepOfAttr);
  if (failed(planFunction(function, isTrainStep, target, "", byConfiguration, p)))
    return failure();
  std::vector<KernelListing> listing;
  for (auto [i, call] : llvm::enumerate(p.calls)) {
    KernelListing entry;
    entry.name = call.name;
    entry.family = call.family;
    entry.configuration = call.configuration();
    entry.library = p.library[i];
    for (const KernelArgument &arg : call.inputs)
      if (arg.activation)
        entry.inputs += (entry.inputs.empty() ? "" : ", ") +
                        describeType(arg.activation.getType());
    for (Value result : call.results)
      entry.output += (entry.output.empty() ? "" : ", ") + describeType(result.getType());
    auto kernel = call.results[0].getDefiningOp<KernelOp>();
    FailureOr<uint64_t> macs = kernel.getMacs(1);
    entry.macs = succeeded(macs) ? *macs : 0;
    listing.push_back(entry);
  }
  return listing;
}

LogicalResult writeProject(func::FuncOp model, func::FuncOp trainStep,
                           const Target &target, const std::string &directory,
                           const ProjectOptions &options) {
  FailureOr<Plan> p = plan(model, trainStep, target, options.autoscheduler);
  if (failed(p))
    return failure();
  auto fail = [&](const std::string &message) {
    return model.emitError(message);
  };
  const bool cuda = target.backend == Backend::Cuda;
  if (cuda && !options.searchConstraints.empty())
    return fail("the cuda target does not run architecture searches: search with "
                "--target=x86-64-avx2");
  // The generators the kernels call, and every file they need.
  std::set<std::string> used, generatorFilesUsed;
  if (!cuda)
    for (const KernelCall *call : p->libraries) {
      used.insert(generatorSource(halideGenerator(*call)));
      for (std::string &file : generatorFiles(halideGenerator(*call)))
        generatorFilesUsed.insert(std::move(file));
    }
  std::vector<std::string> generators(used.begin(), used.end());
  std::set<std::string> leftOut =
      trainStep ? std::set<std::string>() : trainingOnlyFiles();
  if (options.searchConstraints.empty())
    leftOut.insert("codegen/project/search.cpp");
  if (target.crossProcessor.empty())
    leftOut.insert("codegen/project/qdsl_cross.cmake");
  // Each back end's model library: the Halide one, or the CUDA one
  // (codegen/cuda/, with the back-end-neutral parts of codegen/project/).
  for (const char *halideOnly : {"codegen/project/qdsl_model.cpp",
                                 "codegen/project/qdsl_model_internal.h",
                                 "codegen/project/qdsl_kernels.cmake",
                                 "codegen/project/qdsl_cross.cmake",
                                 "codegen/project/search.cpp"})
    if (cuda)
      leftOut.insert(halideOnly);
  auto belongs = [&](llvm::StringRef path) {
    if (path.starts_with(kGeneratorFolder))
      return generatorFilesUsed.count(path.str()) > 0;
    if (path.starts_with("codegen/cuda/"))
      return cuda;
    return !leftOut.count(path.str());
  };

  for (const char *sub : {"", cuda ? "/cuda" : "/generators", "/runtime/shipped"})
    if (std::error_code ec = llvm::sys::fs::create_directories(directory + sub))
      return fail("cannot create '" + directory + sub + "': " + ec.message());
  std::string error;
  for (const EmbeddedFile &file : embeddedFiles)
    if (belongs(file.path) &&
        !writeFile(directory + "/" + projectPath(file.path), std::string(file.data, file.size),
                   error))
      return fail(error);
  if (!options.searchConstraints.empty() &&
      !writeFile(directory + "/search_constraints.h", options.searchConstraints, error))
    return fail(error);
  if (cuda) {
    FailureOr<std::string> kernels = cudaKernelsSource(*p, target, options);
    if (failed(kernels))
      return failure();
    if (!writeFile(directory + "/model_kernels.cpp", *kernels, error) ||
        !writeFile(directory + "/CMakeLists.txt", cudaCmakeSource(*p, target, options), error))
      return fail(error);
    return success();
  }
  if (!writeFile(directory + "/model_kernels.cpp",
                 kernelsSource(*p, target, options), error) ||
      !writeFile(directory + "/CMakeLists.txt",
                 cmakeSource(*p, target, options, generators), error))
    return fail(error);
  return success();
}

} // namespace qdsl::codegen
