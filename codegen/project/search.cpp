// search: the architecture search of a supernet compiled by
// `qdsl compile SPACE --search` (see --help and docs/NAS.md).
//
// ProxylessNAS's scheme, on the generated kernels: each step runs one path
// of the supernet (one candidate per search layer; Model::setPaths skips
// every other candidate's kernels). The weights warm up on uniformly
// sampled paths; then weight steps on the training split (paths drawn from
// softmax(α)) alternate with architecture steps on a validation split held
// out of the training set. An architecture step samples two candidates per
// layer, runs one of them (chosen among the two by their renormalised
// probabilities), recomputes both outputs for their gate gradients and
// updates α by the binary-gate estimator plus the gradient of the latency
// term, E[LAT](α) coming from the latency model of each constrained device
// (search_constraints.h, written by qdsl from the device profiles).
//
// Under mpirun (or srun) the search runs data-parallel as train does
// (docs/DISTRIBUTED.md): every process draws the same paths and the same
// global batches from the seed, takes its shard of each batch, and the
// gradients of the weights and of the gates (hence of α) are averaged
// across the processes before every update; rank 0 writes the results.
//
// The result, search.json in --out, holds per epoch every layer's
// probabilities, E[LAT] per device, the loss terms and the accuracy of the
// most probable architecture on the validation split; and at the end α, the
// probabilities and the picks. It is written atomically after every epoch.
#include "qdsl_model.h"
#include "program_data.h"
#include "program_support.h"
#include "search_constraints.h"
#include "runtime/shipped/ArchitectureSearch.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/Optimizer.h"
#include "runtime/shipped/Progress.h"
#include "runtime/shipped/TensorFiles.h"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

// The programs' shared parts (program_support.h, program_flags.h).
using namespace qdsl_program;
using qdsl::rt::Processes;

const std::string kUsageText =
    "usage: search [options]\n" + data_usage(/*with_test=*/false) +
    "  --validation N (10000): examples held out of the training examples for the\n"
    "             architecture steps and the per-epoch validation (drawn with\n"
    "             --subset-seed; the test split is never read)\n"
    "schedule:\n"
    "  --epochs N (10) --warmup-epochs N (2: uniform paths, weights only)\n"
    "  --batch N (64) --arch-every N (5: one architecture step per N weight steps)\n"
    "  --lr X (4e-3, AdamW with the trainer's cosine schedule) --weight-decay X (0.05)\n"
    "  --clip X (5; 0: off): the global norm of a weight step's gradients (the path's\n"
    "             weights; the gates' gradients are the architecture's)\n"
    "  --arch-lr X (1e-3, Adam with beta1 = 0 for the logits)\n"
    "  --layer-scale-init X (0: as the model declares, 1e-6 in std/blocks.qd): the\n"
    "             supernet's layer scales start at X, so that candidates differ from\n"
    "             the first steps (the derived model's training keeps the model's)\n"
    "  --gates pair|all (pair): an architecture step's gate gradients: two sampled\n"
    "             candidates per layer renormalised (ProxylessNAS's two paths), or every\n"
    "             candidate's (lower variance, every candidate recomputed)\n"
    "latency (E: expected latency, T: the limit; both forms depend on E/T alone):\n"
    "  --latency-loss additive|multiplicative (additive): CE + lambda*max(0, E/T - 1)\n"
    "             or CE * (E/T)^beta\n"
    "  --lambda X (2) --beta X (0.6)\n"
    "  --limit DEVICE=MS  replaces the limit of a constrained device (repeatable)\n"
    "  --latency-only  architecture steps without the gates' cross-entropy gradient:\n"
    "             the latency term alone moves alpha (an ablation)\n"
    "run: --seed N (0) --threads N (0: all) --out DIR (search-out): search.json,\n"
    "  checkpoint.safetensors (every epoch), supernet.safetensors (at the end)\n"
    "  --resume   continue from DIR/checkpoint.safetensors exactly\n"
    "  --overwrite  start over in a DIR that holds an earlier search\n"
    "processes (mpirun -np N search ...): --batch is per process (the global batch is\n"
    "  N times it); --bucket-mb X (4) gradients per all-reduce; --comm-timeout S (600)\n"
    "scoring paths: --score PATHS [--weights W (OUT/supernet.safetensors)]\n"
    "  [--score-examples N (all)]: each path of PATHS (a line \"C0,C1,...\" per\n"
    "  architecture) on the first N validation examples (the data flags as the\n"
    "  search had them), the supernet's weights inherited; writes OUT/scores.json\n"
    "measuring a weight step: --benchmark [--path C0,C1,... (0,0,...) --batch N --steps N (3)]:\n"
    "  steps of the supernet on one path (forward, backward, clipping, AdamW on the\n"
    "  path's weights) on random data; prints the best step time and arena as\n"
    "  train --benchmark does for a model\n";
const char *const kUsage = kUsageText.c_str();

int usage(const std::string &message) { return qdsl_program::usage_error("search", kUsage, message); }

int fail(const std::string &message) { return qdsl_program::fail("search", message); }
int fatal(const std::string &message) { return qdsl_program::fatal("search", message); }

// The data flags are program_data.h's, shared with train.
struct Options : DataOptions {
    std::string out = "search-out", latency_loss = "additive", gates = "pair";
    long long validation = 10000, epochs = 10, warmup_epochs = 2, batch = 64, arch_every = 5,
              seed = 0, threads = 0;
    double lr = 4e-3, weight_decay = 0.05, arch_lr = 1e-3, lambda = 2.0, beta = 0.6, clip = 5.0;
    double layer_scale_init = 0;  // 0: as the model declares them
    double bucket_mb = 4, comm_timeout = 600;
    std::vector<std::string> limits;
    bool benchmark = false, resume = false, overwrite = false, latency_only = false;
    std::string score, weights;
    long long score_examples = 0;
    std::string path;
    long long steps = 3;
    // Every flag's value, for the processes of one job to compare.
    std::string flags_text;
};

