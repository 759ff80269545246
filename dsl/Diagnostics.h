//===- Diagnostics.h - errors in .qd files ----------------------*- C++ -*-===//
//
// Every message names file:line:col, shows the line with a caret and says
// what was expected. Errors are counted, not fatal: the front end reports as
// many independent ones as it can in one run, up to a limit.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_DIAGNOSTICS_H
#define QDSL_DSL_DIAGNOSTICS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>
#include <string>

namespace qdsl::dsl {

class Diagnostics {
public:
  explicit Diagnostics(llvm::SourceMgr &sourceMgr, unsigned maxErrors = 30,
                       llvm::raw_ostream &os = llvm::errs())
      : sourceMgr(sourceMgr), maxErrors(maxErrors), os(os) {}

  void error(llvm::SMLoc loc, const llvm::Twine &message);
  /// An error covering a span, underlined with tildes.
  void error(llvm::SMRange range, const llvm::Twine &message);
  void note(llvm::SMLoc loc, const llvm::Twine &message);
  /// An error without a position (a file that cannot be opened).
  void errorWithoutLocation(const llvm::Twine &message);

  unsigned errorCount() const { return errors; }
  bool hasErrors() const { return errors > 0; }
  /// True once the limit is reached; callers stop producing more.
  bool tooMany() const { return errors >= maxErrors; }

  llvm::SourceMgr &getSourceMgr() { return sourceMgr; }

  /// Sends every message (position, kind, text) to `handler` instead of
  /// printing it: the qdsl driver forwards them to MLIR's diagnostic engine,
  /// so that -verify-diagnostics checks front-end errors too.
  using Handler = std::function<void(llvm::SMLoc, llvm::SourceMgr::DiagKind,
                                     const llvm::Twine &)>;
  void setHandler(Handler h) { handler = std::move(h); }

private:
  void print(llvm::SMLoc loc, llvm::SourceMgr::DiagKind kind,
             const llvm::Twine &message, llvm::ArrayRef<llvm::SMRange> ranges);

  llvm::SourceMgr &sourceMgr;
  unsigned maxErrors;
  llvm::raw_ostream &os;
  unsigned errors = 0;
  bool limitReported = false;
  Handler handler;
};

/// The candidate closest to `name` by edit distance, if close enough to be a
/// likely typo; empty otherwise.
std::string closestMatch(llvm::StringRef name,
                         llvm::ArrayRef<std::string> candidates);

/// ` (did you mean 'x'?)` for the closest candidate, or nothing.
std::string didYouMean(llvm::StringRef name,
                       llvm::ArrayRef<std::string> candidates);

} // namespace qdsl::dsl

#endif // QDSL_DSL_DIAGNOSTICS_H
