//===- CostModelTest.cpp - latency predictors and device profiles ---------===//
//
// The predictors on synthetic measurements whose answer is known, the
// selection by leave-one-out error, device profiles (round trip and the
// error of every kind of malformed file), the machine a profile records,
// and calibration recovering known slowdowns.

#include "codegen/latency/Calibrate.h"
#include "codegen/latency/CostModel.h"
#include "codegen/latency/DeviceProfile.h"
#include "codegen/latency/ProfileFit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace qdsl::cost;

namespace {

DeviceFigures device() {
  DeviceFigures d;
  d.name = "synthetic";
  d.target = "x86-64-avx2";
  d.peakGflops = 200;
  d.bandwidthGBs = 30;
  d.cores = 2;
  d.threads = 2;
  d.vectorFloats = 8;
  return d;
}

/// Kernels of one family over a grid of sizes: some compute bound, some
/// memory bound under `device()`.
std::vector<KernelSample> grid() {
  std::vector<KernelSample> samples;
  for (double channels : {32, 64, 128, 256})
    for (double pixels : {49, 196, 784, 3136})
      for (int64_t batch : {1, 8}) {
        KernelSample k;
        k.family = "f";
        k.batch = batch;
        k.macs = batch * pixels * channels * channels * (channels < 100 ? 0.05 : 4);
        k.bytes = 4 * (2 * batch * pixels * channels + channels * channels);
        k.params = {{"channels", channels}, {"pixels", pixels}};
        k.configuration = "f channels=" + std::to_string(channels) +
                          " pixels=" + std::to_string(pixels);
        samples.push_back(k);
      }
  return samples;
}

TEST(CostModelTest, MedianAndAccuracy) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({}), 0);
  Accuracy a = accuracy({1.05, 0.8, 2.0}, {1.0, 1.0, 2.0});
  EXPECT_EQ(a.count, 3u);
  EXPECT_NEAR(a.within10, 2.0 / 3, 1e-12);
  EXPECT_NEAR(a.rmspe, std::sqrt((0.05 * 0.05 + 0.2 * 0.2) / 3), 1e-12);
}

TEST(CostModelTest, RooflineFitRecoversItsParameters) {
  DeviceFigures d = device();
  FamilyModel truth = rooflineModel(20e-6, 0.6, 0.45);
  std::vector<KernelSample> samples = grid();
  for (KernelSample &k : samples)
    k.seconds = predictWith(truth, d, k);
  FamilyModel fit = fitForm(Form::Roofline, samples, d);
  ASSERT_EQ(fit.form, Form::Roofline);
  EXPECT_NEAR(fit.coefficients[0], 20e-6, 1e-6);
  EXPECT_NEAR(fit.coefficients[1], 0.6, 0.01);
  EXPECT_NEAR(fit.coefficients[2], 0.45, 0.01);
  // And it wins the leave-one-out comparison on roofline-shaped data.
  FamilyModel chosen = fitFamily(samples, d);
  EXPECT_EQ(chosen.form, Form::Roofline);
  EXPECT_LT(chosen.looRmspe, 0.02);
  EXPECT_EQ(chosen.samples, samples.size());
}

TEST(CostModelTest, LinearFitIsExactAndNonNegative) {
  DeviceFigures d = device();
  std::vector<KernelSample> samples = grid();
  for (KernelSample &k : samples)
    k.seconds = 5e-6 + 2e-11 * k.macs + 1e-10 * k.bytes;
  FamilyModel fit = fitForm(Form::Linear, samples, d);
  ASSERT_EQ(fit.coefficients.size(), 3u);
  EXPECT_NEAR(fit.coefficients[0] / 5e-6, 1, 1e-6);
  EXPECT_NEAR(fit.coefficients[1] / 2e-11, 1, 1e-6);
  EXPECT_NEAR(fit.coefficients[2] / 1e-10, 1, 1e-6);
  // Data that wants a negative intercept gets zero instead.
  for (KernelSample &k : samples)
    k.seconds = std::max(1e-7, -1e-5 + 3e-11 * k.macs + 2e-10 * k.bytes);
  FamilyModel clamped = fitForm(Form::Linear, samples, d);
  for (double c : clamped.coefficients)
    EXPECT_GE(c, 0);
}

