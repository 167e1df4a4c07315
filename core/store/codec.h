// Encodings shared by the durable stores (SQLite, Redis). Times are nanoseconds since the
// Unix epoch. Statuses have fixed numbers, written down here and in docs/store.md,
// independent of the enum's order. A template is stored as one JSON body, params typed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/store/execution.h"

namespace schedd::codec {

int status_code(ExecStatus s);
std::optional<ExecStatus> status_from_code(int code);
int64_t to_ns(TimePoint t);
TimePoint from_ns(int64_t ns);
std::string template_to_body(const ExecTemplate& t);
// Throws (nlohmann::json or std::runtime_error) on a malformed body.
std::shared_ptr<const ExecTemplate> template_from_body(const std::string& body);
// Params alone, encoded as in a template body (the SQLite store keeps a ticket's own).
std::string params_to_body(const ParamList& params);
// Throws as template_from_body.
ParamList params_from_body(const std::string& body);
// What a template's shape is told apart by: everything but its name and params, as a map key
// (never stored). Tickets and ad-hoc submissions of one shape share one stored template.
std::string shape_key(const ExecTemplate& t);

}  // namespace schedd::codec
