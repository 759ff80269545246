// train: train a model compiled by `qdsl compile --train` (see --help).
//
// The paper's recipe: AdamW (lr 4e-3, weight decay 0.05, none on 1-D
// weights), linear warm-up then cosine decay per step, gradient clipping by
// global norm (5), mean softmax cross-entropy with the label smoothing the
// step was compiled with. The forward pass, loss and backward pass are the
// generated kernels (run by qdsl_model.cpp); this file is the loop around
// them: data, optimiser, evaluation, checkpoints and progress.
//
// Every epoch ends with an evaluation on the test split and a checkpoint
// (weights and optimiser state, written atomically). The data order and the
// augmentation of an epoch depend only on the seed and the epoch, so
// --resume continues exactly where the checkpoint left off.
//
// Under mpirun (or srun) the processes train one model data-parallel
// (runtime/shipped/Distributed.h, docs/DISTRIBUTED.md): each takes its
// shard of every global batch, the gradients are averaged by all-reduces
// that overlap the backward pass, and every process takes the same AdamW
// step. Rank 0 alone prints, logs metrics and writes files.
#include "qdsl_model.h"
#include "program_data.h"
#include "program_support.h"
#include "runtime/shipped/BatchLoader.h"
#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/Distributed.h"
#include "runtime/shipped/Optimizer.h"
#include "runtime/shipped/Progress.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/TensorFiles.h"

#include <fmt/core.h>

#include <unistd.h>

#include <algorithm>
#include <tuple>
#include <limits>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

// The programs' shared parts (program_support.h, program_flags.h).
using namespace qdsl_program;
using qdsl::rt::Processes;

const std::string kUsageText =
    "usage: train [options]\n" + data_usage(/*with_test=*/true) +
    "optimisation:\n"
    "  --epochs N (10) --batch N (64 per process) --global-batch N (instead of --batch:\n"
    "             the batch of a step over all processes) --steps N (stop after step N,\n"
    "             with a checkpoint to --resume from; the schedule still spans the\n"
    "             epochs; 0: no limit)\n"
    "  --lr X (4e-3) --min-lr X (1e-6) --warmup-steps N (5% of the steps)\n"
    "  --weight-decay X (0.05) --clip X (5; 0: off) --seed N (0) --threads N (0: all)\n"
    "  --precision fp32|tf32|bf16 (fp32): how the matmuls multiply (tf32, bf16: the\n"
    "             cuda target's tensor cores, float32 accumulation and weights)\n"
    "output:\n"
    "  --out DIR (train-out): checkpoint.safetensors every epoch, weights.safetensors\n"
    "             at the end, metrics.jsonl (a step's loss every --log-every N (50) steps)\n"
    "  --resume   continue from DIR/checkpoint.safetensors\n"
    "  --overwrite  start over in a DIR that holds an earlier run (its checkpoint,\n"
    "             weights and metrics are replaced; without it train refuses)\n"
    "  --profile  time per kernel family, data, optimiser and all-reduce, printed at\n"
    "             the end\n"
    "processes (mpirun -np N train ..., srun; docs/DISTRIBUTED.md):\n"
    "  --bucket-mb X (4): gradients per all-reduce; 0: one all-reduce after the\n"
    "             backward pass (no overlap)\n"
    "  --check-replicas  compare a checksum of the weights across processes after\n"
    "             every step (always after every epoch)\n"
    "  --comm-timeout S (600): end the job when the other processes do not answer\n"
    "             for S seconds\n"
    "measuring the step: --benchmark [--batch N --steps N (3)]: steps of forward,\n"
    "  backward, clipping and AdamW on random data; prints the best step time and\n"
    "  the peak resident memory above the process's before the first step (JSON)\n"
    "measuring the data loader: --benchmark-loader [--steps N (20)]: the batches of\n"
    "  the first epoch assembled by --loader-threads threads, no step between them;\n"
    "  prints images per second (JSON)\n"
    "checking the step (no training): --gradients G.safetensors --input X.npy\n"
    "  --labels L.npy [--weights W.safetensors]   one step's loss and gradients,\n"
    "  as qdsl run --train writes them\n";
const char *const kUsage = kUsageText.c_str();

int usage(const std::string &message) { return qdsl_program::usage_error("train", kUsage, message); }

int fail(const std::string &message) { return qdsl_program::fail("train", message); }
int fatal(const std::string &message) { return qdsl_program::fatal("train", message); }
bool agreed(bool ok, const std::string &error, int &status) {
    return qdsl_program::agreed("train", ok, error, status);
}

// The data flags are program_data.h's, shared with search.
struct Options : DataOptions {
    long long epochs = 10, batch = 64, global_batch = 0, steps = 0, warmup = -1, seed = 0,
              threads = 0, log_every = 50;
    double lr = 4e-3, min_lr = 1e-6, weight_decay = 0.05, clip = 5.0;
    double bucket_mb = 4, comm_timeout = 600;
    std::string out = "train-out", precision = "fp32";
    bool resume = false, overwrite = false, profile = false, benchmark = false;
    bool benchmark_loader = false;
    bool check_replicas = false;
    std::string gradients, input, labels, weights;
    // Every flag's value, for the processes of one job to compare.
    std::string flags_text;
};

