//===- CostModel.cpp - kernel latency predictors --------------------------===//

#include "codegen/latency/CostModel.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

namespace qdsl::cost {

const char *formName(Form form) {
  switch (form) {
  case Form::Roofline: return "roofline";
  case Form::Linear: return "linear";
  case Form::LogLinear: return "loglinear";
  }
  return "roofline";
}

bool parseForm(const std::string &name, Form &form) {
  for (Form f : {Form::Roofline, Form::Linear, Form::LogLinear})
    if (name == formName(f)) {
      form = f;
      return true;
    }
  return false;
}

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + mid, values.end());
  double upper = values[mid];
  if (values.size() % 2)
    return upper;
  return (*std::max_element(values.begin(), values.begin() + mid) + upper) / 2;
}

Accuracy accuracy(const std::vector<double> &predicted,
                  const std::vector<double> &measured) {
  Accuracy a;
  double squares = 0;
  size_t within = 0;
  for (size_t i = 0; i < predicted.size() && i < measured.size(); ++i) {
    if (!(measured[i] > 0))
      continue;
    double relative = (predicted[i] - measured[i]) / measured[i];
    squares += relative * relative;
    within += std::fabs(relative) <= 0.10;
    ++a.count;
  }
  if (a.count) {
    a.rmspe = std::sqrt(squares / a.count);
    a.within10 = static_cast<double>(within) / a.count;
  }
  return a;
}

FamilyModel rooflineModel(double overheadSeconds, double computeEfficiency,
                          double memoryEfficiency) {
  FamilyModel m;
  m.form = Form::Roofline;
  m.coefficients = {overheadSeconds, computeEfficiency, memoryEfficiency};
  return m;
}

namespace {

/// Roofline time without the overhead, at efficiencies ec and em.
double rooflineCore(const DeviceFigures &device, const KernelSample &k, double ec,
                    double em) {
  double compute = 2 * k.macs / (ec * device.peakGflops * 1e9);
  double memory = k.bytes / (em * device.bandwidthGBs * 1e9);
  return std::max(compute, memory);
}

/// The loglinear features of `k`, in the order of `names`.
std::vector<double> logFeatures(const std::vector<std::string> &names,
                                const KernelSample &k) {
  std::vector<double> x = {1.0};
  for (const std::string &name : names) {
    double value = 1;
    if (name == "macs")
      value = k.macs + 1;
    else if (name == "bytes")
      value = k.bytes;
    else if (name == "batch")
      value = static_cast<double>(k.batch);
    else
      for (const auto &[param, v] : k.params)
        if (param == name)
          value = v;
    x.push_back(std::log(std::max(value, 1e-30)));
  }
  return x;
}

/// Solves (AᵀA + λI)θ = Aᵀb for the rows of `a` (intercept unpenalised);
/// false when singular.
bool leastSquares(const std::vector<std::vector<double>> &a, const std::vector<double> &b,
                  double lambda, std::vector<double> &theta) {
  size_t d = a.empty() ? 0 : a[0].size();
  if (d == 0)
    return false;
  std::vector<std::vector<double>> m(d, std::vector<double>(d + 1, 0));
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t i = 0; i < d; ++i) {
      for (size_t j = 0; j < d; ++j)
        m[i][j] += a[r][i] * a[r][j];
      m[i][d] += a[r][i] * b[r];
    }
  for (size_t i = 1; i < d; ++i)
    m[i][i] += lambda;
  for (size_t col = 0; col < d; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < d; ++r)
      if (std::fabs(m[r][col]) > std::fabs(m[pivot][col]))
        pivot = r;
    if (std::fabs(m[pivot][col]) < 1e-300)
      return false;
    std::swap(m[col], m[pivot]);
    for (size_t r = 0; r < d; ++r) {
      if (r == col)
        continue;
      double f = m[r][col] / m[col][col];
      for (size_t c = col; c <= d; ++c)
        m[r][c] -= f * m[col][c];
    }
  }
  theta.assign(d, 0);
  for (size_t i = 0; i < d; ++i)
    theta[i] = m[i][d] / m[i][i];
  return true;
}

