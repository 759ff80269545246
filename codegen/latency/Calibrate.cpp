//===- Calibrate.cpp - a device profile carried to this machine -----------===//

#include "codegen/latency/Calibrate.h"

#include "llvm/Support/Path.h"

#include "llvm/Support/FormatVariadic.h"

namespace qdsl::cost {

namespace {

/// Σ measured / Σ predicted per batch: a ratio of sums weighs each kernel
/// by its time, as end-to-end latency does.
struct Sums {
  std::map<int64_t, std::pair<double, double>> byBatch;
  size_t kernels = 0;

  void add(const KernelSample &k, double predicted) {
    byBatch[k.batch].first += k.seconds;
    byBatch[k.batch].second += predicted;
    ++kernels;
  }
  CalibrationFactor factor() const {
    CalibrationFactor f;
    f.kernels = kernels;
    for (const auto &[batch, sum] : byBatch)
      if (sum.second > 0 && sum.first > 0)
        f.byBatch[batch] = sum.first / sum.second;
    return f;
  }
};

} // namespace

DeviceProfile calibrateProfile(const DeviceProfile &base, const std::vector<TimedPass> &passes) {
  CalibrationRecord record;
  record.baseSource = base.source;
  record.baseMachine = base.machine;
  std::map<std::string, Sums> byFamily;
  Sums all;
  std::vector<double> measured, before;
  for (const TimedPass &t : passes)
    for (const KernelSample &k : t.kernels) {
      double predicted = predictKernel(base, k);
      byFamily[k.family].add(k, predicted);
      all.add(k, predicted);
      measured.push_back(k.seconds);
      before.push_back(predicted);
    }
  record.overall = all.factor();
  for (const auto &[family, sums] : byFamily)
    record.factors[family] = sums.factor();
  // Families of the base no timed kernel belongs to: the overall factor,
  // said with 0 kernels.
  for (const auto &[family, model] : base.families)
    if (!record.factors.count(family)) {
      CalibrationFactor f = record.overall;
      f.kernels = 0;
      record.factors[family] = f;
    }

  DeviceProfile p = base;
  p.file.clear();
  p.calibrated = true;
  // The time outside the kernels: the base's a + b·batch + c·kernels,
  // scaled by one factor (a few passes cannot refit three terms).
  double restHere = 0, restBase = 0;
  for (const TimedPass &t : passes) {
    double kernels = 0;
    for (const KernelSample &k : t.kernels)
      kernels += k.seconds;
    restHere += t.seconds - kernels;
    restBase += base.passOverhead + base.exampleOverhead * static_cast<double>(t.batch) +
                base.kernelOverhead * static_cast<double>(t.kernels.size());
  }
  record.overheadFactor = restBase > 0 ? std::max(0.0, restHere / restBase) : 1;
  p.passOverhead *= record.overheadFactor;
  p.exampleOverhead *= record.overheadFactor;
  p.kernelOverhead *= record.overheadFactor;
  p.calibration = record;

  std::vector<double> after, passMeasured, passBefore, passAfter;
  for (const TimedPass &t : passes) {
    for (const KernelSample &k : t.kernels)
      after.push_back(predictKernel(p, k));
    passMeasured.push_back(t.seconds);
    passBefore.push_back(predictPass(base, t.kernels, t.batch));
    passAfter.push_back(predictPass(p, t.kernels, t.batch));
  }
  Accuracy kb = accuracy(before, measured), ka = accuracy(after, measured);
  CalibrationRecord &r = *p.calibration;
  r.kernels = measured.size();
  r.passes = passes.size();
  r.kernelRmspeBefore = kb.rmspe;
  r.kernelWithin10Before = kb.within10;
  r.kernelRmspeAfter = ka.rmspe;
  r.kernelWithin10After = ka.within10;
  r.passRmspeBefore = accuracy(passBefore, passMeasured).rmspe;
  r.passRmspeAfter = accuracy(passAfter, passMeasured).rmspe;

  recordPasses(p, passes);
  return p;
}

void printCalibration(const CalibrationRecord &record, llvm::raw_ostream &os) {
  auto row = [&](const std::string &name, const CalibrationFactor &f, const char *note) {
    os << llvm::formatv("  {0,-28} {1,8}  ", name, f.kernels);
    for (const auto &[batch, factor] : f.byBatch)
      os << llvm::formatv(" batch {0}: {1:f3}", batch, factor);
    os << note << "\n";
  };
  os << llvm::formatv("  {0,-28} {1,8}   factor (time here / time the base predicts)\n",
                      "family", "kernels");
  for (const auto &[family, f] : record.factors)
    row(family, f, f.kernels ? "" : "  (none timed: the overall factor)");
  row("(overall)", record.overall, "");
  os << llvm::formatv("  time outside the kernels: factor {0:f3}\n", record.overheadFactor);
  os << llvm::formatv("  calibration kernels ({0}): RMSPE {1:f1}% -> {2:f1}%, within ±10% "
                      "{3:f1}% -> {4:f1}%\n",
                      record.kernels, record.kernelRmspeBefore * 100,
                      record.kernelRmspeAfter * 100, record.kernelWithin10Before * 100,
                      record.kernelWithin10After * 100);
  os << llvm::formatv("  calibration passes ({0}): RMSPE {1:f1}% -> {2:f1}%\n", record.passes,
                      record.passRmspeBefore * 100, record.passRmspeAfter * 100);
}

bool isCalibrationOf(const DeviceProfile &calibrated, const DeviceProfile &base) {
  const std::optional<CalibrationRecord> &record = calibrated.calibration;
  if (!record || record->base != llvm::sys::path::filename(base.file) ||
      record->baseSource != base.source)
    return false;
  if (record->baseMachine && base.machine)
    return record->baseMachine->measuredAt == base.machine->measuredAt &&
           record->baseMachine->cpuModel == base.machine->cpuModel;
  return true;
}

} // namespace qdsl::cost
