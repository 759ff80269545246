//===- FrontendFuzzer.cpp - libFuzzer target for the .qd front end --------===//
//
// Feeds arbitrary bytes through everything a user's file reaches: lexer,
// parser, semantic checks, model instantiation, verification and the cost
// counts. Any crash, sanitizer report, hang or runaway allocation is a bug:
// bad input must only ever produce diagnostics.
//
//===----------------------------------------------------------------------===//

#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "passes/analysis/ModelStatistics.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::SourceMgr sourceMgr;
  llvm::raw_null_ostream quiet;
  qdsl::dsl::Diagnostics diags(sourceMgr, 30, quiet);
  qdsl::dsl::FrontendOptions options;
  options.allowFileImports = false;
  qdsl::dsl::Program program;
  auto buffer = llvm::MemoryBuffer::getMemBufferCopy(text, "fuzz.qd");
  if (!qdsl::dsl::loadProgramFromBuffer(std::move(buffer), options, diags,
                                        program))
    return 0;

  mlir::MLIRContext context;
  context.getDiagEngine().registerHandler(
      [](mlir::Diagnostic &) { return mlir::success(); });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      qdsl::dsl::generateMLIR(context, program, sourceMgr, {});
  if (!module)
    return 0;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    auto stats = qdsl::quadra::computeModelStatistics(func, 2);
    if (mlir::succeeded(stats)) {
      std::string sink;
      llvm::raw_string_ostream os(sink);
      qdsl::quadra::printModelStatistics(*stats, os);
    }
  }
  std::string printed;
  llvm::raw_string_ostream os(printed);
  module->print(os);
  return 0;
}
