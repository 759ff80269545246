//===- MemoryPlan.h - one arena for a training step's tensors ---*- C++ -*-===//
//
// A static memory plan for a training step (the function --quadra-autodiff
// builds): every activation, gradient and loss tensor gets an offset in one
// arena from its lifetime in program order, so that tensors whose lifetimes
// do not overlap share memory. Parameters and the optimiser's state live
// outside the arena for the whole run and are counted apart.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_PASSES_ANALYSIS_MEMORYPLAN_H
#define QDSL_PASSES_ANALYSIS_MEMORYPLAN_H

#include "passes/MemoryPolicy.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qdsl::quadra {

/// The forward ops of a training step, in the order whose positions the
/// `quadra.backward_of` attributes of its backward ops refer to: every op
/// but the loss, its gradient, the return and the backward ops.
std::vector<mlir::Operation *> forwardOps(mlir::func::FuncOp step);

struct PlannedBuffer {
  mlir::Value value;
  uint64_t bytes = 0, offset = 0;
  /// Positions in the function (arguments: 0) of the definition and the
  /// last use.
  int64_t first = 0, last = 0;
};

struct MemoryPlan {
  std::string function, policy;
  int64_t batch = 1;
  std::vector<PlannedBuffer> buffers;
  /// End of the arena: the planned peak of activations and gradients.
  uint64_t arenaBytes = 0;
  /// The most bytes live at one time: no plan can do better.
  uint64_t liveBytesBound = 0;
  /// Weights, and AdamW's two moments per weight.
  uint64_t parameterBytes = 0, optimizerBytes = 0;

  uint64_t peakBytes() const { return arenaBytes + parameterBytes + optimizerBytes; }
};

/// Plans `step`, a training step, with `batch` for the dynamic batch. Fails
/// with a diagnostic on a function that is not one or a size that overflows.
mlir::FailureOr<MemoryPlan> planTrainingMemory(mlir::func::FuncOp step, int64_t batch);

void printMemoryPlan(const MemoryPlan &plan, llvm::raw_ostream &os);

} // namespace qdsl::quadra

#endif // QDSL_PASSES_ANALYSIS_MEMORYPLAN_H
