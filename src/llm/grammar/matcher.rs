//! A small GBNF parser and recognizer (test-only), mirroring llama.cpp's syntax rules: one
//! rule per line, literals, char classes, groups, alternation, `* + ? {m} {m,} {m,n}`, and
//! only the escapes llama.cpp accepts. It reads the grammars quarry writes (with structural
//! checks: [`check_structure`]) and those llama.cpp's own converter writes.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(super) enum Node {
    Lit(Vec<char>),
    Class { neg: bool, items: Vec<(char, char)> },
    Ref(String),
    Group(Vec<Vec<Node>>),
    Rep(Box<Node>, usize, Option<usize>),
}

pub(super) struct Gbnf {
    pub(super) rules: BTreeMap<String, Vec<Vec<Node>>>,
}

struct P<'s> {
    s: &'s [char],
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }
    fn hex(&mut self, n: usize) -> Result<char, String> {
        let h: String = self
            .s
            .get(self.i..self.i + n)
            .ok_or("short hex")?
            .iter()
            .collect();
        self.i += n;
        let v = u32::from_str_radix(&h, 16).map_err(|e| e.to_string())?;
        char::from_u32(v).ok_or_else(|| "bad char".to_string())
    }
    fn ch(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.i += 1;
        if c != '\\' {
            return Ok(c);
        }
        let e = self.peek().ok_or("unexpected end")?;
        self.i += 1;
        match e {
            'x' => self.hex(2),
            'u' => self.hex(4),
            'U' => self.hex(8),
            't' => Ok('\t'),
            'r' => Ok('\r'),
            'n' => Ok('\n'),
            '\\' | '"' | '[' | ']' | '-' => Ok(e),
            other => Err(format!("unknown escape \\{other}")),
        }
    }
    fn int(&mut self) -> Result<usize, String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let t: String = self.s[start..self.i].iter().collect();
        t.parse().map_err(|_| format!("expected int at {start}"))
    }
    fn alts(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.seq()?];
        while self.peek() == Some('|') {
            self.i += 1;
            alts.push(self.seq()?);
        }
        Ok(alts)
    }
    fn seq(&mut self) -> Result<Vec<Node>, String> {
        let mut seq: Vec<Node> = Vec::new();
        loop {
            self.skip_ws();
            let Some(c) = self.peek() else { break };
            let rep = |seq: &mut Vec<Node>, lo, hi| -> Result<(), String> {
                let last = seq.pop().ok_or("repetition without operand")?;
                seq.push(Node::Rep(Box::new(last), lo, hi));
                Ok(())
            };
            match c {
                '"' => {
                    self.i += 1;
                    let mut lit = Vec::new();
                    while self.peek() != Some('"') {
                        lit.push(self.ch()?);
                    }
                    self.i += 1;
                    seq.push(Node::Lit(lit));
                }
                '[' => {
                    self.i += 1;
                    let neg = self.peek() == Some('^');
                    if neg {
                        self.i += 1;
                    }
                    let mut items = Vec::new();
                    while self.peek() != Some(']') {
                        let a = self.ch()?;
                        let b = if self.peek() == Some('-') && self.s.get(self.i + 1) != Some(&']')
                        {
                            self.i += 1;
                            self.ch()?
                        } else {
                            a
                        };
                        items.push((a, b));
                    }
                    self.i += 1;
                    seq.push(Node::Class { neg, items });
                }
                '(' => {
                    self.i += 1;
                    let g = self.alts()?;
                    if self.peek() != Some(')') {
                        return Err(format!("expected ) at {}", self.i));
                    }
                    self.i += 1;
                    seq.push(Node::Group(g));
                }
                '*' => {
                    self.i += 1;
                    rep(&mut seq, 0, None)?;
                }
                '+' => {
                    self.i += 1;
                    rep(&mut seq, 1, None)?;
                }
                '?' => {
                    self.i += 1;
                    rep(&mut seq, 0, Some(1))?;
                }
                '{' => {
                    self.i += 1;
                    let lo = self.int()?;
                    let hi = match self.peek() {
                        Some('}') => Some(lo),
                        Some(',') => {
                            self.i += 1;
                            if self.peek() == Some('}') {
                                None
                            } else {
                                Some(self.int()?)
                            }
                        }
                        _ => return Err("bad repetition".into()),
                    };
                    if self.peek() != Some('}') {
                        return Err("expected }".into());
                    }
                    self.i += 1;
                    rep(&mut seq, lo, hi)?;
                }
                c if c.is_ascii_alphanumeric() || c == '-' => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                    {
                        self.i += 1;
                    }
                    seq.push(Node::Ref(self.s[start..self.i].iter().collect()));
                }
                _ => break,
            }
        }
        Ok(seq)
    }
}

fn parse_gbnf(text: &str) -> Result<Gbnf, String> {
    parse_rules(text, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
    })
}

