// docs/openapi.yaml against the server's route table, and the validator the API tests check
// every answer with (tests/testing/openapi_validator.h): that it rejects what the document
// does not allow, so that its silence in the API tests means something.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/api/api.h"
#include "tests/testing/openapi_validator.h"

namespace schedd::api {
namespace {

using json = nlohmann::json;
using schedd::testing::OpenApiValidator;

const std::map<std::string, std::string> kJson = {{"Content-Type", "application/json"}};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every route the server has is an operation of the document, and every operation of the
// document is a route (or the dashboard's).
TEST(ApiSchemaTest, OpenApiHasExactlyTheRoutesOfTheRouteTable) {
  const json& paths = OpenApiValidator::docs().document()["paths"];
  std::set<std::string> routes, documented;
  for (const auto& [method, pattern] : Api::route_table()) {
    // The document names captures by what they are; the table may too, but need not.
    routes.insert(lower(method) + " " + pattern);
  }
  routes.insert("get /");
  routes.insert("get /ui/{file}");
  for (auto& [path, item] : paths.items()) {
    for (auto& [k, v] : item.items()) {
      if (k == "parameters" || k == "summary" || k == "description") continue;
      documented.insert(k + " " + path);
    }
  }
  // Captures may be named differently: compare with every {capture} as {}.
  auto shape = [](const std::set<std::string>& in) {
    std::set<std::string> out;
    for (std::string s : in) {
      std::string t;
      bool inside = false;
      for (char c : s) {
        if (c == '{') inside = true;
        if (!inside) t += c;
        if (c == '}') {
          t += "{}";
          inside = false;
        }
      }
      out.insert(t);
    }
    return out;
  };
  EXPECT_EQ(shape(routes), shape(documented));
}

TEST(ApiSchemaTest, TheValidatorAcceptsAGoodAnswer) {
  const auto& v = OpenApiValidator::docs();
  EXPECT_EQ(v.check("GET", "/healthz", 200, kJson, R"({"status":"ok"})"), "");
  EXPECT_EQ(v.check("GET", "/v1/whoami", 200, kJson, R"({"access":"read","tokens":true})"), "");
  EXPECT_EQ(v.check("GET", "/v1/executions/x", 404, kJson,
                    R"({"error":{"code":"not_found","message":"unknown execution \"x\""}})"),
            "");
  EXPECT_EQ(v.check("HEAD", "/v1/status", 200, kJson, ""), "");
  EXPECT_EQ(v.check("PUT", "/v1/executions/bulk", 405,
                    {{"Content-Type", "application/json"}, {"Allow", "POST, GET, HEAD"}},
                    R"({"error":{"code":"method_not_allowed","message":"..."}})"),
            "");
}

// The validator must be able to fail: each of these answers breaks the document in one way.
TEST(ApiSchemaTest, TheValidatorRejectsWhatTheDocumentDoesNotAllow) {
  const auto& v = OpenApiValidator::docs();
  auto rejects = [&](const std::string& method, const std::string& target, int status,
                     const std::map<std::string, std::string>& headers, const std::string& body,
                     const std::string& why) {
    const std::string got = v.check(method, target, status, headers, body);
    EXPECT_THAT(got, ::testing::HasSubstr(why)) << method << " " << target << " " << body;
  };
  // A required property missing, and a wrong type.
  rejects("GET", "/healthz", 200, kJson, R"({})", "required property \"status\" missing");
  rejects("GET", "/v1/whoami", 200, kJson, R"({"access":"read","tokens":"yes"})",
          "$.tokens: expected boolean, got string");
  // Not in the enum.
  rejects("GET", "/v1/whoami", 200, kJson, R"({"access":"root","tokens":true})",
          "\"root\" is not one of");
  // A property the schema does not allow (additionalProperties: false).
  rejects("GET", "/healthz", 200, kJson, R"({"status":"ok","extra":1})",
          "$.extra: not a property the schema allows");
  // Through $ref, items and nullable: an execution list whose item has a null id.
  rejects("GET", "/v1/executions", 200, kJson, R"({"executions":[{"id":null}],"next_cursor":null})",
          "$.executions[0].id: null, and the schema is not nullable");
  // A date-time that is not one.
  rejects("GET", "/v1/status", 200, kJson, R"({"time":"yesterday"})",
          "is not an RFC 3339 date-time");
  // A status the operation does not list.
  rejects("GET", "/v1/stats", 418, kJson, R"({})", "status 418 is not listed");
  // A 405 whose Allow is not what the document defines on the path.
  rejects("PUT", "/v1/executions/bulk", 405,
          {{"Content-Type", "application/json"}, {"Allow", "GET"}},
          R"({"error":{"code":"method_not_allowed","message":"..."}})", "Allow is \"GET\"");
  // A method the document defines, answered 405.
  rejects("GET", "/v1/status", 405, kJson, R"({})", "status 405 is not listed");
  // A path the document does not have, answered 200.
  rejects("GET", "/v1/nope", 200, kJson, R"({})", "expected 404");
  // A HEAD answer with a body.
  rejects("HEAD", "/v1/status", 200, kJson, R"({})", "a HEAD answer has a body");
  // A media type the answer does not list, and a body that is not JSON.
  rejects("GET", "/v1/stats", 200, {{"Content-Type", "text/plain"}}, "x", "media type");
  rejects("GET", "/v1/stats", 200, kJson, "{", "not JSON");
  // oneOf: a bulk ticket that is neither a name nor a ticket object.
  EXPECT_THAT(v.validate(json::parse(R"({"tickets":[5]})"),
                         v.document()["paths"]["/v1/projects/{project}/tickets/bulk"]["post"]
                                     ["requestBody"]["content"]["application/json"]["schema"]),
              ::testing::HasSubstr("matches 0 of the oneOf alternatives"));
  // minimum / maximum, pattern.
  EXPECT_THAT(v.validate(json::parse(R"({"priority":9})"), v.schema("Submit")),
              ::testing::HasSubstr("above the maximum 5"));
  EXPECT_THAT(v.validate(json::parse(R"({"id":""})"), v.schema("Submit")),
              ::testing::HasSubstr("does not match"));
  EXPECT_THAT(v.validate(json::parse(R"({"priority":null})"), v.schema("Submit")),
              ::testing::HasSubstr("not nullable"));
}

}  // namespace
}  // namespace schedd::api
