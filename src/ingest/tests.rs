//! Cross-module tests of the ingest module: snapshots of real corpus files,
//! property tests of every splitter's invariants, the bad-input fixture
//! folder, and walk behaviour (ignores, globs, symlink loops, vanished files).

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde::Serialize;

use super::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

// ---------------------------------------------------------------- invariants

/// Line number of byte `pos`, computed independently of the splitters.
fn line_of(newlines: &[usize], pos: usize) -> u32 {
    newlines.partition_point(|&n| n < pos) as u32 + 1
}

/// Checks the shared chunk invariants. `slice_text`: chunk text must equal the
/// source slice. Non-whitespace chars at or after `from` must be covered
/// unless listed in `may_skip`.
fn check(src: &str, chunks: &[Chunk], slice_text: bool, from: usize, may_skip: &str) {
    let newlines: Vec<usize> = src.match_indices('\n').map(|(i, _)| i).collect();
    let mut prev_start: Option<usize> = None;
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i, "ordinals");
        assert!(
            c.byte_start < c.byte_end && c.byte_end <= src.len(),
            "range {c:?}"
        );
        assert!(src.is_char_boundary(c.byte_start) && src.is_char_boundary(c.byte_end));
        if let Some(p) = prev_start {
            assert!(c.byte_start > p, "chunks in order: {chunks:#?}");
        }
        prev_start = Some(c.byte_start);
        assert_eq!(
            c.line_start,
            line_of(&newlines, c.byte_start),
            "line_start {c:?}"
        );
        assert_eq!(
            c.line_end,
            line_of(&newlines, c.byte_end - 1),
            "line_end {c:?}"
        );
        assert!(!c.text.trim().is_empty(), "blank chunk {c:?}");
        let slice = &src[c.byte_start..c.byte_end];
        assert_eq!(slice.trim(), slice, "range is trimmed");
        if slice_text {
            assert_eq!(c.text, slice);
        }
    }
    let mut covered = vec![false; src.len()];
    for c in chunks {
        covered[c.byte_start..c.byte_end]
            .iter_mut()
            .for_each(|b| *b = true);
    }
    for (i, ch) in src.char_indices() {
        if i >= from && !ch.is_whitespace() && !may_skip.contains(ch) {
            assert!(
                covered[i],
                "char {ch:?} at {i} not covered in {src:?}: {chunks:#?}"
            );
        }
    }
}

fn opts(limit: usize, overlap: usize) -> IngestOptions {
    IngestOptions {
        chunk_tokens: limit,
        overlap_tokens: overlap,
        ..IngestOptions::default()
    }
}

// ----------------------------------------------------------------- snapshots

#[derive(Serialize)]
struct Snap {
    metadata: serde_json::Map<String, serde_json::Value>,
    notes: Vec<String>,
    chunks: Vec<Chunk>,
}

fn snap_of(rel: &str, limit: usize) -> Snap {
    let path = fixtures().join(rel);
    let kind = FileKind::from_path(&path).unwrap_or(FileKind::Text);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (chunks, notes, metadata) = split(kind, &text, &opts(limit, 32), &ApproxTokens);
    let from = if kind == FileKind::Markdown {
        markdown::body_start(&text)
    } else {
        0
    };
    let slice = kind != FileKind::Json && kind != FileKind::Jsonl;
    check(
        &text,
        &chunks,
        slice,
        from,
        if slice { "" } else { "[]{}," },
    );
    Snap {
        metadata,
        notes,
        chunks,
    }
}

/// Snapshot named after the test only (no crate/module prefix), so the files
/// under `src/ingest/snapshots/` stay valid when the module moves crates.
macro_rules! snapshot {
    ($e:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_yaml_snapshot!($e);
        })
    };
}

#[test]
fn snapshot_builder_md() {
    snapshot!(snap_of("corpus/patterns/creational/builder.md", 384));
}

#[test]
fn snapshot_mem_replace_md() {
    snapshot!(snap_of("corpus/idioms/mem-replace.md", 384));
}

#[test]
fn snapshot_command_md_small_limit() {
    snapshot!(snap_of("corpus/patterns/behavioural/command.md", 160));
}

#[test]
fn snapshot_sample_rs() {
    snapshot!(snap_of("snippets/sample.rs", 120));
}

