use super::*;

fn source(id: i64, rel: &str) -> SourceRow {
    SourceRow {
        id,
        root: "/r".into(),
        rel_path: rel.into(),
        version: 1,
        kind: Some("markdown".into()),
        status: "active".into(),
        content_hash: Some("h".into()),
        bytes: 100,
        line_count: 20,
        refusal_kind: None,
        refusal_message: None,
        notes: vec![],
    }
}

fn finding(id: i64, source_id: i64, rel: &str, pattern: &str, status: &str) -> FindingRow {
    FindingRow {
        id,
        job_id: 1,
        chunk_id: 1,
        source_id,
        rel_path: rel.into(),
        pattern: pattern.into(),
        pattern_key: pattern.to_lowercase(),
        category: "idiom".into(),
        summary: format!("{pattern} in one sentence."),
        evidence: "a quote".into(),
        code: Some("let x = 1;".into()),
        line_start: 3,
        line_end: 5,
        status: status.into(),
        reason: (status == "rejected").then(|| "the evidence does not occur".into()),
    }
}

fn kb() -> Kb {
    let f1 = finding(1, 1, "notes/errors.md", "Error propagation", "accepted");
    let f2 = finding(2, 1, "notes/errors.md", "Bogus", "rejected");
    let evil = PatternRow {
        id: 2,
        key: "etc".into(),
        name: "../../etc/passwd".into(),
        category: "other".into(),
        slug: "../../etc/passwd".into(),
    };
    Kb {
        sources: vec![source(1, "notes/errors.md"), source(2, "src/lib.rs")],
        chunks: [(1, 2), (2, 1)].into_iter().collect(),
        findings: vec![f1.clone(), f2],
        patterns: vec![
            (
                PatternRow {
                    id: 1,
                    key: "error propagation".into(),
                    name: "Error propagation".into(),
                    category: "idiom".into(),
                    slug: "error-propagation".into(),
                },
                vec![f1.clone()],
                Some(
                    serde_json::json!({"summary": "Return early with ?.", "when_to_use": "Always in libraries.", "pitfalls": ""}),
                ),
            ),
            (evil, vec![f1], None),
        ],
        overview: Some("An overview.".into()),
        failures: vec![],
        notes: Default::default(),
        passages: Default::default(),
    }
}

#[test]
fn pages_cite_sources_by_file_and_line() {
    let pages = render(&kb());
    let page = pages
        .iter()
        .find(|p| p.path == Path::new("patterns/error-propagation.md"))
        .unwrap();
    insta::assert_snapshot!("pattern_page", page.text);
    assert!(page
        .text
        .contains("[`notes/errors.md:3-5`](../sources/notes/errors.md)"));
    let src = pages
        .iter()
        .find(|p| p.path == Path::new("sources/notes/errors.md"))
        .unwrap();
    insta::assert_snapshot!("source_page", src.text);
    assert!(pages
        .iter()
        .any(|p| p.path == Path::new("sources/src/lib.rs.md")));
    let index = pages
        .iter()
        .find(|p| p.path == Path::new("index.md"))
        .unwrap();
    assert!(index.text.contains("An overview."));
    let summary = pages
        .iter()
        .find(|p| p.path == Path::new("SUMMARY.md"))
        .unwrap();
    insta::assert_snapshot!("summary", summary.text);
}

#[test]
fn a_model_proposed_name_cannot_escape_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output");
    let pages = render(&kb());
    write_pages(&out, &pages).unwrap();
    for entry in walkdir::WalkDir::new(dir.path()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            assert!(
                entry.path().starts_with(&out),
                "{} escaped",
                entry.path().display()
            );
        }
    }
    assert!(out.join("patterns/etc-passwd.md").exists());
    let bad = [Page {
        path: "../x.md".into(),
        text: String::new(),
    }];
    assert!(matches!(
        write_pages(&out, &bad),
        Err(RenderError::Escape(_))
    ));
}

#[test]
fn rewriting_touches_only_what_changed_and_removes_stale_pages() {
    let dir = tempfile::tempdir().unwrap();
    let pages = render(&kb());
    let first = write_pages(dir.path(), &pages).unwrap();
    assert_eq!(first.written, pages.len());
    let again = write_pages(dir.path(), &pages).unwrap();
    assert_eq!((again.written, again.unchanged), (0, pages.len()));
    let mut fewer = kb();
    fewer.patterns.truncate(1);
    let third = write_pages(dir.path(), &render(&fewer)).unwrap();
    assert_eq!(third.removed, 1);
    assert!(!dir.path().join("patterns/etc-passwd.md").exists());
}

