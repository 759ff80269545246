//===- CompileCommand.cpp - qdsl compile ----------------------------------===//

#include "Compile.h"
#include "Options.h"
#include "ProfileMeasurement.h"
#include "Search.h"
#include "Session.h"

#include "codegen/ProjectWriter.h"
#include "codegen/Targets.h"
#include "codegen/latency/CostModelEmitter.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/Estimate.h"
#include "codegen/latency/SearchConstraintsEmitter.h"
#include "dialect/QuadraOps.h"
#include "passes/Pipelines.h"
#include "runtime/shipped/Contract.h"

#include "mlir/IR/AsmState.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace qdsl::tool {

namespace {

const codegen::Target *selectTarget(Session &session) {
  std::string name = target.empty() ? codegen::kDefaultTarget : target.getValue();
  if (const codegen::Target *t = codegen::lookupTarget(name))
    return t;
  std::string known;
  for (const auto &t : codegen::allTargets())
    known += (known.empty() ? "" : ", ") + t.name;
  session.error() << "unknown target '" << name << "'; expected one of " << known
                  << ", or " << codegen::kHostTarget << " (the widest this CPU runs)";
  return nullptr;
}

/// The kernel pipeline for `t` (first expanding every qdwconv with
/// --expand-qdwconv).
mlir::LogicalResult formKernelsFor(mlir::ModuleOp module, const codegen::Target &t) {
  return quadra::formKernels(module, t.name, expandQDWConv);
}

void printKernels(mlir::func::FuncOp model,
                  const std::vector<codegen::KernelListing> &kernels,
                  const codegen::Target &t, raw_ostream &os) {
  size_t nameWidth = 6, familyWidth = 6, functionWidth = 8;
  for (const auto &k : kernels) {
    nameWidth = std::max(nameWidth, k.name.size());
    familyWidth = std::max(familyWidth, k.family.size());
    functionWidth = std::max(functionWidth, k.library.size());
  }
  std::map<std::string, int> uses;
  for (const auto &k : kernels)
    ++uses[k.library];
  os << model.getSymName() << ": " << kernels.size() << " kernels, "
     << uses.size() << " distinct configurations, target " << t.name << "\n";
  os << left_justify("kernel", nameWidth) << "  " << left_justify("family", familyWidth)
     << "  " << left_justify("function", functionWidth) << "  " << right_justify("MACs", 12)
     << "  output\n";
  for (const auto &k : kernels)
    os << left_justify(k.name, nameWidth) << "  " << left_justify(k.family, familyWidth)
       << "  " << left_justify(k.library, functionWidth) << "  "
       << right_justify(std::to_string(k.macs), 12) << "  " << k.output << "\n";
  os << "functions:\n";
  std::set<std::string> printed;
  for (const auto &k : kernels)
    if (printed.insert(k.library).second)
      os << "  " << k.library << " (" << uses[k.library] << "x): " << k.configuration
         << "\n";
}

mlir::LogicalResult compileChunk(std::unique_ptr<MemoryBuffer> buffer,
                                 raw_ostream &os) {
  Session session(std::move(buffer));
  if (!session.load())
    return session.finish(false);
  if (emit == Emit::AST) {
    for (const auto &file : session.program.files)
      dsl::dumpAST(*file, session.sourceMgr, os);
    return session.finish(true);
  }
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return session.finish(false);
  if (train) {
    bool kernels = emit == Emit::Kernels || !target.empty();
    const codegen::Target *t = kernels ? selectTarget(session) : nullptr;
    if (kernels && !t)
      return session.finish(false);
    for (auto model : module->getOps<mlir::func::FuncOp>()) {
      auto training = quadra::buildTrainingStep(model, memoryPolicy, labelSmoothing);
      if (failed(training) || (kernels && failed(formKernelsFor(*training->module, *t))))
        return session.finish(false);
      if (emit == Emit::Kernels) {
        auto listing = codegen::listKernels(training->step, *t);
        if (failed(listing))
          return session.finish(false);
        printKernels(training->step, *listing, *t, os);
        continue;
      }
      training->module->print(os);
      os << "\n";
    }
    return session.finish(true);
  }
  bool kernels = emit == Emit::Kernels || !target.empty();
  const codegen::Target *t = nullptr;
  if (kernels) {
    t = selectTarget(session);
    if (!t || failed(formKernelsFor(*module, *t)))
      return session.finish(false);
  }
  if (emit == Emit::Kernels) {
    for (auto model : module->getOps<mlir::func::FuncOp>()) {
      auto listing = codegen::listKernels(model, *t);
      if (failed(listing))
        return session.finish(false);
      printKernels(model, *listing, *t, os);
    }
    return session.finish(true);
  }
  mlir::OpPrintingFlags flags;
  if (debugInfo)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
  module->print(os, flags);
  os << "\n";
  return session.finish(true);
}

/// Writes the expected latency of the selected space as C++ (-o or stdout).
int compileCostModel() {
  cost::DeviceProfile profile;
  if (!loadDeviceProfile(profile))
    return 1;
  if (batch < 1)
    return reportError("--batch must be at least 1");
  SelectedModel selected;
  if (int exitCode = loadSelectedModel(selected); exitCode >= 0)
    return exitCode;
  bool hasChoice = false;
  selected.model.walk([&](quadra::ChoiceOp) { hasChoice = true; });
  if (!hasChoice) {
    selected.session->error() << "'" << selected.model.getSymName()
                              << "' has no choices: a cost model is for a search "
                                 "space (qdsl estimate predicts a model)";
    return failed(selected.session->finish(false)) ? 1 : 0;
  }
  mlir::FailureOr<cost::SpaceLatency> space =
      cost::estimateSpace(*selected.module, selected.model, profile, batch);
  if (failed(space))
    return failed(selected.session->finish(false)) ? 1 : 0;
  codegen::CostModelSource source;
  source.sourceFile = sys::path::filename(inputFile).str();
  source.space = space->space;
  source.device = profile.device.name;
  source.calibrated = profile.calibrated;
  source.batch = batch;
  source.fixedSeconds = space->fixed;
  for (const cost::SpaceLatency::Layer &layer : space->layers)
    source.layers.push_back({layer.name, layer.candidates, layer.seconds});
  if (failed(selected.session->finish(true)))
    return 1;
  return writeOutputFile(outputFile, codegen::emitCostModel(source));
}

} // namespace

