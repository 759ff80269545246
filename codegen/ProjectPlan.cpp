//===- ProjectPlan.cpp - the plan of a project's kernels ------------------===//

#include "codegen/ProjectParts.h"

#include "codegen/CString.h"
#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"
#include "runtime/reference/ReferenceExecutor.h"

#include <map>

using namespace mlir;
using namespace qdsl::quadra;

namespace qdsl::codegen::project {

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

KernelPath pathOf(Operation *op) {
  KernelPath path;
  if (auto tag = op ? op->getAttrOfType<DenseI64ArrayAttr>(kPathAttr) : DenseI64ArrayAttr()) {
    path.layer = tag[0];
    path.candidate = tag[1];
    path.kind = tag.size() > 2 ? tag[2] : 0;
  }
  return path;
}

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

/// `{28, 28, 1}` for an activation (one example), the whole shape
/// otherwise, and whether it carries the batch.
std::string viewShape(Value v) {
  if (isBatched(v))
    return shapeList(exampleShape(v.getType()));
  return shapeList(llvm::cast<RankedTensorType>(v.getType()).getShape());
}

namespace {

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

} // namespace

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
  // The target's CPU features, tested where the program runs (the test
  // needs each name as a literal).
  os << "const char *missing_cpu_feature() {\n";
  for (const std::string &feature : target.cpuFeatures)
    os << "    if (!__builtin_cpu_supports(" << cString(feature) << "))\n"
       << "        return " << cString(feature) << ";\n";
  os << "    return nullptr;\n}\n\n";
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

} // namespace qdsl::codegen::project
