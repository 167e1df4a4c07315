// OpenApiValidator: checks an HTTP answer against docs/openapi.yaml, so that the API tests
// fail when the server and its published description disagree. Test code: a small validator
// of the subset of OpenAPI 3.0 and JSON Schema that openapi.yaml uses (Debian 12 packages no
// JSON Schema library for C++), reading the YAML with yaml-cpp.
//
// For a request (method, target) and its answer (status, headers, body) it checks:
// - the operation: the path templates that match the target, the most literal first; HEAD
//   is checked as GET. A path no template matches must be answered 404; a known path with a
//   method no matching template defines must be answered 405 with an `Allow` header that
//   lists exactly the methods the templates define there (and HEAD beside GET);
// - the status: listed in the operation's responses, or in the document's
//   `x-transport-responses` (what the HTTP layer answers before any operation: malformed
//   HTTP, body or headers too large, a handler's crash);
// - the body (not for HEAD, which has none): its media type is one the response lists, and a
//   JSON body matches the response's schema: type, nullable, required, properties,
//   additionalProperties (false or a schema), items, enum, oneOf, allOf, $ref, minimum, maximum,
//   minItems, maxItems, minProperties, minLength, maxLength, pattern and the date-time
//   format. A keyword outside that subset is reported, so that a schema never passes because
//   the validator skipped what it says.
//
// Thread-safety: const after construction; check() and validate() are thread-safe.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace schedd::testing {

class OpenApiValidator {
 public:
  using json = nlohmann::json;

  // Throws std::runtime_error when the file cannot be read or parsed.
  explicit OpenApiValidator(const std::string& yaml_path) {
    try {
      doc_ = to_json(YAML::LoadFile(yaml_path));
    } catch (const YAML::Exception& e) {
      throw std::runtime_error(yaml_path + ": " + e.what());
    }
    if (!doc_.contains("paths") || !doc_["paths"].is_object()) {
      throw std::runtime_error(yaml_path + ": no paths");
    }
    for (auto& [path, item] : doc_["paths"].items()) {
      templates_.push_back({path, split(path)});
    }
  }

  // The validator of the source tree's docs/openapi.yaml, loaded once.
  static const OpenApiValidator& docs() {
    static const OpenApiValidator v(std::string(SCHEDD_SOURCE_DIR) + "/docs/openapi.yaml");
    return v;
  }

  const json& document() const { return doc_; }

  // What is wrong with this answer by the document; "" when nothing. `headers` by name as
  // sent (compared case-insensitively).
  std::string check(const std::string& method, const std::string& target, int status,
                    const std::map<std::string, std::string>& headers,
                    const std::string& body) const {
    std::string m = lower(method == "HEAD" ? "GET" : method);
    const std::string where = method + " " + target + " -> " + std::to_string(status);
    std::string path = target.substr(0, target.find('?'));
    std::vector<std::string> segments = split(path);

    // The matching templates, most literal segments first.
    std::vector<const Template*> matching;
    for (const auto& t : templates_) {
      if (matches(t.parts, segments)) matching.push_back(&t);
    }
    std::stable_sort(matching.begin(), matching.end(), [](const Template* a, const Template* b) {
      return a->literals() > b->literals();
    });
    const json* op = nullptr;
    std::string op_name;
    for (const Template* t : matching) {
      const json& item = doc_["paths"][t->path];
      if (item.contains(m)) {
        op = &item[m];
        op_name = method + " " + t->path;
        break;
      }
    }
    const std::string content_type = header(headers, "Content-Type");
    if (op == nullptr) {
      if (transport_status(status)) return error_body(where, status, method, content_type, body);
      if (matching.empty()) {
        if (status != 404) return where + ": no path of openapi.yaml matches; expected 404";
        return error_body(where, status, method, content_type, body);
      }
      // A known path, another method: 405 with the methods the document defines there.
      std::set<std::string> allowed;
      for (const Template* t : matching) {
        for (auto& [k, v] : doc_["paths"][t->path].items()) {
          static const std::set<std::string> kMethods = {"get",     "put",  "post", "delete",
                                                         "options", "head", "patch"};
          if (kMethods.count(k) == 0) continue;
          allowed.insert(upper(k));
          if (k == "get") allowed.insert("HEAD");
        }
      }
      if (status != 405) {
        return where + ": openapi.yaml defines no " + method + " on this path; expected 405";
      }
      std::set<std::string> allow;
      std::stringstream list(header(headers, "Allow"));
      for (std::string item; std::getline(list, item, ',');) {
        item.erase(0, item.find_first_not_of(' '));
        item.erase(item.find_last_not_of(' ') + 1);
        if (!item.empty()) allow.insert(item);
      }
      if (allow != allowed) {
        return where + ": Allow is \"" + header(headers, "Allow") + "\", openapi.yaml defines " +
               join(allowed);
      }
      return error_body(where, status, method, content_type, body);
    }

    const json& responses = (*op)["responses"];
    const std::string code = std::to_string(status);
    if (!responses.contains(code)) {
      if (transport_status(status)) return error_body(where, status, method, content_type, body);
      return where + ": status " + code + " is not listed for " + op_name + " in openapi.yaml";
    }
    const json& response = resolve(responses[code]);
    if (method == "HEAD") {
      if (!body.empty()) return where + ": a HEAD answer has a body";
      return "";
    }
    return check_content(where, response, content_type, body);
  }

