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
#include "qdsl_model.h"
#include "runtime/Datasets.h"
#include "runtime/Optimizer.h"
#include "runtime/Progress.h"
#include "runtime/TensorFiles.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

const char *const kUsage =
    "usage: train [options]\n"
    "data:\n"
    "  --dataset fashion-mnist|idx|cifar10   (default fashion-mnist)\n"
    "  --data DIR             fashion-mnist: the IDX files (default: Debian's\n"
    "                         dataset-fashion-mnist); cifar10: data_batch_1..5.bin\n"
    "                         and test_batch.bin\n"
    "  --train-images F --train-labels F --test-images F --test-labels F   (idx)\n"
    "  --train-subset N --test-subset N   use N examples (a seeded random subset)\n"
    "  --crop PAD --flip      augmentation: random crop after zero padding, flips\n"
    "optimisation:\n"
    "  --epochs N (10) --batch N (64) --steps N (stop after step N, with a checkpoint\n"
    "             to --resume from; the schedule still spans the epochs; 0: no limit)\n"
    "  --lr X (4e-3) --min-lr X (1e-6) --warmup-steps N (5% of the steps)\n"
    "  --weight-decay X (0.05) --clip X (5; 0: off) --seed N (0) --threads N (0: all)\n"
    "output:\n"
    "  --out DIR (train-out): checkpoint.safetensors every epoch, weights.safetensors\n"
    "             at the end, metrics.jsonl\n"
    "  --resume   continue from DIR/checkpoint.safetensors\n"
    "  --profile  time per kernel family, data and optimiser, printed at the end\n"
    "measuring the step: --benchmark [--batch N --steps N (3)]: steps of forward,\n"
    "  backward, clipping and AdamW on random data; prints the best step time and\n"
    "  the peak resident memory above the process's before the first step (JSON)\n"
    "checking the step (no training): --gradients G.safetensors --input X.npy\n"
    "  --labels L.npy [--weights W.safetensors]   one step's loss and gradients,\n"
    "  as qdsl run --train writes them\n";

int usage(const std::string &message) {
    std::fprintf(stderr, "train: %s\n%s", message.c_str(), kUsage);
    return 2;
}

struct Options {
    std::string dataset = "fashion-mnist", data;
    std::string train_images, train_labels, test_images, test_labels;
    long long train_subset = 0, test_subset = 0, crop = 0;
    bool flip = false;
    long long epochs = 10, batch = 64, steps = 0, warmup = -1, seed = 0, threads = 0;
    double lr = 4e-3, min_lr = 1e-6, weight_decay = 0.05, clip = 5.0;
    std::string out = "train-out";
    bool resume = false, profile = false, benchmark = false;
    std::string gradients, input, labels, weights;
};

bool parse_int(const std::string &text, long long min, long long &value) {
    char *end = nullptr;
    value = std::strtoll(text.c_str(), &end, 10);
    return end && *end == '\0' && !text.empty() && value >= min;
}

bool parse_double(const std::string &text, double min, double &value) {
    char *end = nullptr;
    value = std::strtod(text.c_str(), &end);
    return end && *end == '\0' && !text.empty() && std::isfinite(value) && value >= min;
}

