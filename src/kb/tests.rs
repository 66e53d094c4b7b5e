use super::*;
use crate::engine::checks::slug;

/// The pages of `kb` with the built-in templates.
fn render(kb: &Kb) -> Vec<Page> {
    super::render(kb, &Templates::builtin()).unwrap()
}

fn source(id: i64, rel: &str) -> SourceRow {
    SourceRow {
        id,
        root: "/r".into(),
        rel_path: rel.into(),
        version: 1,
        kind: Some("markdown".into()),
        status: crate::queue::SourceStatus::Active,
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
        status: status.parse().unwrap(),
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
        code_at: Default::default(),
        material: Default::default(),
        unread: Default::default(),
        related: Default::default(),
        see_also: Default::default(),
    }
}

/// A knowledge base that takes every branch of the page templates: a writer's page with
/// every field, an author's quote, aspects, rejected findings, notes of other roles, a
/// refused file, failed jobs, hostile names.
fn rich_kb() -> Kb {
    let mut kb = kb();
    let mut refused = source(3, "big <blob>.bin");
    refused.status = crate::queue::SourceStatus::Refused;
    refused.kind = None;
    refused.refusal_kind = Some("binary".into());
    refused.refusal_message = Some("holds NUL bytes\nat 0x10".into());
    kb.sources.push(refused);
    kb.sources[1].notes = vec!["read as text: not valid JSON".into()];
    kb.unread.insert(
        1,
        vec![(
            8,
            12,
            "a list of references: most of its lines are links".into(),
        )],
    );
    let mut main = finding(3, 2, "src/lib.rs", "Guard *values*", "accepted");
    main.pattern_key = "guard values".into();
    main.code = Some("impl Drop for Guard { fn drop(&mut self) {} }".into());
    let mut aspect = finding(4, 2, "src/lib.rs", "Drop [order]", "accepted");
    aspect.pattern_key = "drop order".into();
    aspect.summary = "Fields drop in declaration order, after the value itself.".into();
    aspect.evidence = "fields are dropped\nin order".into();
    let mut rejected = finding(5, 2, "src/lib.rs", "A \"quoted\" name", "rejected");
    rejected.reason = Some("not discussed in the text".into());
    kb.findings.extend([main.clone(), aspect.clone(), rejected]);
    kb.passages.insert(
        3,
        "A guard value restores the old state when it is dropped, even on panic.".into(),
    );
    kb.patterns.push((
        PatternRow {
            id: 3,
            key: "guard values".into(),
            name: "Guard *values*".into(),
            category: "idiom".into(),
            slug: "guard-values".into(),
        },
        vec![main, aspect],
        Some(serde_json::json!({
            "summary": "A guard restores state on every path out of a scope.",
            "when_to_use": "When cleanup must run even on early return or panic.",
            "pitfalls": "A guard bound to `_` drops at once; bind it to `_g`.",
        })),
    ));
    kb.notes.insert(
        2,
        vec![(
            "security".into(),
            1,
            9,
            serde_json::json!({"risk": "uses `unsafe`"}),
        )],
    );
    kb.failures = vec![FailedJob {
        id: crate::queue::JobId(17),
        role: "extractor".into(),
        stage: "extract".into(),
        state: crate::queue::JobState::Dead,
        attempts: 3,
        max_attempts: 3,
        error_kind: "invalid_reply".into(),
        error: "the reply is not JSON".into(),
        file: Some("src/lib.rs".into()),
        lines: Some((1, 9)),
    }];
    kb
}

