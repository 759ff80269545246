//===- SearchPlanningTest.cpp - limits, derivation, timing protocol -------===//
//
// The logic `qdsl search`, `qdsl estimate` and `qdsl profile` share, as
// libraries: deriving an architecture within latency limits
// (codegen/latency/ArchitectureDerivation.h), resolving and checking a
// space's limits and emitting them for the search program
// (LatencyLimits.h, SearchConstraintsEmitter.h), and the protocol by which
// qdsl times a generated predict (tools/driver/PredictTiming.h).

#include "codegen/latency/ArchitectureDerivation.h"
#include "codegen/latency/ArchitectureSampling.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/LatencyLimits.h"
#include "codegen/latency/SearchConstraintsEmitter.h"
#include "dsl/Frontend.h"
#include "dsl/MLIRGen.h"
#include "tools/driver/PredictTiming.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SourceMgr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

using namespace qdsl;

namespace {

/// A space of two layers of three candidates on one device: 1 ms fixed,
/// candidates 0, 1 and 2 ms per layer.
cost::SpaceLatency twoLayers(double scale = 1) {
  cost::SpaceLatency s;
  s.fixed = 1e-3 * scale;
  for (const char *name : {"a", "b"})
    s.layers.push_back({name, {"small", "medium", "large"},
                        {0.0, 1e-3 * scale, 2e-3 * scale}});
  return s;
}

TEST(ArchitectureDerivation, AdditiveLatencySumsThePicks) {
  EXPECT_DOUBLE_EQ(cost::additiveLatency(twoLayers(), {2, 1}), 4e-3);
  EXPECT_DOUBLE_EQ(cost::additiveLatency(twoLayers(), {0, 0}), 1e-3);
}

TEST(ArchitectureDerivation, TheRangeIsEveryLayerAtItsFastestAndSlowest) {
  cost::SpaceLatency s = twoLayers();
  s.layers[1].seconds = {3e-3, 0.5e-3, 2e-3};  // not sorted
  auto [fastest, slowest] = cost::latencyRange(s);
  EXPECT_DOUBLE_EQ(fastest, 1e-3 + 0 + 0.5e-3);
  EXPECT_DOUBLE_EQ(slowest, 1e-3 + 2e-3 + 3e-3);
}

/// Both ways of deriving: exact (enumeration) and the joint repair.
std::vector<int64_t> derive(const cost::LayerProbabilities &p,
                            const std::vector<cost::SpaceLatency> &spaces,
                            const std::vector<double> &limitsMs, bool exact) {
  cost::Derivation d = cost::mostProbableWithinLimits(p, spaces, limitsMs, exact ? 1e6 : 0);
  EXPECT_EQ(d.exact, exact);
  return d.picks;
}

TEST(ArchitectureDerivation, AnArgmaxThatFitsIsKept) {
  cost::LayerProbabilities p = {{0.1, 0.2, 0.7}, {0.6, 0.3, 0.1}};
  for (bool exact : {true, false})
    EXPECT_EQ(derive(p, {twoLayers()}, {3.0}, exact), (std::vector<int64_t>{2, 0}));
}

TEST(ArchitectureDerivation, TheLeastProbabilityIsGivenUp) {
  // {2, 2} takes 5 ms against a limit of 4 ms: one step down in layer b
  // (0.45 -> 0.40) costs far less probability than in layer a (0.9 -> 0.05).
  cost::LayerProbabilities p = {{0.05, 0.05, 0.9}, {0.15, 0.40, 0.45}};
  for (bool exact : {true, false})
    EXPECT_EQ(derive(p, {twoLayers()}, {4.0}, exact), (std::vector<int64_t>{2, 1}));
}

TEST(ArchitectureDerivation, EveryDeviceHolds) {
  // Device 1 is three times slower: only {0, 1}, {1, 0} (6 ms there) and
  // {0, 0} fit its 6 ms while device 0 (4 ms) holds too; {0, 1} is the most
  // probable of them.
  cost::LayerProbabilities p = {{0.2, 0.3, 0.5}, {0.2, 0.5, 0.3}};
  for (bool exact : {true, false}) {
    std::vector<int64_t> picks = derive(p, {twoLayers(), twoLayers(3)}, {4.0, 6.0}, exact);
    ASSERT_EQ(picks.size(), 2u);
    EXPECT_LE(cost::additiveLatency(twoLayers(), picks) * 1e3, 4.0);
    EXPECT_LE(cost::additiveLatency(twoLayers(3), picks) * 1e3, 6.0 + 1e-9);
  }
  EXPECT_EQ(derive(p, {twoLayers(), twoLayers(3)}, {4.0, 6.0}, true), (std::vector<int64_t>{0, 1}));
}

TEST(ArchitectureDerivation, NothingIsFoundWhenNothingFits) {
  cost::LayerProbabilities p = {{0.3, 0.3, 0.4}, {0.3, 0.3, 0.4}};
  for (bool exact : {true, false})
    EXPECT_TRUE(derive(p, {twoLayers()}, {0.5}, exact).empty());
}

TEST(ArchitectureDerivation, TheRepairDoesNotCycleBetweenDevices) {
  // One layer; limits 1.5 ms on both devices. Candidate 0 (argmax) takes
  // 2 ms on both, candidate 1 fixes device A but takes 3 ms on B, candidate
  // 2 meets both. A repair that serves the most exceeded device alone goes
  // 0 -> 1 (A) -> 0 (B, where 0 is faster and more probable) -> 1 ...
  cost::SpaceLatency a, b;
  a.layers.push_back({"l", {"c0", "c1", "c2"}, {2e-3, 1e-3, 1.4e-3}});
  b.layers.push_back({"l", {"c0", "c1", "c2"}, {2e-3, 3e-3, 1.4e-3}});
  cost::LayerProbabilities p = {{0.5, 0.45, 0.05}};
  for (bool exact : {true, false})
    EXPECT_EQ(derive(p, {a, b}, {1.5, 1.5}, exact), (std::vector<int64_t>{2}));
}

TEST(ArchitectureDerivation, EnumerationFindsTheMostProbableArchitectureThatFits) {
  // Against brute force on random spaces of four layers, two devices.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(0.01, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    cost::LayerProbabilities p(4);
    std::vector<cost::SpaceLatency> spaces(2);
    for (auto &space : spaces)
      space.fixed = 1e-4;
    for (size_t l = 0; l < p.size(); ++l) {
      size_t n = 2 + rng() % 4;
      double sum = 0;
      for (size_t c = 0; c < n; ++c)
        sum += p[l].emplace_back(uniform(rng));
      for (double &x : p[l])
        x /= sum;
      for (auto &space : spaces) {
        space.layers.push_back({"l" + std::to_string(l), std::vector<std::string>(n, "c"), {}});
        for (size_t c = 0; c < n; ++c)
          space.layers.back().seconds.push_back(1e-3 * uniform(rng));
      }
    }
    std::vector<double> limits = {1.5 + 1.5 * uniform(rng), 1.5 + 1.5 * uniform(rng)};
    std::vector<int64_t> best, picks(4, 0);
    double bestLogP = -INFINITY;
    for (;;) {
      bool fits = true;
      for (size_t d = 0; d < 2; ++d)
        fits = fits && cost::additiveLatency(spaces[d], picks) * 1e3 <= limits[d];
      double logP = 0;
      for (size_t l = 0; l < 4; ++l)
        logP += std::log(p[l][picks[l]]);
      if (fits && logP > bestLogP) {
        bestLogP = logP;
        best = picks;
      }
      size_t l = 0;
      while (l < 4 && ++picks[l] == static_cast<int64_t>(p[l].size()))
        picks[l++] = 0;
      if (l == 4)
        break;
    }
    cost::Derivation d = cost::mostProbableWithinLimits(p, spaces, limits);
    EXPECT_TRUE(d.exact);
    EXPECT_EQ(d.picks, best) << "trial " << trial;
    // The repair, when it finds one, finds one within the limits.
    std::vector<int64_t> repaired = derive(p, spaces, limits, false);
    for (size_t dev = 0; dev < 2 && !repaired.empty(); ++dev)
      EXPECT_LE(cost::additiveLatency(spaces[dev], repaired) * 1e3, limits[dev] + 1e-12);
  }
}

