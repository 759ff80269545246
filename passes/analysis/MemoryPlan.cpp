//===- MemoryPlan.cpp - one arena for a training step's tensors -----------===//

#include "passes/analysis/MemoryPlan.h"

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"
#include "passes/analysis/ModelStatistics.h"
#include "runtime/shipped/ArenaPlanner.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <map>

using namespace mlir;

namespace qdsl::quadra {

std::vector<Operation *> forwardOps(func::FuncOp step) {
  std::vector<Operation *> ops;
  for (Operation &op : step.getBody().front())
    if (!op.hasAttr(kBackwardOfAttr) &&
        !isa<SoftmaxCrossEntropyOp, SoftmaxCrossEntropyGradOp, func::ReturnOp>(op))
      ops.push_back(&op);
  return ops;
}

FailureOr<MemoryPlan> planTrainingMemory(func::FuncOp step, int64_t batch) {
  if (!step->hasAttr(kGradientsAttr))
    return step.emitError("'") << step.getSymName()
                               << "' is not a training step (run --quadra-autodiff first)";
  MemoryPlan plan;
  plan.function = step.getSymName().str();
  plan.batch = batch;
  if (auto policy = step->getAttrOfType<StringAttr>(kMemoryPolicyAttr))
    plan.policy = policy.str();
  bool tape = parseMemoryPolicy(plan.policy) == MemoryPolicy::KeepAll;

  Block &body = step.getBody().front();
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t end = 1;
  for (Operation &op : body)
    position[&op] = end++;
  // A tape keeps an op's output until that op's backward has run.
  llvm::DenseMap<int64_t, int64_t> backwardEnds;
  for (Operation &op : body)
    if (auto of = op.getAttrOfType<IntegerAttr>(kBackwardOfAttr))
      backwardEnds[of.getInt()] = std::max(backwardEnds[of.getInt()], position[&op]);

  auto add = [&](Value v, int64_t first) -> LogicalResult {
    FailureOr<uint64_t> elements = countElements(v.getType(), batch);
    if (failed(elements))
      return step.emitError("cannot size ") << v.getType() << " at batch " << batch;
    PlannedBuffer b;
    b.value = v;
    b.bytes = rt::alignToArena(*elements * 4);
    b.first = b.last = first;
    for (Operation *user : v.getUsers())
      b.last = std::max(b.last, isa<func::ReturnOp>(user) ? end : position[user]);
    plan.buffers.push_back(b);
    return success();
  };
  for (BlockArgument arg : body.getArguments())
    if (failed(add(arg, 0)))
      return failure();
  for (WeightOp weight : body.getOps<WeightOp>()) {
    FailureOr<uint64_t> elements = countElements(weight.getType(), batch);
    if (failed(elements))
      return step.emitError("cannot size weight '") << weight.getName() << "'";
    plan.parameterBytes += *elements * 4;
  }
  llvm::DenseMap<Operation *, int64_t> forwardIndex;
  for (auto [i, op] : llvm::enumerate(forwardOps(step)))
    forwardIndex[op] = i;
  for (Operation &op : body) {
    if (isa<WeightOp, func::ReturnOp>(op))
      continue;
    for (Value result : op.getResults()) {
      if (failed(add(result, position[&op])))
        return failure();
      auto it = forwardIndex.find(&op);
      if (tape && it != forwardIndex.end()) {
        auto endOfBackward = backwardEnds.find(it->second);
        if (endOfBackward != backwardEnds.end())
          plan.buffers.back().last =
              std::max(plan.buffers.back().last, endOfBackward->second);
      }
    }
  }
  plan.optimizerBytes = 2 * plan.parameterBytes;

  std::vector<rt::ArenaBuffer> layout;
  for (const PlannedBuffer &b : plan.buffers)
    layout.push_back({b.bytes, b.first, b.last, 0});
  plan.arenaBytes = rt::placeBuffers(layout);
  plan.liveBytesBound = rt::liveBytesBound(layout);
  for (auto [b, placed] : llvm::zip(plan.buffers, layout))
    b.offset = placed.offset;
  return plan;
}

void printMemoryPlan(const MemoryPlan &plan, llvm::raw_ostream &os) {
  auto bytes = [](uint64_t n) { return llvm::formatv("{0} B ({1})", n, formatBytes(n)).str(); };
  os << plan.function << " at batch " << plan.batch << ", policy "
     << (plan.policy.empty() ? "none" : plan.policy) << ": " << plan.buffers.size()
     << " tensors\n"
     << "  arena " << bytes(plan.arenaBytes) << ", at least " << bytes(plan.liveBytesBound)
     << " live at once\n"
     << "  parameters " << bytes(plan.parameterBytes) << ", optimiser state "
     << bytes(plan.optimizerBytes) << "\n"
     << "  peak " << bytes(plan.peakBytes()) << "\n";
}

} // namespace qdsl::quadra
