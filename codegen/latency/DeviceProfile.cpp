//===- DeviceProfile.cpp - device profiles as versioned JSON --------------===//

#include "codegen/latency/DeviceProfile.h"
#include "runtime/shipped/TensorFiles.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <limits>

namespace qdsl::cost {

namespace {

constexpr const char *kFormat = "qdsl-device-profile";

llvm::json::Value predictorToJSON(const FamilyModel &m) {
  llvm::json::Array coefficients;
  for (double c : m.coefficients)
    coefficients.push_back(c);
  llvm::json::Object o{{"form", formName(m.form)}, {"coefficients", std::move(coefficients)}};
  if (!m.features.empty()) {
    llvm::json::Array features;
    for (const std::string &f : m.features)
      features.push_back(f);
    o["features"] = std::move(features);
  }
  if (m.samples) {
    o["samples"] = static_cast<int64_t>(m.samples);
    o["fit"] = llvm::json::Object{{"rmspe", m.rmspe},
                                  {"within_10pct", m.within10},
                                  {"loo_rmspe", m.looRmspe},
                                  {"loo_within_10pct", m.looWithin10}};
  }
  return o;
}

llvm::json::Value sampleToJSON(const KernelSample &k) {
  llvm::json::Object params;
  for (const auto &[name, v] : k.params)
    params[name] = v;
  return llvm::json::Object{{"kernel", k.name},     {"family", k.family},
                            {"configuration", k.configuration},
                            {"batch", k.batch},     {"macs", k.macs},
                            {"bytes", k.bytes},     {"params", std::move(params)},
                            {"seconds", k.seconds}};
}

} // namespace

llvm::json::Value machineToJSON(const MachineRecord &m) {
  llvm::json::Object o{{"cpu_model", m.cpuModel},
                            {"logical_cpus", m.logicalCpus},
                            {"threads", m.threads},
                            {"fma_peak_gflops", m.fmaPeakGflops},
                            {"bandwidth_gbs", m.bandwidthGBs},
                            {"qdsl_version", m.qdslVersion},
                            {"halide_version", m.halideVersion},
                            {"generators", m.generators},
                            {"measured_at", m.measuredAt}};
  if (m.roundSpread >= 0)
    o["round_spread"] = m.roundSpread;
  return o;
}

namespace {

llvm::json::Value factorToJSON(const CalibrationFactor &f) {
  llvm::json::Object byBatch;
  for (const auto &[batch, factor] : f.byBatch)
    byBatch[std::to_string(batch)] = factor;
  return llvm::json::Object{{"by_batch", std::move(byBatch)},
                            {"kernels", static_cast<int64_t>(f.kernels)}};
}

llvm::json::Value calibrationToJSON(const CalibrationRecord &c) {
  llvm::json::Object factors;
  for (const auto &[family, f] : c.factors)
    factors[family] = factorToJSON(f);
  llvm::json::Object o{{"base", c.base},
                       {"base_source", c.baseSource},
                       {"factors", std::move(factors)},
                       {"overall", factorToJSON(c.overall)},
                       {"overhead_factor", c.overheadFactor},
                       {"kernels", static_cast<int64_t>(c.kernels)},
                       {"passes", static_cast<int64_t>(c.passes)},
                       {"kernel_rmspe_before", c.kernelRmspeBefore},
                       {"kernel_within_10pct_before", c.kernelWithin10Before},
                       {"kernel_rmspe_after", c.kernelRmspeAfter},
                       {"kernel_within_10pct_after", c.kernelWithin10After},
                       {"pass_rmspe_before", c.passRmspeBefore},
                       {"pass_rmspe_after", c.passRmspeAfter},
                       {"seconds", c.seconds}};
  if (c.baseMachine)
    o["base_machine"] = machineToJSON(*c.baseMachine);
  return o;
}

/// A number as people write it: 0.001, 1e+308, -6e-06.
std::string shown(double x) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%g", x);
  return s;
}

/// Reads fields of one JSON object, recording the first error with the
/// field's path.
class Reader {
public:
  Reader(std::string file, std::string &error) : file(std::move(file)), error(error) {}