#[test]
fn every_page_of_a_rich_kb_renders_as_before() {
    for page in render(&rich_kb()) {
        let name = page.path.to_string_lossy().replace(['/', '.'], "_");
        insta::assert_snapshot!(format!("rich_{name}"), page.text);
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
    write_pages(&out, &pages, false).unwrap();
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
    let evil = pages
        .iter()
        .find(|p| p.text.starts_with("# ../../etc/passwd"))
        .unwrap();
    assert!(
        evil.path.starts_with("patterns") && evil.path.to_string_lossy().contains("etc-passwd~"),
        "{}",
        evil.path.display()
    );
    assert!(out.join(&evil.path).exists());
    let bad = [
        Page {
            path: "../x.md".into(),
            text: String::new(),
        },
        Page {
            path: "y.md".into(),
            text: "y".into(),
        },
    ];
    let r = write_pages(&out, &bad, false).unwrap();
    assert!(matches!(r.failed[..], [RenderError::Escape(_)]), "{r:?}");
    assert!(!dir.path().join("x.md").exists());
    assert!(out.join("y.md").exists(), "the other page is written");
}

#[test]
fn rewriting_touches_only_what_changed_and_removes_stale_pages() {
    let dir = tempfile::tempdir().unwrap();
    let pages = render(&kb());
    let first = write_pages(dir.path(), &pages, false).unwrap();
    assert_eq!(first.written, pages.len());
    let again = write_pages(dir.path(), &pages, false).unwrap();
    assert_eq!((again.written, again.unchanged), (0, pages.len()));
    let mut fewer = kb();
    fewer.patterns.truncate(1);
    let third = write_pages(dir.path(), &render(&fewer), false).unwrap();
    assert_eq!(third.removed, 1);
    assert!(!dir.path().join(&pages[1].path).exists());
    assert!(third.failed.is_empty());
}

#[test]
fn source_pages_keep_paths_inside_sources() {
    assert_eq!(source_path("/r", "a/b.md", false), "sources/a/b.md");
    assert_eq!(source_path("/r", "a/b.rs", false), "sources/a/b.rs.md");
    let up = source_path("/r", "../../x.json", false);
    assert!(up.starts_with("sources/x-json~"), "{up}");
    assert!(!up.contains(".."), "{up}");
    let readme = source_path("/r", "README.md", false);
    assert!(readme.starts_with("sources/readme~"), "{readme}");
    let two = source_path("/home/me/notes", "a/b.md", true);
    assert!(
        two.starts_with("sources/notes~") && two.ends_with("/a/b.md"),
        "{two}"
    );
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
        example(&p, &fs, |_| true).map(|f| f.id),
        Some(2),
        "the line naming it"
    );
}

fn pattern(id: i64, name: &str, slug: &str) -> PatternRow {
    PatternRow {
        id,
        key: name.to_lowercase(),
        name: name.into(),
        category: "idiom".into(),
        slug: slug.into(),
    }
}

fn page<'a>(pages: &'a [Page], path: &str) -> &'a Page {
    pages
        .iter()
        .find(|p| p.path == Path::new(path))
        .unwrap_or_else(|| panic!("no page {path}"))
}

/// Every link of a markdown text: (target, text as a reader sees it).
fn links(markdown: &str) -> Vec<(String, String)> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Link { dest_url, .. }) => {
                open = Some((dest_url.to_string(), "".into()))
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((_, text)) = open.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::End(TagEnd::Link) => out.extend(open.take()),
            _ => {}
        }
    }
    out
}

/// A page path is safe: relative, inside `patterns/` or `sources/`, plain lowercase parts
/// far below 255 bytes, not hidden, a `.md` file.
fn assert_safe(path: &Path) {
    let s = path.to_str().unwrap();
    assert!(
        s.starts_with("patterns/") || s.starts_with("sources/"),
        "{s:?}"
    );
    assert!(s.ends_with(".md"), "{s:?}");
    for c in path.components() {
        let Component::Normal(part) = c else {
            panic!("{s:?}")
        };
        let part = part.to_str().unwrap();
        assert!(!part.is_empty() && part.len() <= 100, "{s:?}");
        assert!(!part.starts_with('.'), "{s:?}");
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._~-".contains(&b)),
            "{s:?}"
        );
    }
}

#[test]
fn long_pattern_names_that_differ_in_one_accented_letter_get_pages_of_their_own() {
    let a = "Returning borrowed views instead of owned copies from the café accessors of a struct";
    let b = "Returning borrowed views instead of owned copies from the cafè accessors of a struct";
    let s = slug(a);
    assert_eq!(s, slug(b), "the names sanitise alike");
    let f1 = finding(1, 1, "notes/errors.md", a, "accepted");
    let f2 = finding(2, 1, "notes/errors.md", b, "accepted");
    let mut kb = kb();
    // The store makes the second slug unique with a suffix.
    kb.patterns = vec![
        (pattern(1, a, &s), vec![f1], None),
        (pattern(2, b, &format!("{s}-2")), vec![f2], None),
    ];
    let pages = render(&kb);
    let mine: Vec<&Page> = pages
        .iter()
        .filter(|p| p.path.starts_with("patterns"))
        .collect();
    assert_eq!(mine.len(), 2);
    assert_ne!(mine[0].path, mine[1].path);
    assert!(mine[0].text.starts_with(&format!("# {a}")));
    assert!(mine[1].text.starts_with(&format!("# {b}")));
    let summary = links(&page(&pages, "SUMMARY.md").text);
    for p in &mine {
        assert!(
            summary.iter().any(|(t, _)| Path::new(t) == p.path),
            "{summary:?}"
        );
    }
}

