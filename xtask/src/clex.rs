//! A small C lexer: just enough of C to find log-macro calls and the string
//! literals in their arguments.
//!
//! * Comments are dropped, backslash-newline continuations are honoured.
//! * String literals keep their escapes exactly as written (`"a\n"` yields
//!   the 3 characters `a`, `\`, `n`), so that adjacent literals can be joined
//!   the way translation phase 6 does without changing the escape spelling.
//! * Preprocessor directives are collected separately (with their own tokens),
//!   so that `#if` branches do not break argument lists and `#define`s can be
//!   inspected for tag names, string macros and logging wrappers.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Ident(String),
    /// Contents between the quotes, escapes preserved (prefix such as `u8` dropped).
    Str(String),
    /// Character literal, contents preserved.
    Char(String),
    Number(String),
    Punct(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// 1-based source line of the token's first character.
    pub line: u32,
    /// True when whitespace (or a comment) precedes the token.
    pub spaced: bool,
}

impl Token {
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }
    pub fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(s) => Some(s),
            _ => None,
        }
    }
}

/// One preprocessor directive, e.g. `#define TAG "boot"`.
#[derive(Debug, Clone)]
pub struct Directive {
    pub line: u32,
    /// Tokens after the `#` (the first is normally the directive name).
    pub tokens: Vec<Token>,
}

#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub directives: Vec<Directive>,
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
    line: u32,
}

