//===- Supernet.cpp - a search space as one gated network -----------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRASUPERNET
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// Inlines every candidate of `choice` (the `index`-th choice layer), gated,
/// and returns the dictionary that describes the layer.
DictionaryAttr expandChoice(ChoiceOp choice, int64_t index) {
  OpBuilder builder(choice);
  MLIRContext *context = choice.getContext();
  auto type = cast<RankedTensorType>(choice.getResult().getType());
  int64_t channels = type.getShape().back();
  Location loc = choice.getLoc();
  SmallVector<Attribute> gates;
  Value sum;
  for (auto [c, region] : llvm::enumerate(choice.getAlternatives())) {
    Block &body = region.front();
    IRMapping mapping;
    mapping.map(body.getArgument(0), choice.getInput());
    auto path = DenseI64ArrayAttr::get(context, {index, static_cast<int64_t>(c)});
    for (Operation &op : body.without_terminator()) {
      Operation *copy = builder.clone(op, mapping);
      copy->setAttr(kPathAttr, path);
    }
    Value output = mapping.lookupOrDefault(body.getTerminator()->getOperand(0));
    std::string gateName =
        (choice.getLayer() + ".candidates." + std::to_string(c) + ".gate").str();
    gates.push_back(builder.getStringAttr(gateName));
    // Ones: the supernet as written computes the sum of its candidates; a
    // search sets the gates of each step.
    Value gate = builder.create<WeightOp>(
        loc, RankedTensorType::get({channels}, type.getElementType()), gateName,
        InitializerAttr::get(context, InitKind::Ones, 0.0));
    auto scaled = builder.create<LayerScaleOp>(loc, type, output, gate);
    scaled->setAttr(kGateAttr, path);
    sum = sum ? builder.create<AddOp>(loc, type, sum, scaled).getResult() : scaled.getResult();
  }
  choice.getResult().replaceAllUsesWith(sum);
  NamedAttribute entries[] = {
      builder.getNamedAttr("layer", choice.getLayerAttr()),
      builder.getNamedAttr("candidates", choice.getCandidates()),
      builder.getNamedAttr("gates", builder.getArrayAttr(gates))};
  choice.erase();
  return builder.getDictionaryAttr(entries);
}

struct QuadraSupernet : qdsl::quadra::impl::QuadraSupernetBase<QuadraSupernet> {
  using QuadraSupernetBase::QuadraSupernetBase;

  void runOnOperation() override {
    bool ok = true;
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      SmallVector<ChoiceOp> choices;
      function.walk<WalkOrder::PreOrder>([&](ChoiceOp choice) {
        choices.push_back(choice);
        return WalkResult::skip();
      });
      if (choices.empty())
        continue;
      for (ChoiceOp choice : choices)
        choice.walk([&](ChoiceOp inner) {
          if (inner != choice) {
            inner.emitError("a supernet needs every choice at the top level: layer '")
                << inner.getLayer() << "' is a choice inside a candidate of '"
                << choice.getLayer() << "'";
            ok = false;
          }
        });
      if (!ok)
        continue;
      SmallVector<Attribute> layers;
      for (auto [i, choice] : llvm::enumerate(choices))
        layers.push_back(expandChoice(choice, static_cast<int64_t>(i)));
      function->setAttr(kSupernetAttr, ArrayAttr::get(&getContext(), layers));
      function->setAttr(kKindAttr, StringAttr::get(&getContext(), "model"));
    }
    if (!ok)
      signalPassFailure();
  }
};

} // namespace