TEST(ArchitectureDerivation, FillRanksSwitchesByProbabilityPerLatency) {
  // From {0, 0} (1 ms) under 3.3 ms, one switch fits: a's medium spends
  // 1 ms for a loss of log 2 (0.69 per ms), b's large 2 ms for a loss of
  // log(0.5/0.2) = 0.92 (0.46 per ms). The least loss alone would take a's.
  cost::LayerProbabilities p = {{0.4, 0.2, 0.4}, {0.5, 0.3, 0.2}};
  cost::SpaceLatency s = twoLayers();
  s.layers[0].seconds = {0.0, 1e-3, 5e-3};
  s.layers[1].seconds = {0.0, 5e-3, 2e-3};
  EXPECT_EQ(cost::fillBudget(p, {0, 0}, {s}, {3.3}), (std::vector<int64_t>{0, 2}));
}

TEST(ArchitectureDerivation, FillSpendsTheBudgetInTheSearchsOrder) {
  // From {0, 0} (1 ms) under 4 ms: layer a's large candidate is the most
  // probable switch, then nothing costlier fits but b's medium.
  cost::LayerProbabilities p = {{0.1, 0.2, 0.7}, {0.5, 0.3, 0.2}};
  std::vector<int64_t> filled = cost::fillBudget(p, {0, 0}, {twoLayers()}, {4.0});
  EXPECT_EQ(filled, (std::vector<int64_t>{2, 1}));
  EXPECT_LE(cost::additiveLatency(twoLayers(), filled) * 1e3, 4.0);
  // Nothing fits past a full budget.
  EXPECT_EQ(cost::fillBudget(p, {2, 2}, {twoLayers()}, {5.0}), (std::vector<int64_t>{2, 2}));
}

