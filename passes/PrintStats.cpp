//===- PrintStats.cpp - print the costs of every model in a module --------===//

#include "passes/analysis/ModelStatistics.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAPRINTSTATS
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

struct QuadraPrintStats : qdsl::quadra::impl::QuadraPrintStatsBase<QuadraPrintStats> {
  using QuadraPrintStatsBase::QuadraPrintStatsBase;

  void runOnOperation() override {
    if (batch < 1) {
      getOperation().emitError("quadra-print-stats: batch must be at least 1, got ")
          << batch;
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>()) {
      FailureOr<ModelStatistics> stats = computeModelStatistics(func, batch);
      if (failed(stats))
        return signalPassFailure();
      printModelStatistics(*stats, llvm::outs());
    }
    markAllAnalysesPreserved();
  }
};

} // namespace