// Parses argv; returns -1 to go on, else the exit status.
int parse(int argc, char **argv, Options &o) {
    FlagTable table;
    table.switches = {{"--resume", &o.resume}, {"--overwrite", &o.overwrite},
                      {"--profile", &o.profile}, {"--benchmark", &o.benchmark},
                      {"--benchmark-loader", &o.benchmark_loader},
                      {"--check-replicas", &o.check_replicas}};
    table.texts = {{"--out", &o.out},                   {"--gradients", &o.gradients},
                   {"--input", &o.input},               {"--labels", &o.labels},
                   {"--weights", &o.weights},           {"--precision", &o.precision}};
    // Integers with the range each takes: wide enough for any real run,
    // narrow enough that step counts and buffer sizes cannot overflow.
    using qdsl::contract::kMaxBatch;
    using qdsl::contract::kMaxEpochs;
    using qdsl::contract::kMaxExamples;
    constexpr long long kSteps = 1LL << 40;
    table.integers = {{"--epochs", {&o.epochs, 1, kMaxEpochs}},
                      {"--batch", {&o.batch, 1, kMaxBatch}},
                      {"--global-batch", {&o.global_batch, 1, 1LL << 24}},
                      {"--log-every", {&o.log_every, 1, kSteps}},
                      {"--steps", {&o.steps, 0, kSteps}},
                      {"--warmup-steps", {&o.warmup, 0, kSteps}},
                      {"--seed", {&o.seed, 0, std::numeric_limits<long long>::max()}},
                      {"--threads", {&o.threads, 0, 1024}}};
    table.reals = {{"--lr", {&o.lr, 0, 1e30}},
                   {"--min-lr", {&o.min_lr, 0, 1e30}},
                   {"--weight-decay", {&o.weight_decay, 0, 10}},
                   {"--clip", {&o.clip, 0, 1e30}},
                   {"--bucket-mb", {&o.bucket_mb, 0, 1e6}},
                   {"--comm-timeout", {&o.comm_timeout, 1, 1e7}}};
    add_data_flags(table, o, /*with_test=*/true);
    std::set<std::string> given;
    if (int status = parse_flags(argc, argv, table, given, "train", kUsage); status >= 0)
        return status;
    o.flags_text = describe_flags(table, {"--threads"});
    if (!o.gradients.empty() && (o.input.empty() || o.labels.empty()))
        return usage("--gradients needs --input X.npy and --labels L.npy");
    if (o.gradients.empty() && (!o.input.empty() || !o.labels.empty() || !o.weights.empty()))
        return usage("--input, --labels and --weights go with --gradients");
    // A flag the chosen mode does not read is an error, not ignored.
    auto only = [&](const char *mode, std::set<std::string> allowed) -> int {
        for (const std::string &flag : given)
            if (!allowed.count(flag))
                return usage(flag + " does not apply to " + mode);
        return -1;
    };
    if (given.count("--batch") && given.count("--global-batch"))
        return usage("--batch (per process) and --global-batch (over all processes) say the "
                     "same thing: give one");
    if (given.count("--global-batch")) {
        const int n = Processes::count();
        if (o.global_batch % n != 0)
            return usage("--global-batch " + std::to_string(o.global_batch) +
                         " does not divide among " + std::to_string(n) + " processes");
        o.batch = o.global_batch / n;
        if (o.batch > 65536)
            return usage("--global-batch " + std::to_string(o.global_batch) + " puts " +
                         std::to_string(o.batch) + " examples on a process; at most 65536");
    }
    o.global_batch = o.batch * Processes::count();
    if (!o.gradients.empty()) {
        if (Processes::distributed())
            return usage("--gradients checks one step in one process; run it without mpirun");
        if (int status = only("--gradients", {"--gradients", "--input", "--labels", "--weights",
                                              "--seed", "--threads", "--precision"});
            status >= 0)
            return status;
    } else if (o.benchmark) {
        if (int status = only("--benchmark", {"--benchmark", "--batch", "--global-batch",
                                              "--steps", "--seed", "--threads", "--lr",
                                              "--weight-decay", "--clip", "--profile",
                                              "--precision", "--bucket-mb", "--comm-timeout"});
            status >= 0)
            return status;
    }
    if (std::string error = check_data_flags(o, given, /*with_test=*/true); !error.empty())
        return usage(error);
    if (given.count("--min-lr") && o.min_lr > o.lr)
        return usage("--min-lr " + fmt::format("{}", o.min_lr) + " is above --lr " +
                     fmt::format("{}", o.lr) + "; the schedule ends at --min-lr");
    if (o.resume && o.overwrite)
        return usage("--resume continues the run in --out, --overwrite replaces it: give one");
    return -1;
}

// Where a run's time went: kernels by family, then the rest of a step.
void print_profile(const qdsl_model::Profile &kernels, double data, double optimizer,
                   double allreduce = 0) {
    std::map<std::string, double> families;
    double total = data + optimizer + allreduce;
    for (const auto &e : kernels.entries) {
        families[e.family] += e.seconds;
        total += e.seconds;
    }
    families["(data: waiting for the loader)"] = data;
    families["(AdamW, clipping, repacking)"] = optimizer;
    if (allreduce > 0)
        families["(all-reduce after the backward)"] = allreduce;
    std::vector<std::pair<double, std::string>> sorted;
    for (const auto &[family, seconds] : families)
        sorted.push_back({seconds, family});
    std::sort(sorted.rbegin(), sorted.rend());
    fmt::print("{:<32} {:>10} {:>7}\n", "kernel family", "seconds", "share");
    for (const auto &[seconds, family] : sorted)
        fmt::print("{:<32} {:>10.3f} {:>6.1f}%\n", family, seconds,
                   total > 0 ? 100 * seconds / total : 0.0);
    // The largest families by group of layers (a layer's name without its
    // last index: stages.2.13 is in stages.2), which names the shapes that
    // take the time.
    std::map<std::pair<std::string, std::string>, std::pair<double, int>> groups;
    for (const auto &e : kernels.entries) {
        std::string layer = e.kernel.substr(0, e.kernel.find('/'));
        size_t dot = layer.rfind('.');
        if (dot != std::string::npos && dot + 1 < layer.size() &&
            layer.find_first_not_of("0123456789", dot + 1) == std::string::npos)
            layer.resize(dot);
        auto &group = groups[{e.family, layer}];
        group.first += e.seconds;
        group.second += 1;
    }
    std::vector<std::pair<double, std::string>> rows;
    for (const auto &[key, value] : groups)
        rows.push_back({value.first, fmt::format("{:<32} {:<14} {:>7}", key.first, key.second,
                                                 value.second)});
    std::sort(rows.rbegin(), rows.rend());
    if (rows.size() > 12)
        rows.resize(12);
    fmt::print("\n{:<32} {:<14} {:>7} {:>10} {:>7}\n", "kernel family", "layers", "kernels",
               "seconds", "share");
    for (const auto &[seconds, row] : rows)
        fmt::print("{} {:>10.3f} {:>6.1f}%\n", row, seconds,
                   total > 0 ? 100 * seconds / total : 0.0);
}

