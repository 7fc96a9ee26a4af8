#include "tokenizer/pre_configs.h"

#include <algorithm>
#include <initializer_list>

#include "base/log.h"

namespace loupe::tokenizer {
namespace {

// Contractions spelled out: llama.cpp's std::regex has no (?i:...).
#define LOUPE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
const char* const kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
// Llama 3 (also DBRX, Smaug, GLM-4): digits in groups of up to three.
const char* const kLlama3 = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
    "|\\s+(?!\\S)|\\s+";
// Qwen2 (also Qwen3, StableLM2, Hunyuan, Grok-2): single digits.
const char* const kQwen2 = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
    "|\\s+(?!\\S)|\\s+";
// Qwen3.5/3.6: letter runs also take combining marks.
const char* const kQwen35 = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
// o200k (gpt-4o, gpt-oss, Llama 4): upper-case runs then lower-case runs. \p{Lu}/\p{Ll} are
// written as "a letter that is not a-z / A-Z", as llama.cpp does.
const char* const kGpt4o =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" LOUPE_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" LOUPE_CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kTekken =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
    "|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGraniteEmbedMulti =
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))"
    "+" LOUPE_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))"
    "*" LOUPE_CONTRACTIONS
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kYoutu =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
    "+" LOUPE_CONTRACTIONS
    "?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
    "*" LOUPE_CONTRACTIONS
    "?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kJais2 = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
    "|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)"
    "|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";
const char* const kDeepseekV3 =
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const char* const kBloom = " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+";
const char* const kMinicpm5 = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
    "|\\s+(?!\\S)|\\s+";
const char* const kBailing =
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const char* const kSeedCoder = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+"
    "|\\s+(?!\\S)|\\s+";
const char* const kExaoneMoe = LOUPE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
// SentencePiece-style BPE: no word splitting, only newline runs apart.
const char* const kNewlines = "[^\\n]+|[\\n]+";

struct Entry {
  std::initializer_list<const char*> names;
  std::initializer_list<const char*> regexes;
  void (*tweak)(PreConfig&);
};

void none(PreConfig&) {}
void no_clean(PreConfig& c) {
  c.clean_spaces = false;
}
void llama3(PreConfig& c) {
  c.ignore_merges = c.force_add_bos = true;
}
void youtu(PreConfig& c) {
  c.clean_spaces = false;
  c.ignore_merges = true;
}
void tekken(PreConfig& c) {
  c.clean_spaces = false;
  c.ignore_merges = c.force_add_bos = true;
}
void chameleon(PreConfig& c) {
  c.clean_spaces = false;
  c.force_add_bos = true;
}
void ignore_no_clean(PreConfig& c) {
  c.clean_spaces = false;
  c.ignore_merges = true;
}
void ignore(PreConfig& c) {
  c.ignore_merges = true;
}
void add_sep(PreConfig& c) {
  c.add_sep = true;
}
void glm(PreConfig& c) {
  c.no_bos = true;
}
void gemma4(PreConfig& c) {
  c.escape_whitespaces = true;
  c.byte_encode = false;
  c.gemma4 = c.force_add_bos = true;
}
void sarvam(PreConfig& c) {
  c.escape_whitespaces = true;
  c.byte_encode = false;
  c.clean_spaces = false;
}

const Entry kEntries[] = {
    {{"default"}, {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}, none},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
      "jina-v5-nano"},
     {kLlama3},
     llama3},
    {{"dbrx", "smaug-bpe"}, {kLlama3}, none},
    {{"glm4", "chatglm-bpe"}, {kLlama3}, glm},
    {{"jais-2"}, {kJais2}, none},
    {{"deepseek-llm"},
     {"[\r\n]",
      "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-"
      "\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-"
      "\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-"
      "\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-"
      "\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-"
      "\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-"
      "\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-"
      "\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-"
      "\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-"
      "\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-"
      "\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-"
      "\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-"
      "\U0001E943]+",
      "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+", "\\s+$",
      "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+", "\\p{N}+"},
     no_clean},
    {{"deepseek-coder"},
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
      "\\p{N}"},
     no_clean},
    {{"deepseek-v3", "hunyuan-dense", "joyai-llm"},
     {"\\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+", kDeepseekV3},
     no_clean},
    {{"youtu"},
     {"[\uAC00-\uD7A3\u3131-\u318E]+|["
      "\uFF01\u2026\u201C\u201D\u2018\u2019\u2014\uFF1A\uFF1B\uFF0C\u3001-\u303F\uFE30-\uFE4F]+|["
      "\u3105-\u312F]+|[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
      kYoutu},
     youtu},
    {{"falcon"}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2, "[0-9][0-9][0-9]"}, none},
    {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
     {"\\p{N}", kGpt2},
     none},
    {{"command-r", "smollm"}, {"\\p{N}", kGpt2}, no_clean},
    {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
      "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais"},
     {kGpt2},
     none},
    {{"trillion", "granite-docling"}, {kGpt2}, no_clean},
    {{"jina-v1-en", "jina-v2-code", "roberta-bpe"}, {kGpt2}, add_sep},
    {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
     {kQwen2},
     no_clean},
    {{"stablelm2", "megrez"}, {kQwen2}, none},
    {{"qwen35"}, {kQwen35}, no_clean},
    {{"poro-chat"}, {kBloom}, no_clean},
    {{"bloom", "gpt3-finnish"}, {kBloom}, none},
    {{"viking"}, {kBloom, "\\p{N}"}, no_clean},
    {{"tekken"}, {kTekken}, tekken},
    {{"chameleon"},
     {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}",
      "[\\p{P}!-/:-@\\[-`{-~]", kGpt2},
     chameleon},
    {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, {kGpt4o}, no_clean},
    {{"granite-embed-multi-97m"}, {kGraniteEmbedMulti}, ignore_no_clean},
    {{"superbpe"}, {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"}, no_clean},
    {{"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailing}, no_clean},
    {{"seed-coder"}, {kSeedCoder}, no_clean},
    {{"exaone-moe"}, {kExaoneMoe}, none},
    {{"minicpm5"}, {"\\p{N}{1,3}", kMinicpm5}, ignore},
    {{"gemma4", "granite-embed-multi-311m"}, {kNewlines}, gemma4},
    {{"sarvam-moe"}, {kNewlines}, sarvam},
};

// Named by llama.cpp but split by hand-written code there, not by a regex.
constexpr const char* kUnsupported[] = {"kimi-k2", "afmoe", "tiny_aya", "cohere2moe", "whitespace"};

}  // namespace

Expected<PreConfig> find_pre_config(const std::string& pre) {
  std::string name = pre;
  if (name.empty()) {
    LOUPE_LOG_WARN(
        "tokenizer.ggml.pre is missing: using the 'default' pre-tokenizer; "
        "tokenization may not match the model's (re-convert the model)");
    name = "default";
  }
  for (const Entry& e : kEntries) {
    if (std::find(e.names.begin(), e.names.end(), name) == e.names.end()) continue;
    PreConfig c;
    c.name = name;
    c.regexes.assign(e.regexes.begin(), e.regexes.end());
    e.tweak(c);
    return c;
  }
  for (const char* u : kUnsupported)
    if (name == u)
      return make_error(ErrorCode::kUnsupported,
                        "pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported", name);
  return make_error(ErrorCode::kUnsupported,
                    "unknown pre-tokenizer '{}' in tokenizer.ggml.pre: this tokenizer knows "
                    "the llama.cpp names (llama-bpe, qwen2, qwen35, gpt-4o, gemma4, ...)",
                    name);
}

}  // namespace loupe::tokenizer
