//===- AutodiffTest.cpp - gradients of --quadra-autodiff by finite differences
//
// The training step that --quadra-autodiff builds, run by the reference
// executor in double precision, against central differences of its own
// loss: every element of every weight of a model that uses every op.
//
//===----------------------------------------------------------------------===//

#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "passes/analysis/MemoryPlan.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"
#include "runtime/reference/ReferenceExecutor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/SourceMgr.h"

#include <cmath>
#include <optional>
#include <random>

#include <gtest/gtest.h>

using namespace qdsl;

namespace {

// Every differentiable op, in small shapes with strides, padding, groups,
// biases and none, and values with several uses.
const char *kEveryOp = R"(
block everything(x: tensor) {
  let a = conv2d(x, out = 4, k = 3, groups = 2)
  let b = layernorm(relu(a))
  let c = dwconv(b, k = 3, stride = 2)
  let d = qdwconv(c, k = 3)
  let e = qdwconv(c, k = 3, bias = false)
  let f = relu(gelu(d)) * c + layerscale(e, init = 0.5)
  let g = conv2d(identity(f), out = 6, k = 2, stride = 2, padding = 0)
  let h = qlinear(g, out = 6) + qlinear(g, out = 6, bias = false)
  let i = layernorm(linear(avgpool(h), out = 5, bias = false))
  return linear(i, out = 3)
}
model Every {
  input f32[8, 8, 2]
  layer everything
}
)";

// A search space whose choices hold blocks, primitives and identity: as a
// supernet (--quadra-supernet) every candidate runs, gated.
const char *kSpace = R"(
block qb(x: tensor, k: int = 3) {
  return x + layerscale(qdwconv(layernorm(x), k = k), init = 0.5)
}
block mlp(x: tensor, e: int = 2) {
  return x + pwconv(gelu(pwconv(layernorm(x), out = x.channels * e)), out = x.channels)
}
block head3(x: tensor) {
  return linear(layernorm(avgpool(x)), out = 3)
}
space Space {
  input f32[8, 8, 2]
  layer conv2d(out = 4, k = 3)
  layer choice(qb(k = {3, 5}), mlp, identity)
  layer choice(mlp(e = {1, 2}), identity)
  layer head3
}
)";

struct TrainStep {
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp step;
  std::vector<std::string> names;
};

/// Compiles `source` and runs --quadra-autodiff on it (with a policy: the
/// train-step pipeline); `error` gets the pass's diagnostics when it fails.
bool buildTrainStep(const std::string &source, double smoothing, TrainStep &t,
                    std::string &error,
                    std::optional<quadra::MemoryPolicy> policy = std::nullopt,
                    bool supernet = false) {
  llvm::SourceMgr sourceMgr;
  dsl::Diagnostics diags(sourceMgr);
  dsl::FrontendOptions options;
  options.allowFileImports = false;
  dsl::Program program;
  if (!dsl::loadProgramFromBuffer(llvm::MemoryBuffer::getMemBufferCopy(source, "t.qd"),
                                  options, diags, program))
    return false;
  t.module = dsl::generateMLIR(t.context, program, sourceMgr, {});
  if (!t.module)
    return false;
  mlir::ScopedDiagnosticHandler handler(&t.context, [&](mlir::Diagnostic &d) {
    error += d.str() + "\n";
    for (mlir::Diagnostic &note : d.getNotes())
      error += "note: " + note.str() + "\n";
    return mlir::success();
  });
  mlir::PassManager pm(&t.context);
  if (supernet)
    pm.addPass(quadra::createQuadraSupernet());
  if (policy) {
    quadra::TrainStepPipelineOptions options;
    options.step.policy = *policy;
    options.step.labelSmoothing = smoothing;
    quadra::buildTrainStepPipeline(pm, options);
  } else {
    quadra::QuadraAutodiffOptions autodiff;
    autodiff.labelSmoothing = smoothing;
    pm.addPass(quadra::createQuadraAutodiff(autodiff));
  }
  if (supernet)
    pm.addNestedPass<mlir::func::FuncOp>(quadra::createQuadraRecomputeGatePaths());
  if (mlir::failed(pm.run(*t.module)))
    return false;
  for (auto f : t.module->getOps<mlir::func::FuncOp>())
    if (auto names = f->getAttrOfType<mlir::ArrayAttr>(quadra::kGradientsAttr)) {
      t.step = f;
      for (auto name : names.getAsValueRange<mlir::StringAttr>())
        t.names.push_back(name.str());
    }
  return bool(t.step);
}

