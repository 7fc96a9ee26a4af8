#include "sample/json_schema.h"

#include <map>
#include <set>
#include <vector>

namespace loupe::sample {
namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxDepth = 64;
constexpr int64_t kMaxCount = 10000;  // minItems/maxLength and friends become GBNF repetitions

struct Primitive {
  const char* name;
  const char* body;
  std::vector<const char*> deps;
};

// The JSON lexical rules (RFC 8259) as llama.cpp's json-schema-to-grammar spells them; numbers
// are limited to 16 digits per part as there.
const Primitive kPrimitives[] = {
    {"space", R"(| " " | "\n"{1,2} [ \t]{0,20})", {}},
    {"boolean", R"(("true" | "false") space)", {"space"}},
    {"null", R"("null" space)", {"space"}},
    {"integral-part", R"([0] | [1-9] [0-9]{0,15})", {}},
    {"decimal-part", R"([0-9]{1,16})", {}},
    // Exponents have at most two digits (llama.cpp allows 16): every number then fits a double
    // (16 digits + e99 < 1e308), so strict parsers never overflow.
    {"number",
     R"(("-"? integral-part) ("." decimal-part)? ([eE] [-+]? [0-9]{1,2})? space)",
     {"integral-part", "decimal-part", "space"}},
    {"integer", R"(("-"? integral-part) space)", {"integral-part", "space"}},
    {"nonneg-integer", R"(integral-part space)", {"integral-part", "space"}},
    {"positive-integer", R"([1-9] [0-9]{0,15} space)", {"space"}},
    {"nonneg-number",
     R"(integral-part ("." decimal-part)? ([eE] [-+]? [0-9]{1,2})? space)",
     {"integral-part", "decimal-part", "space"}},
    // Unlike llama.cpp, \u escapes of lone surrogates (D800-DFFF) are excluded: strict JSON
    // parsers reject them.
    {"char",
     R"([^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt/] | "u" ([0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})))",
     {}},
    {"string", R"("\"" char* "\"" space)", {"char", "space"}},
    {"value",
     R"(object | array | string | number | boolean | null)",
     {"object", "array", "string", "number", "boolean", "null"}},
    {"object",
     R"("{" space ( string ":" space value ("," space string ":" space value)* )? "}" space)",
     {"string", "value", "space"}},
    {"array", R"("[" space ( value ("," space value)* )? "]" space)", {"value", "space"}},
    {"uuid",
     R"("\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12} "\"" space)",
     {"space"}},
    {"date",
     R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] ))",
     {}},
    {"time",
     R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? ( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))",
     {}},
    {"date-time", R"(date "T" time)", {"date", "time"}},
    {"date-string", R"("\"" date "\"" space)", {"date", "space"}},
    {"time-string", R"("\"" time "\"" space)", {"time", "space"}},
    {"date-time-string", R"("\"" date-time "\"" space)", {"date-time", "space"}},
};

const std::set<std::string> kIgnored = {"title",       "description", "examples",   "default",
                                        "$schema",     "$id",         "$comment",   "format",
                                        "readOnly",    "writeOnly",   "deprecated", "$defs",
                                        "definitions", "strict",      "name"};

