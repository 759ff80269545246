//===- RecomputeGatePaths.cpp - candidates recomputed for gate gradients --===//

#include "passes/analysis/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

#include <map>

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRARECOMPUTEGATEPATHS
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

struct QuadraRecomputeGatePaths
    : qdsl::quadra::impl::QuadraRecomputeGatePathsBase<QuadraRecomputeGatePaths> {
  using QuadraRecomputeGatePathsBase::QuadraRecomputeGatePathsBase;

  void runOnOperation() override {
    func::FuncOp step = getOperation();
    if (!step->hasAttr(kGradientsAttr))
      return;
    std::vector<Operation *> forward = forwardOps(step);
    // The forward ops of each candidate, in order (not the copies a memory
    // policy made for the backward pass).
    std::map<std::pair<int64_t, int64_t>, SmallVector<Operation *>> paths;
    for (Operation *op : forward)
      if (auto path = op->getAttrOfType<DenseI64ArrayAttr>(kPathAttr); path && path.size() == 2)
        paths[{path[0], path[1]}].push_back(op);
    for (Operation &op : llvm::make_early_inc_range(step.getBody().front())) {
      auto mul = dyn_cast<MulOp>(op);
      auto of = mul ? mul->getAttrOfType<IntegerAttr>(kBackwardOfAttr) : IntegerAttr();
      if (!of || of.getInt() < 0 || of.getInt() >= int64_t(forward.size()))
        continue;
      auto gate = forward[of.getInt()]->getAttrOfType<DenseI64ArrayAttr>(kGateAttr);
      if (!gate)
        continue;
      // dgate = channel_sum(dy ⊙ o_c): o_c is the operand computed by the
      // candidate (in the forward pass, or a memory policy's copy of it).
      Value gated = forward[of.getInt()]->getOperand(0);
      for (Value operand : mul->getOperands())
        if (Operation *def = operand.getDefiningOp())
          if (auto path = def->getAttrOfType<DenseI64ArrayAttr>(kPathAttr);
              path && path.size() == 2 && path[0] == gate[0] && path[1] == gate[1])
            gated = operand;
      auto it = paths.find({gate[0], gate[1]});
      if (it == paths.end())
        continue;  // identity: the choice's input, computed anyway
      OpBuilder builder(mul);
      IRMapping mapping;
      auto tag = DenseI64ArrayAttr::get(&getContext(), {gate[0], gate[1], 1});
      for (Operation *original : it->second) {
        if (isa<WeightOp>(original))
          continue;
        Operation *copy = builder.clone(*original, mapping);
        copy->setAttr(kPathAttr, tag);
        copy->setAttr(kBackwardOfAttr, of);
        copy->removeAttr(kRecomputeAttr);
      }
      Value original = forward[of.getInt()]->getOperand(0);
      Value copy = mapping.lookupOrDefault(original);
      for (OpOperand &operand : mul->getOpOperands())
        if (operand.get() == gated)
          operand.set(copy);
      // A memory policy's copy that only this product read is dead now.
      if (Operation *def = gated.getDefiningOp(); def && def != original.getDefiningOp() &&
                                                  def->use_empty())
        def->erase();
    }
  }
};

} // namespace