/// Six layers of seven candidates (117 649 architectures) on one device:
/// candidate c of layer l takes (c + 1)·(l + 1)·0.01 ms.
cost::SpaceLatency sixBySeven() {
  cost::SpaceLatency s;
  s.fixed = 1e-4;
  for (int l = 0; l < 6; ++l) {
    s.layers.push_back({"l" + std::to_string(l), std::vector<std::string>(7, "c"), {}});
    for (int c = 0; c < 7; ++c)
      s.layers.back().seconds.push_back((c + 1) * (l + 1) * 1e-5);
  }
  return s;
}

TEST(ArchitectureSampling, DrawsDistinctArchitecturesTheFilterAccepts) {
  cost::ArchitectureFilter within;
  within.limitsMs = {2.5};
  std::vector<cost::Architecture> drawn =
      cost::sampleArchitectures({twoLayers()}, within, 100, 1, {{0, 0}});
  // Within 2.5 ms: {0,0} {0,1} {1,0}, less the excluded {0,0}.
  ASSERT_EQ(drawn.size(), 2u);
  EXPECT_NE(drawn[0], drawn[1]);
  for (const cost::Architecture &a : drawn)
    EXPECT_LE(cost::additiveLatency(twoLayers(), a) * 1e3, 2.5);
  // A band around 4 ms: {1,2} {2,1} and {2,2}? 5 ms is 25% over: no.
  cost::ArchitectureFilter band;
  band.targetMs = {4.0};
  std::set<cost::Architecture> got;
  for (uint64_t seed = 0; seed < 20; ++seed)
    for (const cost::Architecture &a : cost::sampleArchitectures({twoLayers()}, band, 1, seed))
      got.insert(a);
  EXPECT_EQ(got, (std::set<cost::Architecture>{{1, 2}, {2, 1}}));
  // Large draws from a large space: within the limit, distinct.
  cost::ArchitectureFilter limit;
  limit.limitsMs = {0.9};
  std::vector<cost::Architecture> many = cost::sampleArchitectures({sixBySeven()}, limit, 50, 3);
  EXPECT_EQ(many.size(), 50u);
  EXPECT_EQ(std::set<cost::Architecture>(many.begin(), many.end()).size(), 50u);
}