std::string fixed(double v, int digits) { return fmt::format("{:.{}f}", v, digits); }

// One training step on a given batch, written as `qdsl run --train` writes
// it: the gradients under the weights' names and the loss in the metadata.
int one_step(const Options &o, qdsl_model::Model &model) {
    std::string error;
    const qdsl_model::ModelInfo &info = model.info();
    if (o.weights.empty())
        model.initialize(static_cast<uint64_t>(o.seed));
    else if (!model.loadWeights(o.weights, error))
        return fail(error);
    qdsl::rt::Tensor input;
    std::vector<int64_t> labels;
    if (!qdsl::rt::readNpy(o.input, input, error) || !qdsl::rt::isFinite(input, o.input, error) ||
        !qdsl::rt::readNpyLabels(o.labels, labels, error))
        return fail(error);
    std::vector<int64_t> example(input.shape.begin() + (input.shape.empty() ? 0 : 1), input.shape.end());
    if (input.shape.empty() || example != info.input_shape)
        return fail("'" + o.input + "' has shape " + qdsl::rt::describeShape(input.shape) +
                    "; expected [N] + " + qdsl::rt::describeShape(info.input_shape));
    const int batch = static_cast<int>(input.shape[0]);
    if (labels.size() != static_cast<size_t>(batch))
        return fail("'" + o.labels + "' has " + std::to_string(labels.size()) +
                    " labels; expected one label per example: [" + std::to_string(batch) + "]");
    std::vector<int32_t> classes(batch);
    for (int i = 0; i < batch; ++i) {
        if (labels[i] < 0 || labels[i] >= static_cast<int64_t>(info.output_size()))
            return fail("'" + o.labels + "': label " + std::to_string(labels[i]) +
                        " of example " + std::to_string(i) + " is not a class of " + info.name +
                        " (0.." + std::to_string(info.output_size() - 1) + ")");
        classes[i] = static_cast<int32_t>(labels[i]);
    }
    float loss = 0;
    std::vector<float> logits(info.output_size() * batch);
    qdsl::rt::TensorMap gradients;
    if (!model.trainStep(input.data.data(), classes.data(), batch, loss, logits.data(), gradients,
                         error))
        return fail(error);
    const std::string text = fmt::format("{:.9g}", static_cast<double>(loss));
    qdsl::rt::Metadata metadata = {{qdsl::contract::kModelKey, info.name},
                                   {qdsl::contract::kLossKey, text}};
    if (!qdsl::rt::writeSafetensors(o.gradients, gradients, metadata, error))
        return fail(error);
    fmt::print("loss {}\n", text);
    return 0;
}

// The peer of bench/pytorch_training.py's step: the same work (forward,
// loss, backward, clipping, AdamW) on random data, timed and measured the
// same way.
int benchmark(const Options &o, qdsl_model::Model &model) {
    const qdsl_model::ModelInfo &info = model.info();
    const int batch = static_cast<int>(o.batch);
    model.initialize(static_cast<uint64_t>(o.seed));
    std::vector<float> images, logits(info.output_size() * batch);
    std::vector<int32_t> labels;
    // Each process its own examples, as in a run.
    random_batch(info, batch, static_cast<uint64_t>(o.seed) + Processes::rank(), images, labels);
    GradientExchange exchange;
    std::string error;
    if (!exchange.start(model, o.bucket_mb, error))
        return fatal(error);
    qdsl::rt::AdamWOptions adam;
    adam.learningRate = o.lr;
    adam.weightDecay = o.weight_decay;
    qdsl::rt::AdamW optimizer(adam);
    qdsl::rt::TensorMap gradients;
    const double before = memory_mb("VmRSS:");
    double best = 1e300;
    const long long steps = o.steps > 0 ? o.steps : 3;
    auto clock = qdsl::rt::steadyClock();
    qdsl_model::Profile kernel_time;
    double optimizer_time = 0;
    for (long long s = 0; s < steps; ++s) {
        double start = clock();
        float loss = 0;
        double correct = 0;
        exchange.begin();
        if (!model.trainStep(images.data(), labels.data(), batch, loss, logits.data(), gradients,
                             error, o.profile ? &kernel_time : nullptr) ||
            !exchange.finish(gradients, loss, correct, error))
            return fatal(error);
        const double kernels_done = clock();
        qdsl::rt::clipGradientNorm(gradients, o.clip);
        optimizer.step(model.weights(), gradients, o.lr);
        model.weightsChanged();
        optimizer_time += clock() - kernels_done;
        best = std::min(best, clock() - start);
    }
    if (!exchange.measure(error))
        return fatal(error);
    if (Processes::rank() != 0)
        return 0;
    std::string processes;
    if (const auto *st = exchange.statistics())
        processes = fmt::format(", \"processes\": {}, \"global_batch\": {}, "
                                "\"allreduce_alone_s\": {:.6f}, \"allreduce_exposed_s\": "
                                "{:.6f}, \"allreduce_exposed_least_s\": {:.6f}, "
                                "\"allreduce_mb\": {:.3f}",
                                Processes::count(), o.global_batch, st->alone,
                                st->exposed / st->steps, st->exposedBest, st->bytes / 1e6);
    fmt::print("{{\"model\": \"{}\", \"batch\": {}, \"steps\": {}, \"step_s\": {:.6f}, "
               "\"peak_over_start_mb\": {:.1f}, \"arena_mb\": {:.1f}{}}}\n",
               info.name, batch, steps, best, memory_mb("VmHWM:") - before,
               model.trainingArenaBytes() / 1048576.0, processes);
    if (o.profile) {
        print_profile(kernel_time, 0, optimizer_time);
        exchange.print_profile();
    }
    return 0;
}

