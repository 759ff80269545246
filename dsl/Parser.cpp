//===- Parser.cpp - .qd source to syntax tree -----------------------------===//

#include "dsl/Parser.h"

#include "runtime/shipped/Contract.h"

#include "llvm/ADT/StringExtras.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

using namespace llvm;

namespace qdsl::dsl {

namespace {
/// Deeper nesting than this is no model anyone writes; refusing it keeps the
/// parser's stack bounded on hostile input.
constexpr unsigned kMaxNesting = 256;

bool startsTopLevel(const Token &t) {
  return t.is(TokenKind::KwImport) || t.is(TokenKind::KwBlock) ||
         t.is(TokenKind::KwModel) || t.is(TokenKind::KwSpace);
}

bool startsModelItem(const Token &t) {
  return t.is(TokenKind::Identifier) &&
         (parseRole(t.text) || t.text == "input" || t.text == "constraint");
}
} // namespace

Parser::Parser(SourceFile &file, StringRef buffer, Diagnostics &diags)
    : file(file), lexer(buffer, diags), diags(diags) {
  consume();
}

void Parser::consume() {
  prevEnd = tok.endLoc();
  if (hasPeek) {
    tok = peekTok;
    hasPeek = false;
    return;
  }
  tok = lexer.next();
  // Past the error limit nothing more is reported; stop reading.
  if (tok.is(TokenKind::Error) && diags.tooMany())
    tok = Token{TokenKind::Eof, StringRef(tok.text.data(), 0)};
}

const Token &Parser::peek() {
  if (!hasPeek) {
    peekTok = lexer.next();
    hasPeek = true;
  }
  return peekTok;
}

bool Parser::consumeIf(TokenKind kind) {
  if (!tok.is(kind))
    return false;
  consume();
  return true;
}

bool Parser::consumeIfIdentifier(StringRef word) {
  if (!tok.isIdentifier(word))
    return false;
  consume();
  return true;
}

std::string Parser::describeCurrent() const {
  switch (tok.kind) {
  case TokenKind::Eof:
    return "end of file";
  case TokenKind::String:
    return "the string " + tok.text.str();
  default:
    return "'" + tok.text.str() + "'";
  }
}

bool Parser::fail(StringRef expected, bool missingAfterPrevious) {
  // The lexer has reported a bad token already; one message is enough.
  if (tok.is(TokenKind::Error))
    return false;
  // Something missing at the end of a line is reported where it is missing,
  // not at the start of the next line.
  SMLoc at = tok.loc();
  if (missingAfterPrevious && prevEnd.isValid() &&
      StringRef(prevEnd.getPointer(), tok.text.data() - prevEnd.getPointer())
          .contains('\n'))
    at = prevEnd;
  diags.error(at, "expected " + expected + ", got " + describeCurrent());
  return false;
}

void Parser::recover(const char *start,
                     function_ref<bool(const Token &)> isSync) {
  skipUntil(isSync);
  // Unmatched closing brackets are leftovers of the broken statement, and a
  // statement that failed on its very first token must be stepped over;
  // only '}' may close what the caller owns.
  while (tok.is(TokenKind::RParen) || tok.is(TokenKind::RBracket) ||
         (tok.text.data() == start && !tok.is(TokenKind::RBrace) &&
          !tok.is(TokenKind::Eof))) {
    consume();
    skipUntil(isSync);
  }
}

bool Parser::expect(TokenKind kind, StringRef context) {
  if (consumeIf(kind))
    return true;
  return fail((describe(kind) + " " + context).str(),
              /*missingAfterPrevious=*/true);
}

void Parser::skipUntil(function_ref<bool(const Token &)> isSync) {
  int nesting = 0;
  while (!tok.is(TokenKind::Eof)) {
    if (nesting == 0 && isSync(tok))
      return;
    switch (tok.kind) {
    case TokenKind::LParen:
    case TokenKind::LBracket:
    case TokenKind::LBrace:
      ++nesting;
      break;
    case TokenKind::RParen:
    case TokenKind::RBracket:
    case TokenKind::RBrace:
      if (nesting == 0)
        return; // closes something the caller owns
      --nesting;
      break;
    default:
      break;
    }
    consume();
  }
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

bool Parser::parseFile() {
  unsigned errorsBefore = diags.errorCount();
  while (!tok.is(TokenKind::Eof) && !diags.tooMany()) {
    bool ok = true;
    switch (tok.kind) {
    case TokenKind::KwImport:
      ok = parseImport();
      break;
    case TokenKind::KwBlock:
      if (auto block = parseBlock())
        file.blocks.push_back(std::move(block));
      else
        ok = false;
      break;
    case TokenKind::KwModel:
    case TokenKind::KwSpace:
      if (auto model = parseModel())
        file.models.push_back(std::move(model));
      else
        ok = false;
      break;
    default:
      ok = fail("'import', 'block', 'model' or 'space' at the top level");
      break;
    }
    if (!ok) {
      // Resume at the next declaration, stepping over the rest of the broken
      // one, brackets included.
      while (!tok.is(TokenKind::Eof) && !startsTopLevel(tok)) {
        skipUntil(startsTopLevel);
        if (!tok.is(TokenKind::Eof) && !startsTopLevel(tok))
          consume();
      }
    }
  }
  return diags.errorCount() == errorsBefore;
}

std::optional<std::string> Parser::parseStringLiteral() {
  if (!tok.is(TokenKind::String)) {
    fail("a string in double quotes");
    return std::nullopt;
  }
  StringRef raw = tok.text.drop_front().drop_back();
  std::string value;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      value += raw[i];
      continue;
    }
    char escaped = ++i < raw.size() ? raw[i] : '\0';
    switch (escaped) {
    case '"': value += '"'; break;
    case '\\': value += '\\'; break;
    case 'n': value += '\n'; break;
    case 't': value += '\t'; break;
    default:
      diags.error(SMLoc::getFromPointer(raw.data() + i - 1),
                  "unknown escape sequence: expected \\\", \\\\, \\n or \\t");
      consume();
      return std::nullopt;
    }
  }
  consume();
  return value;
}

