//===- Options.cpp - the command line of qdsl -----------------------------===//
//
// Every subcommand and flag of qdsl, defined once (Options.h declares them).

#include "Options.h"
#include "Search.h"

#include "codegen/Targets.h"

using namespace llvm;

namespace qdsl::tool {

cl::SubCommand compileCommand("compile", "Compile a .qd file");
cl::SubCommand statsCommand("stats", "Print parameters, MACs and activation memory");
cl::SubCommand buildCommand("build", "Build a project written by qdsl compile");
cl::SubCommand runCommand("run", "Run a model with the reference executor");
cl::SubCommand weightsCommand(
    "weights", "Initialise, import or export weights (init, import, export)");
cl::SubCommand estimateCommand("estimate",
                               "Predict a model's latency on a device from its profile");
cl::SubCommand profileCommand(
    "profile", "Measure kernels of a search space on this machine and fit a device profile");
cl::SubCommand searchCommand(
    "search", "Search a space for the most accurate architecture within its latency limits");
cl::SubCommand exportCommand(
    "export", "Write a model as an ONNX file or a PyTorch module (docs/INTEROP.md)");
cl::SubCommand machineCommand(
    "machine", "Describe this machine as a profile made here would record it");

cl::OptionCategory category("qdsl options");

#define QDSL_FRONTEND_COMMANDS                                                 \
  cl::sub(compileCommand), cl::sub(statsCommand), cl::sub(runCommand),         \
      cl::sub(weightsCommand), cl::sub(estimateCommand), cl::sub(profileCommand),  \
      cl::sub(searchCommand), cl::sub(exportCommand)

cl::opt<std::string> weightsAction(cl::Positional, cl::desc("<init|import|export>"),
                                   cl::Required, cl::sub(weightsCommand),
                                   cl::cat(category));

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.qd>"), cl::Required,
                               QDSL_FRONTEND_COMMANDS, cl::cat(category));

cl::opt<std::string> buildDirectory(cl::Positional, cl::desc("<project directory>"),
                                    cl::Required, cl::sub(buildCommand),
                                    cl::cat(category));

cl::opt<std::string> weightsSource(cl::Positional,
                                   cl::desc("<weights.safetensors to import or export>"),
                                   cl::Optional, cl::sub(weightsCommand),
                                   cl::cat(category));

cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::MLIR),
    cl::values(clEnumValN(Emit::AST, "ast", "the syntax tree"),
               clEnumValN(Emit::MLIR, "mlir", "the quadra dialect (in kernels with --target)"),
               clEnumValN(Emit::Kernels, "kernels", "the kernels of each model and their configurations"),
               clEnumValN(Emit::Project, "project", "a CMake project in the directory -o (the default with --target, and with --train -o)"),
               clEnumValN(Emit::CostModel, "cost-model", "C++ source of a search space's expected latency and its gradient (needs --device)"),
               clEnumValN(Emit::QD, "qd", "the architecture --choices picks from a search space, as a model file")),
    cl::sub(compileCommand), cl::cat(category));

cl::opt<std::string> target("target",
                            cl::desc("Code generation target: x86-64-avx2, x86-64-avx512, arm64-a76, "
                                     "opencl, cuda, or host (the widest x86 target this "
                                     "CPU runs)"),
                            cl::value_desc("name"), cl::sub(compileCommand),
                            cl::sub(profileCommand), cl::sub(machineCommand),
                            cl::cat(category));

cl::opt<std::string> cudaArch(
    "cuda-arch",
    cl::desc("--target=cuda: the GPU architectures to build for, as CMake's "
             "CUDA_ARCHITECTURES (80, 90, 80;90; default 80;90)"),
    cl::value_desc("list"), cl::sub(compileCommand), cl::cat(category));

cl::opt<std::string> autoschedule(
    "autoschedule",
    cl::desc("Schedule kernels with a Halide autoscheduler instead of qdsl's "
             "schedules (Mullapudi2016, Li2018, Adams2019)"),
    cl::value_desc("name"), cl::sub(compileCommand), cl::cat(category));