#[test]
fn sources_whose_names_sanitise_alike_get_pages_of_their_own() {
    let mut kb = kb();
    let mut other_root = source(6, "notes/errors.md");
    other_root.root = "/elsewhere".into();
    kb.sources = vec![
        source(1, "notes/errors.md"),
        source(2, "x.txt"),
        source(3, "x.txt.md"),
        source(4, "a:b.md"),
        source(5, "a_b.md"),
        other_root,
        source(7, "Notes.md"),
        source(8, "notes.md"),
    ];
    for s in &mut kb.sources {
        s.bytes = 1000 + s.id;
    }
    // A finding of the second folder's notes/errors.md cites that file's page.
    let mut f = finding(9, 6, "notes/errors.md", "Error propagation", "accepted");
    f.line_start = 11;
    f.line_end = 12;
    kb.findings.push(f.clone());
    kb.patterns[0].1 = vec![f];
    let pages = render(&kb);
    let sources: Vec<&Page> = pages
        .iter()
        .filter(|p| p.path.starts_with("sources"))
        .collect();
    let distinct: BTreeSet<String> = sources
        .iter()
        .map(|p| p.path.to_string_lossy().to_lowercase())
        .collect();
    assert_eq!(distinct.len(), kb.sources.len(), "{distinct:?}");
    for s in &kb.sources {
        let own = sources
            .iter()
            .filter(|p| p.text.contains(&format!("({} bytes", s.bytes)))
            .count();
        assert_eq!(own, 1, "{} has a page of its own", s.rel_path);
    }
    let cited = pages
        .iter()
        .find(|p| p.path.starts_with("patterns") && p.text.contains("notes/errors.md:11-12"))
        .unwrap();
    let (target, _) = links(&cited.text)
        .into_iter()
        .find(|(_, t)| t == "notes/errors.md:11-12")
        .unwrap();
    let target = target.strip_prefix("../").unwrap();
    assert!(
        page(&pages, target).text.contains("(1006 bytes"),
        "{target}"
    );
}

#[test]
fn a_250_byte_file_name_is_rendered_and_the_pages_after_it_too() {
    let long = format!("{}.rs", "n".repeat(247));
    assert_eq!(long.len(), 250);
    let mut kb = kb();
    kb.sources.insert(0, source(3, &long));
    kb.sources.push(source(4, "zz-last.md"));
    let pages = render(&kb);
    let dir = tempfile::tempdir().unwrap();
    let r = write_pages(dir.path(), &pages, false).unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(r.written, pages.len());
    for p in &pages {
        assert!(dir.path().join(&p.path).exists(), "{}", p.path.display());
        for c in p.path.components() {
            assert!(c.as_os_str().len() <= 100, "{}", p.path.display());
        }
    }
    assert!(std::fs::read_to_string(dir.path().join("SUMMARY.md"))
        .unwrap()
        .contains("zz-last.md"));
}

#[test]
fn a_page_that_cannot_be_written_is_reported_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    write_pages(dir.path(), &render(&kb()), false).unwrap();
    // Something that is not a file where a page goes.
    let blocked = dir.path().join("sources/notes/errors.md");
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    let mut kb = kb();
    kb.overview = Some("A new overview.".into());
    kb.sources.push(source(4, "zz-last.md"));
    let r = write_pages(dir.path(), &render(&kb), false).unwrap();
    assert_eq!(r.failed.len(), 1, "{r:?}");
    assert!(
        r.failed[0].to_string().contains("sources/notes/errors.md"),
        "{}",
        r.failed[0]
    );
    assert!(std::fs::read_to_string(dir.path().join("index.md"))
        .unwrap()
        .contains("A new overview."));
    assert!(std::fs::read_to_string(dir.path().join("SUMMARY.md"))
        .unwrap()
        .contains("zz-last.md"));
    assert!(dir.path().join("sources/zz-last.md").exists());
    assert!(blocked.join("x").exists(), "what is not quarry's stays");
}

