// What the generated training programs (train.cpp, search.cpp) share:
// their errors, the process's memory, and the evaluation of a model on a
// split of a data set (the flag parser, which predict uses too, is in
// program_flags.h).
#ifndef QDSL_PROGRAM_SUPPORT_H
#define QDSL_PROGRAM_SUPPORT_H

#include "program_flags.h"
#include "qdsl_model.h"
#include "runtime/shipped/Datasets.h"
#include "runtime/shipped/Distributed.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace qdsl_program {

// A flag error: "PROGRAM: message" and the usage, said once (rank 0: every
// process got the same flags); returns the exit status 2.
inline int usage_error(const char *program, const char *usage, const std::string &message) {
    if (qdsl::rt::Processes::rank() == 0)
        fmt::print(stderr, "{}: {}\n{}", program, message, usage);
    return 2;
}

// Prints "PROGRAM: message" (after "rank R of N: " when distributed);
// returns 1.
inline int fail(const char *program, const std::string &message) {
    fmt::print(stderr, "{}: {}{}\n", program, qdsl::rt::Processes::prefix(), message);
    return 1;
}

// An error of one process while the others may wait for it in a
// collective: it says why and ends the whole job.
inline int fatal(const char *program, const std::string &message) {
    fail(program, message);
    if (qdsl::rt::Processes::distributed())
        qdsl::rt::Processes::abort(1);
    return 1;
}

// A training program's main (train, search): starts the job's processes
// (one without a launcher), runs `run`, ends them. A buffer this machine
// cannot hold ends the run with a message, not an abort.
inline int program_main(const char *program, int argc, char **argv,
                        int (*run)(int argc, char **argv)) {
    using qdsl::rt::Processes;
    if (std::string error; !Processes::start(argc, argv, program, error)) {
        fail(program, error);
        Processes::stop();
        return 1;
    }
    int status = 1;
    try {
        status = run(argc, argv);
    } catch (const std::bad_alloc &) {
        status = fatal(program, "out of memory: the model, --batch and the data set need more "
                                "memory than this machine gives the process");
    } catch (const std::length_error &) {
        status = fatal(program, "out of memory: a buffer for --batch would exceed what a "
                                "process can address");
    }
    Processes::stop();
    return status;
}

// Ends a run on `error`: one every process met alike (`collective`: a
// diverged step, when all hold the same averaged loss and gradients) is
// said once, by rank 0; one of this process alone ends the job.
inline int end_run(const char *program, const std::string &error, bool collective) {
    if (!collective)
        return fatal(program, error);
    if (qdsl::rt::Processes::rank() == 0)
        fail(program, error);
    return 1;
}

// Whether every process runs with rank 0's flags (`flags`: describe_flags):
// ranks launched with different ones (an MPMD launch) would exchange
// buffers of different sizes. `error` names the first flag that differs.
inline bool same_flags(const std::string &flags, std::string &error) {
    std::string first = flags;
    if (!qdsl::rt::Processes::broadcast(first, error))
        return false;
    if (first == flags)
        return true;
    auto lines = [](const std::string &text) {
        std::map<std::string, std::string> out;
        size_t at = 0;
        for (size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
            std::string line = text.substr(at, end - at);
            size_t space = line.find(' ');
            out[line.substr(0, space)] = space == std::string::npos ? "" : line.substr(space + 1);
        }
        return out;
    };
    auto ours = lines(flags), theirs = lines(first);
    for (const auto &[name, value] : ours)
        if (theirs[name] != value) {
            error = name + " is '" + value + "' here but '" + theirs[name] +
                    "' on process 0: every process of a job needs the same flags";
            return false;
        }
    error = "the flags differ from process 0's: every process of a job needs the same flags";
    return false;
}

// A checksum of a data set's examples and labels, for comparing the copies
// the processes read.
inline uint64_t data_checksum(const qdsl::rt::Dataset &data, uint64_t hash) {
    auto mix = [&hash](const void *data, size_t size) {
        const unsigned char *bytes = static_cast<const unsigned char *>(data);
        for (size_t i = 0; i < size; ++i)
            hash = (hash ^ bytes[i]) * 1099511628211ULL;
    };
    mix(data.pixels.data(), data.pixels.size());
    mix(data.values.data(), data.values.size() * sizeof(float));
    for (const std::string &file : data.files)  // a folder: the files' names
        mix(file.data(), file.size() + 1);
    mix(data.labels.data(), data.labels.size() * sizeof(int32_t));
    return hash;
}

