// The generated programs' flags (predict, train, search): one parser, so
// that every program refuses a bad flag alike, naming it and its range.
#ifndef QDSL_PROGRAM_FLAGS_H
#define QDSL_PROGRAM_FLAGS_H

#include <fmt/core.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace qdsl_program {

// An integer in [min, max], all of `text`, without overflow.
inline bool parse_int(const std::string &text, long long min, long long max, long long &value) {
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || v < min || v > max)
        return false;
    value = v;
    return true;
}

// A finite number in [min, max], all of `text`.
inline bool parse_double(const std::string &text, double min, double max, double &value) {
    char *end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v < min || v > max)
        return false;
    value = v;
    return true;
}

// A program's flags: each name with where its value goes (and the range
// a number must be in). A switch takes no value; a list flag may repeat.
struct FlagTable {
    std::map<std::string, bool *> switches;
    std::map<std::string, std::string *> texts;
    std::map<std::string, std::vector<std::string> *> lists;
    std::map<std::string, std::tuple<long long *, long long, long long>> integers;
    std::map<std::string, std::tuple<double *, double, double>> reals;
};

// Parses argv into `table`'s variables, recording each flag seen in
// `given`. Returns -1 to go on; 0 after printing `usage` for --help; 2
// after printing "PROGRAM: " and what is wrong (an unknown flag, a missing
// or empty value, a number out of its range, naming the flag) with `usage`.
inline int parse_flags(int argc, char **argv, const FlagTable &table,
                       std::set<std::string> &given, const char *program, const char *usage) {
    auto wrong = [&](const std::string &error) {
        fmt::print(stderr, "{}: {}\n{}", program, error, usage);
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            fmt::print("{}", usage);
            return 0;
        }
        // One value a flag (but the lists): a second would silently win.
        if (!given.insert(arg).second && !table.lists.count(arg))
            return wrong(arg + " is given twice; give it once");
        if (auto flag = table.switches.find(arg); flag != table.switches.end()) {
            *flag->second = true;
            continue;
        }
        if (!table.texts.count(arg) && !table.lists.count(arg) && !table.integers.count(arg) &&
            !table.reals.count(arg))
            return wrong("unknown option '" + arg + "'");
        if (i + 1 >= argc || argv[i + 1][0] == '\0')
            return wrong(arg + " needs a value");
        std::string v = argv[++i];
        if (auto text = table.texts.find(arg); text != table.texts.end()) {
            *text->second = v;
        } else if (auto list = table.lists.find(arg); list != table.lists.end()) {
            list->second->push_back(v);
        } else if (auto integer = table.integers.find(arg); integer != table.integers.end()) {
            auto [into, min, max] = integer->second;
            if (!parse_int(v, min, max, *into))
                return wrong(arg + " needs an integer from " + std::to_string(min) + " to " +
                             std::to_string(max) + ", got '" + v + "'");
        } else if (auto [into, min, max] = table.reals.at(arg); !parse_double(v, min, max, *into)) {
            return wrong(arg + " needs a number from " + fmt::format("{}", min) + " to " +
                         fmt::format("{}", max) + ", got '" + v + "'");
        }
    }
    return -1;
}

// Every flag of `table` with its value (given or default), one "--flag
// value" a line in a fixed order, but those in `per_process`: what ranks of
// one job compare (same_flags in program_support.h).
inline std::string describe_flags(const FlagTable &table,
                                  const std::set<std::string> &per_process) {
    std::map<std::string, std::string> lines;
    for (const auto &[name, value] : table.switches)
        lines[name] = *value ? "true" : "false";
    for (const auto &[name, value] : table.texts)
        lines[name] = *value;
    for (const auto &[name, values] : table.lists) {
        std::string joined;
        for (const std::string &v : *values)
            joined += (joined.empty() ? "" : " ") + v;
        lines[name] = joined;
    }
    for (const auto &[name, spec] : table.integers)
        lines[name] = std::to_string(*std::get<0>(spec));
    for (const auto &[name, spec] : table.reals)
        lines[name] = fmt::format("{}", *std::get<0>(spec));
    std::string text;
    for (const auto &[name, value] : lines)
        if (!per_process.count(name))
            text += name + " " + value + "\n";
    return text;
}

// The comma-separated items of `text` ("0,2,1": three; "": one, empty).
inline std::vector<std::string> split_commas(const std::string &text) {
    std::vector<std::string> parts;
    for (size_t start = 0;;) {
        size_t comma = text.find(',', start);
        parts.push_back(text.substr(start, comma - start));
        if (comma == std::string::npos)
            return parts;
        start = comma + 1;
    }
}

}  // namespace qdsl_program

#endif  // QDSL_PROGRAM_FLAGS_H