  bool failed() const { return !error.empty(); }

  void fail(const std::string &path, const std::string &what) {
    if (error.empty())
      error = "'" + file + "': " + path + ": " + what;
  }

  const llvm::json::Object *object(const llvm::json::Value *v, const std::string &path) {
    const llvm::json::Object *o = v ? v->getAsObject() : nullptr;
    if (!o)
      fail(path, v ? "expected an object" : "missing (expected an object)");
    return o;
  }
  /// Calls `read(object, "key[i].")` on each element of the optional array
  /// `key` of the top level, each of which must be an object; stops at the
  /// first error.
  template <typename Read>
  void forEachObject(const llvm::json::Object &root, llvm::StringRef key, Read read) {
    const llvm::json::Array *a = array(root, key, "", false);
    for (size_t i = 0; a && i < a->size() && !failed(); ++i) {
      std::string path = key.str() + "[" + std::to_string(i) + "]";
      const llvm::json::Object *o = object(&(*a)[i], path);
      if (!o)
        break;
      read(*o, path + ".");
    }
  }

  const llvm::json::Array *array(const llvm::json::Object &o, llvm::StringRef key,
                                 const std::string &path, bool required = true) {
    const llvm::json::Value *v = o.get(key);
    if (!v) {
      if (required)
        fail(path + key.str(), "missing (expected an array)");
      return nullptr;
    }
    const llvm::json::Array *a = v->getAsArray();
    if (!a)
      fail(path + key.str(), "expected an array");
    return a;
  }
  std::string string(const llvm::json::Object &o, llvm::StringRef key,
                     const std::string &path, bool required = true) {
    const llvm::json::Value *v = o.get(key);
    if (!v) {
      if (required)
        fail(path + key.str(), "missing (expected a string)");
      return "";
    }
    if (auto s = v->getAsString())
      return s->str();
    fail(path + key.str(), "expected a string");
    return "";
  }
  /// A whole number in [min, max].
  int64_t integer(const llvm::json::Object &o, llvm::StringRef key, const std::string &path,
                  int64_t min, int64_t max, bool required = true, int64_t fallback = 0) {
    if (!o.get(key) && !required)
      return fallback;
    double d = number(o, key, path, static_cast<double>(min));
    if (failed())
      return fallback;
    if (d != std::floor(d) || d > static_cast<double>(max)) {
      fail(path + key.str(), "expected a whole number from " + std::to_string(min) + " to " +
                                 std::to_string(max) + ", got " + shown(d));
      return fallback;
    }
    return static_cast<int64_t>(d);
  }
  /// A number >= min and (when given) <= max.
  double number(const llvm::json::Object &o, llvm::StringRef key, const std::string &path,
                double min, bool required = true, double fallback = 0,
                double max = std::numeric_limits<double>::infinity()) {
    const llvm::json::Value *v = o.get(key);
    if (!v) {
      if (required)
        fail(path + key.str(), "missing (expected a number)");
      return fallback;
    }
    std::optional<double> d = v->getAsNumber();
    if (!d || !std::isfinite(*d)) {
      fail(path + key.str(), "expected a number");
      return fallback;
    }
    if (*d < min) {
      fail(path + key.str(), "expected a number >= " + shown(min) + ", got " + shown(*d));
      return fallback;
    }
    if (*d > max) {
      fail(path + key.str(), "expected a number <= " + shown(max) + ", got " + shown(*d));
      return fallback;
    }
    return *d;
  }
  bool boolean(const llvm::json::Object &o, llvm::StringRef key, const std::string &path) {
    const llvm::json::Value *v = o.get(key);
    std::optional<bool> b = v ? v->getAsBoolean() : std::nullopt;
    if (!b) {
      fail(path + key.str(), v ? "expected true or false" : "missing (expected true or false)");
      return false;
    }
    return *b;
  }

