//===- Diagnostics.cpp - errors in .qd files ------------------------------===//

#include "dsl/Diagnostics.h"

#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace qdsl::dsl {

void Diagnostics::print(SMLoc loc, SourceMgr::DiagKind kind,
                        const Twine &message, ArrayRef<SMRange> ranges) {
  if (kind == SourceMgr::DK_Error) {
    if (errors >= maxErrors) {
      ++errors;
      return;
    }
    ++errors;
  } else if (errors > maxErrors) {
    return; // a note to an error that was not shown
  }
  if (handler)
    handler(loc, kind, message);
  else
    sourceMgr.PrintMessage(os, loc, kind, message, ranges);
  if (kind == SourceMgr::DK_Error && errors == maxErrors && !limitReported) {
    WithColor::error(os, "qdsl")
        << "too many errors (" << maxErrors << "), stopping\n";
    limitReported = true;
  }
}

void Diagnostics::error(SMLoc loc, const Twine &message) {
  print(loc, SourceMgr::DK_Error, message, {});
}

void Diagnostics::error(SMRange range, const Twine &message) {
  print(range.Start, SourceMgr::DK_Error, message, {range});
}

void Diagnostics::note(SMLoc loc, const Twine &message) {
  print(loc, SourceMgr::DK_Note, message, {});
}

void Diagnostics::errorWithoutLocation(const Twine &message) {
  ++errors;
  WithColor::error(os, "qdsl") << message << "\n";
}

std::string closestMatch(StringRef name, ArrayRef<std::string> candidates) {
  std::string best;
  unsigned bestDistance = ~0u;
  // Allow about one typo per three characters, at least one.
  unsigned limit = std::max<unsigned>(1, (name.size() + 2) / 3);
  for (const std::string &candidate : candidates) {
    if (candidate == name)
      continue;
    unsigned distance = name.edit_distance(candidate, /*AllowReplacements=*/true,
                                           /*MaxEditDistance=*/limit);
    // A different case only is the most likely typo of all.
    if (name.equals_insensitive(candidate))
      distance = 0;
    if (distance <= limit && distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best;
}

std::string didYouMean(StringRef name, ArrayRef<std::string> candidates) {
  std::string best = closestMatch(name, candidates);
  if (best.empty())
    return "";
  return " (did you mean '" + best + "'?)";
}

} // namespace qdsl::dsl
