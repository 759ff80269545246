//===- ProfileFit.cpp - a device profile from timed architectures ---------===//

#include "codegen/latency/ProfileFit.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace qdsl::cost {

std::string describePicks(const std::vector<int64_t> &picks) {
  std::string s;
  for (int64_t p : picks)
    s += (s.empty() ? "" : ",") + std::to_string(p);
  return s.empty() ? "(no choices)" : s;
}

void fitOverhead(DeviceProfile &profile, const std::vector<TimedPass> &passes) {
  // Time outside the kernel timers: a + b·batch + c·kernels, non-negative
  // least squares over the passes.
  std::vector<std::vector<double>> rows;
  std::vector<double> rest;
  for (const TimedPass &t : passes) {
    double kernels = 0;
    for (const KernelSample &k : t.kernels)
      kernels += k.seconds;
    rows.push_back({1.0, static_cast<double>(t.batch), static_cast<double>(t.kernels.size())});
    rest.push_back(t.seconds - kernels);
  }
  std::vector<double> c = nonNegativeLeastSquares(rows, rest);
  profile.passOverhead = c.empty() ? 0 : c[0];
  profile.exampleOverhead = c.empty() ? 0 : c[1];
  profile.kernelOverhead = c.empty() ? 0 : c[2];
}

void fitProfile(DeviceProfile &profile, const std::vector<TimedPass> &passes) {
  std::map<std::string, std::vector<KernelSample>> byFamily;
  std::vector<KernelSample> all;
  for (const TimedPass &t : passes)
    for (const KernelSample &k : t.kernels) {
      byFamily[k.family].push_back(k);
      all.push_back(k);
    }
  profile.families.clear();
  for (const auto &[family, samples] : byFamily)
    profile.families[family] = fitFamily(samples, profile.device);
  profile.fallback = fitForm(Form::Roofline, all, profile.device);
  fitOverhead(profile, passes);
  profile.measurements = all;
  indexMeasurements(profile);
  recordPasses(profile, passes);
}

void recordPasses(DeviceProfile &profile, const std::vector<TimedPass> &passes) {
  profile.passes.clear();
  for (const TimedPass &t : passes) {
    DeviceProfile::Pass pass;
    pass.model = describePicks(t.picks);
    pass.batch = t.batch;
    pass.seconds = t.seconds;
    for (const KernelSample &k : t.kernels)
      pass.kernelSeconds += k.seconds;
    profile.passes.push_back(pass);
  }
}

std::vector<HeldOutPass> crossValidateArchitectures(const DeviceProfile &profile,
                                                  const std::vector<TimedPass> &passes) {
  std::map<std::string, std::vector<size_t>> byArchitecture;
  for (auto [i, t] : llvm::enumerate(passes))
    byArchitecture[describePicks(t.picks)].push_back(i);
  std::vector<HeldOutPass> heldOut;
  if (byArchitecture.size() < 3)
    return heldOut;
  for (const auto &[model, held] : byArchitecture) {
    std::vector<TimedPass> rest;
    for (auto [i, t] : llvm::enumerate(passes))
      if (!llvm::is_contained(held, i))
        rest.push_back(t);
    DeviceProfile fitted;
    fitted.device = profile.device;
    fitProfile(fitted, rest);
    for (size_t i : held)
      heldOut.push_back({model, passes[i].batch,
                         predictPass(fitted, passes[i].kernels, passes[i].batch),
                         passes[i].seconds});
  }
  return heldOut;
}

void printHeldOut(const std::vector<HeldOutPass> &heldOut, llvm::raw_ostream &os) {
  std::map<int64_t, std::vector<double>> predicted, measured, signedErrors;
  for (const HeldOutPass &h : heldOut) {
    predicted[h.batch].push_back(h.predicted);
    measured[h.batch].push_back(h.measured);
    signedErrors[h.batch].push_back(h.predicted / h.measured - 1);
  }
  for (const auto &[b, errors] : signedErrors) {
    Accuracy a = accuracy(predicted[b], measured[b]);
    os << llvm::formatv("  end to end, each architecture predicted by a profile fitted "
                        "without it (batch {0}, {1} architectures): median error {2:f1}%, "
                        "RMSPE {3:f1}%, {4:f1}% within ±10%\n",
                        b, errors.size(), median(errors) * 100, a.rmspe * 100,
                        a.within10 * 100);
  }
}

std::vector<std::vector<double>> candidateErrors(const DeviceProfile &profile,
                                                 const std::vector<TimedPass> &passes,
                                                 const std::vector<ChoiceLayer> &layers) {
  std::vector<std::vector<double>> error(layers.size()), count(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) {
    error[l].assign(layers[l].candidates, 0);
    count[l].assign(layers[l].candidates, 0);
  }
  for (const TimedPass &t : passes)
    for (const KernelSample &k : t.kernels)
      for (size_t l = 0; l < layers.size(); ++l)
        if (llvm::StringRef(k.name).starts_with(layers[l].name + "/")) {
          // Capped: one tiny kernel off by 50× must not make every draw
          // the same architecture.
          double e = std::min(1.0, std::fabs(predictKernel(profile, k) - k.seconds) / k.seconds);
          error[l][t.picks[l]] += e;
          count[l][t.picks[l]] += 1;
        }
  for (size_t l = 0; l < layers.size(); ++l)
    for (size_t c = 0; c < layers[l].candidates; ++c)
      error[l][c] = count[l][c] > 0 ? error[l][c] / count[l][c] : -1;
  return error;
}

void printFit(const DeviceProfile &profile, llvm::raw_ostream &os) {
  os << llvm::formatv("  {0,-28} {1,-9} {2,7} {3,9} {4,9} {5,9} {6,9}\n", "family", "predictor",
                      "samples", "RMSPE", "±10%", "LOO RMSPE", "LOO ±10%");
  for (const auto &[family, m] : profile.families)
    os << llvm::formatv("  {0,-28} {1,-9} {2,7} {3,8:f1}% {4,8:f1}% {5,8:f1}% {6,8:f1}%\n",
                        family, formName(m.form), m.samples, m.rmspe * 100, m.within10 * 100,
                        m.looRmspe * 100, m.looWithin10 * 100);
  std::vector<double> predicted, measured, fitted;
  DeviceProfile fitOnly = profile;
  fitOnly.useMeasured = false;
  for (const KernelSample &k : profile.measurements) {
    predicted.push_back(predictKernel(profile, k));
    fitted.push_back(predictKernel(fitOnly, k));
    measured.push_back(k.seconds);
  }
  Accuracy kernels = accuracy(predicted, measured);
  Accuracy fits = accuracy(fitted, measured);
  os << llvm::formatv("  kernels ({0} measurements): fitted predictors RMSPE {1:f1}%, {2:f1}% "
                      "within ±10%; configuration medians RMSPE {3:f1}%, {4:f1}% within ±10%\n",
                      kernels.count, fits.rmspe * 100, fits.within10 * 100, kernels.rmspe * 100,
                      kernels.within10 * 100);
}

} // namespace qdsl::cost