// Whether every process got through a phase (loading data, resuming); when
// not, the processes that failed say why (rank 0 alone when all failed
// alike; nothing for an empty `error`, said already) and `status` is 1.
inline bool agreed(const char *program, bool ok, const std::string &error, int &status) {
    using qdsl::rt::Processes;
    if (!Processes::distributed()) {
        if (!ok)
            status = error.empty() ? 1 : fail(program, error);
        return ok;
    }
    std::vector<double> failures = {ok ? 0.0 : 1.0};
    std::string sum_error;
    if (!Processes::sum(failures, sum_error)) {
        status = fatal(program, sum_error);
        return false;
    }
    if (failures[0] == 0)
        return true;
    const bool all = failures[0] >= Processes::count();
    if (!ok && !error.empty() && (!all || Processes::rank() == 0))
        fmt::print(stderr, "{}: {}{}\n", program, all ? "" : Processes::prefix(), error);
    status = 1;
    return false;
}

// A batch of random examples (standard normal) and labels for timing a
// training step: what train --benchmark and search --benchmark run.
inline void random_batch(const qdsl_model::ModelInfo &info, int batch, uint64_t seed,
                         std::vector<float> &images, std::vector<int32_t> &labels) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    images.resize(info.input_size() * batch);
    for (float &v : images)
        v = normal(rng);
    const uint64_t classes = std::max<uint64_t>(1, info.output_shape.empty() ? 1 : info.output_shape.back());
    labels.resize(batch);
    for (int32_t &l : labels)
        l = static_cast<int32_t>(rng() % classes);
}