rt::Array randomArray(std::vector<int64_t> shape, std::mt19937_64 &rng, double scale,
                      double center = 0.0) {
  rt::Array a(std::move(shape));
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (double &v : a.data)
    v = center + scale * u(rng);
  return a;
}

/// Weights of a useful size: the model's own initialisation (std 0.02,
/// layer scale 1e-6) would make most gradients vanish into rounding.
rt::ArrayMap randomWeights(mlir::func::FuncOp model, std::mt19937_64 &rng) {
  rt::ArrayMap weights;
  for (const rt::WeightInfo &w : rt::listWeights(model)) {
    bool norm = w.name.find("layernorm") != std::string::npos;
    weights[w.name] = randomArray(w.shape, rng, norm ? 0.3 : 0.5, norm ? 1.0 : 0.0);
  }
  return weights;
}

double lossOf(const TrainStep &t, const rt::ArrayMap &weights,
              const std::vector<rt::Array> &arguments) {
  std::vector<rt::Array> results;
  std::string error;
  EXPECT_TRUE(rt::evaluate(t.step, weights, arguments, results, error)) << error;
  return results.empty() ? NAN : results[0].data[0];
}

void checkGradients(const std::string &source, double smoothing,
                    std::optional<quadra::MemoryPolicy> policy = std::nullopt,
                    bool supernet = false) {
  TrainStep t;
  std::string error;
  ASSERT_TRUE(buildTrainStep(source, smoothing, t, error, policy, supernet)) << error;
  std::mt19937_64 rng(11);
  rt::ArrayMap weights = randomWeights(t.step, rng);
  rt::Array input = randomArray({2, 8, 8, 2}, rng, 1.0);
  rt::Array labels({2});
  labels.data = {2, 0};
  std::vector<rt::Array> arguments = {input, labels}, results;
  ASSERT_TRUE(rt::evaluate(t.step, weights, arguments, results, error)) << error;
  ASSERT_EQ(results.size(), 2 + t.names.size());
  EXPECT_GT(results[0].data[0], 0.0);

  const double h = 1e-6;
  for (size_t w = 0; w < t.names.size(); ++w) {
    const std::string &name = t.names[w];
    const rt::Array &analytic = results[2 + w];
    ASSERT_EQ(analytic.shape, weights[name].shape) << name;
    double largest = 0, worst = 0;
    for (size_t i = 0; i < analytic.size(); ++i) {
      rt::ArrayMap moved = weights;
      moved[name].data[i] += h;
      double up = lossOf(t, moved, arguments);
      moved[name].data[i] -= 2 * h;
      double down = lossOf(t, moved, arguments);
      double numeric = (up - down) / (2 * h);
      largest = std::max(largest, std::fabs(numeric));
      worst = std::max(worst, std::fabs(numeric - analytic.data[i]));
    }
    EXPECT_GT(largest, 1e-6) << name << ": the check needs a gradient that is not ~0";
    EXPECT_LE(worst, 1e-6 * std::max(1.0, largest))
        << name << ": finite differences and autodiff differ by " << worst
        << " (largest gradient " << largest << ")";
  }
}

TEST(Autodiff, EveryOpMatchesFiniteDifferences) { checkGradients(kEveryOp, 0.0); }

