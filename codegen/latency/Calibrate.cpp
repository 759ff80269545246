//===- Calibrate.cpp - a device profile carried to this machine -----------===//

#include "codegen/latency/Calibrate.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

namespace qdsl::cost {

FamilyModel scaledModel(const FamilyModel &model, double factor) {
  FamilyModel m = model;
  switch (m.form) {
  case Form::Roofline:
    // t = o + max(flops / (e_c·peak), bytes / (e_m·bandwidth)).
    m.coefficients[0] *= factor;
    m.coefficients[1] /= factor;
    m.coefficients[2] /= factor;
    break;
  case Form::Linear:
    for (double &c : m.coefficients)
      c *= factor;
    break;
  case Form::LogLinear:
    // The intercept of log t.
    m.coefficients[0] += std::log(factor);
    break;
  }
  return m;
}

DeviceProfile calibrateProfile(const DeviceProfile &base, const std::vector<TimedPass> &passes) {
  CalibrationRecord record;
  record.baseSource = base.source;
  record.baseMachine = base.machine;
  // Per family, Σ measured and Σ predicted by the base: a ratio of sums
  // weighs each kernel by its time, as end-to-end latency does.
  std::map<std::string, std::pair<double, double>> sums;
  double measuredTotal = 0, predictedTotal = 0;
  std::vector<double> measured, before;
  for (const TimedPass &t : passes)
    for (const KernelSample &k : t.kernels) {
      double predicted = predictKernel(base, k);
      sums[k.family].first += k.seconds;
      sums[k.family].second += predicted;
      measuredTotal += k.seconds;
      predictedTotal += predicted;
      measured.push_back(k.seconds);
      before.push_back(predicted);
    }
  record.overallFactor = predictedTotal > 0 ? measuredTotal / predictedTotal : 1;
  for (const auto &[family, sum] : sums) {
    CalibrationRecord::Factor f;
    f.factor = sum.second > 0 ? sum.first / sum.second : record.overallFactor;
    for (const TimedPass &t : passes)
      for (const KernelSample &k : t.kernels)
        f.kernels += k.family == family;
    record.factors[family] = f;
  }
  for (const auto &[family, model] : base.families)
    if (!record.factors.count(family))
      record.factors[family] = {record.overallFactor, 0};
  auto factorOf = [&](const std::string &family) {
    auto it = record.factors.find(family);
    return it == record.factors.end() ? record.overallFactor : it->second.factor;
  };

  DeviceProfile p = base;
  p.file.clear();
  p.calibrated = true;
  for (auto &[family, model] : p.families)
    model = scaledModel(model, factorOf(family));
  p.fallback = scaledModel(base.fallback, record.overallFactor);
  for (KernelSample &k : p.measurements)
    k.seconds *= factorOf(k.family);
  indexMeasurements(p);

  // The time outside the kernels: base's a + b·batch + c·kernels, scaled
  // by one factor (a few passes cannot refit three terms).
  double restHere = 0, restBase = 0;
  for (const TimedPass &t : passes) {
    double kernels = 0;
    for (const KernelSample &k : t.kernels)
      kernels += k.seconds;
    restHere += t.seconds - kernels;
    restBase += base.passOverhead + base.exampleOverhead * static_cast<double>(t.batch) +
                base.kernelOverhead * static_cast<double>(t.kernels.size());
  }
  double overheadFactor = restBase > 0 ? std::max(0.0, restHere / restBase) : 1;
  p.passOverhead *= overheadFactor;
  p.exampleOverhead *= overheadFactor;
  p.kernelOverhead *= overheadFactor;

  std::vector<double> after, passMeasured, passBefore, passAfter;
  for (const TimedPass &t : passes) {
    for (const KernelSample &k : t.kernels)
      after.push_back(predictKernel(p, k));
    passMeasured.push_back(t.seconds);
    passBefore.push_back(predictPass(base, t.kernels, t.batch));
    passAfter.push_back(predictPass(p, t.kernels, t.batch));
  }
  Accuracy kb = accuracy(before, measured), ka = accuracy(after, measured);
  record.kernels = measured.size();
  record.passes = passes.size();
  record.kernelRmspeBefore = kb.rmspe;
  record.kernelWithin10Before = kb.within10;
  record.kernelRmspeAfter = ka.rmspe;
  record.kernelWithin10After = ka.within10;
  record.passRmspeBefore = accuracy(passBefore, passMeasured).rmspe;
  record.passRmspeAfter = accuracy(passAfter, passMeasured).rmspe;

  p.passes.clear();
  for (const TimedPass &t : passes) {
    DeviceProfile::Pass pass;
    pass.model = describePicks(t.picks);
    pass.batch = t.batch;
    pass.seconds = t.seconds;
    for (const KernelSample &k : t.kernels)
      pass.kernelSeconds += k.seconds;
    p.passes.push_back(pass);
  }
  p.calibration = std::move(record);
  return p;
}

void printCalibration(const CalibrationRecord &record, llvm::raw_ostream &os) {
  os << llvm::formatv("  {0,-28} {1,8} {2,8}\n", "family", "factor", "kernels");
  for (const auto &[family, f] : record.factors)
    os << llvm::formatv("  {0,-28} {1,8:f3} {2,8}{3}\n", family, f.factor, f.kernels,
                        f.kernels ? "" : "  (none timed: the overall factor)");
  os << llvm::formatv("  overall factor {0:f3}\n", record.overallFactor);
  os << llvm::formatv("  calibration kernels ({0}): RMSPE {1:f1}% -> {2:f1}%, within ±10% "
                      "{3:f1}% -> {4:f1}%\n",
                      record.kernels, record.kernelRmspeBefore * 100,
                      record.kernelRmspeAfter * 100, record.kernelWithin10Before * 100,
                      record.kernelWithin10After * 100);
  os << llvm::formatv("  calibration passes ({0}): RMSPE {1:f1}% -> {2:f1}%\n", record.passes,
                      record.passRmspeBefore * 100, record.passRmspeAfter * 100);
}

} // namespace qdsl::cost
