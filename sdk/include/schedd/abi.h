/*
 * schedd plugin ABI: the single source of truth between the daemon and a plugin.
 *
 * Pure C (C11, also valid C++). Only plain structs, fixed-width integers, C strings and
 * function pointers cross this boundary: no C++ object, exception, allocator or library type
 * from the daemon (toml++, spdlog, the HTTP server) does. A plugin built with another compiler
 * or standard library therefore still loads.
 *
 * A plugin exports exactly one data symbol, `schedd_plugin_manifest`, of type
 * `schedd_manifest`. The daemon reads it before it calls anything in the plugin and refuses
 * the plugin, naming the file, when
 *   - the symbol is missing                        (not a schedd plugin),
 *   - `abi_version` differs from SCHEDD_ABI_VERSION (both versions are named),
 *   - a `*_size` field is larger than the daemon's sizeof of that struct (the plugin was
 *     built against a newer SDK than the daemon's: upgrade the daemon), or smaller than in
 *     the first SDK of this ABI version (a corrupt manifest),
 *   - an executor name is already provided by another plugin (both files are named),
 *   - a param name is not lower_snake_case, or a param's `default_value` is not a TOML value
 *     of the param's type (executor and param are named: the plugin is at fault, not the
 *     config of the helpers that would use the default).
 *
 * Compatibility within one ABI version. SCHEDD_ABI_VERSION is bumped, and every plugin must
 * be rebuilt, when a field is removed, moved, retyped or given another meaning. Without a
 * bump, an SDK may only
 *   - add fields at the END of a struct (never in the middle), each documented with the SDK
 *     version that added it and what its zero value means;
 *   - add enum values: a plugin may be handed an origin it does not know; a daemon logs a
 *     level it does not know as INFO, records a status it does not know as a permanent
 *     failure and refuses a param type it does not know;
 *   - add host functions at the end of schedd_host_api.
 * What a plugin author gets in exchange: a plugin built against any SDK of this ABI version
 * loads, unchanged, in any daemon of this ABI version at least as new as that SDK. The
 * daemon does all the work:
 *   - the arrays the plugin exports (`executors`, each executor's `params`) are read with the
 *     plugin's strides (`executor_def_size`, `param_spec_size`); a field the plugin's SDK
 *     does not have reads as zero or NULL, and its zero value always means "as before";
 *   - structs the daemon hands over (schedd_context, schedd_host_api) come at the daemon's
 *     size, with `struct_size` set: an older plugin just never reads past its own prefix.
 *     A field added later is present when `struct_size` covers it; the C++ SDK checks that
 *     before it reads one, and C code should too;
 *   - the schedd_param ARRAY in the context, which the plugin indexes with its own sizeof, is
 *     laid out by the daemon with the plugin's `param_size` as the stride, so schedd_param may
 *     grow like the others.
 * A plugin built against a NEWER SDK whose structs grew is refused rather than handed structs
 * shorter than it expects. The sizes of the first SDK of ABI 1 ("ABI 1.0"; x86-64 and
 * AArch64) are manifest 64, executor_def 56, param_spec 32, param 64, context 96, host_api
 * 48 bytes. Fields added since say "(ABI 1.N)", N counting the SDKs that added fields.
 *
 * Thread-safety: `run` of one executor may be called from several worker threads at once,
 * each call with its own context. `create` and `destroy` are called once per executor, on the
 * thread that loads or unloads the plugin. The host functions in `schedd_host_api` may be
 * called from any thread while the `run` call they belong to has not returned.
 *
 * Memory: every pointer the daemon passes is valid until `run` returns; every string the
 * plugin passes to the daemon is copied before the host function returns. Neither side ever
 * frees the other's memory.
 */
#ifndef SCHEDD_ABI_H_
#define SCHEDD_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of a struct below or of the meaning of a field. */
#define SCHEDD_ABI_VERSION 1u

/* Marks the manifest as exported even when the plugin is built with hidden visibility. */
#if defined(_WIN32)
#define SCHEDD_EXPORT __declspec(dllexport)
#else
#define SCHEDD_EXPORT __attribute__((visibility("default")))
#endif

/* Types of executor parameters. The daemon validates a helper's params against the schema
 * (unknown names, missing required ones, wrong types) and fills in defaults before `run`. */