FamilyModel fitRoofline(const std::vector<KernelSample> &samples,
                        const DeviceFigures &device) {
  // For fixed efficiencies the best overhead has a closed form; search the
  // efficiencies on a log grid, then on a finer one around the best.
  auto evaluate = [&](double ec, double em, double &overhead) {
    double num = 0, den = 0;
    for (const KernelSample &k : samples) {
      double w = 1 / (k.seconds * k.seconds);
      num += (k.seconds - rooflineCore(device, k, ec, em)) * w;
      den += w;
    }
    overhead = std::max(0.0, num / den);
    double error = 0;
    for (const KernelSample &k : samples) {
      double r = (overhead + rooflineCore(device, k, ec, em) - k.seconds) / k.seconds;
      error += r * r;
    }
    return error;
  };
  double bestEc = 0.5, bestEm = 0.5, bestO = 0, best = 1e300;
  double lo = std::log(1e-3), span = std::log(4.0) - lo;
  int steps = 40;
  double step = span / steps;
  for (int i = 0; i <= steps; ++i)
    for (int j = 0; j <= steps; ++j) {
      double ec = std::exp(lo + i * step), em = std::exp(lo + j * step), o;
      double e = evaluate(ec, em, o);
      if (e < best)
        best = e, bestEc = ec, bestEm = em, bestO = o;
    }
  for (int round = 0; round < 3; ++round) {
    double cEc = bestEc, cEm = bestEm;
    double fine = step / 8;
    for (int i = -8; i <= 8; ++i)
      for (int j = -8; j <= 8; ++j) {
        double ec = cEc * std::exp(i * fine), em = cEm * std::exp(j * fine), o;
        double e = evaluate(ec, em, o);
        if (e < best)
          best = e, bestEc = ec, bestEm = em, bestO = o;
      }
    step = fine * 2;
  }
  return rooflineModel(bestO, bestEc, bestEm);
}

FamilyModel fitLinear(const std::vector<KernelSample> &samples) {
  // In relative error: each row divided by its measured time.
  std::vector<std::vector<double>> rows;
  std::vector<double> ones;
  for (const KernelSample &k : samples) {
    rows.push_back({1 / k.seconds, k.macs / k.seconds, k.bytes / k.seconds});
    ones.push_back(1);
  }
  FamilyModel m;
  m.form = Form::Linear;
  m.coefficients = nonNegativeLeastSquares(rows, ones);
  return m;
}

/// The features of a loglinear fit: the numeric parameters that vary.
std::vector<std::string> varyingFeatures(const std::vector<KernelSample> &samples) {
  std::vector<std::string> names = {"macs", "bytes", "batch"};
  std::map<std::string, std::set<double>> values;
  std::map<std::string, size_t> seen;
  for (const KernelSample &k : samples)
    for (const auto &[name, v] : k.params)
      if (v > 0) {
        values[name].insert(v);
        ++seen[name];
      }
  for (const auto &[name, set] : values)
    if (set.size() > 1 && seen[name] == samples.size())
      names.push_back(name);
  return names;
}

FamilyModel fitLogLinear(const std::vector<KernelSample> &samples,
                         const std::vector<std::string> &features) {
  std::vector<std::vector<double>> a;
  std::vector<double> b;
  for (const KernelSample &k : samples) {
    a.push_back(logFeatures(features, k));
    b.push_back(std::log(k.seconds));
  }
  FamilyModel m;
  m.form = Form::LogLinear;
  m.features = features;
  for (const KernelSample &k : samples)
    m.largestMacs[k.batch] = std::max(m.largestMacs[k.batch], k.macs);
  // A light ridge: the features are collinear by construction (log MACs
  // is a sum of logs of parameters), which the penalty resolves.
  if (!leastSquares(a, b, 1e-3 * samples.size(), m.coefficients))
    m.coefficients.assign(features.size() + 1, 0);
  // The fit is of the log; exp of it is a median, not a mean, estimate.
  return m;
}

