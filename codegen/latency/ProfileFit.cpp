//===- ProfileFit.cpp - a device profile from timed architectures ---------===//

#include "codegen/latency/ProfileFit.h"

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
  // Time outside the kernels: a + b·batch by least squares.
  double n = 0, sb = 0, sbb = 0, sr = 0, sbr = 0;
  for (const TimedPass &t : passes) {
    double kernels = 0;
    for (const KernelSample &k : t.kernels)
      kernels += k.seconds;
    double rest = t.seconds - kernels, b = static_cast<double>(t.batch);
    n += 1, sb += b, sbb += b * b, sr += rest, sbr += b * rest;
  }
  double det = n * sbb - sb * sb;
  double slope = det > 0 ? (n * sbr - sb * sr) / det : 0;
  double intercept = n > 0 ? (sr - slope * sb) / n : 0;
  if (slope < 0 || intercept < 0) {
    slope = std::max(0.0, sbb > 0 ? sbr / sbb : 0);
    intercept = std::max(0.0, n > 0 ? (sr - slope * sb) / n : 0);
  }
  profile.passOverhead = intercept;
  profile.exampleOverhead = slope;
  profile.measurements = all;
  indexMeasurements(profile);
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