#[test]
fn snapshot_sample_json() {
    snapshot!(snap_of("snippets/sample.json", 60));
}

// ----------------------------------------------------------------- proptests

fn md_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "#{1,7} [a-zé日 ]{0,12}",
        Just("```".to_string()),
        Just("```rust".to_string()),
        Just("~~~".to_string()),
        Just("    indented code".to_string()),
        "[a-zA-Z0-9 ,.ü🦀]{0,60}",
        Just(String::new()),
        Just("- item".to_string()),
        Just("1. first".to_string()),
        Just("> quote # not heading".to_string()),
        Just("---".to_string()),
        Just("+++".to_string()),
        Just("===".to_string()),
        Just("title: x".to_string()),
        Just("| a | b |\n|---|---|\n| 1 | 2 |".to_string()),
        Just("<div>\nhtml\n</div>".to_string()),
        Just("[ref]: http://x".to_string()),
    ]
}

fn joined(lines: Vec<String>, crlf: bool, trailing: bool) -> String {
    let sep = if crlf { "\r\n" } else { "\n" };
    let mut s = lines.join(sep);
    if trailing {
        s.push_str(sep);
    }
    s
}

fn md_doc() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(md_line(), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(l, crlf, t)| joined(l, crlf, t))
}

fn rs_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("fn a() {".to_string()),
        Just("}".to_string()),
        Just("impl X {".to_string()),
        Just("    pub fn m(&self) -> u8 { 1 }".to_string()),
        Just("/// doc comment".to_string()),
        Just("//! inner doc".to_string()),
        Just("/** block doc */".to_string()),
        Just("#[derive(Debug)]".to_string()),
        Just("struct S;".to_string()),
        Just("enum E { A, B }".to_string()),
        Just("mod m {".to_string()),
        Just("let s = \"str { \\\" \";".to_string()),
        Just("let c = '{';".to_string()),
        Just("/* { */".to_string()),
        Just("const X: u8 = 1;".to_string()),
        Just("macro_rules! m { () => {} }".to_string()),
        Just("let r = r#\"raw { \"#;".to_string()),
        Just("use std::fmt;".to_string()),
        "[a-z(){};'\"é ]{0,30}",
        Just(String::new()),
    ]
}