int parse(int argc, char **argv, Options &o) {
    using qdsl::contract::kMaxBatch;
    using qdsl::contract::kMaxEpochs;
    using qdsl::contract::kMaxExamples;
    FlagTable table;
    table.texts = {{"--out", &o.out}, {"--latency-loss", &o.latency_loss},
                   {"--path", &o.path}, {"--gates", &o.gates}, {"--score", &o.score},
                   {"--weights", &o.weights}};
    table.switches = {{"--benchmark", &o.benchmark}, {"--resume", &o.resume},
                      {"--latency-only", &o.latency_only},
                      {"--overwrite", &o.overwrite}};
    table.lists = {{"--limit", &o.limits}};
    table.integers = {{"--validation", {&o.validation, 1, kMaxExamples}},
                      {"--epochs", {&o.epochs, 1, kMaxEpochs}},
                      {"--warmup-epochs", {&o.warmup_epochs, 0, kMaxEpochs}},
                      {"--batch", {&o.batch, 1, kMaxBatch}},
                      {"--arch-every", {&o.arch_every, 1, 1000000}},
                      {"--seed", {&o.seed, 0, std::numeric_limits<long long>::max()}},
                      {"--threads", {&o.threads, 0, 1024}},
                      {"--steps", {&o.steps, 1, 1000000}},
                      {"--score-examples", {&o.score_examples, 1, kMaxExamples}}};
    table.reals = {{"--lr", {&o.lr, 0, 1e30}},         {"--weight-decay", {&o.weight_decay, 0, 10}},
                   {"--arch-lr", {&o.arch_lr, 0, 1e30}}, {"--lambda", {&o.lambda, 0, 1e30}},
                   {"--beta", {&o.beta, 0, 100}},          {"--clip", {&o.clip, 0, 1e30}},
                   {"--layer-scale-init", {&o.layer_scale_init, 0, 10}},
                   {"--bucket-mb", {&o.bucket_mb, 0, 1e6}},
                   {"--comm-timeout", {&o.comm_timeout, 1, 1e7}}};
    add_data_flags(table, o, /*with_test=*/false);
    std::set<std::string> given;
    if (int status = parse_flags(argc, argv, table, given, "search", kUsage); status >= 0)
        return status;
    o.flags_text = describe_flags(table, {"--threads"});
    if (std::string error = check_data_flags(o, given, /*with_test=*/false); !error.empty())
        return usage(error);
    if (o.gates != "pair" && o.gates != "all")
        return usage("--gates must be pair or all, got '" + o.gates + "'");
    if (o.resume && o.overwrite)
        return usage("--resume continues the search in --out, --overwrite replaces it: give one");
    for (const char *flag : {"--path", "--steps"})
        if (given.count(flag) && !o.benchmark)
            return usage(std::string(flag) + " goes with --benchmark");
    for (const char *flag : {"--weights", "--score-examples"})
        if (given.count(flag) && o.score.empty())
            return usage(std::string(flag) + " goes with --score");
    if (o.benchmark && (o.resume || o.overwrite))
        return usage("--benchmark times steps on random data; it does not go with --resume or "
                     "--overwrite");
    if (!o.score.empty() && (o.benchmark || o.resume || o.overwrite))
        return usage("--score scores paths of a trained supernet; it does not go with "
                     "--benchmark, --resume or --overwrite");
    if (!o.score.empty() && Processes::distributed())
        return usage("--score runs in one process; run it without mpirun");
    if (o.benchmark && Processes::distributed())
        return usage("--benchmark times one process's step; run it without mpirun (train "
                     "--benchmark measures the all-reduce)");
    if (o.warmup_epochs >= o.epochs)
        return usage("--warmup-epochs " + std::to_string(o.warmup_epochs) +
                     " leaves no epoch to search in; --epochs is " + std::to_string(o.epochs));
    return -1;
}

// One constrained device: qdsl's latency model of it, as a table, with the
// limit that applies.
struct Device {
    const qdsl_search::Constraint *model;
    qdsl::rt::DeviceLatency latency;
};

Device device_of(const qdsl_search::Constraint &c) {
    Device d{&c, {}};
    d.latency.device = c.device;
    d.latency.fixed = c.fixed_seconds;
    d.latency.limit = c.limit_seconds;
    for (size_t l = 0; l < c.layers; ++l)
        d.latency.seconds.emplace_back(c.seconds + c.offset[l], c.seconds + c.offset[l] + c.count[l]);
    return d;
}

// Splits "DEVICE=MS" overrides onto the devices; false with `error`.
bool apply_limits(const std::vector<std::string> &overrides, std::vector<Device> &devices,
                  std::string &error) {
    for (const std::string &text : overrides) {
        size_t eq = text.find('=');
        double ms = 0;
        if (eq == std::string::npos || !parse_double(text.substr(eq + 1), 1e-9, 1e12, ms)) {
            error = "--limit expects DEVICE=MILLISECONDS, got '" + text + "'";
            return false;
        }
        std::string name = text.substr(0, eq);
        auto it = std::find_if(devices.begin(), devices.end(),
                               [&](const Device &d) { return name == d.model->device; });
        if (it == devices.end()) {
            std::string known;
            for (const Device &d : devices)
                known += (known.empty() ? "" : ", ") + std::string(d.model->device);
            error = "--limit names device '" + name + "', which the search has no latency "
                    "model for (it has: " + known + ")";
            return false;
        }
        it->latency.limit = ms * 1e-3;
    }
    return true;
}