TEST(Autodiff, LabelSmoothingMatchesFiniteDifferences) { checkGradients(kEveryOp, 0.1); }

// The memory policies move and copy ops; the gradients must not change.
TEST(Autodiff, EveryMemoryPolicyMatchesFiniteDifferences) {
  for (quadra::MemoryPolicy policy : quadra::kMemoryPolicies) {
    SCOPED_TRACE(quadra::memoryPolicyName(policy).str());
    checkGradients(kEveryOp, 0.0, policy);
  }
}

// The supernet's step: the gradients of every candidate's weights and of
// every gate (the binary-gate estimator's ∂L/∂g, gates here not 0/1 so
// that every path matters), also with each candidate's output recomputed
// for its gate gradient (--quadra-recompute-gate-paths).
TEST(Autodiff, SupernetGradientsMatchFiniteDifferences) {
  for (quadra::MemoryPolicy policy : quadra::kMemoryPolicies) {
    SCOPED_TRACE(quadra::memoryPolicyName(policy).str());
    checkGradients(kSpace, 0.0, policy, /*supernet=*/true);
  }
}

TEST(Autodiff, TheTrainStepComputesTheModelsLogits) {
  TrainStep t;
  std::string error;
  ASSERT_TRUE(buildTrainStep(kEveryOp, 0.0, t, error)) << error;
  mlir::func::FuncOp model = t.module->lookupSymbol<mlir::func::FuncOp>("Every");
  ASSERT_TRUE(model);
  std::mt19937_64 rng(5);
  rt::ArrayMap weights = randomWeights(model, rng);
  rt::Array input = randomArray({3, 8, 8, 2}, rng, 1.0), labels({3});
  std::vector<rt::Array> forward, step;
  ASSERT_TRUE(rt::evaluate(model, weights, {input}, forward, error)) << error;
  ASSERT_TRUE(rt::evaluate(t.step, weights, {input, labels}, step, error)) << error;
  EXPECT_EQ(forward[0].data, step[1].data);
  // With every label 0 the loss is the mean of log-sum-exp minus logit 0.
  double loss = 0;
  for (int n = 0; n < 3; ++n) {
    const double *row = &forward[0].data[n * 3];
    loss += std::log(std::exp(row[0]) + std::exp(row[1]) + std::exp(row[2])) - row[0];
  }
  EXPECT_NEAR(step[0].data[0], loss / 3, 1e-12);
  labels.data[1] = 3;
  EXPECT_FALSE(rt::evaluate(t.step, weights, {input, labels}, step, error));
  EXPECT_NE(error.find("label 3 of example 1 is not a class of the 3 logits"),
            std::string::npos)
      << error;
}

TEST(Autodiff, OpsWithoutARuleAreAllNamed) {
  TrainStep t;
  std::string error;
  EXPECT_FALSE(buildTrainStep(R"(
    block narrow(x: tensor) { return linear(x, out = 3) }
    block wide(x: tensor) { return linear(gelu(linear(x, out = 8)), out = 3) }
    space S {
      input f32[4]
      layer choice(narrow, wide)
    })",
                              0.0, t, error));
  EXPECT_NE(error.find("cannot differentiate 'S': no gradient rule for 'quadra.choice'"),
            std::string::npos)
      << error;
}

TEST(MemoryPolicy, NamesRoundTripAndTheDefaultIsMinMemory) {
  for (quadra::MemoryPolicy policy : quadra::kMemoryPolicies)
    EXPECT_EQ(quadra::parseMemoryPolicy(quadra::memoryPolicyName(policy)), policy);
  EXPECT_FALSE(quadra::parseMemoryPolicy("lazy").has_value());
  EXPECT_EQ(quadra::memoryPolicyNames(), "keep-all, paper or min-memory");
  EXPECT_EQ(quadra::kDefaultMemoryPolicy, quadra::MemoryPolicy::MinMemory);
}

} // namespace
