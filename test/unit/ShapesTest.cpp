//===- ShapesTest.cpp - the shape rules of quadra ops ---------------------===//

#include "dialect/QuadraOps.h"
#include "dialect/QuadraShapes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace qdsl::quadra;

namespace {

class Shapes : public ::testing::Test {
protected:
  Shapes() : builder(&context) {
    context.loadDialect<QuadraDialect>();
    context.getDiagEngine().registerHandler([this](Diagnostic &d) {
      lastError = d.str();
      return success();
    });
  }
  RankedTensorType t(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, builder.getF32Type());
  }
  Location loc() { return builder.getUnknownLoc(); }

  MLIRContext context;
  Builder builder;
  std::string lastError;
  const int64_t dyn = ShapedType::kDynamic;
};

TEST_F(Shapes, ConvOutputFollowsStrideAndPadding) {
  auto r = inferConv2DType(loc(), t({dyn, 224, 224, 3}), t({4, 4, 3, 64}),
                           t({64}), {4, 4}, {0, 0}, 1);
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, t({dyn, 56, 56, 64}));
  // 7×7, stride 2, padding 3 on 15: floor((15 + 6 - 7) / 2) + 1 = 8
  r = inferConv2DType(loc(), t({1, 15, 15, 8}), t({7, 7, 4, 16}), Type(),
                      {2, 2}, {3, 3}, 2);
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, t({1, 8, 8, 16}));
}

TEST_F(Shapes, ConvRejectsMismatchedChannelsAndGroups) {
  EXPECT_TRUE(failed(inferConv2DType(loc(), t({1, 8, 8, 6}), t({3, 3, 4, 8}),
                                     Type(), {1, 1}, {1, 1}, 1)));
  EXPECT_NE(lastError.find("the input has 6 channels"), std::string::npos)
      << lastError;
  EXPECT_TRUE(failed(inferConv2DType(loc(), t({1, 8, 8, 6}), t({3, 3, 2, 8}),
                                     Type(), {1, 1}, {1, 1}, 4)));
  EXPECT_NE(lastError.find("do not divide into 4 groups"), std::string::npos)
      << lastError;
  EXPECT_TRUE(failed(inferConv2DType(loc(), t({1, 2, 2, 3}), t({5, 5, 3, 8}),
                                     Type(), {1, 1}, {0, 0}, 1)));
  EXPECT_NE(lastError.find("larger than the padded input"), std::string::npos);
}

TEST_F(Shapes, QuadraticConvNeedsThreeEqualFilters) {
  auto x = t({dyn, 56, 56, 64});
  auto f = t({7, 7, 64});
  auto r = inferQuadraticDepthwiseConv2DType(loc(), x, f, f, f, TypeRange{},
                                             {1, 1}, {3, 3});
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, x);
  EXPECT_TRUE(failed(inferQuadraticDepthwiseConv2DType(
      loc(), x, f, t({5, 5, 64}), f, TypeRange{}, {1, 1}, {3, 3})));
  EXPECT_NE(lastError.find("three weights must have one type"), std::string::npos);
  SmallVector<Type> twoBiases = {t({64}), t({64})};
  EXPECT_TRUE(failed(inferQuadraticDepthwiseConv2DType(
      loc(), x, f, f, f, twoBiases, {1, 1}, {3, 3})));
  EXPECT_NE(lastError.find("no biases or three"), std::string::npos);
}

TEST_F(Shapes, LinearActsOnTheLastAxis) {
  auto r = inferLinearType(loc(), t({dyn, 7, 7, 512}), t({512, 1000}), Type());
  ASSERT_TRUE(succeeded(r));
  EXPECT_EQ(*r, t({dyn, 7, 7, 1000}));
  EXPECT_TRUE(failed(inferLinearType(loc(), t({2, 10}), t({9, 3}), Type())));
  EXPECT_TRUE(failed(inferLinearType(loc(), t({2, 10}), t({10, 3}), t({4}))));
}

TEST_F(Shapes, CountsElementsWithTheBatch) {
  EXPECT_EQ(*countElements(t({dyn, 3, 4}), 5), 60u);
  EXPECT_TRUE(failed(countElements(t({2, dyn}), 5)));
  EXPECT_TRUE(failed(countElements(t({1 << 30, 1 << 30, 1 << 30}), 1)));
}

TEST_F(Shapes, FloatsPrintShortAndParseBack) {
  EXPECT_EQ(formatFloat(1e-6), "1.0e-06");
  EXPECT_EQ(formatFloat(0.02), "0.02");
  EXPECT_EQ(formatFloat(2.0), "2.0");
  EXPECT_EQ(formatFloat(0.1 + 0.2), "0.30000000000000004");
}

} // namespace