bool enoughFor(Form form, const std::vector<KernelSample> &samples,
               size_t features) {
  std::set<std::string> configurations;
  for (const KernelSample &k : samples)
    configurations.insert(k.configuration + "@" + std::to_string(k.batch));
  switch (form) {
  case Form::Roofline: return !samples.empty();
  case Form::Linear: return configurations.size() >= 4;
  case Form::LogLinear: return configurations.size() >= features + 3;
  }
  return false;
}

} // namespace

std::vector<double> nonNegativeLeastSquares(const std::vector<std::vector<double>> &rows,
                                            const std::vector<double> &targets) {
  // Every subset of the columns, unconstrained least squares on it, the
  // best feasible one kept: exact, and cheap for the few columns used here.
  size_t d = rows.empty() ? 0 : rows[0].size();
  std::vector<double> best(d, 0);
  auto squaredError = [&](const std::vector<double> &c) {
    double error = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      double residual = -targets[r];
      for (size_t j = 0; j < d; ++j)
        residual += rows[r][j] * c[j];
      error += residual * residual;
    }
    return error;
  };
  // A subset must fit better by more than rounding to replace an earlier
  // (smaller) one: when columns are collinear (every pass has as many
  // kernels), the earlier columns keep the weight.
  double scale = 0;
  for (double t : targets)
    scale += t * t;
  double tolerance = 1e-12 * scale;
  double bestError = squaredError(best);
  for (unsigned mask = 1; mask < (1u << d); ++mask) {
    std::vector<size_t> used;
    for (size_t f = 0; f < d; ++f)
      if (mask & (1u << f))
        used.push_back(f);
    std::vector<std::vector<double>> a;
    for (const auto &row : rows) {
      std::vector<double> r;
      for (size_t f : used)
        r.push_back(row[f]);
      a.push_back(r);
    }
    // Column scaling keeps the normal equations well conditioned.
    std::vector<double> scale(used.size(), 0);
    for (const auto &r : a)
      for (size_t c = 0; c < r.size(); ++c)
        scale[c] = std::max(scale[c], std::fabs(r[c]));
    for (auto &r : a)
      for (size_t c = 0; c < r.size(); ++c)
        r[c] /= scale[c] > 0 ? scale[c] : 1;
    std::vector<double> theta;
    // No penalty: leastSquares leaves column 0 unpenalised only.
    if (!leastSquares(a, targets, 0, theta))
      continue;
    bool feasible = true;
    std::vector<double> coefficients(d, 0);
    for (size_t c = 0; c < used.size(); ++c) {
      double v = theta[c] / (scale[c] > 0 ? scale[c] : 1);
      feasible &= v >= 0;
      coefficients[used[c]] = v;
    }
    if (!feasible)
      continue;
    if (double error = squaredError(coefficients); error < bestError - tolerance)
      bestError = error, best = coefficients;
  }
  return best;
}

double predictWith(const FamilyModel &model, const DeviceFigures &device,
                   const KernelSample &kernel) {
  const std::vector<double> &c = model.coefficients;
  switch (model.form) {
  case Form::Roofline:
    if (c.size() != 3 || !(c[1] > 0) || !(c[2] > 0))
      return 0;
    return c[0] + rooflineCore(device, kernel, c[1], c[2]);
  case Form::Linear:
    if (c.size() != 3)
      return 0;
    return c[0] + c[1] * kernel.macs + c[2] * kernel.bytes;
  case Form::LogLinear: {
    auto largest = model.largestMacs.find(kernel.batch);
    if (largest != model.largestMacs.end() && largest->second > 0 &&
        kernel.macs > largest->second) {
      const double scale = kernel.macs / largest->second;
      KernelSample inRange = kernel;
      inRange.macs = largest->second;
      inRange.bytes = kernel.bytes / scale;
      FamilyModel fitted = model;
      fitted.largestMacs.clear();
      return scale * predictWith(fitted, device, inRange);
    }
    std::vector<double> x = logFeatures(model.features, kernel);
    if (x.size() != c.size())
      return 0;
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i)
      s += x[i] * c[i];
    return std::exp(s);
  }
  }
  return 0;
}