TEST(CostModelTest, LogLinearFitFollowsAPowerLaw) {
  DeviceFigures d = device();
  std::vector<KernelSample> samples = grid();
  std::mt19937 random(1);
  std::uniform_real_distribution<double> noise(0.98, 1.02);
  for (KernelSample &k : samples)
    k.seconds = 3e-9 * std::pow(k.macs + 1, 0.7) * std::pow(k.params[0].second, 0.3) *
                noise(random);
  FamilyModel fit = fitForm(Form::LogLinear, samples, d);
  EXPECT_EQ(fit.form, Form::LogLinear);
  EXPECT_EQ(fit.features.front(), "macs");
  EXPECT_EQ(fit.coefficients.size(), fit.features.size() + 1);
  std::vector<double> predicted, measured;
  for (const KernelSample &k : samples) {
    predicted.push_back(predictWith(fit, d, k));
    measured.push_back(k.seconds);
  }
  Accuracy a = accuracy(predicted, measured);
  EXPECT_LT(a.rmspe, 0.03);
  EXPECT_EQ(fitFamily(samples, d).form, Form::LogLinear);
}

// A kernel with more MACs than any sample of its batch is the largest one
// timed, scaled by its work: the fitted power law (here MACs^0.7) is not
// carried past the samples, and kernels inside the range keep it. A profile
// read back recovers the range from its measurements.
TEST(CostModelTest, BeyondTheLargestSampleTimeGrowsWithWork) {
  DeviceFigures d = device();
  std::vector<KernelSample> samples = grid();
  for (KernelSample &k : samples)
    k.seconds = 3e-9 * std::pow(k.macs + 1, 0.7);
  FamilyModel fit = fitForm(Form::LogLinear, samples, d);
  ASSERT_EQ(fit.largestMacs.size(), 2u);
  const KernelSample *largest = &samples[0];
  for (const KernelSample &k : samples)
    if (k.batch == 8 && k.macs > largest->macs)
      largest = &k;
  EXPECT_DOUBLE_EQ(fit.largestMacs.at(8), largest->macs);
  KernelSample bigger = *largest;
  bigger.macs *= 4;
  bigger.bytes *= 4;
  const double atLargest = predictWith(fit, d, *largest);
  EXPECT_NEAR(predictWith(fit, d, bigger) / atLargest, 4.0, 1e-9);
  KernelSample inside = *largest;
  inside.macs /= 4;
  inside.bytes /= 4;
  EXPECT_LT(predictWith(fit, d, inside) / atLargest, 0.5);  // the power law: 4^-0.7
  EXPECT_GT(predictWith(fit, d, inside) / atLargest, 0.3);

  DeviceProfile profile;
  profile.device = d;
  profile.families["f"] = fit;
  profile.families["f"].largestMacs.clear();
  profile.measurements = samples;
  indexMeasurements(profile);
  EXPECT_EQ(profile.families["f"].largestMacs, fit.largestMacs);
}

TEST(CostModelTest, FewSamplesGetARoofline) {
  std::vector<KernelSample> samples = grid();
  samples.resize(2);
  for (KernelSample &k : samples)
    k.seconds = 1e-4;
  EXPECT_EQ(fitFamily(samples, device()).form, Form::Roofline);
}

DeviceProfile sampleProfile() {
  DeviceProfile p;
  p.device = device();
  p.calibrated = true;
  p.source = "unit test";
  p.passOverhead = 50e-6;
  p.exampleOverhead = 2e-6;
  p.fallback = rooflineModel(1e-6, 0.5, 0.5);
  FamilyModel log;
  log.form = Form::LogLinear;
  log.features = {"macs", "channels"};
  log.coefficients = {-20, 0.9, 0.1};
  log.samples = 10;
  log.rmspe = 0.05;
  log.within10 = 0.9;
  log.looRmspe = 0.07;
  log.looWithin10 = 0.8;
  p.families["f"] = log;
  std::vector<KernelSample> g = grid();
  for (size_t i = 0; i < 3; ++i) {
    g[0].seconds = 1e-3 * (i + 1);  // medians: 2e-3
    p.measurements.push_back(g[0]);
  }
  p.passes.push_back({"0,1", 8, 1e-2, 9e-3});
  indexMeasurements(p);
  return p;
}

