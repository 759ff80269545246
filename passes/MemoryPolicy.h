//===- MemoryPolicy.h - what a training step keeps for its backward pass -*- C++ -*-===//
//
// The memory policies of the training step (--quadra-memory-policy, qdsl
// compile --train --memory-policy), their names and the one default. The
// step records the policy's name as `quadra.memory_policy`; the memory
// planner and the generated project's checkpoints read it back.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_PASSES_MEMORYPOLICY_H
#define QDSL_PASSES_MEMORYPOLICY_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace qdsl::quadra {

enum class MemoryPolicy {
  /// Every tensor a tape of the ops would keep (the model's qdwconvs
  /// expanded first, every op output until its op's backward has run).
  KeepAll,
  /// x, xa and xb of each qdwconv kept; xa⊙xb and xc never materialised.
  Paper,
  /// xa and xb recomputed in the backward pass, and the outputs of layer
  /// norms, GELUs, (q)dwconvs and narrow expanding linear layers too.
  MinMemory,
};

/// What `qdsl compile --train` and --quadra-memory-policy use when not told.
inline constexpr MemoryPolicy kDefaultMemoryPolicy = MemoryPolicy::MinMemory;

/// Every policy, in the order `qdsl stats --train` prints them.
inline constexpr MemoryPolicy kMemoryPolicies[] = {
    MemoryPolicy::KeepAll, MemoryPolicy::Paper, MemoryPolicy::MinMemory};

/// "keep-all", "paper", "min-memory".
llvm::StringRef memoryPolicyName(MemoryPolicy policy);
std::optional<MemoryPolicy> parseMemoryPolicy(llvm::StringRef name);
/// "keep-all, paper or min-memory", for messages.
std::string memoryPolicyNames();

inline llvm::raw_ostream &operator<<(llvm::raw_ostream &os, MemoryPolicy policy) {
  return os << memoryPolicyName(policy);
}

} // namespace qdsl::quadra

/// Command-line and pass-option parsing by name, with an error that lists
/// the policies.
template <>
class llvm::cl::parser<qdsl::quadra::MemoryPolicy>
    : public llvm::cl::basic_parser<qdsl::quadra::MemoryPolicy> {
public:
  explicit parser(Option &option) : basic_parser(option) {}
  bool parse(Option &option, StringRef argName, StringRef arg,
             qdsl::quadra::MemoryPolicy &value);
  StringRef getValueName() const override { return "policy"; }
  void printOptionDiff(const Option &option, qdsl::quadra::MemoryPolicy value,
                       const OptVal &defaultValue, size_t globalWidth) const;
};

#endif // QDSL_PASSES_MEMORYPOLICY_H
