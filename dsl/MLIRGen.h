//===- MLIRGen.h - a checked .qd program to the quadra dialect --*- C++ -*-===//
//
// Instantiates models: evaluates parameters, expands blocks, stages and
// search candidates, and builds one func.func of quadra ops per model. Every
// op carries its layer name and source position (through the block calls
// that produced it), so a shape error in a block names the model line that
// instantiated it.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_MLIRGEN_H
#define QDSL_DSL_MLIRGEN_H

#include "dsl/Sema.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace qdsl::dsl {

struct MLIRGenOptions {
  /// Models to build; empty means every model and space of the main file.
  std::vector<std::string> models;
  /// `-D name=value`: model parameters to override.
  std::vector<std::pair<std::string, std::string>> overrides;
};

/// Builds the module, or reports errors through the context's diagnostic
/// handler and returns null.
mlir::OwningOpRef<mlir::ModuleOp> generateMLIR(mlir::MLIRContext &context,
                                               const Program &program,
                                               const llvm::SourceMgr &sourceMgr,
                                               const MLIRGenOptions &options);

} // namespace qdsl::dsl

#endif // QDSL_DSL_MLIRGEN_H
