// predict: run a model compiled by qdsl on a NumPy array.
//
//   predict [--weights W.safetensors | --seed N] --input X.npy --output Y.npy
//           [--threads N] [--repeat N] [--warmup N] [--pin] [--profile]
//           [--profile-json P.json] [--path 0,2,1] [--precision fp32|tf32|bf16]
//
// X holds NHWC float32 examples (one example's shape, or a batch of them);
// Y receives the outputs, batch first. Without --weights the model starts
// from its declared initialisers with --seed (default 0). --profile-json
// writes every run's end-to-end and per-kernel times (what `qdsl profile`
// reads); --warmup runs that many passes first, untimed; --pin keeps the
// process (and so Halide's workers) on the first --threads CPUs. --precision
// picks how the pointwise layers multiply: fp32 everywhere, tf32 or bf16 tensor
// cores on the cuda target.
#include "program_flags.h"
#include "qdsl_model.h"
#include "runtime/shipped/TensorFiles.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <set>
#include <string>

namespace {

const char kUsage[] =
    "usage: predict [--weights W.safetensors | --seed N] --input X.npy "
    "--output Y.npy [--threads N] [--repeat N] [--warmup N] [--pin] [--profile]\n"
    "               [--path P]  (a supernet: candidate P[l] of each search layer)\n"
    "               [--profile-json P.json] [--precision fp32|tf32|bf16]\n";

int usage(const char *message) {
    fmt::print(stderr, "predict: {}\n{}", message, kUsage);
    return 2;
}

}  // namespace

