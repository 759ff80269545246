//===- qdsl-opt.cpp - run quadra passes on MLIR files ---------------------===//
//
// mlir-opt for the quadra dialect: parses a module, runs the requested passes
// or pipelines (passes/Pipelines.h: the ones qdsl runs) and prints the
// result. The lit tests of every pass and pipeline drive it.
//
//===----------------------------------------------------------------------===//

#include "dialect/QuadraDialect.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<qdsl::quadra::QuadraDialect, mlir::func::FuncDialect>();
  mlir::registerTransformsPasses();
  qdsl::quadra::registerQuadraPasses();
  qdsl::quadra::registerQuadraPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "qdsl-opt: passes on the quadra dialect\n", registry));
}