fn rs_doc() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(rs_line(), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(l, crlf, t)| joined(l, crlf, t))
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i32>().prop_map(serde_json::Value::from),
        "[a-z \"\\\\é日\n]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z .\\[]{0,6}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_doc() -> impl Strategy<Value = String> {
    (
        json_value(),
        any::<bool>(),
        any::<Option<prop::sample::Index>>(),
    )
        .prop_map(|(v, pretty, cut)| {
            let s = if pretty {
                serde_json::to_string_pretty(&v).unwrap_or_default()
            } else {
                serde_json::to_string(&v).unwrap_or_default()
            };
            match cut {
                // Sometimes truncate to make it malformed.
                Some(ix) if !s.is_empty() => {
                    let mut at = ix.index(s.len());
                    while !s.is_char_boundary(at) {
                        at -= 1;
                    }
                    s[..at].to_string()
                }
                _ => s,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn prop_approx_tokens_counts_words_or_quarter_bytes(s in "[ a\t\nb\u{b}\u{c}\u{e9}\r]{0,200}") {
        let expected = s.len().div_ceil(4).max(s.split_ascii_whitespace().count());
        prop_assert_eq!(ApproxTokens.count(&s), expected);
    }

    #[test]
    fn prop_markdown_arbitrary(s in "\\PC{0,300}", limit in 1usize..80, overlap in 0usize..20) {
        let (c, _) = markdown::split(&s, &opts(limit, overlap), &ApproxTokens);
        check(&s, &c, true, markdown::body_start(&s), "");
    }

    #[test]
    fn prop_markdown_structured(s in md_doc(), limit in 1usize..60, overlap in 0usize..20) {
        let (c, _) = markdown::split(&s, &opts(limit, overlap), &ApproxTokens);
        check(&s, &c, true, markdown::body_start(&s), "");
        // Fenced code blocks are never cut: every chunk boundary lies outside them.
        let body = markdown::body_start(&s);
        for (start, end) in fenced_blocks(&s, body) {
            for ch in &c {
                let cut_start = ch.byte_start > start && ch.byte_start < end
                    && !s[start..ch.byte_start].trim().is_empty();
                let cut_end = ch.byte_end > start && ch.byte_end < end
                    && !s[ch.byte_end..end].trim().is_empty();
                prop_assert!(!cut_start && !cut_end,
                    "chunk {:?} cuts code block {}..{} in {:?}", ch, start, end, s);
            }
        }
    }

    #[test]
    fn prop_text(s in "\\PC{0,400}|([a-z ]{0,20}\r?\n){0,30}", limit in 1usize..50, overlap in 0usize..30) {
        let c = text::split(&s, &opts(limit, overlap), &ApproxTokens);
        check(&s, &c, true, 0, "");
    }

    #[test]
    fn prop_rust_arbitrary(s in "\\PC{0,300}", limit in 1usize..80) {
        let (c, _) = rust::split(&s, &opts(limit, 8), &ApproxTokens);
        check(&s, &c, true, 0, "");
    }

    #[test]
    fn prop_rust_structured(s in rs_doc(), limit in 1usize..80, overlap in 0usize..10) {
        let (c, _) = rust::split(&s, &opts(limit, overlap), &ApproxTokens);
        check(&s, &c, true, 0, "");
    }

    #[test]
    fn prop_json(s in json_doc(), limit in 1usize..60) {
        let (c, notes) = json::split(&s, &opts(limit, 8), &ApproxTokens);
        if notes.is_empty() {
            check(&s, &c, false, 0, "[]{},");
        } else {
            prop_assert!(notes[0].starts_with("malformed JSON at line "));
            check(&s, &c, true, 0, "");
        }
    }

    #[test]
    fn prop_json_arbitrary(s in "\\PC{0,200}", limit in 1usize..60) {
        let (c, notes) = json::split(&s, &opts(limit, 8), &ApproxTokens);
        check(&s, &c, !notes.is_empty(), 0, if notes.is_empty() { "[]{},\u{feff}" } else { "" });
    }

    #[test]
    fn prop_jsonl(lines in prop::collection::vec(json_doc(), 0..12), limit in 1usize..60) {
        let s: String = lines.iter().map(|l| l.replace('\n', " ") + "\n").collect();
        let (c, _) = json::split_lines(&s, &opts(limit, 8), &ApproxTokens);
        check(&s, &c, false, 0, "");
    }
}

/// Spans of fenced code blocks as pulldown-cmark sees them, for the property test.
fn fenced_blocks(s: &str, body: usize) -> Vec<(usize, usize)> {
    use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag};
    Parser::new(&s[body..])
        .into_offset_iter()
        .filter_map(|(e, r)| match e {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                Some((r.start + body, r.end + body))
            }
            _ => None,
        })
        .collect()
}

// ----------------------------------------------------------------- bad input

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.expect("dir entry");
        fs::copy(e.path(), to.join(e.file_name())).expect("copy fixture");
    }
}

fn refusal_of(entries: &[Entry], rel: &str) -> Option<Refusal> {
    entries
        .iter()
        .find(|e| e.rel_path() == rel)
        .and_then(|e| match e {
            Entry::Refused { refusal, .. } => Some(refusal.clone()),
            Entry::File(_) => None,
        })
}

fn file_of<'a>(entries: &'a [Entry], rel: &str) -> &'a SourceFile {
    match entries.iter().find(|e| e.rel_path() == rel) {
        Some(Entry::File(f)) => f,
        other => panic!("{rel}: expected a file, got {other:?}"),
    }
}