// A training run: the data, the schedule, the optimiser's state and the
// loop over epochs. Each phase returns false with `error` set; main prints
// it. The data order and the augmentation of a step depend only on the
// seed, the epoch and the step, so a resumed run draws what the first one
// would have.
class Trainer {
public:
    Trainer(const Options &o, qdsl_model::Model &model)
        : o(o), model(model), info(model.info()),
          classes(info.output_shape.empty() ? 1 : info.output_shape.back()),
          checkpoint_path(o.out + "/checkpoint.safetensors") {}

    int run() {
        std::string error;
        int status = 0;
        if (!agreed(qdsl_program::same_flags(o.flags_text, error), error, status) ||
            !agreed(load_data_sets(error), error, status) || !agreed(same_data(error), error, status))
            return status;
        if (o.benchmark_loader)
            return benchmark_loader();
        if (!agreed(start(error), error, status))
            return status;
        exchange = std::make_unique<GradientExchange>();
        if (!agreed(exchange->start(model, o.bucket_mb, error), error, status))
            return status;
        print_header();
        for (int64_t epoch = state.epoch; epoch < o.epochs && step < stop_at; ++epoch) {
            int64_t last = 0;
            EpochTotals totals;
            if (!train_epoch(epoch, last, totals, error))
                return stop(error);
            if (last < steps_per_epoch) {
                // Stopped by --steps inside the epoch: a checkpoint that
                // --resume continues from this step.
                if (!check_replicas(error) || !save_checkpoint(error))
                    return stop(error);
                if (rank0)
                    fmt::print("stopped after step {} (--steps), in epoch {}; --resume "
                               "continues from {}\n",
                               step, epoch + 1, checkpoint_path);
                break;
            }
            if (!end_epoch(epoch, totals, error))
                return stop(error);
        }
        return finish(error) ? 0 : stop(error);
    }

private:
    int stop(const std::string &error) {
        return qdsl_program::end_run("train", error, collective_error);
    }

    // --benchmark-loader: the loader alone, as fast as it goes: batches of
    // the first epoch (its order and augmentation), no step between them.
    int benchmark_loader() {
        const int64_t batches = std::min<int64_t>(steps_per_epoch, o.steps > 0 ? o.steps : 20);
        const std::vector<size_t> order = epoch_order(0);
        const double start = now();
        std::unique_ptr<qdsl::rt::BatchLoader> loader = epoch_loader(0, order, 0, batches);
        std::string error;
        for (int64_t b = 0; b < batches; ++b)
            if (!loader->next(images.data(), labels.data(), error))
                return fail(error);
        const double seconds = now() - start;
        fmt::print("{{\"loader\": {{\"images_per_second\": {:.1f}, \"batches\": {}, "
                   "\"batch\": {}, \"threads\": {}, \"seconds\": {:.3f}}}}}\n",
                   double(batches * o.batch) / seconds, batches, o.batch, o.loader_threads,
                   seconds);
        return 0;
    }

    // Rank 0 writes the checkpoint; the others go on (a failure ends the job).
    bool save_checkpoint(std::string &error) {
        if (rank0 && !qdsl::rt::saveCheckpoint(checkpoint_path, state, error))
            return false;
        saved_step = state.step;
        update_stop_message();
        return true;
    }

    // All processes must hold the same weights: checked after every epoch
    // (and every step with --check-replicas).
    bool check_replicas(std::string &error) {
        if (!Processes::distributed() || Processes::same(qdsl::rt::weightChecksum(model.weights()), "weights", error))
            return true;
        error = "after step " + std::to_string(step) + ": " + error +
                " although they took the same averaged steps: the MPI library's sums differ "
                "between processes";
        return false;
    }

    // What this process says when the launcher stops it (another process
    // of the job died): where the run stood and what is safe to resume.
    void update_stop_message() {
        if (!Processes::distributed())
            return;
        std::string resumable =
            saved_step >= 0 ? "the last checkpoint '" + checkpoint_path + "' (after step " +
                                  std::to_string(saved_step) +
                                  ") is intact: --resume continues from it"
                            : "no checkpoint was written yet";
        Processes::setStopMessage("train: " + Processes::prefix() +
                                  "stopped by the launcher at step " + std::to_string(step + 1) +
                                  " (another process of the job ended?); " + resumable + "\n");
    }

    // The mean loss and accuracy on the test examples, each process
    // evaluating its share of them.
    bool evaluate_test(std::string &error) {
        return qdsl_program::evaluate_shared(model, test_set, test_ids, static_cast<int>(o.batch),
                                             mean, stddev, eval, error);
    }

    // What the steps of one epoch add up to.
    struct EpochTotals {
        int64_t steps = 0;
        double loss_sum = 0, seconds = 0;
        size_t correct = 0;
    };

    // Reads the data sets, checks that they fit the model, draws the
    // subsets and the normalisation.
    // Each process reads its own copy of the files: they must be equal.
    bool same_data(std::string &error) {
        return !Processes::distributed() ||
               Processes::same(qdsl_program::data_checksum(
                                   test_set, qdsl_program::data_checksum(train_set,
                                                                         1469598103934665603ULL)),
                               "training and test data (each read its own copy of the files: "
                               "give every process the same files)",
                               error);
    }

