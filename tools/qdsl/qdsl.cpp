//===- qdsl.cpp - the qdsl compiler driver --------------------------------===//
//
//   qdsl compile FILE [--emit=ast|mlir] [-o OUT]   show a model as AST or MLIR
//   qdsl stats FILE [--batch N] [--json]           parameters, MACs, memory
//
//===----------------------------------------------------------------------===//

#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "passes/ModelStatistics.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
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

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.qd>"),
                               cl::Required, cl::sub(compileCommand),
                               cl::sub(statsCommand), cl::cat(qdslCategory));

enum class Emit { AST, MLIR };
cl::opt<Emit> emit("emit", cl::desc("What to produce"), cl::init(Emit::MLIR),
                   cl::values(clEnumValN(Emit::AST, "ast", "the syntax tree"),
                              clEnumValN(Emit::MLIR, "mlir",
                                         "the quadra dialect")),
                   cl::sub(compileCommand), cl::cat(qdslCategory));

cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(compileCommand), cl::sub(statsCommand),
                                cl::cat(qdslCategory));

cl::list<std::string> modelNames(
    "model", cl::desc("Model or space to compile (default: all in the file)"),
    cl::value_desc("name"), cl::sub(compileCommand), cl::sub(statsCommand),
    cl::cat(qdslCategory));

cl::list<std::string> defines("D", cl::desc("Override a model parameter"),
                              cl::value_desc("name=value"), cl::Prefix,
                              cl::sub(compileCommand), cl::sub(statsCommand),
                              cl::cat(qdslCategory));

cl::list<std::string> includeDirs("I", cl::desc("Directory to search for imports"),
                                  cl::value_desc("dir"), cl::Prefix,
                                  cl::sub(compileCommand), cl::sub(statsCommand),
                                  cl::cat(qdslCategory));

cl::opt<bool> debugInfo("debug-info",
                        cl::desc("Print source locations and layer names in MLIR"),
                        cl::sub(compileCommand), cl::cat(qdslCategory));

cl::opt<int64_t> batch("batch", cl::desc("Batch size for the counts"),
                       cl::init(1), cl::sub(statsCommand), cl::cat(qdslCategory));

cl::opt<bool> json("json", cl::desc("Print JSON instead of a table"),
                   cl::sub(statsCommand), cl::cat(qdslCategory));

/// Writes through a temporary file and a rename, so an interrupted run never
/// leaves half an output behind.
int writeOutput(function_ref<void(raw_ostream &)> write) {
  if (Error error = writeToOutput(outputFile, [&](raw_ostream &os) {
        write(os);
        return Error::success();
      })) {
    WithColor::error(errs(), "qdsl")
        << "cannot write '" << outputFile << "': " << toString(std::move(error))
        << "\n";
    return 1;
  }
  return 0;
}

/// The front end and MLIR generation, with every diagnostic printed against
/// the source it points into.
class Session {
public:
  Session() : diags(sourceMgr), handler(sourceMgr, &context, errs()) {
    // Counts MLIR's errors too, then lets the source manager handler print.
    context.getDiagEngine().registerHandler([this](mlir::Diagnostic &d) {
      if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
        ++mlirErrors;
      return mlir::failure();
    });
  }

  bool load() {
    dsl::FrontendOptions options;
    options.includeDirs.assign(includeDirs.begin(), includeDirs.end());
    return dsl::loadProgram(inputFile, options, diags, program);
  }

  mlir::OwningOpRef<mlir::ModuleOp> generate() {
    dsl::MLIRGenOptions options;
    options.models.assign(modelNames.begin(), modelNames.end());
    for (const std::string &define : defines) {
      auto [name, value] = StringRef(define).split('=');
      if (name.empty() || value.empty() || !StringRef(define).contains('=')) {
        WithColor::error(errs(), "qdsl")
            << "-D" << define << ": expected -D name=value\n";
        return nullptr;
      }
      options.overrides.emplace_back(name.str(), value.str());
    }
    return dsl::generateMLIR(context, program, sourceMgr, options);
  }

  SourceMgr sourceMgr;
  dsl::Diagnostics diags;
  mlir::MLIRContext context;
  mlir::SourceMgrDiagnosticHandler handler;
  dsl::Program program;
  unsigned mlirErrors = 0;
};

int reportFailure(Session &session) {
  unsigned errors = session.diags.errorCount() + session.mlirErrors;
  if (errors > 0)
    errs() << errors << (errors == 1 ? " error" : " errors") << " in '"
           << inputFile << "'\n";
  return 1;
}

int runCompile() {
  Session session;
  if (!session.load())
    return reportFailure(session);
  if (emit == Emit::AST) {
    return writeOutput([&](raw_ostream &os) {
      for (const auto &file : session.program.files)
        dsl::dumpAST(*file, session.sourceMgr, os);
    });
  }
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return reportFailure(session);
  mlir::OpPrintingFlags flags;
  if (debugInfo)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false);
  return writeOutput([&](raw_ostream &os) { module->print(os, flags); });
}

int runStats() {
  if (batch < 1) {
    WithColor::error(errs(), "qdsl") << "--batch must be at least 1, got "
                                     << batch << "\n";
    return 1;
  }
  Session session;
  if (!session.load())
    return reportFailure(session);
  mlir::OwningOpRef<mlir::ModuleOp> module = session.generate();
  if (!module)
    return reportFailure(session);
  std::vector<qdsl::quadra::ModelStatistics> all;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    mlir::FailureOr<qdsl::quadra::ModelStatistics> stats =
        qdsl::quadra::computeModelStatistics(func, batch);
    if (failed(stats))
      return reportFailure(session);
    all.push_back(std::move(*stats));
  }
  return writeOutput([&](raw_ostream &os) {
    if (!json) {
      for (auto [i, stats] : enumerate(all)) {
        if (i > 0)
          os << "\n";
        qdsl::quadra::printModelStatistics(stats, os);
      }
      return;
    }
    json::Value value = nullptr;
    if (all.size() == 1) {
      value = qdsl::quadra::modelStatisticsToJSON(all.front());
    } else {
      json::Array models;
      for (const auto &stats : all)
        models.push_back(qdsl::quadra::modelStatisticsToJSON(stats));
      value = json::Object{{"models", std::move(models)}};
    }
    os << formatv("{0:2}", value) << "\n";
  });
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::SetVersionPrinter(
      [](raw_ostream &os) { os << "qdsl 0.1 (MLIR " << LLVM_VERSION_STRING << ")\n"; });
  cl::HideUnrelatedOptions(qdslCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "qdsl: a compiler for quadratic neural networks\n\n"
      "  qdsl compile FILE.qd [--emit=ast|mlir] [-o OUT]\n"
      "  qdsl stats FILE.qd [--batch N] [--json]\n");
  if (compileCommand)
    return runCompile();
  if (statsCommand)
    return runStats();
  errs() << "qdsl: expected a command: compile or stats (see qdsl --help)\n";
  return 1;
}