#[test]
fn bad_input_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    copy_dir(&fixtures().join("bad-input"), root);
    // Too large: generated at test time, refused through a small limit.
    fs::write(root.join("huge.txt"), "big line of text\n".repeat(4096)).expect("write");
    // Permission denied: created now; root can read anything, so check below.
    let locked = root.join("locked.md");
    fs::write(&locked, "# secret\n").expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    // Root (and non-unix systems) can still read it: then it is ingested.
    let locked_unreadable = fs::read(&locked).is_err();

    let o = IngestOptions {
        max_file_bytes: 64 * 1024,
        ..IngestOptions::default()
    };
    let files = walk(root, &o).expect("walk");
    let names: Vec<String> = files.iter().map(|p| rel_string(p)).collect();
    assert_eq!(
        names,
        vec![
            "blank.txt",
            "broken.json",
            "empty.md",
            "good.md",
            "good.rs",
            "huge.txt",
            "image.md",
            "latin1.txt",
            "locked.md"
        ]
    );
    let entries: Vec<Entry> = files
        .iter()
        .map(|f| read_file(root, f, &o, &ApproxTokens))
        .collect();

    assert_eq!(
        refusal_of(&entries, "image.md"),
        Some(Refusal::Binary { offset: 8 })
    );
    assert_eq!(
        refusal_of(&entries, "latin1.txt"),
        Some(Refusal::InvalidUtf8 {
            line: 1,
            column: 4,
            byte_offset: 3
        })
    );
    assert_eq!(refusal_of(&entries, "empty.md"), Some(Refusal::Empty));
    assert_eq!(refusal_of(&entries, "blank.txt"), Some(Refusal::Empty));
    assert_eq!(
        refusal_of(&entries, "huge.txt"),
        Some(Refusal::TooLarge {
            size: 17 * 4096,
            limit: 64 * 1024
        })
    );
    if locked_unreadable {
        let r = refusal_of(&entries, "locked.md").expect("locked refused");
        assert_eq!(r.kind(), "unreadable");
    } else {
        // Running as root: the file is readable, so it is ingested.
        assert_eq!(file_of(&entries, "locked.md").chunks.len(), 1);
    }
    if let Some(Entry::Refused { kind, .. }) = entries.iter().find(|e| e.rel_path() == "image.md") {
        assert_eq!(*kind, Some(FileKind::Markdown));
    }

    let broken = file_of(&entries, "broken.json");
    assert_eq!(broken.kind, FileKind::Json);
    assert_eq!(broken.notes.len(), 1);
    assert!(
        broken.notes[0].starts_with("malformed JSON at line 3, column")
            && broken.notes[0].ends_with("; read as plain text"),
        "{}",
        broken.notes[0]
    );
    assert_eq!(broken.chunks.len(), 1);
    assert_eq!(broken.chunks[0].text, broken.text.trim());

    let good = file_of(&entries, "good.md");
    assert_eq!(good.kind, FileKind::Markdown);
    assert_eq!(good.metadata["title"], "Good note");
    assert!(!good.chunks.is_empty());
    assert_eq!(good.chunks[0].heading_path, vec!["Good note".to_string()]);
    assert_eq!(good.bytes, good.text.len() as u64);
    assert_eq!(good.content_hash.len(), 64);

    let rs = file_of(&entries, "good.rs");
    assert_eq!(rs.kind, FileKind::Rust);
    assert!(rs.notes.is_empty());
    let paths: Vec<_> = rs.chunks.iter().map(|c| c.heading_path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            vec!["module docs".to_string()],
            vec!["fn add_one".to_string()]
        ]
    );
}

#[test]
fn refusal_kinds_and_messages() {
    let all = [
        (Refusal::Binary { offset: 3 }, "binary"),
        (
            Refusal::InvalidUtf8 {
                line: 1,
                column: 2,
                byte_offset: 1,
            },
            "invalid_utf8",
        ),
        (Refusal::Empty, "empty"),
        (Refusal::TooLarge { size: 2, limit: 1 }, "too_large"),
        (
            Refusal::Unreadable {
                message: "Permission denied".into(),
            },
            "unreadable",
        ),
        (Refusal::Vanished, "vanished"),
    ];
    for (r, k) in all {
        assert_eq!(r.kind(), k);
        let msg = r.to_string();
        assert!(!msg.contains('\n') && msg.contains("; "), "{msg}");
    }
}

#[test]
fn decode_edge_cases() {
    let mut late_nul = vec![b'a'; 10_000];
    late_nul[9_000] = 0;
    assert_eq!(decode(&late_nul), Err(Refusal::Binary { offset: 9_000 }));
    assert_eq!(
        decode(
            "ab\néé\n\u{00e9}x"
                .as_bytes()
                .iter()
                .copied()
                .chain([0xff])
                .collect::<Vec<_>>()
                .as_slice()
        ),
        Err(Refusal::InvalidUtf8 {
            line: 3,
            column: 3,
            byte_offset: 11
        })
    );
    assert_eq!(decode("\u{feff} \n".as_bytes()), Err(Refusal::Empty));
    assert_eq!(decode(b"ok"), Ok("ok"));
}

