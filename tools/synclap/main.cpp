// synclap: one binary, many subcommands (see command.h for how they register).
#include <cstdio>
#include <exception>
#include <iostream>

#include "command.h"
#include "synclap/process_setup.h"
#include "synclap/util.h"

namespace synclap::cli {
std::map<std::string, CommandInfo>& registry() {
  static std::map<std::string, CommandInfo> r;
  return r;
}
}  // namespace synclap::cli

int main(int argc, char** argv) {
  synclap::ensure_blas_kernels(argc, argv);
  synclap::tune_memory_allocator();
  using namespace synclap::cli;
  CLI::App app{"synclap: contrastive language-audio pretraining (CLAP) for music, in C++"};
  app.set_version_flag("--version", std::string("synclap ") + SYNCLAP_VERSION);
  app.require_subcommand(1);
  Context ctx;
  app.add_flag("--json", ctx.json, "Machine-readable JSON output on stdout");
  app.add_flag("-q,--quiet", ctx.quiet, "No progress output");
  app.add_option("--threads", ctx.threads, "Worker threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app.fallthrough();

  std::map<std::string, Runner> runners;
  std::map<CLI::App*, std::string> names;
  for (auto& [name, info] : registry()) {
    CLI::App* sub = app.add_subcommand(name, info.description);
    runners[name] = info.setup(*sub, ctx);
    names[sub] = name;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) return runners.at(names.at(sub))();
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "synclap: " << e.what() << std::endl;
    return 1;
  }
}