/// Reads a grammar llama.cpp's own converter (`json_schema_to_grammar`) wrote: its rule names
/// may hold capitals (llama.cpp's parser takes `[a-zA-Z0-9-]`), its rules come in name order
/// and `root` among them. Every rule referenced must be defined.
pub(super) fn parse_llama_gbnf(text: &str) -> Result<Gbnf, String> {
    let g = parse_rules(text, |c| c.is_ascii_alphanumeric() || c == '-')?;
    if !g.rules.contains_key("root") {
        return Err(format!("no root rule:\n{text}"));
    }
    for (name, alts) in &g.rules {
        let mut refs = Vec::new();
        alts.iter()
            .flatten()
            .for_each(|n| Gbnf::visit_refs(n, &mut refs));
        if let Some(r) = refs.iter().find(|r| !g.rules.contains_key(*r)) {
            return Err(format!("rule {name} references undefined {r}:\n{text}"));
        }
    }
    Ok(g)
}

fn parse_rules(text: &str, name_char: fn(char) -> bool) -> Result<Gbnf, String> {
    let mut rules = BTreeMap::new();
    for line in text.lines() {
        let (name, body) = line.split_once(" ::= ").ok_or(format!("bad line {line}"))?;
        if name.is_empty() || !name.chars().all(name_char) {
            return Err(format!("illegal rule name {name:?}"));
        }
        let chars: Vec<char> = body.chars().collect();
        let mut p = P { s: &chars, i: 0 };
        let alts = p.alts()?;
        if p.i != chars.len() {
            return Err(format!("trailing input in rule {name} at {}", p.i));
        }
        if rules.insert(name.to_string(), alts).is_some() {
            return Err(format!("rule {name} defined twice"));
        }
    }
    Ok(Gbnf { rules })
}

impl Gbnf {
    fn visit_refs(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Ref(r) => out.push(r.clone()),
            Node::Group(alts) => alts.iter().flatten().for_each(|n| Self::visit_refs(n, out)),
            Node::Rep(n, _, _) => Self::visit_refs(n, out),
            _ => {}
        }
    }
    fn unbounded(node: &Node) -> bool {
        match node {
            Node::Rep(n, _, hi) => hi.is_none() || Self::unbounded(n),
            Node::Group(alts) => alts.iter().flatten().any(Self::unbounded),
            _ => false,
        }
    }

    fn node(&self, n: &Node, input: &[char], pos: usize, depth: usize) -> BTreeSet<usize> {
        assert!(depth < 400, "recursion too deep (left recursion?)");
        let mut out = BTreeSet::new();
        match n {
            Node::Lit(l) => {
                if input[pos..].starts_with(l) {
                    out.insert(pos + l.len());
                }
            }
            Node::Class { neg, items } => {
                if let Some(&c) = input.get(pos) {
                    if items.iter().any(|&(a, b)| a <= c && c <= b) != *neg {
                        out.insert(pos + 1);
                    }
                }
            }
            Node::Ref(r) => return self.alts(&self.rules[r], input, pos, depth + 1),
            Node::Group(g) => return self.alts(g, input, pos, depth + 1),
            Node::Rep(inner, lo, hi) => {
                let mut cur = BTreeSet::from([pos]);
                if *lo == 0 {
                    out.insert(pos);
                }
                let hi = hi.unwrap_or(input.len() + 1);
                for k in 1..=hi {
                    let next: BTreeSet<usize> = cur
                        .iter()
                        .flat_map(|&p| self.node(inner, input, p, depth + 1))
                        .collect();
                    if next.is_empty() {
                        break;
                    }
                    if k >= *lo {
                        out.extend(&next);
                    }
                    cur = next;
                }
            }
        }
        out
    }

    fn alts(
        &self,
        alts: &[Vec<Node>],
        input: &[char],
        pos: usize,
        depth: usize,
    ) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for seq in alts {
            let mut cur = BTreeSet::from([pos]);
            for n in seq {
                cur = cur
                    .iter()
                    .flat_map(|&p| self.node(n, input, p, depth))
                    .collect();
                if cur.is_empty() {
                    break;
                }
            }
            out.extend(cur);
        }
        out
    }

    pub(super) fn accepts(&self, text: &str) -> bool {
        let input: Vec<char> = text.chars().collect();
        self.node(&Node::Ref("root".into()), &input, 0, 0)
            .contains(&input.len())
    }
}

/// Structural checks on a generated grammar; returns the parsed grammar.
pub(super) fn check_structure(text: &str) -> Gbnf {
    let g = parse_gbnf(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(g.rules.contains_key("root"), "no root rule:\n{text}");
    assert!(
        text.starts_with("root ::= "),
        "root must come first:\n{text}"
    );
    for (name, alts) in &g.rules {
        let mut refs = Vec::new();
        for n in alts.iter().flatten() {
            Gbnf::visit_refs(n, &mut refs);
            assert!(
                !Gbnf::unbounded(n),
                "unbounded repetition in {name}:\n{text}"
            );
        }
        for r in refs {
            assert!(
                g.rules.contains_key(&r),
                "rule {name} references undefined {r}:\n{text}"
            );
        }
    }
    g
}

/// Whether a grammar [`schema_to_gbnf`](super::schema_to_gbnf) wrote admits `text` (for tests elsewhere).
pub(crate) fn gbnf_accepts(gbnf: &str, text: &str) -> bool {
    check_structure(gbnf).accepts(text)
}