typedef enum schedd_param_type {
  SCHEDD_PARAM_STRING = 1,      /* TOML string */
  SCHEDD_PARAM_INT = 2,         /* TOML integer (64-bit) */
  SCHEDD_PARAM_DOUBLE = 3,      /* TOML float or integer */
  SCHEDD_PARAM_BOOL = 4,        /* TOML boolean */
  SCHEDD_PARAM_DURATION = 5,    /* TOML string such as "500ms", "90s", "1h30m" */
  SCHEDD_PARAM_STRING_LIST = 6, /* TOML array of strings */
  SCHEDD_PARAM_STRING_MAP = 7   /* TOML table of strings */
} schedd_param_type;

/* One entry of an executor's parameter schema. */
typedef struct schedd_param_spec {
  const char* name; /* lower_snake_case (a-z, 0-9, '_'; a letter first), unique per executor */
  int32_t type;     /* a schedd_param_type */
  int32_t required; /* nonzero: a helper must set it */
  /* TOML text of the default (e.g. "\"/tmp\"", "5", "\"10s\""), or NULL. Checked at load
   * exactly like a value in a config file: one that does not fit `type` refuses the plugin. */
  const char* default_value;
  const char* description; /* one line for `schedd plugins` and docs */
} schedd_param_spec;

/* A parameter value handed to `run`, already validated against the schema. `text` is always
 * set: for STRING the value itself, for the others a canonical rendering.
 * `ctx->params` is an array the plugin indexes with its own sizeof(schedd_param): the daemon
 * lays it out with the manifest's `param_size` as the stride (each element the prefix the
 * plugin knows), which is what lets this struct grow within an ABI version. */
typedef struct schedd_param {
  const char* name;
  int32_t type;                 /* a schedd_param_type */
  int32_t bool_value;           /* BOOL */
  int64_t int_value;            /* INT; DURATION in milliseconds */
  double double_value;          /* DOUBLE */
  const char* text;             /* STRING value; canonical text of the others */
  size_t item_count;            /* STRING_LIST and STRING_MAP: number of items */
  const char* const* items;     /* STRING_LIST items; STRING_MAP values */
  const char* const* item_keys; /* STRING_MAP keys (NULL for lists) */
} schedd_param;

/* Log levels for schedd_host_api.log. */
typedef enum schedd_log_level {
  SCHEDD_LOG_DEBUG = 1,
  SCHEDD_LOG_INFO = 2,
  SCHEDD_LOG_WARN = 3,
  SCHEDD_LOG_ERROR = 4
} schedd_log_level;

/* What an execution is an instance of. */
typedef enum schedd_origin {
  SCHEDD_ORIGIN_HELPER = 1, /* a scheduled helper from the config */
  SCHEDD_ORIGIN_TICKET = 2, /* an ad-hoc ticket submitted for a project */
  SCHEDD_ORIGIN_ADHOC = 3   /* another ad-hoc execution submitted through the API */
} schedd_origin;

/* Outcome of `run`. */
typedef enum schedd_status {
  SCHEDD_SUCCEEDED = 0,
  SCHEDD_FAILED = 1,           /* retried per the helper's retry policy */
  SCHEDD_FAILED_PERMANENT = 2, /* never retried */
  SCHEDD_CANCELLED = 3 /* returned after a stop request (recorded as cancelled or timed_out) */
} schedd_status;

/* Functions the daemon offers to a running executor. `host` is the opaque pointer from the
 * context; pass it back unchanged. */
typedef struct schedd_host_api {
  uint32_t struct_size; /* sizeof(schedd_host_api) as the daemon was built */
  uint32_t reserved;
  /* Nonzero once a stop was requested (cancel, timeout, shutdown). Cheap; poll it. */
  int32_t (*stop_requested)(void* host);
  /* Blocks until a stop is requested or `timeout_ms` elapses; returns nonzero if stopped.
   * Use it instead of sleeping so that a stop request ends the wait at once. */
  int32_t (*wait_for_stop)(void* host, int64_t timeout_ms);
  /* Reports progress: `fraction` in [0,1] (negative: unknown), `message` may be NULL. */
  void (*progress)(void* host, double fraction, const char* message);
  /* Writes one line to the daemon's log, tagged with the execution id and plugin. */
  void (*log)(void* host, int32_t level, const char* message);
  /* Sets the human-readable message and the output text recorded with the result. Either may
   * be NULL (unchanged). May be called several times; the last call wins. */
  void (*set_result_text)(void* host, const char* message, const char* output);
} schedd_host_api;

