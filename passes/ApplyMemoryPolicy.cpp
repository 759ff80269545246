//===- ApplyMemoryPolicy.cpp - keep or recompute a training step's tensors ===//

#include "passes/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAMEMORYPOLICY
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

constexpr llvm::StringLiteral kRecompute = "quadra.recompute";
constexpr llvm::StringLiteral kBackwardOf = "quadra.backward_of";

/// Computes a recomputed value in the forward pass instead, next to the
/// forward op whose backward reads it (the fused kernel that computes xa
/// and xb anyway), so the backward reads it from there.
void keep(Operation *op, ArrayRef<Operation *> forward) {
  auto of = op->getAttrOfType<IntegerAttr>(kBackwardOf);
  op->moveBefore(forward[of.getInt()]);
  op->removeAttr(kRecompute);
}

/// Gives the backward pass its own copy of a forward op's result, computed
/// just before its first backward use, so the forward one dies early.
void recompute(Operation *op) {
  SmallVector<OpOperand *> backwardUses;
  for (OpOperand &use : op->getResult(0).getUses())
    if (use.getOwner()->hasAttr(kBackwardOf))
      backwardUses.push_back(&use);
  if (backwardUses.empty())
    return;
  Operation *first = backwardUses.front()->getOwner();
  for (OpOperand *use : backwardUses)
    if (use->getOwner()->isBeforeInBlock(first))
      first = use->getOwner();
  OpBuilder builder(first);
  Operation *copy = builder.clone(*op);
  copy->setAttr(kRecompute, builder.getUnitAttr());
  copy->setAttr(kBackwardOf, first->getAttr(kBackwardOf));
  for (OpOperand *use : backwardUses)
    use->set(copy->getResult(0));
}

struct QuadraMemoryPolicy
    : qdsl::quadra::impl::QuadraMemoryPolicyBase<QuadraMemoryPolicy> {
  using QuadraMemoryPolicyBase::QuadraMemoryPolicyBase;

  void runOnOperation() override {
    func::FuncOp step = getOperation();
    if (!step->hasAttr("quadra.gradients"))
      return;
    if (!isMemoryPolicy(policy)) {
      step.emitError("unknown memory policy '")
          << policy << "'; expected keep-all, paper or min-memory";
      return signalPassFailure();
    }
    SmallVector<Operation *> recomputed, cheap;
    for (Operation &op : step.getBody().front()) {
      if (op.hasAttr(kRecompute))
        recomputed.push_back(&op);
      else if (!op.hasAttr(kBackwardOf) &&
               isa<LayerNormOp, GeluOp, DepthwiseConv2DOp, QuadraticDepthwiseConv2DOp>(op))
        cheap.push_back(&op);
    }
    std::vector<Operation *> forward = forwardOps(step);
    if (policy != "min-memory")
      for (Operation *op : recomputed)
        keep(op, forward);
    else
      // Last first: a copy that reads another recomputed value then reads
      // that value's copy, not the forward one.
      for (Operation *op : llvm::reverse(cheap))
        recompute(op);
    step->setAttr("quadra.memory_policy", StringAttr::get(&getContext(), policy));
  }
};

} // namespace
