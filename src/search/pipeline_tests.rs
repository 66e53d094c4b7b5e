//! Retrieval inside the pipeline, end to end with the scripted fake backend and the tiny
//! random BERT of `embed::tests` (its similarities mean nothing, so the floors are set to let
//! everything through: what these tests check is the bookkeeping and the deterministic check
//! that decides what a page cites).

use std::sync::Arc;
use std::time::Duration;

use super::pages::SeeAlso;
use super::related::Related;
use super::*;
use crate::agent::Agents;
use crate::engine::{self, RunContext};
use crate::llm::fake::{FakeBackend, Reply};
use crate::llm::{Backend, Request};
use crate::queue::store::{self, NewChunk, NewSource};
use crate::queue::{insert_jobs, NewJob, SourceStatus};

const BUILDER: &str = "# Builders\n\nA builder collects optional settings before construction.\n\n```rust\nlet c = Config::builder().port(80).build();\n```\n";
/// Another file on the same pattern, whose extraction found nothing (a small model's miss).
const MORE: &str = "# Construction\n\nThe builder keeps construction readable when there are many options.\nA builder sets one option at a time and builds the value at the end.\nSee `Config::builder`.\n";
/// A file on something else.
const ITER: &str = "# Iterators\n\nAn iterator yields items one at a time.\nIterators are lazy: adapters compose without allocating.\nSee `Iterator::map`.\n";

/// One markdown file of one chunk, with its extract job.
async fn file(q: &Queue, rel: &str, heading: &str, text: &str) {
    let mut tx = q.begin().await.unwrap();
    let src = NewSource {
        root: "/notes".into(),
        rel_path: rel.into(),
        kind: Some("markdown".into()),
        status: SourceStatus::Active,
        content_hash: Some(rel.into()),
        bytes: text.len() as i64,
        line_count: text.lines().count() as i64,
        ..Default::default()
    };
    let (sid, _) = store::insert_source(&mut tx, &src, q.now()).await.unwrap();
    let cid = store::insert_chunk(
        &mut tx,
        sid,
        &NewChunk {
            ordinal: 0,
            line_start: 1,
            line_end: text.lines().count() as i64,
            heading_path: vec![heading.to_string()],
            tokens: text.len().div_ceil(4) as i64,
            text: text.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let job = NewJob {
        role: "extractor".into(),
        stage: "extract".into(),
        input_kind: "chunk".into(),
        input_id: Some(cid),
        dedup: rel.into(),
        priority: 30,
        max_attempts: 2,
        payload: serde_json::json!({}),
        est_tokens: 100,
        depends_on: vec![],
    };
    insert_jobs(&mut tx, &[job], q.now()).await.unwrap();
    tx.commit().await.unwrap();
}

fn finding(name: &str, evidence: &str) -> String {
    serde_json::json!({"findings": [{"name": name, "category": "idiom",
        "summary": "What the notes teach.", "evidence": evidence, "code": ""}]})
    .to_string()
}

/// The extractor finds Builder in builder.md and Iterator in iter.md, nothing in more.md.
fn backend() -> Arc<FakeBackend> {
    FakeBackend::new(|req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        let text = if user.contains("does the text above really") {
            r#"{"verdict": "accept", "reason": "shown"}"#.to_string()
        } else if user.contains("Pattern: ") {
            r#"{"summary": "A builder collects settings.", "when_to_use": "Many optional settings.", "pitfalls": ""}"#.to_string()
        } else if user.contains("\"overview\"") {
            r#"{"overview": "These patterns help structure code."}"#.to_string()
        } else if user.contains("A builder collects optional settings") {
            finding(
                "Builders",
                "A builder collects optional settings before construction.",
            )
        } else if user.contains("Settings are read from") {
            finding(
                "Settings",
                "Settings are read from `Config::load` at start.",
            )
        } else if user.contains("An iterator yields items") {
            finding("Iterators", "An iterator yields items one at a time.")
        } else {
            r#"{"findings": []}"#.to_string()
        };
        Reply::Text(text)
    })
}

/// A run of the built-in roles with the writer switched on (`agents`: other roles).
async fn run(q: &Queue, backend: Arc<FakeBackend>, related: Option<Arc<Related>>) {
    run_with(q, Agents::with_writer(), backend, related).await
}

async fn run_with(
    q: &Queue,
    agents: Agents,
    backend: Arc<FakeBackend>,
    related: Option<Arc<Related>>,
) {
    let backend: Arc<dyn Backend> = backend;
    let ctx = RunContext {
        queue: q.clone(),
        agents: Arc::new(agents),
        backends: Arc::new(crate::llm::registry::Registry::fixed(
            [("default".to_string(), backend)].into(),
        )),
        workers: 2,
        owner: format!("test:{}", std::process::id()),
        timeout: Duration::from_secs(5),
        events: None,
        related,
    };
    let (_tx, rx) = tokio::sync::watch::channel(engine::Stop::Run);
    let summary = tokio::time::timeout(Duration::from_secs(60), engine::run(ctx, rx))
        .await
        .expect("the run ends by itself")
        .unwrap();
    assert_eq!(summary.jobs_dead, 0);
}

async fn three_files() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    file(&q, "notes/builder.md", "Builders", BUILDER).await;
    file(&q, "notes/more.md", "Construction", MORE).await;
    file(&q, "notes/iter.md", "Iterators", ITER).await;
    (dir, q)
}