TEST(ArchitectureSampling, EvolutionBeatsRandomDrawsOfTheSameBudget) {
  // A score with one best architecture (3,1,4,1,5,2); the limit rules out
  // some of the space but not it.
  const cost::Architecture target = {3, 1, 4, 1, 5, 2};
  cost::ArchitectureScorer scorer = [&](const std::vector<cost::Architecture> &batch,
                                        std::vector<double> &scores) {
    for (const cost::Architecture &a : batch) {
      double s = 0;
      for (size_t l = 0; l < a.size(); ++l)
        s -= std::abs(double(a[l] - target[l]));
      scores.push_back(s);
    }
    return true;
  };
  cost::ArchitectureFilter limit;
  limit.limitsMs = {1.2};
  ASSERT_TRUE(limit.accepts({sixBySeven()}, target));
  cost::EvolutionOptions options;
  bool exhaustive = true;
  std::vector<cost::ScoredArchitecture> evolved =
      cost::evolveArchitectures({sixBySeven()}, limit, options, scorer, exhaustive);
  EXPECT_FALSE(exhaustive);
  ASSERT_FALSE(evolved.empty());
  EXPECT_LE(evolved.size(), options.population * (options.generations + 1));
  for (const cost::ScoredArchitecture &a : evolved)
    EXPECT_TRUE(limit.accepts({sixBySeven()}, a.picks));
  std::vector<cost::Architecture> random =
      cost::sampleArchitectures({sixBySeven()}, limit, evolved.size(), 9);
  std::vector<double> randomScores;
  scorer(random, randomScores);
  EXPECT_GT(evolved.front().score, *std::max_element(randomScores.begin(), randomScores.end()));
  EXPECT_GE(evolved.front().score, -2);

  // A space that fits the budget is scored whole: of the 3 × 3, the 8
  // within 4 ms (all but {2,2}), best first.
  cost::ArchitectureFilter small;
  small.limitsMs = {4.0};
  cost::ArchitectureScorer sum = [](const std::vector<cost::Architecture> &batch,
                                    std::vector<double> &scores) {
    for (const cost::Architecture &a : batch)
      scores.push_back(double(a[0] * 3 + a[1]));
    return true;
  };
  std::vector<cost::ScoredArchitecture> all =
      cost::evolveArchitectures({twoLayers()}, small, options, sum, exhaustive);
  EXPECT_TRUE(exhaustive);
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(all.front().picks, (cost::Architecture{2, 1}));
}

TEST(ArchitectureSampling, TheParetoFrontKeepsWhatNothingBeats) {
  // (latency, accuracy): b beats a; d ties c's latency with less accuracy.
  std::vector<double> latency = {2, 1, 3, 3, 4}, accuracy = {0.80, 0.85, 0.90, 0.88, 0.89};
  EXPECT_EQ(cost::paretoFront(latency, accuracy), (std::vector<size_t>{1, 2}));
}

TEST(ArchitectureDerivation, AHoldIsACandidateThatAloneWouldExceed) {
  // {1, 1} takes 3 ms; under 3.5 ms layer a's large (+1 ms) would exceed,
  // on a slower device whose limit is not met nothing is held.
  cost::LayerHolds holds =
      cost::limitsHoldingLayers({twoLayers(), twoLayers(3)}, {3.5, 5.0}, {1, 1});
  ASSERT_EQ(holds.layers.size(), 2u);
  EXPECT_EQ(holds.met, (std::vector<bool>{true, false}));
  EXPECT_EQ(holds.layers[0].layer, "a");
  EXPECT_EQ(holds.layers[0].ruledOut[0], (std::vector<int64_t>{2}));
  EXPECT_TRUE(holds.layers[0].ruledOut[1].empty());
  std::string text;
  llvm::raw_string_ostream os(text);
  cost::printLayerHolds(holds, twoLayers(), {"fast", "slow"}, os);
  EXPECT_NE(text.find("  a = medium: held by fast (candidate 2 would exceed it)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(limits not met hold nothing and are left out: slow)"),
            std::string::npos)
      << text;
  llvm::json::Array json = cost::layerHoldsToJSON(holds, twoLayers(), {"fast", "slow"});
  ASSERT_EQ(json.size(), 2u);
  const llvm::json::Object *first = json[0].getAsObject();
  EXPECT_EQ(first->getString("candidate"), "medium");
  EXPECT_EQ(first->getObject("held_by")->getArray("fast")->size(), 1u);
  EXPECT_EQ(first->getObject("held_by")->getArray("slow"), nullptr);
}

