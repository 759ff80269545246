//===- FuseQDWConv.cpp - dwconv ⊙ dwconv + dwconv into one qdwconv --------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAFUSEQDWCONV
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// True when every use of `value` is by `user` (a value may be used twice by
/// one op, as in dwconv(x)⊙dwconv(x) with a single conv).
bool onlyUsedBy(Value value, Operation *user) {
  return llvm::all_of(value.getUsers(),
                      [&](Operation *u) { return u == user; });
}

/// Whether `a` and `b` compute the same kind of window over the same input.
bool sameWindow(DepthwiseConv2DOp a, DepthwiseConv2DOp b) {
  return a.getInput() == b.getInput() &&
         a.getFilter().getType() == b.getFilter().getType() &&
         a.getStride() == b.getStride() && a.getPadding() == b.getPadding() &&
         static_cast<bool>(a.getBias()) == static_cast<bool>(b.getBias());
}

struct FuseQDWConvPattern : OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (auto [productSide, linearSide] :
         {std::pair{add.getLhs(), add.getRhs()},
          std::pair{add.getRhs(), add.getLhs()}}) {
      if (succeeded(fuse(add, productSide, linearSide, rewriter)))
        return success();
    }
    return rewriter.notifyMatchFailure(add, "not (dwconv ⊙ dwconv) + dwconv");
  }

  LogicalResult fuse(AddOp add, Value productSide, Value linearSide,
                     PatternRewriter &rewriter) const {
    auto mul = productSide.getDefiningOp<MulOp>();
    auto xc = linearSide.getDefiningOp<DepthwiseConv2DOp>();
    if (!mul || !xc)
      return failure();
    auto xa = mul.getLhs().getDefiningOp<DepthwiseConv2DOp>();
    auto xb = mul.getRhs().getDefiningOp<DepthwiseConv2DOp>();
    if (!xa || !xb || !sameWindow(xa, xb) || !sameWindow(xa, xc))
      return failure();
    // Every intermediate must die inside the pattern, or fusing would have
    // to keep it alive anyway.
    if (!onlyUsedBy(mul.getResult(), add) ||
        !onlyUsedBy(xa.getResult(), mul) || !onlyUsedBy(xb.getResult(), mul) ||
        !onlyUsedBy(xc.getResult(), add))
      return failure();

    SmallVector<Value, 3> biases;
    if (xa.getBias())
      biases = {xa.getBias(), xb.getBias(), xc.getBias()};
    Location loc = rewriter.getFusedLoc(
        {xa.getLoc(), xb.getLoc(), xc.getLoc(), mul.getLoc(), add.getLoc()});
    auto fused = rewriter.create<QuadraticDepthwiseConv2DOp>(
        loc, add.getType(), xa.getInput(), xa.getFilter(), xb.getFilter(),
        xc.getFilter(), biases, xa.getStrideAttr(), xa.getPaddingAttr());
    rewriter.replaceOp(add, fused.getResult());
    rewriter.eraseOp(mul);
    rewriter.eraseOp(xa);
    if (xb != xa)
      rewriter.eraseOp(xb);
    rewriter.eraseOp(xc);
    return success();
  }
};

struct QuadraFuseQDWConv : qdsl::quadra::impl::QuadraFuseQDWConvBase<QuadraFuseQDWConv> {
  void runOnOperation() override {
    if (failed(applyPattern<FuseQDWConvPattern>(getOperation())))
      signalPassFailure();
  }
};

} // namespace