namespace {

/// Writes the architecture --choices picks as a model file (-o or stdout).
int compileDerivedModel() {
  int exitCode = 0;
  std::unique_ptr<Session> loaded = loadSession(exitCode);
  if (!loaded)
    return exitCode;
  Session &session = *loaded;
  std::string directory = outputFile.empty() || outputFile == "-"
                              ? std::string(".")
                              : sys::path::parent_path(outputFile).str();
  if (directory.empty())
    directory = ".";
  mlir::FailureOr<std::string> text =
      deriveModel(session, sys::path::filename(inputFile).str(), {}, directory);
  if (failed(session.finish(succeeded(text))) || failed(text))
    return 1;
  return writeOutputFile(outputFile.empty() ? "-" : outputFile.getValue(), *text);
}

/// The GPU architectures of --cuda-arch into `out` (CMake's
/// CUDA_ARCHITECTURES: numbers like 80 or 90a, separated by ; or ,).
int cudaArchitecturesFlag(std::string &out) {
  if (!cudaArch.getNumOccurrences())
    return 0;
  out.clear();
  for (StringRef part : llvm::split(StringRef(cudaArch), ','))
    for (StringRef arch : llvm::split(part, ';')) {
      StringRef digits = arch.take_while([](char c) { return isDigit(c); });
      StringRef rest = arch.drop_front(digits.size());
      unsigned number = 0;
      if (digits.size() < 2 || digits.size() > 3 || !(rest.empty() || rest == "a") ||
          digits.getAsInteger(10, number))
        return reportError("--cuda-arch '" + cudaArch +
                           "': expected GPU architectures such as 80, 90 or 90a, "
                           "separated by ; or ,");
      // nvcc 13 builds Turing (75) and newer; older ones fail minutes in.
      if (number < codegen::kOldestCudaArchitecture)
        return reportError("--cuda-arch '" + cudaArch + "': architecture " + arch.str() +
                           " is older than nvcc 13 builds (" +
                           Twine(codegen::kOldestCudaArchitecture) + " and newer)");
      out += (out.empty() ? "" : ";") + arch.str();
    }
  return 0;
}

/// Writes the CMake project of the selected model into -o.
int compileProject() {
  if (outputFile == "-" || outputFile.empty()) {
    return reportError("a project needs a directory: add -o DIR (or --emit=mlir to print)");
  }
  if (std::string why; !codegen::mayWriteProject(outputFile, why))
    return reportError("-o " + why);
  int exitCode = 0;
  std::unique_ptr<Session> loaded = loadSession(exitCode);
  if (!loaded)
    return exitCode;
  Session &session = *loaded;
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return failed(session.finish(false)) ? 1 : 0;
  ProjectRequest request;
  request.target = selectTarget(session);
  mlir::func::FuncOp model = request.target ? session.selectModel(*module) : nullptr;
  if (!model)
    return failed(session.finish(false)) ? 1 : 0;
  if (request.target->backend == codegen::Backend::Cuda) {
    if (search)
      return reportError("--search: the cuda target does not run architecture searches yet "
                         "(docs/CODEGEN.md); search with --target=x86-64-avx2 and give the GPU's "
                         "profile to --device");
    if (!autoschedule.empty())
      return reportError("--autoschedule picks a Halide autoscheduler; the cuda target has no "
                         "Halide kernels");
    if (int status = cudaArchitecturesFlag(request.cudaArchitectures))
      return status;
  }
  request.search = search;
  request.train = train || search;
  request.memoryPolicy = memoryPolicy;
  request.labelSmoothing = labelSmoothing;
  request.expandQDWConv = expandQDWConv;
  request.directory = outputFile;
  request.source = inputFile;
  request.autoscheduler = autoschedule;
  bool hasChoice = false;
  model.walk([&](quadra::ChoiceOp) { hasChoice = true; });
  // (Without a choice writeModelProject says why there is nothing to search.)
  if (search && hasChoice) {
    // A foreign profile of this machine is calibrated below, not warned
    // about (as qdsl search does).
    deferMachineWarnings(true);
    if (!deviceProfile.empty() && !loadDeviceProfile(request.given))
      return 1;
    auto constraints = searchConstraints(model, request.given);
    deferMachineWarnings(false);
    if (failed(constraints))
      return failed(session.finish(false)) ? 1 : 0;
    // Calibrated outside the project, which may only hold what qdsl wrote
    // until its CMakeLists.txt is there; copied into DIR/profiles after.
    SmallString<128> scratch;
    if (std::error_code ec = sys::fs::createUniqueDirectory("qdsl-calibration", scratch))
      return reportError("cannot create a temporary directory: " + ec.message());
    std::vector<LimitProfile> bases;
    int status = calibrateSearchProfiles(*module, model, scratch.str().str(), outputFile,
                                         *constraints, bases);
    request.constraints = *constraints;
    if (!status)
      status = writeModelProject(session, *module, model, request);
    // Only this compile's calibrations: none left from an earlier one.
    if (!status)
      sys::fs::remove_directories(outputFile + "/profiles");
    for (auto [c, basis] : llvm::zip(*constraints, bases)) {
      std::string written = scratch.str().str() + "/profiles/" +
                            sys::path::filename(c.profile.file).str();
      if (status || basis.calibratedFrom.empty())
        continue;
      auto text = MemoryBuffer::getFile(written);
      status = !text ? reportError("cannot read '" + written + "': " +
                                   text.getError().message())
               : sys::fs::create_directories(outputFile + "/profiles")
                   ? reportError("cannot create '" + outputFile + "/profiles'")
                   : writeOutputFile(outputFile + "/profiles/" +
                                         sys::path::filename(c.profile.file).str(),
                                     (*text)->getBuffer().str());
    }
    sys::fs::remove_directories(scratch);
    return status;
  }
  return writeModelProject(session, *module, model, request);
}

} // namespace

