#include "core/plugin_host/plugin_host.h"

#include <schedd/abi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

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
class Plugin {
 public:
  ~Plugin() {
    for (auto [def, instance] : instances) {
      if (def->destroy != nullptr && instance != nullptr) def->destroy(instance);
    }
    // `lib` is destroyed after this body: the code above still runs from a mapped library.
  }
  boost::dll::shared_library lib;
  const schedd_manifest* manifest = nullptr;
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

std::string size_mismatches(const schedd_manifest& m) {
  struct Check {
    const char* name;
    uint32_t plugin;
    std::size_t daemon;
  };
  const Check checks[] = {
      {"schedd_manifest", m.manifest_size, sizeof(schedd_manifest)},
      {"schedd_executor_def", m.executor_def_size, sizeof(schedd_executor_def)},
      {"schedd_param_spec", m.param_spec_size, sizeof(schedd_param_spec)},
      {"schedd_param", m.param_size, sizeof(schedd_param)},
      {"schedd_context", m.context_size, sizeof(schedd_context)},
      {"schedd_host_api", m.host_api_size, sizeof(schedd_host_api)},
  };
  std::string out;
  for (const auto& c : checks) {
    if (c.plugin == c.daemon) continue;
    if (!out.empty()) out += "; ";
    out += std::string(c.name) + " is " + std::to_string(c.plugin) + " bytes in the plugin, " +
           std::to_string(c.daemon) + " in this daemon";
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
class CParams {
 public:
  explicit CParams(const ParamList& params) {
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
  }
  const schedd_param* data() const { return params_.data(); }
  std::size_t size() const { return params_.size(); }

 private:
  std::vector<schedd_param> params_;
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
  CParams params(request.params);

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
  const schedd_manifest* m = nullptr;
  try {
    m = &plugin->lib.get<const schedd_manifest>(SCHEDD_MANIFEST_SYMBOL);
  } catch (const std::exception& e) {
    return fail("cannot read the manifest: " + dlerror_text(e.what()));
  }
  // The version is the first field in every ABI version; check it before trusting the rest.
  if (m->abi_version != SCHEDD_ABI_VERSION) {
    return fail("built for plugin ABI " + std::to_string(m->abi_version) +
                ", this daemon speaks ABI " + std::to_string(SCHEDD_ABI_VERSION));
  }
  if (std::string sizes = size_mismatches(*m); !sizes.empty()) {
    return fail("struct size mismatch (rebuild the plugin against this SDK): " + sizes);
  }
  if (m->plugin_name == nullptr || *m->plugin_name == '\0') {
    return fail("the manifest has no plugin name");
  }
  std::string plugin_version = m->plugin_version == nullptr ? "" : m->plugin_version;
  if (m->executor_count == 0 || m->executors == nullptr) {
    return fail(std::string("plugin \"") + m->plugin_name + "\" provides no executors");
  }

  // Check every executor before creating any, so a refusal leaves nothing behind.
  std::set<std::string> names_here;
  for (std::size_t i = 0; i < m->executor_count; ++i) {
    const schedd_executor_def& d = m->executors[i];
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
      if (p.type < SCHEDD_PARAM_STRING || p.type > SCHEDD_PARAM_STRING_MAP) {
        return fail("executor \"" + name + "\": param \"" + p.name + "\" has unknown type " +
                    std::to_string(p.type));
      }
      if (!params_here.insert(p.name).second) {
        return fail("executor \"" + name + "\": param \"" + p.name + "\" is declared twice");
      }
    }
  }

  plugin->manifest = m;
  std::vector<std::unique_ptr<Executor>> loaded;
  for (std::size_t i = 0; i < m->executor_count; ++i) {
    const schedd_executor_def& d = m->executors[i];
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
    e->info_.plugin_name = m->plugin_name;
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
  info.name = m->plugin_name;
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
