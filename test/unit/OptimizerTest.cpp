//===- OptimizerTest.cpp - AdamW, schedule, clipping, checkpoints ---------===//

#include "runtime/shipped/Optimizer.h"
#include "runtime/shipped/TensorFiles.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

using namespace qdsl::rt;

namespace {

Tensor filled(std::vector<int64_t> shape, std::initializer_list<float> values) {
  Tensor t(std::move(shape));
  t.data.assign(values);
  return t;
}

TEST(AdamW, TheFirstStepMovesEachWeightByTheLearningRate) {
  // Bias-corrected moments are g and g² after one step, so each weight
  // moves by lr · g / (|g| + ε).
  AdamW adam({/*learningRate=*/0.1, 0.9, 0.999, 1e-8, /*weightDecay=*/0.0});
  TensorMap w = {{"w", filled({2, 2}, {1, 2, 3, 4})}};
  TensorMap g = {{"w", filled({2, 2}, {0.5f, -2, 1e-3f, 0})}};
  adam.step(w, g, 0.1);
  const float expected[4] = {1 - 0.1f, 2 + 0.1f, float(3 - 0.1 * 1e-3 / (1e-3 + 1e-8)), 4};
  for (int i = 0; i < 4; ++i)
    EXPECT_FLOAT_EQ(w["w"].data[i], expected[i]);
}

TEST(AdamW, EachWeightCountsItsOwnUpdates) {
  // A supernet candidate first updated at step 50 takes Adam's first step,
  // lr·sign(g); with one bias correction for all weights it would take
  // (1 − β1)/(1 − β1⁵⁰) / sqrt((1 − β2)/(1 − β2⁵⁰)) ≈ 0.7 times that.
  AdamW adam({0.1, 0.9, 0.999, 1e-8, /*weightDecay=*/0.0});
  TensorMap w = {{"always", filled({2}, {0, 0})}, {"late", filled({2}, {1, 1})}};
  TensorMap g = {{"always", filled({2}, {1, 1})}, {"late", filled({2}, {0.3f, -2})}};
  auto onlyAlways = [](const std::string &name) { return name == "always"; };
  for (int i = 0; i < 49; ++i)
    adam.step(w, g, 0.1, onlyAlways);
  adam.step(w, g, 0.1);
  EXPECT_EQ(adam.steps(), 50);
  EXPECT_EQ(adam.updates("always"), 50);
  EXPECT_EQ(adam.updates("late"), 1);
  EXPECT_FLOAT_EQ(w["late"].data[0], 1 - 0.1f);
  EXPECT_FLOAT_EQ(w["late"].data[1], 1 + 0.1f);
}

TEST(ClipGradientNorm, OnlyTheIncludedGradientsCountAndScale) {
  // A supernet's weight step clips the path's weights; the gates'
  // gradients (for the architecture, not this step) neither count nor
  // shrink.
  TensorMap g = {{"w", filled({2}, {3, 4})}, {"gate", filled({1}, {100})}};
  double norm = clipGradientNorm(g, 1.0, [](const std::string &n) { return n != "gate"; });
  EXPECT_DOUBLE_EQ(norm, 5.0);
  EXPECT_NEAR(g["w"].data[0], 0.6, 1e-6);
  EXPECT_NEAR(g["w"].data[1], 0.8, 1e-6);
  EXPECT_EQ(g["gate"].data[0], 100);
}

TEST(Checkpoint, PartialUpdateCountsSurviveTheRoundTrip) {
  // "never": a candidate no path has taken yet, with no optimiser state.
  Checkpoint c{{{"a", filled({2}, {1, 2})}, {"b", filled({2}, {3, 4})}, {"never", filled({1}, {5})}},
               AdamW(), 1, 3, 0, "M"};
  TensorMap g = {{"a", filled({2}, {1, -1})}, {"b", filled({2}, {0.5f, 2})}};
  c.optimizer.step(c.weights, g, 1e-2);
  for (int i = 0; i < 2; ++i)
    c.optimizer.step(c.weights, g, 1e-2, [](const std::string &n) { return n == "a"; });
  std::string path = ::testing::TempDir() + "/partial.safetensors", error;
  ASSERT_TRUE(saveCheckpoint(path, c, error)) << error;
  Checkpoint back;
  ASSERT_TRUE(loadCheckpoint(path, back, error)) << error;
  EXPECT_EQ(back.optimizer.updates("a"), 3);
  EXPECT_EQ(back.optimizer.updates("b"), 1);
  EXPECT_EQ(back.optimizer.updates("never"), 0);
  EXPECT_EQ(back.weights["never"].data, std::vector<float>{5});
  // Both continue with the same steps.
  c.optimizer.step(c.weights, g, 1e-2);
  back.optimizer.step(back.weights, g, 1e-2);
  EXPECT_EQ(back.weights["b"].data, c.weights["b"].data);

  // A count beyond the steps taken could not come from training.
  TensorMap tensors;
  Metadata metadata;
  std::string bytes;
  ASSERT_TRUE(readFileBytes(path, bytes, error)) << error;
  ASSERT_TRUE(parseSafetensors(bytes, path, tensors, error, &metadata)) << error;
  metadata["qdsl.adamw.updates.b"] = "9";
  ASSERT_TRUE(writeSafetensors(path, tensors, metadata, error)) << error;
  EXPECT_FALSE(loadCheckpoint(path, back, error));
  EXPECT_NE(error.find("update count 9 of weight 'b' is outside 1..3"), std::string::npos)
      << error;
}

TEST(AdamW, WeightDecayIsDecoupledAndSparesOneDimensionalTensors) {
  AdamW adam({0.1, 0.9, 0.999, 1e-8, /*weightDecay=*/0.5});
  TensorMap w = {{"matrix", filled({1, 2}, {2, -4})}, {"bias", filled({2}, {2, -4})}};
  TensorMap g = {{"matrix", filled({1, 2}, {0, 0})}, {"bias", filled({2}, {0, 0})}};
  adam.step(w, g, 0.1);
  EXPECT_FLOAT_EQ(w["matrix"].data[0], 2 * (1 - 0.1f * 0.5f));
  EXPECT_FLOAT_EQ(w["matrix"].data[1], -4 * (1 - 0.1f * 0.5f));
  EXPECT_FLOAT_EQ(w["bias"].data[0], 2);
  EXPECT_FLOAT_EQ(w["bias"].data[1], -4);
}

// Against the textbook form: m̂ = m / (1 − β1ᵗ), v̂ = v / (1 − β2ᵗ),
// p ← p·(1 − lr·λ) − lr · m̂ / (√v̂ + ε), in double.
TEST(AdamW, ManyStepsFollowTheTextbookUpdate) {
  AdamWOptions o{0.01, 0.9, 0.99, 1e-8, 0.05};
  AdamW adam(o);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  TensorMap w = {{"w", Tensor({3, 5})}};
  for (float &x : w["w"].data)
    x = float(normal(rng));
  std::vector<double> p(w["w"].data.begin(), w["w"].data.end()), m(15, 0), v(15, 0);
  for (int t = 1; t <= 20; ++t) {
    double lr = 0.01 * t / 20;
    TensorMap g = {{"w", Tensor({3, 5})}};
    for (float &x : g["w"].data)
      x = float(normal(rng));
    adam.step(w, g, lr);
    for (int i = 0; i < 15; ++i) {
      double gi = g["w"].data[i];
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
      double mhat = m[i] / (1 - std::pow(o.beta1, t)), vhat = v[i] / (1 - std::pow(o.beta2, t));
      p[i] = p[i] * (1 - lr * o.weightDecay) - lr * mhat / (std::sqrt(vhat) + o.epsilon);
    }
  }
  for (int i = 0; i < 15; ++i)
    EXPECT_NEAR(w["w"].data[i], p[i], 1e-5);
  EXPECT_EQ(adam.steps(), 20);
}

TEST(Schedule, WarmsUpLinearlyThenFollowsACosine) {
  LearningRateSchedule s{/*peak=*/1.0, /*minimum=*/0.0, /*warmupSteps=*/4, /*totalSteps=*/104};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(54), 0.5, 1e-12);
  EXPECT_NEAR(s.at(104), 0.0, 1e-12);
  EXPECT_NEAR(s.at(500), 0.0, 1e-12);
  for (int64_t t = 4; t < 104; ++t)
    EXPECT_GE(s.at(t), s.at(t + 1));
}

