//! Finds ESP-IDF log-macro calls in one C file and recovers their tag,
//! level and format string.

use std::collections::HashMap;

use crate::clex::{self, Kind, Token};

/// One log call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCall {
    /// Line of the macro name.
    pub line: u32,
    /// Resolved tag string, or `?` when it could not be resolved statically.
    pub tag: String,
    /// `E`, `W`, `I`, `D`, `V`, or `?` for a level chosen at run time.
    pub level: char,
    /// Format after literal concatenation, escapes as written. Unknown
    /// identifiers inside it appear as `{NAME}`; a format that is not a
    /// literal at all appears as `<expr: ...>`.
    pub format: String,
    /// The tag expression as written (for reporting unresolved tags).
    pub tag_expr: String,
}

/// How a recognised macro name maps its arguments.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `ESP_LOGx(tag, fmt, ...)` and the EARLY/DRAM variants.
    Fixed(char),
    /// `ESP_LOG_LEVEL(level, tag, fmt, ...)` and `ESP_LOG_LEVEL_LOCAL`.
    WithLevel,
}

fn log_macro(name: &str) -> Option<Shape> {
    if name == "ESP_LOG_LEVEL" || name == "ESP_LOG_LEVEL_LOCAL" {
        return Some(Shape::WithLevel);
    }
    let rest = name
        .strip_prefix("ESP_EARLY_LOG")
        .or_else(|| name.strip_prefix("ESP_DRAM_LOG"))
        .or_else(|| name.strip_prefix("ESP_LOG"))?;
    match rest {
        "E" | "W" | "I" | "D" | "V" => rest.chars().next().map(Shape::Fixed),
        _ => None,
    }
}

fn level_from_tokens(t: &[Token]) -> char {
    match t {
        [tok] => match tok.ident() {
            Some("ESP_LOG_ERROR") => 'E',
            Some("ESP_LOG_WARN") => 'W',
            Some("ESP_LOG_INFO") => 'I',
            Some("ESP_LOG_DEBUG") => 'D',
            Some("ESP_LOG_VERBOSE") => 'V',
            _ => '?',
        },
        _ => '?',
    }
}

/// Expansion of the `<inttypes.h>` format macros.
///
/// Newlib on Xtensa really defines the 32-bit ones with an `l` length
/// (`PRIu32` is `"lu"`); that prints exactly the same as `%u`, so the plain
/// form is used here to keep the formats comparable across releases that
/// used `%u` and releases that used `"%" PRIu32`.
pub fn pri_macro(name: &str) -> Option<String> {
    let rest = name.strip_prefix("PRI")?;
    let conv = rest.chars().next()?;
    if !"diouxX".contains(conv) {
        return None;
    }
    let width = &rest[1..];
    let len = match width {
        "8" | "16" | "32" | "LEAST8" | "LEAST16" | "LEAST32" | "FAST8" | "FAST16" | "FAST32" | "PTR" => "",
        "64" | "LEAST64" | "FAST64" => "ll",
        "MAX" => "j",
        _ => return None,
    };
    Some(format!("{len}{conv}"))
}

/// String-valued macros from ESP-IDF/lwIP headers that show up in formats.
fn builtin_string_macro(name: &str) -> Option<String> {
    if let Some(p) = pri_macro(name) {
        return Some(p);
    }
    let s = match name {
        // esp_log.h colour codes: the extractor reports colour-free formats.
        "LOG_RESET_COLOR" | "LOG_COLOR_E" | "LOG_COLOR_W" | "LOG_COLOR_I" | "LOG_COLOR_D" | "LOG_COLOR_V" => "",
        // lwIP / esp_netif / esp_wifi helpers.
        "IPSTR" => "%d.%d.%d.%d",
        "IPV6STR" => "%04x:%04x:%04x:%04x:%04x:%04x:%04x:%04x",
        "MACSTR" => "%02x:%02x:%02x:%02x:%02x:%02x",
        _ => return None,
    };
    Some(s.to_string())
}

