//===- Lexer.h - tokens from a .qd buffer -----------------------*- C++ -*-===//

#ifndef QDSL_DSL_LEXER_H
#define QDSL_DSL_LEXER_H

#include "dsl/Diagnostics.h"
#include "dsl/Token.h"

namespace qdsl::dsl {

/// Splits one source buffer into tokens. Comments are `// to end of line` and
/// `/* ... */`; whitespace and newlines carry no meaning.
class Lexer {
public:
  Lexer(llvm::StringRef buffer, Diagnostics &diags);

  Token next();

private:
  Token make(TokenKind kind, const char *start) const;
  Token lexIdentifier(const char *start);
  Token lexNumber(const char *start);
  Token lexString(const char *start);
  /// Skips whitespace and comments; false after reporting an unterminated
  /// block comment.
  bool skipTrivia();

  llvm::StringRef buffer;
  const char *cur;
  Diagnostics &diags;
};

} // namespace qdsl::dsl

#endif // QDSL_DSL_LEXER_H
