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
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

// The programs' shared parts (program_support.h, program_flags.h).
using namespace qdsl_program;
using qdsl::rt::Processes;

const char *const kUsage =
    "usage: search [options]\n"
    "data (Fashion-MNIST's training split; the test split is never read):\n"
    "  --data DIR (Debian's dataset-fashion-mnist) --train-subset N (all)\n"
    "  --validation N (10000): examples held out of the training split for the\n"
    "             architecture steps and the per-epoch validation\n"
    "schedule:\n"
    "  --epochs N (10) --warmup-epochs N (2: uniform paths, weights only)\n"
    "  --batch N (64) --arch-every N (5: one architecture step per N weight steps)\n"
    "  --lr X (4e-3, AdamW with the trainer's cosine schedule) --weight-decay X (0.05)\n"
    "  --arch-lr X (1e-3, Adam with beta1 = 0 for the logits)\n"
    "latency:\n"
    "  --latency-loss additive|multiplicative (additive): CE + lambda*max(0, E/T - 1)\n"
    "             or CE * (log E / log T)^beta\n"
    "  --lambda X (2) --beta X (0.6)\n"
    "  --limit DEVICE=MS  replaces the limit of a constrained device (repeatable)\n"
    "run: --seed N (0) --threads N (0: all) --out DIR (search-out): search.json,\n"
    "  supernet.safetensors\n"
    "processes (mpirun -np N search ...): --batch is per process (the global batch is\n"
    "  N times it); --bucket-mb X (4) gradients per all-reduce; --comm-timeout S (600)\n"
    "measuring a weight step: --benchmark [--path C0,C1,... (0,0,...) --batch N --steps N (3)]:\n"
    "  steps of the supernet on one path (forward, backward, clipping, AdamW on the\n"
    "  path's weights) on random data; prints the best step time and arena as\n"
    "  train --benchmark does for a model\n";

int usage(const std::string &message) { return qdsl_program::usage_error("search", kUsage, message); }

int fail(const std::string &message) { return qdsl_program::fail("search", message); }
int fatal(const std::string &message) { return qdsl_program::fatal("search", message); }

struct Options {
    std::string data, out = "search-out", latency_loss = "additive";
    long long train_subset = 0, validation = 10000, epochs = 10, warmup_epochs = 2, batch = 64,
              arch_every = 5, seed = 0, threads = 0;
    double lr = 4e-3, weight_decay = 0.05, arch_lr = 1e-3, lambda = 2.0, beta = 0.6;
    double bucket_mb = 4, comm_timeout = 600;
    std::vector<std::string> limits;
    bool benchmark = false;
    std::string path;
    long long steps = 3;
};

int parse(int argc, char **argv, Options &o) {
    using qdsl::contract::kMaxBatch;
    using qdsl::contract::kMaxEpochs;
    using qdsl::contract::kMaxExamples;
    FlagTable table;
    table.texts = {{"--data", &o.data}, {"--out", &o.out}, {"--latency-loss", &o.latency_loss},
                   {"--path", &o.path}};
    table.switches = {{"--benchmark", &o.benchmark}};
    table.lists = {{"--limit", &o.limits}};
    table.integers = {{"--train-subset", {&o.train_subset, 1, kMaxExamples}},
                      {"--validation", {&o.validation, 1, kMaxExamples}},
                      {"--epochs", {&o.epochs, 1, kMaxEpochs}},
                      {"--warmup-epochs", {&o.warmup_epochs, 0, kMaxEpochs}},
                      {"--batch", {&o.batch, 1, kMaxBatch}},
                      {"--arch-every", {&o.arch_every, 1, 1000000}},
                      {"--seed", {&o.seed, 0, std::numeric_limits<long long>::max()}},
                      {"--threads", {&o.threads, 0, 1024}},
                      {"--steps", {&o.steps, 1, 1000000}}};
    table.reals = {{"--lr", {&o.lr, 0, 1e30}},         {"--weight-decay", {&o.weight_decay, 0, 10}},
                   {"--arch-lr", {&o.arch_lr, 0, 1e30}}, {"--lambda", {&o.lambda, 0, 1e30}},
                   {"--beta", {&o.beta, 0, 100}},
                   {"--bucket-mb", {&o.bucket_mb, 0, 1e6}},
                   {"--comm-timeout", {&o.comm_timeout, 1, 1e7}}};
    std::set<std::string> given;
    if (int status = parse_flags(argc, argv, table, given, "search", kUsage); status >= 0)
        return status;
    for (const char *flag : {"--path", "--steps"})
        if (given.count(flag) && !o.benchmark)
            return usage(std::string(flag) + " goes with --benchmark");
    if (o.benchmark && Processes::distributed())
        return usage("--benchmark times one process's step; run it without mpirun (train "
                     "--benchmark measures the all-reduce)");
    if (o.warmup_epochs >= o.epochs)
        return usage("--warmup-epochs " + std::to_string(o.warmup_epochs) +
                     " leaves no epoch to search in; --epochs is " + std::to_string(o.epochs));
    return -1;
}