    bool load_data_sets(std::string &error) {
        if (!load_split(o, "train", train_set, classes, info.input_shape, error) ||
            !load_split(o, "test", test_set, classes, info.input_shape, error))
            return false;
        if (train_set.classNames != test_set.classNames) {
            // The first name one has and the other lacks.
            std::string only;
            for (const auto &[a, b, where] :
                 {std::tuple<const qdsl::rt::Dataset *, const qdsl::rt::Dataset *, const char *>{
                      &train_set, &test_set, "the training folder"},
                  {&test_set, &train_set, "the test folder"}})
                for (const std::string &name : a->classNames)
                    if (only.empty() &&
                        std::find(b->classNames.begin(), b->classNames.end(), name) ==
                            b->classNames.end())
                        only = "'" + name + "' is only in " + where;
            error = "the training and test folders have different class folders (" +
                    std::to_string(train_set.classNames.size()) + " and " +
                    std::to_string(test_set.classNames.size()) + "; " + only +
                    "): labels are the position of a class among the sorted folder names, "
                    "so both need the same ones";
            return false;
        }
        if (test_set.count == 0) {
            error = "the test split holds no examples: nothing to evaluate on";
            return false;
        }
        if (rank0)
            fmt::print("{}{}", describe_folder(train_set, "train: training split"),
                       describe_folder(test_set, "train: test split"));
        for (const auto &[split, data] : {std::pair<const char *, const qdsl::rt::Dataset *>{
                                              "training", &train_set},
                                          {"test", &test_set}}) {
            const std::vector<int64_t> example = {data->height, data->width, data->channels};
            if (example != info.input_shape) {
                error = "the " + std::string(split) + " split's images are " +
                        qdsl::rt::describeShape(example) + " but " + info.name + " takes " +
                        qdsl::rt::describeShape(info.input_shape);
                return false;
            }
        }
        if (train_set.classes > classes || test_set.classes > classes) {
            error = "the data set has " +
                    std::to_string(std::max(train_set.classes, test_set.classes)) +
                    " classes but " + info.name + " has " + std::to_string(classes) + " outputs";
            return false;
        }
        train_ids = pick_subset(train_set.count, o.train_subset, o.subset_seed);
        test_ids = pick_subset(test_set.count, o.test_subset, o.subset_seed + 1);
        if (train_ids.size() < static_cast<size_t>(o.global_batch)) {
            error = (Processes::distributed()
                         ? "the global batch " + std::to_string(o.global_batch) + " (" +
                               std::to_string(Processes::count()) + " processes × --batch " +
                               std::to_string(o.batch) + ")"
                         : "--batch " + std::to_string(o.batch)) +
                    " is larger than the " + std::to_string(train_ids.size()) +
                    " training examples";
            return false;
        }
        if (!normalisation(o, train_set, mean, stddev, error))
            return false;
        plan_schedule();
        images.assign(info.input_size() * o.batch, 0.0f);
        logits.assign(info.output_size() * o.batch, 0.0f);
        labels.assign(o.batch, 0);
        return true;
    }

    // Whole batches only: every step sees the same batch size. The schedule
    // spans every epoch; --steps only stops the run early.
    void plan_schedule() {
        steps_per_epoch = static_cast<int64_t>(train_ids.size()) / o.global_batch;
        const int64_t total_steps = steps_per_epoch * o.epochs;
        stop_at = o.steps > 0 ? std::min<int64_t>(total_steps, o.steps) : total_steps;
        schedule.peak = o.lr;
        schedule.minimum = std::min(o.min_lr, o.lr);
        schedule.totalSteps = total_steps;
        schedule.warmupSteps = o.warmup >= 0 ? o.warmup : total_steps / 20;
    }

    // Fresh weights, or the weights, optimiser state and counters of the
    // checkpoint with --resume; then the metrics log.
    bool start(std::string &error) {
        // No output of the run over one of its inputs (an .npy or IDX file
        // kept in --out under an output's name).
        for (const std::string *input :
             {&o.train_images, &o.train_labels, &o.test_images, &o.test_labels})
            for (const char *output : {"checkpoint.safetensors", "weights.safetensors",
                                       "metrics.jsonl"}) {
                std::error_code ec;
                if (!input->empty() &&
                    std::filesystem::equivalent(*input, o.out + "/" + output, ec)) {
                    error = "--out '" + o.out + "' would write " + output + " over the input '" +
                            *input + "': give another --out";
                    return false;
                }
            }
        qdsl::rt::AdamWOptions adam;
        adam.learningRate = o.lr;
        adam.weightDecay = o.weight_decay;
        state.optimizer = qdsl::rt::AdamW(adam);
        state.seed = static_cast<uint64_t>(o.seed);
        state.model = info.name;
        // The global batch: a run may resume on another number of processes.
        state.settings = {{"batch", std::to_string(o.global_batch)},
                          {"dataset", o.dataset},
                          {"train_subset", std::to_string(o.train_subset)},
                          {"subset_seed", std::to_string(o.subset_seed)},
                          {"crop", std::to_string(o.crop)},
                          {"flip", o.flip ? "true" : "false"},
                          {"eval_crop", o.eval_crop ? "true" : "false"},
                          {"mean", o.mean},
                          {"std", o.std},
                          // The optimiser's: a resumed run continues with
                          // them, so a different value given is refused.
                          {"lr", fmt::format("{}", o.lr)},
                          {"min_lr", fmt::format("{}", o.min_lr)},
                          {"weight_decay", fmt::format("{}", o.weight_decay)},
                          {"clip", fmt::format("{}", o.clip)}};
        if (o.resume) {
            if (!resume(error))
                return false;
            saved_step = state.step;
        } else {
            // Rank 0 alone writes; the others need not see --out.
            if (!agreed(!rank0 || claim_output_directory(error), error, setup_status)) {
                error.clear();
                return false;
            }
            model.initialize(static_cast<uint64_t>(o.seed));
            // The same seed gives the same weights everywhere; checked.
            if (!check_replicas(error)) {
                error = "the initial weights differ between processes: " + error;
                return false;
            }
        }
        step = state.step;
        update_stop_message();
        if (!rank0)
            return true;
        return o.resume ? metrics.resume(o.out + "/metrics.jsonl", state.step, state.epoch, error)
                        : metrics.open(o.out + "/metrics.jsonl", error, /*append=*/false);
    }

