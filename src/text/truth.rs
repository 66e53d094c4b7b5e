//! The rules against the truth files, without a model: every folder with a `truth.tsv` is
//! ingested as `enqueue` would (walk, read, split), each chunk is offered its terms as the
//! extractor's prompt gets them, and each term is checked as a finding name. A true name (or
//! an alias, matched as `kbscore.py` matches them) must be among the terms a chunk of its file
//! offers and pass the checks. The per-folder floors are today's figures: a rule change shows
//! at once what it gains or breaks.

use std::path::{Path, PathBuf};

use crate::agent::{Agents, Role};
use crate::ingest::{self, ApproxTokens, Entry, IngestOptions, SourceFile};
use crate::queue::store::ChunkRow;
use crate::text::terms::terms;

/// One chunk as the extractor sees it: its file, the chunk and each offered term's verdict.
struct Offered {
    chunk: ChunkRow,
    terms: Vec<(String, Verdict)>,
}

/// A term's fate as a finding name: the name the checks keep (completed from a heading) and
/// `Ok`, or the kind of rejection.
type Verdict = (String, Result<(), &'static str>);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `root`, read and split as `enqueue` reads them (without a model's tokenizer).
fn read_folder(root: &Path) -> Vec<SourceFile> {
    let opts = IngestOptions::default();
    let walk = ingest::walk_report(root, &opts).expect("walk");
    walk.files
        .iter()
        .filter_map(|f| match ingest::read_file(root, f, &opts, &ApproxTokens) {
            Entry::File(s) => Some(*s),
            Entry::Refused { .. } => None,
        })
        .collect()
}

fn extractor() -> Role {
    let agents = Agents::load(None, None).expect("built-in agents");
    agents.role("extractor").expect("extractor role").clone()
}

/// The kind of a rejection reason (the reasons quote the name; the kind is stable).
fn reason_kind(reason: &str) -> &'static str {
    [
        ("too generic", "generic"),
        ("a sentence, not a name", "sentence"),
        ("not grounded", "ungrounded"),
        ("an identifier", "identifier"),
        ("evidence", "evidence"),
        ("in passing", "in-passing"),
        ("repeats the instructions", "echo"),
    ]
    .iter()
    .find(|(m, _)| reason.contains(m))
    .map_or("other", |(_, k)| k)
}

/// Every chunk of `file`, with the terms the extractor is offered and their verdicts.
fn offered(role: &Role, file: &SourceFile) -> Vec<Offered> {
    // The facts the engine reads: those ingest stored with the file.
    let facts = &file.facts;
    file.chunks
        .iter()
        .map(|c| {
            let chunk = ChunkRow {
                id: 0,
                source_id: 0,
                rel_path: file.rel_path.clone(),
                root: String::new(),
                kind: file.kind.as_str().to_string(),
                ordinal: c.ordinal.into(),
                line_start: c.line_start.into(),
                line_end: c.line_end.into(),
                byte_start: c.byte_start as i64,
                heading_path: c.heading_path.clone(),
                text: c.text.clone(),
                tokens: c.tokens as i64,
                facts: None,
            };
            // A chunk that cannot teach (no Rust in its file, a list of references) is not
            // sent to the extractor: it offers nothing.
            let offered = if crate::text::teaching::silence(
                &chunk.text,
                &chunk.heading_path,
                file.kind,
                facts,
            )
            .is_some()
            {
                Vec::new()
            } else {
                role.usable_terms(terms(&chunk.text, &chunk.heading_path, file.kind, facts))
            };
            let terms = offered
                .into_iter()
                .map(|t| {
                    let verdict = verdict(&t, &chunk, &role.task);
                    (t, verdict)
                })
                .collect();
            Offered { chunk, terms }
        })
        .collect()
}

