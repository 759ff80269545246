//===- Optimizer.cpp - AdamW, its schedule, clipping and checkpoints ------===//

#include "Optimizer.h"
#include "Contract.h"
#include "Parallel.h"
#include "TensorFiles.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <tuple>
#include <cstdio>
#include <cstdlib>

namespace qdsl::rt {

namespace {

constexpr double kPi = 3.14159265358979323846;
const char *kMomentPrefix[2] = {"adamw.m.", "adamw.v."};
/// Metadata keys of the run's settings: qdsl.run.batch, ...
const char *const kSettingPrefix = "qdsl.run.";
/// Metadata keys of the weights updated fewer times than the optimiser's
/// steps: qdsl.adamw.updates.<weight>.
const char *const kUpdatesPrefix = "qdsl.adamw.updates.";

std::string number(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

/// A metadata entry read by `parse` (strtoll or strtod); false when it is
/// missing or not all of it is read.
template <typename T, typename Parse>
bool readEntry(const Metadata &metadata, const std::string &key, T &out, Parse parse) {
  auto it = metadata.find(key);
  if (it == metadata.end() || it->second.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  T value = parse(it->second.c_str(), &end);
  if (*end != '\0' || errno == ERANGE)
    return false;
  out = value;
  return true;
}

bool readInteger(const Metadata &metadata, const std::string &key, int64_t &out) {
  return readEntry(metadata, key, out,
                   [](const char *text, char **end) { return std::strtoll(text, end, 10); });
}

bool readNumber(const Metadata &metadata, const std::string &key, double &out) {
  return readEntry(metadata, key, out,
                   [](const char *text, char **end) { return std::strtod(text, end); }) &&
         std::isfinite(out);
}

} // namespace

double LearningRateSchedule::at(int64_t step) const {
  if (step < warmupSteps)
    return peak * double(step + 1) / double(warmupSteps);
  int64_t span = std::max<int64_t>(1, totalSteps - warmupSteps);
  double progress = std::min(1.0, double(step - warmupSteps) / double(span));
  return minimum + 0.5 * (peak - minimum) * (1.0 + std::cos(kPi * progress));
}

bool decaysByDefault(const Tensor &weight) { return weight.shape.size() > 1; }


void AdamW::step(TensorMap &weights, const TensorMap &gradients, double lr,
                 const std::function<bool(const std::string &)> &updates) {
  ++count;
  // In float, as torch.optim.AdamW, so that the loop vectorises.
  const float beta1 = float(options.beta1), beta2 = float(options.beta2);
  const float rest1 = float(1.0 - options.beta1), rest2 = float(1.0 - options.beta2);
  const float epsilon = float(options.epsilon);
  for (auto &[name, weight] : weights) {
    auto g = gradients.find(name);
    if (g == gradients.end() || (updates && !updates(name)))
      continue;
    Tensor &first = m[name], &second = v[name];
    if (first.shape != weight.shape) {
      first = Tensor(weight.shape);
      second = Tensor(weight.shape);
    }
    const int64_t t = ++updateCount[name];
    const double correction1 = 1.0 - std::pow(options.beta1, double(t));
    const double correction2 = 1.0 - std::pow(options.beta2, double(t));
    const float stepSize = float(lr / correction1);
    const float inverseRoot2 = float(1.0 / std::sqrt(correction2));
    const float decay = float(decaysByDefault(weight) ? 1.0 - lr * options.weightDecay : 1.0);
    float *__restrict w = weight.data.data();
    float *__restrict mo = first.data.data();
    float *__restrict vo = second.data.data();
    const float *__restrict grad = g->second.data.data();
    forEachRange(weight.size(), [&](size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        float mi = beta1 * mo[i] + rest1 * grad[i];
        float vi = beta2 * vo[i] + rest2 * grad[i] * grad[i];
        mo[i] = mi;
        vo[i] = vi;
        w[i] = w[i] * decay - stepSize * mi / (std::sqrt(vi) * inverseRoot2 + epsilon);
      }
    });
  }
}

int64_t AdamW::updates(const std::string &name) const {
  auto it = updateCount.find(name);
  return it == updateCount.end() ? 0 : it->second;
}

void AdamW::save(TensorMap &into, std::map<std::string, int64_t> *partialUpdates) const {
  for (const auto &[name, tensor] : m)
    into[kMomentPrefix[0] + name] = tensor;
  if (partialUpdates)
    for (const auto &[name, updates] : updateCount)
      if (updates != count)
        (*partialUpdates)[name] = updates;
  for (const auto &[name, tensor] : v)
    into[kMomentPrefix[1] + name] = tensor;
}

bool AdamW::restore(const TensorMap &from, const TensorMap &weights, int64_t steps,
                    std::string &error, const std::map<std::string, int64_t> &partialUpdates) {
  TensorMap moments[2];
  for (const auto &[key, tensor] : from)
    for (int k = 0; k < 2; ++k)
      if (key.rfind(kMomentPrefix[k], 0) == 0)
        moments[k][key.substr(std::string(kMomentPrefix[k]).size())] = tensor;
  for (int k = 0; k < 2; ++k)
    for (const auto &[name, tensor] : moments[k]) {
      auto w = weights.find(name);
      if (w == weights.end() || w->second.shape != tensor.shape) {
        error = "optimiser state '" + std::string(kMomentPrefix[k]) + name + "' " +
                describeShape(tensor.shape) + " fits no weight of that name and shape";
        return false;
      }
    }
  // Moments that training could not have produced would poison every later
  // step: refuse them by name instead of failing steps later as a NaN loss.
  for (int k = 0; k < 2; ++k)
    for (const auto &[name, tensor] : moments[k])
      for (size_t i = 0; i < tensor.data.size(); ++i) {
        float x = tensor.data[i];
        if (!std::isfinite(x) || (k == 1 && x < 0)) {
          error = "optimiser state '" + std::string(kMomentPrefix[k]) + name + "' holds " +
                  std::to_string(x) + " at element " + std::to_string(i) + "; expected " +
                  (k == 1 ? "finite numbers >= 0 (second moments)" : "finite numbers");
          return false;
        }
      }
  // Both moments of a weight, or neither: a step reads them together.
  for (int k = 0; k < 2; ++k)
    for (const auto &[name, tensor] : moments[k])
      if (!moments[1 - k].count(name)) {
        error = "optimiser state '" + std::string(kMomentPrefix[k]) + name + "' has no '" +
                kMomentPrefix[1 - k] + name + "' beside it: each weight's state is both moments";
        return false;
      }
  // A supernet's weights off every path so far (count 0) have no state.
  size_t neverUpdated = 0;
  for (const auto &[name, updates] : partialUpdates) {
    const bool hasState = moments[0].count(name) > 0;
    if (updates == 0 && !hasState && weights.count(name)) {
      ++neverUpdated;
      continue;
    }
    if (!hasState || updates < 1 || updates > steps) {
      error = "the update count " + std::to_string(updates) + " of weight '" + name + "' " +
              (hasState ? "is outside 1.." + std::to_string(steps)
                        : std::string("belongs to no optimiser state"));
      return false;
    }
  }
  if (steps > 0 && moments[0].size() + neverUpdated != weights.size()) {
    error = "optimiser state for " + std::to_string(moments[0].size()) + " of the " +
            std::to_string(weights.size()) + " weights after " + std::to_string(steps) +
            " steps";
    return false;
  }
  updateCount.clear();
  for (const auto &[name, tensor] : moments[0]) {
    auto partial = partialUpdates.find(name);
    updateCount[name] = partial == partialUpdates.end() ? steps : partial->second;
  }
  m = std::move(moments[0]);
  v = std::move(moments[1]);
  count = steps;
  return true;
}

double clipGradientNorm(TensorMap &gradients, double maxNorm,
                        const std::function<bool(const std::string &)> &includes) {
  // Four partial sums, in a fixed order: the same norm on any machine
  // and thread count, without one long chain of dependent additions.
  double sum = 0;
  for (const auto &[name, g] : gradients) {
    if (includes && !includes(name))
      continue;
    double partial[4] = {0, 0, 0, 0};
    const float *x = g.data.data();
    size_t n = g.data.size(), i = 0;
    for (; i + 4 <= n; i += 4)
      for (int k = 0; k < 4; ++k)
        partial[k] += double(x[i + k]) * x[i + k];
    for (; i < n; ++i)
      partial[0] += double(x[i]) * x[i];
    sum += (partial[0] + partial[1]) + (partial[2] + partial[3]);
  }
  double norm = std::sqrt(sum);
  if (maxNorm > 0 && std::isfinite(norm) && norm > maxNorm) {
    // As torch.nn.utils.clip_grad_norm_: the 1e-6 keeps a tiny norm finite.
    const float scale = float(maxNorm / (norm + 1e-6));
    for (auto &[name, g] : gradients) {
      if (includes && !includes(name))
        continue;
      float *x = g.data.data();
      forEachRange(g.data.size(), [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i)
          x[i] *= scale;
      });
    }
  }
  return norm;
}

bool saveCheckpoint(const std::string &path, const Checkpoint &checkpoint,
                    std::string &error) {
  TensorMap tensors = checkpoint.weights;
  std::map<std::string, int64_t> partialUpdates;
  checkpoint.optimizer.save(tensors, &partialUpdates);
  if (checkpoint.optimizer.steps() > 0)
    for (const auto &[name, weight] : checkpoint.weights)
      if (checkpoint.optimizer.updates(name) == 0)
        partialUpdates[name] = 0;
  const AdamWOptions &o = checkpoint.optimizer.settings();
  Metadata metadata = {{contract::kModelKey, checkpoint.model},
                       {"qdsl.checkpoint", "1"},
                       {"qdsl.epoch", std::to_string(checkpoint.epoch)},
                       {"qdsl.step", std::to_string(checkpoint.step)},
                       {contract::kSeedKey, std::to_string(checkpoint.seed)},
                       {"qdsl.adamw.steps", std::to_string(checkpoint.optimizer.steps())},
                       {"qdsl.adamw.beta1", number(o.beta1)},
                       {"qdsl.adamw.beta2", number(o.beta2)},
                       {"qdsl.adamw.epsilon", number(o.epsilon)},
                       {"qdsl.adamw.weight_decay", number(o.weightDecay)}};
  for (const auto &[key, value] : checkpoint.settings)
    metadata[kSettingPrefix + key] = value;
  for (const auto &[name, updates] : partialUpdates)
    metadata[kUpdatesPrefix + name] = std::to_string(updates);
  return writeSafetensors(path, tensors, metadata, error);
}

bool loadCheckpoint(const std::string &path, Checkpoint &checkpoint, std::string &error) {
  std::string bytes;
  return readFileBytes(path, bytes, error) && parseCheckpoint(bytes, path, checkpoint, error);
}

bool parseCheckpoint(const std::string &bytes, const std::string &path, Checkpoint &checkpoint,
                     std::string &error) {
  TensorMap tensors;
  Metadata metadata;
  if (!parseSafetensors(bytes, path, tensors, error, &metadata))
    return false;
  int64_t version = 0, seed = 0, adamSteps = 0;
  Checkpoint result;
  AdamWOptions options;
  auto missing = [&](const char *key) {
    error = "'" + path + "' is not a qdsl checkpoint: its metadata has no valid '" +
            key + "'";
    return false;
  };
  if (!readInteger(metadata, "qdsl.checkpoint", version))
    return missing("qdsl.checkpoint");
  if (version != 1) {
    error = "'" + path + "' is a checkpoint of version " + std::to_string(version) +
            "; this program reads version 1";
    return false;
  }
  for (auto [key, out] : {std::pair<const char *, int64_t *>{"qdsl.epoch", &result.epoch},
                          {"qdsl.step", &result.step},
                          {contract::kSeedKey, &seed},
                          {"qdsl.adamw.steps", &adamSteps}})
    if (!readInteger(metadata, key, *out) || *out < 0)
      return missing(key);
  // Each hyper-parameter in the range AdamW is defined for.
  auto fraction = [](double x) { return x >= 0 && x < 1; };
  auto positiveFraction = [](double x) { return x > 0 && x < 1; };
  auto decay = [](double x) { return x >= 0 && x <= 1000; };
  for (auto [key, out, valid, range] :
       {std::tuple<const char *, double *, bool (*)(double), const char *>{
            "qdsl.adamw.beta1", &options.beta1, fraction, "[0, 1)"},
        {"qdsl.adamw.beta2", &options.beta2, fraction, "[0, 1)"},
        {"qdsl.adamw.epsilon", &options.epsilon, positiveFraction, "(0, 1)"},
        {"qdsl.adamw.weight_decay", &options.weightDecay, decay, "[0, 1000]"}}) {
    if (!readNumber(metadata, key, *out))
      return missing(key);
    if (!valid(*out)) {
      error = "'" + path + "': " + key + " is " + number(*out) + "; expected " + range;
      return false;
    }
  }
  for (auto &[name, tensor] : tensors)
    if (name.rfind("adamw.", 0) != 0) {
      auto bad = std::find_if(tensor.data.begin(), tensor.data.end(),
                              [](float x) { return !std::isfinite(x); });
      if (bad != tensor.data.end()) {
        error = "'" + path + "': weight '" + name + "' holds " + std::to_string(*bad) +
                " at element " + std::to_string(bad - tensor.data.begin()) +
                "; a checkpoint's weights are finite";
        return false;
      }
      result.weights[name] = tensor;
    }
  std::map<std::string, int64_t> partialUpdates;
  for (const auto &[key, value] : metadata)
    if (key.rfind(kUpdatesPrefix, 0) == 0 &&
        !readInteger(metadata, key, partialUpdates[key.substr(std::string(kUpdatesPrefix).size())]))
      return missing(key.c_str());
  result.optimizer = AdamW(options);
  if (!result.optimizer.restore(tensors, result.weights, adamSteps, error, partialUpdates)) {
    error = "'" + path + "': " + error;
    return false;
  }
  if (adamSteps != result.step) {
    error = "'" + path + "': qdsl.adamw.steps is " + std::to_string(adamSteps) +
            " but qdsl.step is " + std::to_string(result.step) +
            "; a checkpoint's optimiser has taken one step per training step";
    return false;
  }
  result.seed = uint64_t(seed);
  for (const auto &[key, value] : metadata)
    if (key.rfind(kSettingPrefix, 0) == 0)
      result.settings[key.substr(std::string(kSettingPrefix).size())] = value;
  auto model = metadata.find(contract::kModelKey);
  result.model = model == metadata.end() ? "" : model->second;
  checkpoint = std::move(result);
  return true;
}

} // namespace qdsl::rt