// The search's examples: the training split's --train-subset (drawn with
// --subset-seed), and a --validation part of them held out, drawn with
// --subset-seed too: searches with other seeds, the supernet's scoring, and
// train runs with the same --train-subset see the same examples. Then the
// normalisation of the split.
bool load_examples(const Options &o, const qdsl_model::ModelInfo &info, qdsl::rt::Dataset &data,
                   std::vector<size_t> &train_ids, std::vector<size_t> &validation_ids,
                   std::vector<float> &mean, std::vector<float> &stddev, std::string &error) {
    const int64_t classes = static_cast<int64_t>(info.output_size());
    if (!load_split(o, "train", data, classes, info.input_shape, error))
        return false;
    const std::vector<int64_t> example = {data.height, data.width, data.channels};
    if (info.input_shape != example) {
        error = "the training split's images are " + qdsl::rt::describeShape(example) +
                " but the supernet takes " + qdsl::rt::describeShape(info.input_shape);
        return false;
    }
    if (data.classes > classes) {
        error = "the data set has " + std::to_string(data.classes) + " classes but " + info.name +
                " has " + std::to_string(classes) + " outputs";
        return false;
    }
    std::vector<size_t> all = pick_subset(data.count, o.train_subset, o.subset_seed);
    std::mt19937_64 split(static_cast<uint64_t>(o.subset_seed) ^ 0x5a11d5eedULL);
    std::shuffle(all.begin(), all.end(), split);
    if (static_cast<size_t>(o.validation) >= all.size()) {
        error = "--validation " + std::to_string(o.validation) + " leaves no training example of " +
                std::to_string(all.size());
        return false;
    }
    validation_ids.assign(all.begin(), all.begin() + o.validation);
    train_ids.assign(all.begin() + o.validation, all.end());
    if (Processes::rank() == 0)
        fmt::print("{}", qdsl_program::describe_folder(data, "search: training split"));
    return normalisation(o, data, mean, stddev, error);
}

// "C0,C1,..." as one candidate per search layer; false with `error`.
bool parse_path(const std::string &text, const std::vector<qdsl_model::SearchLayer> &layers,
                std::vector<int> &path, std::string &error) {
    std::vector<std::string> parts = qdsl_program::split_commas(text);
    if (parts.size() != layers.size()) {
        error = "gives " + std::to_string(parts.size()) + " candidates; the " +
                "supernet has " + std::to_string(layers.size()) + " search layers";
        return false;
    }
    path.assign(layers.size(), 0);
    for (size_t l = 0; l < layers.size(); ++l) {
        long long c = 0;
        if (!qdsl_program::parse_int(parts[l], 0,
                                     static_cast<long long>(layers[l].candidates.size()) - 1, c)) {
            error = ": layer '" + layers[l].name + "' has candidates 0 to " +
                    std::to_string(layers[l].candidates.size() - 1) + ", got '" + parts[l] + "'";
            return false;
        }
        path[l] = static_cast<int>(c);
    }
    return true;
}

struct Layer {
    std::string name;
    std::vector<std::string> candidates, gates;
    std::vector<double> alpha;
};

// The weights a path updates: everything but the gates and the weights of
// candidates off the path ("<layer>.candidates.<c>.").
struct PathFilter {
    std::vector<Layer> *layers;
    std::vector<int> active;
    bool operator()(const std::string &name) const {
        for (size_t l = 0; l < layers->size(); ++l) {
            const std::string prefix = (*layers)[l].name + ".candidates.";
            if (name.compare(0, prefix.size(), prefix) != 0)
                continue;
            size_t dot = name.find('.', prefix.size());
            int candidate = std::atoi(name.substr(prefix.size(), dot - prefix.size()).c_str());
            if (name.compare(dot + 1, std::string::npos, "gate") == 0)
                return false;
            return candidate == active[l];
        }
        return true;
    }
};

class Search {
public:
    Search(const Options &o, qdsl_model::Model &model) : o(o), model(model), rng(o.seed) {}

    int run() {
        std::string error;
        int status = 0;
        if (!qdsl_program::agreed("search", qdsl_program::same_flags(o.flags_text, error), error,
                                  status) ||
            !qdsl_program::agreed("search", prepare(error), error, status) ||
            !qdsl_program::agreed("search", same_data(error), error, status))
            return status;
        const int64_t steps_per_epoch =
            std::max<int64_t>(1, static_cast<int64_t>(train_ids.size()) / global_batch);
        int64_t first_epoch = 0, step = 0;
        if (o.resume) {
            // Rank 0 reads the checkpoint and sends it to the others.
            std::string bytes;
            if (!qdsl_program::agreed(
                    "search", !rank0 || qdsl::rt::readFileBytes(checkpoint_path(), bytes, error),
                    error, status) ||
                !qdsl_program::agreed("search",
                                      Processes::broadcast(bytes, error) &&
                                          restore(bytes, steps_per_epoch, first_epoch, step, error),
                                      error, status))
                return status;
            if (rank0)
                fmt::print("search: resumed from {} after epoch {}, step {}\n", checkpoint_path(),
                           first_epoch, step);
        }
        if (Processes::distributed())
            Processes::setStopMessage("search: " + Processes::prefix() +
                                      "stopped by the launcher (another process of the job "
                                      "ended?); " + o.out +
                                      "/search.json holds the epochs finished\n");
        exchange = std::make_unique<GradientExchange>();
        if (!qdsl_program::agreed("search", exchange->start(model, o.bucket_mb, error), error,
                                  status))
            return status;
        schedule.peak = o.lr;
        schedule.minimum = o.lr * 1e-3;
        schedule.totalSteps = steps_per_epoch * o.epochs;
        schedule.warmupSteps = std::max<int64_t>(1, schedule.totalSteps / 20);
        std::optional<qdsl::rt::ProgressBar> bar;
        if (rank0)
            bar.emplace(std::cout, isatty(1), "search", steps_per_epoch * o.epochs);
        double start = qdsl::rt::steadyClock()();
        for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
            const bool warmup = epoch < o.warmup_epochs;
            std::vector<size_t> order = train_ids;
            std::shuffle(order.begin(), order.end(), rng);
            double loss_sum = 0, correct = 0, seen = 0, arch_ce = 0, arch_loss = 0;
            int64_t arch_steps = 0;
            for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
                // This process's shard of the step's global batch.
                const int64_t at = s * global_batch + Processes::rank() * o.batch;
                std::vector<size_t> ids(order.begin() + at, order.begin() + at + o.batch);
                double loss = 0, hits = 0;
                if (!weight_step(ids, warmup, step, loss, hits, error))
                    return stop(error);
                loss_sum += loss * global_batch;
                correct += hits;
                seen += global_batch;
                if (!warmup && (s + 1) % o.arch_every == 0) {
                    double ce = 0, total = 0;
                    if (!architecture_step(ce, total, error))
                        return fatal(error);
                    arch_ce += ce;
                    arch_loss += total;
                    ++arch_steps;
                }
                if (bar)
                    bar->update(step + 1, fmt::format("epoch {}/{} loss {:.3f}", epoch + 1,
                                                      o.epochs, loss_sum / seen));
            }
            // The most probable architecture on the validation split.
            std::vector<int> picks = most_probable();
            Evaluation validation;
            if (!model.setPaths(picks, std::vector<uint64_t>(layers.size(), 0), error) ||
                !qdsl_program::evaluate_shared(model, data, validation_ids,
                                               static_cast<int>(o.batch), mean, stddev,
                                               validation, error, "validation") ||
                !same_everywhere(error))
                return fatal(error);
            nlohmann::json record = {{"epoch", epoch + 1},
                                     {"phase", warmup ? "warmup" : "search"},
                                     {"train_loss", loss_sum / seen},
                                     {"train_accuracy", correct / seen},
                                     {"validation_loss", validation.loss},
                                     {"validation_accuracy", validation.top1},
                                     {"picks", picks},
                                     {"seconds", qdsl::rt::steadyClock()() - start}};
            if (arch_steps) {
                record["architecture_ce"] = arch_ce / arch_steps;
                record["architecture_loss"] = arch_loss / arch_steps;
            }
            record["expected_latency_ms"] = expected_latencies_ms();
            nlohmann::json probabilities = nlohmann::json::object();
            for (const Layer &layer : layers)
                probabilities[layer.name] = qdsl::rt::softmax(layer.alpha);
            record["probabilities"] = probabilities;
            history.push_back(record);
            if (!save(false, error) || !save_checkpoint(epoch + 1, step, error))
                return fatal(error);
        }
        if (bar)
            bar->finish();
        if (!save(true, error))
            return fatal(error);
        if (!rank0)
            return 0;
        fmt::print("search: wrote {}/search.json (picks", o.out);
        for (int p : most_probable())
            fmt::print(" {}", p);
        fmt::print("); peak memory {:.0f} MB\n", memory_mb("VmHWM:"));
        return 0;
    }

