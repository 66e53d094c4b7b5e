//! A fast, hand-written scanner for the top-level items of a Rust source file.
//!
//! This produces the same [`Tree`] as the `syn`-based reference parser for
//! every file that `syn` accepts, but it never builds a syntax tree. It works
//! in two layers:
//!
//! * A byte-level **lexer** turns the source into a stream of coarse tokens:
//!   identifiers (including raw identifiers and keywords), lifetimes,
//!   literals, single punctuation bytes (plus `->`, `=>` and `::`), opening
//!   and closing delimiters, and comments. It knows enough of Rust's lexical
//!   grammar to never mistake the inside of a string, character literal or
//!   comment for code: escapes, raw strings with any number of `#`, byte and
//!   C strings, nested block comments, and the char-literal-versus-lifetime
//!   ambiguity of `'`. Whitespace handling and the classification of doc
//!   comments follow `proc-macro2`, so spans line up byte for byte.
//!
//! * A small **item recognizer** looks at the first few tokens of each item
//!   (attributes, visibility, qualifiers and the introducing keyword) to decide
//!   its kind and name, and then skips forward to where the item ends: the
//!   closing `}` of its body or the `;` at the item's own nesting level.
//!   Bracketed groups are skipped wholesale with a delimiter stack, so function
//!   bodies cost little more than lexing. In signatures and headers it also
//!   counts angle brackets (ignoring `->` and `=>`) so that a const-generic
//!   block such as `Foo<{ N }>` is not mistaken for a body.
//!
//! The bodies of `impl` blocks, traits and inline modules are scanned the same
//! way, one level down, to produce their children. Labels copy the reference:
//! `fn name`, `impl Trait for Type` (whitespace-collapsed source text of the
//! trait path and self type), `path! name` for macro invocations, and `item`
//! for the constructs that `syn` keeps as unparsed verbatim tokens (for
//! example a free `fn f();`, `impl const Trait`, or `macro` 2.0 definitions).
//!
//! Errors are reported for unterminated literals and comments, unbalanced or
//! mismatched delimiters, and token sequences that cannot start an item. The
//! scanner does not validate the insides of items, so some files that `syn`
//! rejects are accepted here.

/// One item (or associated item) and where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Absolute byte offset just past the item's last token.
    pub end: usize,
    /// Short description such as `fn main` or `impl Display for Foo`.
    pub label: String,
    /// Items of an `impl`, trait or inline module body.
    pub children: Vec<Node>,
}

/// The items of a file plus its leading module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// End of the module docs / inner attributes, where items start.
    pub start: usize,
    /// Byte range of the module docs and inner attributes, if any.
    pub docs: Option<(usize, usize)>,
    /// Top-level items in source order.
    pub items: Vec<Node>,
}

/// Scans `src` and returns its items, or a message saying where it failed.
pub fn parse_tree(src: &str) -> Result<Tree, String> {
    let bytes = src.as_bytes();
    let mut base = 0;
    if bytes.starts_with("\u{feff}".as_bytes()) {
        base = 3;
    }
    let content = &src[base..];
    if content.starts_with("#!") && !content[2..].trim_start().starts_with('[') {
        base += content.find('\n').unwrap_or(content.len());
    }
    let mut parser = Parser {
        src,
        lx: Lexer {
            s: bytes,
            pos: base,
        },
        tok: Tok::EOF,
        prev_end: base,
        stack: Vec::new(),
    };
    parser.file().map_err(|fail| {
        let pos = floor_boundary(src, fail.pos.min(src.len()));
        let before = &src[..pos];
        let line = 1 + before.bytes().filter(|&b| b == b'\n').count();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = 1 + src[line_start..pos].chars().count();
        format!(
            "Rust did not parse at line {line}, column {column}: {}",
            fail.msg
        )
    })
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A scan failure: byte position and a short reason.
#[derive(Debug)]
struct Fail {
    pos: usize,
    msg: &'static str,
}

fn fail<T>(pos: usize, msg: &'static str) -> Result<T, Fail> {
    Err(Fail { pos, msg })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ident,
    Lifetime,
    Literal,
    Punct,
    Open,
    Close,
    Comment,
    Eof,
}

/// Punctuation code for `->`.
const ARROW: u8 = b'A';
/// Punctuation code for `=>`.
const FAT_ARROW: u8 = b'F';
/// Punctuation code for `::`.
const PATH_SEP: u8 = b'C';
/// Comment code for `//!` and `/*! */`.
const INNER_DOC: u8 = b'!';
/// Comment code for `///` and `/** */`.
const OUTER_DOC: u8 = b'/';
/// Literal code for string-like literals.
const STR: u8 = b'"';

/// A token: its kind, a detail byte, and its byte range.
///
/// The detail byte is the punctuation or delimiter character, one of the
/// codes above, or the opening byte of a literal.
#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    ch: u8,
    start: usize,
    end: usize,
}

impl Tok {
    const EOF: Tok = Tok {
        kind: Kind::Eof,
        ch: 0,
        start: 0,
        end: 0,
    };

    fn is(&self, kind: Kind, ch: u8) -> bool {
        self.kind == kind && self.ch == ch
    }

    fn punct(&self, ch: u8) -> bool {
        self.is(Kind::Punct, ch)
    }
}

/// Byte-level tokenizer. Cloning it is a cheap way to look ahead.
#[derive(Clone)]
struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

/// Decodes the char starting at `i` (which must be a char boundary).
fn decode(s: &[u8], i: usize) -> (char, usize) {
    let b = s[i];
    let len = if b < 0x80 {
        1
    } else if b < 0xe0 {
        2
    } else if b < 0xf0 {
        3
    } else {
        4
    };
    let end = (i + len).min(s.len());
    match std::str::from_utf8(&s[i..end]) {
        Ok(t) => (t.chars().next().unwrap_or('\u{fffd}'), end - i),
        Err(_) => ('\u{fffd}', 1),
    }
}