/// The checks' verdict on `term` as the name of a finding whose evidence is the whole chunk
/// (so that only the name is judged).
fn verdict(term: &str, chunk: &ChunkRow, task: &str) -> Verdict {
    match crate::engine::name_finding(term, chunk, task) {
        Some(f) if f.status != crate::queue::FindingStatus::Rejected => (f.pattern, Ok(())),
        Some(f) => (
            f.pattern,
            Err(reason_kind(f.reason.as_deref().unwrap_or(""))),
        ),
        None => (term.to_string(), Err("none")),
    }
}

/// The folders the rules are measured on: (name, corpus root, truth file), those present:
/// every `bench/eval/NAME/` with a `corpus/` and a `truth.tsv`, and the shared corpora.
fn folders() -> Vec<(String, PathBuf, PathBuf)> {
    let r = repo();
    let shared = r.join("../shared");
    let mut out: Vec<(String, PathBuf, PathBuf)> = std::fs::read_dir(r.join("bench/eval"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let d = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, d.join("corpus"), d.join("truth.tsv"))
        })
        .collect();
    out.sort();
    for name in ["rust-patterns", "rust-blog"] {
        out.push((
            name.to_string(),
            shared.join("corpus").join(name),
            shared.join("eval").join(format!("{name}.truth.tsv")),
        ));
    }
    out.retain(|(_, root, truth)| root.is_dir() && truth.is_file());
    out
}

/// `kbscore.py`'s `norm`: lower-case, runs of other characters than `a-z0-9` one space,
/// padded.
fn norm(s: &str) -> String {
    let mut out = String::from(" ");
    for c in s.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// True when `name` occurs in `text` as `kbscore.py` matches it: a `C-NAME` alias as a
/// whole token, any other as `" " + norm(name)` inside `norm(text)`.
fn occurs_in(name: &str, text: &str) -> bool {
    let c_name = name.starts_with("C-")
        && name[2..]
            .split('-')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()));
    if c_name {
        let lower = text.to_lowercase();
        let n = name.to_lowercase();
        let token = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        return lower.match_indices(&n).any(|(i, _)| {
            !token(lower[..i].chars().next_back()) && !token(lower[i + n.len()..].chars().next())
        });
    }
    let core = norm(name);
    let core = core.trim();
    !core.is_empty() && norm(text).contains(&format!(" {core}"))
}

/// A row of a truth file: the file, the id, the name and its aliases.
struct Row {
    file: String,
    id: String,
    names: Vec<String>,
}

fn truth(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).expect("truth file");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (file, id, name, aliases) = (
        col("file"),
        col("pattern_id"),
        col("pattern_name"),
        col("aliases"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').map(str::trim).collect();
            let mut names = vec![f[name].to_string()];
            names.extend(
                f[aliases]
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_string),
            );
            Row {
                file: f[file].to_string(),
                id: f[id].to_string(),
                names,
            }
        })
        .collect()
}

/// Prints, for every chunk of every folder, the offered terms and their verdicts, to the file
/// `QUARRY_TEXT_DUMP` names (or stdout): run before and after a change to the rules and
/// compare. `cargo test --lib text::truth::dump -- --ignored`.
#[test]
#[ignore = "a developer's dump: set QUARRY_TEXT_DUMP"]
fn dump() {
    let role = extractor();
    let mut out = String::new();
    for (name, root, _) in folders() {
        if !root.is_dir() {
            continue;
        }
        for file in read_folder(&root) {
            for o in offered(&role, &file) {
                let at = format!(
                    "{name}/{}#{} [{}]",
                    file.rel_path,
                    o.chunk.ordinal,
                    o.chunk.heading_path.join(" > ")
                );
                if o.terms.is_empty() {
                    out.push_str(&format!("{at}\t-\n"));
                }
                for (term, (kept, v)) in &o.terms {
                    let kept = if kept == term {
                        String::new()
                    } else {
                        format!(" -> {kept}")
                    };
                    let v = v.err().unwrap_or("ok");
                    out.push_str(&format!("{at}\t{term}{kept}\t{v}\n"));
                }
            }
        }
    }
    match std::env::var_os("QUARRY_TEXT_DUMP") {
        Some(path) => std::fs::write(path, out).expect("write the dump"),
        None => print!("{out}"),
    }
}