#[test]
fn any_file_name_gives_a_valid_link() {
    let names = [
        "line\nbreak.md",
        "back\\slash\\",
        "br]ack[et.md",
        "tick`s`.rs",
        "<b>bold</b>.md",
        "star*s_.md",
        "a b (c).txt",
        "tab\there.md",
        "trailing #",
        "&amp;.md",
    ];
    let mut kb = kb();
    kb.patterns.truncate(1);
    kb.sources = names
        .iter()
        .enumerate()
        .map(|(i, n)| source(i as i64 + 1, n))
        .collect();
    let mut f = finding(1, 1, names[0], "Error propagation", "accepted");
    f.line_start = 7;
    f.line_end = 8;
    kb.findings = vec![f.clone()];
    kb.patterns[0].1 = vec![f];
    let pages = render(&kb);
    let paths: BTreeSet<&Path> = pages.iter().map(|p| p.path.as_path()).collect();
    let summary = links(&page(&pages, "SUMMARY.md").text);
    for n in names {
        let shown = n.replace('\n', "\\n").replace('\t', "\\t");
        let (target, _) = summary
            .iter()
            .find(|(_, text)| *text == shown)
            .unwrap_or_else(|| panic!("no link for {n:?} in {summary:?}"));
        let p = page(&pages, target);
        let heading: String = pulldown_cmark::Parser::new(&p.text)
            .take_while(|e| !matches!(e, pulldown_cmark::Event::End(_)))
            .filter_map(|e| match e {
                pulldown_cmark::Event::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(heading, shown, "the title of {n:?}");
    }
    for p in &pages {
        let depth = p.path.components().count() - 1;
        for (target, text) in links(&p.text) {
            if target.is_empty() {
                continue;
            }
            let mut resolved = p.path.parent().unwrap().to_path_buf();
            let mut rest = target.as_str();
            for _ in 0..depth {
                if let Some(r) = rest.strip_prefix("../") {
                    rest = r;
                    resolved.pop();
                }
            }
            let resolved = resolved.join(rest);
            assert!(
                paths.contains(resolved.as_path()),
                "{}: [{text}]({target}) leads nowhere",
                p.path.display()
            );
        }
    }
    let pattern = page(&pages, "patterns/error-propagation.md");
    assert!(
        links(&pattern.text)
            .iter()
            .any(|(_, t)| t == "line\\nbreak.md:7-8"),
        "{}",
        pattern.text
    );
}

#[test]
fn a_folder_quarry_did_not_write_is_refused_and_its_files_are_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("notes");
    std::fs::create_dir_all(out.join("sources")).unwrap();
    std::fs::write(out.join("mine.md"), "my own note").unwrap();
    std::fs::write(out.join("sources/also-mine.md"), "mine too").unwrap();
    let pages = render(&kb());
    let e = write_pages(&out, &pages, false).unwrap_err();
    assert!(matches!(e, RenderError::NotOurs(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&out.display().to_string()) && msg.contains("--force") && !msg.contains('\n'),
        "{msg}"
    );
    assert!(!out.join("index.md").exists(), "nothing written");
    let r = write_pages(&out, &pages, true).unwrap();
    assert_eq!(r.removed, 0);
    assert!(out.join("index.md").exists());
    let manifest = std::fs::read_to_string(out.join(MANIFEST)).unwrap();
    assert!(manifest.lines().any(|l| l == "index.md"), "{manifest}");
    assert!(!manifest.contains("mine"), "{manifest}");
    // Now the folder is quarry's: written again without --force, stale pages go, the
    // user's files stay.
    let mut fewer = kb();
    fewer.patterns.truncate(1);
    fewer.sources.truncate(1);
    let r = write_pages(&out, &render(&fewer), false).unwrap();
    assert_eq!(r.removed, 2, "{r:?}");
    assert!(!out.join("sources/src").exists(), "an emptied folder goes");
    assert!(out.join("mine.md").exists() && out.join("sources/also-mine.md").exists());
    // An empty folder, or one that does not exist, is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(write_pages(&empty, &pages, false).is_ok());
    assert!(write_pages(&dir.path().join("new/deep"), &pages, false).is_ok());
}

mod names {
    use super::*;
    use proptest::prelude::*;

    /// Names built from parts that collide after case folding, sanitising and truncation.
    fn name() -> impl Strategy<Value = String> {
        let part = prop::sample::select(vec![
            "a",
            "A",
            "é",
            "e",
            "è",
            ":",
            "_",
            ".",
            "..",
            "/",
            "-",
            " ",
            "\n",
            "~",
            ".md",
            ".txt",
            ".MD",
            "con",
            "x",
            "lorem-ipsum-dolor-sit-amet-consectetur-adipiscing-elit-sed-do",
        ]);
        prop::collection::vec(part, 1..10).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn distinct_patterns_and_sources_get_distinct_safe_pages(
            names in prop::collection::btree_set(name(), 1..12),
            files in prop::collection::btree_set((prop::sample::select(vec!["/r", "/R", "/r/"]), name()), 1..12),
        ) {
            let mut kb = Kb::default();
            // Slugs as the store makes them: sanitised, unique with a suffix.
            let mut slugs = BTreeSet::new();
            for (i, n) in names.iter().enumerate() {
                let base = slug(n);
                let mut s = base.clone();
                let mut k = 2;
                while !slugs.insert(s.clone()) {
                    s = format!("{base}-{k}");
                    k += 1;
                }
                kb.patterns.push((pattern(i as i64, n, &s), vec![], None));
            }
            // Slugs the store never makes are kept apart too.
            for (i, n) in names.iter().enumerate() {
                if slugs.insert(n.clone()) {
                    kb.patterns.push((pattern(100 + i as i64, n, n), vec![], None));
                }
            }
            for (i, (root, rel)) in files.iter().enumerate() {
                let mut s = source(i as i64, rel);
                s.root = root.to_string();
                kb.sources.push(s);
            }
            let pages = render(&kb);
            let mut seen = BTreeSet::new();
            for p in pages.iter().filter(|p| p.path.components().count() > 1) {
                assert_safe(&p.path);
                let folded = p.path.to_string_lossy().to_lowercase();
                prop_assert!(seen.insert(folded.clone()), "{folded} twice");
            }
            prop_assert_eq!(seen.len(), kb.patterns.len() + kb.sources.len());
            // No page is where another needs a folder.
            for a in &seen {
                let dir = format!("{a}/");
                prop_assert!(!seen.iter().any(|b| b.starts_with(&dir)), "{a} is a folder too");
            }
        }
    }
}

mod page_templates {
    use super::*;

    fn user_templates(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("templates");
        std::fs::create_dir_all(&t).unwrap();
        for (name, text) in files {
            std::fs::write(t.join(name), text).unwrap();
        }
        (dir, t)
    }

    #[test]
    fn a_users_template_overrides_the_built_in_one_and_may_use_its_macros() {
        let (_dir, t) = user_templates(&[(
            "pattern.md.tera",
            "{% import \"macros.tera\" as m %}{{ title }}, my way\n{% for f in sources %}{{ m::cited(c=f) }}\n{% endfor %}",
        )]);
        let templates = Templates::load(Some(&t)).unwrap();
        let pages = crate::kb::render(&kb(), &templates).unwrap();
        assert_eq!(
            page(&pages, "patterns/error-propagation.md").text,
            "Error propagation, my way\n- [`notes/errors.md:3-5`](../sources/notes/errors.md) — \"a quote\"\n",
            "the view's values come escaped and linked"
        );
        let builtin = render(&kb());
        assert_eq!(
            page(&pages, "index.md"),
            page(&builtin, "index.md"),
            "the pages it does not override keep the built-in templates"
        );
    }

    #[test]
    fn the_written_defaults_give_the_built_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_default_templates(dir.path()).unwrap();
        assert_eq!(first.len(), crate::kb::templates::DEFAULT_TEMPLATES.len());
        assert!(write_default_templates(dir.path()).unwrap().is_empty());
        let loaded = Templates::load(Some(&dir.path().join("templates"))).unwrap();
        assert_eq!(
            crate::kb::render(&rich_kb(), &loaded).unwrap(),
            render(&rich_kb())
        );
    }

    #[test]
    fn a_broken_template_is_one_error_naming_its_file_and_line() {
        let (_dir, t) = user_templates(&[("source.md.tera", "# {{ title }}\n{% if refused %}\n")]);
        let e = Templates::load(Some(&t)).unwrap_err();
        let msg = e.to_string();
        let file = t.join("source.md.tera").display().to_string();
        assert!(matches!(e, TemplateError::Broken { .. }), "{e:?}");
        assert!(msg.contains(&file), "{msg}");
        assert!(msg.contains("3:1"), "tera's message, with the line: {msg}");
        // Importing macros that do not exist: named too.
        let (_dir, t) = user_templates(&[(
            "index.md.tera",
            "{% import \"mine.tera\" as mine %}{{ overview }}",
        )]);
        let msg = Templates::load(Some(&t)).unwrap_err().to_string();
        assert!(
            msg.contains(&t.join("index.md.tera").display().to_string())
                && msg.contains("mine.tera"),
            "{msg}"
        );
    }

    #[test]
    fn a_template_that_cannot_render_names_its_file_the_page_and_the_cause() {
        let (_dir, t) = user_templates(&[("pattern.md.tera", "# {{ title }}\n{{ nope }}\n")]);
        let templates = Templates::load(Some(&t)).unwrap();
        let e = crate::kb::render(&kb(), &templates).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&t.join("pattern.md.tera").display().to_string())
                && msg.contains("patterns/error-propagation.md")
                && msg.contains("nope"),
            "{msg}"
        );
    }
}