  MachineRecord machine(const llvm::json::Object &o, const std::string &path) {
    MachineRecord m;
    m.cpuModel = string(o, "cpu_model", path);
    m.logicalCpus = static_cast<int>(integer(o, "logical_cpus", path, 1, 1 << 20));
    m.threads = static_cast<int>(integer(o, "threads", path, 1, 1 << 20));
    m.fmaPeakGflops = number(o, "fma_peak_gflops", path, 0, true, 0, 1e9);
    m.bandwidthGBs = number(o, "bandwidth_gbs", path, 0, true, 0, 1e9);
    m.qdslVersion = string(o, "qdsl_version", path);
    m.halideVersion = string(o, "halide_version", path, false);
    m.generators = string(o, "generators", path);
    m.measuredAt = string(o, "measured_at", path);
    m.roundSpread = number(o, "round_spread", path, 0, false, -1, 100);
    return m;
  }

  /// {"by_batch": {"1": f, ...}, "kernels": n}: batches whole numbers from
  /// 1, factors in [1/1000, 1000] (beyond that it is no calibration).
  CalibrationFactor factor(const llvm::json::Value *v, const std::string &at) {
    CalibrationFactor f;
    const llvm::json::Object *o = object(v, at);
    if (!o)
      return f;
    f.kernels = static_cast<size_t>(integer(*o, "kernels", at + ".", 0, 1LL << 40));
    if (const llvm::json::Object *byBatch = object(o->get("by_batch"), at + ".by_batch")) {
      for (const auto &[key, value] : *byBatch) {
        int64_t batch = 0;
        if (llvm::StringRef(key).getAsInteger(10, batch) || batch < 1 || batch > (1 << 20)) {
          fail(at + ".by_batch." + key.str(), "expected a batch size from 1 to 1048576 as key");
          return f;
        }
        std::optional<double> d = value.getAsNumber();
        if (!d || !(*d >= 1e-3 && *d <= 1e3)) {
          fail(at + ".by_batch." + key.str(), "expected a factor from 0.001 to 1000");
          return f;
        }
        f.byBatch[batch] = *d;
      }
      if (f.byBatch.empty())
        fail(at + ".by_batch", "expected a factor for at least one batch size");
    }
    return f;
  }

  CalibrationRecord calibration(const llvm::json::Object &o, const std::string &path) {
    CalibrationRecord c;
    c.base = string(o, "base", path);
    c.baseSource = string(o, "base_source", path, false);
    if (const llvm::json::Value *m = o.get("base_machine"))
      if (const llvm::json::Object *mo = object(m, path + "base_machine"))
        c.baseMachine = machine(*mo, path + "base_machine.");
    if (const llvm::json::Object *f = object(o.get("factors"), path + "factors"))
      for (const auto &[family, value] : *f)
        c.factors[family.str()] = factor(&value, path + "factors." + family.str());
    c.overall = factor(o.get("overall"), path + "overall");
    c.overheadFactor = number(o, "overhead_factor", path, 0, true, 1, 1e3);
    c.kernels = static_cast<size_t>(integer(o, "kernels", path, 0, 1LL << 40));
    c.passes = static_cast<size_t>(integer(o, "passes", path, 0, 1LL << 40));
    c.kernelRmspeBefore = number(o, "kernel_rmspe_before", path, 0);
    c.kernelWithin10Before = number(o, "kernel_within_10pct_before", path, 0, true, 0, 1);
    c.kernelRmspeAfter = number(o, "kernel_rmspe_after", path, 0);
    c.kernelWithin10After = number(o, "kernel_within_10pct_after", path, 0, true, 0, 1);
    c.passRmspeBefore = number(o, "pass_rmspe_before", path, 0);
    c.passRmspeAfter = number(o, "pass_rmspe_after", path, 0);
    c.seconds = number(o, "seconds", path, 0);
    return c;
  }