#[test]
fn source_pages_keep_paths_inside_sources() {
    assert_eq!(source_page("a/b.md"), "sources/a/b.md");
    assert_eq!(source_page("a/b.rs"), "sources/a/b.rs.md");
    assert_eq!(source_page("../../x.json"), "sources/x.json.md");
}

#[test]
fn prose_cannot_cite_files() {
    assert_eq!(
        prose("see [the guide](../x/guide.md) now"),
        "see the guide now"
    );
    assert_eq!(
        prose("read rustdoc-init.md, then ../a/b.rs."),
        "read rustdoc-init, then ../a/b."
    );
    assert_eq!(
        prose("an [unclosed link and a.b"),
        "an [unclosed link and a.b"
    );
    assert_eq!(prose("plain words"), "plain words");
    assert_eq!(
        prose("return Box<dyn Error> as in `Box<dyn Error>`"),
        "return Box&lt;dyn Error> as in `Box<dyn Error>`",
        "a type in prose is not an HTML tag; code spans are kept"
    );
}

#[test]
fn a_passage_is_the_authors_whole_sentence_around_the_evidence() {
    let text = "## Guards\n\nSome intro. A guard value restores the old state\nwhen it is dropped, even on panic. More text.\n\n```rust\nlet g = Guard::new();\n```\n";
    assert_eq!(
        passage(text, "A guard value restores the old state").as_deref(),
        Some("A guard value restores the old state when it is dropped, even on panic.")
    );
    assert_eq!(
        passage(text, "let g = Guard::new();"),
        None,
        "code is not prose"
    );
    let list = "- **Cow**: borrows when it can\n  and owns when it must.\n";
    assert_eq!(
        passage(list, "and owns when it must.").as_deref(),
        Some("**Cow**: borrows when it can and owns when it must.")
    );
}

#[test]
fn a_lead_that_talks_about_the_text_gives_way_to_the_authors_words() {
    let mut kb = kb();
    kb.patterns.truncate(1);
    kb.patterns[0].1[0].summary =
        "This is a list of Rust programming patterns that the text above explains.".into();
    kb.patterns[0].2 = None;
    let id = kb.patterns[0].1[0].id;
    kb.passages
        .insert(id, "Errors travel up with ? to the caller.".into());
    let pages = render(&kb);
    let page = pages
        .iter()
        .find(|p| p.path.ends_with("patterns/error-propagation.md"))
        .unwrap();
    assert!(
        page.text
            .contains("**Error propagation** (idiom): “Errors travel up with ? to the caller.”"),
        "{}",
        page.text
    );
    assert!(!page.text.contains("the text above"), "{}", page.text);
}

#[test]
fn only_prose_is_quoted_comments_of_code_and_no_records() {
    let code = "/// Restores the depth\n/// when dropped.\nimpl Drop for Indent { fn drop(&mut self) {} }\n";
    let prose = prose_of("rust", code).unwrap();
    assert_eq!(
        passage(&prose, "Restores the depth").as_deref(),
        Some("Restores the depth when dropped.")
    );
    assert_eq!(passage(&prose, "impl Drop for Indent"), None);
    assert_eq!(prose_of("json", "[0].name: x"), None);
}

#[test]
fn a_pages_category_is_its_findings_majority_and_its_example_names_it() {
    let p = PatternRow {
        id: 1,
        key: "builder".into(),
        name: "Builder".into(),
        category: "other".into(),
        slug: "builder".into(),
    };
    let mut a = finding(1, 1, "a.md", "Builder", "accepted");
    a.category = "design pattern".into();
    a.code = Some("fn new() -> Self {".into());
    let mut b = finding(2, 1, "a.md", "Builder", "accepted");
    b.category = "design pattern".into();
    b.code = Some("let c = Config::builder().port(80).build();".into());
    let mut c = finding(3, 1, "a.md", "Builder", "accepted");
    c.code = None;
    c.category = "other".into();
    let fs = vec![a, b, c];
    assert_eq!(category_of(&p, &fs), "design pattern");
    assert_eq!(
        example(&p, &fs).map(|f| f.id),
        Some(2),
        "the line naming it"
    );
}