/* Everything `run` knows about the execution. Valid until `run` returns. */
typedef struct schedd_context {
  uint32_t struct_size;     /* sizeof(schedd_context) as the daemon was built */
  int32_t origin;           /* a schedd_origin */
  const char* execution_id; /* unique; stable across retries of one execution */
  const char* name;         /* the helper's name, or the ticket's name */
  const char* key;          /* serialization key (for tickets: the project) */
  const char* lane;
  uint32_t attempt; /* 1 for the first attempt */
  uint32_t reserved;
  int64_t due_unix_ms;      /* when it was due, Unix epoch milliseconds */
  int64_t deadline_unix_ms; /* when the timeout stops it, or 0 when it has no timeout */
  const schedd_param* params;
  size_t param_count;
  void* host;                 /* opaque, for the functions in `api` */
  const schedd_host_api* api; /* never NULL */
  /* (ABI 1.1) The claim's fencing token: it grows with every claim of an execution, so a
   * system the executor writes to can refuse a write carrying a smaller fence than one it has
   * already seen, i.e. from a stale attempt whose claim was taken over (docs/redis.md).
   * 0 when the store gives none. Present only when struct_size >= offsetof(schedd_context,
   * fence) + 8: an ABI 1.0 daemon's context ends before it. */
  uint64_t fence;
} schedd_context;

/* One executor a plugin provides. */
typedef struct schedd_executor_def {
  const char* name;        /* unique across all loaded plugins, e.g. "shell" */
  const char* description; /* one line */
  const schedd_param_spec* params;
  size_t param_count;
  /* Creates the executor's state once, after the manifest was accepted. May be NULL (then
   * `instance` is NULL). Returns NULL on failure, which refuses the plugin. */
  void* (*create)(void);
  /* Destroys what `create` returned, before the library is unloaded. May be NULL. */
  void (*destroy)(void* instance);
  /* Runs one attempt and returns a schedd_status. Must not throw or longjmp across the
   * boundary. Should return promptly once stop is requested. */
  int32_t (*run)(void* instance, const schedd_context* ctx);
} schedd_executor_def;

/* The exported manifest. The sizes tell the daemon which SDK of this ABI version the plugin
 * was built against (so what each struct holds, and the stride of each array), and let it
 * refuse a plugin built against a newer SDK. */
typedef struct schedd_manifest {
  uint32_t abi_version;       /* SCHEDD_ABI_VERSION */
  uint32_t manifest_size;     /* sizeof(schedd_manifest) */
  uint32_t executor_def_size; /* sizeof(schedd_executor_def) */
  uint32_t param_spec_size;   /* sizeof(schedd_param_spec) */
  uint32_t param_size;        /* sizeof(schedd_param) */
  uint32_t context_size;      /* sizeof(schedd_context) */
  uint32_t host_api_size;     /* sizeof(schedd_host_api) */
  uint32_t reserved;
  const char* plugin_name;    /* e.g. "shell" */
  const char* plugin_version; /* the plugin's own version, e.g. "1.0.0" */
  const schedd_executor_def* executors;
  size_t executor_count;
} schedd_manifest;

/* Initializer for the size fields, in order, for plugins written in C:
 *   SCHEDD_EXPORT const schedd_manifest schedd_plugin_manifest = {
 *       SCHEDD_MANIFEST_HEADER, "hello_c", "1.0.0", executors, 1};            */
#define SCHEDD_MANIFEST_HEADER                                                                  \
  SCHEDD_ABI_VERSION, (uint32_t)sizeof(schedd_manifest), (uint32_t)sizeof(schedd_executor_def), \
      (uint32_t)sizeof(schedd_param_spec), (uint32_t)sizeof(schedd_param),                      \
      (uint32_t)sizeof(schedd_context), (uint32_t)sizeof(schedd_host_api), 0u

/* The name of the exported manifest symbol. */
#define SCHEDD_MANIFEST_SYMBOL "schedd_plugin_manifest"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SCHEDD_ABI_H_ */
