//===- ExpandQDWConv.cpp - qdwconv into three dwconvs, mul and add --------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAEXPANDQDWCONV
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

struct ExpandQDWConvPattern : OpRewritePattern<QuadraticDepthwiseConv2DOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(QuadraticDepthwiseConv2DOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Type type = op.getResult().getType();
    ValueRange biases = op.getBiases();
    auto branch = [&](Value filter, unsigned i) -> Value {
      Value bias = biases.empty() ? Value() : biases[i];
      return rewriter.create<DepthwiseConv2DOp>(
          loc, type, op.getInput(), filter, bias, op.getStrideAttr(),
          op.getPaddingAttr());
    };
    Value xa = branch(op.getWa(), 0);
    Value xb = branch(op.getWb(), 1);
    Value xc = branch(op.getWc(), 2);
    Value product = rewriter.create<MulOp>(loc, type, xa, xb);
    rewriter.replaceOpWithNewOp<AddOp>(op, type, product, xc);
    return success();
  }
};

struct QuadraExpandQDWConv
    : qdsl::quadra::impl::QuadraExpandQDWConvBase<QuadraExpandQDWConv> {
  void runOnOperation() override {
    if (failed(applyPattern<ExpandQDWConvPattern>(getOperation())))
      signalPassFailure();
  }
};

} // namespace