fn is_ws_char(c: char) -> bool {
    c.is_whitespace() || c == '\u{200e}' || c == '\u{200f}'
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Lexer<'_> {
    /// The next token that is not a comment.
    #[inline]
    fn next(&mut self) -> Result<Tok, Fail> {
        loop {
            let t = self.raw()?;
            if t.kind != Kind::Comment {
                return Ok(t);
            }
        }
    }

    /// End of an identifier starting at `i`; stops at ASCII punctuation,
    /// whitespace, and Unicode whitespace.
    fn ident_end(&self, mut i: usize) -> usize {
        let s = self.s;
        while i < s.len() {
            let b = s[i];
            if is_ident_byte(b) {
                i += 1;
            } else if b >= 0x80 {
                let (c, len) = decode(s, i);
                if is_ws_char(c) {
                    break;
                }
                i += len;
            } else {
                break;
            }
        }
        i
    }

    /// The next token, including comments.
    fn raw(&mut self) -> Result<Tok, Fail> {
        let s = self.s;
        let mut i = self.pos;
        while i < s.len() {
            let b = s[i];
            if b == b' ' || (0x09..=0x0d).contains(&b) {
                i += 1;
            } else if b >= 0x80 {
                let (c, len) = decode(s, i);
                if !is_ws_char(c) {
                    break;
                }
                i += len;
            } else {
                break;
            }
        }
        let start = i;
        if i >= s.len() {
            self.pos = i;
            return Ok(Tok {
                kind: Kind::Eof,
                ch: 0,
                start: i,
                end: i,
            });
        }
        let b = s[i];
        let at = |k: usize| s.get(k).copied().unwrap_or(0);
        let (kind, ch, end) = match b {
            b'/' if at(i + 1) == b'/' => {
                let ch = match (at(i + 2), at(i + 3)) {
                    (b'!', _) => INNER_DOC,
                    (b'/', c) if c != b'/' => OUTER_DOC,
                    _ => b' ',
                };
                let end = s[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(s.len(), |k| i + k);
                (Kind::Comment, ch, end)
            }
            b'/' if at(i + 1) == b'*' => {
                let ch = if s[i..].starts_with(b"/**/") {
                    b' '
                } else if at(i + 2) == b'!' {
                    INNER_DOC
                } else if at(i + 2) == b'*' && at(i + 3) != b'*' {
                    OUTER_DOC
                } else {
                    b' '
                };
                match block_comment_end(s, i) {
                    Some(end) => (Kind::Comment, ch, end),
                    None => return fail(i, "unterminated block comment"),
                }
            }
            b'"' => (Kind::Literal, STR, self.string_end(i + 1)?),
            b'\'' => return self.quote(i),
            b'r' | b'b' | b'c' => {
                // Possible prefixes: r" r# b" b' br" br# c" cr" cr#.
                let mut j = i + 1;
                if b != b'r' && at(j) == b'r' {
                    j += 1;
                }
                let raw = j > i + 1 || b == b'r';
                match at(j) {
                    b'"' if !raw => (Kind::Literal, STR, self.string_end(j + 1)?),
                    b'\'' if b == b'b' && j == i + 1 => {
                        let t = self.quote(j)?;
                        if t.kind != Kind::Literal {
                            return fail(i, "invalid byte literal");
                        }
                        (Kind::Literal, b'\'', t.end)
                    }
                    b'"' | b'#' if raw => match raw_string_end(s, j) {
                        Some(end) => (Kind::Literal, STR, end),
                        None if at(j) == b'"' => return fail(i, "unterminated raw string"),
                        None if b == b'r'
                            && j == i + 1
                            && (is_ident_byte(at(j + 1)) || at(j + 1) >= 0x80)
                            && !at(j + 1).is_ascii_digit() =>
                        {
                            // Raw identifier `r#name`.
                            (Kind::Ident, 0, self.ident_end(j + 1))
                        }
                        None => return fail(i, "invalid raw string"),
                    },
                    _ => (Kind::Ident, 0, self.ident_end(i + 1)),
                }
            }
            b'(' | b'[' | b'{' => (Kind::Open, b, i + 1),
            b')' | b']' | b'}' => (Kind::Close, b, i + 1),
            b'-' if at(i + 1) == b'>' => (Kind::Punct, ARROW, i + 2),
            b'=' if at(i + 1) == b'>' => (Kind::Punct, FAT_ARROW, i + 2),
            b':' if at(i + 1) == b':' => (Kind::Punct, PATH_SEP, i + 2),
            b'0'..=b'9' => {
                let mut j = i + 1;
                while j < s.len() {
                    let c = s[j];
                    if is_ident_byte(c) || (c == b'.' && at(j + 1).is_ascii_digit()) {
                        j += 1;
                    } else {
                        break;
                    }
                }
                (Kind::Literal, b'0', j)
            }
            _ if is_ident_byte(b) || b >= 0x80 => (Kind::Ident, 0, self.ident_end(i)),
            _ => (Kind::Punct, b, i + 1),
        };
        self.pos = end;
        Ok(Tok {
            kind,
            ch,
            start,
            end,
        })
    }

    /// End of a quoted string whose body starts at `i`.
    fn string_end(&self, mut i: usize) -> Result<usize, Fail> {
        let s = self.s;
        let start = i;
        while i < s.len() {
            match s[i] {
                b'"' => return Ok(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        fail(start - 1, "unterminated string literal")
    }

    /// A character literal or a lifetime starting with the `'` at `i`.
    fn quote(&mut self, i: usize) -> Result<Tok, Fail> {
        let s = self.s;
        let Some(&next) = s.get(i + 1) else {
            return fail(i, "unexpected end of input after `'`");
        };
        if next == b'\\' {
            // Escaped char: skip the escaped byte, then find the closing quote.
            let mut j = i + 3;
            while j < s.len() && s[j] != b'\'' && s[j] != b'\n' {
                j += 1;
            }
            if s.get(j) != Some(&b'\'') || i + 3 > s.len() {
                return fail(i, "unterminated character literal");
            }
            self.pos = j + 1;
            return Ok(Tok {
                kind: Kind::Literal,
                ch: b'\'',
                start: i,
                end: j + 1,
            });
        }
        let (c, len) = decode(s, i + 1);
        if s.get(i + 1 + len) == Some(&b'\'') && c != '\'' {
            self.pos = i + 2 + len;
            return Ok(Tok {
                kind: Kind::Literal,
                ch: b'\'',
                start: i,
                end: self.pos,
            });
        }
        let mut j = i + 1;
        if next == b'r' && s.get(j + 1) == Some(&b'#') {
            j += 2;
        }
        let b = s.get(j).copied().unwrap_or(0);
        if (is_ident_byte(b) && !b.is_ascii_digit()) || (b >= 0x80 && !is_ws_char(decode(s, j).0)) {
            let end = self.ident_end(j);
            self.pos = end;
            return Ok(Tok {
                kind: Kind::Lifetime,
                ch: 0,
                start: i,
                end,
            });
        }
        fail(i, "invalid character literal")
    }
}

/// End of a (possibly nested) block comment starting at `i`, following
/// `proc-macro2`'s algorithm exactly.
fn block_comment_end(s: &[u8], start: usize) -> Option<usize> {
    let bytes = &s[start..];
    let mut depth = 0usize;
    let mut i = 0;
    let upper = bytes.len().saturating_sub(1);
    while i < upper {
        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            i += 1;
        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(start + i + 2);
            }
            i += 1;
        }
        i += 1;
    }
    None
}

/// End of a raw string whose hashes (or opening quote) start at `i`, or
/// `None` if this is not a terminated raw string.
fn raw_string_end(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while s.get(j) == Some(&b'#') {
        j += 1;
    }
    let hashes = j - i;
    if s.get(j) != Some(&b'"') {
        return None;
    }
    j += 1;
    while j < s.len() {
        if s[j] == b'"'
            && s.len() - (j + 1) >= hashes
            && s[j + 1..j + 1 + hashes].iter().all(|&c| c == b'#')
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    None
}

/// Which kind of body an item appears in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The file or an inline module.
    Module,
    /// An `impl` block.
    Impl,
    /// A trait definition.
    Trait,
}

/// What stopped a header scan.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    Brace,
    Semi,
    Eq,
    For,
    Where,
}

/// Stop on `{`.
const BRACE: u8 = 1;
/// Stop on `;`.
const SEMI: u8 = 2;
/// Stop on `=`.
const EQ: u8 = 4;
/// Stop on `for`.
const FOR: u8 = 8;
/// Stop on `where`.
const WHERE: u8 = 16;

/// Item recognizer over the token stream, one token of lookahead.
struct Parser<'a> {
    src: &'a str,
    lx: Lexer<'a>,
    /// The current token; the lexer is positioned just after it.
    tok: Tok,
    /// End of the last consumed token.
    prev_end: usize,
    /// Delimiter stack reused by group skipping.
    stack: Vec<u8>,
}