TEST(CostModelTest, ProfileRoundTrip) {
  DeviceProfile p = sampleProfile();
  std::string text = formatProfile(p);
  DeviceProfile q;
  std::string error;
  ASSERT_TRUE(parseProfile(text, "p.json", q, error)) << error;
  EXPECT_EQ(q.device.name, "synthetic");
  EXPECT_EQ(q.device.peakGflops, 200);
  EXPECT_TRUE(q.calibrated);
  EXPECT_NEAR(q.passOverhead, 50e-6, 1e-12);
  EXPECT_NEAR(q.exampleOverhead, 2e-6, 1e-12);
  ASSERT_EQ(q.families.count("f"), 1u);
  EXPECT_EQ(q.families["f"].form, Form::LogLinear);
  EXPECT_EQ(q.families["f"].features, p.families["f"].features);
  EXPECT_EQ(q.families["f"].coefficients, p.families["f"].coefficients);
  EXPECT_EQ(q.families["f"].looWithin10, 0.8);
  ASSERT_EQ(q.measurements.size(), 3u);
  EXPECT_EQ(q.measurements[0].params, p.measurements[0].params);
  ASSERT_EQ(q.passes.size(), 1u);
  EXPECT_EQ(q.passes[0].batch, 8);
  EXPECT_EQ(formatProfile(q), text);

  // A measured configuration takes its median; others the family's fit,
  // an unknown family the fallback.
  std::vector<KernelSample> g = grid();
  EXPECT_NEAR(predictKernel(q, g[0]), 2e-3, 1e-15);
  q.useMeasured = false;
  EXPECT_NEAR(predictKernel(q, g[0]), predictWith(q.families["f"], q.device, g[0]), 1e-15);
  q.useMeasured = true;
  EXPECT_NEAR(predictKernel(q, g[5]), predictWith(q.families["f"], q.device, g[5]), 1e-15);
  g[5].family = "other";
  EXPECT_NEAR(predictKernel(q, g[5]), predictWith(q.fallback, q.device, g[5]), 1e-15);
  EXPECT_NEAR(predictPass(q, {g[5]}, 8),
              50e-6 + 16e-6 + predictWith(q.fallback, q.device, g[5]), 1e-12);
}

// A fused kernel whose family the profile has no fit of is predicted as
// the sum of its parts, when every part's family has one; calibration
// scales it by the fused family's factor.
TEST(CostModelTest, FusedKernelFromItsParts) {
  DeviceProfile p = sampleProfile();
  p.families["g"] = rooflineModel(3e-6, 0.5, 0.5);
  std::vector<KernelSample> g = grid();
  KernelSample fused = g[4];
  fused.family = "fused";
  fused.configuration = "fused kernel";
  KernelSample first = g[5], second = g[6];
  first.configuration = "first part";
  second.family = "g";
  fused.parts = {first, second};
  double sum = predictWith(p.families["f"], p.device, first) +
               predictWith(p.families["g"], p.device, second);
  EXPECT_TRUE(predictedFromParts(p, fused));
  EXPECT_EQ(predictorUsed(p, fused), "parts");
  EXPECT_NEAR(predictKernel(p, fused), sum, 1e-15);
  // A part measured by the profile takes its median.
  first.configuration = g[0].configuration;
  first.batch = g[0].batch;
  fused.parts[0] = first;
  EXPECT_NEAR(predictKernel(p, fused),
              2e-3 + predictWith(p.families["g"], p.device, second), 1e-15);
  // Calibrated: times the fused family's factor (here the overall one).
  p.calibration = CalibrationRecord();
  p.calibration->overall.byBatch[1] = 2;
  EXPECT_NEAR(predictKernel(p, fused),
              2 * (2e-3 + predictWith(p.families["g"], p.device, second)), 1e-15);
  p.calibration.reset();
  // A fit of the fused family itself wins over the parts.
  p.families["fused"] = rooflineModel(1e-6, 1, 1);
  EXPECT_FALSE(predictedFromParts(p, fused));
  EXPECT_EQ(predictorUsed(p, fused), "roofline");
  EXPECT_NEAR(predictKernel(p, fused), predictWith(p.families["fused"], p.device, fused),
              1e-15);
  // A part without a fit: the fallback for the whole kernel.
  p.families.erase("fused");
  p.families.erase("g");
  EXPECT_FALSE(predictedFromParts(p, fused));
  EXPECT_EQ(predictorUsed(p, fused), "fallback roofline");
  EXPECT_NEAR(predictKernel(p, fused), predictWith(p.fallback, p.device, fused), 1e-15);
}