private:
    int stop(const std::string &error) {
        return qdsl_program::end_run("search", error, collective_error);
    }

    // The processes hold the same weights and architecture parameters.
    bool same_everywhere(std::string &error) {
        if (!Processes::distributed())
            return true;
        if (Processes::same(qdsl::rt::weightChecksum(model.weights(), flat_alpha()), "weights", error))
            return true;
        error = "after an epoch: " + error + " (weights or architecture parameters)";
        return false;
    }

    // Each process reads its own copy of the files: they must be equal
    // (after every process has loaded them: the comparison is collective).
    bool same_data(std::string &error) {
        return !Processes::distributed() ||
               Processes::same(qdsl_program::data_checksum(data, 1469598103934665603ULL),
                               "training data (each read its own copy of the files: give every "
                               "process the same files)",
                               error);
    }

    bool prepare(std::string &error) {
        if (!qdsl::rt::parseLatencyLoss(o.latency_loss, form)) {
            error = "--latency-loss must be additive or multiplicative, got '" + o.latency_loss +
                    "'";
            return false;
        }
        for (const qdsl_model::SearchLayer &l : qdsl_model::Model::searchLayers())
            layers.push_back({l.name, l.candidates, l.gates,
                              std::vector<double>(l.candidates.size(), 0.0)});
        if (layers.empty()) {
            error = "this project is not a supernet: compile the space with qdsl compile --search";
            return false;
        }
        for (const qdsl_search::Constraint &c : qdsl_search::kConstraints) {
            if (c.layers != layers.size()) {
                error = std::string("the latency model of '") + c.device + "' has " +
                        std::to_string(c.layers) + " layers, the supernet " +
                        std::to_string(layers.size()) + ": recompile the project";
                return false;
            }
            for (size_t l = 0; l < layers.size(); ++l)
                if (layers[l].name != c.layer_names[l] || layers[l].candidates.size() != c.count[l]) {
                    error = std::string("the latency model of '") + c.device +
                            "' does not match search layer '" + layers[l].name +
                            "': recompile the project";
                    return false;
                }
            devices.push_back(device_of(c));
        }
        if (!apply_limits(o.limits, devices, error))
            return false;
        if (!load_examples(o, model.info(), data, train_ids, validation_ids, mean, stddev, error))
            return false;
        global_batch = o.batch * Processes::count();
        if (train_ids.size() < static_cast<size_t>(global_batch)) {
            error = "the global batch " + std::to_string(global_batch) + " (" +
                    std::to_string(Processes::count()) + " × --batch " + std::to_string(o.batch) +
                    ") is larger than the " + std::to_string(train_ids.size()) +
                    " training examples";
            return false;
        }
        model.initialize(static_cast<uint64_t>(o.seed));
        if (o.layer_scale_init > 0) {
            for (const std::string &name : qdsl_model::Model::layerScaleNames())
                std::fill(model.weights().at(name).data.begin(),
                          model.weights().at(name).data.end(), float(o.layer_scale_init));
            model.weightsChanged();
        }
        qdsl::rt::AdamWOptions adamw;
        adamw.learningRate = o.lr;
        adamw.weightDecay = o.weight_decay;
        optimizer = qdsl::rt::AdamW(adamw);
        arch_optimizer = qdsl::rt::LogitAdam(o.arch_lr);
        images.resize(model.info().input_size() * o.batch);
        logits.resize(model.info().output_size() * o.batch);
        labels.resize(o.batch);
        return true;
    }

    std::vector<int> most_probable() const {
        std::vector<int> picks;
        for (const Layer &layer : layers)
            picks.push_back(static_cast<int>(
                std::max_element(layer.alpha.begin(), layer.alpha.end()) - layer.alpha.begin()));
        return picks;
    }

    std::vector<double> flat_alpha() const {
        std::vector<double> flat;
        for (const Layer &layer : layers)
            flat.insert(flat.end(), layer.alpha.begin(), layer.alpha.end());
        return flat;
    }

    qdsl::rt::LayerValues layer_alpha() const {
        qdsl::rt::LayerValues alpha;
        for (const Layer &layer : layers)
            alpha.push_back(layer.alpha);
        return alpha;
    }

    nlohmann::json expected_latencies_ms() const {
        nlohmann::json out = nlohmann::json::object();
        const qdsl::rt::LayerValues alpha = layer_alpha();
        for (const Device &d : devices)
            out[d.model->device] = {{"expected", 1e3 * qdsl::rt::expectedLatency(d.latency, alpha)},
                                    {"limit", 1e3 * d.latency.limit}};
        return out;
    }

    bool weight_step(const std::vector<size_t> &ids, bool uniform, int64_t step, double &loss,
                     double &hits, std::string &error) {
        std::vector<int> active;
        for (const Layer &layer : layers) {
            std::vector<double> p = uniform ? std::vector<double>(layer.alpha.size(),
                                                                  1.0 / layer.alpha.size())
                                            : qdsl::rt::softmax(layer.alpha);
            active.push_back(qdsl::rt::sampleIndex(p, rng));
        }
        if (!model.setPaths(active, std::vector<uint64_t>(layers.size(), 0), error))
            return false;
        if (!qdsl::rt::assembleBatch(data, ids, mean, stddev, o.augmentation(), rng,
                                     images.data(), labels.data(), error))
            return false;
        float l = 0;
        exchange->begin();
        if (!model.trainStep(images.data(), labels.data(), static_cast<int>(ids.size()), l,
                             logits.data(), gradients, error))
            return false;
        const size_t classes = model.info().output_size();
        hits = 0;
        for (size_t i = 0; i < ids.size(); ++i) {
            const float *row = &logits[i * classes];
            hits += (std::max_element(row, row + classes) - row) == labels[i];
        }
        if (!exchange->finish(gradients, l, hits, error))
            return false;
        if (!std::isfinite(l)) {
            collective_error = true;
            error = "the training loss is not finite at step " + std::to_string(step + 1) +
                    ": lower --lr";
            return false;
        }
        loss = l;
        arena_bytes = std::max(arena_bytes, model.trainingArenaBytes());
        // The norm of the path's weights alone: the gates' gradients are not
        // this step's, and the optimiser skips them.
        PathFilter on_path{&layers, active};
        qdsl::rt::clipGradientNorm(gradients, o.clip, on_path);
        optimizer.step(model.weights(), gradients, schedule.at(step), on_path);
        model.weightsChanged(on_path);
        return true;
    }

    bool architecture_step(double &ce_out, double &loss_out, std::string &error) {
        std::vector<int> active;
        std::vector<uint64_t> recomputed;
        qdsl::rt::GateMeasurement measured;
        for (const Layer &layer : layers) {
            std::vector<double> p = qdsl::rt::softmax(layer.alpha);
            std::vector<int> involved;
            if (o.gates == "all") {
                involved.resize(p.size());
                std::iota(involved.begin(), involved.end(), 0);
                active.push_back(qdsl::rt::sampleIndex(p, rng));
            } else {
                auto [a, b] = qdsl::rt::samplePair(p, rng);
                involved = a == b ? std::vector<int>{a} : std::vector<int>{a, b};
                // Which of the two runs: by their probabilities renormalised.
                std::vector<double> q;
                for (int c : involved)
                    q.push_back(p[c]);
                double sum = std::accumulate(q.begin(), q.end(), 0.0);
                for (double &x : q)
                    x = sum > 0 ? x / sum : 1.0 / q.size();
                active.push_back(involved[qdsl::rt::sampleIndex(q, rng)]);
            }
            uint64_t mask = 0;
            for (int c : involved)
                mask |= uint64_t(1) << c;
            recomputed.push_back(mask);
            measured.involved.push_back(std::move(involved));
        }
        if (!model.setPaths(active, recomputed, error))
            return false;
        // Every process draws the whole global batch and takes its shard.
        std::uniform_int_distribution<size_t> pick(0, validation_ids.size() - 1);
        std::vector<size_t> drawn(static_cast<size_t>(global_batch));
        for (size_t &id : drawn)
            id = validation_ids[pick(rng)];
        const size_t at = static_cast<size_t>(Processes::rank() * o.batch);
        std::vector<size_t> ids(drawn.begin() + at, drawn.begin() + at + o.batch);
        if (!qdsl::rt::assembleBatch(data, ids, mean, stddev, {}, rng, images.data(),
                                     labels.data(), error))
            return false;
        float ce = 0;
        double unused_hits = 0;
        exchange->begin();
        if (!model.trainStep(images.data(), labels.data(), static_cast<int>(ids.size()), ce,
                             logits.data(), gradients, error) ||
            !exchange->finish(gradients, ce, unused_hits, error))
            return false;
        measured.ce = ce;
        for (size_t l = 0; l < layers.size(); ++l) {
            std::vector<double> gate(layers[l].alpha.size(), 0.0);
            for (int c : measured.involved[l]) {
                const qdsl::rt::Tensor &g = gradients.at(layers[l].gates[c]);
                gate[c] = std::accumulate(g.data.begin(), g.data.end(), 0.0);
            }
            // --latency-only: the ablation without the accuracy signal.
            if (o.latency_only)
                std::fill(gate.begin(), gate.end(), 0.0);
            measured.gateGradient.push_back(std::move(gate));
        }
        std::vector<qdsl::rt::DeviceLatency> latencies;
        for (const Device &d : devices)
            latencies.push_back(d.latency);
        qdsl::rt::LayerValues alpha = layer_alpha();
        loss_out = qdsl::rt::updateArchitecture(
            alpha, measured, latencies, form,
            form == qdsl::rt::LatencyLoss::Additive ? o.lambda : o.beta, arch_optimizer);
        for (size_t l = 0; l < layers.size(); ++l)
            layers[l].alpha = alpha[l];
        arena_bytes = std::max(arena_bytes, model.trainingArenaBytes());
        ce_out = ce;
        return true;
    }

    std::string checkpoint_path() const { return o.out + "/checkpoint.safetensors"; }

    // The flags that decide what the search does, by name: a resumed search
    // must be given the same.
    std::map<std::string, std::string> run_settings() const {
        std::string limits;
        for (const Device &d : devices)
            limits += fmt::format("{}{}={}", limits.empty() ? "" : ",", d.latency.device,
                                  d.latency.limit * 1e3);
        return {{"epochs", std::to_string(o.epochs)},
                {"warmup_epochs", std::to_string(o.warmup_epochs)},
                {"global_batch", std::to_string(global_batch)},
                {"arch_every", std::to_string(o.arch_every)},
                {"lr", fmt::format("{}", o.lr)},
                {"weight_decay", fmt::format("{}", o.weight_decay)},
                {"clip", fmt::format("{}", o.clip)},
                {"layer_scale_init", fmt::format("{}", o.layer_scale_init)},
                {"arch_lr", fmt::format("{}", o.arch_lr)},
                {"gates", o.gates},
                {"latency_only", o.latency_only ? "true" : "false"},
                {"latency_loss", o.latency_loss},
                {"lambda", fmt::format("{}", o.lambda)},
                {"beta", fmt::format("{}", o.beta)},
                {"limit", limits},
                {"dataset", o.dataset},
                {"train_subset", std::to_string(o.train_subset)},
                {"subset_seed", std::to_string(o.subset_seed)},
                {"validation", std::to_string(o.validation)},
                {"crop", std::to_string(o.crop)},
                {"flip", o.flip ? "true" : "false"}};
    }

    // After an epoch: the supernet's weights and AdamW's state, α and the
    // logits' Adam, the random generator, the epochs' records. One file,
    // written atomically.
    bool save_checkpoint(int64_t epochs_done, int64_t step, std::string &error) {
        if (!rank0)
            return true;
        qdsl::rt::Checkpoint state;
        state.weights = model.weights();
        state.optimizer = optimizer;
        state.epoch = epochs_done;
        state.step = step;
        state.seed = static_cast<uint64_t>(o.seed);
        state.model = model.info().name;
        state.settings = run_settings();
        std::ostringstream generator;
        generator << rng;
        const qdsl::rt::LogitAdam::State adam = arch_optimizer.state();
        nlohmann::json search_state = {
            {"alpha", layer_alpha()},
            {"arch_adam", {{"m", adam.m}, {"v", adam.v}, {"count", adam.count}}},
            {"rng", generator.str()},
            {"history", history},
            {"arena_bytes", arena_bytes}};
        state.settings["search_state"] = search_state.dump();
        return qdsl::rt::saveCheckpoint(checkpoint_path(), state, error);
    }

    // The state saved by save_checkpoint, checked against this run's flags.
    bool restore(const std::string &bytes, int64_t steps_per_epoch, int64_t &epoch, int64_t &step,
                 std::string &error) {
        const std::string path = checkpoint_path();
        qdsl::rt::Checkpoint state;
        if (!qdsl::rt::parseCheckpoint(bytes, path, state, error))
            return false;
        if (state.model != model.info().name) {
            error = "'" + path + "' is a checkpoint of " + state.model + ", not " + model.info().name;
            return false;
        }
        if (state.seed != static_cast<uint64_t>(o.seed)) {
            error = "'" + path + "' was searched with --seed " + std::to_string(state.seed) +
                    "; resume with the same seed";
            return false;
        }
        for (const auto &[key, value] : run_settings()) {
            auto saved = state.settings.find(key);
            std::string flag = "--" + key;
            std::replace(flag.begin(), flag.end(), '_', '-');
            if (key == "global_batch")
                flag = "a global batch (processes × --batch) of";
            if (saved == state.settings.end()) {
                error = "'" + path + "' is not a search's checkpoint (it records no " + flag + ")";
                return false;
            }
            if (saved->second != value) {
                error = "'" + path + "' was searched with " + flag + " " + saved->second +
                        ", not " + value + ": resume with the flags the search started with";
                return false;
            }
        }
        if (state.epoch < 1 || state.epoch > o.epochs || state.step != state.epoch * steps_per_epoch) {
            error = "'" + path + "' stopped at step " + std::to_string(state.step) + " after " +
                    std::to_string(state.epoch) + " epochs, which does not fit " +
                    std::to_string(steps_per_epoch) + " steps per epoch and --epochs " +
                    std::to_string(o.epochs);
            return false;
        }
        try {
            auto text = state.settings.find("search_state");
            if (text == state.settings.end())
                throw std::runtime_error("it has no search_state");
            nlohmann::json saved = nlohmann::json::parse(text->second);
            auto alpha = saved.at("alpha").get<qdsl::rt::LayerValues>();
            qdsl::rt::LogitAdam::State adam;
            adam.m = saved.at("arch_adam").at("m").get<std::vector<std::vector<double>>>();
            adam.v = saved.at("arch_adam").at("v").get<std::vector<std::vector<double>>>();
            adam.count = saved.at("arch_adam").at("count").get<std::vector<std::vector<int64_t>>>();
            if (alpha.size() != layers.size())
                throw std::runtime_error("alpha has " + std::to_string(alpha.size()) +
                                         " layers; the supernet " + std::to_string(layers.size()));
            for (size_t l = 0; l < layers.size(); ++l) {
                if (alpha[l].size() != layers[l].alpha.size())
                    throw std::runtime_error("alpha of layer '" + layers[l].name + "' has " +
                                             std::to_string(alpha[l].size()) + " candidates; the "
                                             "supernet " + std::to_string(layers[l].alpha.size()));
                for (double a : alpha[l])
                    if (!std::isfinite(a))
                        throw std::runtime_error("alpha of layer '" + layers[l].name +
                                                 "' is not finite");
            }
            // The logits' Adam: for no layer yet (no architecture step) or
            // for every layer, shaped as α, with moments a step could make.
            if (adam.v.size() != adam.m.size() || adam.count.size() != adam.m.size() ||
                (!adam.m.empty() && adam.m.size() != layers.size()))
                throw std::runtime_error("the logits' Adam state covers " +
                                         std::to_string(adam.m.size()) + " layers; expected 0 or " +
                                         std::to_string(layers.size()));
            for (size_t l = 0; l < adam.m.size(); ++l) {
                const size_t n = layers[l].alpha.size();
                if (adam.m[l].size() != n || adam.v[l].size() != n || adam.count[l].size() != n)
                    throw std::runtime_error("the logits' Adam state of layer '" + layers[l].name +
                                             "' does not have its " + std::to_string(n) +
                                             " candidates");
                for (size_t c = 0; c < n; ++c)
                    if (!std::isfinite(adam.m[l][c]) || !(adam.v[l][c] >= 0) ||
                        !std::isfinite(adam.v[l][c]) || adam.count[l][c] < 0 ||
                        adam.count[l][c] > state.step)
                        throw std::runtime_error("the logits' Adam state of layer '" +
                                                 layers[l].name + "' holds impossible values at "
                                                 "candidate " + std::to_string(c));
            }
            std::istringstream generator(saved.at("rng").get<std::string>());
            generator >> rng;
            if (generator.fail())
                throw std::runtime_error("its random generator state does not read");
            history = saved.at("history");
            if (!history.is_array() || history.size() != static_cast<size_t>(state.epoch))
                throw std::runtime_error("it records " + std::to_string(history.size()) +
                                         " epochs, not " + std::to_string(state.epoch));
            arena_bytes = saved.at("arena_bytes").get<uint64_t>();
            for (size_t l = 0; l < layers.size(); ++l)
                layers[l].alpha = alpha[l];
            arch_optimizer.setState(std::move(adam));
        } catch (const std::exception &e) {
            error = "'" + path + "': its search state is damaged: " + e.what();
            return false;
        }
        if (!model.setWeights(state.weights, path, error))
            return false;
        optimizer = state.optimizer;
        epoch = state.epoch;
        step = state.step;
        return true;
    }

    bool save(bool final, std::string &error) {
        if (!rank0)
            return true;
        nlohmann::json out;
        out["format"] = "qdsl-search";
        out["version"] = 1;
        out["model"] = model.info().name;
        out["finished"] = final;
        out["settings"] = {{"epochs", o.epochs},         {"warmup_epochs", o.warmup_epochs},
                           {"batch", o.batch},           {"arch_every", o.arch_every},
                           {"processes", Processes::count()},
                           {"lr", o.lr},                 {"arch_lr", o.arch_lr},
                           {"latency_loss", o.latency_loss}, {"lambda", o.lambda},
                           {"beta", o.beta},             {"seed", o.seed},
                           {"gates", o.gates},           {"clip", o.clip},
                           {"latency_only", o.latency_only},
                           {"layer_scale_init", o.layer_scale_init},
                           {"dataset", o.dataset},       {"train_subset", o.train_subset},
                           {"subset_seed", o.subset_seed},
                           {"train_examples", train_ids.size()},
                           {"validation_examples", validation_ids.size()}};
        nlohmann::json devices_json = nlohmann::json::array();
        for (const Device &d : devices)
            devices_json.push_back({{"device", d.model->device},
                                    {"limit_ms", d.latency.limit * 1e3},
                                    {"calibrated", d.model->calibrated}});
        out["devices"] = devices_json;
        nlohmann::json layers_json = nlohmann::json::array();
        for (const Layer &layer : layers)
            layers_json.push_back({{"layer", layer.name},
                                   {"candidates", layer.candidates},
                                   {"alpha", layer.alpha},
                                   {"probabilities", qdsl::rt::softmax(layer.alpha)}});
        out["layers"] = layers_json;
        out["picks"] = most_probable();
        out["expected_latency_ms"] = expected_latencies_ms();
        out["epochs"] = history;
        out["peak_memory_mb"] = memory_mb("VmHWM:");
        // The activations of one step (one path, candidates sharing memory),
        // comparable with train --benchmark's arena_mb.
        out["train_arena_mb"] = arena_bytes / 1048576.0;
        if (!qdsl::rt::writeFileAtomically(o.out + "/search.json", out.dump(2) + "\n", error))
            return false;
        if (final)
            return model.saveWeights(o.out + "/supernet.safetensors", error);
        return true;
    }

    const Options &o;
    qdsl_model::Model &model;
    std::mt19937_64 rng;
    qdsl::rt::LatencyLoss form = qdsl::rt::LatencyLoss::Additive;
    std::vector<Layer> layers;
    std::vector<Device> devices;
    qdsl::rt::Dataset data;
    std::vector<size_t> train_ids, validation_ids;
    std::vector<float> mean, stddev, images, logits;
    std::vector<int32_t> labels;
    qdsl::rt::TensorMap gradients;
    qdsl::rt::AdamW optimizer;
    qdsl::rt::LogitAdam arch_optimizer;
    qdsl::rt::LearningRateSchedule schedule;
    nlohmann::json history = nlohmann::json::array();
    uint64_t arena_bytes = 0;
    const bool rank0 = Processes::rank() == 0;
    int64_t global_batch = 0;
    std::unique_ptr<GradientExchange> exchange;
    bool collective_error = false;
};