  FamilyModel predictor(const llvm::json::Value *v, const std::string &path) {
    FamilyModel m;
    const llvm::json::Object *o = object(v, path);
    if (!o)
      return m;
    std::string form = string(*o, "form", path + ".");
    if (!form.empty() && !parseForm(form, m.form))
      fail(path + ".form", "unknown predictor form '" + form +
                               "'; expected roofline, linear or loglinear");
    if (const llvm::json::Array *features = array(*o, "features", path + ".", false))
      for (size_t i = 0; i < features->size(); ++i) {
        std::string at = path + ".features[" + std::to_string(i) + "]";
        auto s = (*features)[i].getAsString();
        if (!s)
          fail(at, "expected a string");
        else if (!isFeatureName(s->str()))
          fail(at, "'" + s->str() + "' is not a feature: expected macs, bytes, batch or a "
                                    "generator parameter's name");
        else if (llvm::is_contained(m.features, s->str()))
          fail(at, "'" + s->str() + "' is named twice");
        else
          m.features.push_back(s->str());
      }
    if (const llvm::json::Array *c = array(*o, "coefficients", path + "."))
      for (size_t i = 0; i < c->size(); ++i) {
        std::optional<double> d = (*c)[i].getAsNumber();
        if (!d || !std::isfinite(*d))
          fail(path + ".coefficients[" + std::to_string(i) + "]", "expected a number");
        else
          m.coefficients.push_back(*d);
      }
    if (failed())
      return m;
    size_t expected = m.form == Form::LogLinear ? m.features.size() + 1 : 3;
    if (m.coefficients.size() != expected)
      fail(path + ".coefficients", "a " + form + " predictor" +
                                       (m.form == Form::LogLinear ? " with " +
                                            std::to_string(m.features.size()) + " features"
                                                                  : std::string()) +
                                       " has " + std::to_string(expected) +
                                       " coefficients, got " +
                                       std::to_string(m.coefficients.size()));
    else if (m.form == Form::Roofline && !(m.coefficients[1] > 0 && m.coefficients[2] > 0))
      fail(path + ".coefficients", "a roofline's efficiencies must be positive");
    else
      checkCoefficients(m, path + ".coefficients");
    m.samples = static_cast<size_t>(integer(*o, "samples", path + ".", 0, 1LL << 40, false));
    if (const llvm::json::Value *fit = o->get("fit"))
      if (const llvm::json::Object *f = object(fit, path + ".fit")) {
        m.rmspe = number(*f, "rmspe", path + ".fit.", 0);
        m.within10 = number(*f, "within_10pct", path + ".fit.", 0);
        m.looRmspe = number(*f, "loo_rmspe", path + ".fit.", 0);
        m.looWithin10 = number(*f, "loo_within_10pct", path + ".fit.", 0);
      }
    return m;
  }

private:
  /// Coefficients in the ranges their meaning allows, so that no predictor
  /// of a profile can give a negative, infinite or absurd time.
  void checkCoefficients(const FamilyModel &m, const std::string &path) {
    for (auto [i, c] : llvm::enumerate(m.coefficients)) {
      std::string at = path + "[" + std::to_string(i) + "]";
      switch (m.form) {
      case Form::Roofline:
        // Seconds of overhead, then efficiencies (fractions of the device's
        // nominal figures, which a fit may exceed somewhat).
        if (i == 0 ? !(c >= 0 && c <= 10) : !(c > 0 && c <= 100))
          fail(at, i == 0 ? "a roofline's overhead is seconds from 0 to 10, got " +
                                shown(c)
                          : "a roofline's efficiency is from 0 (exclusive) to 100, got " +
                                shown(c));
        break;
      case Form::Linear:
        if (!(c >= 0 && c <= 10))
          fail(at, "a linear predictor's coefficients are from 0 to 10 (seconds, per MAC, "
                   "per byte), got " + shown(c));
        break;
      case Form::LogLinear:
        if (!(std::fabs(c) <= 1000))
          fail(at, "a loglinear predictor's coefficients are from -1000 to 1000, got " +
                       shown(c));
        break;
      }
    }
  }