// One constrained device: its latency model and the limit that applies.
struct Device {
    const qdsl_search::Constraint *model;
    double limit_seconds;
};

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
        it->limit_seconds = ms * 1e-3;
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
        if (!qdsl_program::agreed("search", prepare(error), error, status))
            return status;
        if (Processes::distributed())
            Processes::setStopMessage("search: " + Processes::prefix() +
                                      "stopped by the launcher (another process of the job "
                                      "ended?); " + o.out +
                                      "/search.json holds the epochs finished\n");
        exchange = std::make_unique<GradientExchange>();
        if (!qdsl_program::agreed("search", exchange->start(model, o.bucket_mb, error), error,
                                  status))
            return status;
        const int64_t steps_per_epoch =
            std::max<int64_t>(1, static_cast<int64_t>(train_ids.size()) / global_batch);
        schedule.peak = o.lr;
        schedule.minimum = o.lr * 1e-3;
        schedule.totalSteps = steps_per_epoch * o.epochs;
        schedule.warmupSteps = std::max<int64_t>(1, schedule.totalSteps / 20);
        std::optional<qdsl::rt::ProgressBar> bar;
        if (rank0)
            bar.emplace(std::cout, isatty(1), "search", steps_per_epoch * o.epochs);
        int64_t step = 0;
        double start = qdsl::rt::steadyClock()();
        for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
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
            if (!save(false, error))
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
        if (Processes::same(qdsl::rt::weightChecksum(model.weights(), flat_alpha()), error))
            return true;
        error = "after an epoch: " + error + " (weights or architecture parameters)";
        return false;
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
            devices.push_back({&c, c.limit_seconds});
        }
        if (!apply_limits(o.limits, devices, error))
            return false;
        std::string dir = o.data.empty() ? qdsl::rt::defaultFashionMnistDirectory() : o.data;
        if (!qdsl::rt::readFashionMnist(dir, "train", data, error))
            return false;
        const qdsl_model::ModelInfo &info = model.info();
        if (info.input_shape != std::vector<int64_t>{data.height, data.width, data.channels}) {
            error = "the supernet takes " + std::to_string(info.input_shape.size()) +
                    "-dimensional examples unlike the data's " + std::to_string(data.height) +
                    "x" + std::to_string(data.width) + "x" + std::to_string(data.channels);
            return false;
        }
        std::vector<size_t> all(static_cast<size_t>(data.count));
        std::iota(all.begin(), all.end(), 0);
        std::mt19937_64 split(static_cast<uint64_t>(o.seed) ^ 0x5eed5eedULL);
        std::shuffle(all.begin(), all.end(), split);
        size_t used = o.train_subset > 0 ? std::min<size_t>(all.size(), o.train_subset) : all.size();
        if (static_cast<size_t>(o.validation) >= used) {
            error = "--validation " + std::to_string(o.validation) + " leaves no training example of " +
                    std::to_string(used);
            return false;
        }
        validation_ids.assign(all.begin(), all.begin() + o.validation);
        train_ids.assign(all.begin() + o.validation, all.begin() + used);
        global_batch = o.batch * Processes::count();
        if (train_ids.size() < static_cast<size_t>(global_batch)) {
            error = "the global batch " + std::to_string(global_batch) + " (" +
                    std::to_string(Processes::count()) + " × --batch " + std::to_string(o.batch) +
                    ") is larger than the " + std::to_string(train_ids.size()) +
                    " training examples";
            return false;
        }
        qdsl::rt::channelStatistics(data, mean, stddev);
        model.initialize(static_cast<uint64_t>(o.seed));
        qdsl::rt::AdamWOptions adamw;
        adamw.learningRate = o.lr;
        adamw.weightDecay = o.weight_decay;
        optimizer = qdsl::rt::AdamW(adamw);
        arch_optimizer = qdsl::rt::LogitAdam(o.arch_lr);
        const size_t in = info.input_size(), classes = info.output_size();
        images.resize(in * o.batch);
        logits.resize(classes * o.batch);
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

    nlohmann::json expected_latencies_ms() const {
        nlohmann::json out = nlohmann::json::object();
        std::vector<double> alpha = flat_alpha();
        for (const Device &d : devices)
            out[d.model->device] = {{"expected", 1e3 * d.model->expected(alpha.data(), nullptr, 1.0)},
                                    {"limit", 1e3 * d.limit_seconds}};
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
        qdsl::rt::assembleBatch(data, ids, mean, stddev, {}, rng, images.data(), labels.data());
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
        qdsl::rt::clipGradientNorm(gradients, 5.0);
        PathFilter on_path{&layers, active};
        optimizer.step(model.weights(), gradients, schedule.at(step), on_path);
        model.weightsChanged(on_path);
        return true;
    }

    bool architecture_step(double &ce_out, double &loss_out, std::string &error) {
        std::vector<int> active;
        std::vector<uint64_t> recomputed;
        std::vector<std::vector<int>> involved;
        for (const Layer &layer : layers) {
            std::vector<double> p = qdsl::rt::softmax(layer.alpha);
            auto [a, b] = qdsl::rt::samplePair(p, rng);
            std::vector<int> pair = a == b ? std::vector<int>{a} : std::vector<int>{a, b};
            // Which of the two runs: by their probabilities renormalised.
            std::vector<double> q;
            for (int c : pair)
                q.push_back(p[c]);
            double sum = std::accumulate(q.begin(), q.end(), 0.0);
            for (double &x : q)
                x = sum > 0 ? x / sum : 1.0 / q.size();
            active.push_back(pair[qdsl::rt::sampleIndex(q, rng)]);
            uint64_t mask = 0;
            for (int c : pair)
                mask |= uint64_t(1) << c;
            recomputed.push_back(mask);
            involved.push_back(pair);
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
        qdsl::rt::assembleBatch(data, ids, mean, stddev, {}, rng, images.data(), labels.data());
        float ce = 0;
        double unused_hits = 0;
        exchange->begin();
        if (!model.trainStep(images.data(), labels.data(), static_cast<int>(ids.size()), ce,
                             logits.data(), gradients, error) ||
            !exchange->finish(gradients, ce, unused_hits, error))
            return false;
        // The latency term of each device, combined.
        std::vector<double> alpha = flat_alpha(), latency_gradient(alpha.size(), 0.0),
                                                  device_gradient(alpha.size());
        double loss = ce, d_ce = 1.0;
        // Additive: CE + Σ_d penalty_d. Multiplicative: CE · Π_d f_d, so
        // ∂L/∂E_d = CE·f_d'(E_d) · Π_{d'≠d} f_d'.
        struct Term {
            double dE, factor;
            std::vector<double> gradient;
        };
        std::vector<Term> terms;
        for (const Device &d : devices) {
            double e = d.model->expected(alpha.data(), device_gradient.data(), 1.0);
            qdsl::rt::LatencyTerm t =
                qdsl::rt::latencyTerm(form, ce, e, d.limit_seconds,
                                      form == qdsl::rt::LatencyLoss::Additive ? o.lambda : o.beta);
            terms.push_back({t.dLossdE, t.dLossdCE, device_gradient});
            if (form == qdsl::rt::LatencyLoss::Additive) {
                loss += t.loss - ce;
            } else {
                loss *= t.dLossdCE;
                d_ce *= t.dLossdCE;
            }
        }
        for (const Term &t : terms) {
            double scale = t.dE;
            if (form == qdsl::rt::LatencyLoss::Multiplicative && t.factor > 0)
                scale *= d_ce / t.factor;
            for (size_t i = 0; i < alpha.size(); ++i)
                latency_gradient[i] += scale * t.gradient[i];
        }
        size_t offset = 0;
        for (size_t l = 0; l < layers.size(); ++l) {
            Layer &layer = layers[l];
            const size_t n = layer.alpha.size();
            std::vector<double> gate(n, 0.0);
            for (int c : involved[l]) {
                const qdsl::rt::Tensor &g = gradients.at(layer.gates[c]);
                gate[c] = std::accumulate(g.data.begin(), g.data.end(), 0.0);
            }
            std::vector<double> gradient = qdsl::rt::binaryGateGradient(layer.alpha, involved[l], gate);
            for (size_t c = 0; c < n; ++c)
                gradient[c] = d_ce * gradient[c] + latency_gradient[offset + c];
            std::vector<double> before = layer.alpha;
            arch_optimizer.step(l, layer.alpha, gradient);
            qdsl::rt::keepOthersProbabilities(layer.alpha, before, involved[l]);
            offset += n;
        }
        arena_bytes = std::max(arena_bytes, model.trainingArenaBytes());
        ce_out = ce;
        loss_out = loss;
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
                           {"train_examples", train_ids.size()},
                           {"validation_examples", validation_ids.size()}};
        nlohmann::json devices_json = nlohmann::json::array();
        for (const Device &d : devices)
            devices_json.push_back({{"device", d.model->device},
                                    {"limit_ms", d.limit_seconds * 1e3},
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
    if (!o.path.empty()) {
        std::vector<std::string> parts = qdsl_program::split_commas(o.path);
        if (parts.size() != layers.size())
            return usage("--path gives " + std::to_string(parts.size()) + " candidates; the " +
                         "supernet has " + std::to_string(layers.size()) + " search layers");
        for (size_t l = 0; l < layers.size(); ++l) {
            long long c = 0;
            if (!qdsl_program::parse_int(parts[l], 0,
                                         static_cast<long long>(layers[l].candidates.size()) - 1, c))
                return usage("--path: layer '" + layers[l].name + "' has candidates 0 to " +
                             std::to_string(layers[l].candidates.size() - 1) + ", got '" +
                             parts[l] + "'");
            path[l] = static_cast<int>(c);
        }
    }
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
        qdsl::rt::clipGradientNorm(gradients, 5.0);
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
    // Rank 0 alone writes; the others need not see --out.
    std::error_code ec;
    if (Processes::rank() == 0)
        std::filesystem::create_directories(o.out, ec);
    int status = 0;
    if (!qdsl_program::agreed("search", !ec,
                              ec ? "cannot create --out '" + o.out + "': " + ec.message() : "",
                              status))
        return status;
    qdsl_model::Model model;
    return Search(o, model).run();
}

}  // namespace

int main(int argc, char **argv) { return qdsl_program::program_main("search", argc, argv, run); }