impl Cursor<'_> {
    /// Skips any backslash-newline pairs at the current position.
    fn splice(&mut self) {
        loop {
            if self.s.get(self.pos) == Some(&b'\\') {
                match (self.s.get(self.pos + 1), self.s.get(self.pos + 2)) {
                    (Some(b'\n'), _) => {
                        self.pos += 2;
                        self.line += 1;
                        continue;
                    }
                    (Some(b'\r'), Some(b'\n')) => {
                        self.pos += 3;
                        self.line += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            break;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.splice();
        self.s.get(self.pos).copied()
    }
    fn peek2(&mut self) -> Option<u8> {
        self.splice();
        let save = (self.pos, self.line);
        self.pos += 1;
        self.splice();
        let c = self.s.get(self.pos).copied();
        (self.pos, self.line) = save;
        c
    }
    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$'
}
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// Reads a quoted literal whose opening quote has already been consumed.
fn quoted(cur: &mut Cursor, quote: u8) -> String {
    let mut out = Vec::new();
    while let Some(c) = cur.peek() {
        if c == b'\n' {
            break; // unterminated: stop at end of line
        }
        cur.bump();
        if c == quote {
            break;
        }
        out.push(c);
        if c == b'\\'
            && let Some(e) = cur.bump()
        {
            out.push(e);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Tokenizes C source.
pub fn lex(src: &str) -> Lexed {
    let mut cur = Cursor { s: src.as_bytes(), pos: 0, line: 1 };
    let mut out = Lexed::default();
    let mut directive: Option<Directive> = None;
    let mut at_line_start = true;
    let mut spaced = true;

    while let Some(c) = cur.peek() {
        let line = cur.line;
        // Whitespace and newlines.
        if c == b'\n' {
            cur.bump();
            if let Some(d) = directive.take() {
                out.directives.push(d);
            }
            at_line_start = true;
            spaced = true;
            continue;
        }
        if c.is_ascii_whitespace() {
            cur.bump();
            spaced = true;
            continue;
        }
        // Comments.
        if c == b'/' && cur.peek2() == Some(b'/') {
            while let Some(c) = cur.peek() {
                if c == b'\n' {
                    break;
                }
                cur.bump();
            }
            spaced = true;
            continue;
        }
        if c == b'/' && cur.peek2() == Some(b'*') {
            cur.bump();
            cur.bump();
            while let Some(c) = cur.bump() {
                if c == b'*' && cur.peek() == Some(b'/') {
                    cur.bump();
                    break;
                }
            }
            spaced = true;
            continue;
        }
        // Start of a directive.
        if c == b'#' && at_line_start && directive.is_none() {
            cur.bump();
            directive = Some(Directive { line, tokens: Vec::new() });
            at_line_start = false;
            spaced = true;
            continue;
        }
        at_line_start = false;

        let kind = if is_ident_start(c) {
            let mut id = Vec::new();
            while let Some(c) = cur.peek() {
                if !is_ident_char(c) {
                    break;
                }
                id.push(c);
                cur.bump();
            }
            let id = String::from_utf8_lossy(&id).into_owned();
            // String/char literal prefixes: L"", u"", U"", u8"".
            match (id.as_str(), cur.peek()) {
                ("L" | "u" | "U" | "u8", Some(b'"')) => {
                    cur.bump();
                    Kind::Str(quoted(&mut cur, b'"'))
                }
                ("L" | "u" | "U" | "u8", Some(b'\'')) => {
                    cur.bump();
                    Kind::Char(quoted(&mut cur, b'\''))
                }
                _ => Kind::Ident(id),
            }
        } else if c == b'"' {
            cur.bump();
            Kind::Str(quoted(&mut cur, b'"'))
        } else if c == b'\'' {
            cur.bump();
            Kind::Char(quoted(&mut cur, b'\''))
        } else if c.is_ascii_digit() || (c == b'.' && cur.peek2().is_some_and(|d| d.is_ascii_digit())) {
            let mut n = Vec::new();
            while let Some(c) = cur.peek() {
                let exp_sign = (c == b'+' || c == b'-')
                    && matches!(n.last(), Some(b'e' | b'E' | b'p' | b'P'))
                    && !n.starts_with(b"0x")
                    && !n.starts_with(b"0X");
                if !(is_ident_char(c) || c == b'.' || exp_sign) {
                    break;
                }
                n.push(c);
                cur.bump();
            }
            Kind::Number(String::from_utf8_lossy(&n).into_owned())
        } else {
            cur.bump();
            Kind::Punct(c as char)
        };
        let tok = Token { kind, line, spaced };
        spaced = false;
        match directive.as_mut() {
            Some(d) => d.tokens.push(tok),
            None => out.tokens.push(tok),
        }
    }
    if let Some(d) = directive.take() {
        out.directives.push(d);
    }
    out
}

/// Splits the argument list that starts at `open` (which must be a `(`
/// token). Returns the argument token slices and the index just past the
/// closing parenthesis, or `None` if the parentheses are unbalanced.
pub fn split_args(toks: &[Token], open: usize) -> Option<(Vec<&[Token]>, usize)> {
    if !toks.get(open)?.is_punct('(') {
        return None;
    }
    let mut depth = 0usize;
    let mut start = open + 1;
    let mut args = Vec::new();
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    if i > start || !args.is_empty() {
                        args.push(&toks[start..i]);
                    }
                    return Some((args, i + 1));
                }
            }
            Kind::Punct(',') if depth == 1 => {
                args.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// Renders tokens back to compact C text (for reporting expressions).
pub fn render(toks: &[Token]) -> String {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 && t.spaced {
            s.push(' ');
        }
        match &t.kind {
            Kind::Ident(x) | Kind::Number(x) => s.push_str(x),
            Kind::Str(x) => {
                s.push('"');
                s.push_str(x);
                s.push('"');
            }
            Kind::Char(x) => {
                s.push('\'');
                s.push_str(x);
                s.push('\'');
            }
            Kind::Punct(c) => s.push(*c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind> {
        lex(src).tokens.into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn strings_keep_escapes() {
        assert_eq!(kinds(r#""a\n\"b""#), vec![Kind::Str(r#"a\n\"b"#.into())]);
    }

    #[test]
    fn comments_and_lines() {
        let l = lex("/* x\n y */ a // c \"q\"\n b");
        let got: Vec<_> = l.tokens.iter().map(|t| (t.kind.clone(), t.line)).collect();
        assert_eq!(got, vec![(Kind::Ident("a".into()), 2), (Kind::Ident("b".into()), 3)]);
    }

    #[test]
    fn directives_are_separate_and_continued() {
        let l = lex("#define X \\\n \"v\"\nint y;\n  # if A\n");
        assert_eq!(l.directives.len(), 2);
        assert_eq!(l.directives[0].tokens[2].kind, Kind::Str("v".into()));
        assert_eq!(l.tokens[0].line, 3);
        assert_eq!(l.directives[1].line, 4);
    }

    #[test]
    fn char_literal_with_quote() {
        assert_eq!(kinds(r#"'"' x"#), vec![Kind::Char("\"".into()), Kind::Ident("x".into())]);
    }

    #[test]
    fn split_nested_args() {
        let l = lex("f(a, g(b, c), \"x,y\")");
        let (args, end) = split_args(&l.tokens, 1).unwrap();
        assert_eq!(args.len(), 3);
        assert_eq!(render(args[1]), "g(b, c)");
        assert_eq!(end, l.tokens.len());
    }
}
