// JSON Schema -> GBNF, the grammar llama.cpp's `-j/--json-schema` builds: compact JSON with
// optional whitespace (llama.cpp's `space` rule) between tokens.
//
// Supported: type (string, number, integer, boolean, null, object, array, and lists of types),
// properties + required (required first in declared order, then any subset of the optional
// ones in declared order), additionalProperties (absent/false: none; true or a schema: extra
// members after the declared ones), items / prefixItems with minItems / maxItems, enum, const,
// anyOf / oneOf, allOf (object members merged), $ref to "#", "#/$defs/..." or
// "#/definitions/..." (recursive schemas too), string minLength / maxLength, string formats
// date, time, date-time and uuid, integer/number minimum 0 or 1 (exclusiveMinimum 0).
// Unsupported keywords that change what is valid (pattern, other numeric bounds, non-local $ref,
// if/then/else, not, patternProperties, ...) are errors naming the JSON path, so a schema never
// silently yields output that violates it. Annotations (title, description, examples, default,
// $schema, $id, $comment) and formats other than the four above are ignored.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace loupe::sample {

// Returns GBNF text whose start rule is "root".
Expected<std::string> json_value_to_grammar(const nlohmann::ordered_json& schema);
// Parses `schema_text` first (errors give the byte offset), keeping property order.
Expected<std::string> json_schema_to_grammar(std::string_view schema_text);

}  // namespace loupe::sample
