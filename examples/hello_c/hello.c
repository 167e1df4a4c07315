/*
 * hello_c: a schedd plugin written against the C ABI alone (schedd/abi.h), to show that
 * plugins need no C++. Executor `hello_c` logs a line and succeeds with the output
 * "<greeting> from <execution id>".
 *
 * Thread-safety: `run` keeps its state on the stack, so the daemon may call it from several
 * workers at once.
 */
#include <schedd/abi.h>

#include <stdio.h>
#include <string.h>

/* The value of the param `name`, or NULL when it is absent or not a string. */
static const char* find_string_param(const schedd_context* ctx, const char* name) {
  size_t i;
  for (i = 0; i < ctx->param_count; ++i) {
    const schedd_param* p = &ctx->params[i];
    if (strcmp(p->name, name) == 0 && p->type == SCHEDD_PARAM_STRING) return p->text;
  }
  return NULL;
}

static int32_t hello_run(void* instance, const schedd_context* ctx) {
  const char* greeting;
  char output[512];
  (void)instance; /* no `create`, so always NULL */

  if (ctx->api->stop_requested(ctx->host)) return SCHEDD_CANCELLED;
  /* The daemon fills in the schema default; the fallback covers hosts that do not. */
  greeting = find_string_param(ctx, "greeting");
  if (greeting == NULL) greeting = "hello";

  snprintf(output, sizeof output, "%s from %s", greeting, ctx->execution_id);
  ctx->api->log(ctx->host, SCHEDD_LOG_INFO, output);
  /* Strings are copied by the daemon before set_result_text returns. */
  ctx->api->set_result_text(ctx->host, NULL, output);
  return SCHEDD_SUCCEEDED;
}

static const schedd_param_spec hello_params[] = {
    {"greeting", SCHEDD_PARAM_STRING, 0, "\"hello\"", "What to say"},
};

static const schedd_executor_def hello_executors[] = {
    {"hello_c", "Greets from C, to show that plugins need no C++", hello_params,
     sizeof hello_params / sizeof hello_params[0], NULL, NULL, hello_run},
};

/* The one exported symbol. The daemon checks the ABI version and struct sizes in the header
 * before it calls anything else. */
SCHEDD_EXPORT const schedd_manifest schedd_plugin_manifest = {
    SCHEDD_MANIFEST_HEADER, "hello_c", "1.0.0", hello_executors,
    sizeof hello_executors / sizeof hello_executors[0]};