  std::string file;
  std::string &error;
};


/// Seconds as microseconds rounded to the picosecond, so that reading and
/// writing a profile again gives the same text.
double microseconds(double seconds) { return std::round(seconds * 1e12) / 1e6; }

} // namespace

bool nestsDeeperThan(const std::string &text, int limit) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit)
        return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

std::string formatProfile(const DeviceProfile &p) {
  const DeviceFigures &d = p.device;
  llvm::json::Object families;
  for (const auto &[name, m] : p.families)
    families[name] = predictorToJSON(m);
  llvm::json::Array measurements, passes;
  for (const KernelSample &k : p.measurements)
    measurements.push_back(sampleToJSON(k));
  for (const DeviceProfile::Pass &pass : p.passes)
    passes.push_back(llvm::json::Object{{"model", pass.model},
                                        {"batch", pass.batch},
                                        {"seconds", pass.seconds},
                                        {"kernel_seconds", pass.kernelSeconds}});
  llvm::json::Object root{
      {"format", kFormat},
      {"version", DeviceProfile::kVersion},
      {"device", llvm::json::Object{{"name", d.name},
                                    {"description", d.description},
                                    {"target", d.target},
                                    {"peak_gflops", d.peakGflops},
                                    {"bandwidth_gbs", d.bandwidthGBs},
                                    {"cores", d.cores},
                                    {"threads", d.threads},
                                    {"vector_floats", d.vectorFloats}}},
      {"calibrated", p.calibrated},
      {"source", p.source},
      {"overhead", llvm::json::Object{{"per_pass_us", microseconds(p.passOverhead)},
                                      {"per_example_us", microseconds(p.exampleOverhead)},
                                      {"per_kernel_us", microseconds(p.kernelOverhead)}}},
      {"fallback", predictorToJSON(p.fallback)},
      {"families", std::move(families)},
      {"measurements", std::move(measurements)},
      {"passes", std::move(passes)},
  };
  if (p.machine)
    root["machine"] = machineToJSON(*p.machine);
  if (p.calibration)
    root["calibration"] = calibrationToJSON(*p.calibration);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return text;
}