#[test]
fn file_kind_names() {
    for k in FileKind::ALL {
        assert_eq!(k.as_str().parse::<FileKind>(), Ok(k));
        assert_eq!(k.to_string(), k.as_str());
    }
    assert!("yaml".parse::<FileKind>().is_err());
    assert_eq!(FileKind::from_extension("MD"), Some(FileKind::Markdown));
    assert_eq!(
        FileKind::from_path(Path::new("a/b.jsonl")),
        Some(FileKind::Jsonl)
    );
}

#[test]
fn approx_tokens() {
    assert_eq!(ApproxTokens.count(""), 0);
    assert_eq!(ApproxTokens.count("abcde"), 2);
    assert_eq!(ApproxTokens.count("a b c d e f"), 6);
}

// ---------------------------------------------------------------------- walk

fn touch(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).expect("mkdir");
    }
    fs::write(p, body).expect("write");
}

fn walked(root: &Path, o: &IngestOptions) -> Vec<String> {
    walk(root, o)
        .expect("walk")
        .iter()
        .map(|p| rel_string(p))
        .collect()
}

#[test]
fn walk_skips_and_ignores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    for f in [
        "a.md",
        "B.MD",
        "notes.txt",
        "data.json",
        "log.jsonl",
        "src/lib.rs",
        "sub/deep/c.markdown",
        "image.png",
        ".hidden.md",
        ".git/config.md",
        "target/debug/x.md",
        "node_modules/pkg/readme.md",
        "build/out.md",
        "sub/build/out2.md",
        "drafts/wip.md",
        "rootonly.md",
        "sub/rootonly.md",
        "scratch.tmp.md",
    ] {
        touch(r, f, "x\n");
    }
    touch(
        r,
        ".gitignore",
        "# comment\nbuild/\n*.tmp.md\n/rootonly.md\n!keep.md\n",
    );
    touch(r, ".quarryignore", "drafts\n");
    let o = IngestOptions::default();
    assert_eq!(
        walked(r, &o),
        vec![
            "B.MD",
            "a.md",
            "data.json",
            "log.jsonl",
            "notes.txt",
            "src/lib.rs",
            "sub/deep/c.markdown",
            "sub/rootonly.md",
        ]
    );
    let report = walk_report(r, &o).expect("walk");
    assert!(report
        .problems
        .iter()
        .any(|p| p.message.contains("negated pattern")));

    let o = IngestOptions {
        include: vec!["sub/**".into(), "*.json".into()],
        exclude: vec!["**/deep/**".into()],
        ..IngestOptions::default()
    };
    assert_eq!(walked(r, &o), vec!["data.json", "sub/rootonly.md"]);

    let o = IngestOptions {
        extensions: vec![".RS".into()],
        ..IngestOptions::default()
    };
    assert_eq!(walked(r, &o), vec!["src/lib.rs"]);
}

#[test]
fn walk_root_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let e = walk(&missing, &IngestOptions::default()).expect_err("missing");
    assert!(matches!(e, IngestError::NotFound { .. }));
    assert!(e.to_string().contains("check the path"));
    touch(dir.path(), "f.md", "x");
    let e = walk(&dir.path().join("f.md"), &IngestOptions::default()).expect_err("file");
    assert!(matches!(e, IngestError::NotADirectory { .. }));
    let o = IngestOptions {
        exclude: vec!["a[".into()],
        ..IngestOptions::default()
    };
    let e = walk(dir.path(), &o).expect_err("bad glob");
    assert!(
        matches!(
            e,
            IngestError::BadPattern {
                option: "exclude",
                ..
            }
        ),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn walk_terminates_on_symlink_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    touch(r, "a/note.md", "# hi\n");
    std::os::unix::fs::symlink(r.join("a"), r.join("a/loop")).expect("symlink");
    std::os::unix::fs::symlink(r, r.join("a/up")).expect("symlink");
    std::os::unix::fs::symlink(r.join("a/note.md"), r.join("linked.md")).expect("symlink");
    let report = walk_report(r, &IngestOptions::default()).expect("walk");
    let names: Vec<String> = report.files.iter().map(|p| rel_string(p)).collect();
    assert_eq!(names, vec!["a/note.md", "linked.md"]);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
}

