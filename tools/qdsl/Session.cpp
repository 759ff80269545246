//===- Session.cpp - one compilation of a .qd buffer ----------------------===//

#include "Session.h"

#include "codegen/ProjectWriter.h"
#include "passes/Pipelines.h"
#include "passes/analysis/ModelStatistics.h"
#include "dialect/QuadraOps.h"

#include "Options.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/WithColor.h"

#include <optional>

#include <unistd.h>

using namespace llvm;

namespace qdsl::tool {

FrontEndOptions FrontEndOptions::fromFlags() {
  FrontEndOptions options;
  options.modelNames.assign(tool::modelNames.begin(), tool::modelNames.end());
  options.defines.assign(tool::defines.begin(), tool::defines.end());
  options.includeDirs.assign(tool::includeDirs.begin(), tool::includeDirs.end());
  options.choices = tool::choices;
  options.verifyDiagnostics = tool::verifyDiagnostics;
  return options;
}

Session::Session(std::unique_ptr<MemoryBuffer> buffer, FrontEndOptions frontEnd)
    : options(std::move(frontEnd)), diags(sourceMgr) {
  mainBuffer = sourceMgr.AddNewSourceBuffer(std::move(buffer), SMLoc());
  // A user reads errors against the .qd file; a dump of the IR a pass was
  // working on would bury them.
  context.printOpOnDiagnostic(false);
  // The handler must see the main buffer to collect its expectations.
  if (options.verifyDiagnostics)
    verifier = std::make_unique<mlir::SourceMgrDiagnosticVerifierHandler>(
        sourceMgr, &context);
  else
    printer = std::make_unique<mlir::SourceMgrDiagnosticHandler>(sourceMgr,
                                                                 &context, errs());
  // Registered last, so called first: counts errors, then lets the handler
  // above print or check them.
  context.getDiagEngine().registerHandler([this](mlir::Diagnostic &d) {
    if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
      ++errors;
    return mlir::failure();
  });
  diags.setHandler([this](SMLoc loc, SourceMgr::DiagKind kind,
                          const Twine &message) {
    auto severity = kind == SourceMgr::DK_Note ? mlir::DiagnosticSeverity::Note
                                               : mlir::DiagnosticSeverity::Error;
    context.getDiagEngine().emit(locationOf(loc), severity) << message.str();
  });
}

mlir::Location Session::locationOf(SMLoc loc) {
  unsigned id = loc.isValid() ? sourceMgr.FindBufferContainingLoc(loc) : 0;
  if (!id)
    return mlir::UnknownLoc::get(&context);
  auto [line, col] = sourceMgr.getLineAndColumn(loc, id);
  return mlir::FileLineColLoc::get(
      &context, sourceMgr.getMemoryBuffer(id)->getBufferIdentifier(), line, col);
}

mlir::InFlightDiagnostic Session::error() {
  return mlir::emitError(locationOf(
      SMLoc::getFromPointer(sourceMgr.getMemoryBuffer(mainBuffer)->getBufferStart())));
}

bool Session::load() {
  dsl::FrontendOptions frontend;
  frontend.includeDirs = options.includeDirs;
  return dsl::loadProgramFromSourceMgr(mainBuffer, frontend, diags, program);
}

mlir::OwningOpRef<mlir::ModuleOp> Session::generate(bool applyChoices) {
  dsl::MLIRGenOptions generation;
  generation.models = options.modelNames;
  for (const std::string &define : options.defines) {
    auto [name, value] = StringRef(define).split('=');
    if (name.empty() || value.empty()) {
      mlir::emitError(mlir::UnknownLoc::get(&context))
          << "-D" << define << ": expected -D name=value";
      return nullptr;
    }
    // One value a name: two would leave which one holds to the reader.
    for (const auto &[earlier, earlierValue] : generation.overrides)
      if (earlier == name) {
        mlir::emitError(mlir::UnknownLoc::get(&context))
            << "-D" << define << ": '" << name << "' is set twice (-D" << earlier << "="
            << earlierValue << " before it); give each parameter once";
        return nullptr;
      }
    generation.overrides.emplace_back(name.str(), value.str());
  }
  mlir::OwningOpRef<mlir::ModuleOp> module =
      dsl::generateMLIR(context, program, sourceMgr, generation);
  overrides = generation.overrides;
  if (!module || options.choices.empty() || !applyChoices)
    return module;
  // One architecture of a search space: --choices=0,3,1,... or seed:N.
  int64_t seed = -1;
  SmallVector<int64_t> picks;
  StringRef spec = options.choices;
  if (spec.consume_front("seed:")) {
    if (spec.getAsInteger(10, seed) || seed < 0) {
      error() << "--choices=seed:N needs a non-negative integer N, got '" << spec << "'";
      return nullptr;
    }
  } else {
    SmallVector<StringRef> parts;
    spec.split(parts, ',');
    for (StringRef part : parts) {
      int64_t pick;
      if (part.trim().getAsInteger(10, pick)) {
        error() << "--choices expects candidate indices separated by commas (or "
                   "seed:N), got '" << options.choices << "'";
        return nullptr;
      }
      picks.push_back(pick);
    }
  }
  if (failed(quadra::fixChoices(*module, picks, seed)))
    return nullptr;
  return module;
}

mlir::func::FuncOp Session::selectModel(mlir::ModuleOp module) {
  std::vector<mlir::func::FuncOp> models;
  for (auto func : module.getOps<mlir::func::FuncOp>())
    models.push_back(func);
  if (models.size() == 1)
    return models.front();
  std::string names;
  for (auto m : models)
    names += (names.empty() ? "" : ", ") + m.getSymName().str();
  error() << "this command works on one model, and the file defines "
          << models.size() << " (" << names << "); choose one with --model";
  return nullptr;
}

mlir::LogicalResult Session::finish(bool compiled) {
  if (verifier)
    return verifier->verify();
  if (!compiled && errors > 0) {
    errs() << errors << (errors == 1 ? " error" : " errors") << " in '"
           << sourceMgr.getMemoryBuffer(mainBuffer)->getBufferIdentifier() << "'";
    // An error deep in a block may come from a value the command line set.
    if (!options.defines.empty()) {
      errs() << ", compiled with";
      for (const std::string &define : options.defines)
        errs() << " -D " << define;
    }
    errs() << "\n";
  }
  return mlir::success(compiled);
}

std::string shownNumber(double value) {
  std::string s;
  raw_string_ostream(s) << format("%g", value);
  return s;
}

std::string exactNumber(double value) {
  std::string s;
  raw_string_ostream(s) << format("%.17g", value);
  return s;
}

std::unique_ptr<Session> loadSession(int &exitCode) {
  return loadSession(inputFile, FrontEndOptions::fromFlags(), exitCode);
}

std::unique_ptr<Session> loadSession(const std::string &path, FrontEndOptions options,
                                     int &exitCode) {
  std::string error;
  std::unique_ptr<MemoryBuffer> source = dsl::readSourceFile(path, 16 << 20, error);
  if (!source) {
    exitCode = reportError(error);
    return nullptr;
  }
  auto session = std::make_unique<Session>(std::move(source), std::move(options));
  if (!session->load()) {
    exitCode = failed(session->finish(false)) ? 1 : 0;
    return nullptr;
  }
  return session;
}

int loadSelectedModel(SelectedModel &out) {
  int exitCode = 0;
  out.session = loadSession(exitCode);
  if (!out.session)
    return exitCode;
  Session &session = *out.session;
  out.module = session.generate();
  if (out.module)
    out.model = session.selectModel(*out.module);
  if (!out.model)
    return failed(session.finish(false)) ? 1 : 0;
  return -1;
}

namespace {

/// This machine's memory in bytes (0 when unknown).
uint64_t physicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? uint64_t(pages) * uint64_t(size) : 0;
}

/// --memory-limit: a byte count with an optional K, M, G or T (powers of
/// 1024); nullopt after reporting a malformed value.
std::optional<uint64_t> memoryLimitBytes() {
  if (memoryLimit.empty())
    return physicalMemory() ? physicalMemory() : UINT64_MAX;
  StringRef text = memoryLimit.getValue();
  unsigned shift = 0;
  switch (text.empty() ? '\0' : llvm::toUpper(text.back())) {
  case 'K': shift = 10; break;
  case 'M': shift = 20; break;
  case 'G': shift = 30; break;
  case 'T': shift = 40; break;
  default: break;
  }
  if (shift)
    text = text.drop_back();
  uint64_t value;
  if (text.getAsInteger(10, value) || value == 0 || value > (UINT64_MAX >> shift)) {
    reportError("--memory-limit expects a positive size such as 8G or 500M, got '" +
                memoryLimit + "'");
    return std::nullopt;
  }
  return value << shift;
}

/// a × b, saturating.
uint64_t times(uint64_t a, uint64_t b) {
  uint64_t product;
  return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

} // namespace

bool fitsInMemory(mlir::func::FuncOp model, const MemoryUse &use) {
  std::optional<uint64_t> limit = memoryLimitBytes();
  if (!limit)
    return false;
  mlir::FailureOr<quadra::ModelStatistics> stats =
      quadra::computeModelStatistics(model, use.batch);
  if (failed(stats))
    return false;
  uint64_t weights = times(stats->params, use.bytesPerParameter);
  uint64_t activations = times(stats->peakActivationBytes, use.activationFactor);
  uint64_t needed = weights + activations < weights ? UINT64_MAX : weights + activations;
  if (needed <= *limit)
    return true;
  // The layer with the most parameters, or the largest activations.
  const quadra::LayerStatistics *largest = nullptr;
  for (const quadra::LayerStatistics &layer : stats->layers)
    if (!largest || layer.params * use.bytesPerParameter +
                            layer.activationBytes * use.activationFactor >
                        largest->params * use.bytesPerParameter +
                            largest->activationBytes * use.activationFactor)
      largest = &layer;
  mlir::Operation *at = model;
  if (largest)
    model.walk([&](mlir::Operation *op) {
      if (at == model.getOperation() &&
          quadra::getLayerName(op->getLoc()) == largest->name)
        at = op;
    });
  mlir::InFlightDiagnostic diag = at->emitError();
  diag << use.command << " would need about " << quadra::formatBytes(needed) << " for '"
       << model.getSymName() << "' (" << quadra::formatCount(stats->params)
       << " parameters × " << use.bytesPerParameter << " bytes";
  if (use.activationFactor)
    diag << ", activations " << quadra::formatBytes(activations) << " at batch " << use.batch;
  diag << "), more than the memory limit of " << quadra::formatBytes(*limit)
       << (memoryLimit.empty() ? " (this machine's memory; --memory-limit changes it)"
                               : " (--memory-limit)");
  if (largest)
    diag << "; the largest layer is '" << largest->name << "' ("
         << quadra::formatCount(largest->params) << " parameters, "
         << quadra::formatBytes(largest->activationBytes) << " of activations)";
  return false;
}

std::string kernelCacheDirectory() {
  std::string dir = kernelCache.getNumOccurrences() == 0 ? codegen::defaultKernelCache()
                    : kernelCache == "none"              ? std::string()
                                                         : kernelCache.getValue();
  if (dir.empty())
    return dir;
  SmallString<256> absolute(dir);
  sys::fs::make_absolute(absolute);
  return std::string(absolute);
}

namespace {

/// The files this command reads, as its flags name them.
std::vector<std::string> commandInputs() {
  std::vector<std::string> inputs;
  for (const std::string *value :
       {&inputFile.getValue(), &deviceProfile.getValue(), &calibrateBase.getValue(),
        &weightsFile.getValue(), &npyInput.getValue(), &labelsFile.getValue(),
        &weightsSource.getValue()})
    if (!value->empty() && *value != "-")
      inputs.push_back(*value);
  return inputs;
}

} // namespace

int refuseOverwritingInput(const std::string &path) {
  // Never over one of the command's own inputs (as a compiler refuses
  // "input file is the same as output file").
  for (const std::string &input : commandInputs())
    if (path != "-" && sys::fs::equivalent(input, path))
      return reportError("the output '" + path + "' is the input '" + input +
                         "' of this command: give another output file");
  return 0;
}

int writeOutputFile(const std::string &path, const std::string &text) {
  if (path == "-") {
    outs() << text;
    outs().flush();
    return 0;
  }
  if (int status = refuseOverwritingInput(path))
    return status;
  std::string error;
  if (!rt::writeFileAtomically(path, text, error))
    return reportError(error);
  return 0;
}

int processInput(mlir::ChunkBufferHandler handler) {
  std::string error;
  std::unique_ptr<MemoryBuffer> input =
      dsl::readSourceFile(inputFile, 16 << 20, error);
  if (!input)
    return reportError(error);
  // Build the whole output first and write it in one go: nothing is left
  // half-written when compilation fails.
  std::string output;
  raw_string_ostream os(output);
  mlir::LogicalResult result = mlir::splitAndProcessBuffer(
      std::move(input), handler, os,
      splitInputFile ? mlir::kDefaultSplitMarker : "",
      splitInputFile ? "// -----" : "");
  if (failed(result))
    return 1;
  return writeOutputFile(outputFile, output);
}

} // namespace qdsl::tool