TEST(Clipping, ScalesTheGlobalNormDownToTheLimit) {
  TensorMap g = {{"a", filled({2}, {3, 0})}, {"b", filled({1, 1}, {4})}};
  EXPECT_DOUBLE_EQ(clipGradientNorm(g, 10), 5);
  EXPECT_FLOAT_EQ(g["a"].data[0], 3);
  EXPECT_DOUBLE_EQ(clipGradientNorm(g, 1), 5);
  EXPECT_NEAR(g["a"].data[0], 0.6, 1e-6);
  EXPECT_NEAR(g["b"].data[0], 0.8, 1e-6);
  g["b"].data[0] = NAN;
  EXPECT_FALSE(std::isfinite(clipGradientNorm(g, 1)));
}

TEST(Checkpoint, ResumingContinuesExactly) {
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal;
  auto gradients = [&] {
    TensorMap g = {{"w", Tensor({4, 3})}, {"b", Tensor({3})}};
    for (auto &[name, t] : g)
      for (float &x : t.data)
        x = normal(rng);
    return g;
  };
  std::vector<TensorMap> steps;
  for (int i = 0; i < 6; ++i)
    steps.push_back(gradients());
  TensorMap start = {{"w", Tensor({4, 3})}, {"b", Tensor({3})}};
  for (auto &[name, t] : start)
    for (float &x : t.data)
      x = normal(rng);

  Checkpoint straight{start, AdamW(), 0, 0, 5, "M"};
  for (const TensorMap &g : steps)
    straight.optimizer.step(straight.weights, g, 1e-2);

  Checkpoint first{start, AdamW(), 0, 0, 5, "M"};
  for (int i = 0; i < 3; ++i)
    first.optimizer.step(first.weights, steps[i], 1e-2);
  first.epoch = 1;
  first.step = 3;
  std::string path = ::testing::TempDir() + "/ckpt.safetensors", error;
  ASSERT_TRUE(saveCheckpoint(path, first, error)) << error;
  Checkpoint resumed;
  ASSERT_TRUE(loadCheckpoint(path, resumed, error)) << error;
  EXPECT_EQ(resumed.epoch, 1);
  EXPECT_EQ(resumed.step, 3);
  EXPECT_EQ(resumed.seed, 5u);
  EXPECT_EQ(resumed.model, "M");
  EXPECT_EQ(resumed.optimizer.steps(), 3);
  for (int i = 3; i < 6; ++i)
    resumed.optimizer.step(resumed.weights, steps[i], 1e-2);
  for (const char *name : {"w", "b"})
    EXPECT_EQ(resumed.weights[name].data, straight.weights[name].data) << name;
}