bool Parser::parseImport() {
  SMLoc loc = tok.loc();
  consume(); // import
  std::optional<std::string> path = parseStringLiteral();
  if (!path)
    return false;
  if (path->empty()) {
    diags.error(loc, "an import needs a file path, such as \"std/blocks.qd\"");
    return false;
  }
  consumeIf(TokenKind::Semicolon);
  file.imports.push_back(ImportDecl{loc, *path});
  return true;
}

bool Parser::parseParams(std::vector<Param> &params, bool typesOptional) {
  // After '(': params up to ')'.
  while (!tok.is(TokenKind::RParen)) {
    Param param;
    param.loc = tok.loc();
    if (!tok.is(TokenKind::Identifier))
      return fail("a parameter name");
    param.name = tok.text.str();
    consume();
    if (consumeIf(TokenKind::Colon)) {
      param.typeLoc = tok.loc();
      if (!tok.is(TokenKind::Identifier))
        return fail("a type (int, float, bool or tensor) after ':'");
      std::optional<ValueType> type = parseTypeName(tok.text);
      if (!type) {
        diags.error(tok.loc(), "unknown type '" + tok.text +
                                   "': expected int, float, bool or tensor" +
                                   didYouMean(tok.text, {"int", "float", "bool",
                                                         "tensor"}));
        return false;
      }
      param.type = *type;
      consume();
    } else if (!typesOptional) {
      return fail("':' and a type after parameter '" + param.name + "'");
    }
    if (consumeIf(TokenKind::Equal)) {
      param.defaultValue = parseExpr();
      if (!param.defaultValue)
        return false;
    } else if (param.type == ValueType::Unknown) {
      return fail("':' and a type, or '=' and a default value, after "
                  "parameter '" + param.name + "'");
    }
    params.push_back(std::move(param));
    if (!consumeIf(TokenKind::Comma))
      break;
  }
  return expect(TokenKind::RParen, "to close the parameter list");
}

