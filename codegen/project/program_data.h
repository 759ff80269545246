// The data flags that train and search share: which data set, where, which
// subset, which augmentation. One table, so the two programs take the same
// flags with the same checks and draw the same examples from them.
#ifndef QDSL_PROGRAM_DATA_H
#define QDSL_PROGRAM_DATA_H

#include "program_flags.h"
#include "runtime/shipped/Contract.h"
#include "runtime/shipped/Datasets.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
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
        "  --dataset fashion-mnist|idx|cifar10|npy|folder   (default fashion-mnist)\n"
        "  --data DIR             fashion-mnist: the IDX files (default: Debian's\n"
        "                         dataset-fashion-mnist); cifar10: data_batch_1..5.bin" +
        std::string(with_test ? "\n                         and test_batch.bin" : "") +
        "; folder: DIR/train" +
        std::string(with_test ? " and DIR/val (or DIR/test)" : "") +
        ",\n                         one subfolder of .jpg/.png images per class\n" +
        (with_test ? "  --train-images F --train-labels F --test-images F --test-labels F   (idx, npy)\n"
                     "  --train-subset N --test-subset N   use N examples (a random subset)\n"
                   : "  --train-images F --train-labels F   (idx, npy)\n"
                     "  --train-subset N       use N training examples (a random subset)\n") +
        "  --subset-seed N (0)    draws the subsets: runs with other --seed values train on\n"
        "                         the same examples\n"
        "  --crop PAD --flip      augmentation: random crop after zero padding, flips; a\n"
        "                         folder trains on RandomResizedCrop boxes (--eval-crop: the\n"
        "                         evaluation's centre crop instead)\n"
        "  --mean M[,M,M] --std S[,S,S]   normalisation per channel of pixels in [0, 1]\n"
        "                         (default: the training split's; a folder: ImageNet's)\n"
        "  --loader-threads N (1) threads that decode and assemble batches ahead of the step\n";
    return text;
}

struct DataOptions {
    std::string dataset = "fashion-mnist", data, mean, std;
    std::string train_images, train_labels, test_images, test_labels;
    long long train_subset = 0, test_subset = 0, crop = 0, subset_seed = 0, loader_threads = 1;
    bool flip = false, eval_crop = false;

    qdsl::rt::Augmentation augmentation() const {
        qdsl::rt::Augmentation augment;
        augment.pad = static_cast<int>(crop);
        augment.flip = flip;
        augment.resizedCrop = dataset == "folder" && !eval_crop;
        return augment;
    }
};

inline void add_data_flags(FlagTable &table, DataOptions &o, bool with_test) {
    using qdsl::contract::kMaxExamples;
    table.switches["--flip"] = &o.flip;
    table.switches["--eval-crop"] = &o.eval_crop;
    table.texts["--dataset"] = &o.dataset;
    table.texts["--mean"] = &o.mean;
    table.texts["--std"] = &o.std;
    table.integers["--loader-threads"] = {&o.loader_threads, 1, 64};
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
    // idx and npy read named files; the others a folder.
    const bool arrays = o.dataset == "idx" || o.dataset == "npy";
    for (const char *flag : {"--train-images", "--train-labels", "--test-images", "--test-labels"})
        if (given.count(flag) && !arrays)
            return std::string(flag) + " goes with --dataset idx or npy";
    const std::string files = with_test ? "--train-images, --train-labels, --test-images and "
                                          "--test-labels"
                                        : "--train-images and --train-labels";
    if (given.count("--data") && arrays)
        return "--dataset " + o.dataset + " reads " + files + ", not --data";
    if (o.dataset != "fashion-mnist" && o.dataset != "idx" && o.dataset != "cifar10" &&
        o.dataset != "npy" && o.dataset != "folder")
        return "--dataset must be fashion-mnist, idx, cifar10, npy or folder, got '" +
               o.dataset + "'";
    if (arrays && (o.train_images.empty() || o.train_labels.empty() ||
                   (with_test && (o.test_images.empty() || o.test_labels.empty()))))
        return "--dataset " + o.dataset + " needs " + files;
    if ((o.dataset == "cifar10" || o.dataset == "folder") && o.data.empty())
        return "--dataset " + o.dataset + " needs --data DIR";
    if (o.dataset == "folder" && given.count("--crop"))
        return "--crop pads and crops images of one size; --dataset folder trains on "
               "RandomResizedCrop boxes (or, with --eval-crop, the centre crop)";
    if (o.dataset != "folder" && given.count("--eval-crop"))
        return "--eval-crop goes with --dataset folder";
    if (given.count("--mean") != given.count("--std"))
        return "--mean and --std go together";
    return "";
}