#[test]
fn the_stages_shown_are_found_by_what_their_roles_output() {
    let builtin = crate::agent::Agents::with_writer();
    assert_eq!(
        Stages::of(&builtin),
        Stages {
            page: Some("write".into()),
            overview: Some("synthesize".into()),
            notes: vec![],
            extract: Some("extract".into()),
        }
    );
    let dir = tempfile::tempdir().unwrap();
    let writer = crate::agent::DEFAULT_AGENTS
        .iter()
        .find(|(n, _)| *n == "writer.toml")
        .unwrap()
        .1
        .replace("stage = \"write\"", "stage = \"draft\"")
        .replace("enabled = false", "enabled = true");
    std::fs::write(dir.path().join("writer.toml"), writer).unwrap();
    let renamed = crate::agent::Agents::load(Some(dir.path()), None).unwrap();
    assert_eq!(Stages::of(&renamed).page.as_deref(), Some("draft"));
}

/// The model quoted item 2's code line for a finding at item 3's line: the example cites the
/// line the code stands at, not the finding's.
#[test]
fn a_quoted_code_line_is_cited_where_it_stands_in_its_chunk() {
    let chunk = crate::queue::store::ChunkRow {
        id: 1,
        kind: "markdown".into(),
        line_start: 10,
        line_end: 14,
        text: "1. `let a = b.take();` moves it out.\n\n2. **`impl Deref for Admin`** fakes inheritance.\n   `impl Deref for Admin` again.\n3. Mark it `#[non_exhaustive]`.".into(),
        ..Default::default()
    };
    assert_eq!(
        code_lines(&chunk, "2. **`impl Deref for Admin`**", 14),
        Some((12, 12))
    );
    // Two occurrences: the one nearest the finding's line.
    assert_eq!(
        code_lines(&chunk, "`impl Deref for Admin`", 14),
        Some((13, 13))
    );
    assert_eq!(
        code_lines(&chunk, "let a = b.take();\nmore", 10),
        Some((10, 11))
    );
    assert_eq!(code_lines(&chunk, "fn missing()", 10), None);
    assert_eq!(code_lines(&chunk, "  \n", 10), None);
    let json = crate::queue::store::ChunkRow {
        kind: "json".into(),
        ..chunk.clone()
    };
    assert_eq!(code_lines(&json, "`impl Deref for Admin`", 14), None);

    let mut kb = kb();
    let f = &mut kb.patterns[0].1[0];
    f.code = Some("2. **`impl Deref for Admin`**".into());
    let id = f.id;
    kb.code_at.insert(id, Quoted::Code(12, 12));
    let pages = render(&kb);
    let text = &page(&pages, "patterns/error-propagation.md").text;
    let example = text.split("## Example").nth(1).expect("an example");
    assert!(example.contains("notes/errors.md:12-12"), "{example}");
    // A line of the author's prose the model quoted as code is no example.
    kb.code_at.insert(id, Quoted::Prose);
    let pages = render(&kb);
    let text = &page(&pages, "patterns/error-propagation.md").text;
    assert!(!text.contains("## Example"), "{text}");
}