cl::opt<std::string> choices(
    "choices",
    cl::desc("Fix every choice of a search space: one candidate index per "
             "choice in order (0,3,1,...), or seed:N for a random draw"),
    cl::value_desc("picks"), QDSL_FRONTEND_COMMANDS, cl::cat(category));

cl::opt<std::string> kernelCache(
    "kernel-cache",
    cl::desc("Directory of the per-user cache of compiled kernels ('none' "
             "disables it; default $QDSL_KERNEL_CACHE, else ~/.cache/qdsl/kernels)"),
    cl::value_desc("dir"), cl::sub(compileCommand), cl::sub(profileCommand),
    cl::cat(category));

cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout) or project directory"),
                                cl::value_desc("path"), cl::init("-"),
                                QDSL_FRONTEND_COMMANDS, cl::cat(category));

cl::list<std::string> modelNames("model",
                                 cl::desc("Model or space to use (default: all in the file)"),
                                 cl::value_desc("name"), QDSL_FRONTEND_COMMANDS,
                                 cl::cat(category));

cl::list<std::string> defines("D", cl::desc("Override a model parameter"),
                              cl::value_desc("name=value"), cl::Prefix,
                              QDSL_FRONTEND_COMMANDS, cl::cat(category));

cl::list<std::string> includeDirs("I", cl::desc("Directory to search for imports"),
                                  cl::value_desc("dir"), cl::Prefix,
                                  QDSL_FRONTEND_COMMANDS, cl::cat(category));

cl::opt<bool> expandQDWConv(
    "expand-qdwconv",
    cl::desc("Expand quadratic convolutions into three depthwise convolutions, "
             "a product and a sum before forming kernels (the unfused baseline)"),
    cl::sub(compileCommand), cl::cat(category));

cl::opt<bool> debugInfo("debug-info",
                        cl::desc("Print source locations and layer names in MLIR"),
                        cl::sub(compileCommand), cl::cat(category));

cl::opt<bool> splitInputFile("split-input-file",
                             cl::desc("Compile each '// -----' separated chunk on its own"),
                             cl::sub(compileCommand), cl::sub(statsCommand),
                             cl::cat(category));

cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check diagnostics against expected-* comments in the input"),
    cl::sub(compileCommand), cl::sub(statsCommand), cl::cat(category));

cl::opt<int64_t> batch("batch", cl::desc("Batch size for the counts or the latency"),
                       cl::init(1), cl::sub(statsCommand), cl::sub(estimateCommand),
                       cl::sub(compileCommand), cl::cat(category));

cl::opt<bool> json("json", cl::desc("Print JSON instead of a table"),
                   cl::sub(statsCommand), cl::sub(estimateCommand), cl::sub(machineCommand),
                   cl::cat(category));

cl::opt<std::string> deviceProfile(
    "device", cl::desc("Device profile (JSON, e.g. profiles/host-x86-64-avx2.json)"),
    cl::value_desc("profile.json"), cl::sub(estimateCommand), cl::sub(compileCommand),
    cl::sub(searchCommand), cl::cat(category));

cl::opt<bool> fittedOnly(
    "fitted-only",
    cl::desc("Predict every kernel with its family's fitted predictor, ignoring the "
             "profile's measured medians of the same configuration"),
    cl::sub(estimateCommand), cl::sub(compileCommand), cl::cat(category));

cl::opt<std::string> profileWork(
    "work", cl::desc("Directory for the projects profiling builds (default: a fresh "
                     "temporary directory, removed afterwards)"),
    cl::value_desc("dir"), cl::sub(profileCommand), cl::cat(category));
cl::opt<unsigned> profileArchitectures(
    "architectures", cl::desc("Random architectures of the space to time, beyond "
                              "the ones that cover every candidate"),
    cl::init(8), cl::sub(profileCommand), cl::cat(category));
cl::opt<std::string> profileBatches("batches", cl::desc("Batch sizes to time, e.g. 1,8"),
                                    cl::init("1,8"), cl::sub(profileCommand),
                                    cl::cat(category));