fn related(e: Embedder) -> Option<Arc<Related>> {
    Some(Arc::new(Related {
        embedder: Arc::new(e),
        batch: 4,
        per_pattern: 3,
        min_similarity: -1.0,
        events: None,
    }))
}

fn writer_prompts(b: &FakeBackend) -> Vec<String> {
    b.requests()
        .into_iter()
        .map(|r| r.messages.last().unwrap().content.clone())
        .filter(|u| u.starts_with("Pattern: "))
        .collect()
}

async fn render(q: &Queue, see: Option<SeeAlso<'_>>) -> (tempfile::TempDir, String, String) {
    let out = tempfile::tempdir().unwrap();
    let agents = Agents::with_writer();
    crate::cmd::render_with(
        q,
        &agents,
        &crate::kb::Templates::builtin(),
        out.path(),
        false,
        see,
    )
    .await
    .unwrap();
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap();
    let (builder, iter) = (read("patterns/builders.md"), read("patterns/iterators.md"));
    (out, builder, iter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_in_two_files_gets_one_page_citing_both_and_an_unrelated_file_is_not_cited() {
    let (_d, q) = three_files().await;
    let (e, _) = embed::tests::tiny();
    let b = backend();
    run(&q, b.clone(), related(e)).await;
    assert_eq!(q.patterns().await.unwrap().len(), 2);

    // Both other files were near enough (the floor lets all through) and are recorded; only
    // the one that discusses the builder by name is cited.
    let rows = q.related(None).await.unwrap();
    let builder = q.pattern_id("builder").await.unwrap().unwrap();
    let of_builder: Vec<_> = rows.iter().filter(|r| r.pattern_id == builder).collect();
    assert_eq!(of_builder.len(), 2, "{rows:?}");
    let cited: Vec<&str> = of_builder
        .iter()
        .filter(|r| r.cited)
        .map(|r| r.rel_path.as_str())
        .collect();
    assert_eq!(cited, ["notes/more.md"], "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.rel_path != "notes/iter.md" || !r.cited),
        "{rows:?}"
    );

    // The writer heard what the other file says, and nothing of the unrelated one.
    let prompts = writer_prompts(&b);
    let p = prompts
        .iter()
        .find(|p| p.starts_with("Pattern: Builders"))
        .unwrap();
    assert!(
        p.contains("notes/more.md line 3: \"The builder keeps construction readable"),
        "{p}"
    );
    assert!(!p.contains("iter.md"), "{p}");

    // The synthesizer hears which patterns were found near each other: the chunks retrieval
    // put near Builders hold the Iterators finding, and the other way round.
    let overview = b
        .requests()
        .into_iter()
        .map(|r| r.messages.last().unwrap().content.clone())
        .find(|u| u.contains("\"overview\""))
        .expect("a synthesizer request");
    assert!(
        overview.contains(
            "- Builders (idiom): A builder collects settings. Discussed near: Iterators."
        ),
        "{overview}"
    );
    assert!(
        overview
            .contains("Iterators (idiom): A builder collects settings. Discussed near: Builders."),
        "{overview}"
    );

    let (_out, page, iter_page) = render(&q, None).await;
    assert!(page.contains("`notes/builder.md:3-3`"), "{page}");
    assert!(page.contains("`notes/more.md:3-3`"), "{page}");
    assert!(!page.contains("iter.md"), "{page}");
    assert!(!iter_page.contains("more.md"), "{iter_page}");
    assert!(
        !page.contains("## See also"),
        "no page vectors, no links: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn see_also_links_the_near_pages_and_search_finds_pages() {
    let (_d, q) = three_files().await;
    let (e, _) = embed::tests::tiny();
    run(&q, backend(), None).await;
    let see = SeeAlso {
        embedder: &e,
        batch: 4,
        k: 3,
        min_similarity: -1.0,
    };
    let (_out, builder, iter) = render(&q, Some(see)).await;
    assert!(
        builder.contains("## See also\n\n- [Iterators](../patterns/iterators.md)"),
        "{builder}"
    );
    assert!(
        iter.contains("- [Builders](../patterns/builders.md)"),
        "{iter}"
    );
    let stored = q.page_vectors("tiny", 16).await.unwrap();
    // One vector a page; pattern ids follow the order the workers finished in.
    let mut paths: Vec<&str> = stored.iter().map(|v| v.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["patterns/builders.md", "patterns/iterators.md"]);
    // A floor above any similarity: no links.
    let (_out, builder, _) = render(
        &q,
        Some(SeeAlso {
            min_similarity: 1.01,
            ..see
        }),
    )
    .await;
    assert!(!builder.contains("See also"), "{builder}");
    // Pages are searched like chunks.
    let qv = e.embed_batch(&["builder"]).unwrap().pop().unwrap();
    let hits = pages::search(&q, &e, &qv, 3, -1.0).await.unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().any(|h| h.title == "Builders"));
    // Another model's page vectors are dropped, never mixed.
    let other = embed::tests::tiny().0.with_name("other");
    let see = SeeAlso {
        embedder: &other,
        ..see
    };
    render(&q, Some(see)).await;
    assert!(q.page_vectors("tiny", 16).await.unwrap().is_empty());
    assert_eq!(q.page_vectors("other", 16).await.unwrap().len(), 2);
}

/// A file that names the builder but is about another pattern, found there.
const SETTINGS: &str = "# Settings\n\nSettings are read from `Config::load` at start.\nThe builder is how tests set them.\nA builder sets one option at a time.\nSettings are then frozen.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_related_chunk_with_findings_of_its_own_is_not_cited_on_another_page() {
    let (_d, q) = three_files().await;
    file(&q, "notes/settings.md", "Settings", SETTINGS).await;
    let (e, _) = embed::tests::tiny();
    run(&q, backend(), related(e)).await;
    let builder = q.pattern_id("builder").await.unwrap().unwrap();
    let rows: Vec<_> = q
        .related(Some(builder))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.rel_path, r.cited))
        .collect();
    // settings.md names the builder and discusses it (two lines), yet its chunk is the
    // Settings page's material: stored as near, not cited; more.md, where extraction found
    // nothing, is cited.
    assert!(
        rows.contains(&("notes/settings.md".to_string(), false)),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("notes/more.md".to_string(), true)),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_embedding_model_the_pipeline_runs_and_pages_cite_their_own_files() {
    let (_d, q) = three_files().await;
    // The model folder is missing: the run is told so once and goes on without retrieval.
    let mut cfg = crate::config::Config::default();
    cfg.search.embedding_model = "/nonexistent/all-MiniLM-L6-v2".into();
    assert!(crate::cmd::pipeline_embedder(&cfg).is_none());
    let b = backend();
    run(&q, b.clone(), None).await;
    assert!(q.related(None).await.unwrap().is_empty());
    let prompts = writer_prompts(&b);
    assert_eq!(prompts.len(), 2);
    assert!(
        b.requests().iter().all(|r| !r
            .messages
            .last()
            .unwrap()
            .content
            .contains("Discussed near")),
        "without retrieval the synthesizer hears of no relation"
    );
    assert!(
        prompts.iter().all(|p| !p.contains("more.md")),
        "{prompts:?}"
    );
    let (_out, page, _) = render(&q, None).await;
    assert!(page.contains("`notes/builder.md:3-3`"), "{page}");
    assert!(!page.contains("more.md"), "{page}");
}