#[test]
fn vanished_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    touch(dir.path(), "gone.md", "# soon gone\n");
    let files = walk(dir.path(), &IngestOptions::default()).expect("walk");
    assert_eq!(files.len(), 1);
    fs::remove_file(dir.path().join("gone.md")).expect("rm");
    let e = read_file(
        dir.path(),
        &files[0],
        &IngestOptions::default(),
        &ApproxTokens,
    );
    assert_eq!(
        e,
        Entry::Refused {
            rel_path: "gone.md".into(),
            kind: Some(FileKind::Markdown),
            refusal: Refusal::Vanished
        }
    );
}

#[test]
fn front_matter_only_file_gets_a_note() {
    let dir = tempfile::tempdir().expect("tempdir");
    touch(dir.path(), "fm.md", "---\ntitle: x\n---\n\n");
    let Entry::File(f) = read_file(
        dir.path(),
        Path::new("fm.md"),
        &IngestOptions::default(),
        &ApproxTokens,
    ) else {
        panic!("expected file")
    };
    assert!(f.chunks.is_empty());
    assert_eq!(f.metadata["title"], "x");
    assert_eq!(f.notes.len(), 1);
}

#[test]
fn read_file_hash_and_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    touch(dir.path(), "n.jsonl", "{\"a\": 1}\n");
    let Entry::File(f) = read_file(
        dir.path(),
        Path::new("n.jsonl"),
        &IngestOptions::default(),
        &ApproxTokens,
    ) else {
        panic!("expected file")
    };
    assert_eq!(f.kind, FileKind::Jsonl);
    assert!(f.notes.is_empty());
    assert_eq!(f.chunks[0].text, "a: 1");
    // sha256 of the raw bytes
    assert_eq!(
        f.content_hash,
        hex::encode(sha2::Sha256::digest(b"{\"a\": 1}\n"))
    );
}

// ----------------------------------------------------------------- scale

/// About 1 MB of each kind: guards against quadratic behaviour (the test would
/// take minutes) and checks the invariants on big inputs.
#[test]
fn large_inputs_split_quickly() {
    let o = IngestOptions::default();
    let started = std::time::Instant::now();

    let mut md = String::new();
    for i in 0..3000 {
        md.push_str(&format!(
            "## Section {i}\n\nSome text about ü and 🦀 in section {i}.\n\n```rust\nfn f{i}() {{}}\n```\n\n"
        ));
    }
    md.push_str(&"one very long paragraph ".repeat(20_000));
    let (c, _) = markdown::split(&md, &o, &ApproxTokens);
    check(&md, &c, true, 0, "");

    let txt = "word ".repeat(200_000);
    let c = text::split(&txt, &o, &ApproxTokens);
    check(&txt, &c, true, 0, "");

    let mut rs = String::new();
    for i in 0..8000 {
        rs.push_str(&format!(
            "/// Doc {i}.\npub fn f{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\n"
        ));
    }
    let (c, notes) = rust::split(&rs, &o, &ApproxTokens);
    assert!(notes.is_empty());
    check(&rs, &c, true, 0, "");
    let broken = format!("{rs}fn oops( {{\n");
    let (c, notes) = rust::split(&broken, &o, &ApproxTokens);
    assert_eq!(notes.len(), 1);
    check(&broken, &c, true, 0, "");

    let records: Vec<String> = (0..8000)
        .map(|i| format!("{{\"name\": \"item {i}\", \"tags\": [\"a\", \"b\"], \"n\": {i}}}"))
        .collect();
    let js = format!("[{}]", records.join(",\n"));
    let (c, _) = json::split(&js, &o, &ApproxTokens);
    check(&js, &c, false, 0, "[]{},");
    let jl = records.join("\n");
    let (c, _) = json::split_lines(&jl, &o, &ApproxTokens);
    check(&jl, &c, false, 0, "");

    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_markdown_title_is_the_first_level_one_heading_or_the_front_matter_title() {
    use crate::ingest::markdown::title;
    assert_eq!(
        title("Intro line\n\n## Part\n\n# The `matches!` macro\n\ntext\n").as_deref(),
        Some("The matches! macro")
    );
    assert_eq!(
        title("---\ntitle: Builders\n---\n## Only parts\n").as_deref(),
        Some("Builders")
    );
    assert_eq!(title("```\n# not a heading\n```\n## Part\n"), None);
}