/// A function-like `#define` whose body is a log call, e.g.
/// `#define FAIL_LOAD(...) do { if (!silent) ESP_LOGE(TAG, __VA_ARGS__); } while (0)`.
#[derive(Debug, Clone)]
struct Wrapper {
    params: Vec<String>,
    shape: Shape,
    /// The inner call's arguments, in terms of the wrapper's parameters.
    inner_args: Vec<Vec<Token>>,
}

/// Per-file knowledge gathered from declarations and `#define`s.
#[derive(Debug, Default)]
struct FileCtx {
    /// `NAME -> [(line, value)]` for `static const char *NAME = "..."`,
    /// `#define NAME "..."`, `ESP_LOG_ATTR_TAG(NAME, "...")`.
    strings: HashMap<String, Vec<(u32, String)>>,
    /// Object-like macros (may be defined several times in `#if` branches).
    objects: HashMap<String, Vec<Vec<Token>>>,
    wrappers: HashMap<String, Wrapper>,
}

impl FileCtx {
    fn build(lexed: &clex::Lexed) -> Self {
        let mut ctx = FileCtx::default();
        let toks = &lexed.tokens;
        // Declarations with a string initializer.
        for i in 0..toks.len() {
            let Some(name) = toks[i].ident() else { continue };
            // ESP_LOG_ATTR_TAG(TAG, "x") / ESP_LOG_ATTR_TAG_DRAM(TAG, "x")
            if name.starts_with("ESP_LOG_ATTR_TAG") {
                if let Some((args, _)) = clex::split_args(toks, i + 1)
                    && let [[n], val] = args.as_slice()
                    && let (Some(n), Some(v)) = (n.ident(), literal_only(val))
                {
                    ctx.add_string(n, toks[i].line, v);
                }
                continue;
            }
            let mut j = i + 1;
            // NAME[]   or   NAME __attribute__((...))
            if toks.get(j).is_some_and(|t| t.is_punct('[')) {
                j += 1;
                while toks.get(j).is_some_and(|t| !t.is_punct(']')) {
                    j += 1;
                }
                j += 1;
            }
            while toks.get(j).and_then(Token::ident) == Some("__attribute__") {
                match clex::split_args(toks, j + 1) {
                    Some((_, end)) => j = end,
                    None => break,
                }
            }
            if !toks.get(j).is_some_and(|t| t.is_punct('=')) {
                continue;
            }
            // Must look like a char pointer/array declaration: `char` earlier in
            // the same declaration (attributes may sit between it and the name).
            let is_char_decl = toks[i.saturating_sub(16)..i]
                .iter()
                .rev()
                .take_while(|t| !(t.is_punct(';') || t.is_punct('{') || t.is_punct('}')))
                .any(|t| t.ident() == Some("char"));
            if !is_char_decl {
                continue;
            }
            let mut k = j + 1;
            let mut value = String::new();
            let mut any = false;
            while let Some(Kind::Str(s)) = toks.get(k).map(|t| &t.kind) {
                value.push_str(s);
                any = true;
                k += 1;
            }
            if any && toks.get(k).is_some_and(|t| t.is_punct(';') || t.is_punct(',')) {
                ctx.add_string(name, toks[i].line, value);
            }
        }
        // #defines.
        for d in &lexed.directives {
            let t = &d.tokens;
            if t.first().and_then(Token::ident) != Some("define") {
                continue;
            }
            let Some(name) = t.get(1).and_then(Token::ident) else { continue };
            let function_like = t.get(2).is_some_and(|p| p.is_punct('(') && !p.spaced);
            if !function_like {
                let body = t[2..].to_vec();
                if let Some(v) = literal_only(&body) {
                    ctx.add_string(name, d.line, v);
                }
                ctx.objects.entry(name.to_string()).or_default().push(body);
                continue;
            }
            let Some((params, body_start)) = clex::split_args(t, 2) else { continue };
            let params: Vec<String> = params
                .iter()
                .map(|p| clex::render(p))
                .map(|p| if p == "..." { "__VA_ARGS__".to_string() } else { p })
                .collect();
            let body = &t[body_start..];
            for (bi, bt) in body.iter().enumerate() {
                let Some(shape) = bt.ident().and_then(log_macro) else { continue };
                let Some((args, _)) = clex::split_args(body, bi + 1) else { continue };
                let uses_param = args
                    .iter()
                    .flat_map(|a| a.iter())
                    .any(|tok| tok.ident().is_some_and(|n| params.iter().any(|p| p == n)));
                if uses_param {
                    ctx.wrappers.insert(
                        name.to_string(),
                        Wrapper {
                            params: params.clone(),
                            shape,
                            inner_args: args.iter().map(|a| a.to_vec()).collect(),
                        },
                    );
                    break;
                }
            }
        }
        ctx
    }