TEST(LatencyLimits, ParsesTimesWithUnitsAndNamesTheFlag) {
  double ms = 0;
  std::string error;
  ASSERT_TRUE(cost::parseLatencyLimit("2.5ms", ms, error));
  EXPECT_DOUBLE_EQ(ms, 2.5);
  ASSERT_TRUE(cost::parseLatencyLimit(" 800us ", ms, error));
  EXPECT_DOUBLE_EQ(ms, 0.8);
  ASSERT_TRUE(cost::parseLatencyLimit("1s", ms, error));
  EXPECT_DOUBLE_EQ(ms, 1000);
  for (const char *bad : {"2", "ms", "-1ms", "0ms", "nanms", "1e300s", "2 parsecs"}) {
    EXPECT_FALSE(cost::parseLatencyLimit(bad, ms, error)) << bad;
    EXPECT_NE(error.find("--latency-limit expects a positive time"), std::string::npos);
  }
}

/// A tiny space with a limit on `test-device`, generated, with the
/// diagnostics it raises collected.
struct TinySpace {
  llvm::SourceMgr sourceMgr;
  dsl::Diagnostics diags{sourceMgr};
  dsl::Program program;
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp space;
  std::string errors;
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;

  explicit TinySpace(const char *constraint) {
    std::string text = std::string(R"(import "std/blocks.qd"
space Tiny(classes = 10, C = 8) {
  input f32[28, 28, 1]
  stem  patchify(out = C, k = 4)
  stage choice(quadra(k = {3, 5}, expand = 2)) at C
  head  classifier(classes)
  )") + constraint + "\n}\n";
    dsl::FrontendOptions options;
    options.allowFileImports = false;
    EXPECT_TRUE(dsl::loadProgramFromBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(text, "tiny.qd"), options, diags, program));
    module = dsl::generateMLIR(context, program, sourceMgr, {});
    EXPECT_TRUE(module);
    space = *module->getOps<mlir::func::FuncOp>().begin();
    handler = std::make_unique<mlir::ScopedDiagnosticHandler>(
        &context, [this](mlir::Diagnostic &d) {
          errors += d.str() + "\n";
          return mlir::success();
        });
  }
};

cost::DeviceProfile testProfile() {
  cost::DeviceProfile profile;
  std::string error;
  EXPECT_TRUE(cost::readProfile(std::string(QDSL_SOURCE_DIR) +
                                    "/test/tools/Inputs/test-profile.json",
                                profile, error))
      << error;
  return profile;
}

/// Finds `given` for its device and nothing else.
cost::ProfileFinder only(const cost::DeviceProfile &given) {
  return [&given](const std::string &device, cost::DeviceProfile &, std::string &error)
             -> const cost::DeviceProfile * {
    if (device == given.device.name)
      return &given;
    error = "no profile for '" + device + "'";
    return nullptr;
  };
}

TEST(LatencyLimits, TheSpacesLimitsWithTheCommandLinesChanges) {
  TinySpace tiny(R"(constraint latency("test-device") <= 1 ms)");
  cost::DeviceProfile profile = testProfile();
  auto limits = cost::searchConstraints(tiny.space, profile, {}, only(profile));
  ASSERT_TRUE(mlir::succeeded(limits)) << tiny.errors;
  ASSERT_EQ(limits->size(), 1u);
  EXPECT_EQ((*limits)[0].device, "test-device");
  EXPECT_DOUBLE_EQ((*limits)[0].limitMs, 1.0);
  EXPECT_EQ((*limits)[0].profile.device.name, "test-device");

  cost::LimitOptions options;
  options.latencyLimit = "250us";
  limits = cost::searchConstraints(tiny.space, profile, options, only(profile));
  ASSERT_TRUE(mlir::succeeded(limits)) << tiny.errors;
  EXPECT_DOUBLE_EQ((*limits)[0].limitMs, 0.25);

  options = {};
  options.onlyDevices = {"other-device"};
  EXPECT_TRUE(mlir::failed(cost::searchConstraints(tiny.space, profile, options, only(profile))));
  EXPECT_NE(tiny.errors.find("--only other-device: 'Tiny' has no latency limit for that "
                             "device (it has: test-device)"),
            std::string::npos)
      << tiny.errors;
}