// Reads one split, "train" or "test", for a model that takes `input`
// (H, W, C). IDX and npy labels are checked against the model's `classes`
// as they are read, so a bad one is named by file and example.
inline bool load_split(const DataOptions &o, const std::string &split, qdsl::rt::Dataset &data,
                       int64_t classes, const std::vector<int64_t> &input, std::string &error) {
    const bool train = split == "train";
    if (o.dataset == "fashion-mnist") {
        std::string dir = o.data.empty() ? qdsl::rt::defaultFashionMnistDirectory() : o.data;
        return qdsl::rt::readFashionMnist(dir, split, data, error);
    }
    if (o.dataset == "idx")
        return qdsl::rt::readIdx(train ? o.train_images : o.test_images,
                                 train ? o.train_labels : o.test_labels, data, error, classes);
    if (o.dataset == "npy")
        return qdsl::rt::readNpyDataset(train ? o.train_images : o.test_images,
                                        train ? o.train_labels : o.test_labels, data, error,
                                        classes);
    if (o.dataset == "folder") {
        if (input.size() != 3 || (input[2] != 1 && input[2] != 3)) {
            error = "--dataset folder decodes images to grey or RGB; the model takes " +
                    qdsl::rt::describeShape(input);
            return false;
        }
        // The evaluation split: val/, else test/ (never throws: a link loop or
        // an unreadable folder reads as absent).
        std::string dir = o.data + "/train";
        if (!train) {
            std::error_code ec;
            dir = o.data + "/val";
            if (!std::filesystem::is_directory(dir, ec))
                dir = o.data + "/test";
            if (!std::filesystem::is_directory(dir, ec)) {
                error = o.data + ": holds no val/ (or test/) folder of images to evaluate on";
                return false;
            }
        }
        return qdsl::rt::readImageFolder(dir, input[0], input[1], input[2], data, error);
    }
    std::vector<std::string> batches;
    if (train)
        for (int i = 1; i <= 5; ++i)
            batches.push_back(o.data + "/data_batch_" + std::to_string(i) + ".bin");
    else
        batches.push_back(o.data + "/test_batch.bin");
    return qdsl::rt::readCifar10(batches, data, error);
}

// Parses "0.5" or "0.485,0.456,0.406" into one value per channel.
inline bool parse_channels(const std::string &flag, const std::string &text, int64_t channels,
                           bool positive, std::vector<float> &values, std::string &error) {
    // Ranges a float holds: a standard deviation from 1e-30 (no 0 after the
    // cast), a mean within ±1e30.
    const double min = positive ? 1e-30 : -1e30, max = 1e30;
    values.clear();
    for (const std::string &part : split_commas(text)) {
        double v = 0;
        if (!parse_double(part, min, max, v)) {
            error = flag + " takes numbers from " + fmt::format("{}", min) + " to " +
                    fmt::format("{}", max) +
                    " separated by commas, one per channel (or one for all), got '" + text + "'";
            return false;
        }
        values.push_back(static_cast<float>(v));
    }
    if (values.size() == 1)
        values.assign(static_cast<size_t>(channels), values[0]);
    if (values.size() != static_cast<size_t>(channels)) {
        error = flag + " has " + std::to_string(values.size()) + " values; the images have " +
                std::to_string(channels) + " channels";
        return false;
    }
    return true;
}

// The normalisation of a run: --mean/--std, else the training split's own.
inline bool normalisation(const DataOptions &o, const qdsl::rt::Dataset &train,
                          std::vector<float> &mean, std::vector<float> &stddev,
                          std::string &error) {
    if (o.mean.empty()) {
        qdsl::rt::channelStatistics(train, mean, stddev);
        return true;
    }
    return parse_channels("--mean", o.mean, train.channels, false, mean, error) &&
           parse_channels("--std", o.std, train.channels, true, stddev, error);
}

// What a run prints about a folder: its classes and what it left out.
inline std::string describe_folder(const qdsl::rt::Dataset &data, const std::string &what) {
    if (!data.fromFiles())
        return "";
    std::string names;
    for (size_t i = 0; i < data.classNames.size(); ++i) {
        if (i == 12 && data.classNames.size() > 16) {
            names += ", ... (" + std::to_string(data.classNames.size() - 12) + " more)";
            break;
        }
        names += (i ? ", " : "") + data.classNames[i];
    }
    return what + ": " + std::to_string(data.count) + " images in " +
           std::to_string(data.classNames.size()) + " classes: " + names +
           (data.skippedFiles ? "; skipped " + std::to_string(data.skippedFiles) +
                                    " files not named .jpg, .jpeg or .png"
                              : std::string()) +
           "\n";
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