    fn add_string(&mut self, name: &str, line: u32, value: String) {
        self.strings.entry(name.to_string()).or_default().push((line, value));
    }

    /// Value of a string variable/macro as seen from `line`: the nearest
    /// definition above it, else the first one in the file.
    fn string_at(&self, name: &str, line: u32) -> Option<&str> {
        let defs = self.strings.get(name)?;
        defs.iter()
            .filter(|(l, _)| *l <= line)
            .max_by_key(|(l, _)| *l)
            .or_else(|| defs.first())
            .map(|(_, v)| v.as_str())
    }

    /// Expands a format argument to its string value.
    fn format(&self, arg: &[Token]) -> String {
        let mut out = String::new();
        let mut literal = false;
        let mut unknown = false;
        self.expand_into(arg, &mut out, &mut literal, &mut unknown, 0);
        if !literal {
            return format!("<expr: {}>", clex::render(arg));
        }
        out
    }

    fn expand_into(&self, toks: &[Token], out: &mut String, literal: &mut bool, unknown: &mut bool, depth: u32) {
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            match &t.kind {
                Kind::Str(s) => {
                    out.push_str(s);
                    *literal = true;
                }
                Kind::Ident(name) => {
                    // DRAM_STR("...") and LOG_COLOR(x): look inside / drop.
                    if matches!(name.as_str(), "DRAM_STR" | "ESP_LOG_ATTR_STR" | "LOG_COLOR" | "LOG_BOLD")
                        && let Some((args, end)) = clex::split_args(toks, i + 1)
                    {
                        if (name == "DRAM_STR" || name == "ESP_LOG_ATTR_STR")
                            && let Some(a) = args.first()
                        {
                            self.expand_into(a, out, literal, unknown, depth + 1);
                        }
                        i = end;
                        continue;
                    }
                    if let Some(s) = builtin_string_macro(name) {
                        out.push_str(&s);
                    } else if let Some(body) = self.object_body(name, depth) {
                        self.expand_into(body, out, literal, unknown, depth + 1);
                    } else {
                        *unknown = true;
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                Kind::Punct('(' | ')') => {}
                _ => {
                    *unknown = true;
                    out.push_str(&format!("{{{}}}", clex::render(std::slice::from_ref(t))));
                }
            }
            i += 1;
        }
    }

    /// Body of an object-like macro usable inside a format (first definition
    /// made only of literals and known macros).
    fn object_body(&self, name: &str, depth: u32) -> Option<&[Token]> {
        if depth > 8 {
            return None;
        }
        let defs = self.objects.get(name)?;
        defs.iter()
            .find(|body| {
                !body.is_empty()
                    && body.iter().all(|t| match &t.kind {
                        Kind::Str(_) => true,
                        Kind::Ident(n) => builtin_string_macro(n).is_some() || self.object_body(n, depth + 1).is_some(),
                        _ => false,
                    })
            })
            .map(|b| b.as_slice())
    }

    fn tag(&self, arg: &[Token], line: u32) -> String {
        if let Some(v) = literal_only(arg) {
            return v;
        }
        if let [t] = arg
            && let Some(name) = t.ident()
            && let Some(v) = self.string_at(name, line)
        {
            return v.to_string();
        }
        "?".to_string()
    }
}

/// Concatenation of an argument made only of string literals.
fn literal_only(toks: &[Token]) -> Option<String> {
    if toks.is_empty() {
        return None;
    }
    let mut s = String::new();
    for t in toks {
        match &t.kind {
            Kind::Str(x) => s.push_str(x),
            _ => return None,
        }
    }
    Some(s)
}

/// Substitutes wrapper parameters in `template` with call arguments.
fn substitute(template: &[Token], params: &[String], args: &[&[Token]]) -> Vec<Token> {
    let mut out = Vec::new();
    for t in template {
        if let Some(name) = t.ident()
            && let Some(pi) = params.iter().position(|p| p == name)
        {
            if name == "__VA_ARGS__" {
                // In the format position only the first variadic argument matters.
                if let Some(a) = args.get(pi) {
                    out.extend_from_slice(a);
                }
            } else if let Some(a) = args.get(pi) {
                out.extend_from_slice(a);
            }
            continue;
        }
        out.push(t.clone());
    }
    out
}

/// Extracts all log calls from C source text.
pub fn extract(src: &str) -> Vec<LogCall> {
    let lexed = clex::lex(src);
    let ctx = FileCtx::build(&lexed);
    let mut calls = Vec::new();

    // Calls in ordinary code, plus literal-format calls inside #define bodies.
    let mut streams: Vec<&[Token]> = vec![&lexed.tokens];
    for d in &lexed.directives {
        if d.tokens.first().and_then(Token::ident) == Some("define") {
            streams.push(&d.tokens);
        }
    }
    for (si, toks) in streams.iter().enumerate() {
        let in_define = si > 0;
        for i in 0..toks.len() {
            let Some(name) = toks[i].ident() else { continue };
            let line = toks[i].line;
            if in_define && i == 1 {
                continue; // the macro being defined
            }
            let (shape, args): (Shape, Vec<Vec<Token>>) = if let Some(shape) = log_macro(name) {
                let Some((args, _)) = clex::split_args(toks, i + 1) else { continue };
                (shape, args.iter().map(|a| a.to_vec()).collect())
            } else if let Some(w) = ctx.wrappers.get(name).filter(|_| !in_define) {
                let Some((args, _)) = clex::split_args(toks, i + 1) else { continue };
                let inner = w.inner_args.iter().map(|tmpl| substitute(tmpl, &w.params, &args)).collect();
                (w.shape, inner)
            } else {
                continue;
            };
            let (level, tag_arg, fmt_arg) = match shape {
                Shape::Fixed(l) => (l, args.first(), args.get(1)),
                Shape::WithLevel => (args.first().map_or('?', |a| level_from_tokens(a)), args.get(1), args.get(2)),
            };
            let (Some(tag_arg), Some(fmt_arg)) = (tag_arg, fmt_arg) else { continue };
            // A log call inside a wrapper definition whose format is a parameter
            // is a template, not a call site.
            if in_define && literal_only(fmt_arg).is_none() && !has_literal(fmt_arg) {
                continue;
            }
            calls.push(LogCall {
                line,
                tag: ctx.tag(tag_arg, line),
                level,
                format: ctx.format(fmt_arg),
                tag_expr: clex::render(tag_arg),
            });
        }
    }
    calls.sort_by_key(|c| c.line);
    calls
}

fn has_literal(t: &[Token]) -> bool {
    t.iter().any(|t| matches!(t.kind, Kind::Str(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> LogCall {
        let v = extract(src);
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn adjacent_literals_are_joined() {
        let c = one("static const char *TAG = \"t\";\nvoid f(){ ESP_LOGE(TAG, \"a\" \"b\"\n  \"c\\n\", x); }");
        assert_eq!((c.line, c.tag.as_str(), c.level, c.format.as_str()), (2, "t", 'E', "abc\\n"));
    }

    #[test]
    fn pri_macros_expand() {
        let c = one(r#"ESP_LOGI("x", "Writing to partition at offset 0x%" PRIx32 ", %" PRIu64 "/%" PRIu32, a, b, c);"#);
        assert_eq!(c.format, "Writing to partition at offset 0x%x, %llu/%u");
        assert_eq!(pri_macro("PRIX32").as_deref(), Some("X"));
        assert_eq!(pri_macro("PRIuPTR").as_deref(), Some("u"));
        assert_eq!(pri_macro("PRIZ32"), None);
    }

    #[test]
    fn colour_and_local_macros() {
        let src = "#define HDR \"[hdr] \"\n#define TAG \"m\"\nESP_EARLY_LOGW(TAG, LOG_COLOR_W HDR \"x=\" IPSTR LOG_RESET_COLOR, 1);";
        let c = one(src);
        assert_eq!((c.tag.as_str(), c.level), ("m", 'W'));
        assert_eq!(c.format, "[hdr] x=%d.%d.%d.%d");
    }

    #[test]
    fn unknown_identifiers_are_marked() {
        let c = one("ESP_LOGI(TAG, \"compile time \" __TIME__);");
        assert_eq!(c.tag, "?");
        assert_eq!(c.format, "compile time {__TIME__}");
        let c = one("ESP_LOGI(\"t\", buf);");
        assert_eq!(c.format, "<expr: buf>");
    }

    #[test]
    fn tag_variants() {
        let src = "static const char TAG[] = \"arr\";\nstatic const char *TAG2 __attribute__((unused)) = \"attr\";\nstatic const char* __attribute__((unused)) TAG4 = \"pre\";\nESP_LOG_ATTR_TAG(TAG3, \"lt\");\n\
                   f(){ ESP_LOGD(TAG, \"1\"); ESP_LOGV(TAG2, \"2\"); ESP_DRAM_LOGE(TAG3, DRAM_STR(\"3\")); ESP_EARLY_LOGI(TAG4, \"4\"); }";
        let v = extract(src);
        let got: Vec<_> = v.iter().map(|c| (c.tag.as_str(), c.level, c.format.as_str())).collect();
        assert_eq!(got, vec![("arr", 'D', "1"), ("attr", 'V', "2"), ("lt", 'E', "3"), ("pre", 'I', "4")]);
    }

    #[test]
    fn nearest_tag_definition_wins() {
        let src = "#if A\nstatic const char *TAG = \"one\";\n#else\nstatic const char *TAG = \"two\";\n#endif\nf(){ESP_LOGI(TAG, \"x\");}";
        assert_eq!(one(src).tag, "two");
    }

    #[test]
    fn wrapper_macros_are_followed() {
        let src = "static const char *TAG = \"esp_image\";\n\
                   #define FAIL_LOAD(...) do { \\\n if (!silent) { ESP_LOGE(TAG, __VA_ARGS__); } \\\n } while(0)\n\
                   void f(){\n FAIL_LOAD(\"image at 0x%\" PRIx32 \" bad\", a);\n}";
        let c = one(src);
        assert_eq!((c.line, c.tag.as_str(), c.level, c.format.as_str()), (6, "esp_image", 'E', "image at 0x%x bad"));
    }

    #[test]
    fn log_level_macro() {
        let v = extract("ESP_LOG_LEVEL(ESP_LOG_WARN, \"h\", \"a %d\", 1); ESP_LOG_LEVEL(sev, \"h\", \"b\");");
        assert_eq!(v.iter().map(|c| c.level).collect::<String>(), "W?");
    }

    #[test]
    fn comments_and_strings_do_not_confuse() {
        let src = "// ESP_LOGE(TAG, \"no\");\n/* ESP_LOGW(TAG, \"no\"); */\nchar *s = \"ESP_LOGI(TAG, no)\";\nESP_LOGI(\"t\", \"(yes, %s)\", \",\");";
        let c = one(src);
        assert_eq!((c.line, c.format.as_str()), (4, "(yes, %s)"));
    }
}