int writeModelProject(Session &session, mlir::ModuleOp module, mlir::func::FuncOp model,
                      const ProjectRequest &request) {
  if (std::string why; !codegen::mayWriteProject(request.directory, why))
    return reportError("-o " + why);
  const codegen::Target &t = *request.target;
  // A search: the supernet of the space, trained by the search program with
  // the latency model of each of its limits.
  std::string searchHeader;
  if (request.search) {
    bool hasChoice = false;
    quadra::ChoiceOp tooWide;
    model.walk([&](quadra::ChoiceOp choice) {
      hasChoice = true;
      if (!tooWide && choice.getCandidates().size() > contract::kMaxSupernetCandidates)
        tooWide = choice;
    });
    if (!hasChoice) {
      session.error() << "'" << model.getSymName()
                      << "' has no choices: --search needs a search space"
                      << (session.options.choices.empty() ? "" : " (--choices fixed them all)");
      return failed(session.finish(false)) ? 1 : 0;
    }
    if (tooWide) {
      tooWide.emitError() << "layer '" << tooWide.getLayer() << "' has "
                          << tooWide.getCandidates().size()
                          << " candidates; a supernet takes at most "
                          << contract::kMaxSupernetCandidates
                          << " a layer (split the choice, or search it in parts)";
      return failed(session.finish(false)) ? 1 : 0;
    }
    using Constraints = std::vector<cost::SearchConstraint>;
    mlir::FailureOr<Constraints> constraints =
        request.constraints ? mlir::FailureOr<Constraints>(*request.constraints)
                            : searchConstraints(model, request.given);
    auto header = succeeded(constraints)
                      ? codegen::emitSearchConstraints(module, model, *constraints,
                                                       sys::path::filename(request.source).str())
                      : mlir::FailureOr<std::string>(mlir::failure());
    if (failed(header) || failed(quadra::makeSupernet(module)))
      return failed(session.finish(false)) ? 1 : 0;
    searchHeader = *header;
  }
  // The generated program at batch 1: weights and their packed copies and
  // one arena; training adds gradients, AdamW's moments and the step's
  // saved activations.
  const bool train = request.train;
  if (!fitsInMemory(model, {train ? "the training program" : "the generated program",
                               train ? 20u : 8u, train ? 4u : 1u, 1}))
    return failed(session.finish(false)) ? 1 : 0;
  // With --train the project is built from the training step's module,
  // which holds a copy of the model next to its step.
  std::optional<quadra::TrainingStep> training;
  mlir::func::FuncOp step;
  if (train) {
    if (!t.runnableHere && t.backend != codegen::Backend::Cuda) {
      session.error() << "--train needs a target this machine runs (x86-64-avx2, "
                         "x86-64-avx512 or opencl); " << t.name << " kernels can only be built here";
      return failed(session.finish(false)) ? 1 : 0;
    }
    auto built = quadra::buildTrainingStep(model, request.memoryPolicy, request.labelSmoothing);
    if (failed(built))
      return failed(session.finish(false)) ? 1 : 0;
    training = std::move(*built);
    step = training->step;
    model = training->module->lookupSymbol<mlir::func::FuncOp>(model.getSymName());
  }
  if (failed(quadra::formKernels(training ? *training->module : module, t.name,
                                 request.expandQDWConv)))
    return failed(session.finish(false)) ? 1 : 0;
  codegen::ProjectOptions options;
  if (train)
    options.trainingSetup = formatv("memory policy {0}, label smoothing {1}",
                                    quadra::memoryPolicyName(request.memoryPolicy),
                                    request.labelSmoothing)
                                .str();
  options.source = request.source;
  options.autoscheduler = request.autoscheduler;
  options.cudaArchitectures = request.cudaArchitectures;
  options.kernelCache = kernelCacheDirectory();
  options.searchConstraints = searchHeader;
  const std::string &directory = request.directory;
  if (failed(codegen::writeProject(model, step, t, directory, options)))
    return failed(session.finish(false)) ? 1 : 0;
  // The kernelized functions, for reading what was generated.
  std::string text;
  raw_string_ostream os(text);
  model->print(os, mlir::OpPrintingFlags().enableDebugInfo(true, false));
  if (step) {
    os << "\n";
    step->print(os, mlir::OpPrintingFlags().enableDebugInfo(true, false));
  }
  if (writeOutputFile(directory + "/model.mlir", text))
    return 1;
  if (request.announce)
    outs() << "wrote " << directory << " (model " << model.getSymName()
           << (step ? " and its training step" : "") << ", target " << t.name
           << "); build it with: qdsl build " << directory << "\n";
  return 0;
}

