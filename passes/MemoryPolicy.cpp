//===- MemoryPolicy.cpp - what a training step keeps for its backward pass ===//

#include "passes/MemoryPolicy.h"

namespace qdsl::quadra {

llvm::StringRef memoryPolicyName(MemoryPolicy policy) {
  switch (policy) {
  case MemoryPolicy::KeepAll:
    return "keep-all";
  case MemoryPolicy::Paper:
    return "paper";
  case MemoryPolicy::MinMemory:
    return "min-memory";
  }
  llvm_unreachable("unknown memory policy");
}

std::optional<MemoryPolicy> parseMemoryPolicy(llvm::StringRef name) {
  for (MemoryPolicy policy : kMemoryPolicies)
    if (name == memoryPolicyName(policy))
      return policy;
  return std::nullopt;
}

std::string memoryPolicyNames() {
  std::string names;
  for (auto [i, policy] : llvm::enumerate(kMemoryPolicies))
    names += (i == 0 ? "" : i + 1 == std::size(kMemoryPolicies) ? " or " : ", ") +
             memoryPolicyName(policy).str();
  return names;
}

} // namespace qdsl::quadra

bool llvm::cl::parser<qdsl::quadra::MemoryPolicy>::parse(
    Option &option, StringRef, StringRef arg, qdsl::quadra::MemoryPolicy &value) {
  if (std::optional<qdsl::quadra::MemoryPolicy> policy = qdsl::quadra::parseMemoryPolicy(arg)) {
    value = *policy;
    return false;
  }
  return option.error("unknown memory policy '" + arg + "'; expected " +
                      qdsl::quadra::memoryPolicyNames());
}

void llvm::cl::parser<qdsl::quadra::MemoryPolicy>::printOptionDiff(
    const Option &option, qdsl::quadra::MemoryPolicy value, const OptVal &defaultValue,
    size_t globalWidth) const {
  printOptionName(option, globalWidth);
  outs() << "= " << qdsl::quadra::memoryPolicyName(value);
  if (defaultValue.hasValue())
    outs() << " (default: " << qdsl::quadra::memoryPolicyName(defaultValue.getValue()) << ")";
  outs() << "\n";
}