cl::opt<unsigned> profileRepeat("repeat", cl::desc("Timed runs per architecture, batch and round (at least 5)"),
                                cl::init(5), cl::sub(profileCommand), cl::cat(category));
cl::opt<unsigned> profileRounds(
    "rounds", cl::desc("Rounds over all architectures; each times every one --repeat times "
                       "and the round with the fastest median is kept"),
    cl::init(8), cl::sub(profileCommand), cl::cat(category));
cl::opt<unsigned> profileThreads("threads", cl::desc("Worker threads (pinned to CPUs 0..N-1)"),
                                 cl::init(2), cl::sub(profileCommand), cl::sub(machineCommand),
                                 cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> calibrateBase(
    "calibrate",
    cl::desc("Carry this measured profile (a file, or a device whose profile qdsl finds: "
             "shipped or in $QDSL_PROFILE_PATH) over to this machine: time a few "
             "architectures (about a minute) instead of profiling from scratch"),
    cl::value_desc("base.json|device"), cl::sub(profileCommand), cl::cat(category));
cl::opt<unsigned> calibrateArchitectures(
    "calibrate-architectures",
    cl::desc("With --calibrate: how many architectures to build and time (default 2)"),
    cl::init(2), cl::sub(profileCommand), cl::cat(category));
cl::opt<unsigned> profileRefine(
    "refine", cl::desc("Architectures added where the fit is worst (adaptive sampling)"),
    cl::init(4), cl::sub(profileCommand), cl::cat(category));

cl::opt<bool> train("train",
                    cl::desc("compile: print each model's training step (loss, logits, "
                             "gradients); stats: also plan its memory per memory policy"),
                    cl::sub(compileCommand), cl::sub(statsCommand), cl::cat(category));

cl::opt<bool> search("search",
                     cl::desc("compile: a supernet of the search space (every candidate, "
                              "gated) with its training step and the `search` program "
                              "(needs --target and -o; docs/NAS.md)"),
                     cl::sub(compileCommand), cl::cat(category));

cl::opt<std::string> latencyLimit(
    "latency-limit",
    cl::desc("The latency limit of the search on --device's device (2.5ms, 800us), "
             "replacing the space's"),
    cl::value_desc("time"), cl::sub(compileCommand), cl::sub(searchCommand), cl::cat(category));

cl::list<std::string> onlyDevices(
    "only", cl::desc("Search for this device's limit only (repeatable; default: every limit "
                     "of the space)"),
    cl::value_desc("device"), cl::sub(compileCommand), cl::sub(searchCommand),
    cl::cat(category));

cl::opt<std::string> searchTarget("target", cl::desc("Target of the supernet and the derived model"),
                                  cl::init("x86-64-avx2"), cl::sub(searchCommand),
                                  cl::cat(category));
cl::opt<unsigned> searchEpochs("epochs", cl::desc("Epochs of the search (warm-up included)"),
                               cl::init(10), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> warmupEpochs("warmup-epochs",
                               cl::desc("Epochs of uniformly sampled paths before the "
                                        "architecture steps"),
                               cl::init(2), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> retrainEpochs("retrain-epochs",
                                cl::desc("Epochs of retraining the derived model from scratch"),
                                cl::init(10), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> searchBatch("batch", cl::desc("Batch size of the search and the retraining"),
                              cl::init(64), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> validation("validation",
                             cl::desc("Training examples held out for the architecture steps"),
                             cl::init(10000), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> trainSubset("train-subset",
                              cl::desc("Use this many training examples (0: all)"), cl::init(0),
                              cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> testSubset("test-subset",
                             cl::desc("Evaluate the derived model on this many test examples "
                                      "(0: all)"),
                             cl::init(0), cl::sub(searchCommand), cl::cat(category));
cl::opt<double> archLearningRate(
    "arch-lr", cl::desc("Adam's learning rate for the architecture logits (beta1 = 0)"),
    cl::init(1e-2), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> archEvery("arch-every",
                            cl::desc("One architecture step per this many weight steps"),
                            cl::init(2), cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> latencyLoss("latency-loss",
                                 cl::desc("additive (CE + lambda*max(0, E/T - 1)) or "
                                          "multiplicative (CE*(E/T)^beta)"),
                                 cl::init("additive"), cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> dataDirectory("data",
                                   cl::desc("fashion-mnist: its IDX files (default: Debian's "
                                            "dataset-fashion-mnist); folder: DIR/train and "
                                            "DIR/val, one subfolder of JPEG/PNG images per class"),
                                   cl::value_desc("dir"), cl::sub(searchCommand),
                                   cl::cat(category));
cl::opt<std::string> searchDataset(
    "dataset", cl::desc("The data the search and the retraining read: fashion-mnist or folder"),
    cl::init("fashion-mnist"), cl::value_desc("name"), cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> deriveRule(
    "derive",
    cl::desc("How the architecture is derived from the search's probabilities: argmax "
             "(the most probable architecture within every limit: exact up to 10^6 "
             "architectures, else repaired from each layer's argmax), fill (then "
             "upgraded, the switch gaining the most probability per latency spent first, "
             "while every limit holds) or accuracy (the best supernet score within the "
             "limits, by evolution: for new limits with --from-search)"),
    cl::init("argmax"), cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> fromSearch(
    "from-search",
    cl::desc("Derive from the search an earlier qdsl search wrote in this directory "
             "(its search/search.json) instead of searching again"),
    cl::value_desc("dir"), cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> launcher(
    "launcher",
    cl::desc("Run the search and the retraining data-parallel under this MPI launcher "
             "command, e.g. \"mpirun -np 4\" or \"srun -n 8\" (--batch is then per process; "
             "docs/DISTRIBUTED.md)"),
    cl::value_desc("command"), cl::sub(searchCommand), cl::cat(category));
cl::opt<bool> searchOverwrite("overwrite", cl::desc("Replace an earlier search in -o"),
                              cl::sub(searchCommand), cl::cat(category));
cl::opt<bool> searchResume("resume",
                           cl::desc("Continue the search in -o that was stopped (from its "
                                    "last epoch's checkpoint, exactly)"),
                           cl::sub(searchCommand), cl::cat(category));
cl::opt<bool> noCalibrate(
    "no-calibrate",
    cl::desc("Use a measured profile of this machine's kind that was made on another machine "
             "as it is (by default the search calibrates it on the space first, about a "
             "minute; docs/NAS.md)"),
    cl::sub(searchCommand), cl::sub(compileCommand), cl::cat(category));
cl::opt<bool> latencyOnly("latency-only",
                          cl::desc("Architecture steps without the cross-entropy gradient of the "
                                   "gates: the latency term alone moves the logits (an ablation "
                                   "that shows whether the accuracy signal is used)"),
                          cl::sub(searchCommand), cl::cat(category));
cl::opt<std::string> gateGradients(
    "gates",
    cl::desc("An architecture step's gate gradients: pair (two sampled candidates per layer, "
             "ProxylessNAS) or all (every candidate's: less variance, more compute)"),
    cl::init("pair"), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> rankSamples(
    "rank-samples",
    cl::desc("After the search, score this many random architectures within the limits and "
             "the derived one with the supernet's weights (0: none)"),
    cl::init(50), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> scoreExamples("score-examples",
                                cl::desc("Validation examples of each supernet score"),
                                cl::init(2000), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> evolveGenerations(
    "evolve-generations",
    cl::desc("With --derive accuracy: generations of the evolution (population 32)"),
    cl::init(8), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> baselineCount(
    "baselines",
    cl::desc("Retrain this many random architectures within 3% of the derived one's "
             "predicted latency, and test the derived one against them"),
    cl::init(0), cl::sub(searchCommand), cl::cat(category));
cl::opt<unsigned> retrainSeeds("retrain-seeds",
                               cl::desc("Retrain the derived model with this many seeds (seed, "
                                        "seed + 1, ...)"),
                               cl::init(1), cl::sub(searchCommand), cl::cat(category));
cl::opt<double> layerScaleInit(
    "layer-scale-init",
    cl::desc("Start the supernet's layer scales at this value (0: as the space declares "
             "them); the derived model's retraining keeps the space's"),
    cl::init(0.0), cl::sub(searchCommand), cl::cat(category));
cl::opt<double> clipNorm("clip",
                         cl::desc("Clip each weight step's gradients to this global norm, in "
                                  "the search and the retraining (0: off)"),
                         cl::init(5.0), cl::sub(searchCommand), cl::cat(category));

cl::opt<quadra::MemoryPolicy> memoryPolicy(
    "memory-policy",
    cl::desc("With compile --train: keep-all, paper or min-memory (the default; "
             "docs/TRAINING.md)"),
    cl::init(quadra::kDefaultMemoryPolicy), cl::sub(compileCommand), cl::cat(category));

cl::opt<unsigned> jobs("j", cl::desc("Parallel build jobs (0: as many as cores)"),
                       cl::init(0), cl::sub(buildCommand), cl::sub(searchCommand),
                       cl::cat(category));

cl::opt<std::string> weightsFile("weights", cl::desc("Weights file (safetensors)"),
                                 cl::value_desc("file"), cl::sub(runCommand),
                                 cl::sub(exportCommand), cl::cat(category));

cl::opt<uint64_t> seed("seed", cl::desc("Seed of the initial weights (profile: of the sampled architectures)"), cl::init(0),
                       cl::sub(runCommand), cl::sub(weightsCommand), cl::sub(profileCommand),
                       cl::sub(searchCommand), cl::sub(exportCommand), cl::cat(category));

cl::opt<std::string> npyInput("input", cl::desc("Input examples (.npy, NHWC float32)"),
                              cl::value_desc("file"), cl::sub(runCommand),
                              cl::cat(category));

cl::opt<std::string> labelsFile(
    "labels",
    cl::desc("With --train: class labels of the input batch (.npy float32 holding "
             "whole numbers)"),
    cl::value_desc("file"), cl::sub(runCommand), cl::cat(category));

cl::opt<bool> trainStep("train",
                        cl::desc("Run one training step instead: write the gradient "
                                 "of the loss for every weight (loss in the metadata)"),
                        cl::sub(runCommand), cl::cat(category));

cl::opt<double> labelSmoothing("label-smoothing",
                               cl::desc("With --train: label smoothing of the loss"),
                               cl::init(0.0), cl::sub(runCommand), cl::sub(compileCommand),
                               cl::sub(searchCommand), cl::cat(category));

cl::opt<std::string> weightsFormat(
    "format", cl::desc("Naming and layouts of the other file: pytorch"),
    cl::init("pytorch"), cl::sub(weightsCommand), cl::cat(category));

cl::opt<std::string> memoryLimit(
    "memory-limit",
    cl::desc("Most memory a command may plan to use for the model's weights and activations "
             "(bytes, or with K, M, G or T; default: this machine's RAM)"),
    cl::value_desc("size"), cl::sub(compileCommand), cl::sub(runCommand),
    cl::sub(weightsCommand), cl::sub(exportCommand), cl::cat(category));

cl::opt<double> randomStd(
    "random-std",
    cl::desc("weights init: draw every tensor from N(0, STD) instead of its "
             "initialiser (for tests: no layer starts as the identity)"),
    cl::init(0.0), cl::value_desc("std"), cl::sub(weightsCommand), cl::cat(category));

cl::opt<std::string> exportFormat(
    "format", cl::desc("onnx (an ONNX model, opset 17) or pytorch (one Python file)"),
    cl::value_desc("onnx|pytorch"), cl::sub(exportCommand), cl::cat(category));

cl::opt<bool> externalData(
    "external-data",
    cl::desc("--format onnx: the weights in OUTPUT.data next to the model (always done above "
             "2 GB, which one ONNX file cannot hold)"),
    cl::sub(exportCommand), cl::cat(category));

} // namespace qdsl::tool