TEST(Checkpoint, AFileThatIsNotOneIsRefusedByName) {
  std::string dir = ::testing::TempDir(), error;
  TensorMap w = {{"w", Tensor({2, 2})}};
  ASSERT_TRUE(writeSafetensors(dir + "/weights.safetensors", w, {{"qdsl.model", "M"}}, error));
  Checkpoint c;
  EXPECT_FALSE(loadCheckpoint(dir + "/weights.safetensors", c, error));
  EXPECT_NE(error.find("is not a qdsl checkpoint: its metadata has no valid 'qdsl.checkpoint'"),
            std::string::npos)
      << error;

  Checkpoint good{w, AdamW(), 0, 1, 1, "M"};
  good.optimizer.step(good.weights, {{"w", Tensor({2, 2})}}, 1e-3);
  ASSERT_TRUE(saveCheckpoint(dir + "/good.safetensors", good, error)) << error;
  TensorMap tensors;
  Metadata metadata;
  ASSERT_TRUE(readSafetensors(dir + "/good.safetensors", tensors, error, &metadata));
  tensors["adamw.m.w"] = Tensor({3});
  ASSERT_TRUE(writeSafetensors(dir + "/bad.safetensors", tensors, metadata, error));
  EXPECT_FALSE(loadCheckpoint(dir + "/bad.safetensors", c, error));
  EXPECT_NE(error.find("optimiser state 'adamw.m.w' [3] fits no weight"), std::string::npos)
      << error;
  tensors["adamw.m.w"] = Tensor({2, 2});
  metadata["qdsl.checkpoint"] = "2";
  ASSERT_TRUE(writeSafetensors(dir + "/future.safetensors", tensors, metadata, error));
  EXPECT_FALSE(loadCheckpoint(dir + "/future.safetensors", c, error));
  EXPECT_NE(error.find("is a checkpoint of version 2; this program reads version 1"),
            std::string::npos)
      << error;
  metadata["qdsl.checkpoint"] = "1";
  metadata["qdsl.step"] = "seven";
  ASSERT_TRUE(writeSafetensors(dir + "/garbled.safetensors", tensors, metadata, error));
  EXPECT_FALSE(loadCheckpoint(dir + "/garbled.safetensors", c, error));
  EXPECT_NE(error.find("no valid 'qdsl.step'"), std::string::npos) << error;
}

