//===- Session.h - one compilation of a .qd buffer --------------*- C++ -*-===//
//
// Loads a program, generates its MLIR and reports every diagnostic —
// front-end and MLIR — through MLIR's diagnostic engine, printed against
// the source or, with --verify-diagnostics, checked like mlir-opt does.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_TOOLS_QDSL_SESSION_H
#define QDSL_TOOLS_QDSL_SESSION_H

#include "dsl/Frontend.h"
#include "tools/driver/Programs.h"
#include "dsl/MLIRGen.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Support/SourceMgr.h"

namespace qdsl::tool {

/// What selects and instantiates the models of a file: --model, -D, -I,
/// --choices and --verify-diagnostics.
struct FrontEndOptions {
  std::vector<std::string> modelNames, defines, includeDirs;
  /// "0,3,1" or "seed:N": one architecture of a search space.
  std::string choices;
  bool verifyDiagnostics = false;
  /// The command line's.
  static FrontEndOptions fromFlags();
};

class Session {
public:
  explicit Session(std::unique_ptr<llvm::MemoryBuffer> buffer,
                   FrontEndOptions options = FrontEndOptions::fromFlags());

  FrontEndOptions options;

  /// Parses and checks the program.
  bool load();
  /// Builds the module of the selected models (`options`: --model, -D),
  /// with the choices of a space fixed by --choices unless `applyChoices`
  /// is off.
  mlir::OwningOpRef<mlir::ModuleOp> generate(bool applyChoices = true);
  /// The -D overrides, by parameter name (valid after generate()).
  std::vector<std::pair<std::string, std::string>> overrides;
  /// The one model a command works on: --model, or the only model of the
  /// file. Reports an error and returns null otherwise.
  mlir::func::FuncOp selectModel(mlir::ModuleOp module);

  /// With --verify-diagnostics, whether the expectations were met; else
  /// whether the compilation succeeded (printing an error count if not).
  mlir::LogicalResult finish(bool compiled);

  /// An error at the start of the main file.
  mlir::InFlightDiagnostic error();

  llvm::SourceMgr sourceMgr;
  dsl::Diagnostics diags;
  mlir::MLIRContext context;
  dsl::Program program;

private:
  mlir::Location locationOf(llvm::SMLoc loc);

  unsigned mainBuffer = 0;
  unsigned errors = 0;
  std::unique_ptr<mlir::SourceMgrDiagnosticVerifierHandler> verifier;
  std::unique_ptr<mlir::SourceMgrDiagnosticHandler> printer;
};

/// A number as people write it (%g): 0.1, 1e+308, -6e-06.
std::string shownNumber(double value);
/// A number exactly, for another program's command line (%.17g: reads
/// back as the same double; formatv's "{0}" keeps two decimals).
std::string exactNumber(double value);

/// Prints `message` as an error of the qdsl tool; returns the exit code 1.
using driver::reportError;

/// The one model a command works on, with the session and module that own it.
struct SelectedModel {
  std::unique_ptr<Session> session;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp model;
};

/// Reads and checks the input file; null (with the process exit code in
/// `exitCode`, having reported why) when it cannot be read or has errors.
std::unique_ptr<Session> loadSession(int &exitCode);
/// The same for `path`, with `options`.
std::unique_ptr<Session> loadSession(const std::string &path, FrontEndOptions options,
                                     int &exitCode);

/// Reads the input file, checks it and selects its model (--model, -D) into
/// `out`: -1 when it did; else, having reported why, the process exit code
/// (0 when --verify-diagnostics saw what it expected).
int loadSelectedModel(SelectedModel &out);

/// What a command holds in memory for a model: bytes per parameter (the
/// weights, their copies and the file written) and per byte of the
/// forward pass's live activations at `batch`.
struct MemoryUse {
  const char *command;
  uint64_t bytesPerParameter;
  uint64_t activationFactor;
  int64_t batch = 1;
};

/// Whether `model` fits in --memory-limit (default: this machine's RAM)
/// for `use`; if not, an error at the model's largest layer naming the
/// sizes, and false. Checked before anything is allocated, so that a model
/// too large for the machine is refused instead of killing the process.
/// The figures are estimates (what the command's data structures hold),
/// meant to refuse what cannot work, not to account to the byte.
bool fitsInMemory(mlir::func::FuncOp model, const MemoryUse &use);

/// Reads the input file (bounded), splits it at `// -----` with
/// --split-input-file, runs `handler` on each chunk and writes what they
/// print to -o in one go. Returns the process exit code.
int processInput(mlir::ChunkBufferHandler handler);

/// The kernel cache to write into generated projects, as an absolute path
/// (a relative one would be read relative to each project): --kernel-cache
/// ('none': no cache), else codegen::defaultKernelCache().
std::string kernelCacheDirectory();

/// "0,3,1": picks as --choices takes them.
std::string choicesText(llvm::ArrayRef<int64_t> picks);

/// The architecture --choices picks from the selected space of `session`
/// (loaded), as a model file (dsl/DerivedModel.h) with `header` lines after
/// the two that say where it came from; `sourceName` is the space's file as
/// the header names it. Errors are reported through the session.
mlir::FailureOr<std::string> deriveModel(Session &session, const std::string &sourceName,
                                         const std::vector<std::string> &header,
                                         const std::string &outputDirectory);

/// Writes `text` to `path` ('-': stdout) as rt::writeFileAtomically does
/// (a temporary file, synced and renamed; special files written through),
/// never over one of the command's inputs; 0 on success, else prints an
/// error and returns 1.
int writeOutputFile(const std::string &path, const std::string &text);

/// Refuses (0, or 1 having said why) to write `path` when it is one of the
/// files this command reads (--device, --weights, the model file, ...):
/// for writers that do not go through writeOutputFile.
int refuseOverwritingInput(const std::string &path);

} // namespace qdsl::tool

#endif // QDSL_TOOLS_QDSL_SESSION_H