/// Parses `text` and returns the error ("" when it parses).
std::string parseError(const std::string &text) {
  DeviceProfile p;
  std::string error;
  return parseProfile(text, "bad.json", p, error) ? "" : error;
}

/// The sample profile's text with `from` replaced by `to` (once).
std::string edited(const std::string &from, const std::string &to) {
  std::string text = formatProfile(sampleProfile());
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(CostModelTest, MalformedProfilesNameTheFieldAtFault) {
  EXPECT_EQ(parseError(formatProfile(sampleProfile())), "");
  EXPECT_NE(parseError("{").find("'bad.json': not valid JSON"), std::string::npos);
  EXPECT_NE(parseError("[]").find("the top level: expected an object"), std::string::npos);
  // The sample profile with one thing changed, and the error it gets.
  const struct {
    const char *from, *to, *error;
  } edits[] = {
      {"\"version\": 2", "\"version\": 7",
       "version: this qdsl reads version 1 and 2 profiles, the file is version 7"},
      {"\"per_kernel_us\": 0", "\"per_kernel_us\": -1",
       "overhead.per_kernel_us: expected a number >= 0, got -1"},
      {"qdsl-device-profile", "something-else", "format: expected"},
      {"\"peak_gflops\": 200", "\"peak_gflops\": \"fast\"",
       "device.peak_gflops: expected a number"},
      {"\"peak_gflops\": 200", "\"peak_gflops\": -1", "device.peak_gflops: expected a number >="},
      {"\"peak_gflops\": 200,", "", "device.peak_gflops: missing"},
      {"\"loglinear\"", "\"forest\"", "families.f.form: unknown predictor form 'forest'"},
      {"\"macs\",", "",
       "families.f.coefficients: a loglinear predictor with 1 features has 2 coefficients, got 3"},
      {"\"calibrated\": true", "\"calibrated\": 1", "calibrated: expected true or false"},
      {"\"batch\": 1,", "\"batch\": 0,", "measurements[0].batch: expected a number >= 1"},
      {"\"cores\": 2", "\"cores\": 2.5", "device.cores: expected a whole number from 1 to"},
      {"\"per_pass_us\": 50", "\"per_pass_us\": -6",
       "overhead.per_pass_us: expected a number >= 0, got -6"},
      {"\"macs\",", "\"Bogus!\",", "families.f.features[0]: 'Bogus!' is not a feature"},
      {"\"macs\",", "\"channels\",", "families.f.features[1]: 'channels' is named twice"},
  };
  for (const auto &edit : edits) {
    std::string error = parseError(edited(edit.from, edit.to));
    EXPECT_NE(error.find(edit.error), std::string::npos) << error;
  }
  EXPECT_NE(parseError("{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}")
                .find("'bad.json': nests deeper than 32 levels"),
            std::string::npos);
  // A roofline needs positive efficiencies.
  DeviceProfile p = sampleProfile();
  p.fallback = rooflineModel(0, 0, 1);
  EXPECT_NE(parseError(formatProfile(p)).find("fallback.coefficients: a roofline's "
                                              "efficiencies must be positive"),
            std::string::npos);
  DeviceProfile missing;
  std::string error;
  EXPECT_FALSE(readProfile("/nonexistent/profile.json", missing, error));
  EXPECT_NE(error.find("cannot read device profile '/nonexistent/profile.json'"),
            std::string::npos);
}

// qdsl profile's fit: the predictors per family, and the time outside the
// kernels (a + b·batch) recovered from passes that hold it exactly.
TEST(CostModelTest, FitProfileRecoversThePassOverhead) {
  std::vector<KernelSample> kernels = grid();
  for (KernelSample &k : kernels)
    k.seconds = k.macs / 100e9 + 1e-6;
  std::vector<TimedPass> passes;
  for (int64_t batch : {1, 8})
    for (size_t first = 0; first + 4 <= kernels.size(); first += 4) {
      TimedPass pass;
      pass.picks = {int64_t(first / 4)};
      pass.batch = batch;
      pass.kernels.assign(kernels.begin() + first, kernels.begin() + first + 4);
      pass.seconds = 30e-6 + 5e-6 * batch;
      for (const KernelSample &k : pass.kernels)
        pass.seconds += k.seconds;
      passes.push_back(pass);
    }
  DeviceProfile profile;
  profile.device = device();
  fitProfile(profile, passes);
  EXPECT_NEAR(profile.passOverhead, 30e-6, 1e-9);
  EXPECT_NEAR(profile.exampleOverhead, 5e-6, 1e-9);
  EXPECT_EQ(profile.families.count("f"), 1u);
  EXPECT_EQ(profile.measurements.size(), passes.size() * 4);
  ASSERT_EQ(profile.passes.size(), passes.size());
  EXPECT_EQ(profile.passes[1].model, "1");
  EXPECT_EQ(describePicks({}), "(no choices)");
}

// Per-kernel overhead: passes with different numbers of kernels separate
// a + b·batch + c·kernels.
TEST(CostModelTest, FitOverheadSeparatesPerKernelCosts) {
  std::vector<KernelSample> kernels = grid();
  for (KernelSample &k : kernels)
    k.seconds = k.macs / 100e9 + 1e-6;
  std::vector<TimedPass> passes;
  for (int64_t batch : {1, 8})
    for (size_t count : {2, 5, 9, 14}) {
      TimedPass pass;
      pass.batch = batch;
      pass.kernels.assign(kernels.begin(), kernels.begin() + count);
      pass.seconds = 30e-6 + 5e-6 * batch + 3e-6 * count;
      for (const KernelSample &k : pass.kernels)
        pass.seconds += k.seconds;
      passes.push_back(pass);
    }
  DeviceProfile profile;
  fitOverhead(profile, passes);
  EXPECT_NEAR(profile.passOverhead, 30e-6, 1e-10);
  EXPECT_NEAR(profile.exampleOverhead, 5e-6, 1e-10);
  EXPECT_NEAR(profile.kernelOverhead, 3e-6, 1e-10);
  // Each kernel call carries its share into a pass.
  EXPECT_NEAR(predictPass(profile, {}, 1), 35e-6, 1e-10);
  // Time outside the kernels is never negative.
  for (TimedPass &t : passes)
    t.seconds = 0;
  fitOverhead(profile, passes);
  EXPECT_EQ(profile.passOverhead, 0);
  EXPECT_EQ(profile.exampleOverhead, 0);
  EXPECT_EQ(profile.kernelOverhead, 0);
}

MachineRecord machine() {
  MachineRecord m;
  m.cpuModel = "AMD EPYC";
  m.logicalCpus = 2;
  m.threads = 2;
  m.fmaPeakGflops = 192;
  m.bandwidthGBs = 20;
  m.qdslVersion = "0.15.0";
  m.halideVersion = "14.0.0";
  m.generators = "0123456789abcdef";
  m.measuredAt = "2026-11-30T09:00:00Z";
  m.roundSpread = 0.04;
  return m;
}

TEST(CostModelTest, MachineDifferencesNameWhatDiffers) {
  MachineRecord then = machine(), now = machine();
  EXPECT_TRUE(machineDifferences(then, now).empty());
  // Within the tolerance: the same machine measured again.
  now.fmaPeakGflops = 180;
  EXPECT_TRUE(machineDifferences(then, now).empty());
  now.bandwidthGBs = 17;  // -15%: within twice the tolerance
  EXPECT_TRUE(machineDifferences(then, now).empty());
  now.bandwidthGBs = 15;
  ASSERT_EQ(machineDifferences(then, now).size(), 1u);
  EXPECT_EQ(machineDifferences(then, now)[0], "memory bandwidth 15 GB/s here, 20 when profiled "
                                              "(-25%)");
  now.fmaPeakGflops = 151;
  now.cpuModel = "Intel Xeon";
  now.generators = "fedcba9876543210";
  now.bandwidthGBs = 0;  // not measured: not compared
  std::vector<std::string> d = machineDifferences(then, now);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], "CPU 'Intel Xeon' here, 'AMD EPYC' when profiled");
  EXPECT_EQ(d[1], "FMA peak 151 GFLOP/s here, 192 when profiled (-21%)");
  EXPECT_NE(d[2].find("kernel generators changed"), std::string::npos);
  // The probe measures something plausible on any machine that runs this.
  EXPECT_GT(measureFmaPeak(1, 0.05), 0.5);
}