int run(int argc, char **argv) {
    std::string weights, input_path, output_path, profile_json;
    long long seed = 0, threads = 0, repeat = 1, warmup = 0;
    std::string path, precision = "fp32";
    bool profile = false, pin = false;
    qdsl_program::FlagTable table;
    table.texts = {{"--weights", &weights},         {"--input", &input_path},
                   {"--output", &output_path},      {"--profile-json", &profile_json},
                   {"--path", &path},               {"--precision", &precision}};
    table.switches = {{"--profile", &profile}, {"--pin", &pin}};
    table.integers = {{"--seed", {&seed, 0, std::numeric_limits<long long>::max()}},
                      {"--threads", {&threads, 0, 1024}},
                      {"--repeat", {&repeat, 1, 1000000}},
                      {"--warmup", {&warmup, 0, 1000000}}};
    std::set<std::string> given;
    if (int status = qdsl_program::parse_flags(argc, argv, table, given, "predict", kUsage);
        status >= 0)
        return status;
    const bool seed_given = given.count("--seed") > 0;
    if (input_path.empty() || output_path.empty())
        return usage("--input and --output are required");
    if (!weights.empty() && seed_given)
        return usage("--weights and --seed exclude each other");
    // An output never replaces an input (as a compiler refuses "input file
    // is the same as output file").
    for (const std::string *in : {&input_path, &weights})
        for (const std::string *out : {&output_path, &profile_json}) {
            std::error_code ec;
            if (!in->empty() && !out->empty() && std::filesystem::equivalent(*in, *out, ec))
                return usage(("the output '" + *out + "' is the input '" + *in +
                              "': give another output file")
                                 .c_str());
        }

    qdsl_model::Model model;
    const qdsl_model::ModelInfo &info = model.info();
    std::string error;
    if (!model.setPrecision(precision, error)) {
        fmt::print(stderr, "predict: --precision {}\n", error);
        return 2;
    }
    if (!weights.empty()) {
        if (!model.loadWeights(weights, error)) {
            fmt::print(stderr, "predict: {}\n", error);
            return 1;
        }
    } else {
        model.initialize(static_cast<uint64_t>(seed));
    }
    if (!path.empty()) {
        // A supernet on one path: one candidate index per search layer.
        std::vector<int> active;
        for (const std::string &part : qdsl_program::split_commas(path)) {
            long long pick = 0;
            if (!qdsl_program::parse_int(part, 0, 63, pick))
                return usage("--path needs candidate indices (0 to 63) separated by commas");
            active.push_back(static_cast<int>(pick));
        }
        if (!model.setPaths(active, std::vector<uint64_t>(active.size(), 0), error)) {
            fmt::print(stderr, "predict: --path {}: {}\n", path, error);
            return 1;
        }
    }
    qdsl_model::Model::setThreads(static_cast<int>(threads));
    if (pin) {
        if (threads < 1) return usage("--pin needs --threads N");
        cpu_set_t set;
        CPU_ZERO(&set);
        for (long long c = 0; c < threads && c < CPU_SETSIZE; ++c)
            CPU_SET(static_cast<int>(c), &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            fmt::print(stderr, "predict: cannot pin to CPUs 0-{}; running unpinned\n", threads - 1);
    }

    qdsl::rt::Tensor x;
    if (!qdsl::rt::readNpy(input_path, x, error) || !qdsl::rt::isFinite(x, input_path, error)) {
        fmt::print(stderr, "predict: {}\n", error);
        return 1;
    }
    // One example, or a batch of them.
    std::vector<int64_t> one = info.input_shape, shape = x.shape;
    int64_t batch = 0;
    if (shape == one)
        batch = 1;
    else if (shape.size() == one.size() + 1 && std::equal(one.begin(), one.end(), shape.begin() + 1))
        batch = shape[0];
    if (batch < 1 || batch > (1 << 20)) {
        fmt::print(stderr, "predict: '{}' has shape {}; model {} takes {} or [N, ...] of it (NHWC float32)\n",
                   input_path, qdsl::rt::describeShape(shape), info.name,
                   qdsl::rt::describeShape(one));
        return 1;
    }

    std::vector<int64_t> out_shape = {batch};
    out_shape.insert(out_shape.end(), info.output_shape.begin(), info.output_shape.end());
    qdsl::rt::Tensor y(out_shape);
    for (long long r = 0; r < warmup; ++r)
        if (!model.forward(x.data.data(), static_cast<int>(batch), y.data.data(), error)) {
            fmt::print(stderr, "predict: {}\n", error);
            return 1;
        }
    qdsl_model::Profile profile_data;
    std::vector<double> runs;
    double best = 1e300, total = 0;
    for (long long r = 0; r < repeat; ++r) {
        auto start = std::chrono::steady_clock::now();
        if (!model.forward(x.data.data(), static_cast<int>(batch), y.data.data(), error,
                           profile || !profile_json.empty() ? &profile_data : nullptr)) {
            fmt::print(stderr, "predict: {}\n", error);
            return 1;
        }
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::min(best, seconds);
        total += seconds;
        runs.push_back(seconds);
    }
    if (!qdsl::rt::writeNpy(output_path, y, error)) {
        fmt::print(stderr, "predict: {}\n", error);
        return 1;
    }
    if (repeat > 1 || profile)
        fmt::print(stderr, "{}: batch {}, best {:.3f} ms, mean {:.3f} ms over {} runs, {:.2f} examples/s\n",
                   info.name, batch, best * 1e3, total / repeat * 1e3, repeat, batch / best);
    if (!profile_json.empty()) {
        nlohmann::json kernels = nlohmann::json::array();
        for (const auto &e : profile_data.entries)
            kernels.push_back({{"kernel", e.kernel}, {"family", e.family}, {"seconds", e.samples}});
        nlohmann::json doc = {{"model", info.name}, {"target", info.target}, {"batch", batch},
                              {"threads", threads}, {"precision", precision}, {"runs", runs}, {"kernels", kernels}};
        if (!qdsl::rt::writeFileAtomically(profile_json, doc.dump(1) + "\n", error)) {
            fmt::print(stderr, "predict: {}\n", error);
            return 1;
        }
    }
    if (profile) {
        double sum = 0;
        for (const auto &e : profile_data.entries)
            sum += e.seconds;
        fmt::print(stderr, "{:<48} {:<28} {:>10} {:>7}\n", "kernel", "family", "ms/run", "share");
        for (const auto &e : profile_data.entries)
            fmt::print(stderr, "{:<48} {:<28} {:>10.3f} {:>6.1f}%\n", e.kernel, e.family,
                       e.seconds / repeat * 1e3, sum > 0 ? 100 * e.seconds / sum : 0.0);
    }
    return 0;
}

int main(int argc, char **argv) {
    // An input this machine cannot hold ends with a message, not an abort.
    try {
        return run(argc, argv);
    } catch (const std::bad_alloc &) {
        fmt::print(stderr, "predict: out of memory: the model and the input's batch need more "
                           "memory than this machine gives the process\n");
        return 1;
    }
}