/// A heading that states a rule, at its longest, is a name the extractor's grammar can write:
/// a schema's `maxLength` below it silently dropped every long rule of a book of rules.
#[test]
fn the_longest_rule_heading_fits_the_extractors_name_field() {
    let long = "Values are validated once, in a constructor, and the fields stay private";
    assert!(crate::text::terms::states_a_rule(long));
    let longest = "x".repeat(crate::text::terms::RULE_MAX_CHARS);
    let role = extractor();
    for name in [long, longest.as_str()] {
        assert_eq!(
            role.usable_terms(vec![name.to_string()]),
            [name],
            "{} chars",
            name.len()
        );
    }
}

/// Every truth row's name among the terms a chunk of its file offers, passing the checks; at
/// least as many rows per folder as when the floor was set. And the files that teach nothing
/// (no truth row) offer nothing: at least as many per folder as when that floor was set.
#[test]
fn true_names_are_offered_and_pass_the_checks() {
    let role = extractor();
    let mut report = String::new();
    let mut low = Vec::new();
    let all = folders();
    // The repository's own folders are always there: a test that read no folder proves nothing.
    assert!(
        all.iter()
            .filter(|(n, _, _)| !n.starts_with("rust-"))
            .count()
            >= 5,
        "bench/eval's folders not found from {}",
        repo().display()
    );
    for (name, root, truth_file) in all {
        let files: Vec<(String, Vec<Offered>)> = read_folder(&root)
            .into_iter()
            .map(|f| (f.rel_path.clone(), offered(&role, &f)))
            .collect();
        let rows = truth(&truth_file);
        let mut passed = 0;
        for row in &rows {
            let chunks = files
                .iter()
                .find(|(p, _)| *p == row.file)
                .map(|(_, c)| c.as_slice())
                .unwrap_or_default();
            let matches = |t: &str| row.names.iter().any(|n| occurs_in(n, t));
            let ok = chunks.iter().any(|o| {
                o.terms
                    .iter()
                    .any(|(t, (kept, v))| v.is_ok() && (matches(t) || matches(kept)))
            });
            if ok {
                passed += 1;
                continue;
            }
            let offered: Vec<String> = chunks
                .iter()
                .flat_map(|o| &o.terms)
                .filter(|(t, (kept, _))| matches(t) || matches(kept))
                .map(|(t, (_, v))| format!("{t:?}: {}", v.err().unwrap_or("ok")))
                .collect();
            let why = if offered.is_empty() {
                "not offered".to_string()
            } else {
                format!("offered but rejected ({})", offered.join(", "))
            };
            report.push_str(&format!(
                "  {name}: {} {:?} in {}: {why}\n",
                row.id, row.names[0], row.file
            ));
        }
        report.push_str(&format!("{name}: {passed}/{} rows\n", rows.len()));
        // Files that teach nothing (no truth row) should be silent: not read for patterns.
        let neutral: Vec<&(String, Vec<Offered>)> = files
            .iter()
            .filter(|(p, _)| !rows.iter().any(|r| r.file == *p))
            .collect();
        let speaking: Vec<&str> = neutral
            .iter()
            .filter(|(_, chunks)| chunks.iter().any(|o| !o.terms.is_empty()))
            .map(|(p, _)| p.as_str())
            .collect();
        let silent = neutral.len() - speaking.len();
        report.push_str(&format!(
            "{name}: {silent} of {} files without truth rows offer no term {speaking:?}\n",
            neutral.len()
        ));
        let silent_floor = match name.as_str() {
            "rust-patterns" => 16,
            "rust-blog" => 3,
            "rules" => 2,
            "doccomments" | "plainnotes" => 1,
            _ => 0,
        };
        if silent < silent_floor {
            low.push(format!("{name}: {silent} silent files < {silent_floor}"));
        }
        let floor = match name.as_str() {
            "shapes" => 24,
            "topics" => 7,
            "rust-patterns" => 37,
            "rust-blog" => 18,
            "rules" => 23,
            "doccomments" => 11,
            "plainnotes" => 8,
            _ => 0,
        };
        if passed < floor {
            low.push(format!("{name}: {passed} < {floor}"));
        }
    }
    println!("{report}");
    assert!(low.is_empty(), "fewer true names pass: {low:?}\n{report}");
}