/// A base profile with one family per predictor form, measured medians for
/// some configurations, and overheads.
DeviceProfile baseProfile() {
  DeviceProfile p;
  p.device = device();
  p.calibrated = true;
  p.source = "base";
  p.passOverhead = 40e-6;
  p.exampleOverhead = 4e-6;
  p.kernelOverhead = 1e-6;
  p.fallback = rooflineModel(2e-6, 0.4, 0.6);
  p.families["roof"] = rooflineModel(3e-6, 0.5, 0.5);
  FamilyModel linear;
  linear.form = Form::Linear;
  linear.coefficients = {2e-6, 1e-11, 1e-10};
  p.families["lin"] = linear;
  FamilyModel log;
  log.form = Form::LogLinear;
  log.features = {"macs", "channels"};
  log.coefficients = {-22, 0.9, 0.1};
  p.families["log"] = log;
  std::vector<KernelSample> g = grid();
  for (size_t i = 0; i < 6; ++i) {
    g[i].family = i % 2 ? "lin" : "log";
    g[i].seconds = 1e-4 * (i + 1);
    p.measurements.push_back(g[i]);
  }
  p.machine = machine();
  indexMeasurements(p);
  return p;
}

// Calibration against a synthetic machine on which each family is slower
// or faster by a known factor that also depends on the batch (threads
// share small batches less well), and the time outside the kernels too.
TEST(CostModelTest, CalibrationRecoversAKnownSlowdownPerFamily) {
  DeviceProfile base = baseProfile();
  const std::map<std::string, std::map<int64_t, double>> slowdown = {
      {"roof", {{1, 1.3}, {8, 1.6}}}, {"lin", {{1, 0.8}, {8, 0.8}}}, {"log", {{1, 1.55}, {8, 2.0}}}};
  std::vector<KernelSample> g = grid();
  std::vector<TimedPass> passes;
  for (int64_t batch : {1, 8}) {
    TimedPass pass;
    pass.picks = {batch};
    pass.batch = batch;
    // Configurations the base measured and ones it did not.
    for (size_t i = 0; i < 12; ++i) {
      KernelSample k = g[i];
      k.batch = batch;
      k.family = i < 6 ? (i % 2 ? "lin" : "log") : (i % 3 ? "roof" : "lin");
      k.seconds = predictKernel(base, k) * slowdown.at(k.family).at(batch);
      pass.kernels.push_back(k);
    }
    double kernels = 0;
    for (const KernelSample &k : pass.kernels)
      kernels += k.seconds;
    pass.seconds = kernels + 1.25 * (base.passOverhead + base.exampleOverhead * batch +
                                     base.kernelOverhead * pass.kernels.size());
    passes.push_back(pass);
  }
  DeviceProfile calibrated = calibrateProfile(base, passes);
  ASSERT_TRUE(calibrated.calibration);
  const CalibrationRecord &record = *calibrated.calibration;
  for (const auto &[family, byBatch] : slowdown) {
    ASSERT_EQ(record.factors.count(family), 1u) << family;
    EXPECT_GT(record.factors.at(family).kernels, 0u);
    for (const auto &[batch, factor] : byBatch)
      EXPECT_NEAR(record.factor(family, batch), factor, 1e-9) << family << " " << batch;
  }
  // Between the batches timed: linear in log(batch); beyond: held.
  EXPECT_NEAR(record.factor("roof", 2), 1.3 + 0.3 / 3, 1e-9);
  EXPECT_NEAR(record.factor("roof", 64), 1.6, 1e-12);
  EXPECT_NEAR(calibrated.passOverhead, 1.25 * 40e-6, 1e-12);
  EXPECT_NEAR(calibrated.kernelOverhead, 1.25 * 1e-6, 1e-12);
  EXPECT_NEAR(record.overheadFactor, 1.25, 1e-9);
  EXPECT_LT(record.kernelRmspeAfter, 1e-9);
  EXPECT_GT(record.kernelRmspeBefore, 0.2);
  EXPECT_LT(record.passRmspeAfter, 1e-9);
  EXPECT_EQ(record.kernels, 24u);
  EXPECT_EQ(record.passes, 2u);
  ASSERT_TRUE(record.baseMachine);
  EXPECT_EQ(record.baseMachine->fmaPeakGflops, 192);
  // Kernels calibration never timed (other sizes) scale with their family
  // and batch, through the predictor or the measured median.
  for (size_t i = 12; i < g.size(); ++i)
    for (const char *family : {"roof", "lin", "log"}) {
      KernelSample k = g[i];
      k.family = family;
      EXPECT_NEAR(predictKernel(calibrated, k) / predictKernel(base, k),
                  slowdown.at(family).at(k.batch), 1e-9)
          << family << " " << i;
    }
  KernelSample measured = base.measurements[1];
  EXPECT_NEAR(predictKernel(calibrated, measured) / predictKernel(base, measured), 0.8, 1e-9);
  // A family none of the timed kernels belongs to takes the overall factor.
  DeviceProfile withMore = base;
  withMore.families["other"] = rooflineModel(1e-6, 0.5, 0.5);
  DeviceProfile c2 = calibrateProfile(withMore, passes);
  EXPECT_EQ(c2.calibration->factors.at("other").kernels, 0u);
  EXPECT_NEAR(c2.calibration->factor("other", 8), c2.calibration->overall.at(8), 1e-12);
  // A family timed here that the base has no predictor for: the base's
  // fallback (its reference) times the family's own factor.
  DeviceProfile fewer = base;
  fewer.families.erase("roof");
  DeviceProfile c3 = calibrateProfile(fewer, passes);
  KernelSample unseen = g[13];
  unseen.family = "roof";
  EXPECT_NEAR(predictKernel(c3, unseen) / predictKernel(fewer, unseen),
              c3.calibration->factor("roof", unseen.batch), 1e-9);

  // The record survives a round trip, and so does the machine.
  calibrated.calibration->base = "base.json";
  DeviceProfile q;
  std::string error;
  ASSERT_TRUE(parseProfile(formatProfile(calibrated), "c.json", q, error)) << error;
  ASSERT_TRUE(q.calibration);
  EXPECT_EQ(q.calibration->base, "base.json");
  EXPECT_NEAR(q.calibration->factor("log", 8), 2.0, 1e-12);
  EXPECT_NEAR(q.calibration->factor("log", 1), 1.55, 1e-12);
  ASSERT_TRUE(q.calibration->baseMachine);
  EXPECT_EQ(q.calibration->baseMachine->cpuModel, "AMD EPYC");
  ASSERT_TRUE(q.machine);
  EXPECT_EQ(q.machine->generators, "0123456789abcdef");
  EXPECT_EQ(q.machine->roundSpread, 0.04);
  EXPECT_NEAR(q.kernelOverhead, 1.25e-6, 1e-12);
  EXPECT_NEAR(predictKernel(q, unseen), predictKernel(calibrated, unseen), 1e-15);
}

