// synclap CLI: every subcommand lives in its own cmd_<name>.cpp and registers itself here,
// so adding a command never touches main.cpp.
//
//   static synclap::cli::Command reg("info", "Show format, rate, channels and duration of audio files",
//       [](CLI::App& sub, synclap::cli::Context& ctx) {
//         auto files = std::make_shared<std::vector<std::string>>();
//         sub.add_option("files", *files, "audio files")->required();
//         return [files, &ctx]() -> int { ...; return 0; };   // runs after parsing
//       });
//
// Errors: throw synclap::Error / FileError (or any std::exception); main prints "synclap: <what>"
// on one line and exits 1. With --json, print machine-readable JSON on stdout (ctx.json).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>

namespace synclap::cli {

struct Context {
  bool json = false;      // --json: machine-readable output on stdout
  bool quiet = false;     // --quiet: no progress lines
  int threads = 0;        // --threads (0 = all cores)
};

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App& sub, Context& ctx)>;

struct CommandInfo {
  std::string name, description;
  Setup setup;
};

std::map<std::string, CommandInfo>& registry();

struct Command {
  Command(const std::string& name, const std::string& description, Setup setup) {
    registry()[name] = CommandInfo{name, description, std::move(setup)};
  }
};

}  // namespace synclap::cli