    // Creates --out, or takes one that holds no earlier run; one that does
    // is only replaced with --overwrite.
    bool claim_output_directory(std::string &error) {
        std::error_code ec;
        if (std::filesystem::exists(o.out, ec) && !std::filesystem::is_directory(o.out, ec)) {
            error = "--out '" + o.out + "' is a file; expected a directory";
            return false;
        }
        std::string earlier;
        for (const char *file : {"checkpoint.safetensors", "weights.safetensors", "metrics.jsonl"})
            if (std::filesystem::exists(o.out + "/" + file, ec))
                earlier += (earlier.empty() ? "" : ", ") + std::string(file);
        if (!earlier.empty() && !o.overwrite) {
            error = "--out '" + o.out + "' holds an earlier run (" + earlier +
                    "): continue it with --resume, or replace it with --overwrite";
            return false;
        }
        // Replaced: nothing of the earlier run may pass for this one's.
        for (const char *file : {"checkpoint.safetensors", "weights.safetensors"})
            std::filesystem::remove(o.out + "/" + file, ec);
        std::filesystem::create_directories(o.out, ec);
        if (ec) {
            error = "cannot create '" + o.out + "': " + ec.message();
            return false;
        }
        return true;
    }

    bool resume(std::string &error) {
        const std::map<std::string, std::string> settings = state.settings;
        // Rank 0 reads the checkpoint and sends it to the others (which may
        // be on hosts without --out).
        std::string bytes;
        if (!agreed(!rank0 || qdsl::rt::readFileBytes(checkpoint_path, bytes, error), error,
                    setup_status)) {
            error.clear();
            return false;
        }
        if (!Processes::broadcast(bytes, error) ||
            !qdsl::rt::parseCheckpoint(bytes, checkpoint_path, state, error))
            return false;
        // Before --subset-seed, a subset was drawn from --seed: such a run
        // cannot continue on the same examples unless --seed was 0.
        if (!state.settings.empty() && !state.settings.count("subset_seed") &&
            o.train_subset > 0 && state.seed != 0) {
            error = "'" + checkpoint_path + "' was written before --subset-seed: its " +
                    "--train-subset was drawn from --seed " + std::to_string(state.seed) +
                    ", which this trainer no longer does; start over with --overwrite";
            return false;
        }
        // Checkpoints written before settings were recorded have none. The
        // schedule's flags (the learning rates, the clip) are read afresh at
        // every step: another value is applied, and said; the others are
        // refused (the weight decay lives in the checkpoint's optimiser).
        for (const auto &[key, value] : settings) {
            auto saved = state.settings.find(key);
            if (saved != state.settings.end() && saved->second != value) {
                std::string flag = "--" + key;
                std::replace(flag.begin(), flag.end(), '_', '-');
                if (key == "lr" || key == "min_lr" || key == "clip") {
                    if (rank0)
                        fmt::print("train: {} {} applied from step {} (the checkpoint's run "
                                   "had {})\n",
                                   flag, value, state.step, saved->second);
                    continue;
                }
                if (key == "batch")
                    error = "'" + checkpoint_path + "' was trained with a global batch of " +
                            saved->second + " examples, not " + value + " (" +
                            std::to_string(Processes::count()) + " processes × --batch " +
                            std::to_string(o.batch) + "): resume with --global-batch " +
                            saved->second;
                else
                    error = "'" + checkpoint_path + "' was trained with " + flag + " " +
                            saved->second + ", not " + value +
                            ": resume with the flags the run started with";
                return false;
            }
        }
        state.settings = settings;
        if (state.model != info.name)
            error = "'" + checkpoint_path + "' is a checkpoint of " + state.model + ", not " +
                    info.name;
        else if (state.seed != static_cast<uint64_t>(o.seed))
            error = "'" + checkpoint_path + "' was trained with --seed " +
                    std::to_string(state.seed) + "; resume with the same seed";
        else if (state.step < state.epoch * steps_per_epoch ||
                 state.step >= (state.epoch + 1) * steps_per_epoch)
            error = "'" + checkpoint_path + "' stopped at step " + std::to_string(state.step) +
                    " after " + std::to_string(state.epoch) + " epochs, which does not fit " +
                    std::to_string(steps_per_epoch) +
                    " steps per epoch: resume with the global batch and --train-subset it was "
                    "trained with";
        else
            return model.setWeights(state.weights, checkpoint_path, error);
        return false;
    }

    void print_header() const {
        if (!rank0)
            return;
        const std::string batch =
            Processes::distributed()
                ? fmt::format("batch {} ({} processes × {})", o.global_batch,
                              Processes::count(), o.batch)
                : fmt::format("batch {}", o.batch);
        fmt::print("train: {} ({}), {} training and {} test examples, {}, {} steps "
                   "({} per epoch), {}\n",
                   info.name, info.source, train_ids.size(), test_ids.size(), batch, stop_at,
                   steps_per_epoch, qdsl_model::Model::trainingSetup());
        if (o.resume)
            fmt::print("train: resumed from {} after epoch {}, step {}\n", checkpoint_path,
                       state.epoch, state.step);
        std::fflush(stdout);
    }

    // The steps of one epoch, from where the run stands to the epoch's end or
    // --steps; `last` is the step of the epoch it stopped before.
    // The order of the training examples in `epoch`, from the seed and the
    // epoch alone.
    std::vector<size_t> epoch_order(int64_t epoch) const {
        std::mt19937_64 shuffle_rng(static_cast<uint64_t>(o.seed) * 1000003ULL + epoch);
        std::vector<size_t> order = train_ids;
        std::shuffle(order.begin(), order.end(), shuffle_rng);
        return order;
    }

    // Steps [first, last) of `epoch` over `order` (which must outlive the
    // loader), assembled on the loader's threads ahead of the steps; each
    // batch is this process's shard of the step's global batch.
    std::unique_ptr<qdsl::rt::BatchLoader> epoch_loader(int64_t epoch,
                                                        const std::vector<size_t> &order,
                                                        int64_t first, int64_t last) const {
        return std::make_unique<qdsl::rt::BatchLoader>(
            [this, &order, epoch, first](int64_t k, float *batch_images, int32_t *batch_labels,
                                         std::string &batch_error) {
                const int64_t s = first + k;
                const int64_t at = s * o.global_batch + Processes::rank() * o.batch;
                std::vector<size_t> ids(order.begin() + at, order.begin() + at + o.batch);
                return assemble(epoch, s, ids, at - s * o.global_batch, batch_images,
                                batch_labels, batch_error);
            },
            last - first, images.size(), labels.size(), static_cast<int>(o.loader_threads),
            static_cast<int>(o.loader_threads) + 1);
    }

