//===- PredictTiming.cpp - how qdsl times a generated predict -------------===//

#include "tools/driver/PredictTiming.h"

#include "tools/driver/Programs.h"

#include "codegen/latency/CostModel.h"
#include "codegen/latency/DeviceProfile.h"
#include "runtime/shipped/TensorFiles.h"


#include <cmath>
#include <random>

using namespace llvm;

namespace qdsl::driver {

json::Value readBoundedJSON(const std::string &path, StringRef writer, std::string &error) {
  std::string text;
  if (!rt::readFileBytes(path, text, error, kMaxJSONBytes)) {
    error += ": not a file " + writer.str() + " wrote";
    return nullptr;
  }
  if (cost::nestsDeeperThan(text, kMaxJSONDepth)) {
    error = "'" + path + "' nests deeper than " + std::to_string(kMaxJSONDepth) +
            " levels: not a file " + writer.str() + " wrote";
    return nullptr;
  }
  Expected<json::Value> parsed = json::parse(text);
  if (!parsed) {
    error = "'" + path + "': " + toString(parsed.takeError());
    return nullptr;
  }
  return std::move(*parsed);
}

bool writeRandomInput(const std::string &path, const std::vector<int64_t> &shape,
                      unsigned seed, std::string &error) {
  rt::Tensor x(shape);
  std::mt19937 random(seed);
  std::normal_distribution<float> normal;
  for (float &v : x.data)
    v = normal(random);
  return rt::writeNpy(path, x, error);
}

namespace {

std::vector<double> numbers(const json::Array &array) {
  std::vector<double> values;
  for (const json::Value &x : array)
    if (auto d = x.getAsNumber())
      values.push_back(*d);
  return values;
}

} // namespace

bool timePredict(const std::string &predict, const std::string &input, const std::string &work,
                 const PredictTimingOptions &options, PredictTimes &times, std::string &error) {
  const std::string result = work + "/" + options.stem + ".json";
  std::vector<std::string> args;
  if (!options.weights.empty())
    args = {"--weights", options.weights};
  args.insert(args.end(), {"--input", input, "--output", work + "/" + options.stem + "-output.npy",
                           "--threads", std::to_string(options.threads), "--pin", "--warmup",
                           "1", "--repeat", std::to_string(options.repeat), "--profile-json",
                           result});
  if (runProgram(predict, args, work + "/" + options.stem + ".log")) {
    error = "timing '" + predict + "' failed";
    return false;
  }
  json::Value parsed = readBoundedJSON(result, "predict --profile-json", error);
  const json::Object *root = parsed.getAsObject();
  const json::Array *runs = root ? root->getArray("runs") : nullptr;
  if (!runs) {
    if (error.empty())
      error = "'" + result + "' is not a profile written by predict --profile-json";
    return false;
  }
  times.runs = numbers(*runs);
  times.kernels.clear();
  if (const json::Array *kernels = root->getArray("kernels"))
    for (const json::Value &k : *kernels)
      if (const json::Object *o = k.getAsObject())
        if (auto name = o->getString("kernel"))
          if (const json::Array *seconds = o->getArray("seconds"))
            times.kernels[name->str()] = numbers(*seconds);
  return true;
}

bool measureLatency(const std::string &predict, const std::vector<int64_t> &shape,
                    const std::string &work, const PredictTimingOptions &options,
                    unsigned rounds, double &medianMs, std::string &error) {
  const std::string input = work + "/" + options.stem + "-input.npy";
  if (!writeRandomInput(input, shape, 7, error))
    return false;
  medianMs = INFINITY;
  for (unsigned round = 0; round < rounds; ++round) {
    PredictTimes times;
    if (!timePredict(predict, input, work, options, times, error))
      return false;
    medianMs = std::min(medianMs, cost::median(times.runs) * 1e3);
  }
  return true;
}

} // namespace qdsl::driver