/// Flags that only some kinds of compile read are refused by the others
/// (a flag that does nothing would look as if it had worked).
int checkModeFlags(bool project) {
  const bool training = train || search, costModel = emit == Emit::CostModel;
  const struct {
    const cl::Option &flag;
    bool used;
    const char *needs;
  } flags[] = {
      {memoryPolicy, training, "goes with --train or --search (the training step's memory)"},
      {labelSmoothing, training, "goes with --train or --search (the training loss)"},
      {latencyLimit, search, "goes with --search (the supernet's latency limits)"},
      {onlyDevices, search, "goes with --search (the supernet's latency limits)"},
      {noCalibrate, search, "goes with --search (the supernet's latency tables)"},
      {deviceProfile, search || costModel, "goes with --search or --emit=cost-model"},
      {fittedOnly, search || costModel, "goes with --search or --emit=cost-model"},
      {batch, costModel, "goes with --emit=cost-model (the batch of its latency tables)"},
      {kernelCache, project, "goes with a project (--target T -o DIR): nothing else builds "
                             "kernels"},
  };
  for (const auto &f : flags)
    if (f.flag.getNumOccurrences() && !f.used)
      return reportError("--" + f.flag.ArgStr + " " + f.needs + "; this compile does not "
                         "read it");
  return 0;
}

int runCompile() {
  // A project by default with a target, or for training with a directory.
  bool toDirectory = !outputFile.empty() && outputFile != "-";
  bool project = emit == Emit::Project || search ||
                 (emit.getNumOccurrences() == 0 && (!target.empty() || (train && toDirectory)));
  if (search && (emit.getNumOccurrences() && emit != Emit::Project))
    return reportError("--search writes a project: drop --emit");
  if (int status = checkModeFlags(project))
    return status;
  if (train && !(labelSmoothing >= 0 && labelSmoothing < 1))
    return reportError("--label-smoothing must be in [0, 1), got " +
                       shownNumber(labelSmoothing));
  if (emit == Emit::CostModel)
    return compileCostModel();
  if (emit == Emit::QD)
    return compileDerivedModel();
  if (project)
    return compileProject();
  return processInput(compileChunk);
}

} // namespace qdsl::tool