    bool train_epoch(int64_t epoch, int64_t &last, EpochTotals &totals, std::string &error) {
        const std::vector<size_t> order = epoch_order(epoch);
        const int64_t first = step - epoch * steps_per_epoch;
        last = std::min(steps_per_epoch, stop_at - epoch * steps_per_epoch);
        totals.steps = last - first;
        std::optional<qdsl::rt::ProgressBar> bar;
        if (rank0)
            bar.emplace(std::cerr, terminal,
                        "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                        totals.steps);
        const double start = qdsl::rt::steadyClock()();
        std::unique_ptr<qdsl::rt::BatchLoader> loader = epoch_loader(epoch, order, first, last);
        for (int64_t s = first; s < last; ++s, ++step) {
            float loss = 0;
            double lr = 0, correct = 0;
            if (!train_step(epoch, *loader, loss, correct, lr, error))
                return false;
            totals.loss_sum += loss;
            totals.correct += static_cast<size_t>(correct);
            if (bar)
                bar->update(s + 1 - first, "loss " + fixed(totals.loss_sum / (s + 1 - first), 4) +
                                               " lr " + fixed(lr * 1e3, 3) + "e-3");
        }
        totals.seconds = qdsl::rt::steadyClock()() - start;
        if (bar)
            bar->finish("loss " + fixed(totals.loss_sum / std::max<int64_t>(totals.steps, 1), 4));
        state.weights = model.weights();
        state.step = step;
        return true;
    }

    // Step `s` of `epoch` on the examples `ids`, which start at `position`
    // in the step's global batch: the batch (each example augmented from the
    // seed, the epoch, the step and its position, so any split among
    // processes draws alike), the generated step, the gradients' all-reduce,
    // clipping and AdamW. `loss` and `correct` come back over the global
    // batch. A loss or gradient that is not finite stops the run before the
    // weights change.
    bool train_step(int64_t epoch, qdsl::rt::BatchLoader &loader, float &loss, double &correct,
                    double &lr, std::string &error) {
        double t0 = now();
        const bool loaded = loader.next(images.data(), labels.data(), error);
        data_time += now() - t0;
        if (!loaded) {
            error = "step " + std::to_string(step + 1) + ": " + error;
            return false;
        }
        exchange->begin();
        if (!model.trainStep(images.data(), labels.data(), static_cast<int>(o.batch), loss,
                             logits.data(), gradients, error, o.profile ? &kernel_time : nullptr)) {
            error = "step " + std::to_string(step + 1) + ": " + error;
            return false;
        }
        for (int64_t i = 0; i < o.batch; ++i) {
            const float *row = &logits[i * info.output_size()];
            correct += std::max_element(row, row + info.output_size()) - row == labels[i];
        }
        const double exposed_before = exchange->exposed_seconds();
        if (!exchange->finish(gradients, loss, correct, error)) {
            error = "step " + std::to_string(step + 1) + ": " + error;
            return false;
        }
        allreduce_time += exchange->exposed_seconds() - exposed_before;
        double t1 = now();
        double norm = qdsl::rt::clipGradientNorm(gradients, o.clip);
        if (!std::isfinite(loss) || !std::isfinite(norm)) {
            error = diverged(epoch, loss);
            return false;
        }
        lr = schedule.at(step);
        state.optimizer.step(model.weights(), gradients, lr);
        model.weightsChanged();
        optimizer_time += now() - t1;
        if (rank0 && (step + 1) % o.log_every == 0)
            metrics.write("step", {{"step", double(step + 1)}, {"loss", loss}, {"lr", lr},
                                   {"grad_norm", norm}});
        if (o.check_replicas) {
            ++step;  // the step taken
            const bool same = check_replicas(error);
            --step;
            if (!same)
                return false;
        }
        if (Processes::distributed())
            update_stop_message();
        return true;
    }

    // The local batch of step `s`: each example from its own generator
    // when augmenting.
    // Runs on the loader's threads: reads only what does not change during
    // an epoch, writes only `out_images` and `out_labels`.
    bool assemble(int64_t epoch, int64_t s, const std::vector<size_t> &ids, int64_t position,
                  float *out_images, int32_t *out_labels, std::string &error) const {
        const qdsl::rt::Augmentation augment = o.augmentation();
        if (augment.pad == 0 && !augment.flip && !augment.resizedCrop) {
            std::mt19937_64 unused(0);
            return qdsl::rt::assembleBatch(train_set, ids, mean, stddev, augment, unused,
                                           out_images, out_labels, error);
        }
        const size_t in = info.input_size();
        for (size_t i = 0; i < ids.size(); ++i) {
            std::seed_seq seeds{uint32_t(o.seed), uint32_t(uint64_t(o.seed) >> 32),
                                uint32_t(epoch), uint32_t(s), uint32_t(uint64_t(s) >> 32),
                                uint32_t(position + static_cast<int64_t>(i))};
            std::mt19937_64 rng(seeds);
            if (!qdsl::rt::assembleBatch(train_set, {ids[i]}, mean, stddev, augment, rng,
                                         out_images + i * in, out_labels + i, error))
                return false;
        }
        return true;
    }

    // Records why the run stops at a loss or gradient that is not finite.
    std::string diverged(int64_t epoch, float loss) {
        if (terminal)
            fmt::print(stderr, "\n");  // leave the bar where it stopped
        std::string what;
        if (!std::isfinite(loss))
            what = std::string("the loss is ") + (std::isnan(loss) ? "NaN" : "infinite");
        else
            for (const auto &[name, g] : gradients)
                if (std::any_of(g.data.begin(), g.data.end(),
                                [](float v) { return !std::isfinite(v); })) {
                    what = "the gradient of '" + name + "' is not finite";
                    break;
                }
        collective_error = true;  // every process holds the same loss and gradients
        if (rank0)
            metrics.write("stopped", {{"step", double(step + 1)}}, {{"reason", what}});
        return "step " + std::to_string(step + 1) + " (epoch " + std::to_string(epoch + 1) +
               "): " + what + "; stopped without updating the weights. The last checkpoint (" +
               (state.epoch > 0 || o.resume ? checkpoint_path : std::string("none yet")) +
               ") is left as it was.";
    }

    // After a whole epoch: the test split, the epoch's line and metrics, a
    // checkpoint.
    bool end_epoch(int64_t epoch, const EpochTotals &totals, std::string &error) {
        evaluated = true;
        if (!evaluate_test(error)) {
            error = "evaluating after epoch " + std::to_string(epoch + 1) + ": " + error;
            return false;
        }
        state.epoch = epoch + 1;
        if (!check_replicas(error))
            return false;
        if (!rank0)
            return save_checkpoint(error);
        const double train_loss = totals.loss_sum / std::max<int64_t>(totals.steps, 1);
        const double train_acc = double(totals.correct) / (totals.steps * o.global_batch);
        const double images_per_second =
            totals.steps * o.global_batch / std::max(totals.seconds, 1e-9);
        std::string line = fmt::format("epoch {}: train loss {:.4f} top-1 {:.2f}%, test loss "
                                       "{:.4f} top-1 {:.2f}%",
                                       epoch + 1, train_loss, 100 * train_acc, eval.loss,
                                       100 * eval.top1);
        if (classes >= 5)
            line += fmt::format(" top-5 {:.2f}%", 100 * eval.top5);
        fmt::print("{}, {:.1f} images/s\n", line, images_per_second);
        std::fflush(stdout);
        std::map<std::string, double> numbers = {
            {"epoch", double(epoch + 1)}, {"step", double(step)},
            {"train_loss", train_loss},   {"train_top1", train_acc},
            {"test_loss", eval.loss},     {"test_top1", eval.top1},
            {"seconds", totals.seconds},  {"images_per_second", images_per_second}};
        if (classes >= 5)
            numbers["test_top5"] = eval.top5;
        metrics.write("epoch", numbers);
        return save_checkpoint(error);
    }

    // The final evaluation (unless an epoch just made it), the profile and
    // the trained weights with the normalisation they expect.
    bool finish(std::string &error) {
        if (!evaluated && !evaluate_test(error)) {
            error = "evaluating: " + error;
            return false;
        }
        if (o.profile && !exchange->measure(error))
            return false;
        if (!rank0)
            return true;
        if (o.profile) {
            print_profile(kernel_time, data_time, optimizer_time, allreduce_time);
            exchange->print_profile();
        }
        qdsl::rt::Metadata metadata = {{qdsl::contract::kModelKey, info.name},
                                       {"qdsl.test_top1", fixed(eval.top1, 6)},
                                       {"qdsl.steps", std::to_string(step)}};
        std::string norm_mean, norm_std;
        for (size_t c = 0; c < mean.size(); ++c) {
            norm_mean += (c ? "," : "") + fixed(mean[c], 6);
            norm_std += (c ? "," : "") + fixed(stddev[c], 6);
        }
        metadata["qdsl.input_mean"] = norm_mean;
        metadata["qdsl.input_std"] = norm_std;
        for (const auto &[name, w] : model.weights())
            if (!std::all_of(w.data.begin(), w.data.end(), [](float v) { return std::isfinite(v); })) {
                error = "weight '" + name + "' is not finite after training: the run diverged; "
                        "no weights were written";
                return false;
            }
        if (!qdsl::rt::writeSafetensors(o.out + "/weights.safetensors", model.weights(), metadata,
                                        error))
            return false;
        fmt::print("train: wrote {}/weights.safetensors (test top-1 {:.2f}%)\n", o.out,
                   100 * eval.top1);
        return true;
    }

    const Options &o;
    qdsl_model::Model &model;
    const qdsl_model::ModelInfo &info;
    const int64_t classes;
    const std::string checkpoint_path;
    const bool terminal = isatty(fileno(stderr));
    const bool rank0 = Processes::rank() == 0;
    std::unique_ptr<GradientExchange> exchange;
    int64_t saved_step = -1;  // of the last checkpoint written or resumed
    bool collective_error = false;
    int setup_status = 0;

    qdsl::rt::Dataset train_set, test_set;
    std::vector<size_t> train_ids, test_ids;
    std::vector<float> mean, stddev;
    int64_t steps_per_epoch = 0, stop_at = 0;
    qdsl::rt::LearningRateSchedule schedule;
    qdsl::rt::Checkpoint state;
    qdsl::rt::MetricsLog metrics;
    int64_t step = 0;
    Evaluation eval;
    bool evaluated = false;

    // The buffers of one step (sized once the data set is known to fit).
    std::vector<float> images, logits;
    std::vector<int32_t> labels;
    qdsl::rt::TensorMap gradients;

    // Where the time goes (--profile).
    qdsl_model::Profile kernel_time;
    double data_time = 0, optimizer_time = 0, allreduce_time = 0;
    qdsl::rt::Clock now = qdsl::rt::steadyClock();
};


int run(int argc, char **argv) {
    Options o;
    if (int status = parse(argc, argv, o); status >= 0)
        return status;
    // One GPU per process on its host (the CPU targets have none to pick).
    if (std::string error; !qdsl_model::Model::selectDevice(Processes::localRank(), error))
        return fatal(error);
    qdsl_model::Model model;
    if (!qdsl_model::Model::canTrain())
        return fail("this project has no training step: compile " + model.info().source +
                    " with qdsl compile --train");
    qdsl_model::Model::setThreads(static_cast<int>(o.threads));
    Processes::setTimeout(o.comm_timeout);
    if (std::string error; !model.setPrecision(o.precision, error))
        return usage("--precision " + error);
    if (!o.gradients.empty())
        return one_step(o, model);
    if (o.benchmark)
        return benchmark(o, model);
    return Trainer(o, model).run();
}

}  // namespace

// Buffers are sized from the data and the flags: program_main ends a run
// whose sizes this machine cannot hold with a message, not an abort.
int main(int argc, char **argv) { return qdsl_program::program_main("train", argc, argv, run); }