namespace {
std::string measuredKey(const KernelSample &k) {
  return k.family + "|" + k.configuration + "|" + std::to_string(k.batch);
}
} // namespace

void indexMeasurements(DeviceProfile &profile) {
  std::map<std::string, std::vector<double>> byKey;
  for (const KernelSample &k : profile.measurements)
    if (k.seconds > 0)
      byKey[measuredKey(k)].push_back(k.seconds);
  profile.measuredMedians.clear();
  for (auto &[key, values] : byKey)
    profile.measuredMedians[key] = median(values);
  // The range the loglinear fits saw (not stored in the file: the
  // measurements it keeps are those the fits were made from).
  for (auto &[family, model] : profile.families)
    if (model.form == Form::LogLinear) {
      model.largestMacs.clear();
      for (const KernelSample &k : profile.measurements)
        if (k.family == family && k.seconds > 0)
          model.largestMacs[k.batch] = std::max(model.largestMacs[k.batch], k.macs);
    }
}

namespace {
bool isMeasured(const DeviceProfile &profile, const KernelSample &kernel) {
  return profile.useMeasured && profile.measuredMedians.count(measuredKey(kernel));
}
} // namespace

bool predictedFromParts(const DeviceProfile &profile, const KernelSample &kernel) {
  return !kernel.parts.empty() && !isMeasured(profile, kernel) &&
         !profile.families.count(kernel.family) &&
         std::all_of(kernel.parts.begin(), kernel.parts.end(), [&](const KernelSample &part) {
           return profile.families.count(part.family) > 0;
         });
}

std::string predictorUsed(const DeviceProfile &profile, const KernelSample &kernel) {
  if (isMeasured(profile, kernel))
    return "measured";
  if (predictedFromParts(profile, kernel))
    return "parts";
  auto it = profile.families.find(kernel.family);
  return it == profile.families.end() ? "fallback roofline" : formName(it->second.form);
}