bool parseProfile(const std::string &text, const std::string &fileName,
                  DeviceProfile &p, std::string &error) {
  error.clear();
  // A profile nests six levels at most.
  constexpr int kMaxDepth = 32;
  if (nestsDeeperThan(text, kMaxDepth)) {
    error = "'" + fileName + "': nests deeper than " + std::to_string(kMaxDepth) +
            " levels; not a device profile";
    return false;
  }
  llvm::Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  if (!parsed) {
    error = "'" + fileName + "': not valid JSON: " + llvm::toString(parsed.takeError());
    return false;
  }
  Reader r(fileName, error);
  const llvm::json::Object *root = r.object(&*parsed, "the top level");
  if (!root)
    return false;
  std::string format = r.string(*root, "format", "");
  if (r.failed())
    return false;
  if (format != kFormat) {
    r.fail("format", "expected \"" + std::string(kFormat) + "\", got \"" + format + "\"");
    return false;
  }
  double version = r.number(*root, "version", "", 0);
  if (r.failed())
    return false;
  if (version != DeviceProfile::kVersion && version != 1) {
    r.fail("version", "this qdsl reads version 1 and " +
                          std::to_string(DeviceProfile::kVersion) +
                          " profiles, the file is version " +
                          (version == std::floor(version) && std::fabs(version) < 1e9
                               ? std::to_string(static_cast<long long>(version))
                               : llvm::formatv("{0}", version).str()) +
                          "; rebuild it with qdsl profile");
    return false;
  }
  p = DeviceProfile();
  p.file = fileName;
  if (const llvm::json::Object *d = r.object(root->get("device"), "device")) {
    p.device.name = r.string(*d, "name", "device.");
    p.device.description = r.string(*d, "description", "device.", false);
    p.device.target = r.string(*d, "target", "device.");
    p.device.peakGflops = r.number(*d, "peak_gflops", "device.", 1e-3, true, 0, 1e9);
    p.device.bandwidthGBs = r.number(*d, "bandwidth_gbs", "device.", 1e-3, true, 0, 1e9);
    p.device.cores = static_cast<int>(r.integer(*d, "cores", "device.", 1, 1 << 20));
    p.device.threads = static_cast<int>(r.integer(*d, "threads", "device.", 1, 1 << 20));
    p.device.vectorFloats = static_cast<int>(r.integer(*d, "vector_floats", "device.", 1, 1024));
  }
  p.calibrated = r.boolean(*root, "calibrated", "");
  p.source = r.string(*root, "source", "", false);
  if (const llvm::json::Object *o = r.object(root->get("overhead"), "overhead")) {
    // Microseconds; more than ten seconds of overhead is no profile.
    p.passOverhead = r.number(*o, "per_pass_us", "overhead.", 0, true, 0, 1e7) * 1e-6;
    p.exampleOverhead = r.number(*o, "per_example_us", "overhead.", 0, true, 0, 1e7) * 1e-6;
    p.kernelOverhead = r.number(*o, "per_kernel_us", "overhead.", 0, false, 0, 1e6) * 1e-6;
  }
  if (const llvm::json::Value *m = root->get("machine"))
    if (const llvm::json::Object *o = r.object(m, "machine"))
      p.machine = r.machine(*o, "machine.");
  if (const llvm::json::Value *c = root->get("calibration"))
    if (const llvm::json::Object *o = r.object(c, "calibration"))
      p.calibration = r.calibration(*o, "calibration.");
  p.fallback = r.predictor(root->get("fallback"), "fallback");
  if (const llvm::json::Object *f = r.object(root->get("families"), "families"))
    for (const auto &[name, value] : *f)
      p.families[name.str()] = r.predictor(&value, "families." + name.str());
  r.forEachObject(*root, "measurements", [&](const llvm::json::Object &o, const std::string &at) {
    KernelSample k;
    k.name = r.string(o, "kernel", at, false);
    k.family = r.string(o, "family", at);
    k.configuration = r.string(o, "configuration", at);
    k.batch = r.integer(o, "batch", at, 1, 1 << 20);
    k.macs = r.number(o, "macs", at, 0);
    k.bytes = r.number(o, "bytes", at, 0);
    k.seconds = r.number(o, "seconds", at, 0);
    if (const llvm::json::Object *params = r.object(o.get("params"), at + "params"))
      for (const auto &[name, v] : *params) {
        std::optional<double> d = v.getAsNumber();
        if (!d)
          r.fail(at + "params." + name.str(), "expected a number");
        else
          k.params.push_back({name.str(), *d});
      }
    p.measurements.push_back(std::move(k));
  });
  r.forEachObject(*root, "passes", [&](const llvm::json::Object &o, const std::string &at) {
    DeviceProfile::Pass pass;
    pass.model = r.string(o, "model", at);
    pass.batch = r.integer(o, "batch", at, 1, 1 << 20);
    pass.seconds = r.number(o, "seconds", at, 0);
    pass.kernelSeconds = r.number(o, "kernel_seconds", at, 0);
    p.passes.push_back(pass);
  });
  indexMeasurements(p);
  return !r.failed();
}

bool readProfile(const std::string &path, DeviceProfile &profile, std::string &error) {
  std::string text;
  if (!rt::readFileBytes(path, text, error, uint64_t(256) << 20)) {
    // "cannot read device profile 'P': why", or "device profile 'P' is ...".
    llvm::StringRef rest(error);
    error = rest.consume_front("cannot read ") ? "cannot read device profile " + rest.str()
                                               : "device profile " + error;
    return false;
  }
  return parseProfile(text, path, profile, error);
}

} // namespace qdsl::cost