/// The writer is off by default: the planner still looks up the files near each pattern, its
/// page cites the one that discusses it, and the overview is written once the patterns are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_writer_pages_cite_related_files_and_the_overview_is_written() {
    let (_d, q) = three_files().await;
    let (e, _) = embed::tests::tiny();
    let b = backend();
    let agents = Agents::load(None, None).unwrap();
    assert!(
        agents.role("writer").is_err(),
        "the writer is off by default"
    );
    run_with(&q, agents, b.clone(), related(e)).await;
    assert!(writer_prompts(&b).is_empty());
    assert!(
        b.requests()
            .iter()
            .any(|r| r.messages.last().unwrap().content.contains("\"overview\"")),
        "the synthesizer ran without the writer"
    );
    let builder = q.pattern_id("builder").await.unwrap().unwrap();
    let cited: Vec<String> = q
        .related(Some(builder))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.cited)
        .map(|r| r.rel_path)
        .collect();
    assert_eq!(cited, ["notes/more.md"]);
    let (_out, page, _) = render(&q, None).await;
    assert!(page.contains("`notes/more.md:3-3`"), "{page}");
}

/// A writer whose `related` is 0 hears of no other file; the planner's lookup (`[search]
/// related`) still serves the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_with_related_0_hears_of_no_other_file() {
    let (_d, q) = three_files().await;
    let dir = tempfile::tempdir().unwrap();
    let writer = crate::agent::DEFAULT_AGENTS
        .iter()
        .find(|(n, _)| *n == "writer.toml")
        .unwrap()
        .1
        .replace("related = 3", "related = 0")
        .replace("enabled = false", "enabled = true");
    assert!(writer.contains("related = 0") && writer.contains("enabled = true"));
    std::fs::write(dir.path().join("writer.toml"), writer).unwrap();
    let (e, _) = embed::tests::tiny();
    let b = backend();
    let agents = Agents::load(Some(dir.path()), None).unwrap();
    assert_eq!(agents.role("writer").unwrap().spec.related, 0);
    run_with(&q, agents, b.clone(), related(e)).await;
    let prompts = writer_prompts(&b);
    assert_eq!(prompts.len(), 2);
    assert!(
        prompts.iter().all(|p| !p.contains("more.md")),
        "{prompts:?}"
    );
    let (_out, page, _) = render(&q, None).await;
    assert!(page.contains("`notes/more.md:3-3`"), "{page}");
}
