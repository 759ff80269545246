//===- qdsl.cpp - the qdsl compiler driver --------------------------------===//
//
//   qdsl compile FILE [--emit=ast|mlir] [-o OUT]   show a model as AST or MLIR
//   qdsl stats FILE [--batch N] [--json]           parameters, MACs, memory
//
// Every diagnostic, from the parser to the dialect's verifiers, goes through
// MLIR's diagnostic engine and is printed against the line it points into;
// with --verify-diagnostics the `expected-error` comments of the input are
// checked instead, as mlir-opt does.
//
//===----------------------------------------------------------------------===//

#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "passes/ModelStatistics.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/ToolUtilities.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace qdsl;

namespace {

cl::SubCommand compileCommand("compile", "Compile a .qd file");
cl::SubCommand statsCommand("stats",
                            "Print parameters, MACs and activation memory");

cl::OptionCategory qdslCategory("qdsl options");

#define QDSL_ALL_COMMANDS cl::sub(compileCommand), cl::sub(statsCommand)

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.qd>"),
                               cl::Required, QDSL_ALL_COMMANDS,
                               cl::cat(qdslCategory));

enum class Emit { AST, MLIR };
cl::opt<Emit> emit("emit", cl::desc("What to produce"), cl::init(Emit::MLIR),
                   cl::values(clEnumValN(Emit::AST, "ast", "the syntax tree"),
                              clEnumValN(Emit::MLIR, "mlir",
                                         "the quadra dialect")),
                   cl::sub(compileCommand), cl::cat(qdslCategory));

cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::list<std::string> modelNames(
    "model", cl::desc("Model or space to compile (default: all in the file)"),
    cl::value_desc("name"), QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::list<std::string> defines("D", cl::desc("Override a model parameter"),
                              cl::value_desc("name=value"), cl::Prefix,
                              QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::list<std::string> includeDirs("I", cl::desc("Directory to search for imports"),
                                  cl::value_desc("dir"), cl::Prefix,
                                  QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::opt<bool> debugInfo("debug-info",
                        cl::desc("Print source locations and layer names in MLIR"),
                        cl::sub(compileCommand), cl::cat(qdslCategory));

cl::opt<bool> splitInputFile(
    "split-input-file",
    cl::desc("Compile each '// -----' separated chunk on its own"),
    QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check diagnostics against expected-* comments in the input"),
    QDSL_ALL_COMMANDS, cl::cat(qdslCategory));

cl::opt<int64_t> batch("batch", cl::desc("Batch size for the counts"),
                       cl::init(1), cl::sub(statsCommand), cl::cat(qdslCategory));

cl::opt<bool> json("json", cl::desc("Print JSON instead of a table"),
                   cl::sub(statsCommand), cl::cat(qdslCategory));

/// One compilation: a source buffer, its imports and every diagnostic about
/// them.
class Session {
public:
  explicit Session(std::unique_ptr<MemoryBuffer> buffer) : diags(sourceMgr) {
    mainBuffer = sourceMgr.AddNewSourceBuffer(std::move(buffer), SMLoc());
    // The handler must see the main buffer to collect its expectations.
    if (verifyDiagnostics)
      verifier = std::make_unique<mlir::SourceMgrDiagnosticVerifierHandler>(
          sourceMgr, &context);
    else
      printer = std::make_unique<mlir::SourceMgrDiagnosticHandler>(
          sourceMgr, &context, errs());
    // Registered last, so called first: counts errors, then lets the
    // handler above print or check them.
    context.getDiagEngine().registerHandler([this](mlir::Diagnostic &d) {
      if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
        ++errors;
      return mlir::failure();
    });
    diags.setHandler([this](SMLoc loc, SourceMgr::DiagKind kind,
                            const Twine &message) {
      auto severity = kind == SourceMgr::DK_Note
                          ? mlir::DiagnosticSeverity::Note
                          : mlir::DiagnosticSeverity::Error;
      context.getDiagEngine().emit(locationOf(loc), severity) << message.str();
    });
  }

  bool load() {
    dsl::FrontendOptions options;
    options.includeDirs.assign(includeDirs.begin(), includeDirs.end());
    return dsl::loadProgramFromSourceMgr(mainBuffer, options, diags, program);
  }

  mlir::OwningOpRef<mlir::ModuleOp> generate() {
    dsl::MLIRGenOptions options;
    options.models.assign(modelNames.begin(), modelNames.end());
    for (const std::string &define : defines) {
      auto [name, value] = StringRef(define).split('=');
      if (name.empty() || value.empty()) {
        mlir::emitError(mlir::UnknownLoc::get(&context))
            << "-D" << define << ": expected -D name=value";
        return nullptr;
      }
      options.overrides.emplace_back(name.str(), value.str());
    }
    return dsl::generateMLIR(context, program, sourceMgr, options);
  }

  /// With --verify-diagnostics, whether the expectations were met; else
  /// whether the compilation succeeded.
  mlir::LogicalResult finish(bool compiled) {
    if (verifier)
      return verifier->verify();
    if (!compiled && errors > 0)
      errs() << errors << (errors == 1 ? " error" : " errors") << " in '"
             << sourceMgr.getMemoryBuffer(mainBuffer)->getBufferIdentifier()
             << "'\n";
    return mlir::success(compiled);
  }

  SourceMgr sourceMgr;
  dsl::Diagnostics diags;
  mlir::MLIRContext context;
  dsl::Program program;

private:
  mlir::Location locationOf(SMLoc loc) {
    unsigned id = loc.isValid() ? sourceMgr.FindBufferContainingLoc(loc) : 0;
    if (!id)
      return mlir::UnknownLoc::get(&context);
    auto [line, col] = sourceMgr.getLineAndColumn(loc, id);
    return mlir::FileLineColLoc::get(
        &context, sourceMgr.getMemoryBuffer(id)->getBufferIdentifier(), line,
        col);
  }

  unsigned mainBuffer = 0;
  unsigned errors = 0;
  std::unique_ptr<mlir::SourceMgrDiagnosticVerifierHandler> verifier;
  std::unique_ptr<mlir::SourceMgrDiagnosticHandler> printer;
};

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
  mlir::OpPrintingFlags flags;
  if (debugInfo)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
  module->print(os, flags);
  os << "\n";
  return session.finish(true);
}

mlir::LogicalResult statsChunk(std::unique_ptr<MemoryBuffer> buffer,
                               raw_ostream &os) {
  Session session(std::move(buffer));
  if (!session.load())
    return session.finish(false);
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return session.finish(false);
  std::vector<quadra::ModelStatistics> all;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    mlir::FailureOr<quadra::ModelStatistics> stats =
        quadra::computeModelStatistics(func, batch);
    if (failed(stats))
      return session.finish(false);
    all.push_back(std::move(*stats));
  }
  if (!json) {
    for (auto [i, stats] : enumerate(all)) {
      if (i > 0)
        os << "\n";
      quadra::printModelStatistics(stats, os);
    }
    return session.finish(true);
  }
  // One model: its object; several: {"models": [...]}.
  json::Value value = nullptr;
  if (all.size() == 1) {
    value = quadra::modelStatisticsToJSON(all.front());
  } else {
    json::Array models;
    for (const auto &stats : all)
      models.push_back(quadra::modelStatisticsToJSON(stats));
    value = json::Object{{"models", std::move(models)}};
  }
  os << formatv("{0:2}", value) << "\n";
  return session.finish(true);
}

int run(mlir::ChunkBufferHandler handler) {
  std::string error;
  std::unique_ptr<MemoryBuffer> input =
      dsl::readSourceFile(inputFile, 16 << 20, error);
  if (!input) {
    WithColor::error(errs(), "qdsl") << error << "\n";
    return 1;
  }
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
  if (Error error = writeToOutput(outputFile, [&](raw_ostream &out) {
        out << output;
        return Error::success();
      })) {
    WithColor::error(errs(), "qdsl")
        << "cannot write '" << outputFile << "': " << toString(std::move(error))
        << "\n";
    return 1;
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter([](raw_ostream &os) {
    os << "qdsl 0.1 (MLIR " << LLVM_VERSION_STRING << ")\n";
  });
  cl::HideUnrelatedOptions(qdslCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "qdsl: a compiler for quadratic neural networks\n\n"
      "  qdsl compile FILE.qd [--emit=ast|mlir] [-o OUT]\n"
      "  qdsl stats FILE.qd [--batch N] [--json]\n");
  if (compileCommand)
    return run(compileChunk);
  if (statsCommand) {
    if (batch < 1) {
      WithColor::error(errs(), "qdsl")
          << "--batch must be at least 1, got " << batch << "\n";
      return 1;
    }
    return run(statsChunk);
  }
  errs() << "qdsl: expected a command: compile or stats (see qdsl --help)\n";
  return 1;
}