// Resident memory now ("VmRSS:") and at its peak ("VmHWM:"), in MB (Linux
// /proc).
inline double memory_mb(const char *key) {
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

struct Evaluation {
    double loss = 0, top1 = 0, top5 = 0;  // means over the examples
    // What the means come from: the sums processes add up before averaging.
    double loss_sum = 0, top1_count = 0, top5_count = 0, examples = 0;

    void average() {
        const double n = std::max(examples, 1.0);
        loss = loss_sum / n;
        top1 = top1_count / n;
        top5 = top5_count / n;
    }
};

// The mean loss and top-1/top-5 accuracy of `model` on `examples` of `data`
// (`what` names the split in errors). Outputs that are not finite are an
// error, not an accuracy: a NaN would count as a correct answer.
inline bool evaluate(qdsl_model::Model &model, const qdsl::rt::Dataset &data,
                     const std::vector<size_t> &examples, int batch,
                     const std::vector<float> &mean, const std::vector<float> &stddev,
                     Evaluation &result, std::string &error, const char *what = "test") {
    const size_t in = model.info().input_size(), classes = model.info().output_size();
    std::vector<float> images(in * batch), logits(classes * batch);
    std::vector<int32_t> labels(batch);
    std::mt19937_64 unused(0);
    double loss = 0;
    size_t top1 = 0, top5 = 0;
    for (size_t start = 0; start < examples.size(); start += batch) {
        size_t n = std::min<size_t>(batch, examples.size() - start);
        std::vector<size_t> ids(examples.begin() + start, examples.begin() + start + n);
        if (!qdsl::rt::assembleBatch(data, ids, mean, stddev, {}, unused, images.data(),
                                     labels.data(), error))
            return false;
        if (!model.forward(images.data(), static_cast<int>(n), logits.data(), error))
            return false;
        for (size_t i = 0; i < n; ++i) {
            const float *row = &logits[i * classes];
            if (!std::all_of(row, row + classes, [](float v) { return std::isfinite(v); })) {
                error = "the model's outputs for " + std::string(what) + " example " +
                        std::to_string(ids[i]) + " are not finite: the weights have diverged";
                return false;
            }
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
    result.loss_sum = loss;
    result.top1_count = double(top1);
    result.top5_count = double(top5);
    result.examples = double(examples.size());
    result.average();
    return true;
}

// evaluate() on this process's contiguous share of `examples`, the sums
// added up over the processes: every process gets the whole split's means.
inline bool evaluate_shared(qdsl_model::Model &model, const qdsl::rt::Dataset &data,
                            const std::vector<size_t> &examples, int batch,
                            const std::vector<float> &mean, const std::vector<float> &stddev,
                            Evaluation &result, std::string &error, const char *what = "test") {
    using qdsl::rt::Processes;
    const size_t n = examples.size(), r = static_cast<size_t>(Processes::rank()),
                 count = static_cast<size_t>(Processes::count());
    std::vector<size_t> shard(examples.begin() + n * r / count,
                              examples.begin() + n * (r + 1) / count);
    if (!evaluate(model, data, shard, batch, mean, stddev, result, error, what))
        return false;
    std::vector<double> sums = {result.loss_sum, result.top1_count, result.top5_count,
                                result.examples};
    if (!Processes::sum(sums, error))
        return false;
    result.loss_sum = sums[0];
    result.top1_count = sums[1];
    result.top5_count = sums[2];
    result.examples = sums[3];
    result.average();
    return true;
}

// The all-reduce of a training step's gradients across the processes
// (nothing with one process): it listens to the model's backward pass,
// starting each bucket's all-reduce as its gradients are final, and waits
// for the rest when the step is done. The loss and the number of correct
// answers of this process's shard ride along and come back as the mean loss
// and the count over the global batch.
class GradientExchange {
public:
    // Where the model averages on its devices (NCCL on the cuda target), it
    // joins their group and only the loss and the count go through MPI.
    bool start(qdsl_model::Model &model, double bucket_mb, std::string &error) {
        using qdsl::rt::Processes;
        if (!Processes::distributed())
            return true;
        std::vector<std::string> names;
        std::vector<size_t> sizes;
        if (qdsl_model::Model::canAverageOnDevice()) {
            // Rank 0 sends its id, or nothing when it could not make one.
            std::string id;
            const bool made =
                Processes::rank() != 0 || qdsl_model::Model::newDeviceGroupId(id, error);
            if (!Processes::broadcast(id, error))
                return false;
            if (id.empty()) {
                if (made)
                    error = "rank 0 could not start the device group (see its message)";
                return false;
            }
            if (!model.joinDeviceGroup(Processes::rank(), Processes::count(), id, error))
                return false;
            on_device = true;
        } else {
            names = qdsl_model::Model::gradientNames();
            for (const std::string &name : names)
                sizes.push_back(model.weights().at(name).data.size());
            model.setGradientListener([this](int gradient, const float *values) {
                if (gradient >= 0)
                    averager->ready(static_cast<size_t>(gradient), values);
                else
                    averager->poll();
            });
        }
        // --bucket-mb 0: one bucket, sent after the backward pass.
        averager = std::make_unique<qdsl::rt::GradientAverager>(
            names, sizes, 2,
            bucket_mb > 0 ? static_cast<size_t>(bucket_mb * 1048576.0) : SIZE_MAX);
        return true;
    }

    void begin() {
        if (averager)
            averager->begin();
    }

    bool finish(qdsl::rt::TensorMap &gradients, float &loss, double &correct,
                std::string &error) {
        if (!averager)
            return true;
        std::vector<float> extras = {loss, static_cast<float>(correct)};
        if (!averager->finish(gradients, extras, error))
            return false;
        loss = extras[0] / static_cast<float>(qdsl::rt::Processes::count());
        correct = extras[1];
        return true;
    }

    // What the all-reduces cost per step, and how much of it the backward
    // pass hid: the wait after the backward pass against the same
    // all-reduces timed alone (once more, here: a collective).
    bool measure(std::string &error) {
        return !averager || on_device || averager->timeAlone(3, error);
    }

    void print_profile() const {
        if (!averager || averager->statistics().steps == 0)
            return;
        if (on_device) {
            fmt::print("gradients averaged across {} processes on the devices (NCCL)\n",
                       qdsl::rt::Processes::count());
            return;
        }
        const auto &st = averager->statistics();
        const double exposed = st.exposed / static_cast<double>(st.steps);
        fmt::print("all-reduce over {} processes: {:.2f} MB per step in {} buckets, {:.0f}% of "
                   "them started during the backward pass; {:.2f} ms per step (least "
                   "{:.2f}) waited for after the backward pass, against {:.2f} ms for the "
                   "same all-reduces alone ({:.0f}% hidden at the least)\n",
                   qdsl::rt::Processes::count(), st.bytes / 1e6, st.buckets,
                   st.bytes > 0 ? 100 * st.early / st.bytes : 0.0, 1e3 * exposed,
                   1e3 * st.exposedBest, 1e3 * st.alone,
                   st.alone > 0 ? 100 * std::max(0.0, 1 - st.exposedBest / st.alone) : 0.0);
    }

    double exposed_seconds() const {
        return averager ? averager->statistics().exposed : 0;
    }
    const qdsl::rt::GradientAverager::Statistics *statistics() const {
        return averager ? &averager->statistics() : nullptr;
    }

private:
    std::unique_ptr<qdsl::rt::GradientAverager> averager;
    bool on_device = false;
};

}  // namespace qdsl_program

#endif  // QDSL_PROGRAM_SUPPORT_H
