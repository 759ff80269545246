//===- Lexer.cpp - tokens from a .qd buffer -------------------------------===//

#include "dsl/Lexer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

using namespace llvm;

namespace qdsl::dsl {

StringRef describe(TokenKind kind) {
  switch (kind) {
  case TokenKind::Eof: return "end of file";
  case TokenKind::Error: return "an invalid token";
  case TokenKind::Identifier: return "a name";
  case TokenKind::Integer: return "an integer";
  case TokenKind::Float: return "a number";
  case TokenKind::String: return "a string";
  case TokenKind::KwImport: return "'import'";
  case TokenKind::KwBlock: return "'block'";
  case TokenKind::KwModel: return "'model'";
  case TokenKind::KwSpace: return "'space'";
  case TokenKind::KwLet: return "'let'";
  case TokenKind::KwReturn: return "'return'";
  case TokenKind::KwTrue: return "'true'";
  case TokenKind::KwFalse: return "'false'";
  case TokenKind::LParen: return "'('";
  case TokenKind::RParen: return "')'";
  case TokenKind::LBrace: return "'{'";
  case TokenKind::RBrace: return "'}'";
  case TokenKind::LBracket: return "'['";
  case TokenKind::RBracket: return "']'";
  case TokenKind::Comma: return "','";
  case TokenKind::Colon: return "':'";
  case TokenKind::Semicolon: return "';'";
  case TokenKind::Equal: return "'='";
  case TokenKind::Plus: return "'+'";
  case TokenKind::Minus: return "'-'";
  case TokenKind::Star: return "'*'";
  case TokenKind::Slash: return "'/'";
  case TokenKind::Percent: return "'%'";
  case TokenKind::Dot: return "'.'";
  case TokenKind::LessEqual: return "'<='";
  case TokenKind::Less: return "'<'";
  case TokenKind::Pipe: return "'|'";
  }
  return "a token";
}

Lexer::Lexer(StringRef buffer, Diagnostics &diags)
    : buffer(buffer), cur(buffer.begin()), diags(diags) {}

Token Lexer::make(TokenKind kind, const char *start) const {
  return Token{kind, StringRef(start, cur - start)};
}

bool Lexer::skipTrivia() {
  while (cur < buffer.end()) {
    char c = *cur;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++cur;
    } else if (c == '/' && cur + 1 < buffer.end() && cur[1] == '/') {
      while (cur < buffer.end() && *cur != '\n')
        ++cur;
    } else if (c == '/' && cur + 1 < buffer.end() && cur[1] == '*') {
      const char *start = cur;
      cur += 2;
      while (cur + 1 < buffer.end() && !(cur[0] == '*' && cur[1] == '/'))
        ++cur;
      if (cur + 1 >= buffer.end()) {
        cur = buffer.end();
        diags.error(SMLoc::getFromPointer(start),
                    "unterminated comment: expected '*/' before the end of "
                    "the file");
        return false;
      }
      cur += 2;
    } else {
      return true;
    }
  }
  return true;
}

Token Lexer::next() {
  if (!skipTrivia())
    return Token{TokenKind::Error, StringRef(buffer.end(), 0)};
  if (cur >= buffer.end())
    return Token{TokenKind::Eof, StringRef(buffer.end(), 0)};
  const char *start = cur;
  char c = *cur++;
  if (isAlpha(c) || c == '_')
    return lexIdentifier(start);
  if (isDigit(c))
    return lexNumber(start);
  switch (c) {
  case '"': return lexString(start);
  case '(': return make(TokenKind::LParen, start);
  case ')': return make(TokenKind::RParen, start);
  case '{': return make(TokenKind::LBrace, start);
  case '}': return make(TokenKind::RBrace, start);
  case '[': return make(TokenKind::LBracket, start);
  case ']': return make(TokenKind::RBracket, start);
  case ',': return make(TokenKind::Comma, start);
  case ':': return make(TokenKind::Colon, start);
  case ';': return make(TokenKind::Semicolon, start);
  case '=': return make(TokenKind::Equal, start);
  case '+': return make(TokenKind::Plus, start);
  case '-': return make(TokenKind::Minus, start);
  case '*': return make(TokenKind::Star, start);
  case '/': return make(TokenKind::Slash, start);
  case '%': return make(TokenKind::Percent, start);
  case '|': return make(TokenKind::Pipe, start);
  case '.':
    if (cur < buffer.end() && isDigit(*cur))
      return lexNumber(start);
    return make(TokenKind::Dot, start);
  case '<':
    if (cur < buffer.end() && *cur == '=') {
      ++cur;
      return make(TokenKind::LessEqual, start);
    }
    return make(TokenKind::Less, start);
  default:
    break;
  }
  // Report a multi-byte UTF-8 character as one.
  if (static_cast<unsigned char>(c) >= 0x80)
    while (cur < buffer.end() && (static_cast<unsigned char>(*cur) & 0xC0) == 0x80)
      ++cur;
  std::string shown;
  if (isPrint(c))
    shown = std::string("'") + c + "'";
  else if (static_cast<unsigned char>(c) >= 0x80)
    shown = "non-ASCII character '" + std::string(start, cur) +
            "' (names and operators are ASCII)";
  else
    shown = "control character 0x" + utohexstr(static_cast<unsigned char>(c));
  diags.error(SMLoc::getFromPointer(start),
              "unexpected " + shown +
                  ": expected a name, a number, a string or punctuation");
  return make(TokenKind::Error, start);
}