fn closer(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

impl<'a> Parser<'a> {
    fn bump(&mut self) -> Result<Tok, Fail> {
        let t = self.tok;
        self.prev_end = t.end;
        self.tok = self.lx.next()?;
        Ok(t)
    }

    /// The token after the current one.
    fn peek(&self) -> Result<Tok, Fail> {
        self.lx.clone().next()
    }

    fn text(&self, t: Tok) -> &'a [u8] {
        &self.src.as_bytes()[t.start..t.end]
    }

    fn kw(&self, kw: &[u8]) -> bool {
        self.tok.kind == Kind::Ident && self.text(self.tok) == kw
    }

    fn tok_is_kw(&self, t: Tok, kw: &[u8]) -> bool {
        t.kind == Kind::Ident && self.text(t) == kw
    }

    fn str_of(&self, start: usize, end: usize) -> &'a str {
        self.src.get(start..end).unwrap_or("")
    }

    /// Skips the group opened by `open`, leaving the lexer just after the
    /// matching closing delimiter, and returns its end.
    fn skip_group_raw(&mut self, open: Tok) -> Result<usize, Fail> {
        self.stack.clear();
        self.stack.push(open.ch);
        loop {
            let t = self.lx.next()?;
            match t.kind {
                Kind::Open => self.stack.push(t.ch),
                Kind::Close => {
                    let o = self.stack.pop().unwrap_or(b'{');
                    if closer(o) != t.ch {
                        return fail(t.start, "mismatched closing delimiter");
                    }
                    if self.stack.is_empty() {
                        return Ok(t.end);
                    }
                }
                Kind::Eof => return fail(open.start, "unclosed delimiter"),
                _ => {}
            }
        }
    }

    /// Skips the group opened by the current token and returns its end.
    fn skip_group(&mut self) -> Result<usize, Fail> {
        let end = self.skip_group_raw(self.tok)?;
        self.prev_end = end;
        self.tok = self.lx.next()?;
        Ok(end)
    }

    /// Consumes qualifier keywords up to and including `kw`.
    fn skip_to_kw(&mut self, kw: &[u8]) -> Result<(), Fail> {
        while !self.kw(kw) {
            if self.tok.kind != Kind::Ident && self.tok.kind != Kind::Literal {
                return fail(self.tok.start, "unexpected token");
            }
            self.bump()?;
        }
        self.bump()?;
        Ok(())
    }

    fn expect_ident(&mut self) -> Result<Tok, Fail> {
        if self.tok.kind != Kind::Ident {
            return fail(self.tok.start, "expected identifier");
        }
        self.bump()
    }

    /// Advances until the current token is one of `stops` at this nesting
    /// level (and, if `angles`, outside angle brackets). Groups are skipped.
    fn scan_to(&mut self, stops: u8, angles: bool) -> Result<Stop, Fail> {
        let mut depth = 0usize;
        loop {
            let t = self.tok;
            let top = !angles || depth == 0;
            match t.kind {
                Kind::Open => {
                    if t.ch == b'{' && top && stops & BRACE != 0 {
                        return Ok(Stop::Brace);
                    }
                    self.skip_group()?;
                    continue;
                }
                Kind::Close | Kind::Eof => return fail(t.start, "expected `;` or `{`"),
                Kind::Punct => match t.ch {
                    b';' if stops & SEMI != 0 => return Ok(Stop::Semi),
                    b'=' if top && stops & EQ != 0 => return Ok(Stop::Eq),
                    b'<' if angles => depth += 1,
                    b'>' if angles => depth = depth.saturating_sub(1),
                    _ => {}
                },
                Kind::Ident if top && stops & (FOR | WHERE) != 0 => {
                    let w = self.text(t);
                    if w == b"for" && stops & FOR != 0 {
                        return Ok(Stop::For);
                    }
                    if w == b"where" && stops & WHERE != 0 {
                        return Ok(Stop::Where);
                    }
                }
                _ => {}
            }
            self.bump()?;
        }
    }

    /// Skips a `<...>` generic parameter list starting at the current `<`.
    fn skip_angles(&mut self) -> Result<(), Fail> {
        let mut depth = 0usize;
        loop {
            let t = self.tok;
            match t.kind {
                Kind::Open => {
                    self.skip_group()?;
                    continue;
                }
                Kind::Close | Kind::Eof => return fail(t.start, "unclosed `<`"),
                Kind::Punct if t.ch == b'<' => depth += 1,
                Kind::Punct if t.ch == b'>' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.bump()?;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.bump()?;
        }
    }

    /// Scans to the end of an item that ends at `{...}` or `;`, returning
    /// the end offset and whether it had a body.
    fn finish_braced_or_semi(&mut self, angles: bool) -> Result<(usize, bool), Fail> {
        match self.scan_to(BRACE | SEMI, angles)? {
            Stop::Brace => Ok((self.skip_group()?, true)),
            _ => Ok((self.bump()?.end, false)),
        }
    }

    /// Scans to and consumes the `;` ending the item.
    fn finish_semi(&mut self) -> Result<usize, Fail> {
        self.scan_to(SEMI, false)?;
        Ok(self.bump()?.end)
    }

    /// Parses the whole file: leading inner attributes, then items.
    fn file(&mut self) -> Result<Tree, Fail> {
        let mut docs_end = None;
        loop {
            let save = self.lx.pos;
            let t = self.lx.raw()?;
            match t.kind {
                Kind::Comment if t.ch == INNER_DOC => docs_end = Some(t.end),
                Kind::Comment if t.ch != OUTER_DOC => {}
                Kind::Punct if t.ch == b'#' => {
                    let mut ahead = self.lx.clone();
                    let bang = ahead.next()?;
                    let open = ahead.next()?;
                    if bang.punct(b'!') && open.is(Kind::Open, b'[') {
                        self.lx = ahead;
                        docs_end = Some(self.skip_group_raw(open)?);
                    } else {
                        self.lx.pos = save;
                        break;
                    }
                }
                _ => {
                    self.lx.pos = save;
                    break;
                }
            }
        }
        self.tok = self.lx.next()?;
        let mut items = Vec::new();
        loop {
            match self.tok.kind {
                Kind::Eof => break,
                Kind::Close => return fail(self.tok.start, "unexpected closing delimiter"),
                _ => items.push(self.item(Ctx::Module)?),
            }
        }
        Ok(Tree {
            start: docs_end.unwrap_or(0),
            docs: docs_end.map(|e| (0, e)),
            items,
        })
    }

    /// Parses a `{ ... }` body of items, returning them and the body's end.
    fn body(&mut self, ctx: Ctx) -> Result<(Vec<Node>, usize), Fail> {
        if !self.tok.is(Kind::Open, b'{') {
            return fail(self.tok.start, "expected `{`");
        }
        let open = self.bump()?;
        let mut items = Vec::new();
        loop {
            match self.tok.kind {
                Kind::Close if self.tok.ch == b'}' => return Ok((items, self.bump()?.end)),
                Kind::Close => return fail(self.tok.start, "mismatched closing delimiter"),
                Kind::Eof => return fail(open.start, "unclosed delimiter"),
                Kind::Punct if self.tok.ch == b'#' && self.peek()?.punct(b'!') => {
                    self.bump()?;
                    self.bump()?;
                    if !self.tok.is(Kind::Open, b'[') {
                        return fail(self.tok.start, "expected `[`");
                    }
                    self.skip_group()?;
                }
                _ => items.push(self.item(ctx)?),
            }
        }
    }

    /// Whether the tokens from here form a function signature prefix:
    /// `const? async? unsafe? (extern "abi"?)? fn`.
    fn peek_signature(&self) -> Result<bool, Fail> {
        let mut lx = self.lx.clone();
        let mut t = self.tok;
        for kw in [&b"const"[..], b"async", b"unsafe"] {
            if self.tok_is_kw(t, kw) {
                t = lx.next()?;
            }
        }
        if self.tok_is_kw(t, b"extern") {
            t = lx.next()?;
            if t.is(Kind::Literal, STR) {
                t = lx.next()?;
            }
        }
        Ok(self.tok_is_kw(t, b"fn"))
    }

    /// Parses one item (with its attributes) in the given context.
    fn item(&mut self, ctx: Ctx) -> Result<Node, Fail> {
        while self.tok.punct(b'#') {
            self.bump()?;
            if self.tok.punct(b'!') {
                self.bump()?;
            }
            if !self.tok.is(Kind::Open, b'[') {
                return fail(self.tok.start, "expected `[`");
            }
            self.skip_group()?;
        }
        let mut vis = false;
        if self.kw(b"pub") {
            self.bump()?;
            vis = true;
            if self.tok.is(Kind::Open, b'(') {
                let next = self.peek()?;
                if [&b"crate"[..], b"self", b"super", b"in"]
                    .iter()
                    .any(|k| self.tok_is_kw(next, k))
                {
                    self.skip_group()?;
                }
            }
        }
        let mut default = false;
        if ctx != Ctx::Module && self.kw(b"default") && !self.peek()?.punct(b'!') {
            self.bump()?;
            default = true;
        }
        // Trait items with a visibility or `default` are kept verbatim by syn.
        let verbatim_trait = ctx == Ctx::Trait && (vis || default);

        if self.kw(b"fn") || self.peek_signature()? {
            self.skip_to_kw(b"fn")?;
            let name = self.expect_ident()?;
            let (end, body) = self.finish_braced_or_semi(true)?;
            let label = if verbatim_trait || (!body && ctx != Ctx::Trait) {
                "item".to_string()
            } else {
                self.labeled("fn ", name)
            };
            return Ok(leaf(end, label));
        }
        if ctx == Ctx::Module && self.kw(b"const") {
            // syn 3 keeps `const trait`, `const unsafe impl` and the like as
            // verbatim tokens.
            let next = self.peek()?;
            if ["trait", "auto", "unsafe", "impl"]
                .iter()
                .any(|k| self.tok_is_kw(next, k.as_bytes()))
            {
                self.bump()?;
                let node = if self.kw(b"impl")
                    || (self.kw(b"unsafe") && self.tok_is_kw(self.peek()?, b"impl"))
                {
                    self.impl_item(true)?
                } else {
                    self.trait_item()?
                };
                return Ok(leaf(node.end, "item".to_string()));
            }
        }
        if self.kw(b"const") {
            self.bump()?;
            let name = self.bump()?;
            if name.kind != Kind::Ident && !name.punct(b'_') {
                return fail(name.start, "expected identifier");
            }
            let generic = self.tok.punct(b'<');
            let mut verbatim = generic;
            if generic {
                self.skip_angles()?;
            }
            let stop = self.scan_to(SEMI | EQ | WHERE, true)?;
            let mut has_value = false;
            if stop == Stop::Eq {
                has_value = true;
                self.bump()?;
                if self.scan_to(SEMI | WHERE, false)? == Stop::Where {
                    verbatim = true;
                }
            } else if stop == Stop::Where {
                verbatim = true;
            }
            let end = self.finish_semi()?;
            let label = if verbatim_trait || verbatim || (!has_value && ctx != Ctx::Trait) {
                "item".to_string()
            } else {
                self.labeled("const ", name)
            };
            return Ok(leaf(end, label));
        }
        if self.kw(b"type") {
            self.bump()?;
            let name = self.expect_ident()?;
            if self.tok.punct(b'<') {
                self.skip_angles()?;
            }
            let colon = self.tok.punct(b':');
            let stop = self.scan_to(SEMI | EQ, true)?;
            let end = self.finish_semi()?;
            let label = if verbatim_trait || (ctx != Ctx::Trait && (colon || stop != Stop::Eq)) {
                "item".to_string()
            } else {
                self.labeled("type ", name)
            };
            return Ok(leaf(end, label));
        }
        if ctx != Ctx::Module {
            if vis || default {
                return fail(self.tok.start, "expected associated item");
            }
            let (label, end) = self.macro_call(false)?;
            return Ok(leaf(end, label));
        }
        self.module_item(vis)
    }

    /// Parses an item that can only appear in a module.
    fn module_item(&mut self, vis: bool) -> Result<Node, Fail> {
        let t = self.tok;
        let word = if t.kind == Kind::Ident {
            self.text(t)
        } else {
            &b""[..]
        };
        let next = self.peek()?;
        let next_word = if next.kind == Kind::Ident {
            self.text(next)
        } else {
            &b""[..]
        };
        match word {
            b"extern" if next_word == b"crate" => {
                self.bump()?;
                self.bump()?;
                let name = self.expect_ident()?;
                let end = self.finish_semi()?;
                Ok(leaf(end, self.labeled("extern crate ", name)))
            }
            b"extern" => self.foreign_mod(),
            b"unsafe" => match next_word {
                b"trait" | b"auto" => self.trait_item(),
                b"impl" => self.impl_item(vis),
                b"extern" => {
                    self.bump()?;
                    self.foreign_mod()
                }
                b"mod" => {
                    self.bump()?;
                    self.mod_item()
                }
                _ => fail(next.start, "expected item after `unsafe`"),
            },
            b"use" => {
                self.bump()?;
                // syn keeps `use { ::a, b };` (a group with a crate-root path)
                // as verbatim tokens.
                let label = if self.tok.is(Kind::Open, b'{') && self.group_has_crate_root()? {
                    "item"
                } else {
                    "use"
                };
                Ok(leaf(self.finish_semi()?, label.to_string()))
            }
            b"static" => {
                self.bump()?;
                if self.kw(b"mut") {
                    self.bump()?;
                }
                let name = self.expect_ident()?;
                let typed = self.tok.punct(b':');
                let has_value = typed && self.scan_to(SEMI | EQ, true)? == Stop::Eq;
                let end = self.finish_semi()?;
                let label = if has_value {
                    self.labeled("static ", name)
                } else {
                    "item".to_string()
                };
                Ok(leaf(end, label))
            }
            b"mod" => self.mod_item(),
            b"struct" | b"enum" => self.simple(word),
            b"union" if next.kind == Kind::Ident => self.simple(word),
            b"trait" => self.trait_item(),
            b"auto" if next_word == b"trait" => self.trait_item(),
            b"impl" if next.is(Kind::Open, b'(') => {
                // syn 3 keeps `impl(crate) trait T {}` as verbatim tokens.
                self.bump()?;
                self.skip_group()?;
                let node = self.trait_item()?;
                Ok(leaf(node.end, "item".to_string()))
            }
            b"impl" => self.impl_item(vis),
            b"default" if !next.punct(b'!') => self.impl_item(vis),
            b"macro" => {
                self.bump()?;
                self.expect_ident()?;
                if self.tok.is(Kind::Open, b'(') {
                    self.skip_group()?;
                }
                if !self.tok.is(Kind::Open, b'{') {
                    return fail(self.tok.start, "expected `{`");
                }
                Ok(leaf(self.skip_group()?, "item".to_string()))
            }
            _ if !vis => {
                let (label, end) = self.macro_call(true)?;
                Ok(leaf(end, label))
            }
            _ => fail(t.start, "expected item"),
        }
    }

    /// Whether the `{` group at the current token has an element starting
    /// with `::` at its top level. Does not consume anything.
    fn group_has_crate_root(&self) -> Result<bool, Fail> {
        let mut lx = self.lx.clone();
        let mut depth = 1usize;
        let mut at_start = true;
        loop {
            let t = lx.next()?;
            match t.kind {
                Kind::Open => depth += 1,
                Kind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(false);
                    }
                }
                Kind::Eof => return Ok(false),
                _ => {}
            }
            if depth == 1 && at_start && t.punct(PATH_SEP) {
                return Ok(true);
            }
            at_start = depth == 1 && t.punct(b',');
        }
    }

    /// `struct`, `enum` or `union`: keyword, name, then a body or `;`.
    fn simple(&mut self, word: &[u8]) -> Result<Node, Fail> {
        self.bump()?;
        let name = self.expect_ident()?;
        let (end, _) = self.finish_braced_or_semi(true)?;
        let mut label = String::from_utf8_lossy(word).into_owned();
        label.push(' ');
        label.push_str(self.str_of(name.start, name.end));
        Ok(leaf(end, label))
    }

    fn labeled(&self, prefix: &str, name: Tok) -> String {
        let text = self.str_of(name.start, name.end);
        let mut label = String::with_capacity(prefix.len() + text.len());
        label.push_str(prefix);
        label.push_str(text);
        label
    }

    /// `mod name;` or `mod name { items }`.
    fn mod_item(&mut self) -> Result<Node, Fail> {
        self.bump()?;
        let name = self.expect_ident()?;
        let label = self.labeled("mod ", name);
        if self.tok.punct(b';') {
            return Ok(leaf(self.bump()?.end, label));
        }
        let (children, end) = self.body(Ctx::Module)?;
        Ok(Node {
            end,
            label,
            children,
        })
    }

    /// `extern "abi" { ... }` (the current token is `extern`).
    fn foreign_mod(&mut self) -> Result<Node, Fail> {
        self.bump()?;
        let mut label = String::from("extern");
        if self.tok.is(Kind::Literal, STR) {
            let abi = self.bump()?;
            let text = self.str_of(abi.start, abi.end);
            let inner = text
                .trim_start_matches(|c| c != '"')
                .trim_start_matches('"');
            let inner = inner.trim_end_matches('#').trim_end_matches('"');
            if !inner.is_empty() {
                label.push(' ');
                label.push_str(inner);
            }
            label.truncate(label.trim_end().len());
        }
        if !self.tok.is(Kind::Open, b'{') {
            return fail(self.tok.start, "expected `{`");
        }
        Ok(leaf(self.skip_group()?, label))
    }

    /// A trait or trait alias, with its associated items as children.
    fn trait_item(&mut self) -> Result<Node, Fail> {
        self.skip_to_kw(b"trait")?;
        let name = self.expect_ident()?;
        let label = self.labeled("trait ", name);
        match self.scan_to(BRACE | SEMI | EQ, true)? {
            Stop::Brace => {
                let (children, end) = self.body(Ctx::Trait)?;
                Ok(Node {
                    end,
                    label,
                    children,
                })
            }
            _ => Ok(leaf(self.finish_semi()?, label)),
        }
    }

    /// Whether the `<` after `impl` starts generics rather than a qualified
    /// path, following syn's heuristic.
    fn impl_generics_ahead(&self) -> Result<bool, Fail> {
        let mut lx = self.lx.clone();
        let t2 = lx.next()?;
        if t2.punct(b'>') || t2.punct(b'#') || self.tok_is_kw(t2, b"const") {
            return Ok(true);
        }
        if t2.kind == Kind::Lifetime || t2.kind == Kind::Ident {
            let t3 = lx.next()?;
            return Ok(t3.punct(b'>') || t3.punct(b',') || t3.punct(b':') || t3.punct(b'='));
        }
        Ok(false)
    }

    /// An `impl` block; the label is built from the source text of the
    /// trait path and self type.
    fn impl_item(&mut self, vis: bool) -> Result<Node, Fail> {
        self.skip_to_kw(b"impl")?;
        if self.tok.punct(b'<') && self.impl_generics_ahead()? {
            self.skip_angles()?;
        }
        let mut verbatim = vis;
        if self.kw(b"const") {
            self.bump()?;
            verbatim = true;
        } else if self.tok.punct(b'?') && self.tok_is_kw(self.peek()?, b"const") {
            self.bump()?;
            self.bump()?;
            verbatim = true;
        }
        let negative = self.tok.punct(b'!') && !self.peek()?.is(Kind::Open, b'{');
        if negative {
            self.bump()?;
        }
        let first = self.tok;
        let is_path = first.punct(PATH_SEP)
            || (first.kind == Kind::Ident
                && ![&b"dyn"[..], b"impl", b"fn", b"unsafe", b"extern", b"for"]
                    .iter()
                    .any(|k| self.tok_is_kw(first, k)));
        let mut stop = self.scan_to(BRACE | FOR | WHERE, true)?;
        let first_end = self.prev_end;
        let mut label = String::from("impl ");
        if stop == Stop::For {
            self.bump()?;
            let self_start = self.tok.start;
            stop = self.scan_to(BRACE | WHERE, true)?;
            if !is_path {
                verbatim = true;
            }
            if negative {
                label.push('!');
            }
            push_collapsed(&mut label, self.str_of(first.start, first_end));
            label.push_str(" for ");
            push_collapsed(&mut label, self.str_of(self_start, self.prev_end));
        } else {
            push_collapsed(&mut label, self.str_of(first.start, first_end));
        }
        if stop == Stop::Where {
            self.scan_to(BRACE, true)?;
        }
        let (children, end) = self.body(Ctx::Impl)?;
        if verbatim {
            return Ok(leaf(end, "item".to_string()));
        }
        Ok(Node {
            end,
            label,
            children,
        })
    }

    /// A macro invocation `path! name? (...)` with its `;` when the
    /// delimiter is not a brace. Returns the label and end.
    fn macro_call(&mut self, allow_ident: bool) -> Result<(String, usize), Fail> {
        let start = self.tok.start;
        if self.tok.punct(PATH_SEP) {
            self.bump()?;
        }
        self.expect_ident()?;
        while self.tok.punct(PATH_SEP) {
            self.bump()?;
            self.expect_ident()?;
        }
        let path_end = self.prev_end;
        if !self.tok.punct(b'!') {
            return fail(self.tok.start, "expected item");
        }
        self.bump()?;
        let mut label = String::new();
        push_collapsed(&mut label, self.str_of(start, path_end));
        label.push('!');
        if allow_ident && self.tok.kind == Kind::Ident {
            let name = self.bump()?;
            label.push(' ');
            label.push_str(self.str_of(name.start, name.end));
        }
        if self.tok.kind != Kind::Open {
            return fail(self.tok.start, "expected delimiter");
        }
        let brace = self.tok.ch == b'{';
        let mut end = self.skip_group()?;
        if !brace {
            if !self.tok.punct(b';') {
                return fail(self.tok.start, "expected `;`");
            }
            end = self.bump()?.end;
        }
        Ok((label, end))
    }
}

