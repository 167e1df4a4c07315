// Settings from the environment and the command line over the config file
// (docs/config.md "Environment and flags"): which variables, precedence, data_dir, and errors
// that name the variable or flag.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "tests/testing/config_errors.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

Config load(const fs::path& path) {
  std::vector<ConfigError> errors;
  auto cfg = load_config(path, errors);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors[0].to_string());
  return cfg ? *cfg : Config{};
}

using testing::strings;

TEST(ConfigOverridesTest, EnvironmentVariablesMapToKeys) {
  std::map<std::string, std::string> env = {{"SCHEDD_LISTEN", "127.0.0.1:9"},
                                            {"SCHEDD_STORE", "memory"},
                                            {"SCHEDD_CONFIG", "/etc/schedd/schedd.toml"},
                                            {"SCHEDD_TOKEN_FILE", "t"},
                                            {"SCHEDD_LISTENING", "ignored"}};
  auto o = environment_overrides([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  std::vector<std::string> got;
  for (const auto& x : o) got.push_back(x.source + " " + x.key + "=" + x.value);
  // SCHEDD_CONFIG names the file (the CLI's business), not a key.
  EXPECT_THAT(
      got, ElementsAre("SCHEDD_LISTEN api.listen=127.0.0.1:9", "SCHEDD_STORE daemon.store=memory",
                       "SCHEDD_TOKEN_FILE api.token_file=t"));
}

TEST(ConfigOverridesTest, FlagOverEnvironmentOverFile) {
  testing::TempDir dir;
  auto path = dir.write("etc/schedd.toml", R"([daemon]
log_level = "warn"
[api]
listen = "127.0.0.1:7000"
)");
  Config cfg = load(path);
  std::vector<ConfigError> errors;
  apply_overrides(cfg,
                  {{"api.listen", "127.0.0.1:7001", "SCHEDD_LISTEN"},
                   {"daemon.log_level", "debug", "SCHEDD_LOG_LEVEL"},
                   {"api.listen", "127.0.0.1:7002", "--listen"}},
                  "/work", errors);
  ASSERT_TRUE(errors.empty()) << strings(errors)[0];
  EXPECT_EQ(cfg.listen, "127.0.0.1:7002");
  EXPECT_EQ(cfg.log_level, "debug");
  ASSERT_TRUE(cfg.overridden.contains("api.listen"));
  EXPECT_EQ(cfg.overridden.at("api.listen").source, "--listen");
  // What the flag replaced is what the environment had set; the file's value was before.
  EXPECT_EQ(cfg.overridden.at("api.listen").replaced, "127.0.0.1:7001");
  EXPECT_EQ(cfg.overridden.at("daemon.log_level").source, "SCHEDD_LOG_LEVEL");
  EXPECT_EQ(cfg.overridden.at("daemon.log_level").replaced, "warn");
  EXPECT_FALSE(cfg.overridden.contains("daemon.store"));
}

TEST(ConfigOverridesTest, DataDirHoldsARelativeSqliteStore) {
  testing::TempDir dir;
  // By default a relative store path lives beside the config file, as it always did.
  auto path = dir.write("etc/schedd.toml", "[daemon]\nstore = \"sqlite:db/schedd.db\"\n");
  Config cfg = load(path);
  EXPECT_EQ(cfg.data_dir, dir / "etc");
  EXPECT_EQ(cfg.store_path, dir / "etc/db/schedd.db");

  // [daemon] data_dir, relative to the file's folder.
  path = dir.write("etc/schedd.toml",
                   "[daemon]\nstore = \"sqlite:schedd.db\"\ndata_dir = \"../state\"\n");
  cfg = load(path);
  EXPECT_EQ(cfg.data_dir, dir / "state");
  EXPECT_EQ(cfg.store_path, dir / "state/schedd.db");

  // --data-dir, relative to the working directory; an absolute store path ignores it.
  std::vector<ConfigError> errors;
  apply_overrides(cfg, {{"daemon.data_dir", "var/lib", "--data-dir"}}, "/srv", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(cfg.data_dir, "/srv/var/lib");
  EXPECT_EQ(cfg.store_path, "/srv/var/lib/schedd.db");
  apply_overrides(cfg, {{"daemon.store", "sqlite:/data/x.db", "SCHEDD_STORE"}}, "/srv", errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(cfg.store_path, "/data/x.db");
  // A relative SCHEDD_STORE path lives in the data dir, like the file's.
  apply_overrides(cfg, {{"daemon.store", "sqlite:y.db", "SCHEDD_STORE"}}, "/srv", errors);
  EXPECT_EQ(cfg.store_path, "/srv/var/lib/y.db");
  apply_overrides(cfg, {{"daemon.store", "memory", "SCHEDD_STORE"}}, "/srv", errors);
  EXPECT_TRUE(cfg.store_path.empty());
}

TEST(ConfigOverridesTest, TokenFileReplacesTokenEnv) {
  testing::TempDir dir;
  auto path = dir.write("schedd.toml", "[api]\ntoken_env = \"TOKEN\"\n");
  Config cfg = load(path);
  std::vector<ConfigError> errors;
  apply_overrides(cfg, {{"api.token_file", "secrets/token", "SCHEDD_TOKEN_FILE"}}, "/etc/schedd",
                  errors);
  EXPECT_TRUE(errors.empty());
  ASSERT_TRUE(cfg.token_file);
  EXPECT_EQ(*cfg.token_file, "/etc/schedd/secrets/token");
  EXPECT_FALSE(cfg.token_env);
  EXPECT_EQ(cfg.overridden.at("api.token_file").replaced, "token_env = \"TOKEN\"");
}

TEST(ConfigOverridesTest, BadValuesNameTheirSourceAndKeepTheFileValue) {
  testing::TempDir dir;
  auto path = dir.write("schedd.toml", "[api]\nlisten = \"127.0.0.1:7000\"\n");
  Config cfg = load(path);
  std::vector<ConfigError> errors;
  apply_overrides(cfg,
                  {{"api.listen", "localhost", "SCHEDD_LISTEN"},
                   {"daemon.store", "postgres://x", "SCHEDD_STORE"},
                   {"daemon.log_level", "verbose", "--log-level"},
                   {"daemon.log_level", "wran", "SCHEDD_LOG_LEVEL"},
                   {"daemon.data_dir", "", "SCHEDD_DATA_DIR"},
                   {"api.listen", "127.0.0.1:99999", "--listen"}},
                  "/", errors);
  auto e = strings(errors);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0], "SCHEDD_LISTEN: \"localhost\" is not HOST:PORT, e.g. \"127.0.0.1:7878\"");
  EXPECT_THAT(e[1], HasSubstr("SCHEDD_STORE: \"postgres://x\" is not a supported store"));
  EXPECT_THAT(e[2], HasSubstr("--log-level: \"verbose\" is not one of"));
  EXPECT_THAT(e[3], HasSubstr("SCHEDD_LOG_LEVEL: \"wran\" is not one of"));
  EXPECT_THAT(e[3], HasSubstr("did you mean \"warn\""));
  EXPECT_THAT(e[4], HasSubstr("SCHEDD_DATA_DIR: is set but empty"));
  EXPECT_THAT(e[5], HasSubstr("--listen: port 99999 is out of range"));
  EXPECT_EQ(cfg.listen, "127.0.0.1:7000");
  EXPECT_TRUE(cfg.overridden.empty());
}

}  // namespace
}  // namespace schedd
