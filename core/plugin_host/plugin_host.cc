#include "core/plugin_host/plugin_host.h"

#include <schedd/abi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <system_error>
#include <type_traits>

#include <toml++/toml.h>

#include "core/config/config.h"
#include "core/config/toml_limits.h"

namespace schedd {

const char* run_status_name(RunStatus s) {
  switch (s) {
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kFailedPermanent:
      return "failed_permanent";
    case RunStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

// A loaded library and the executor instances created from it. The instances are destroyed
// (through the plugin's own destroy function) before the library is unmapped, which happens
// when the last LoadedExecutor referring to it goes away.
//
// The manifest, executor definitions and param specs are the daemon's own copies, at the
// daemon's struct sizes: a plugin built against an older SDK of the same ABI has shorter
// structs, so nothing here points at the plugin's arrays (which have the plugin's strides).
class Plugin {
 public:
  ~Plugin() {
    for (auto [def, instance] : instances) {
      if (def->destroy != nullptr && instance != nullptr) def->destroy(instance);
    }
    // `lib` is destroyed after this body: the code above still runs from a mapped library.
  }
  boost::dll::shared_library lib;
  schedd_manifest manifest{};
  // defs[i].params points at specs[i].data(). Neither vector changes once filled, so the
  // pointers LoadedExecutor and `instances` hold into them stay valid.
  std::vector<schedd_executor_def> defs;
  std::vector<std::vector<schedd_param_spec>> specs;
  std::vector<std::pair<const schedd_executor_def*, void*>> instances;
};

namespace {

// Boost.DLL reports a failed dlopen as "...load() failed (dlerror system message: <text>):
// <errno text>". The dlerror text is what an operator needs; keep just that when present.
std::string dlerror_text(const std::string& what) {
  const std::string marker = "dlerror system message: ";
  auto start = what.find(marker);
  if (start == std::string::npos) return what;
  start += marker.size();
  auto end = what.rfind("): ");
  if (end == std::string::npos || end < start) end = what.size();
  return what.substr(start, end - start);
}

bool valid_executor_name(const char* name) {
  if (name == nullptr || *name == '\0') return false;
  for (const char* p = name; *p != '\0'; ++p) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The sizes of the ABI structs in the first SDK of ABI 1 ("ABI 1.0"). Within one ABI
// version structs only grow, by fields added at their end, so every plugin of ABI 1 has at
// least these; a smaller size is not an older SDK but a corrupt manifest. Never change these
// numbers: they describe plugins that exist. tests/fixtures/abi_v1_0/schedd/abi.h is that
// header, frozen.
constexpr uint32_t kV1_0ManifestSize = 64;
constexpr uint32_t kV1_0ExecutorDefSize = 56;
constexpr uint32_t kV1_0ParamSpecSize = 32;
constexpr uint32_t kV1_0ParamSize = 64;
constexpr uint32_t kV1_0ContextSize = 96;
constexpr uint32_t kV1_0HostApiSize = 48;
// The numbers above are for LP64 (x86-64, AArch64 Linux); a 32-bit port needs its own.
static_assert(sizeof(void*) == 8 && sizeof(std::size_t) == 8 && alignof(int64_t) == 8,
              "the ABI 1.0 struct sizes are recorded for LP64 targets only");
// Each 1.0 size is where the last field of 1.0 ends (rounded up to 8): a field moved or
// retyped since would show here.
static_assert(offsetof(schedd_manifest, executor_count) + 8 == kV1_0ManifestSize);
static_assert(offsetof(schedd_executor_def, run) + 8 == kV1_0ExecutorDefSize);
static_assert(offsetof(schedd_param_spec, description) + 8 == kV1_0ParamSpecSize);
static_assert(offsetof(schedd_param, item_keys) + 8 == kV1_0ParamSize);
static_assert(offsetof(schedd_context, api) + 8 == kV1_0ContextSize);
static_assert(offsetof(schedd_host_api, set_result_text) + 8 == kV1_0HostApiSize);

struct SizeCheck {
  const char* name;
  uint32_t plugin;
  uint32_t first;      // in the first SDK of this ABI version
  std::size_t daemon;  // in this daemon
};

// Why the plugin's struct sizes cannot work with this daemon, or "" when they can: each may
// lie anywhere from the first SDK's size to this daemon's (the plugin was built against an
// SDK of this ABI no newer than the daemon's). `checks` has the manifest itself first.
// What the abi.h comment promises of a param name: lower_snake_case, i.e. a-z, 0-9 and '_',
// starting with a letter. Config keys and API fields are written that way, so a name outside
// it could not be set, or would be set under a spelling the plugin does not expect.
bool valid_param_name(const char* name) {
  if (!(*name >= 'a' && *name <= 'z')) return false;
  for (const char* p = name; *p != '\0'; ++p) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// The default a plugin declared (TOML text), converted per the spec with the rules a value
// written in a config file meets (convert_param), so that a default which could never be
// used is refused at load, not found by the first helper that leaves the param unset.
// Returns "" when it converts, else why not. (config.cc reads a default the same way when it
// fills one in; its default_value() is not public, so the TOML-to-RawParam step is repeated.)
std::string default_problem(const ParamSpec& spec) {
  const std::string doc = "v = " + *spec.default_toml;
  if (auto over = check_toml_limits(doc)) return "not a TOML value: " + over->message;
  toml::table t;
  try {
    t = toml::parse(std::string_view(doc), std::string_view("default"));
  } catch (const toml::parse_error& e) {
    return "not a TOML value: " + std::string(e.description());
  }
  const toml::node* node = t.get("v");
  if (node == nullptr || t.size() != 1) return "not a single TOML value";
  RawParam raw{spec.name, SourceLoc{}, RawParam::Kind::kOther, std::string()};
  switch (node->type()) {
    case toml::node_type::string:
      raw.kind = RawParam::Kind::kString;
      raw.value = node->as_string()->get();
      break;
    case toml::node_type::integer:
      raw.kind = RawParam::Kind::kInt;
      raw.value = node->as_integer()->get();
      break;
    case toml::node_type::floating_point:
      raw.kind = RawParam::Kind::kDouble;
      raw.value = node->as_floating_point()->get();
      break;
    case toml::node_type::boolean:
      raw.kind = RawParam::Kind::kBool;
      raw.value = node->as_boolean()->get();
      break;
    case toml::node_type::array: {
      StringList list;
      for (const auto& element : *node->as_array()) {
        if (!element.is_string()) break;
        list.push_back(element.as_string()->get());
      }
      if (list.size() != node->as_array()->size()) {
        raw.value = std::string("array containing more than strings");
        break;
      }
      raw.kind = RawParam::Kind::kStringList;
      raw.value = std::move(list);
      break;
    }
    case toml::node_type::table: {
      StringMap map;
      for (const auto& [key, value] : *node->as_table()) {
        if (!value.is_string()) break;
        map.emplace(std::string(key.str()), value.as_string()->get());
      }
      if (map.size() != node->as_table()->size()) {
        raw.value = std::string("table containing more than strings");
        break;
      }
      raw.kind = RawParam::Kind::kStringMap;
      raw.value = std::move(map);
      break;
    }
    default: {
      std::ostringstream type;
      type << node->type();
      raw.value = type.str();
      break;
    }
  }
  std::string error;
  if (convert_param(raw, spec, error)) return "";
  // convert_param names the param first; the caller already does.
  const std::string prefix = "param \"" + spec.name + "\": ";
  if (error.starts_with(prefix)) error.erase(0, prefix.size());
  return error;
}

std::string size_problems(const SizeCheck* checks, std::size_t count) {
  std::string corrupt;
  std::string newer;
  for (std::size_t i = 0; i < count; ++i) {
    const SizeCheck& c = checks[i];
    const std::string plugin = std::string(c.name) + " is " + std::to_string(c.plugin) + " bytes";
    if (c.plugin < c.first) {
      if (!corrupt.empty()) corrupt += "; ";
      corrupt += plugin + ", less than the " + std::to_string(c.first) +
                 " of the first SDK of ABI " + std::to_string(SCHEDD_ABI_VERSION);
    } else if (c.plugin > c.daemon) {
      if (!newer.empty()) newer += "; ";
      newer += plugin + " in the plugin, " + std::to_string(c.daemon) + " in this daemon";
    }
  }
  // Sizes below any SDK's mean the rest of the manifest cannot be trusted either.
  if (!corrupt.empty()) return "corrupt manifest: " + corrupt;
  if (!newer.empty()) {
    return "built against a newer SDK than this daemon's (" + newer +
           "): upgrade the daemon, or rebuild the plugin against this daemon's SDK";
  }
  return "";
}

// Copies `count` elements of an array a plugin exports, laid out with the plugin's `stride`
// (its sizeof, no larger than the daemon's: checked at load), into zero-initialised structs of
// the daemon's size. Fields added after the plugin's SDK stay zero (NULL for pointers).
template <typename T>
std::vector<T> copy_plugin_array(const void* array, std::size_t count, uint32_t stride) {
  static_assert(std::is_trivially_copyable_v<T>);
  std::vector<T> out(count);  // value-initialised: all zero
  const auto* bytes = static_cast<const unsigned char*>(array);
  for (std::size_t i = 0; i < count; ++i) {
    std::memcpy(&out[i], bytes + i * stride, std::min<std::size_t>(stride, sizeof(T)));
  }
  return out;
}

// Per-call state behind the opaque `host` pointer handed to the plugin.
struct HostCall {
  const RunRequest* request = nullptr;
  const ExecutorInfo* info = nullptr;
  StopSource* stop = nullptr;
  std::mutex mu;  // guards message/output: set_result_text may come from plugin threads
  std::string message;
  std::string output;
};

int32_t host_stop_requested(void* host) {
  return static_cast<HostCall*>(host)->stop->stop_requested() ? 1 : 0;
}

int32_t host_wait_for_stop(void* host, int64_t timeout_ms) {
  if (timeout_ms < 0) timeout_ms = 0;
  return static_cast<HostCall*>(host)->stop->wait_for(std::chrono::milliseconds(timeout_ms)) ? 1
                                                                                             : 0;
}

void host_progress(void* host, double fraction, const char* message) {
  auto* call = static_cast<HostCall*>(host);
  if (call->request->on_progress) {
    call->request->on_progress(fraction, message == nullptr ? std::string_view() : message);
  }
}

void host_log(void* host, int32_t level, const char* message) {
  auto* call = static_cast<HostCall*>(host);
  if (call->request->on_log) {
    call->request->on_log(level, message == nullptr ? std::string_view() : message);
    return;
  }
  spdlog::level::level_enum lvl = spdlog::level::info;
  switch (level) {
    case SCHEDD_LOG_DEBUG:
      lvl = spdlog::level::debug;
      break;
    case SCHEDD_LOG_WARN:
      lvl = spdlog::level::warn;
      break;
    case SCHEDD_LOG_ERROR:
      lvl = spdlog::level::err;
      break;
    default:
      break;
  }
  spdlog::log(lvl, "[{}] {}: {}", call->request->execution_id, call->info->name,
              message == nullptr ? "" : message);
}

void host_set_result_text(void* host, const char* message, const char* output) {
  auto* call = static_cast<HostCall*>(host);
  std::lock_guard lock(call->mu);
  if (message != nullptr) call->message = message;
  if (output != nullptr) call->output = output;
}

const schedd_host_api kHostApi = {
    sizeof(schedd_host_api), 0,         &host_stop_requested,  &host_wait_for_stop,
    &host_progress,          &host_log, &host_set_result_text,
};

// Flattened C view of a ParamList; owns the pointer arrays, borrows the strings.
//
// A plugin indexes `ctx->params[i]` with its own sizeof(schedd_param), which is smaller than
// the daemon's when it was built against an older SDK of this ABI. data() is therefore laid
// out with the plugin's `stride`: each element is the prefix of the daemon's struct that the
// plugin knows.
class CParams {
 public:
  CParams(const ParamList& params, uint32_t stride) {
    items_.reserve(params.size());
    keys_.reserve(params.size());
    texts_.reserve(params.size());
    for (const auto& [name, value] : params) {
      schedd_param p{};
      p.name = name.c_str();
      p.type = static_cast<int32_t>(value.type);
      auto& items = items_.emplace_back();
      auto& keys = keys_.emplace_back();
      auto& text = texts_.emplace_back(value.to_text());
      p.text = text.c_str();
      switch (value.type) {
        case ParamType::kString:
          p.text = std::get<std::string>(value.value).c_str();
          break;
        case ParamType::kInt:
          p.int_value = std::get<int64_t>(value.value);
          break;
        case ParamType::kDouble:
          p.double_value = std::get<double>(value.value);
          break;
        case ParamType::kBool:
          p.bool_value = std::get<bool>(value.value) ? 1 : 0;
          break;
        case ParamType::kDuration:
          p.int_value = std::get<std::chrono::milliseconds>(value.value).count();
          break;
        case ParamType::kStringList:
          for (const auto& s : std::get<StringList>(value.value)) items.push_back(s.c_str());
          p.item_count = items.size();
          p.items = items.data();
          break;
        case ParamType::kStringMap:
          for (const auto& [k, v] : std::get<StringMap>(value.value)) {
            keys.push_back(k.c_str());
            items.push_back(v.c_str());
          }
          p.item_count = items.size();
          p.items = items.data();
          p.item_keys = keys.data();
          break;
      }
      params_.push_back(p);
    }
    if (stride < sizeof(schedd_param) && !params_.empty()) {
      // max_align_t elements: the plugin's struct needs no stricter alignment than that.
      strided_.resize((params_.size() * stride + sizeof(std::max_align_t) - 1) /
                      sizeof(std::max_align_t));
      auto* bytes = reinterpret_cast<unsigned char*>(strided_.data());
      for (std::size_t i = 0; i < params_.size(); ++i) {
        std::memcpy(bytes + i * stride, &params_[i], stride);
      }
    }
  }
  // What the plugin gets as ctx->params: the array at the plugin's stride.
  const schedd_param* data() const {
    if (strided_.empty()) return params_.data();
    return reinterpret_cast<const schedd_param*>(strided_.data());
  }
  std::size_t size() const { return params_.size(); }

 private:
  std::vector<schedd_param> params_;
  std::vector<std::max_align_t> strided_;  // set when the plugin's stride is smaller
  // Reserved up front so that pointers into the inner vectors and strings stay valid.
  std::vector<std::vector<const char*>> items_;
  std::vector<std::vector<const char*>> keys_;
  std::vector<std::string> texts_;
};

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

RunOutcome LoadedExecutor::run(const RunRequest& request, StopSource& stop) const {
  const auto* def = static_cast<const schedd_executor_def*>(def_);
  HostCall call;
  call.request = &request;
  call.info = &info_;
  call.stop = &stop;
  CParams params(request.params, plugin_->manifest.param_size);

  // At the daemon's size, whatever the plugin's SDK: an older plugin reads only the prefix
  // it knows, and struct_size tells a plugin which fields are there.
  schedd_context ctx{};
  ctx.struct_size = sizeof(schedd_context);
  ctx.origin = static_cast<int32_t>(request.origin);
  ctx.execution_id = request.execution_id.c_str();
  ctx.name = request.name.c_str();
  ctx.key = request.key.c_str();
  ctx.lane = request.lane.c_str();
  ctx.attempt = request.attempt;
  ctx.due_unix_ms = unix_ms(request.due);
  ctx.deadline_unix_ms = request.deadline ? unix_ms(*request.deadline) : 0;
  ctx.params = params.data();
  ctx.param_count = params.size();
  ctx.host = &call;
  ctx.api = &kHostApi;
  ctx.fence = request.fence;

  RunOutcome out;
  auto start = std::chrono::steady_clock::now();
  int32_t status = SCHEDD_FAILED;
  bool threw = false;
  try {
    status = def->run(instance_, &ctx);
  } catch (const std::exception& e) {
    // The ABI forbids it, but a plugin written without the SDK may still throw.
    threw = true;
    out.message = std::string("executor threw across the plugin boundary: ") + e.what();
  } catch (...) {
    threw = true;
    out.message = "executor threw across the plugin boundary";
  }
  out.duration = std::chrono::steady_clock::now() - start;
  std::lock_guard lock(call.mu);
  if (threw) {
    out.status = RunStatus::kFailed;
    out.output = call.output;
    return out;
  }
  out.message = call.message;
  out.output = call.output;
  switch (status) {
    case SCHEDD_SUCCEEDED:
    case SCHEDD_FAILED:
    case SCHEDD_FAILED_PERMANENT:
    case SCHEDD_CANCELLED:
      out.status = static_cast<RunStatus>(status);
      break;
    default:
      out.status = RunStatus::kFailedPermanent;
      out.message = "executor returned unknown status " + std::to_string(status) +
                    (call.message.empty() ? "" : ": " + call.message);
  }
  return out;
}

PluginHost::PluginHost() = default;

PluginHost::~PluginHost() {
  // Executors first (each drops its reference), so libraries unload in reverse load order.
  while (!executors_.empty()) executors_.pop_back();
}

std::optional<PluginLoadError> PluginHost::load_file(const std::filesystem::path& file) {
  auto fail = [&](std::string message) { return PluginLoadError{file, std::move(message)}; };
  auto started = std::chrono::steady_clock::now();

  auto plugin = std::make_shared<Plugin>();
  try {
    // RTLD_LOCAL, never global: a global plugin's symbols would interpose on other plugins'.
    plugin->lib.load(file, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return fail("cannot load: " + dlerror_text(e.what()));
  }

  if (!plugin->lib.has(SCHEDD_MANIFEST_SYMBOL)) {
    return fail(std::string("not a schedd plugin: no ") + SCHEDD_MANIFEST_SYMBOL + " symbol");
  }
  const unsigned char* raw = nullptr;
  try {
    raw = reinterpret_cast<const unsigned char*>(
        &plugin->lib.get<const schedd_manifest>(SCHEDD_MANIFEST_SYMBOL));
  } catch (const std::exception& e) {
    return fail("cannot read the manifest: " + dlerror_text(e.what()));
  }
  // The version is the first field in every ABI version; check it before trusting the rest.
  uint32_t abi_version = 0;
  std::memcpy(&abi_version, raw + offsetof(schedd_manifest, abi_version), sizeof abi_version);
  if (abi_version != SCHEDD_ABI_VERSION) {
    return fail("built for plugin ABI " + std::to_string(abi_version) +
                ", this daemon speaks ABI " + std::to_string(SCHEDD_ABI_VERSION));
  }
  // Then the manifest's own size, before reading anything beyond it.
  uint32_t manifest_size = 0;
  std::memcpy(&manifest_size, raw + offsetof(schedd_manifest, manifest_size), sizeof manifest_size);
  const SizeCheck manifest_check{"schedd_manifest", manifest_size, kV1_0ManifestSize,
                                 sizeof(schedd_manifest)};
  if (std::string problem = size_problems(&manifest_check, 1); !problem.empty()) {
    return fail(problem);
  }
  schedd_manifest& m = plugin->manifest;  // zero beyond what the plugin's SDK knows
  std::memcpy(&m, raw, manifest_size);
  const SizeCheck checks[] = {
      {"schedd_executor_def", m.executor_def_size, kV1_0ExecutorDefSize,
       sizeof(schedd_executor_def)},
      {"schedd_param_spec", m.param_spec_size, kV1_0ParamSpecSize, sizeof(schedd_param_spec)},
      {"schedd_param", m.param_size, kV1_0ParamSize, sizeof(schedd_param)},
      {"schedd_context", m.context_size, kV1_0ContextSize, sizeof(schedd_context)},
      {"schedd_host_api", m.host_api_size, kV1_0HostApiSize, sizeof(schedd_host_api)},
  };
  if (std::string problem = size_problems(checks, std::size(checks)); !problem.empty()) {
    return fail(problem);
  }
  if (m.plugin_name == nullptr || *m.plugin_name == '\0') {
    return fail("the manifest has no plugin name");
  }
  std::string plugin_version = m.plugin_version == nullptr ? "" : m.plugin_version;
  if (m.executor_count == 0 || m.executors == nullptr) {
    return fail(std::string("plugin \"") + m.plugin_name + "\" provides no executors");
  }

  // The plugin's arrays, walked with its strides, as daemon-sized copies.
  plugin->defs =
      copy_plugin_array<schedd_executor_def>(m.executors, m.executor_count, m.executor_def_size);
  plugin->specs.reserve(plugin->defs.size());
  for (schedd_executor_def& d : plugin->defs) {
    auto& specs = plugin->specs.emplace_back();
    if (d.params != nullptr) {
      specs = copy_plugin_array<schedd_param_spec>(d.params, d.param_count, m.param_spec_size);
    }
    d.params = specs.data();
    d.param_count = specs.size();
  }

  // Check every executor before creating any, so a refusal leaves nothing behind.
  std::set<std::string> names_here;
  for (std::size_t i = 0; i < plugin->defs.size(); ++i) {
    const schedd_executor_def& d = plugin->defs[i];
    if (!valid_executor_name(d.name)) {
      return fail("executor #" + std::to_string(i + 1) +
                  " has an invalid name (use letters, digits, '_', '-', '.')");
    }
    std::string name = d.name;
    if (d.run == nullptr) return fail("executor \"" + name + "\" has no run function");
    if (!names_here.insert(name).second) {
      return fail("executor \"" + name + "\" is declared twice");
    }
    if (const Executor* other = find(name)) {
      return fail("duplicate executor \"" + name + "\": already provided by " +
                  other->info().plugin_file);
    }
    std::set<std::string> params_here;
    for (std::size_t j = 0; j < d.param_count; ++j) {
      const schedd_param_spec& p = d.params[j];
      if (p.name == nullptr || *p.name == '\0') {
        return fail("executor \"" + name + "\": param #" + std::to_string(j + 1) + " has no name");
      }
      if (!valid_param_name(p.name)) {
        return fail("executor \"" + name + "\": param \"" + p.name +
                    "\" is not lower_snake_case (use a-z, 0-9 and '_', starting with a letter)");
      }
      if (p.type < SCHEDD_PARAM_STRING || p.type > SCHEDD_PARAM_STRING_MAP) {
        return fail("executor \"" + name + "\": param \"" + p.name + "\" has unknown type " +
                    std::to_string(p.type));
      }
      if (!params_here.insert(p.name).second) {
        return fail("executor \"" + name + "\": param \"" + p.name + "\" is declared twice");
      }
      if (p.default_value != nullptr) {
        ParamSpec spec;
        spec.name = p.name;
        spec.type = static_cast<ParamType>(p.type);
        spec.default_toml = p.default_value;
        if (std::string problem = default_problem(spec); !problem.empty()) {
          return fail("executor \"" + name + "\": param \"" + p.name +
                      "\" has an invalid default " + p.default_value +
                      " (a bug in the plugin): " + problem);
        }
      }
    }
  }

  std::vector<std::unique_ptr<Executor>> loaded;
  for (const schedd_executor_def& d : plugin->defs) {
    void* instance = nullptr;
    if (d.create != nullptr) {
      instance = d.create();
      if (instance == nullptr) {
        return fail(std::string("executor \"") + d.name + "\": create() failed");
      }
    }
    plugin->instances.emplace_back(&d, instance);

    auto e = std::unique_ptr<LoadedExecutor>(new LoadedExecutor());
    e->info_.name = d.name;
    e->info_.description = d.description == nullptr ? "" : d.description;
    e->info_.plugin_name = m.plugin_name;
    e->info_.plugin_version = plugin_version;
    e->info_.plugin_file = file.string();
    for (std::size_t j = 0; j < d.param_count; ++j) {
      const schedd_param_spec& p = d.params[j];
      ParamSpec spec;
      spec.name = p.name;
      spec.type = static_cast<ParamType>(p.type);
      spec.required = p.required != 0;
      if (p.default_value != nullptr) spec.default_toml = p.default_value;
      spec.description = p.description == nullptr ? "" : p.description;
      e->info_.params.push_back(std::move(spec));
    }
    e->plugin_ = plugin;
    e->def_ = &d;
    e->instance_ = instance;
    loaded.push_back(std::move(e));
  }

  PluginInfo info;
  info.name = m.plugin_name;
  info.version = plugin_version;
  info.file = file;
  for (const auto& e : loaded) info.executors.push_back(e->info().name);
  info.load_time = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  plugins_.push_back(std::move(info));
  for (auto& e : loaded) executors_.push_back(std::move(e));
  return std::nullopt;
}

Status PluginHost::load_dir(const std::filesystem::path& dir, PluginErrorPolicy policy,
                            std::vector<PluginLoadError>& errors) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    errors.push_back({dir, "plugin_dir is not a directory"});
    return failed_precondition(dir.string() + ": plugin_dir is not a directory");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".so" && entry.is_regular_file(ec)) {
      files.push_back(entry.path());
    }
  }
  if (ec) {
    errors.push_back({dir, "cannot list plugin_dir: " + ec.message()});
    return failed_precondition(dir.string() + ": cannot list plugin_dir: " + ec.message());
  }
  std::sort(files.begin(), files.end());

  std::size_t refused = 0;
  for (const auto& f : files) {
    if (auto err = load_file(f)) {
      ++refused;
      if (policy == PluginErrorPolicy::kSkip) {
        spdlog::warn("skipping plugin {}", err->to_string());
      }
      errors.push_back(std::move(*err));
    }
  }
  if (refused > 0 && policy == PluginErrorPolicy::kFail) {
    return failed_precondition(std::to_string(refused) + " of " + std::to_string(files.size()) +
                               " plugins in " + dir.string() + " were refused");
  }
  return Status::ok();
}

void PluginHost::add(PluginInfo plugin, std::vector<std::unique_ptr<Executor>> executors) {
  plugins_.push_back(std::move(plugin));
  for (auto& e : executors) executors_.push_back(std::move(e));
}

const Executor* PluginHost::find(std::string_view name) const {
  for (const auto& e : executors_) {
    if (e->info().name == name) return e.get();
  }
  return nullptr;
}

std::vector<const ExecutorInfo*> PluginHost::executors() const {
  std::vector<const ExecutorInfo*> out;
  for (const auto& e : executors_) out.push_back(&e->info());
  return out;
}

}  // namespace schedd