TEST(LatencyLimits, ASpaceWithoutLimitsOrAnUnusedProfileIsRefused) {
  TinySpace unlimited("");
  cost::DeviceProfile none;
  EXPECT_TRUE(mlir::failed(cost::searchConstraints(unlimited.space, none, {}, only(none))));
  EXPECT_NE(unlimited.errors.find("'Tiny' has no latency limit to search for"),
            std::string::npos)
      << unlimited.errors;

  TinySpace elsewhere(R"(constraint latency("cortex-a76") <= 1 ms)");
  cost::DeviceProfile profile = testProfile(), a76 = profile;
  a76.device.name = "cortex-a76";
  cost::ProfileFinder find = [&](const std::string &, cost::DeviceProfile &, std::string &) {
    return static_cast<const cost::DeviceProfile *>(&a76);
  };
  EXPECT_TRUE(mlir::failed(cost::searchConstraints(elsewhere.space, profile, {}, find)));
  EXPECT_NE(elsewhere.errors.find("is the profile of no latency limit of 'Tiny'"),
            std::string::npos)
      << elsewhere.errors;
}

TEST(LatencyLimits, ChecksASpaceByItsFastestAndSlowestArchitecture) {
  TinySpace tiny(R"(constraint latency("test-device") <= 1 ms)");
  cost::DeviceProfile profile = testProfile();
  auto checks = cost::checkConstraints(*tiny.module, tiny.space, /*isSpace=*/true, 1,
                                       only(profile));
  ASSERT_TRUE(mlir::succeeded(checks)) << tiny.errors;
  ASSERT_EQ(checks->size(), 1u);
  const cost::ConstraintCheck &c = (*checks)[0];
  EXPECT_GT(c.fastestMs, 0);
  EXPECT_GT(c.slowestMs, c.fastestMs);  // k = 5 costs more than k = 3
  EXPECT_EQ(c.met, c.fastestMs <= 1.0);
  auto space = cost::estimateSpace(*tiny.module, tiny.space, profile, 1);
  ASSERT_TRUE(mlir::succeeded(space));
  EXPECT_NEAR(c.fastestMs, cost::additiveLatency(*space, {0}) * 1e3, 1e-9);
  EXPECT_NEAR(c.slowestMs, cost::additiveLatency(*space, {1}) * 1e3, 1e-9);
}

TEST(SearchConstraintsEmitter, OneTableRowAndModelPerLimit) {
  TinySpace tiny(R"(constraint latency("test-device") <= 1 ms)");
  cost::DeviceProfile profile = testProfile();
  auto limits = cost::searchConstraints(tiny.space, profile, {}, only(profile));
  ASSERT_TRUE(mlir::succeeded(limits)) << tiny.errors;
  auto header = codegen::emitSearchConstraints(*tiny.module, tiny.space, *limits, "tiny.qd");
  ASSERT_TRUE(mlir::succeeded(header)) << tiny.errors;
  EXPECT_NE(header->find("namespace qdsl_latency_Tiny_d0"), std::string::npos) << *header;
  EXPECT_NE(header->find("{\"test-device\", 1.000000e-03, false, "
                         "&qdsl_latency_Tiny_d0::expected_latency_from_logits"),
            std::string::npos)
      << *header;
  EXPECT_NE(header->find("#endif  // QDSL_SEARCH_CONSTRAINTS_H"), std::string::npos);
}

/// A scratch directory for the timing tests.
std::string scratch() {
  llvm::SmallString<128> dir;
  EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("qdsl-timing-test", dir));
  return std::string(dir);
}

