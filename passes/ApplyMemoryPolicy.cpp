//===- ApplyMemoryPolicy.cpp - keep or recompute a training step's tensors ===//

#include "passes/analysis/MemoryPlan.h"
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

/// Computes a recomputed value in the forward pass instead, next to the
/// forward op whose backward reads it (the fused kernel that computes xa
/// and xb anyway), so the backward reads it from there.
LogicalResult keep(Operation *op, ArrayRef<Operation *> forward) {
  auto of = op->getAttrOfType<IntegerAttr>(kBackwardOfAttr);
  if (!of || of.getInt() < 0 || of.getInt() >= int64_t(forward.size()))
    return op->emitError("a recomputed value needs '")
           << kBackwardOfAttr << "', the position of one of the "
           << forward.size() << " forward ops";
  Operation *target = forward[of.getInt()];
  for (Value operand : op->getOperands())
    if (Operation *def = operand.getDefiningOp();
        def && def->getBlock() == target->getBlock() && !def->isBeforeInBlock(target))
      return op->emitError("cannot compute this value in the forward pass: an operand is "
                           "defined after forward op ")
             << of.getInt();
  op->moveBefore(target);
  op->removeAttr(kRecomputeAttr);
  return success();
}

/// Gives the backward pass its own copy of a forward op's result, computed
/// just before its first backward use, so the forward one dies early.
void recompute(Operation *op) {
  SmallVector<OpOperand *> backwardUses;
  for (OpOperand &use : op->getResult(0).getUses())
    if (use.getOwner()->hasAttr(kBackwardOfAttr))
      backwardUses.push_back(&use);
  if (backwardUses.empty())
    return;
  Operation *first = backwardUses.front()->getOwner();
  for (OpOperand *use : backwardUses)
    if (use->getOwner()->isBeforeInBlock(first))
      first = use->getOwner();
  OpBuilder builder(first);
  Operation *copy = builder.clone(*op);
  copy->setAttr(kRecomputeAttr, builder.getUnitAttr());
  copy->setAttr(kBackwardOfAttr, first->getAttr(kBackwardOfAttr));
  for (OpOperand *use : backwardUses)
    use->set(copy->getResult(0));
}

/// An expanding pointwise layer: the first of a block's channel MLP, whose
/// output (4C wide, and the GELU's after it) are the largest tensors a
/// block keeps. Recomputing it costs one product per block (about 8% of
/// QuadraNet36-T's step at batch 16) and saves 30% of its memory; the
/// fused MLP kernel of the forward pass then never writes the hidden
/// tensor. Contracting layers are kept: their outputs are 4× smaller for
/// the same cost.
bool isExpandingLinear(Operation &op) {
  auto linear = dyn_cast<LinearOp>(op);
  if (!linear)
    return false;
  int64_t in = cast<RankedTensorType>(linear.getInput().getType()).getShape().back();
  int64_t out = cast<RankedTensorType>(linear.getResult().getType()).getShape().back();
  return !ShapedType::isDynamic(in) && !ShapedType::isDynamic(out) && out > in;
}

struct QuadraMemoryPolicy
    : qdsl::quadra::impl::QuadraMemoryPolicyBase<QuadraMemoryPolicy> {
  using QuadraMemoryPolicyBase::QuadraMemoryPolicyBase;

  void runOnOperation() override {
    func::FuncOp step = getOperation();
    if (!step->hasAttr(kGradientsAttr))
      return;
    SmallVector<Operation *> recomputed, cheap;
    for (Operation &op : step.getBody().front()) {
      if (op.hasAttr(kRecomputeAttr))
        recomputed.push_back(&op);
      else if (!op.hasAttr(kBackwardOfAttr) &&
               (isa<LayerNormOp, GeluOp, DepthwiseConv2DOp, QuadraticDepthwiseConv2DOp>(op) ||
                isExpandingLinear(op)))
        cheap.push_back(&op);
    }
    std::vector<Operation *> forward = forwardOps(step);
    if (policy != MemoryPolicy::MinMemory) {
      for (Operation *op : recomputed)
        if (failed(keep(op, forward)))
          return signalPassFailure();
    } else {
      // Last first: a copy that reads another recomputed value then reads
      // that value's copy, not the forward one.
      for (Operation *op : llvm::reverse(cheap))
        recompute(op);
    }
    step->setAttr(kMemoryPolicyAttr, StringAttr::get(&getContext(), memoryPolicyName(policy)));
  }
};

} // namespace
