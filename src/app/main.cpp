// framepress: one binary, subcommands for every role. main only gathers the inputs (flags, environment,
// file), resolves the configuration and hands over; every error a user can cause ends here as a message
// and a non-zero exit code.

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "app/config.h"
#include "app/logging.h"
#include "api/access.h"
#include "app/serve.h"
#include "cli/client.h"
#include "core/error.h"

extern char** environ;

namespace {

using namespace framepress;

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

/// Adds the table's options of `scope` to a subcommand; values given go into `flags`.
void add_config_options(CLI::App& command, unsigned scope, std::map<std::string, std::string>& flags) {
  for (const auto& o : app::options()) {
    if ((o.scopes & scope) == 0) continue;
    std::string help = o.help + "\n  default: " + o.default_text + "; environment: " + o.env;
    for (const auto& legacy : o.legacy_env) help += " (or " + legacy + ")";
    command.add_option_function<std::string>(o.flag, [&flags, key = o.key](const std::string& v) { flags[key] = v; },
                                             help);
  }
}

app::Config load_config(const std::optional<std::string>& config_flag, const std::map<std::string, std::string>& flags,
                        unsigned scope) {
  app::ConfigSources sources;
  sources.flags = flags;
  sources.environment = process_environment();
  if (auto file = app::find_config_file(config_flag, sources.environment)) {
    std::ifstream in(*file);
    if (!in) throw Error(ErrorCode::bad_request, "cannot read the configuration file " + file->string(), "bad_config");
    std::stringstream text;
    text << in.rdbuf();
    sources.file_text = text.str();
    sources.file_name = file->string();
  }
  return app::resolve(sources, scope);
}

}  // namespace

int main(int argc, char** argv) {
  app::block_shutdown_signals();
  CLI::App cli{"framepress: self-hosted video compression.\n"
               "Upload a video; it is compressed into a ladder of resolutions in parallel, with live progress.",
               "framepress"};
  cli.require_subcommand(1);
  cli.set_help_all_flag("--help-all", "help for every subcommand");
  std::optional<std::string> config_flag;
  auto add_config_flag = [&](CLI::App& command) {
    command.add_option_function<std::string>("--config", [&](const std::string& v) { config_flag = v; },
                                             "TOML configuration file\n  default: ./framepress.toml, "
                                             "~/.config/framepress/config.toml or /etc/framepress/config.toml, "
                                             "the first that exists; environment: FRAMEPRESS_CONFIG");
  };

  std::map<std::string, std::string> flags;
  auto* serve = cli.add_subcommand("serve", "run everything in one process: API, workers, embedded queue and storage");
  add_config_flag(*serve);
  add_config_options(*serve, app::kServe, flags);

  auto* api_command = cli.add_subcommand("api", "run the HTTP API (and the web page) over Kafka and shared storage");
  add_config_flag(*api_command);
  add_config_options(*api_command, app::kApi, flags);
  auto* worker_command = cli.add_subcommand("worker", "run a pool of workers for some resolution classes over Kafka");
  add_config_flag(*worker_command);
  add_config_options(*worker_command, app::kWorker, flags);

  std::string file;
  std::string renditions;
  std::string preset;
  bool no_wait = false;
  auto* submit = cli.add_subcommand("submit", "upload a video and follow its compression with progress bars");
  submit->add_option("file", file, "the video to upload")->required();
  submit->add_option("--renditions", renditions, "renditions to make, e.g. 720p,480p (default: the server's ladder)");
  submit->add_option("--preset", preset, "quality preset: standard, fast, small or quality (default: the server's)");
  submit->add_flag("--no-wait", no_wait, "print the job's id and return without following it");
  add_config_flag(*submit);
  add_config_options(*submit, app::kClient, flags);

  std::string id;
  bool follow = false;
  bool json = false;
  auto* status = cli.add_subcommand("status", "show a video's state, or the recent videos");
  status->add_option("id", id, "the video's id (default: list recent videos)");
  status->add_flag("--follow", follow, "follow the video's progress until it ends");
  status->add_flag("--json", json, "print the API's JSON");
  add_config_flag(*status);
  add_config_options(*status, app::kClient, flags);

  std::string token_name;
  std::string token_scopes = "upload,read";
  auto* token = cli.add_subcommand("token", "make a bearer token and the line of the tokens file that admits it");
  token->add_option("--name", token_name, "who the token is for (owns what it uploads)")->required();
  token->add_option("--scopes", token_scopes, "upload, read and/or admin, comma-separated")->capture_default_str();

  auto* version = cli.add_subcommand("version", "print the version");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }

  try {
    if (version->parsed()) {
      std::cout << "framepress " << FRAMEPRESS_VERSION << "\n";
      return 0;
    }
    if (token->parsed()) {
      std::string scopes;
      std::stringstream list(token_scopes);
      for (std::string item; std::getline(list, item, ',');) {
        if (!api::parse_scope(item)) throw Error(ErrorCode::bad_request, "unknown scope '" + item + "': upload, read or admin");
        scopes += (scopes.empty() ? "\"" : ", \"") + item + "\"";
      }
      const std::string secret = api::generate_token();
      std::cerr << "The token (shown once; only its hash is kept):\n";
      std::cout << secret << "\n";
      std::cerr << "Add this to the tokens file (--tokens-file):\n";
      std::cout << "\n[[token]]\nname = \"" << token_name << "\"\nsha256 = \"" << api::sha256_hex(secret)
                << "\"\nscopes = [" << scopes << "]\n";
      return 0;
    }
    if (serve->parsed() || api_command->parsed() || worker_command->parsed()) {
      const unsigned scope = serve->parsed() ? app::kServe : api_command->parsed() ? app::kApi : app::kWorker;
      auto config = load_config(config_flag, flags, scope);
      app::setup_logging(config.log_level, config.log_format);
      if (serve->parsed()) return app::run_serve(config);
      if (api_command->parsed()) return app::run_api(config);
      return app::run_worker(config);
    }
    auto config = load_config(config_flag, flags, app::kClient);
    if (submit->parsed()) {
      cli::SubmitOptions options;
      options.server = config.server;
      options.token = config.token;
      options.file = file;
      std::stringstream list(renditions);
      for (std::string item; std::getline(list, item, ',');) {
        if (!item.empty()) options.renditions.push_back(item);
      }
      options.preset = preset;
      options.wait = !no_wait;
      return cli::submit(options, std::cout, std::cerr);
    }
    if (status->parsed()) {
      cli::StatusOptions options;
      options.server = config.server;
      options.token = config.token;
      options.id = id;
      options.follow = follow;
      options.json = json;
      return cli::status(options, std::cout, std::cerr);
    }
  } catch (const Error& e) {
    std::cerr << "framepress: " << e.what() << "\n";
    return e.code() == ErrorCode::bad_request ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "framepress: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