TEST(PredictTiming, TheJSONReaderIsBounded) {
  std::string dir = scratch(), error;
  std::ofstream(dir + "/ok.json") << R"({"runs": [0.5, 0.25]})";
  llvm::json::Value ok = driver::readBoundedJSON(dir + "/ok.json", "predict", error);
  ASSERT_NE(ok.getAsObject(), nullptr) << error;
  std::ofstream(dir + "/deep.json") << std::string(40, '[') << std::string(40, ']');
  EXPECT_EQ(driver::readBoundedJSON(dir + "/deep.json", "predict", error).kind(),
            llvm::json::Value::Null);
  EXPECT_NE(error.find("nests deeper than 32 levels: not a file predict wrote"),
            std::string::npos)
      << error;
  // 65 MiB, sparse: refused by its size before it is read.
  { std::ofstream(dir + "/big.json") << "{"; }
  ASSERT_EQ(::truncate((dir + "/big.json").c_str(), 65 << 20), 0);
  error.clear();
  driver::readBoundedJSON(dir + "/big.json", "predict", error);
  EXPECT_NE(error.find("more than the 64 MiB this reader takes"), std::string::npos) << error;
  error.clear();
  driver::readBoundedJSON(dir + "/missing.json", "predict", error);
  EXPECT_NE(error.find("cannot read '" + dir + "/missing.json'"), std::string::npos) << error;
  llvm::sys::fs::remove_directories(dir);
}

/// A program that answers as predict --profile-json does: it records its
/// arguments, and each call reports runs from the next line of `rounds`.
std::string fakePredict(const std::string &dir, const std::string &rounds) {
  std::ofstream(dir + "/rounds.txt") << rounds;
  std::string path = dir + "/predict";
  std::ofstream(path) << "#!/bin/sh\n"
                         "echo \"$@\" >> " + dir + "/args.txt\n"
                         "n=$(wc -l < " + dir + "/args.txt)\n"
                         "runs=$(sed -n \"${n}p\" " + dir + "/rounds.txt)\n"
                         "while [ \"$1\" != --profile-json ]; do shift; done\n"
                         "echo \"{\\\"runs\\\": [$runs], \\\"kernels\\\": [{\\\"kernel\\\": "
                         "\\\"k0\\\", \\\"seconds\\\": [0.001, 0.003]}]}\" > \"$2\"\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

TEST(PredictTiming, OneProtocolForProfileAndSearch) {
  std::string dir = scratch(), error;
  std::string predict = fakePredict(dir, "0.004, 0.002, 0.003\n");
  driver::PredictTimingOptions options;
  options.threads = 3;
  options.repeat = 7;
  options.weights = dir + "/w.safetensors";
  driver::PredictTimes times;
  ASSERT_TRUE(driver::timePredict(predict, dir + "/x.npy", dir, options, times, error)) << error;
  EXPECT_EQ(times.runs, (std::vector<double>{0.004, 0.002, 0.003}));
  EXPECT_EQ(times.kernels["k0"], (std::vector<double>{0.001, 0.003}));
  std::ifstream in(dir + "/args.txt");
  std::string args((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(args, "--weights " + dir + "/w.safetensors --input " + dir + "/x.npy --output " +
                      dir + "/timing-output.npy --threads 3 --pin --warmup 1 --repeat 7 "
                      "--profile-json " + dir + "/timing.json\n");
  llvm::sys::fs::remove_directories(dir);
}

TEST(PredictTiming, LatencyIsTheFastestRoundsMedian) {
  std::string dir = scratch(), error;
  // Medians 3, 2 and 5 ms: the second round's is kept.
  std::string predict = fakePredict(dir, "0.004, 0.003, 0.001\n0.002, 0.002, 0.009\n"
                                         "0.005, 0.005, 0.005\n");
  driver::PredictTimingOptions options;
  options.stem = "latency";
  double ms = 0;
  ASSERT_TRUE(driver::measureLatency(predict, {1, 4, 4, 1}, dir, options, 3, ms, error))
      << error;
  EXPECT_DOUBLE_EQ(ms, 2.0);
  EXPECT_TRUE(llvm::sys::fs::exists(dir + "/latency-input.npy"));
  // A predict that fails is named.
  std::ofstream(dir + "/predict") << "#!/bin/sh\nexit 3\n";
  EXPECT_FALSE(driver::measureLatency(predict, {1, 4, 4, 1}, dir, options, 1, ms, error));
  EXPECT_NE(error.find("timing '" + predict + "' failed"), std::string::npos) << error;
  llvm::sys::fs::remove_directories(dir);
}

} // namespace