std::string gbnf_literal(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += fmt::format("\\x{:02X}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string dump(const Json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sanitize(std::string_view name) {
  std::string out;
  for (char c : name) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += word ? c : '-';
  }
  return out.empty() ? std::string("r") : out;
}

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {
    for (const auto& p : kPrimitives) reserved_.insert(p.name);
  }

  Expected<std::string> run() {
    rules_["root"] = "";
    LOUPE_ASSIGN_OR_RETURN(std::string body, visit(root_, "root", "", 0));
    rules_["root"] = body;
    std::string out = "root ::= " + rules_["root"] + "\n";
    for (const auto& [name, b] : rules_) {
      if (name != "root") out += name + " ::= " + b + "\n";
    }
    return out;
  }

 private:
  Status error(const std::string& path, const std::string& message) const {
    return Status(ErrorCode::kUnsupported,
                  fmt::format("JSON schema at '{}': {}", path.empty() ? "/" : path, message));
  }

  std::string use(const std::string& prim) {
    for (const auto& p : kPrimitives) {
      if (prim == p.name) {
        if (!rules_.count(prim)) {
          rules_[prim] = p.body;
          for (const char* dep : p.deps) use(dep);
        }
        return prim;
      }
    }
    return prim;
  }

  std::string unique(const std::string& base) {
    std::string name = sanitize(base);
    if (!rules_.count(name) && !reserved_.count(name)) return name;
    for (int i = 1;; ++i) {
      std::string n = fmt::format("{}-{}", name, i);
      if (!rules_.count(n) && !reserved_.count(n)) return n;
    }
  }

  std::string add_rule(const std::string& base, const std::string& body) {
    const std::string name = sanitize(base);
    auto it = rules_.find(name);
    if (it != rules_.end() && it->second == body) return name;
    const std::string n = unique(base);
    rules_[n] = body;
    return n;
  }

  Expected<int64_t> count_field(const Json& s, const char* key, int64_t fallback,
                                const std::string& path) {
    auto it = s.find(key);
    if (it == s.end()) return fallback;
    if (!it->is_number_integer() && !it->is_number_unsigned()) {
      return error(path + "/" + key, "must be a non-negative integer");
    }
    const int64_t v = it->get<int64_t>();
    if (v < 0 || v > kMaxCount) {
      return error(path + "/" + key, fmt::format("must be between 0 and {}", kMaxCount));
    }
    return v;
  }

  // GBNF repetition suffix for [min, max] (max < 0: unbounded).
  static std::string repetition(int64_t min, int64_t max) {
    if (max < 0) return min == 0 ? "*" : min == 1 ? "+" : fmt::format("{{{},}}", min);
    if (min == max) return min == 1 ? "" : fmt::format("{{{}}}", min);
    if (min == 0 && max == 1) return "?";
    return fmt::format("{{{},{}}}", min, max);
  }

  Expected<const Json*> resolve(const std::string& ref, const std::string& path) {
    if (ref.empty() || ref[0] != '#') {
      return error(path, fmt::format("$ref '{}' is not local (only '#...' references are "
                                     "supported)",
                                     ref));
    }
    try {
      const Json::json_pointer ptr(ref.substr(1));
      if (!root_.contains(ptr)) return error(path, fmt::format("$ref '{}' points nowhere", ref));
      return &root_.at(ptr);
    } catch (const std::exception& e) {
      return error(path, fmt::format("bad $ref '{}': {}", ref, e.what()));
    }
  }

  Status check_keywords(const Json& s, const std::string& path) {
    static const std::set<std::string> known = {"type",      "properties",
                                                "required",  "additionalProperties",
                                                "items",     "prefixItems",
                                                "minItems",  "maxItems",
                                                "enum",      "const",
                                                "anyOf",     "oneOf",
                                                "allOf",     "$ref",
                                                "minLength", "maxLength",
                                                "minimum",   "exclusiveMinimum",
                                                "maximum",   "exclusiveMaximum"};
    for (const auto& [key, value] : s.items()) {
      if (!known.count(key) && !kIgnored.count(key)) {
        return error(path + "/" + key, fmt::format("keyword '{}' is not supported", key));
      }
    }
    return Status();
  }

  Expected<std::string> visit(const Json& s, const std::string& name, const std::string& path,
                              int depth) {
    if (depth > kMaxDepth) return error(path, "schema nested too deeply");
    if (s.is_boolean()) {
      if (s.get<bool>()) return use("value");
      return error(path, "the schema 'false' matches nothing");
    }
    if (!s.is_object()) return error(path, "a schema must be an object or a boolean");
    LOUPE_TRY(check_keywords(s, path));

    if (auto it = s.find("$ref"); it != s.end()) {
      if (!it->is_string()) return error(path + "/$ref", "must be a string");
      const std::string ref = it->get<std::string>();
      auto known = ref_names_.find(ref);
      if (known != ref_names_.end()) return known->second;
      LOUPE_ASSIGN_OR_RETURN(const Json* target, resolve(ref, path + "/$ref"));
      const size_t slash = ref.find_last_of('/');
      const std::string rule = unique(ref == "#" ? "root-ref" : ref.substr(slash + 1));
      ref_names_[ref] = rule;
      rules_[rule] = "";
      LOUPE_ASSIGN_OR_RETURN(std::string body, visit(*target, rule, ref.substr(1), depth + 1));
      rules_[rule] = body;
      return rule;
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (auto it = s.find(key); it != s.end()) {
        if (!it->is_array() || it->empty())
          return error(path + "/" + key, "must be a non-empty array");
        std::string out;
        for (size_t i = 0; i < it->size(); ++i) {
          LOUPE_ASSIGN_OR_RETURN(std::string alt,
                                 visit((*it)[i], fmt::format("{}-{}", name, i),
                                       fmt::format("{}/{}/{}", path, key, i), depth + 1));
          out += (i ? " | " : "") + alt;
        }
        return add_rule(name, out);
      }
    }
    if (auto it = s.find("allOf"); it != s.end()) return visit_all_of(s, *it, name, path, depth);
    if (auto it = s.find("const"); it != s.end()) {
      return add_rule(name, gbnf_literal(dump(*it)) + " " + use("space"));
    }
    if (auto it = s.find("enum"); it != s.end()) {
      if (!it->is_array() || it->empty()) return error(path + "/enum", "must be a non-empty array");
      std::string out = "(";
      for (size_t i = 0; i < it->size(); ++i)
        out += (i ? " | " : "") + gbnf_literal(dump((*it)[i]));
      return add_rule(name, out + ") " + use("space"));
    }

    auto type_it = s.find("type");
    if (type_it != s.end() && type_it->is_array()) {
      if (type_it->empty()) return error(path + "/type", "must not be empty");
      std::string out;
      for (size_t i = 0; i < type_it->size(); ++i) {
        Json one = s;
        one["type"] = (*type_it)[i];
        LOUPE_ASSIGN_OR_RETURN(std::string alt,
                               visit(one, fmt::format("{}-{}", name, i), path, depth + 1));
        out += (i ? " | " : "") + alt;
      }
      return add_rule(name, out);
    }
    std::string type;
    if (type_it != s.end()) {
      if (!type_it->is_string()) return error(path + "/type", "must be a string or an array");
      type = type_it->get<std::string>();
    } else if (s.contains("properties") || s.contains("additionalProperties")) {
      type = "object";
    } else if (s.contains("items") || s.contains("prefixItems")) {
      type = "array";
    } else if (s.contains("minLength") || s.contains("maxLength")) {
      type = "string";
    }

    if (type == "object") return visit_object(s, name, path, depth);
    if (type == "array") return visit_array(s, name, path, depth);
    if (type == "string") return visit_string(s, name, path);
    if (type == "integer" || type == "number") return visit_number(s, type, path);
    if (type == "boolean") return use("boolean");
    if (type == "null") return use("null");
    if (type.empty()) return use("value");
    return error(path + "/type", fmt::format("unknown type '{}'", type));
  }

  Expected<std::string> visit_number(const Json& s, const std::string& type,
                                     const std::string& path) {
    const bool integer = type == "integer";
    if (s.contains("maximum") || s.contains("exclusiveMaximum")) {
      return error(path, "maximum / exclusiveMaximum are not supported");
    }
    if (auto it = s.find("minimum"); it != s.end()) {
      if (it->is_number() && it->get<double>() == 0.0) {
        return use(integer ? "nonneg-integer" : "nonneg-number");
      }
      if (integer && it->is_number() && it->get<double>() == 1.0) return use("positive-integer");
      return error(path + "/minimum", "only minimum 0 (and 1 for integers) is supported");
    }
    if (auto it = s.find("exclusiveMinimum"); it != s.end()) {
      if (integer && it->is_number() && it->get<double>() == 0.0) return use("positive-integer");
      return error(path + "/exclusiveMinimum", "only exclusiveMinimum 0 for integers is supported");
    }
    return use(type);
  }

  Expected<std::string> visit_string(const Json& s, const std::string& name,
                                     const std::string& path) {
    if (auto it = s.find("format"); it != s.end() && it->is_string()) {
      const std::string f = it->get<std::string>();
      if (f == "uuid") return use("uuid");
      if (f == "date" || f == "time" || f == "date-time") return use(f + "-string");
    }
    if (s.contains("minLength") || s.contains("maxLength")) {
      LOUPE_ASSIGN_OR_RETURN(int64_t min, count_field(s, "minLength", 0, path));
      LOUPE_ASSIGN_OR_RETURN(int64_t max, count_field(s, "maxLength", -1, path));
      if (max >= 0 && max < min) return error(path, "maxLength < minLength");
      return add_rule(
          name, "\"\\\"\" " + use("char") + repetition(min, max) + " \"\\\"\" " + use("space"));
    }
    return use("string");
  }

  Expected<std::string> visit_array(const Json& s, const std::string& name, const std::string& path,
                                    int depth) {
    const std::string sp = use("space");
    if (auto it = s.find("prefixItems"); it != s.end()) {
      if (!it->is_array()) return error(path + "/prefixItems", "must be an array");
      std::string out = "\"[\" " + sp;
      for (size_t i = 0; i < it->size(); ++i) {
        LOUPE_ASSIGN_OR_RETURN(std::string item,
                               visit((*it)[i], fmt::format("{}-{}", name, i),
                                     fmt::format("{}/prefixItems/{}", path, i), depth + 1));
        out += (i ? " \",\" " + sp + " " : " ") + item;
      }
      return add_rule(name, out + " \"]\" " + sp);
    }
    std::string item;
    if (auto it = s.find("items"); it != s.end()) {
      if (it->is_array()) return error(path + "/items", "an array of schemas: use prefixItems");
      LOUPE_ASSIGN_OR_RETURN(item, visit(*it, name + "-item", path + "/items", depth + 1));
    } else {
      item = use("value");
    }
    LOUPE_ASSIGN_OR_RETURN(int64_t min, count_field(s, "minItems", 0, path));
    LOUPE_ASSIGN_OR_RETURN(int64_t max, count_field(s, "maxItems", -1, path));
    if (max >= 0 && max < min) return error(path, "maxItems < minItems");
    std::string list;
    if (max == 0) {
      list = "";
    } else {
      const std::string more = "( \",\" " + sp + " " + item + " )" +
                               repetition(min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1);
      list = min > 0 ? item + " " + more : "( " + item + " " + more + " )?";
    }
    return add_rule(name, "\"[\" " + sp + " " + list + " \"]\" " + sp);
  }

  Expected<std::string> visit_object(const Json& s, const std::string& name,
                                     const std::string& path, int depth) {
    std::vector<std::pair<std::string, const Json*>> props;
    if (auto it = s.find("properties"); it != s.end()) {
      if (!it->is_object()) return error(path + "/properties", "must be an object");
      for (const auto& [key, value] : it->items()) props.push_back({key, &value});
    }
    std::set<std::string> required;
    if (auto it = s.find("required"); it != s.end()) {
      if (!it->is_array()) return error(path + "/required", "must be an array of names");
      for (const auto& r : *it) {
        if (!r.is_string()) return error(path + "/required", "must be an array of names");
        required.insert(r.get<std::string>());
      }
    }
    const Json* additional = nullptr;
    if (auto it = s.find("additionalProperties"); it != s.end()) additional = &*it;
    if (props.empty() && (!additional || (additional->is_boolean() && additional->get<bool>()))) {
      if (!required.empty())
        return error(path + "/required", "names properties that are not declared");
      return use("object");
    }
    return build_object(props, required, additional, name, path, depth);
  }

  Expected<std::string> build_object(const std::vector<std::pair<std::string, const Json*>>& props,
                                     const std::set<std::string>& required, const Json* additional,
                                     const std::string& name, const std::string& path, int depth) {
    const std::string sp = use("space");
    std::vector<std::string> req, opt;
    for (const auto& r : required) {
      bool declared = false;
      for (const auto& p : props) declared = declared || p.first == r;
      if (!declared) return error(path + "/required", fmt::format("'{}' is not in properties", r));
    }
    for (const auto& [key, schema] : props) {
      LOUPE_ASSIGN_OR_RETURN(std::string value, visit(*schema, name + "-" + key,
                                                      path + "/properties/" + key, depth + 1));
      const std::string kv =
          add_rule(name + "-" + key + "-kv",
                   gbnf_literal(dump(Json(key))) + " " + sp + " \":\" " + sp + " " + value);
      (required.count(key) ? req : opt).push_back(kv);
    }
    std::string extra;  // one additional member, or empty
    if (additional && !(additional->is_boolean() && !additional->get<bool>())) {
      std::string value;
      if (additional->is_boolean()) {
        value = use("value");
      } else {
        LOUPE_ASSIGN_OR_RETURN(value, visit(*additional, name + "-additional",
                                            path + "/additionalProperties", depth + 1));
      }
      extra = add_rule(name + "-additional-kv", use("string") + " \":\" " + sp + " " + value);
    }
    const std::string comma = "\",\" " + sp + " ";
    const std::string extra_tail = extra.empty() ? "" : " ( " + comma + extra + " )*";
    // Optional members after position i, each with its leading comma.
    auto tail = [&](size_t i) {
      std::string out;
      for (size_t j = i; j < opt.size(); ++j) out += " ( " + comma + opt[j] + " )?";
      return out + extra_tail;
    };
    std::string body = "\"{\" " + sp;
    if (!req.empty()) {
      for (size_t i = 0; i < req.size(); ++i) body += (i ? " " + comma : " ") + req[i];
      body += tail(0);
    } else if (!opt.empty() || !extra.empty()) {
      // Any non-empty subset in order: choose the first member present, then the rest optional.
      std::string alts;
      for (size_t i = 0; i < opt.size(); ++i) alts += (i ? " | " : "") + opt[i] + tail(i + 1);
      if (!extra.empty()) alts += (alts.empty() ? "" : " | ") + extra + extra_tail;
      body += " ( " + alts + " )?";
    }
    return add_rule(name, body + " \"}\" " + sp);
  }

  Expected<std::string> visit_all_of(const Json& s, const Json& all, const std::string& name,
                                     const std::string& path, int depth) {
    if (!all.is_array() || all.empty()) return error(path + "/allOf", "must be a non-empty array");
    std::vector<std::pair<std::string, const Json*>> props;
    std::set<std::string> required;
    const Json* additional = nullptr;
    std::vector<const Json*> parts;
    for (const auto& part : all) parts.push_back(&part);
    parts.push_back(&s);  // sibling keywords of allOf take part too
    for (size_t i = 0; i < parts.size(); ++i) {
      const Json* p = parts[i];
      if (p->is_object() && p->contains("$ref")) {
        if (!p->at("$ref").is_string()) return error(path + "/allOf", "$ref must be a string");
        LOUPE_ASSIGN_OR_RETURN(p, resolve(p->at("$ref").get<std::string>(), path + "/allOf"));
      }
      if (!p->is_object()) return error(path + "/allOf", "members must be object schemas");
      for (const auto& [key, value] : p->items()) {
        if (key == "allOf" && p == &s) continue;
        if ((key == "properties" && !value.is_object()) ||
            (key == "required" && !value.is_array())) {
          return error(path + "/allOf", fmt::format("'{}' has the wrong type", key));
        }
        if (key == "properties") {
          for (const auto& [k, v] : value.items()) props.push_back({k, &v});
        } else if (key == "required") {
          for (const auto& r : value) {
            if (r.is_string()) required.insert(r.get<std::string>());
          }
        } else if (key == "additionalProperties") {
          additional = &value;
        } else if (key == "type") {
          if (value != "object")
            return error(path + "/allOf", "only object schemas can be combined");
        } else if (!kIgnored.count(key)) {
          return error(path + "/allOf",
                       fmt::format("keyword '{}' inside allOf is not supported", key));
        }
      }
    }
    return build_object(props, required, additional, name, path, depth);
  }

  const Json& root_;
  std::map<std::string, std::string> rules_;
  std::set<std::string> reserved_;
  std::map<std::string, std::string> ref_names_;
};

}  // namespace

Expected<std::string> json_value_to_grammar(const nlohmann::ordered_json& schema) {
  try {
    Converter converter(schema);
    return converter.run();
  } catch (const nlohmann::json::exception& e) {
    // Every access is type-checked first; this only guards against a check we missed.
    return make_error(ErrorCode::kInvalidArgument, "JSON schema is not usable: {}", e.what());
  }
}

Expected<std::string> json_schema_to_grammar(std::string_view schema_text) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_text);
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::kInvalidArgument, "JSON schema is not valid JSON (byte {}): {}",
                      e.byte, e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
    return make_error(ErrorCode::kInvalidArgument, "JSON schema is not usable: {}", e.what());
  }
  return json_value_to_grammar(schema);
}

}  // namespace loupe::sample