// State that training cannot produce is refused by name when loaded, not
// found steps later as a NaN loss.
TEST(Checkpoint, ImpossibleOptimiserStateIsRefusedByName) {
  std::string dir = ::testing::TempDir(), error;
  Checkpoint good{{{"w", Tensor({2, 2})}}, AdamW(), 0, 1, 1, "M"};
  good.optimizer.step(good.weights, {{"w", Tensor({2, 2})}}, 1e-3);
  ASSERT_TRUE(saveCheckpoint(dir + "/good.safetensors", good, error)) << error;
  Checkpoint c;
  ASSERT_TRUE(loadCheckpoint(dir + "/good.safetensors", c, error)) << error;
  // One change each to the good file, and what the error says.
  const struct {
    const char *tensor;
    float value;
    const char *key, *text, *message;
  } cases[] = {
      {"adamw.m.w", NAN, nullptr, nullptr, "optimiser state 'adamw.m.w' holds nan at element 0"},
      {"adamw.v.w", -1, nullptr, nullptr,
       "optimiser state 'adamw.v.w' holds -1.000000 at element 0; expected finite numbers >= 0"},
      {"w", INFINITY, nullptr, nullptr, "weight 'w' holds inf at element 0"},
      {nullptr, 0, "qdsl.adamw.beta2", "1.5", "qdsl.adamw.beta2 is 1.5; expected [0, 1)"},
      {nullptr, 0, "qdsl.adamw.epsilon", "0", "qdsl.adamw.epsilon is 0; expected (0, 1)"},
      {nullptr, 0, "qdsl.adamw.steps", "3", "qdsl.adamw.steps is 3 but qdsl.step is 1"},
  };
  for (const auto &change : cases) {
    TensorMap tensors;
    Metadata metadata;
    ASSERT_TRUE(readSafetensors(dir + "/good.safetensors", tensors, error, &metadata));
    if (change.tensor)
      tensors[change.tensor].data[0] = change.value;
    else
      metadata[change.key] = change.text;
    ASSERT_TRUE(writeSafetensors(dir + "/changed.safetensors", tensors, metadata, error));
    EXPECT_FALSE(loadCheckpoint(dir + "/changed.safetensors", c, error));
    EXPECT_NE(error.find(change.message), std::string::npos) << error;
  }
}

TEST(Checkpoint, AWeightWithOneMomentIsRefused) {
  // A checkpoint missing one second moment once resumed and crashed in
  // the first step.
  std::string dir = ::testing::TempDir(), error;
  Checkpoint good{{{"w", Tensor({2})}, {"u", Tensor({3})}}, AdamW(), 0, 1, 1, "M"};
  good.optimizer.step(good.weights, {{"w", Tensor({2})}, {"u", Tensor({3})}}, 1e-3);
  ASSERT_TRUE(saveCheckpoint(dir + "/both.safetensors", good, error)) << error;
  for (const char *dropped : {"adamw.v.u", "adamw.m.u"}) {
    TensorMap tensors;
    Metadata metadata;
    ASSERT_TRUE(readSafetensors(dir + "/both.safetensors", tensors, error, &metadata));
    ASSERT_EQ(tensors.erase(dropped), 1u);
    ASSERT_TRUE(writeSafetensors(dir + "/one.safetensors", tensors, metadata, error));
    Checkpoint c;
    EXPECT_FALSE(loadCheckpoint(dir + "/one.safetensors", c, error));
    EXPECT_NE(error.find("has no '" + std::string(dropped) + "' beside it"), std::string::npos)
        << error;
  }
}

} // namespace