/// The facts ingest works out for every file of `bench/eval` (version aside), and the
/// [`FileFacts::VERSION`](crate::text::terms::FileFacts::VERSION) they were worked out under:
/// facts stored by an older quarry are worked out again only when the version is raised.
const FACTS: (u32, &str) = (
    4,
    "ba426769a6b07d105073e84520d5aee81404d3e336017bcc42ffb2fd8470c211",
);

/// A change to the rules that changes what ingest stores about a file must raise
/// `FileFacts::VERSION`, or queues enqueued before it keep facts the new rules would not give.
#[test]
fn a_change_to_the_facts_raises_their_version() {
    use crate::text::terms::FileFacts;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut files = 0;
    for (name, root, _) in folders()
        .into_iter()
        .filter(|(_, root, _)| root.starts_with(repo().join("bench/eval")))
    {
        let mut read = read_folder(&root);
        read.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        for file in read {
            let facts = FileFacts {
                version: 0,
                ..file.facts.clone()
            };
            h.update(format!("{name}/{}\n", file.rel_path));
            h.update(serde_json::to_string(&facts).expect("facts serialise"));
            files += 1;
        }
    }
    assert!(files >= 20, "bench/eval's files not found: {files}");
    // And files of the shapes the facts are about, which bench/eval may not have.
    let items = "# Myths\n\n## The myths\n\n### 1) boxes are slow\n\n```rust\nlet b = Box::new(1);\n```\n\n### 2) clones are free\n\n```rust\nlet c = b.clone();\n```\n\n## Conclusion\n\n**Takeaway**\n\nMeasure.\n\n**Takeaway**\n\nAgain.\n";
    let rules = "# Errors\n\n## Functions that can fail return Result\n\nUse `Result<T, E>`.\n\n## Error messages are lower-case without a full stop\n\nAs `io::Error` does.\n";
    let steps = "# Learning\n\n## 1) Set up your machine first\n\nSet `APP_MODE` and click `New` -> `Create`.\n\n```sh\nexport A=1\n```\n";
    let source = "use std::cell::{Cell, RefCell};\n/// A counter.\npub struct Counter { n: Cell<u32> }\nimpl Counter { pub fn get(&self) -> u32 { self.n.get() } }\n";
    for (path, text) in [
        ("items.md", items),
        (
            "one-item.md",
            items.split("### 2)").next().unwrap_or_default(),
        ),
        ("rules.md", rules),
        ("steps.md", steps),
        ("lib.rs", source),
    ] {
        let kind = ingest::FileKind::from_path(Path::new(path)).expect("a known kind");
        let (chunks, _, _) = ingest::split(kind, text, &IngestOptions::default(), &ApproxTokens);
        let facts = FileFacts {
            version: 0,
            ..FileFacts::of_chunks(
                chunks
                    .iter()
                    .map(|c| (c.heading_path.as_slice(), c.text.as_str())),
                kind,
            )
        };
        h.update(format!("fixture/{path}\n"));
        h.update(serde_json::to_string(&facts).expect("facts serialise"));
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let (version, known) = FACTS;
    let now = FileFacts::VERSION;
    if digest != known {
        if now == version {
            panic!(
                "the facts ingest works out (bench/eval, the fixtures above) changed: raise FileFacts::VERSION to {} and set FACTS to ({}, \"{digest}\")",
                version + 1,
                version + 1
            );
        }
        panic!(
            "the facts changed and FileFacts::VERSION is {now}: set FACTS to ({now}, \"{digest}\")"
        );
    }
    assert_eq!(
        now, version,
        "FileFacts::VERSION was raised: set FACTS to ({now}, \"{digest}\")"
    );
}