TEST(CostModelTest, ACalibrationIsOfTheBaseItRecords) {
  DeviceProfile base;
  base.file = "some/dir/host-fmnist.json";
  base.source = "measured by qdsl profile";
  MachineRecord there;
  there.cpuModel = "AMD EPYC";
  there.measuredAt = "2026-11-30T12:48:57Z";
  base.machine = there;
  DeviceProfile calibrated;
  EXPECT_FALSE(isCalibrationOf(calibrated, base)); // no calibration record
  CalibrationRecord record;
  record.base = "host-fmnist.json";
  record.baseSource = base.source;
  record.baseMachine = there;
  calibrated.calibration = record;
  EXPECT_TRUE(isCalibrationOf(calibrated, base));
  // The same name and source, re-measured another day: another base.
  DeviceProfile remeasured = base;
  remeasured.machine->measuredAt = "2026-12-07T03:00:00Z";
  EXPECT_FALSE(isCalibrationOf(calibrated, remeasured));
  DeviceProfile renamed = base;
  renamed.file = "other.json";
  EXPECT_FALSE(isCalibrationOf(calibrated, renamed));
  DeviceProfile resourced = base;
  resourced.source = "published figures";
  EXPECT_FALSE(isCalibrationOf(calibrated, resourced));
  // Written before profiles said where they were measured: name and source.
  DeviceProfile unplaced = base;
  unplaced.machine.reset();
  EXPECT_TRUE(isCalibrationOf(calibrated, unplaced));
}

