//===- PlanMemory.cpp - print the memory plan of every training step ------===//

#include "passes/analysis/MemoryPlan.h"
#include "passes/Passes.h"

#include "llvm/Support/raw_ostream.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAPLANMEMORY
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

struct QuadraPlanMemory : qdsl::quadra::impl::QuadraPlanMemoryBase<QuadraPlanMemory> {
  using QuadraPlanMemoryBase::QuadraPlanMemoryBase;

  void runOnOperation() override {
    for (auto step : getOperation().getOps<func::FuncOp>()) {
      if (!step->hasAttr(kGradientsAttr))
        continue;
      FailureOr<MemoryPlan> plan = planTrainingMemory(step, batch);
      if (failed(plan))
        return signalPassFailure();
      printMemoryPlan(*plan, llvm::outs());
    }
  }
};

} // namespace