// Parses argv; returns -1 to go on, else the exit status.
int parse(int argc, char **argv, Options &o) {
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (arg == "--flip") { o.flip = true; continue; }
        if (arg == "--resume") { o.resume = true; continue; }
        if (arg == "--profile") { o.profile = true; continue; }
        if (arg == "--benchmark") { o.benchmark = true; continue; }
        if (i + 1 >= argc)
            return usage(arg + " needs a value");
        std::string v = argv[++i];
        auto integer = [&](long long min, long long &into) {
            if (!parse_int(v, min, into))
                throw std::string(arg + " needs an integer ≥ " + std::to_string(min) +
                                  ", got '" + v + "'");
        };
        auto real = [&](double min, double &into) {
            if (!parse_double(v, min, into))
                throw std::string(arg + " needs a number ≥ " + std::to_string(min) +
                                  ", got '" + v + "'");
        };
        try {
            if (arg == "--dataset") o.dataset = v;
            else if (arg == "--data") o.data = v;
            else if (arg == "--train-images") o.train_images = v;
            else if (arg == "--train-labels") o.train_labels = v;
            else if (arg == "--test-images") o.test_images = v;
            else if (arg == "--test-labels") o.test_labels = v;
            else if (arg == "--train-subset") integer(1, o.train_subset);
            else if (arg == "--test-subset") integer(1, o.test_subset);
            else if (arg == "--crop") integer(0, o.crop);
            else if (arg == "--epochs") integer(1, o.epochs);
            else if (arg == "--batch") integer(1, o.batch);
            else if (arg == "--steps") integer(0, o.steps);
            else if (arg == "--warmup-steps") integer(0, o.warmup);
            else if (arg == "--seed") integer(0, o.seed);
            else if (arg == "--threads") integer(0, o.threads);
            else if (arg == "--lr") real(0, o.lr);
            else if (arg == "--min-lr") real(0, o.min_lr);
            else if (arg == "--weight-decay") real(0, o.weight_decay);
            else if (arg == "--clip") real(0, o.clip);
            else if (arg == "--out") o.out = v;
            else if (arg == "--gradients") o.gradients = v;
            else if (arg == "--input") o.input = v;
            else if (arg == "--labels") o.labels = v;
            else if (arg == "--weights") o.weights = v;
            else return usage("unknown option '" + arg + "'");
        } catch (const std::string &message) {
            return usage(message);
        }
    }
    if (!o.gradients.empty() && (o.input.empty() || o.labels.empty()))
        return usage("--gradients needs --input X.npy and --labels L.npy");
    if (o.gradients.empty() && (!o.input.empty() || !o.labels.empty() || !o.weights.empty()))
        return usage("--input, --labels and --weights go with --gradients");
    if (o.dataset != "fashion-mnist" && o.dataset != "idx" && o.dataset != "cifar10")
        return usage("--dataset must be fashion-mnist, idx or cifar10, got '" + o.dataset + "'");
    if (o.dataset == "idx" && (o.train_images.empty() || o.train_labels.empty() ||
                               o.test_images.empty() || o.test_labels.empty()))
        return usage("--dataset idx needs --train-images, --train-labels, --test-images "
                     "and --test-labels");
    if (o.dataset == "cifar10" && o.data.empty())
        return usage("--dataset cifar10 needs --data DIR");
    return -1;
}

bool load_data(const Options &o, qdsl::rt::Dataset &train, qdsl::rt::Dataset &test,
               std::string &error) {
    if (o.dataset == "fashion-mnist") {
        std::string dir = o.data.empty() ? qdsl::rt::defaultFashionMnistDirectory() : o.data;
        return qdsl::rt::readFashionMnist(dir, "train", train, error) &&
               qdsl::rt::readFashionMnist(dir, "test", test, error);
    }
    if (o.dataset == "idx")
        return qdsl::rt::readIdx(o.train_images, o.train_labels, train, error) &&
               qdsl::rt::readIdx(o.test_images, o.test_labels, test, error, train.classes);
    std::vector<std::string> batches;
    for (int i = 1; i <= 5; ++i)
        batches.push_back(o.data + "/data_batch_" + std::to_string(i) + ".bin");
    return qdsl::rt::readCifar10(batches, train, error) &&
           qdsl::rt::readCifar10({o.data + "/test_batch.bin"}, test, error);
}

// The examples a run uses: all, or a random subset drawn with the seed.
std::vector<size_t> pick(size_t count, long long subset, uint64_t seed) {
    std::vector<size_t> all(count);
    std::iota(all.begin(), all.end(), 0);
    if (subset <= 0 || static_cast<size_t>(subset) >= count)
        return all;
    std::mt19937_64 rng(seed ^ 0x5eed5eedULL);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(static_cast<size_t>(subset));
    std::sort(all.begin(), all.end());
    return all;
}

struct Evaluation {
    double loss = 0, top1 = 0, top5 = 0;
};