TEST(CostModelTest, MalformedMachineAndCalibrationRecords) {
  auto errorOf = [](std::string text) {
    DeviceProfile p;
    std::string error;
    EXPECT_FALSE(parseProfile(text, "m.json", p, error));
    return error;
  };
  DeviceProfile p = baseProfile();
  std::string good = formatProfile(p);
  auto replaced = [&](const std::string &from, const std::string &to) {
    std::string text = good;
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  EXPECT_NE(errorOf(replaced("\"fma_peak_gflops\": 192", "\"fma_peak_gflops\": \"fast\""))
                .find("'m.json': machine.fma_peak_gflops: expected a number"),
            std::string::npos);
  EXPECT_NE(errorOf(replaced("\"logical_cpus\": 2", "\"logical_cpus\": 0"))
                .find("machine.logical_cpus: expected a number >= 1"),
            std::string::npos);
  EXPECT_NE(errorOf(replaced("\"cpu_model\": \"AMD EPYC\",", ""))
                .find("machine.cpu_model: missing (expected a string)"),
            std::string::npos);
  p.calibration = CalibrationRecord();
  p.calibration->base = "b.json";
  p.calibration->factors["roof"].byBatch = {{1, 2.0}, {8, 3.0}};
  p.calibration->factors["roof"].kernels = 3;
  p.calibration->overall.byBatch = {{1, 1.5}};
  good = formatProfile(p);
  DeviceProfile ok;
  std::string okError;
  EXPECT_TRUE(parseProfile(good, "c.json", ok, okError)) << okError;
  EXPECT_NE(errorOf(replaced("\"8\": 3", "\"8\": 1e9"))
                .find("calibration.factors.roof.by_batch.8: expected a factor from 0.001 to 1000"),
            std::string::npos);
  EXPECT_NE(errorOf(replaced("\"8\": 3", "\"eight\": 3"))
                .find("calibration.factors.roof.by_batch.eight: expected a batch size"),
            std::string::npos);
  EXPECT_NE(errorOf(replaced("\"1\": 1.5", "")).find("calibration.overall.by_batch: expected "
                                                      "a factor for at least one batch size"),
            std::string::npos);
  // Version 1 files (no machine, no calibration, no per-kernel overhead)
  // are read; version 3 is not.
  DeviceProfile v1;
  std::string error;
  std::string old = formatProfile(baseProfile());
  old.replace(old.find("\"version\": 2"), 12, "\"version\": 1");
  EXPECT_TRUE(parseProfile(old, "v1.json", v1, error)) << error;
  old.replace(old.find("\"version\": 1"), 12, "\"version\": 3");
  EXPECT_NE(errorOf(old).find("reads version 1 and 2 profiles, the file is version 3"),
            std::string::npos);
}

} // namespace
