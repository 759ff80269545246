// The data flags that train and search share: which data set, where, which
// subset, which augmentation. One table, so the two programs take the same
// flags with the same checks and draw the same examples from them.
#ifndef QDSL_PROGRAM_DATA_H
#define QDSL_PROGRAM_DATA_H

#include "program_flags.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/Datasets.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace qdsl_program {

// Usage lines of the data flags (`with_test`: train's, which reads the test
// split too).
inline std::string data_usage(bool with_test) {
    std::string text =
        "data:\n"
        "  --dataset fashion-mnist|idx|cifar10   (default fashion-mnist)\n"
        "  --data DIR             fashion-mnist: the IDX files (default: Debian's\n"
        "                         dataset-fashion-mnist); cifar10: data_batch_1..5.bin" +
        std::string(with_test ? "\n                         and test_batch.bin\n" : "\n") +
        (with_test ? "  --train-images F --train-labels F --test-images F --test-labels F   (idx)\n"
                     "  --train-subset N --test-subset N   use N examples (a random subset)\n"
                   : "  --train-images F --train-labels F   (idx)\n"
                     "  --train-subset N       use N training examples (a random subset)\n") +
        "  --subset-seed N (0)    draws the subsets: runs with other --seed values train on\n"
        "                         the same examples\n"
        "  --crop PAD --flip      augmentation: random crop after zero padding, flips\n";
    return text;
}

struct DataOptions {
    std::string dataset = "fashion-mnist", data;
    std::string train_images, train_labels, test_images, test_labels;
    long long train_subset = 0, test_subset = 0, crop = 0, subset_seed = 0;
    bool flip = false;

    qdsl::rt::Augmentation augmentation() const {
        qdsl::rt::Augmentation augment;
        augment.pad = static_cast<int>(crop);
        augment.flip = flip;
        return augment;
    }
};

inline void add_data_flags(FlagTable &table, DataOptions &o, bool with_test) {
    using qdsl::contract::kMaxExamples;
    table.switches["--flip"] = &o.flip;
    table.texts["--dataset"] = &o.dataset;
    table.texts["--data"] = &o.data;
    table.texts["--train-images"] = &o.train_images;
    table.texts["--train-labels"] = &o.train_labels;
    table.integers["--train-subset"] = {&o.train_subset, 1, kMaxExamples};
    table.integers["--crop"] = {&o.crop, 0, 1024};
    table.integers["--subset-seed"] = {&o.subset_seed, 0, std::numeric_limits<long long>::max()};
    if (!with_test)
        return;
    table.texts["--test-images"] = &o.test_images;
    table.texts["--test-labels"] = &o.test_labels;
    table.integers["--test-subset"] = {&o.test_subset, 1, kMaxExamples};
}

// What is wrong with the data flags `given`, or "".
inline std::string check_data_flags(const DataOptions &o, const std::set<std::string> &given,
                                    bool with_test) {
    const bool idx = o.dataset == "idx";
    for (const char *flag : {"--train-images", "--train-labels", "--test-images", "--test-labels"})
        if (given.count(flag) && !idx)
            return std::string(flag) + " goes with --dataset idx";
    const std::string files = with_test ? "--train-images, --train-labels, --test-images and "
                                          "--test-labels"
                                        : "--train-images and --train-labels";
    if (given.count("--data") && idx)
        return "--dataset idx reads " + files + ", not --data";
    if (o.dataset != "fashion-mnist" && o.dataset != "idx" && o.dataset != "cifar10")
        return "--dataset must be fashion-mnist, idx or cifar10, got '" + o.dataset + "'";
    if (idx && (o.train_images.empty() || o.train_labels.empty() ||
                (with_test && (o.test_images.empty() || o.test_labels.empty()))))
        return "--dataset idx needs " + files;
    if (o.dataset == "cifar10" && o.data.empty())
        return "--dataset cifar10 needs --data DIR";
    return "";
}

// Reads one split, "train" or "test". IDX labels are checked against the
// model's `classes` as they are read, so a bad one is named by file and
// example.
inline bool load_split(const DataOptions &o, const std::string &split, qdsl::rt::Dataset &data,
                       int64_t classes, std::string &error) {
    const bool train = split == "train";
    if (o.dataset == "fashion-mnist") {
        std::string dir = o.data.empty() ? qdsl::rt::defaultFashionMnistDirectory() : o.data;
        return qdsl::rt::readFashionMnist(dir, split, data, error);
    }
    if (o.dataset == "idx")
        return qdsl::rt::readIdx(train ? o.train_images : o.test_images,
                                 train ? o.train_labels : o.test_labels, data, error, classes);
    std::vector<std::string> batches;
    if (train)
        for (int i = 1; i <= 5; ++i)
            batches.push_back(o.data + "/data_batch_" + std::to_string(i) + ".bin");
    else
        batches.push_back(o.data + "/test_batch.bin");
    return qdsl::rt::readCifar10(batches, data, error);
}

// The examples a run uses, sorted: all, or a random subset drawn from
// `seed` (--subset-seed, not the run's --seed: runs with different seeds
// compare on the same examples).
inline std::vector<size_t> pick_subset(size_t count, long long subset, uint64_t seed) {
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

}  // namespace qdsl_program

#endif  // QDSL_PROGRAM_DATA_H