bool evaluate(qdsl_model::Model &model, const qdsl::rt::Dataset &data,
              const std::vector<size_t> &examples, int batch,
              const std::vector<float> &mean, const std::vector<float> &stddev,
              Evaluation &result, std::string &error) {
    const size_t in = model.info().input_size(), classes = model.info().output_size();
    std::vector<float> images(in * batch), logits(classes * batch);
    std::vector<int32_t> labels(batch);
    std::mt19937_64 unused(0);
    double loss = 0;
    size_t top1 = 0, top5 = 0;
    for (size_t start = 0; start < examples.size(); start += batch) {
        size_t n = std::min<size_t>(batch, examples.size() - start);
        std::vector<size_t> ids(examples.begin() + start, examples.begin() + start + n);
        qdsl::rt::assembleBatch(data, ids, mean, stddev, {}, unused, images.data(), labels.data());
        if (!model.forward(images.data(), static_cast<int>(n), logits.data(), error))
            return false;
        for (size_t i = 0; i < n; ++i) {
            const float *row = &logits[i * classes];
            double top = *std::max_element(row, row + classes), sum = 0;
            for (size_t k = 0; k < classes; ++k)
                sum += std::exp(row[k] - top);
            loss += top + std::log(sum) - row[labels[i]];
            size_t above = 0;
            for (size_t k = 0; k < classes; ++k)
                above += row[k] > row[labels[i]];
            top1 += above < 1;
            top5 += above < 5;
        }
    }
    result.loss = loss / examples.size();
    result.top1 = double(top1) / examples.size();
    result.top5 = double(top5) / examples.size();
    return true;
}

// Where a run's time went: kernels by family, then the rest of a step.
void print_profile(const qdsl_model::Profile &kernels, double data, double optimizer) {
    std::map<std::string, double> families;
    double total = data + optimizer;
    for (const auto &e : kernels.entries) {
        families[e.family] += e.seconds;
        total += e.seconds;
    }
    families["(data: assembling batches)"] = data;
    families["(AdamW, clipping, repacking)"] = optimizer;
    std::vector<std::pair<double, std::string>> sorted;
    for (const auto &[family, seconds] : families)
        sorted.push_back({seconds, family});
    std::sort(sorted.rbegin(), sorted.rend());
    std::printf("%-32s %10s %7s\n", "kernel family", "seconds", "share");
    for (const auto &[seconds, family] : sorted)
        std::printf("%-32s %10.3f %6.1f%%\n", family.c_str(), seconds,
                    total > 0 ? 100 * seconds / total : 0.0);
}

std::string fixed(double v, int digits) {
    char text[64];
    std::snprintf(text, sizeof text, "%.*f", digits, v);
    return text;
}

// One training step on a given batch, written as `qdsl run --train` writes
// it: the gradients under the weights' names and the loss in the metadata.
int one_step(const Options &o, qdsl_model::Model &model) {
    std::string error;
    auto fail = [&](const std::string &message) {
        std::fprintf(stderr, "train: %s\n", message.c_str());
        return 1;
    };
    const qdsl_model::ModelInfo &info = model.info();
    if (o.weights.empty())
        model.initialize(static_cast<uint64_t>(o.seed));
    else if (!model.loadWeights(o.weights, error))
        return fail(error);
    qdsl::rt::Tensor input, labels;
    if (!qdsl::rt::readNpy(o.input, input, error) || !qdsl::rt::readNpy(o.labels, labels, error))
        return fail(error);
    std::vector<int64_t> example(input.shape.begin() + (input.shape.empty() ? 0 : 1), input.shape.end());
    if (input.shape.empty() || example != info.input_shape)
        return fail("'" + o.input + "' has shape " + qdsl::rt::describeShape(input.shape) +
                    "; expected [N] + " + qdsl::rt::describeShape(info.input_shape));
    const int batch = static_cast<int>(input.shape[0]);
    if (labels.shape != std::vector<int64_t>{batch})
        return fail("'" + o.labels + "' has shape " + qdsl::rt::describeShape(labels.shape) +
                    "; expected one label per example: [" + std::to_string(batch) + "]");
    std::vector<int32_t> classes(batch);
    for (int i = 0; i < batch; ++i) {
        float v = labels.data[i];
        if (v != std::floor(v) || v < 0 || v > 1e9f)
            return fail("'" + o.labels + "': label " + std::to_string(i) + " is " +
                        std::to_string(v) + ", not a class index");
        classes[i] = static_cast<int32_t>(v);
    }
    float loss = 0;
    std::vector<float> logits(info.output_size() * batch);
    qdsl::rt::TensorMap gradients;
    if (!model.trainStep(input.data.data(), classes.data(), batch, loss, logits.data(), gradients,
                         error))
        return fail(error);
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", loss);
    qdsl::rt::Metadata metadata = {{"qdsl.model", info.name}, {"qdsl.loss", text}};
    if (!qdsl::rt::writeSafetensors(o.gradients, gradients, metadata, error))
        return fail(error);
    std::printf("loss %s\n", text);
    return 0;
}