// --score: each listed path of a trained supernet on the validation
// examples, with the weights it inherited from the search (how well the
// supernet ranks architectures: docs/NAS.md).
int score(const Options &o, qdsl_model::Model &model) {
    const auto &search_layers = qdsl_model::Model::searchLayers();
    if (search_layers.empty())
        return fail("this project is not a supernet: compile the space with qdsl compile --search");
    std::string text, error;
    if (!qdsl::rt::readFileBytes(o.score, text, error, uint64_t(64) << 20))
        return fail("--score: " + error);
    std::istringstream in(text);
    std::vector<std::vector<int>> paths;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (line.empty() || line[0] == '#')
            continue;
        std::vector<int> path;
        if (!parse_path(line, search_layers, path, error))
            return fail(o.score + ":" + std::to_string(number) + ": the path '" + line + "'" +
                        (error[0] == ':' ? "" : " ") + error);
        paths.push_back(std::move(path));
    }
    if (paths.empty())
        return fail("--score '" + o.score + "' lists no path (one \"C0,C1,...\" per line)");
    const std::string weights = o.weights.empty() ? o.out + "/supernet.safetensors" : o.weights;
    if (!model.loadWeights(weights, error))
        return fail(error);
    qdsl::rt::Dataset data;
    std::vector<size_t> train_ids, validation_ids;
    std::vector<float> mean, stddev;
    if (!load_examples(o, model.info(), data, train_ids, validation_ids, mean, stddev, error))
        return fail(error);
    if (o.score_examples > 0 && static_cast<size_t>(o.score_examples) < validation_ids.size())
        validation_ids.resize(static_cast<size_t>(o.score_examples));
    nlohmann::json scores = nlohmann::json::array();
    for (const std::vector<int> &path : paths) {
        Evaluation result;
        if (!model.setPaths(path, std::vector<uint64_t>(path.size(), 0), error) ||
            !qdsl_program::evaluate(model, data, validation_ids, static_cast<int>(o.batch), mean,
                                    stddev, result, error, "validation"))
            return fail(error);
        scores.push_back({{"path", path}, {"accuracy", result.top1}, {"loss", result.loss}});
    }
    nlohmann::json out = {{"format", "qdsl-supernet-scores"},
                          {"model", model.info().name},
                          {"weights", weights},
                          {"validation_examples", validation_ids.size()},
                          {"scores", scores}};
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec)
        return fail("cannot create --out '" + o.out + "': " + ec.message());
    if (!qdsl::rt::writeFileAtomically(o.out + "/scores.json", out.dump(2) + "\n", error))
        return fail(error);
    fmt::print("search: scored {} paths on {} validation examples: wrote {}/scores.json\n",
               paths.size(), validation_ids.size(), o.out);
    return 0;
}