std::unique_ptr<BlockDecl> Parser::parseBlock() {
  auto block = std::make_unique<BlockDecl>();
  block->loc = tok.loc();
  consume(); // block
  if (!tok.is(TokenKind::Identifier)) {
    fail("a block name after 'block'");
    return nullptr;
  }
  block->name = tok.text.str();
  block->nameLoc = tok.loc();
  consume();
  if (!expect(TokenKind::LParen, "after the block name: a block declares its "
                                 "parameters, e.g. block b(x: tensor)") ||
      !parseParams(block->params, /*typesOptional=*/false) ||
      !expect(TokenKind::LBrace, "to open the block body"))
    return nullptr;
  bool ok = true;
  while (!tok.is(TokenKind::RBrace) && !tok.is(TokenKind::Eof) &&
         !diags.tooMany()) {
    const char *before = tok.text.data();
    if (!parseStmt(*block)) {
      ok = false;
      auto isSync = [](const Token &t) {
        return t.is(TokenKind::KwLet) || t.is(TokenKind::KwReturn) ||
               startsTopLevel(t);
      };
      recover(before, isSync);
      if (startsTopLevel(tok))
        return nullptr;
    }
  }
  block->endLoc = tok.loc();
  if (!expect(TokenKind::RBrace, "to close block '" + block->name + "'"))
    return nullptr;
  return ok ? std::move(block) : nullptr;
}

bool Parser::parseStmt(BlockDecl &block) {
  Stmt stmt;
  stmt.loc = tok.loc();
  if (consumeIf(TokenKind::KwLet)) {
    stmt.kind = Stmt::Kind::Let;
    if (!tok.is(TokenKind::Identifier))
      return fail("a name after 'let'");
    stmt.name = tok.text.str();
    stmt.nameLoc = tok.loc();
    consume();
    if (!expect(TokenKind::Equal, "after 'let " + stmt.name + "'"))
      return false;
  } else if (consumeIf(TokenKind::KwReturn)) {
    stmt.kind = Stmt::Kind::Return;
  } else {
    return fail("'let', 'return' or '}' in the body of block '" + block.name +
                "'");
  }
  stmt.value = parseExpr();
  if (!stmt.value)
    return false;
  consumeIf(TokenKind::Semicolon);
  block.body.push_back(std::move(stmt));
  return true;
}

std::unique_ptr<ModelDecl> Parser::parseModel() {
  auto model = std::make_unique<ModelDecl>();
  model->loc = tok.loc();
  model->isSpace = tok.is(TokenKind::KwSpace);
  StringRef what = model->isSpace ? "space" : "model";
  consume();
  if (!tok.is(TokenKind::Identifier)) {
    fail(("a name after '" + what + "'").str());
    return nullptr;
  }
  model->name = tok.text.str();
  model->nameLoc = tok.loc();
  consume();
  if (consumeIf(TokenKind::LParen) &&
      !parseParams(model->params, /*typesOptional=*/true))
    return nullptr;
  if (!expect(TokenKind::LBrace, ("to open the body of " + what + " '" +
                                  model->name + "'")
                                     .str()))
    return nullptr;
  bool ok = true;
  while (!tok.is(TokenKind::RBrace) && !tok.is(TokenKind::Eof) &&
         !diags.tooMany()) {
    const char *before = tok.text.data();
    if (!parseModelItem(*model)) {
      ok = false;
      // Resume at the next layer, or give up on this model at the next
      // top-level declaration.
      auto isSync = [](const Token &t) {
        return startsModelItem(t) || startsTopLevel(t);
      };
      recover(before, isSync);
      if (startsTopLevel(tok))
        return nullptr;
    }
  }
  model->endLoc = tok.loc();
  if (!expect(TokenKind::RBrace,
              ("to close " + what + " '" + model->name + "'").str()))
    return nullptr;
  return ok ? std::move(model) : nullptr;
}