// Resident memory now and at its peak, in MB (Linux /proc).
double memory_mb(const char *key) {
    std::FILE *f = std::fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    double kb = 0;
    size_t n = std::strlen(key);
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, key, n) == 0)
            kb = std::atof(line + n);
    std::fclose(f);
    return kb / 1024;
}

// The peer of bench/pytorch_training.py's step: the same work (forward,
// loss, backward, clipping, AdamW) on random data, timed and measured the
// same way.
int benchmark(const Options &o, qdsl_model::Model &model) {
    const qdsl_model::ModelInfo &info = model.info();
    const int batch = static_cast<int>(o.batch);
    const int64_t classes = info.output_shape.empty() ? 1 : info.output_shape.back();
    model.initialize(static_cast<uint64_t>(o.seed));
    std::mt19937_64 rng(static_cast<uint64_t>(o.seed));
    std::normal_distribution<float> normal;
    std::vector<float> images(info.input_size() * batch), logits(info.output_size() * batch);
    for (float &v : images)
        v = normal(rng);
    std::vector<int32_t> labels(batch);
    for (int32_t &l : labels)
        l = static_cast<int32_t>(rng() % static_cast<uint64_t>(classes));
    qdsl::rt::AdamWOptions adam;
    adam.learningRate = o.lr;
    adam.weightDecay = o.weight_decay;
    qdsl::rt::AdamW optimizer(adam);
    qdsl::rt::TensorMap gradients;
    std::string error;
    const double before = memory_mb("VmRSS:");
    double best = 1e300;
    const long long steps = o.steps > 0 ? o.steps : 3;
    auto clock = qdsl::rt::steadyClock();
    qdsl_model::Profile kernel_time;
    double optimizer_time = 0;
    for (long long s = 0; s < steps; ++s) {
        double start = clock();
        float loss = 0;
        if (!model.trainStep(images.data(), labels.data(), batch, loss, logits.data(), gradients,
                             error, o.profile ? &kernel_time : nullptr)) {
            std::fprintf(stderr, "train: %s\n", error.c_str());
            return 1;
        }
        const double kernels_done = clock();
        qdsl::rt::clipGradientNorm(gradients, o.clip);
        optimizer.step(model.weights(), gradients, o.lr);
        model.weightsChanged();
        optimizer_time += clock() - kernels_done;
        best = std::min(best, clock() - start);
    }
    std::printf("{\"model\": \"%s\", \"batch\": %d, \"steps\": %lld, \"step_s\": %.6f, "
                "\"peak_over_start_mb\": %.1f, \"arena_mb\": %.1f}\n",
                info.name.c_str(), batch, steps, best, memory_mb("VmHWM:") - before,
                model.trainingArenaBytes() / 1048576.0);
    if (o.profile)
        print_profile(kernel_time, 0, optimizer_time);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    Options o;
    if (int status = parse(argc, argv, o); status >= 0)
        return status;
    auto fail = [](const std::string &message) {
        std::fprintf(stderr, "train: %s\n", message.c_str());
        return 1;
    };

    qdsl_model::Model model;
    const qdsl_model::ModelInfo &info = model.info();
    if (!qdsl_model::Model::canTrain())
        return fail("this project has no training step: compile " + info.source +
                    " with qdsl compile --train");
    qdsl_model::Model::setThreads(static_cast<int>(o.threads));
    if (!o.gradients.empty())
        return one_step(o, model);
    if (o.benchmark)
        return benchmark(o, model);

    std::string error;
    qdsl::rt::Dataset train_set, test_set;
    if (!load_data(o, train_set, test_set, error))
        return fail(error);
    const std::vector<int64_t> example = {train_set.height, train_set.width, train_set.channels};
    if (example != info.input_shape || test_set.exampleBytes() != train_set.exampleBytes())
        return fail("the data set's images are " + qdsl::rt::describeShape(example) + " but " +
                    info.name + " takes " + qdsl::rt::describeShape(info.input_shape));
    const int64_t classes = info.output_shape.empty() ? 1 : info.output_shape.back();
    if (train_set.classes > classes || test_set.classes > classes)
        return fail("the data set has " + std::to_string(std::max(train_set.classes, test_set.classes)) +
                    " classes but " + info.name + " has " + std::to_string(classes) + " outputs");

    const std::vector<size_t> train_ids = pick(train_set.count, o.train_subset, o.seed);
    const std::vector<size_t> test_ids = pick(test_set.count, o.test_subset, o.seed + 1);
    if (train_ids.size() < static_cast<size_t>(o.batch))
        return fail("--batch " + std::to_string(o.batch) + " is larger than the " +
                    std::to_string(train_ids.size()) + " training examples");
    std::vector<float> mean, stddev;
    qdsl::rt::channelStatistics(train_set, mean, stddev);

    // Whole batches only: every step sees the same batch size.
    const int64_t steps_per_epoch = static_cast<int64_t>(train_ids.size()) / o.batch;
    // The schedule spans every epoch; --steps only stops the run early.
    const int64_t total_steps = steps_per_epoch * o.epochs;
    const int64_t stop_at = o.steps > 0 ? std::min<int64_t>(total_steps, o.steps) : total_steps;
    qdsl::rt::LearningRateSchedule schedule;
    schedule.peak = o.lr;
    schedule.minimum = std::min(o.min_lr, o.lr);
    schedule.totalSteps = total_steps;
    schedule.warmupSteps = o.warmup >= 0 ? o.warmup : total_steps / 20;

    qdsl::rt::AdamWOptions adam;
    adam.learningRate = o.lr;
    adam.weightDecay = o.weight_decay;
    qdsl::rt::Checkpoint state;
    state.optimizer = qdsl::rt::AdamW(adam);
    state.seed = static_cast<uint64_t>(o.seed);
    state.model = info.name;
    const std::string checkpoint_path = o.out + "/checkpoint.safetensors";
    if (o.resume) {
        if (!qdsl::rt::loadCheckpoint(checkpoint_path, state, error))
            return fail(error);
        if (state.model != info.name)
            return fail("'" + checkpoint_path + "' is a checkpoint of " + state.model + ", not " +
                        info.name);
        if (state.seed != static_cast<uint64_t>(o.seed))
            return fail("'" + checkpoint_path + "' was trained with --seed " +
                        std::to_string(state.seed) + "; resume with the same seed");
        if (state.step < state.epoch * steps_per_epoch ||
            state.step >= (state.epoch + 1) * steps_per_epoch)
            return fail("'" + checkpoint_path + "' stopped at step " + std::to_string(state.step) +
                        " after " + std::to_string(state.epoch) + " epochs, which does not fit " +
                        std::to_string(steps_per_epoch) +
                        " steps per epoch: resume with the --batch and --train-subset it was "
                        "trained with");
        if (!model.setWeights(state.weights, checkpoint_path, error))
            return fail(error);
    } else {
        std::error_code ec;
        std::filesystem::create_directories(o.out, ec);
        if (ec)
            return fail("cannot create '" + o.out + "': " + ec.message());
        model.initialize(static_cast<uint64_t>(o.seed));
    }
    qdsl::rt::MetricsLog metrics;
    if (!metrics.open(o.out + "/metrics.jsonl", error))
        return fail(error);

    std::printf("train: %s (%s), %zu training and %zu test examples, batch %lld, %lld steps "
                "(%lld per epoch), %s\n",
                info.name.c_str(), info.source.c_str(), train_ids.size(), test_ids.size(),
                o.batch, static_cast<long long>(stop_at),
                static_cast<long long>(steps_per_epoch), qdsl_model::Model::trainingSetup());
    if (o.resume)
        std::printf("train: resumed from %s after epoch %lld, step %lld\n",
                    checkpoint_path.c_str(), static_cast<long long>(state.epoch),
                    static_cast<long long>(state.step));
    std::fflush(stdout);

    const size_t in = info.input_size();
    std::vector<float> images(in * o.batch), logits(info.output_size() * o.batch);
    std::vector<int32_t> labels(o.batch);
    qdsl::rt::TensorMap gradients;
    qdsl::rt::Augmentation augment;
    augment.pad = static_cast<int>(o.crop);
    augment.flip = o.flip;
    const bool terminal = isatty(fileno(stderr));
    qdsl_model::Profile kernel_time;
    double data_time = 0, optimizer_time = 0;
    auto now = qdsl::rt::steadyClock();
    int64_t step = state.step;
    Evaluation eval;
    bool evaluated = false;
    for (int64_t epoch = state.epoch; epoch < o.epochs && step < stop_at; ++epoch) {
        // This epoch's order, and each step's augmentation, from the seed,
        // the epoch and the step alone: a resumed run draws the same.
        std::mt19937_64 shuffle_rng(static_cast<uint64_t>(o.seed) * 1000003ULL + epoch);
        std::vector<size_t> order = train_ids;
        std::shuffle(order.begin(), order.end(), shuffle_rng);
        const int64_t first = step - epoch * steps_per_epoch;
        const int64_t last = std::min(steps_per_epoch, stop_at - epoch * steps_per_epoch);
        const int64_t epoch_steps = last - first;
        qdsl::rt::ProgressBar bar(std::cerr, terminal,
                                  "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                                  epoch_steps);
        double loss_sum = 0, start = qdsl::rt::steadyClock()();
        size_t correct = 0;
        for (int64_t s = first; s < last; ++s, ++step) {
            std::vector<size_t> ids(order.begin() + s * o.batch, order.begin() + (s + 1) * o.batch);
            double t0 = now();
            std::seed_seq seeds{uint32_t(o.seed), uint32_t(uint64_t(o.seed) >> 32), uint32_t(epoch),
                                uint32_t(s)};
            std::mt19937_64 rng(seeds);
            qdsl::rt::assembleBatch(train_set, ids, mean, stddev, augment, rng, images.data(),
                                    labels.data());
            data_time += now() - t0;
            float loss = 0;
            if (!model.trainStep(images.data(), labels.data(), static_cast<int>(o.batch), loss,
                                 logits.data(), gradients, error,
                                 o.profile ? &kernel_time : nullptr))
                return fail("step " + std::to_string(step + 1) + ": " + error);
            double t1 = now();
            double norm = qdsl::rt::clipGradientNorm(gradients, o.clip);
            if (!std::isfinite(loss) || !std::isfinite(norm)) {
                if (terminal)
                    std::cerr << "\n";  // leave the bar where it stopped
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
                metrics.write("stopped", {{"step", double(step + 1)}}, {{"reason", what}});
                return fail("step " + std::to_string(step + 1) + " (epoch " +
                            std::to_string(epoch + 1) + "): " + what +
                            "; stopped without updating the weights. The last checkpoint (" +
                            (state.epoch > 0 || o.resume ? checkpoint_path : std::string("none yet")) +
                            ") is left as it was.");
            }
            double lr = schedule.at(step);
            state.optimizer.step(model.weights(), gradients, lr);
            model.weightsChanged();
            optimizer_time += now() - t1;
            loss_sum += loss;
            for (int64_t i = 0; i < o.batch; ++i) {
                const float *row = &logits[i * info.output_size()];
                correct += std::max_element(row, row + info.output_size()) - row == labels[i];
            }
            bar.update(s + 1 - first,
                       "loss " + fixed(loss_sum / (s + 1 - first), 4) + " lr " + fixed(lr * 1e3, 3) + "e-3");
            if ((step + 1) % 50 == 0)
                metrics.write("step", {{"step", double(step + 1)}, {"loss", loss}, {"lr", lr},
                                       {"grad_norm", norm}});
        }
        double seconds = qdsl::rt::steadyClock()() - start;
        bar.finish("loss " + fixed(loss_sum / std::max<int64_t>(epoch_steps, 1), 4));
        state.weights = model.weights();
        state.step = step;
        if (last < steps_per_epoch) {
            // Stopped by --steps inside the epoch: a checkpoint that
            // --resume continues from this step.
            if (!qdsl::rt::saveCheckpoint(checkpoint_path, state, error))
                return fail(error);
            std::printf("stopped after step %lld (--steps), in epoch %lld; --resume continues "
                        "from %s\n",
                        static_cast<long long>(step), static_cast<long long>(epoch + 1),
                        checkpoint_path.c_str());
            break;
        }
        evaluated = true;
        if (!evaluate(model, test_set, test_ids, static_cast<int>(o.batch), mean, stddev, eval, error))
            return fail("evaluating after epoch " + std::to_string(epoch + 1) + ": " + error);
        double train_loss = loss_sum / std::max<int64_t>(epoch_steps, 1);
        double train_acc = double(correct) / (epoch_steps * o.batch);
        std::printf("epoch %lld: train loss %.4f top-1 %.2f%%, test loss %.4f top-1 %.2f%%",
                    static_cast<long long>(epoch + 1), train_loss, 100 * train_acc, eval.loss,
                    100 * eval.top1);
        if (classes >= 5)
            std::printf(" top-5 %.2f%%", 100 * eval.top5);
        std::printf(", %.1f images/s\n", epoch_steps * o.batch / std::max(seconds, 1e-9));
        std::fflush(stdout);
        std::map<std::string, double> numbers = {
            {"epoch", double(epoch + 1)}, {"step", double(step)}, {"train_loss", train_loss},
            {"train_top1", train_acc}, {"test_loss", eval.loss}, {"test_top1", eval.top1},
            {"seconds", seconds}, {"images_per_second", epoch_steps * o.batch / std::max(seconds, 1e-9)}};
        if (classes >= 5)
            numbers["test_top5"] = eval.top5;
        metrics.write("epoch", numbers);

        state.epoch = epoch + 1;
        if (!qdsl::rt::saveCheckpoint(checkpoint_path, state, error))
            return fail(error);
    }

    if (!evaluated &&
        !evaluate(model, test_set, test_ids, static_cast<int>(o.batch), mean, stddev, eval, error))
        return fail("evaluating: " + error);
    if (o.profile)
        print_profile(kernel_time, data_time, optimizer_time);
    qdsl::rt::Metadata metadata = {{"qdsl.model", info.name},
                                   {"qdsl.test_top1", fixed(eval.top1, 6)},
                                   {"qdsl.steps", std::to_string(step)}};
    std::string norm_mean, norm_std;
    for (size_t c = 0; c < mean.size(); ++c) {
        norm_mean += (c ? "," : "") + fixed(mean[c], 6);
        norm_std += (c ? "," : "") + fixed(stddev[c], 6);
    }
    metadata["qdsl.input_mean"] = norm_mean;
    metadata["qdsl.input_std"] = norm_std;
    if (!qdsl::rt::writeSafetensors(o.out + "/weights.safetensors", model.weights(), metadata, error))
        return fail(error);
    std::printf("train: wrote %s/weights.safetensors (test top-1 %.2f%%)\n", o.out.c_str(),
                100 * eval.top1);
    return 0;
}