  // Errors of `value` against `schema` (a schema object of the document, or one with $ref),
  // one per line; "" when it matches. `at` names the value in the messages.
  std::string validate(const json& value, const json& schema, const std::string& at = "$") const {
    std::vector<std::string> errors;
    validate_into(value, schema, at, errors);
    std::string out;
    for (const auto& e : errors) out += (out.empty() ? "" : "\n") + e;
    return out;
  }

  // The schema of a named component ("Execution").
  const json& schema(const std::string& name) const {
    return doc_["components"]["schemas"].at(name);
  }

 private:
  struct Template {
    std::string path;
    std::vector<std::string> parts;
    std::size_t literals() const {
      return static_cast<std::size_t>(std::count_if(
          parts.begin(), parts.end(), [](const std::string& p) { return !p.starts_with('{'); }));
    }
  };

  static json to_json(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted: always a string
        if (s == "true") return true;
        if (s == "false") return false;
        if (s == "null" || s == "~") return nullptr;
        static const std::regex kInt("^-?[0-9]+$");
        static const std::regex kFloat("^-?[0-9]+\\.[0-9]+([eE][-+]?[0-9]+)?$");
        if (std::regex_match(s, kInt)) return std::stoll(s);
        if (std::regex_match(s, kFloat)) return std::stod(s);
        return s;
      }
      case YAML::NodeType::Sequence: {
        json a = json::array();
        for (const auto& x : n) a.push_back(to_json(x));
        return a;
      }
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
        return o;
      }
    }
    return nullptr;
  }

  static std::vector<std::string> split(std::string_view path) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < path.size()) {
      std::size_t slash = path.find('/', pos);
      if (slash == std::string_view::npos) slash = path.size();
      if (slash > pos) out.emplace_back(path.substr(pos, slash - pos));
      pos = slash + 1;
    }
    return out;
  }

  static bool matches(const std::vector<std::string>& parts,
                      const std::vector<std::string>& segments) {
    // "{file}" as the last part of /ui/{file} takes the rest of the path (ui/pages/queue.js).
    const bool rest = !parts.empty() && parts.back() == "{file}";
    if (rest ? segments.size() < parts.size() : segments.size() != parts.size()) return false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].starts_with('{') && parts[i] != segments[i]) return false;
    }
    return true;
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }
  static std::string join(const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return "\"" + out + "\"";
  }
  static std::string header(const std::map<std::string, std::string>& headers,
                            const std::string& name) {
    for (const auto& [k, v] : headers) {
      if (lower(k) == lower(name)) return v;
    }
    return "";
  }

  bool transport_status(int status) const {
    const json& t = doc_.value("x-transport-responses", json::object());
    return t.contains(std::to_string(status));
  }

  // An answer outside any operation (404, 405, the transport's): the document's
  // x-transport-responses entry when it has one, else the Error schema.
  std::string error_body(const std::string& where, int status, const std::string& method,
                         const std::string& content_type, const std::string& body) const {
    if (method == "HEAD") return body.empty() ? "" : where + ": a HEAD answer has a body";
    const json& t = doc_.value("x-transport-responses", json::object());
    if (t.contains(std::to_string(status))) {
      return check_content(where, resolve(t[std::to_string(status)]), content_type, body);
    }
    // The dashboard's own 404 and 405 (under / and /ui/) are plain text.
    if (content_type.rfind("text/plain", 0) == 0) return "";
    return check_content(where, resolve(doc_["components"]["responses"]["Error"]), content_type,
                         body);
  }

  std::string check_content(const std::string& where, const json& response,
                            const std::string& content_type, const std::string& body) const {
    const std::string media = lower(content_type.substr(0, content_type.find(';')));
    if (!response.contains("content")) {
      if (body.empty()) return "";
      return where + ": openapi.yaml describes no body for this answer, got " + content_type;
    }
    const json& content = response["content"];
    if (!content.contains(media)) {
      return where + ": media type \"" + media + "\" is not listed for this answer";
    }
    const json& entry = content[media];
    if (media != "application/json") return "";
    if (!entry.is_object() || !entry.contains("schema")) {
      return where + ": openapi.yaml gives no schema for this JSON answer";
    }
    json value = json::parse(body, nullptr, false);
    if (value.is_discarded()) return where + ": the body is not JSON: " + body.substr(0, 200);
    std::string errors = validate(value, entry["schema"]);
    if (errors.empty()) return "";
    return where + ": the body does not match openapi.yaml:\n" + errors +
           "\nbody: " + body.substr(0, 2000);
  }

  const json& resolve(const json& node) const {
    const json* n = &node;
    for (int depth = 0; n->is_object() && n->contains("$ref"); ++depth) {
      if (depth > 32) throw std::runtime_error("openapi.yaml: $ref cycle");
      const std::string ref = (*n)["$ref"];
      if (ref.rfind("#/", 0) != 0) throw std::runtime_error("openapi.yaml: external $ref " + ref);
      n = &doc_.at(json::json_pointer(ref.substr(1)));
    }
    return *n;
  }

  static bool is_type(const json& v, const std::string& type) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_boolean();
    if (type == "integer") return v.is_number_integer();
    if (type == "number") return v.is_number();
    return false;
  }

  void validate_into(const json& value, const json& raw, const std::string& at,
                     std::vector<std::string>& errors) const {
    const json& s = resolve(raw);
    if (!s.is_object()) {
      errors.push_back(at + ": the schema is not an object");
      return;
    }
    static const std::set<std::string> kKnown = {
        "type",      "nullable", "required", "properties",    "additionalProperties",
        "items",     "enum",     "oneOf",    "allOf",         "minimum",
        "maximum",   "minItems", "maxItems", "minProperties", "minLength",
        "maxLength", "pattern",  "format",   "description",   "example",
        "default",   "title",    "$ref"};
    for (auto& [k, v] : s.items()) {
      if (kKnown.count(k) == 0) errors.push_back(at + ": unsupported schema keyword \"" + k + "\"");
    }
    if (value.is_null()) {
      if (s.value("nullable", false)) return;
      if (s.contains("type") || s.contains("oneOf") || s.contains("allOf") || s.contains("enum")) {
        errors.push_back(at + ": null, and the schema is not nullable");
      }
      return;
    }
    if (s.contains("allOf")) {
      for (const auto& part : s["allOf"]) validate_into(value, part, at, errors);
    }
    if (s.contains("oneOf")) {
      int passed = 0;
      std::string why;
      for (const auto& alt : s["oneOf"]) {
        std::vector<std::string> e;
        validate_into(value, alt, at, e);
        if (e.empty()) {
          ++passed;
        } else if (why.empty()) {
          why = e.front();
        }
      }
      if (passed != 1) {
        errors.push_back(at + ": matches " + std::to_string(passed) +
                         " of the oneOf alternatives, not one" +
                         (why.empty() ? "" : " (" + why + ")"));
      }
    }
    if (s.contains("type")) {
      const std::string type = s["type"];
      if (!is_type(value, type)) {
        errors.push_back(at + ": expected " + type + ", got " + value.type_name() + " " +
                         value.dump().substr(0, 80));
        return;
      }
    }
    if (s.contains("enum")) {
      bool found = false;
      for (const auto& e : s["enum"]) found = found || e == value;
      if (!found) errors.push_back(at + ": " + value.dump() + " is not one of " + s["enum"].dump());
    }
    if (value.is_number()) {
      if (s.contains("minimum") && value.get<double>() < s["minimum"].get<double>()) {
        errors.push_back(at + ": " + value.dump() + " is below the minimum " + s["minimum"].dump());
      }
      if (s.contains("maximum") && value.get<double>() > s["maximum"].get<double>()) {
        errors.push_back(at + ": " + value.dump() + " is above the maximum " + s["maximum"].dump());
      }
    }
    if (value.is_string()) {
      const std::string& text = value.get_ref<const std::string&>();
      if (s.contains("minLength") && text.size() < s["minLength"].get<std::size_t>()) {
        errors.push_back(at + ": shorter than " + s["minLength"].dump());
      }
      if (s.contains("maxLength") && text.size() > s["maxLength"].get<std::size_t>()) {
        errors.push_back(at + ": longer than " + s["maxLength"].dump());
      }
      if (s.contains("pattern") &&
          !std::regex_search(text, std::regex(s["pattern"].get<std::string>()))) {
        errors.push_back(at + ": \"" + text + "\" does not match " + s["pattern"].dump());
      }
      if (s.value("format", "") == "date-time") {
        static const std::regex kDateTime(
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-"
            "9]{2})$");
        if (!std::regex_match(text, kDateTime)) {
          errors.push_back(at + ": \"" + text + "\" is not an RFC 3339 date-time");
        }
      }
    }
    if (value.is_array()) {
      if (s.contains("minItems") && value.size() < s["minItems"].get<std::size_t>()) {
        errors.push_back(at + ": fewer than " + s["minItems"].dump() + " items");
      }
      if (s.contains("maxItems") && value.size() > s["maxItems"].get<std::size_t>()) {
        errors.push_back(at + ": more than " + s["maxItems"].dump() + " items");
      }
      if (s.contains("items")) {
        for (std::size_t i = 0; i < value.size(); ++i) {
          validate_into(value[i], s["items"], at + "[" + std::to_string(i) + "]", errors);
        }
      }
    }
    if (value.is_object()) {
      if (s.contains("required")) {
        for (const auto& r : s["required"]) {
          if (!value.contains(r.get<std::string>())) {
            errors.push_back(at + ": required property \"" + r.get<std::string>() + "\" missing");
          }
        }
      }
      if (s.contains("minProperties") && value.size() < s["minProperties"].get<std::size_t>()) {
        errors.push_back(at + ": fewer than " + s["minProperties"].dump() + " properties");
      }
      const json props = s.value("properties", json::object());
      for (auto& [k, v] : value.items()) {
        const std::string here = at + "." + k;
        if (props.contains(k)) {
          validate_into(v, props[k], here, errors);
        } else if (s.contains("additionalProperties")) {
          const json& extra = s["additionalProperties"];
          if (extra.is_boolean()) {
            if (!extra.get<bool>()) errors.push_back(here + ": not a property the schema allows");
          } else {
            validate_into(v, extra, here, errors);
          }
        }
      }
    }
  }

  json doc_;
  std::vector<Template> templates_;
};

}  // namespace schedd::testing