Token Lexer::lexIdentifier(const char *start) {
  while (cur < buffer.end() && (isAlnum(*cur) || *cur == '_'))
    ++cur;
  StringRef text(start, cur - start);
  TokenKind kind = StringSwitch<TokenKind>(text)
                       .Case("import", TokenKind::KwImport)
                       .Case("block", TokenKind::KwBlock)
                       .Case("model", TokenKind::KwModel)
                       .Case("space", TokenKind::KwSpace)
                       .Case("let", TokenKind::KwLet)
                       .Case("return", TokenKind::KwReturn)
                       .Case("true", TokenKind::KwTrue)
                       .Case("false", TokenKind::KwFalse)
                       .Default(TokenKind::Identifier);
  return make(kind, start);
}

Token Lexer::lexNumber(const char *start) {
  // digits [. digits] [e [+-] digits]; a leading '.' was consumed already.
  bool isFloat = *start == '.';
  while (cur < buffer.end() && isDigit(*cur))
    ++cur;
  if (!isFloat && cur < buffer.end() && *cur == '.' && cur + 1 < buffer.end() &&
      isDigit(cur[1])) {
    isFloat = true;
    ++cur;
    while (cur < buffer.end() && isDigit(*cur))
      ++cur;
  } else if (!isFloat && cur < buffer.end() && *cur == '.' &&
             (cur + 1 >= buffer.end() || !isAlpha(cur[1]))) {
    // `1.` is a float; `x.channels` style access never follows a number.
    isFloat = true;
    ++cur;
  }
  if (cur < buffer.end() && (*cur == 'e' || *cur == 'E')) {
    const char *exponent = cur + 1;
    if (exponent < buffer.end() && (*exponent == '+' || *exponent == '-'))
      ++exponent;
    if (exponent < buffer.end() && isDigit(*exponent)) {
      isFloat = true;
      cur = exponent;
      while (cur < buffer.end() && isDigit(*cur))
        ++cur;
    }
  }
  if (cur < buffer.end() && (isAlpha(*cur) || *cur == '_')) {
    // `3x` or `7ms`: a number glued to a word is almost always a missing space.
    const char *word = cur;
    while (cur < buffer.end() && (isAlnum(*cur) || *cur == '_'))
      ++cur;
    StringRef suffix(word, cur - word);
    if (suffix == "ms" || suffix == "us" || suffix == "s") {
      // A duration such as `300ms`: give back the unit as its own token.
      cur = word;
    } else {
      diags.error(SMLoc::getFromPointer(word),
                  "unexpected '" + suffix + "' right after the number '" +
                      StringRef(start, word - start) +
                      "': expected a space or an operator between them");
      return make(TokenKind::Error, start);
    }
  }
  return make(isFloat ? TokenKind::Float : TokenKind::Integer, start);
}

Token Lexer::lexString(const char *start) {
  while (cur < buffer.end() && *cur != '"' && *cur != '\n') {
    if (*cur == '\\' && cur + 1 < buffer.end() && cur[1] != '\n')
      ++cur;
    ++cur;
  }
  if (cur >= buffer.end() || *cur != '"') {
    diags.error(SMLoc::getFromPointer(start),
                "unterminated string: expected '\"' before the end of the line");
    return make(TokenKind::Error, start);
  }
  ++cur;
  return make(TokenKind::String, start);
}

} // namespace qdsl::dsl