fn leaf(end: usize, label: String) -> Node {
    Node {
        end,
        label,
        children: Vec::new(),
    }
}

/// Appends `s` with runs of whitespace collapsed to single spaces.
fn push_collapsed(out: &mut String, s: &str) {
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Tricky inputs with the reference parser's output, rendered compactly.
/// `crate::tests` checks that the reference still produces these strings.
#[cfg(test)]
pub(crate) const TRICKY: &[(&str, &str, &str)] = &[
    (
        "comments",
        "// fn x() {\n/* { /* } */ */ fn a() {}\n/// }\nfn b() {} // }\n/** } */ struct S;\n/***/ /**/ fn c() {}\n",
        "start=0 docs=None | fn a@37; fn b@53; struct S@77; fn c@98;",
    ),
    (
        "strings",
        "fn a() { let s = \"}\\\"{\\\\\"; let b = b\"}\"; let c = c\"{\"; }\nconst R: &str = r\"}\";\nconst H: &str = r#\"}\" \"#;\nconst B: &[u8] = br##\"}\"#\"##;\nconst C: &core::ffi::CStr = cr#\"{\"#;\nfn z() {}\n",
        "start=0 docs=None | fn a@56; const R@78; const H@104; const B@134; const C@171; fn z@181;",
    ),
    (
        "chars_lifetimes",
        "fn a<'a>(x: &'a str) -> char { '}' }\nfn b() -> char { '\\n' }\nfn c() -> char { '\\u{1F600}' }\nfn d() -> u8 { b'}' }\nfn e() -> &'static str { let _ = '{'; let _ = '\\''; let _ = '\\\\'; \"\" }\nfn f<'r#a>() {}\nfn g() -> char { 'é' }\n",
        "start=0 docs=None | fn a@36; fn b@60; fn c@91; fn d@113; fn e@184; fn f@200; fn g@224;",
    ),
    (
        "semis",
        "struct S(u32);\nstruct T<const N: usize>([u8; N]) where [u8; N]: Sized;\nconst X: [u8; 3] = [1, 2, 3];\nstatic Y: Foo = Foo { a: { 1 } };\nconst _: () = ();\nstruct U;\nenum E { A = { 1 }, B }\nunion V { a: u8 }\n",
        "start=0 docs=None | struct S@14; struct T@70; const X@100; static Y@134; const _@152; struct U@162; enum E@186; union V@204;",
    ),
    (
        "trait_items",
        "trait T: Iterator<Item = u8> where Self: Sized {\n    fn f() where Self: Sized;\n    fn g(&self) -> impl Fn() -> u8 { || 1 }\n    const C: u8;\n    const D: u8 = 1;\n    type A: Clone;\n    type B = u8;\n    m!();\n    n! { }\n    async fn h(&self);\n    unsafe fn i();\n    pub fn j();\n}\n",
        "start=0 docs=None | trait T@277{fn f@78;fn g@122;const C@139;const D@160;type A@179;type B@196;m!@206;n!@217;fn h@240;fn i@259;item@275;};",
    ),
    (
        "macros",
        "macro_rules! m { () => {}; }\nm!(x);\nm![y];\nm! { z }\na::b::c!(1);\n::d!{}\ncrate::e!();\nself::f! {}\nfoo! name { }\nmacro_rules! r#type { }\n",
        "start=0 docs=None | macro_rules! m@28; m!@35; m!@42; m!@51; a::b::c!@64; ::d!@71; crate::e!@84; self::f!@96; foo! name@110; macro_rules! r#type@134;",
    ),
    (
        "externs",
        "extern \"C\" { fn f(); static X: u8; }\nextern { }\nextern crate foo;\nextern crate self as bar;\nextern crate foo as baz;\nunsafe extern \"C\" { pub safe fn g(); }\nextern \"C-unwind\" fn h() {}\nextern fn i() {}\npub extern \"system\" fn j() {}\n",
        "start=0 docs=None | extern C@36; extern@47; extern crate foo@65; extern crate self@91; extern crate foo@116; extern C@155; fn h@183; fn i@200; fn j@230;",
    ),
    (
        "uses",
        "use a::{b, c};\npub use x;\npub(crate) use ::y::z;\nuse {::core::x, y};\n",
        "start=0 docs=None | use@14; use@25; use@48; item@68;",
    ),
    (
        "qualifiers",
        "unsafe impl Send for X {}\npub(crate) fn f() {}\npub(super) async fn g() {}\nconst fn h() {}\nunsafe extern \"C\" fn i() {}\npub(in crate::a) struct S;\nconst unsafe fn j() {}\nasync unsafe fn k() {}\npub(self) const async fn l() {}\n",
        "start=0 docs=None | impl Send for X@25; fn f@46; fn g@73; fn h@89; fn i@117; struct S@144; fn j@167; fn k@190; fn l@222;",
    ),
    (
        "impl_labels",
        "impl<T: Clone> From<Vec<T>> for Wrapper<T> where T: Send {\n    fn from(v: Vec<T>) -> Self { todo!() }\n}\nimpl !Send for X {}\nimpl<F: Fn() -> u8> Tr for F {}\nimpl<const N: usize> Foo<{ N }> {}\nimpl  ::a :: b for  Vec< u8 >  {}\nimpl<T> Trait for T where T: for<'a> Fn(&'a u8) {}\nimpl dyn Foo {}\nimpl<'a> dyn Foo + 'a {}\nimpl Foo for (A, B) {}\nimpl<T> Foo for [T; 3] {}\nimpl Foo for fn() -> u8 {}\nimpl<'a, T> Foo for &'a mut T {}\nimpl Fn<(u8,)> for X {}\nimpl <T> :: Thing<T> {}\nimpl<T> Foo /* c */ for /* d */ Bar<T>\nwhere T: Clone\n{}\nimpl <T as Tr>::Assoc {}\n",
        "start=0 docs=None | impl From<Vec<T>> for Wrapper<T>@103{fn from@101;}; impl !Send for X@123; impl Tr for F@155; impl Foo<{ N }>@190; impl ::a :: b for Vec< u8 >@224; impl Trait for T@275; impl dyn Foo@291; impl dyn Foo + 'a@316; impl Foo for (A, B)@339; impl Foo for [T; 3]@365; impl Foo for fn() -> u8@392; impl Foo for &'a mut T@425; impl Fn<(u8,)> for X@449; impl :: Thing<T>@473; impl Foo for Bar<T>@530; impl <T as Tr>::Assoc@555;",
    ),
    (
        "impl_items",
        "impl X {\n    #![allow(x)]\n    /// doc\n    pub fn a(&self) {}\n    pub(crate) const B: u8 = 1;\n    type C = u8;\n    m!();\n    n! {}\n    fn d();\n    type E;\n    const F: u8;\n    default fn g() {}\n    const fn h() {}\n    const _: () = ();\n    unsafe fn i() {}\n}\n",
        "start=0 docs=None | impl X@257{fn a@60;const B@92;type C@109;m!@119;n!@129;item@141;item@153;item@170;fn g@192;fn h@212;const _@234;fn i@255;};",
    ),
    (
        "const_generics",
        "fn f<const N: usize>() -> Foo<{ N + 1 }> { todo!() }\nfn g<T>() where Foo<{ 3 }>: Tr {}\nstruct S<const B: bool = { 1 < 2 }> { }\nfn h() -> Box<dyn Fn(u8) -> Vec<u8>> { todo!() }\n",
        "start=0 docs=None | fn f@52; fn g@86; struct S@126; fn h@175;",
    ),
    (
        "mods",
        "mod a {\n    //! inner\n    #![allow(x)]\n    mod b { fn c() {} }\n    mod d;\n    pub mod e { impl X { fn y() {} } }\n}\nmod f;\nunsafe mod g {}\n",
        "start=0 docs=None | mod a@114{mod b@62{fn c@60;};mod d@73;mod e@112{impl X@110{fn y@108;};};}; mod f@121; mod g@137;",
    ),
    ("bom", "\u{feff}fn a() {}\n", "start=0 docs=None | fn a@12;"),
    (
        "shebang",
        "#!/usr/bin/env run-cargo-script\nfn a() {}\n",
        "start=0 docs=None | fn a@41;",
    ),
    (
        "bom_shebang_docs",
        "\u{feff}#!/bin/x\n//! doc\nfn a() {}\n",
        "start=19 docs=Some((0, 19)) | fn a@29;",
    ),
    (
        "inner_attr_not_shebang",
        "#![allow(x)]\nfn a() {}\n",
        "start=12 docs=Some((0, 12)) | fn a@22;",
    ),
    (
        "docs",
        "// plain\n//! doc é\n#![allow(x)]\n/*! more */\n\n/// outer\nfn a() {}\n",
        "start=44 docs=Some((0, 44)) | fn a@65;",
    ),
    (
        "docs_crlf",
        "//! doc\r\n//! two\r\nfn a() {}\r\n",
        "start=17 docs=Some((0, 17)) | fn a@27;",
    ),
    (
        "verbatim",
        "fn f();\nconst impl Tr for X {}\nconst unsafe impl Tr for X {}\nconst trait T { fn f(); }\nconst unsafe trait U {}\npub impl(crate) trait V {}\nmacro m() {}\nmacro n($x:expr) { }\nstatic X: u8;\nstatic Y = 1;\ntype A: B;\ntype C;\nconst D<T>: u8 = 1;\nconst E: u8;\ndefault impl<T> Foo for T {}\n",
        "start=0 docs=None | item@7; item@30; item@60; item@86; item@110; item@137; item@150; item@171; item@185; item@199; item@210; item@218; item@238; item@251; impl Foo for T@280;",
    ),
    (
        "unions_traits",
        "union U { a: u8 }\nunion!{}\nauto trait A {}\nunsafe auto trait B {}\nunsafe trait C {}\ntrait D = E + F;\ntrait G<T = u8> = H<T> where T: Clone;\n",
        "start=0 docs=None | union U@17; union!@26; trait A@42; trait B@65; trait C@83; trait D@100; trait G@139;",
    ),
    (
        "raw_idents",
        "fn r#type() {}\nstruct r#struct;\nmod r#mod {}\nimpl r#Foo for r#Bar {}\n",
        "start=0 docs=None | fn r#type@14; struct r#struct@31; mod r#mod@44; impl r#Foo for r#Bar@68;",
    ),
    (
        "numbers",
        "const A: f64 = 1.0e-5;\nconst B: (u8, u8) = (1, 2);\nfn c() { let x = (1, 2).0.0; let y = 1..2; let z = 0x1f_u8; }\n",
        "start=0 docs=None | const A@22; const B@50; fn c@112;",
    ),
    (
        "unicode",
        "fn 名前() {}\nstruct Ünïcödé;\nimpl Trait for Ünïcödé {}\nconst S: &str = \"😀 }\";\n",
        "start=0 docs=None | fn 名前@14; struct Ünïcödé@34; impl Trait for Ünïcödé@64; const S@90;",
    ),
    ("err_string", "fn a() { \"unterminated }\n", "ERR"),
    ("err_comment", "fn a() {} /* /* */\n", "ERR"),
    ("err_unbalanced", "fn a() { (]\n", "ERR"),
    ("err_unclosed", "fn a() {\n", "ERR"),
    ("err_extra_close", "fn a() {} }\n", "ERR"),
    ("err_char", "fn a() { ' }\n", "ERR"),
    ("err_raw", "const A: &str = r#\"abc\";\n", "ERR"),
];

/// Renders a scan result compactly: `label@end{children}` per node.
#[cfg(test)]
pub(crate) fn render(t: &Result<Tree, String>) -> String {
    fn node(n: &Node, out: &mut String) {
        out.push_str(&format!("{}@{}", n.label, n.end));
        if !n.children.is_empty() {
            out.push('{');
            for c in &n.children {
                node(c, out);
                out.push(';');
            }
            out.push('}');
        }
    }
    match t {
        Err(_) => "ERR".to_string(),
        Ok(t) => {
            let mut out = format!("start={} docs={:?} |", t.start, t.docs);
            for n in &t.items {
                out.push(' ');
                node(n, &mut out);
                out.push(';');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_cases_match_reference_output() {
        for (name, src, expected) in TRICKY {
            assert_eq!(render(&parse_tree(src)), *expected, "case {name}");
        }
    }

    #[test]
    fn errors_mention_position() {
        let e = parse_tree("fn a() {\n    \"open\n}\n").unwrap_err();
        assert!(
            e.starts_with("Rust did not parse at line 2, column 5: "),
            "{e}"
        );
    }

    #[test]
    fn truncations_never_panic() {
        for (_, src, _) in TRICKY {
            for cut in (0..=src.len()).filter(|&i| src.is_char_boundary(i)) {
                let s = &src[..cut];
                if let Ok(t) = parse_tree(s) {
                    assert!(t
                        .items
                        .iter()
                        .all(|n| n.end <= s.len() && s.is_char_boundary(n.end)));
                }
            }
        }
    }
}

/// The syn-based parser this scanner replaced, kept as the oracle of the differential tests.
#[cfg(test)]
mod reference;

#[cfg(test)]
mod differential {
    use super::*;

    #[test]
    fn tricky_expectations_are_the_reference_output() {
        for (name, src, expected) in TRICKY {
            assert_eq!(
                render(&reference::parse_tree(src)),
                *expected,
                "case {name}"
            );
        }
    }

    /// Every Rust file of this repository (real code: sources, tests, fixtures) scans to
    /// exactly what syn makes of it.
    #[test]
    fn scanner_agrees_with_syn_on_this_repository() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut compared = 0;
        for dir in ["src", "tests", "examples"] {
            for e in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
                if e.path().extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let Ok(src) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                let want = reference::parse_tree(&src);
                if want.is_err() {
                    continue; // a deliberately broken fixture
                }
                assert_eq!(
                    render(&parse_tree(&src)),
                    render(&want),
                    "{}",
                    e.path().display()
                );
                compared += 1;
            }
        }
        assert!(compared >= 30, "only {compared} files compared");
    }
}
