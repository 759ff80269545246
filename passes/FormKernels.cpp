//===- FormKernels.cpp - group ops into kernels by fusion rules -----------===//

#include "codegen/Targets.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAFORMKERNELS
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// Whether `op` is a layer op (forward or backward) that belongs in some
/// kernel.
bool isLayerOp(Operation &op) {
  return op.getDialect() && llvm::isa<QuadraDialect>(op.getDialect()) &&
         !llvm::isa<WeightOp, ChoiceOp, YieldOp, KernelOp, IdentityOp>(op) &&
         op.getNumResults() >= 1;
}

/// The only user of `op`'s only result, if it uses it exactly once.
Operation *soleUser(Operation *op) {
  if (op->getNumResults() != 1)
    return nullptr;
  Value result = op->getResult(0);
  if (!result.hasOneUse())
    return nullptr;
  return *result.getUsers().begin();
}

class KernelFormer {
public:
  KernelFormer(const qdsl::codegen::Target &target) : target(target) {}

  void run(Block &block) {
    // Identity is no computation: its users read its input directly.
    for (Operation &op : llvm::make_early_inc_range(block))
      if (auto identity = llvm::dyn_cast<IdentityOp>(op)) {
        identity.getResult().replaceAllUsesWith(identity.getInput());
        identity.erase();
      }
    std::vector<std::pair<SmallVector<Operation *>, std::string>> groups;
    llvm::DenseSet<Operation *> taken;
    for (Operation &op : block) {
      if (!isLayerOp(op) || taken.count(&op))
        continue;
      SmallVector<Operation *> chain;
      std::string family;
      for (const qdsl::codegen::FusionRule &rule : target.rules)
        if (match(&op, rule, taken, chain)) {
          family = rule.family;
          break;
        }
      if (family.empty()) {
        chain = {&op};
        family = op.getName().stripDialect().str();
      }
      taken.insert(chain.begin(), chain.end());
      groups.push_back({chain, family});
    }
    for (auto &[ops, family] : groups)
      outline(ops, family);
  }

private:
  bool match(Operation *first, const qdsl::codegen::FusionRule &rule,
             const llvm::DenseSet<Operation *> &taken,
             SmallVector<Operation *> &chain) {
    chain.clear();
    Operation *op = first;
    for (auto [i, name] : llvm::enumerate(rule.chain)) {
      if (i > 0) {
        op = soleUser(chain.back());
        if (!op || op->getBlock() != first->getBlock())
          return false;
      }
      if (op->getName().getStringRef() != name || taken.count(op) ||
          !isLayerOp(*op))
        return false;
      chain.push_back(op);
    }
    return true;
  }

  /// Moves `ops` into a new kernel placed where the last of them was.
  void outline(ArrayRef<Operation *> ops, StringRef family) {
    Operation *last = ops.back();
    llvm::DenseSet<Operation *> inside(ops.begin(), ops.end());
    llvm::SetVector<Value> inputs;
    SmallVector<Location> locs;
    for (Operation *op : ops) {
      locs.push_back(op->getLoc());
      for (Value operand : op->getOperands())
        if (!inside.count(operand.getDefiningOp()))
          inputs.insert(operand);
    }
    OpBuilder builder(last);
    Location loc = builder.getFusedLoc(locs);
    auto kernel = builder.create<KernelOp>(
        loc, last->getResultTypes(), inputs.getArrayRef(),
        uniqueName(getLayerName(last->getLoc()), family), family);
    Block *body = builder.createBlock(&kernel.getBody());
    IRMapping mapping;
    for (Value input : inputs)
      mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
    for (Operation *op : ops)
      builder.clone(*op, mapping);
    SmallVector<Value> yielded;
    for (Value result : last->getResults())
      yielded.push_back(mapping.lookup(result));
    builder.create<YieldOp>(last->getLoc(), yielded);
    last->replaceAllUsesWith(kernel.getOutputs());
    for (Operation *op : llvm::reverse(ops))
      op->erase();
  }

  /// `layer/family`, numbered when a layer has several of one family.
  std::string uniqueName(const std::string &layer, StringRef family) {
    std::string base = (layer.empty() ? std::string("kernel") : layer) + "/" +
                       family.str();
    unsigned n = used[base]++;
    return n == 0 ? base : base + "#" + std::to_string(n);
  }

  const qdsl::codegen::Target &target;
  llvm::StringMap<unsigned> used;
};

struct QuadraFormKernels
    : qdsl::quadra::impl::QuadraFormKernelsBase<QuadraFormKernels> {
  using QuadraFormKernelsBase::QuadraFormKernelsBase;

  void runOnOperation() override {
    const qdsl::codegen::Target *found = qdsl::codegen::lookupTarget(target);
    if (!found) {
      std::string known;
      for (const auto &t : qdsl::codegen::allTargets())
        known += (known.empty() ? "" : ", ") + t.name;
      getOperation()->emitError("quadra-form-kernels: unknown target '")
          << target << "'; expected one of " << known;
      return signalPassFailure();
    }
    KernelFormer former(*found);
    // Blocks of choices too; kernels never nest.
    SmallVector<Block *> blocks;
    getOperation()->walk([&](Block *block) {
      if (!llvm::isa<KernelOp>(block->getParentOp()))
        blocks.push_back(block);
    });
    for (Block *block : blocks)
      former.run(*block);
  }
};

} // namespace
