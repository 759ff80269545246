//===- FixChoices.cpp - one architecture out of a search space ------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"

#include <random>

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAFIXCHOICES
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

std::string candidateList(ChoiceOp choice) {
  std::string list;
  for (auto [i, name] : llvm::enumerate(choice.getCandidates().getAsValueRange<StringAttr>()))
    list += (i ? ", " : "") + std::to_string(i) + " = " + name.str();
  return list;
}

/// Replaces `choice` by the ops of its candidate `pick`.
void inlineCandidate(ChoiceOp choice, size_t pick) {
  Block &body = choice.getAlternatives()[pick].front();
  OpBuilder builder(choice);
  IRMapping mapping;
  mapping.map(body.getArgument(0), choice.getInput());
  for (Operation &op : body.without_terminator())
    builder.clone(op, mapping);
  Value yielded = body.getTerminator()->getOperand(0);
  choice.getResult().replaceAllUsesWith(mapping.lookupOrDefault(yielded));
  choice.erase();
}

struct QuadraFixChoices : qdsl::quadra::impl::QuadraFixChoicesBase<QuadraFixChoices> {
  using QuadraFixChoicesBase::QuadraFixChoicesBase;

  void runOnOperation() override {
    // Outermost choices only: a candidate's own choices are numbered after
    // it is inlined, in a following round.
    std::vector<ChoiceOp> choices;
    getOperation().walk<WalkOrder::PreOrder>([&](ChoiceOp choice) {
      choices.push_back(choice);
      return WalkResult::skip();
    });
    if (choices.empty() && (seed >= 0 || !picks.empty())) {
      emitError(getOperation().getLoc())
          << "--choices fixes the choices of a search space; this model has none";
      return signalPassFailure();
    }
    if (seed < 0 && picks.size() != choices.size()) {
      std::string layers;
      for (ChoiceOp c : choices)
        layers += (layers.empty() ? "" : ", ") + c.getLayer().str();
      emitError(getOperation().getLoc())
          << "quadra-fix-choices got " << picks.size() << " picks for "
          << choices.size() << " choices (" << layers << ")";
      return signalPassFailure();
    }
    std::mt19937_64 random(static_cast<uint64_t>(seed < 0 ? 0 : seed));
    // The picks of each function, recorded on it (`qdsl compile --emit=qd`
    // writes them out; a search reports them).
    llvm::MapVector<Operation *, SmallVector<int64_t>> picked;
    for (auto [i, choice] : llvm::enumerate(choices)) {
      size_t count = choice.getAlternatives().size();
      int64_t pick = seed >= 0 ? static_cast<int64_t>(random() % count) : picks[i];
      if (pick < 0 || static_cast<size_t>(pick) >= count) {
        choice.emitError("pick ")
            << pick << " for layer '" << choice.getLayer() << "' is out of range; its "
            << count << " candidates are " << candidateList(choice);
        return signalPassFailure();
      }
      picked[choice->getParentOfType<func::FuncOp>()].push_back(pick);
      inlineCandidate(choice, static_cast<size_t>(pick));
    }
    for (auto &[function, picks] : picked) {
      SmallVector<int64_t> all;
      if (auto earlier = function->getAttrOfType<DenseI64ArrayAttr>(kPicksAttr))
        all.assign(earlier.asArrayRef().begin(), earlier.asArrayRef().end());
      all.append(picks.begin(), picks.end());
      function->setAttr(kPicksAttr, DenseI64ArrayAttr::get(function->getContext(), all));
    }
    // A function that was a search space is now one of its models.
    getOperation().walk([](func::FuncOp function) {
      auto kind = function->getAttrOfType<StringAttr>(kKindAttr);
      if (kind && kind.getValue() == "space" &&
          !function.walk([](ChoiceOp) { return WalkResult::interrupt(); }).wasInterrupted())
        function->setAttr(kKindAttr, StringAttr::get(function.getContext(), "model"));
    });
  }
};

} // namespace