bool isFeatureName(const std::string &feature) {
  if (feature.empty() || !(std::islower(static_cast<unsigned char>(feature[0])) ||
                           feature[0] == '_'))
    return false;
  return std::all_of(feature.begin(), feature.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string missingFeature(const FamilyModel &model, const KernelSample &kernel) {
  for (const std::string &name : model.features) {
    if (name == "macs" || name == "bytes" || name == "batch")
      continue;
    if (std::none_of(kernel.params.begin(), kernel.params.end(),
                     [&](const auto &param) { return param.first == name; }))
      return name;
  }
  return "";
}

double CalibrationFactor::at(int64_t batch) const {
  if (byBatch.empty())
    return 1;
  auto above = byBatch.lower_bound(batch);
  if (above == byBatch.end())
    return std::prev(above)->second;
  if (above->first == batch || above == byBatch.begin())
    return above->second;
  auto below = std::prev(above);
  double t = (std::log(double(batch)) - std::log(double(below->first))) /
             (std::log(double(above->first)) - std::log(double(below->first)));
  return below->second + t * (above->second - below->second);
}

double CalibrationRecord::factor(const std::string &family, int64_t batch) const {
  auto it = factors.find(family);
  return (it == factors.end() ? overall : it->second).at(batch);
}

namespace {
/// The prediction before calibration.
double basePrediction(const DeviceProfile &profile, const KernelSample &kernel) {
  if (profile.useMeasured) {
    auto measured = profile.measuredMedians.find(measuredKey(kernel));
    if (measured != profile.measuredMedians.end())
      return measured->second;
  }
  if (predictedFromParts(profile, kernel)) {
    double sum = 0;
    for (const KernelSample &part : kernel.parts)
      sum += basePrediction(profile, part);
    return sum;
  }
  auto it = profile.families.find(kernel.family);
  const FamilyModel &model = it == profile.families.end() ? profile.fallback : it->second;
  return predictWith(model, profile.device, kernel);
}
} // namespace

double predictKernel(const DeviceProfile &profile, const KernelSample &kernel) {
  double calibration =
      profile.calibration ? profile.calibration->factor(kernel.family, kernel.batch) : 1;
  return basePrediction(profile, kernel) * calibration;
}

double predictCall(const DeviceProfile &profile, const KernelSample &kernel) {
  return predictKernel(profile, kernel) + profile.kernelOverhead;
}

bool isComputeBound(const DeviceFigures &device, const KernelSample &kernel) {
  return 2 * kernel.macs / device.peakGflops >= kernel.bytes / device.bandwidthGBs;
}

double predictPass(const DeviceProfile &profile, const std::vector<KernelSample> &kernels,
                   int64_t batch) {
  double total = profile.passOverhead + profile.exampleOverhead * static_cast<double>(batch);
  for (const KernelSample &k : kernels)
    total += predictCall(profile, k);
  return total;
}

FamilyModel fitForm(Form form, const std::vector<KernelSample> &samples,
                    const DeviceFigures &device) {
  switch (form) {
  case Form::Roofline: return fitRoofline(samples, device);
  case Form::Linear: return fitLinear(samples);
  case Form::LogLinear: return fitLogLinear(samples, varyingFeatures(samples));
  }
  return fitRoofline(samples, device);
}

FamilyModel fitFamily(const std::vector<KernelSample> &samples,
                      const DeviceFigures &device) {
  std::vector<KernelSample> usable;
  for (const KernelSample &k : samples)
    if (k.seconds > 0)
      usable.push_back(k);
  std::vector<double> measured;
  for (const KernelSample &k : usable)
    measured.push_back(k.seconds);

  FamilyModel best;
  bool have = false;
  size_t features = varyingFeatures(usable).size();
  for (Form form : {Form::Roofline, Form::Linear, Form::LogLinear}) {
    if (!enoughFor(form, usable, features))
      continue;
    // Leave one configuration out (all its repeats and contexts): the
    // error on configurations the fit has not seen.
    std::vector<double> held(usable.size(), 0);
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i = 0; i < usable.size(); ++i)
      groups[usable[i].configuration + "@" + std::to_string(usable[i].batch)].push_back(i);
    for (const auto &[key, members] : groups) {
      std::vector<KernelSample> rest;
      for (size_t i = 0; i < usable.size(); ++i)
        if (std::find(members.begin(), members.end(), i) == members.end())
          rest.push_back(usable[i]);
      if (rest.empty())
        continue;
      FamilyModel partial = fitForm(form, rest, device);
      for (size_t i : members)
        held[i] = predictWith(partial, device, usable[i]);
    }
    FamilyModel model = fitForm(form, usable, device);
    std::vector<double> fitted;
    for (const KernelSample &k : usable)
      fitted.push_back(predictWith(model, device, k));
    Accuracy in = accuracy(fitted, measured), out = accuracy(held, measured);
    model.samples = usable.size();
    model.rmspe = in.rmspe;
    model.within10 = in.within10;
    model.looRmspe = groups.size() > 1 ? out.rmspe : in.rmspe;
    model.looWithin10 = groups.size() > 1 ? out.within10 : in.within10;
    if (!have || model.looRmspe < best.looRmspe) {
      best = model;
      have = true;
    }
  }
  return best;
}

} // namespace qdsl::cost