// One path's weight step, timed on random data: what a search's weight
// step costs, against train --benchmark of the same architecture compiled
// alone (bench/nas_experiments.py `overhead`).
int benchmark(const Options &o, qdsl_model::Model &model) {
    const auto &search_layers = qdsl_model::Model::searchLayers();
    if (search_layers.empty())
        return fail("this project is not a supernet: compile the space with qdsl compile --search");
    std::vector<Layer> layers;
    for (const auto &l : search_layers)
        layers.push_back({l.name, l.candidates, l.gates, {}});
    std::vector<int> path(layers.size(), 0);
    if (std::string error; !o.path.empty() && !parse_path(o.path, search_layers, path, error))
        return usage("--path" + std::string(error[0] == ':' ? "" : " ") + error);
    const qdsl_model::ModelInfo &info = model.info();
    const int batch = static_cast<int>(o.batch);
    model.initialize(static_cast<uint64_t>(o.seed));
    std::string error;
    if (!model.setPaths(path, std::vector<uint64_t>(layers.size(), 0), error))
        return fail(error);
    std::vector<float> images, logits(info.output_size() * batch);
    std::vector<int32_t> labels;
    random_batch(info, batch, static_cast<uint64_t>(o.seed), images, labels);
    qdsl::rt::AdamWOptions adam;
    adam.learningRate = o.lr;
    adam.weightDecay = o.weight_decay;
    qdsl::rt::AdamW optimizer(adam);
    qdsl::rt::TensorMap gradients;
    const double before = memory_mb("VmRSS:");
    auto clock = qdsl::rt::steadyClock();
    double best = 1e300;
    PathFilter on_path{&layers, path};
    for (long long s = 0; s < o.steps; ++s) {
        double start = clock();
        float loss = 0;
        if (!model.trainStep(images.data(), labels.data(), batch, loss, logits.data(), gradients,
                             error))
            return fail(error);
        qdsl::rt::clipGradientNorm(gradients, o.clip, on_path);
        optimizer.step(model.weights(), gradients, o.lr, on_path);
        model.weightsChanged(on_path);
        best = std::min(best, clock() - start);
    }
    std::string shown;
    for (int c : path)
        shown += (shown.empty() ? "" : ",") + std::to_string(c);
    fmt::print("{{\"model\": \"{}\", \"path\": \"{}\", \"batch\": {}, \"steps\": {}, "
               "\"step_s\": {:.6f}, \"peak_over_start_mb\": {:.1f}, \"arena_mb\": {:.1f}}}\n",
               info.name, shown, batch, o.steps, best, memory_mb("VmHWM:") - before,
               model.trainingArenaBytes() / 1048576.0);
    return 0;
}

