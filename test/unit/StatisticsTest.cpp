//===- StatisticsTest.cpp - parameter and MAC counts ----------------------===//
//
// Checks the counts of whole models against closed forms written out here,
// independently of the code that counts op by op.
//
//===----------------------------------------------------------------------===//

#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "passes/analysis/ModelStatistics.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

using namespace qdsl;

namespace {

quadra::ModelStatistics statsOf(const std::string &text, int64_t batch) {
  llvm::SourceMgr sourceMgr;
  dsl::Diagnostics diags(sourceMgr);
  dsl::FrontendOptions options;
  options.allowFileImports = false;
  dsl::Program program;
  EXPECT_TRUE(dsl::loadProgramFromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(text, "t.qd"), options, diags, program));
  mlir::MLIRContext context;
  auto module = dsl::generateMLIR(context, program, sourceMgr, {});
  EXPECT_TRUE(module);
  auto func = *module->getOps<mlir::func::FuncOp>().begin();
  auto stats = quadra::computeModelStatistics(func, batch);
  EXPECT_TRUE(mlir::succeeded(stats));
  return *stats;
}

// One QuadraBlock of width c, expansion e, kernel k.
uint64_t quadraBlockParams(uint64_t c, uint64_t e, uint64_t k) {
  return 2 * (2 * c)              // two layer norms
         + 3 * (k * k * c + c)    // three depthwise filters with biases
         + (c * e * c + e * c)    // pwconv1
         + (e * c * c + c)        // pwconv2
         + 2 * c;                 // two layer-scale vectors
}

uint64_t quadraBlockMacs(uint64_t hw, uint64_t c, uint64_t e, uint64_t k) {
  return hw * c * (3 * k * k + 1) + 2 * hw * c * e * c;
}

TEST(Statistics, QuadraNet36TMatchesItsClosedForm) {
  auto s = statsOf(R"(import "std/blocks.qd"
    model QuadraNet36_T(classes = 1000, C = 64) {
      input f32[224, 224, 3]
      stem  patchify(out = C, k = 4)
      stage quadra x 3
      down  downsample(out = 2 * C)
      stage quadra x 3
      down  downsample(out = 4 * C)
      stage quadra x 27
      down  downsample(out = 8 * C)
      stage quadra x 3
      head  classifier(classes)
    })", 1);
  uint64_t widths[] = {64, 128, 256, 512}, depths[] = {3, 3, 27, 3},
           sizes[] = {56, 28, 14, 7};
  uint64_t params = 4 * 4 * 3 * 64 + 64 + 2 * 64; // stem conv + norm
  uint64_t macs = 56 * 56 * 64 * (4 * 4 * 3);
  for (int i = 0; i < 4; ++i) {
    params += depths[i] * quadraBlockParams(widths[i], 4, 7);
    macs += depths[i] * quadraBlockMacs(sizes[i] * sizes[i], widths[i], 4, 7);
    if (i > 0) { // downsample: norm, 2×2 stride-2 conv
      params += 2 * widths[i - 1] + 2 * 2 * widths[i - 1] * widths[i] + widths[i];
      macs += sizes[i] * sizes[i] * widths[i] * (2 * 2 * widths[i - 1]);
    }
  }
  params += 2 * 512 + 512 * 1000 + 1000; // head norm + fc
  macs += 512 * 1000;
  EXPECT_EQ(s.params, params);
  EXPECT_EQ(s.macs, macs);
  // The paper's Table I: 23.6 M parameters, 4.1 G FLOPs (MACs).
  EXPECT_NEAR(s.params / 1e6, 23.6, 0.05);
  EXPECT_NEAR(s.macs / 1e9, 4.1, 0.05);
}

TEST(Statistics, ScalesWithTheBatch) {
  const char *xor_ = "model Xor { input f32[2] layer qlinear(out = 1) }";
  auto one = statsOf(xor_, 1), many = statsOf(xor_, 64);
  EXPECT_EQ(one.params, 9u); // three 2×1 weights, three biases
  EXPECT_EQ(one.macs, 7u);   // 3·2 products, then xa·xb + xc
  EXPECT_EQ(many.macs, 64 * one.macs);
  EXPECT_EQ(many.params, one.params);
  EXPECT_EQ(many.activationBytes, 64 * one.activationBytes);
}

TEST(Statistics, PeakFollowsLiveness) {
  // input (4 KiB) -> relu (4) -> relu (4) -> relu (4): at most two live.
  auto s = statsOf("model R { input f32[1024] layer relu x 3 }", 1);
  EXPECT_EQ(s.activationBytes, 3 * 4096u);
  EXPECT_EQ(s.peakActivationBytes, 2 * 4096u);
}

TEST(Statistics, SearchSpaceReportsItsRange) {
  auto s = statsOf(R"(import "std/blocks.qd"
    space S { input f32[8, 8, 16]
      stage choice(quadra(k = {3, 5}, expand = {2, 4}), identity) x 2 })", 1);
  ASSERT_EQ(s.choices.size(), 2u);
  ASSERT_EQ(s.choices[0].candidates.size(), 5u);
  EXPECT_EQ(s.choices[0].candidates[0].name, "stages.0.0[quadra(k = 3, expand = 2)]");
  EXPECT_EQ(s.choices[0].candidates[4].name, "stages.0.0[identity]");
  EXPECT_EQ(s.paramsMin, 0u);
  EXPECT_EQ(s.paramsMax, 2 * quadraBlockParams(16, 4, 5));
  EXPECT_EQ(s.macsMax, 2 * quadraBlockMacs(64, 16, 4, 5));
}

} // namespace