bool Parser::parseModelItem(ModelDecl &model) {
  if (tok.isIdentifier("input"))
    return parseInput(model);
  if (tok.isIdentifier("constraint"))
    return parseConstraint(model);
  if (tok.is(TokenKind::Identifier)) {
    if (std::optional<Role> role = parseRole(tok.text))
      return parseLayer(model, *role);
    std::string suggestion =
        didYouMean(tok.text, {"input", "stem", "stage", "down", "head",
                              "layer", "constraint"});
    diags.error(tok.loc(), "unknown item '" + tok.text + "' in " +
                               (model.isSpace ? "space" : "model") + " '" +
                               model.name +
                               "': expected input, stem, stage, down, head, "
                               "layer or constraint" +
                               suggestion);
    return false;
  }
  if (tok.is(TokenKind::KwLet))
    return fail("a layer: 'let' belongs in a block body, models list layers "
                "(input, stem, stage, down, head, layer)");
  return fail("a layer (input, stem, stage, down, head, layer), a constraint "
              "or '}'");
}

bool Parser::parseInput(ModelDecl &model) {
  InputDecl input;
  input.loc = tok.loc();
  consume(); // input
  if (!tok.is(TokenKind::Identifier))
    return fail("an element type such as f32 after 'input'");
  input.elementType = tok.text.str();
  input.elementTypeLoc = tok.loc();
  consume();
  if (!expect(TokenKind::LBracket,
              "after the element type: the shape of one example, e.g. "
              "f32[224, 224, 3]"))
    return false;
  while (!tok.is(TokenKind::RBracket)) {
    ExprPtr dim = parseExpr();
    if (!dim)
      return false;
    input.dims.push_back(std::move(dim));
    if (!consumeIf(TokenKind::Comma))
      break;
  }
  if (!expect(TokenKind::RBracket, "to close the input shape"))
    return false;
  consumeIf(TokenKind::Semicolon);
  if (model.input) {
    diags.error(input.loc, "a model has one input; it was declared already");
    diags.note(model.input->loc, "the first input is here");
    return true; // not a syntax error: keep parsing
  }
  model.input = std::move(input);
  return true;
}

bool Parser::parseLayer(ModelDecl &model, Role role) {
  LayerDecl layer;
  layer.loc = tok.loc();
  layer.role = role;
  consume(); // role word
  if (tok.isIdentifier("choice") && peek().is(TokenKind::LParen)) {
    layer.layer = parseChoice();
  } else if (tok.is(TokenKind::Identifier)) {
    layer.layer = parseCall(/*parensOptional=*/true);
  } else {
    return fail(("a block or primitive after '" + roleKeyword(role) + "'").str());
  }
  if (!layer.layer)
    return false;
  if (consumeIfIdentifier("x")) {
    layer.repeat = parseExpr();
    if (!layer.repeat)
      return false;
  }
  if (consumeIfIdentifier("at")) {
    layer.width = parseExpr();
    if (!layer.width)
      return false;
  }
  consumeIf(TokenKind::Semicolon);
  model.layers.push_back(std::move(layer));
  return true;
}