int run(int argc, char **argv) {
    Options o;
    if (int status = parse(argc, argv, o); status >= 0)
        return status;
    qdsl_model::Model::setThreads(static_cast<int>(o.threads));
    Processes::setTimeout(o.comm_timeout);
    if (o.benchmark) {
        qdsl_model::Model model;
        return benchmark(o, model);
    }
    if (!o.score.empty()) {
        qdsl_model::Model model;
        return score(o, model);
    }
    // Rank 0 alone writes; the others need not see --out.
    std::error_code ec;
    if (Processes::rank() == 0)
        std::filesystem::create_directories(o.out, ec);
    // An earlier search's state is continued or replaced on request only.
    std::string problem = ec ? "cannot create --out '" + o.out + "': " + ec.message() : "";
    if (problem.empty() && Processes::rank() == 0 && !o.resume) {
        if (std::filesystem::exists(o.out + "/checkpoint.safetensors", ec) && !o.overwrite)
            problem = "--out '" + o.out + "' holds an earlier search (checkpoint.safetensors): "
                      "continue it with --resume, or replace it with --overwrite";
        else if (o.overwrite)
            for (const char *name : {"checkpoint.safetensors", "search.json", "supernet.safetensors"})
                if (!ec)
                    std::filesystem::remove(o.out + "/" + name, ec);
        if (ec)
            problem = "cannot replace the earlier search in --out '" + o.out + "': " + ec.message();
    }
    int status = 0;
    if (!qdsl_program::agreed("search", problem.empty(), problem, status))
        return status;
    qdsl_model::Model model;
    return Search(o, model).run();
}

}  // namespace

int main(int argc, char **argv) { return qdsl_program::program_main("search", argc, argv, run); }
