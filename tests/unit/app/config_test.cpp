#include "app/config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace framepress::app {
namespace {

std::string error_of(const ConfigSources& sources, unsigned scope = kServe) {
  try {
    resolve(sources, scope);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Config, DefaultsAreTheDocumentedOnes) {
  Config c = resolve({}, kServe);
  EXPECT_EQ(c.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.bus, "embedded");
  EXPECT_EQ(c.encoding.preset, "medium");
  EXPECT_EQ(c.encoding.crf, 23);
  EXPECT_EQ(c.ladder.max_resolution, 1080);
  EXPECT_EQ(c.max_upload_bytes, 20ULL << 30);
  EXPECT_EQ(c.max_retries, 2);
  EXPECT_EQ(c.config_file_used, "none");
  EXPECT_GE(c.effective_workers(), 2);
}

TEST(Config, FlagsBeatEnvironmentWhichBeatsTheFile) {
  ConfigSources s;
  s.file_name = "test.toml";
  s.file_text = "listen = \"0.0.0.0:1\"\nworkers = 3\nmax_resolution = 720\n[encoder]\npreset = \"slow\"\ncrf = 20\n";
  Config from_file = resolve(s, kServe);
  EXPECT_EQ(from_file.listen, "0.0.0.0:1");
  EXPECT_EQ(from_file.workers, 3);
  EXPECT_EQ(from_file.ladder.max_resolution, 720);
  EXPECT_EQ(from_file.encoding.preset, "slow");
  EXPECT_EQ(from_file.encoding.crf, 20);
  EXPECT_EQ(from_file.config_file_used, "test.toml");

  s.environment = {{"FRAMEPRESS_LISTEN", "127.0.0.1:2"}, {"FRAMEPRESS_ENCODER_CRF", "30"}};
  Config with_env = resolve(s, kServe);
  EXPECT_EQ(with_env.listen, "127.0.0.1:2");
  EXPECT_EQ(with_env.encoding.crf, 30);
  EXPECT_EQ(with_env.workers, 3);

  s.flags = {{"listen", "127.0.0.1:3"}};
  Config with_flag = resolve(s, kServe);
  EXPECT_EQ(with_flag.listen, "127.0.0.1:3");
  EXPECT_EQ(with_flag.encoding.crf, 30);
}

TEST(Config, ThePrototypesNamesApplyOnlyWhereOursAreUnset) {
  ConfigSources s;
  s.environment = {{"MAX_RESOLUTION", "480"}, {"MAX_WORKERS", "5"}, {"MAX_CONTENT_LENGTH", "104857600"},
                   {"KAFKA_SERVER", "broker:9092"}};
  Config legacy = resolve(s, kServe);
  EXPECT_EQ(legacy.ladder.max_resolution, 480);
  EXPECT_EQ(legacy.workers, 5);
  EXPECT_EQ(legacy.max_upload_bytes, 104857600u);
  EXPECT_EQ(legacy.bus, "kafka://broker:9092");

  s.environment["FRAMEPRESS_MAX_RESOLUTION"] = "720";
  EXPECT_EQ(resolve(s, kServe).ladder.max_resolution, 720);
  // The prototype's variables still beat the file: they are environment.
  s.environment.erase("FRAMEPRESS_MAX_RESOLUTION");
  s.file_text = "max_resolution = 1080";
  s.file_name = "f.toml";
  EXPECT_EQ(resolve(s, kServe).ladder.max_resolution, 480);
}

TEST(Config, BadValuesNameTheOptionAndWhereTheValueCameFrom) {
  ConfigSources s;
  s.environment = {{"FRAMEPRESS_WORKERS", "many"}};
  auto message = error_of(s);
  EXPECT_NE(message.find("--workers"), std::string::npos) << message;
  EXPECT_NE(message.find("FRAMEPRESS_WORKERS"), std::string::npos) << message;
  EXPECT_NE(message.find("whole number"), std::string::npos) << message;

  ConfigSources bad_preset;
  bad_preset.flags = {{"encoder.preset", "warp"}};
  EXPECT_NE(error_of(bad_preset).find("one of"), std::string::npos);

  ConfigSources secret;
  secret.flags = {{"kafka.properties", "sasl.password=hunter2,oops"}};
  auto refused = error_of(secret, kServe);
  EXPECT_NE(refused.find("--kafka-properties"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("hunter2"), std::string::npos) << refused;

  ConfigSources bad_bus;
  bad_bus.flags = {{"bus", "redis://x"}};
  EXPECT_NE(error_of(bad_bus).find("--bus"), std::string::npos);
}

TEST(Config, TheFileIsCheckedForTyposAndSyntax) {
  ConfigSources typo;
  typo.file_name = "f.toml";
  typo.file_text = "listne = \"x\"";
  EXPECT_NE(error_of(typo).find("unknown option 'listne'"), std::string::npos);

  ConfigSources broken;
  broken.file_name = "f.toml";
  broken.file_text = "listen = ";
  EXPECT_NE(error_of(broken).find("f.toml"), std::string::npos);
}

TEST(Config, FlagsOfOtherSubcommandsAreIgnored) {
  ConfigSources s;
  s.flags = {{"server", "http://elsewhere:1"}};
  EXPECT_EQ(resolve(s, kServe).server, "http://127.0.0.1:8080");
  EXPECT_EQ(resolve(s, kClient).server, "http://elsewhere:1");
}

TEST(Config, EveryOptionHasAFlagAnEnvironmentNameAndHelp) {
  for (const auto& o : options()) {
    EXPECT_EQ(o.flag.rfind("--", 0), 0u) << o.key;
    EXPECT_EQ(o.env.rfind("FRAMEPRESS_", 0), 0u) << o.key;
    EXPECT_FALSE(o.help.empty()) << o.key;
    EXPECT_NE(o.scopes, 0u) << o.key;
  }
}

TEST(Config, SizesAndDurations) {
  EXPECT_EQ(parse_size("20GiB"), 20ULL << 30);
  EXPECT_EQ(parse_size("100MB"), 100000000u);
  EXPECT_EQ(parse_size("512 mib"), 512ULL << 20);
  EXPECT_EQ(parse_size("42"), 42u);
  EXPECT_FALSE(parse_size("lots"));
  EXPECT_FALSE(parse_size("5XB"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("17179869184GiB"));  // overflows
  EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("15m"), std::chrono::seconds(900));
  EXPECT_EQ(parse_duration("6h"), std::chrono::seconds(21600));
  EXPECT_EQ(parse_duration("30"), std::chrono::seconds(30));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("1w"));
}

TEST(Config, EncoderLimitsFromTheFileTheEnvironmentAndFlags) {
  EXPECT_EQ(resolve({}, kWorker).encoder_cpu_time_limit, std::chrono::seconds(0));
  ConfigSources s;
  s.file_name = "limits.toml";
  s.file_text = "[limits]\nencoder_cpu_time = \"2h\"\nencoder_memory = \"4GiB\"\n";
  Config from_file = resolve(s, kWorker);
  EXPECT_EQ(from_file.encoder_cpu_time_limit, std::chrono::seconds(7200));
  EXPECT_EQ(from_file.encoder_memory_limit, 4ULL << 30);
  s.environment = {{"FRAMEPRESS_LIMITS_ENCODER_CPU_TIME", "90m"}};
  EXPECT_EQ(resolve(s, kWorker).encoder_cpu_time_limit, std::chrono::seconds(5400));
  s.flags = {{"limits.encoder_cpu_time", "30s"}};
  EXPECT_EQ(resolve(s, kServe).encoder_cpu_time_limit, std::chrono::seconds(30));
  s.flags = {{"limits.encoder_cpu_time", "forever"}};
  EXPECT_NE(error_of(s, kServe).find("--limits-encoder-cpu-time"), std::string::npos) << error_of(s, kServe);
}

TEST(Config, UrlsWithCredentialsAreRefusedWithoutEchoingThem) {
  for (const auto& [key, url] : std::vector<std::pair<std::string, std::string>>{
           {"storage", "s3://AKIDEXAMPLE:hunter2secret@videos?endpoint=http://127.0.0.1:8333"},
           {"storage", "file://user:hunter2secret@host/srv/objects"},
           {"bus", "kafka://user:hunter2secret@127.0.0.1:9092"},
           {"bus", "kafka://127.0.0.1:9092?sasl.password=hunter2secret"}}) {
    ConfigSources s;
    s.flags = {{key, url}};
    const std::string message = error_of(s, kServe);
    EXPECT_NE(message.find("--" + key), std::string::npos) << message;
    EXPECT_TRUE(message.find("user:password@") != std::string::npos || message.find("no query") != std::string::npos)
        << message;
    EXPECT_EQ(message.find("hunter2secret"), std::string::npos) << "the secret is echoed: " << message;
    EXPECT_EQ(message.find("AKIDEXAMPLE"), std::string::npos) << message;
  }
  // An '@' after the authority is not user information.
  ConfigSources fine;
  fine.flags = {{"storage", "file:///srv/objects@2"}};
  EXPECT_EQ(resolve(fine, kServe).storage, "file:///srv/objects@2");
}

TEST(Config, ConfigFileSearchOrder) {
  EXPECT_EQ(find_config_file(std::string("/x/y.toml"), {}), std::filesystem::path("/x/y.toml"));
  EXPECT_EQ(find_config_file(std::nullopt, {{"FRAMEPRESS_CONFIG", "/a.toml"}}), std::filesystem::path("/a.toml"));
}

}  // namespace framepress::app