bool Parser::parseConstraint(ModelDecl &model) {
  ConstraintDecl constraint;
  constraint.loc = tok.loc();
  consume(); // constraint
  if (!tok.is(TokenKind::Identifier))
    return fail("a metric after 'constraint', such as latency(\"cortex-a76\")");
  constraint.metric = tok.text.str();
  if (constraint.metric != "latency") {
    diags.error(tok.loc(), "unknown constraint metric '" + tok.text +
                               "': expected 'latency'" +
                               didYouMean(tok.text, {"latency"}));
    return false;
  }
  consume();
  if (!expect(TokenKind::LParen, "after 'latency': the device profile, e.g. "
                                 "latency(\"cortex-a76\")"))
    return false;
  std::optional<std::string> device = parseStringLiteral();
  if (!device)
    return false;
  if (device->empty()) {
    diags.error(constraint.loc, "the device profile name must not be empty");
    return false;
  }
  if (!contract::isDeviceName(device->data(), device->size())) {
    diags.error(constraint.loc, "device name '" + *device +
                                    "': expected letters, digits, '-', '_' and '.' (not "
                                    "first), at most " +
                                    std::to_string(contract::kMaxDeviceName) +
                                    " characters: it names a profile file, never a path");
    return false;
  }
  constraint.device = *device;
  if (!expect(TokenKind::RParen, "after the device profile") ||
      !expect(TokenKind::LessEqual, "after latency(...): a limit such as "
                                    "'<= 300 ms'"))
    return false;
  if (!tok.is(TokenKind::Integer) && !tok.is(TokenKind::Float))
    return fail("a number for the latency limit");
  SMLoc numberLoc = tok.loc();
  std::string digits = tok.text.str();
  double value = std::strtod(digits.c_str(), nullptr);
  consume();
  if (!tok.is(TokenKind::Identifier) ||
      !(tok.text == "ms" || tok.text == "us" || tok.text == "s"))
    return fail("a unit after the latency limit: ms, us or s");
  double scale = tok.text == "s" ? 1000.0 : tok.text == "us" ? 1e-3 : 1.0;
  consume();
  constraint.limitMs = value * scale;
  if (!std::isfinite(constraint.limitMs) || !(constraint.limitMs > 0)) {
    diags.error(numberLoc, "a latency limit must be a positive, finite time");
    return false;
  }
  consumeIf(TokenKind::Semicolon);
  model.constraints.push_back(std::move(constraint));
  return true;
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

ExprPtr Parser::parseExpr() {
  if (depth >= kMaxNesting) {
    diags.error(tok.loc(), "expression nested too deeply (more than " +
                               Twine(kMaxNesting) + " levels)");
    return nullptr;
  }
  ++depth;
  ExprPtr e = parseAdditive();
  --depth;
  return e;
}

ExprPtr Parser::parseAdditive() {
  ExprPtr lhs = parseMultiplicative();
  while (lhs && (tok.is(TokenKind::Plus) || tok.is(TokenKind::Minus))) {
    SMLoc loc = tok.loc();
    char op = tok.text[0];
    consume();
    ExprPtr rhs = parseMultiplicative();
    if (!rhs)
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

ExprPtr Parser::parseMultiplicative() {
  ExprPtr lhs = parseUnary();
  while (lhs && (tok.is(TokenKind::Star) || tok.is(TokenKind::Slash) ||
                 tok.is(TokenKind::Percent))) {
    SMLoc loc = tok.loc();
    char op = tok.text[0];
    consume();
    ExprPtr rhs = parseUnary();
    if (!rhs)
      return nullptr;
    lhs = std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
  }
  return lhs;
}

ExprPtr Parser::parseUnary() {
  if (tok.is(TokenKind::Minus)) {
    SMLoc loc = tok.loc();
    consume();
    if (depth >= kMaxNesting) {
      diags.error(loc, "expression nested too deeply (more than " +
                           Twine(kMaxNesting) + " levels)");
      return nullptr;
    }
    ++depth;
    ExprPtr operand = parseUnary();
    --depth;
    if (!operand)
      return nullptr;
    return std::make_unique<UnaryExpr>(loc, '-', std::move(operand));
  }
  return parsePostfix();
}

ExprPtr Parser::parsePostfix() {
  ExprPtr base = parsePrimary();
  while (base && tok.is(TokenKind::Dot)) {
    SMLoc loc = tok.loc();
    consume();
    if (!tok.is(TokenKind::Identifier)) {
      fail("a property name after '.', such as channels");
      return nullptr;
    }
    base = std::make_unique<MemberExpr>(loc, std::move(base), tok.text.str(),
                                        tok.loc());
    consume();
  }
  return base;
}

ExprPtr Parser::parsePrimary() {
  SMLoc loc = tok.loc();
  switch (tok.kind) {
  case TokenKind::Integer: {
    int64_t value;
    if (tok.text.getAsInteger(10, value)) {
      diags.error(loc, "integer '" + tok.text +
                           "' is too large: expected at most 9223372036854775807");
      return nullptr;
    }
    consume();
    return std::make_unique<IntExpr>(loc, value);
  }
  case TokenKind::Float: {
    std::string digits = tok.text.str();
    errno = 0;
    double value = std::strtod(digits.c_str(), nullptr);
    if (!std::isfinite(value) || errno == ERANGE) {
      diags.error(loc, "number '" + tok.text + "' is out of range for a float");
      return nullptr;
    }
    consume();
    return std::make_unique<FloatExpr>(loc, value);
  }
  case TokenKind::KwTrue:
  case TokenKind::KwFalse: {
    bool value = tok.is(TokenKind::KwTrue);
    consume();
    return std::make_unique<BoolExpr>(loc, value);
  }
  case TokenKind::String: {
    std::optional<std::string> value = parseStringLiteral();
    if (!value)
      return nullptr;
    return std::make_unique<StringExpr>(loc, *value);
  }
  case TokenKind::Identifier: {
    if (peek().is(TokenKind::LParen)) {
      if (tok.text == "choice")
        return parseChoice();
      return parseCall(/*parensOptional=*/false);
    }
    auto name = std::make_unique<NameExpr>(loc, tok.text.str());
    consume();
    return name;
  }
  case TokenKind::LParen: {
    consume();
    ExprPtr inner = parseExpr();
    if (!inner || !expect(TokenKind::RParen, "to close the parenthesis"))
      return nullptr;
    return inner;
  }
  case TokenKind::LBrace: {
    consume();
    auto set = std::make_unique<SetExpr>(loc);
    while (!tok.is(TokenKind::RBrace)) {
      ExprPtr element = parseExpr();
      if (!element)
        return nullptr;
      set->elements.push_back(std::move(element));
      if (!consumeIf(TokenKind::Comma))
        break;
    }
    if (!expect(TokenKind::RBrace, "to close the set of values"))
      return nullptr;
    return set;
  }
  default:
    fail("an expression (a number, a name or a call)");
    return nullptr;
  }
}

std::unique_ptr<CallExpr> Parser::parseCall(bool parensOptional) {
  auto call = std::make_unique<CallExpr>(tok.loc(), tok.text.str());
  call->endLoc = tok.endLoc();
  consume();
  if (!tok.is(TokenKind::LParen)) {
    if (parensOptional)
      return call;
    fail("'(' after '" + call->callee + "'");
    return nullptr;
  }
  consume();
  if (!parseArgs(*call))
    return nullptr;
  call->endLoc = tok.endLoc();
  if (!expect(TokenKind::RParen,
              "to close the arguments of '" + call->callee + "'"))
    return nullptr;
  return call;
}

bool Parser::parseArgs(CallExpr &call) {
  while (!tok.is(TokenKind::RParen)) {
    Argument arg;
    arg.loc = tok.loc();
    if (tok.is(TokenKind::Identifier) && peek().is(TokenKind::Equal)) {
      arg.name = tok.text.str();
      consume();
      consume(); // =
    }
    arg.value = parseExpr();
    if (!arg.value)
      return false;
    call.args.push_back(std::move(arg));
    if (!consumeIf(TokenKind::Comma))
      break;
  }
  return true;
}

ExprPtr Parser::parseChoice() {
  auto choice = std::make_unique<ChoiceExpr>(tok.loc());
  consume(); // choice
  if (!expect(TokenKind::LParen, "after 'choice'"))
    return nullptr;
  while (!tok.is(TokenKind::RParen)) {
    if (!tok.is(TokenKind::Identifier)) {
      fail("a candidate block, such as quadra(k = {3, 5, 7}) or skip");
      return nullptr;
    }
    auto candidate = parseCall(/*parensOptional=*/true);
    if (!candidate)
      return nullptr;
    choice->candidates.push_back(std::move(candidate));
    if (!consumeIf(TokenKind::Comma))
      break;
  }
  if (!expect(TokenKind::RParen, "to close the candidates of 'choice'"))
    return nullptr;
  return choice;
}

} // namespace qdsl::dsl
