// The dashboard's routes: `/` is the page, `/ui/...` its scripts and styles, all compiled
// into the binary (core/api/web_assets.h). Every answer carries a strict
// Content-Security-Policy: scripts and styles from this origin only, no inline code, no
// framing, and connections to this origin only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/api/http.h"

namespace schedd::web {

using api::HttpResponse;

// The Content-Security-Policy every dashboard answer carries.
extern const char* const kContentSecurityPolicy;

// The answer for a path the dashboard owns (`/`, `/ui/...`), or nothing for any other path.
// `segments` is the decoded path; only GET and HEAD are served (405 otherwise). A HEAD is
// answered as GET is: the transport leaves the body out.
std::optional<HttpResponse> route(const std::string& method,
                                  const std::vector<std::string>& segments);

}  // namespace schedd::web
