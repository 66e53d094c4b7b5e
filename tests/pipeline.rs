//! The pipeline with the scripted fake backend: what each stage does with good, bad and
//! hostile replies, and how failures end.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod common;

use quarry::agent::Agents;
use quarry::engine::{self, Backends, RunContext};
use quarry::llm::fake::{FakeBackend, Reply};
use quarry::llm::{Backend, Request};
use quarry::queue::{insert_jobs, Backoff, JobState, NewJob, Queue, QueueOptions};

const CHUNK: &str = "# Builders\n\nA builder collects optional settings before construction.\n\n```rust\nlet c = Config::builder().port(80).build();\n```\n";

struct Setup {
    q: Queue,
    _dir: tempfile::TempDir,
}

async fn setup(chunks: usize, max_attempts: i64) -> Setup {
    setup_text(chunks, max_attempts, CHUNK).await
}

/// `chunks` chunks of `text` in one markdown file, one extract job each.
async fn setup_text(chunks: usize, max_attempts: i64, text: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open_with(
        &dir.path().join("q.db"),
        true,
        quarry::queue::system_clock(),
        QueueOptions {
            lease: Duration::from_secs(30),
            backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_millis(40),
            },
        },
    )
    .await
    .unwrap();
    common::Seed {
        root: "/r",
        rel_path: "notes/builder.md",
        heading: &["Builders"],
        chunks: (0..chunks).map(|_| (text.to_string(), 1, 7)).collect(),
        priority: 30,
        max_attempts,
    }
    .insert(&q)
    .await;
    Setup { q, _dir: dir }
}

fn finding(name: &str, evidence: &str) -> String {
    serde_json::json!({"findings": [{"name": name, "category": "design pattern",
        "summary": "Collects settings, then builds.", "evidence": evidence,
        "code": "let c = Config::builder().port(80).build();"}]})
    .to_string()
}

const ACCEPT: &str = r#"{"verdict": "accept", "reason": "the text shows it"}"#;
const PAGE: &str = r#"{"summary": "A builder collects settings.", "when_to_use": "Many optional settings.", "pitfalls": ""}"#;
const OVERVIEW: &str = r#"{"overview": "These patterns help structure construction."}"#;

/// Answers by role, recognised from the prompt's task line. `extract` is given the number of
/// extract calls before this one (not of all calls: other roles' calls interleave with the
/// extractor's in an order the scheduler picks, and a script must not depend on it).
fn by_role(extract: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Arc<FakeBackend> {
    let extracts = std::sync::atomic::AtomicUsize::new(0);
    FakeBackend::new(move |req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("does the text above really") {
            Reply::Text(ACCEPT.into())
        } else if user.contains("Pattern: ") {
            Reply::Text(PAGE.into())
        } else if user.contains("\"overview\"") {
            Reply::Text(OVERVIEW.into())
        } else {
            extract(extracts.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        }
    })
}

async fn run(
    q: &Queue,
    agents: Agents,
    backend: Arc<dyn Backend>,
    timeout: Duration,
) -> engine::RunSummary {
    let backends: Backends = std::sync::Arc::new(quarry::llm::registry::Registry::fixed(
        [("default".to_string(), backend)].into(),
    ));
    let ctx = RunContext {
        queue: q.clone(),
        agents: Arc::new(agents),
        backends,
        workers: 3,
        owner: format!("test:{}", std::process::id()),
        timeout,
        events: None,
        related: None,
    };
    let (_tx, rx) = tokio::sync::watch::channel(quarry::engine::Stop::Run);
    tokio::time::timeout(Duration::from_secs(60), engine::run(ctx, rx))
        .await
        .expect("the run ends by itself")
        .unwrap()
}

async fn states(q: &Queue, stage: &str) -> Vec<(JobState, i64)> {
    q.counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.stage == stage)
        .map(|c| (c.state, c.jobs))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_replies_flow_through_every_stage_to_cited_pages() {
    let s = setup(2, 3).await;
    let backend = by_role(|_| {
        Reply::Text(finding(
            "Builder",
            "A builder collects optional settings before construction.",
        ))
    });
    // Every stage, the validator and the writer (off by default) switched on by two-line
    // files.
    let agents_dir = tempfile::tempdir().unwrap();
    for role in ["validator", "writer"] {
        std::fs::write(
            agents_dir.path().join(format!("{role}.toml")),
            format!("name = \"{role}\"\nenabled = true\n"),
        )
        .unwrap();
    }
    let summary = run(
        &s.q,
        Agents::load(Some(agents_dir.path()), None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 0);
    for stage in ["extract", "validate", "write", "synthesize"] {
        let st = states(&s.q, stage).await;
        assert!(
            !st.is_empty() && st.iter().all(|(state, _)| *state == JobState::Done),
            "{stage}: {st:?}"
        );
    }
    let patterns = s.q.patterns().await.unwrap();
    assert_eq!(patterns.len(), 1, "two chunks naming one pattern meet");
    let out = tempfile::tempdir().unwrap();
    let agents = Agents::load(Some(agents_dir.path()), None).unwrap();
    quarry::cmd::render(&s.q, &agents, out.path())
        .await
        .unwrap();
    let page = std::fs::read_to_string(out.path().join("patterns/builder.md")).unwrap();
    assert!(page.contains("`notes/builder.md:3-3`"), "{page}");
    assert!(
        page.contains("let c = Config::builder().port(80).build();"),
        "{page}"
    );
    let index = std::fs::read_to_string(out.path().join("index.md")).unwrap();
    assert!(index.contains("These patterns help"), "{index}");
}

/// The validator is off by default because its advisory verdict changes no page: the same
/// replies render the same knowledge base with and without it, and without it no validate
/// job runs (its tokens are saved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advisory_validator_changes_no_page_and_is_off_by_default() {
    let agents_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        agents_dir.path().join("on.toml"),
        "name = \"validator\"\nenabled = true\n",
    )
    .unwrap();
    let mut kbs = Vec::new();
    for with_validator in [false, true] {
        let s = setup(3, 3).await;
        let backend = by_role(|n| {
            Reply::Text(finding(
                ["Builder", "Builder", "Newtype"][n % 3],
                "A builder collects optional settings before construction.",
            ))
        });
        let agents = || Agents::load(with_validator.then(|| agents_dir.path()), None).unwrap();
        let summary = run(&s.q, agents(), backend.clone(), Duration::from_secs(5)).await;
        assert_eq!(summary.jobs_dead, 0);
        let validations = states(&s.q, "validate").await;
        assert_eq!(!validations.is_empty(), with_validator, "{validations:?}");
        let out = tempfile::tempdir().unwrap();
        quarry::cmd::render(&s.q, &agents(), out.path())
            .await
            .unwrap();
        let mut pages = Vec::new();
        for e in walkdir::WalkDir::new(out.path()).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(out.path()).unwrap().to_owned();
                pages.push((rel, std::fs::read_to_string(e.path()).unwrap()));
            }
        }
        assert!(
            pages
                .iter()
                .any(|(n, _)| n.ends_with("patterns/builder.md")),
            "{pages:?}"
        );
        kbs.push(pages);
    }
    assert_eq!(kbs[0], kbs[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_writer_stage_still_reaches_the_page_and_the_overview() {
    let s = setup(1, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let writer = quarry::agent::DEFAULT_AGENTS
        .iter()
        .find(|(n, _)| *n == "writer.toml")
        .unwrap()
        .1
        .replace("stage = \"write\"", "stage = \"draft\"")
        .replace("enabled = false", "enabled = true");
    assert!(writer.contains("\"draft\""));
    std::fs::write(dir.path().join("writer.toml"), writer).unwrap();
    let agents = || Agents::load(Some(dir.path()), None).unwrap();
    let backend = by_role(|_| {
        Reply::Text(finding(
            "Builder",
            "A builder collects optional settings before construction.",
        ))
    });
    let summary = run(&s.q, agents(), backend.clone(), Duration::from_secs(5)).await;
    assert_eq!(summary.jobs_dead, 0);
    assert!(states(&s.q, "write").await.is_empty());
    assert_eq!(states(&s.q, "draft").await, vec![(JobState::Done, 1)]);
    let synth = backend
        .requests()
        .into_iter()
        .map(|r| r.messages.last().unwrap().content.clone())
        .find(|u| u.contains("\"overview\""))
        .expect("the synthesizer ran");
    assert!(
        synth.contains("A builder collects settings."),
        "the synthesizer reads the writer's summary: {synth}"
    );
    let out = tempfile::tempdir().unwrap();
    quarry::cmd::render(&s.q, &agents(), out.path())
        .await
        .unwrap();
    let page = std::fs::read_to_string(out.path().join("patterns/builder.md")).unwrap();
    assert!(
        page.contains("A builder collects settings.") && page.contains("Many optional settings."),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_evidence_is_rejected_with_its_reason_and_code_is_never_invented() {
    let s = setup(1, 3).await;
    let reply = serde_json::json!({"findings": [
        {"name": "Builder", "category": "idiom", "summary": "Builds things step by step.", "evidence": "Builders are always faster than constructors", "code": "unsafe { magic() }"},
        {"name": "Rust", "category": "idiom", "summary": "The language itself, really.", "evidence": "A builder collects optional settings"}]});
    let backend = by_role(move |_| Reply::Text(reply.to_string()));
    run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    let findings = s.q.current_findings().await.unwrap();
    assert_eq!(findings.len(), 2);
    assert!(
        findings
            .iter()
            .all(|f| f.status == quarry::queue::FindingStatus::Rejected),
        "{findings:?}"
    );
    assert!(findings[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("does not occur"));
    assert!(findings[1].reason.as_deref().unwrap().contains("generic"));
    assert!(findings[0].code.is_none(), "invented code is dropped");
    assert!(s.q.patterns().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_all_rejected_get_one_more_round_with_the_reasons() {
    let s = setup(1, 3).await;
    let agents_dir = tempfile::tempdir().unwrap();
    let extractor = include_str!("../agents/extractor.toml")
        .replace("feedback_rounds = 0", "feedback_rounds = 1");
    std::fs::write(agents_dir.path().join("extractor.toml"), extractor).unwrap();
    let backend = by_role(|n| {
        Reply::Text(if n == 0 {
            finding(
                "Fantasy",
                "A builder collects optional settings before construction.",
            )
        } else {
            finding(
                "Builder",
                "A builder collects optional settings before construction.",
            )
        })
    });
    run(
        &s.q,
        Agents::load(Some(agents_dir.path()), None).unwrap(),
        backend.clone(),
        Duration::from_secs(5),
    )
    .await;
    let findings = s.q.current_findings().await.unwrap();
    let got: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.pattern.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(got, [("Fantasy", "rejected"), ("Builder", "accepted")]);
    let second = &backend.requests()[1].messages;
    let feedback = &second.last().unwrap().content;
    assert!(
        feedback.contains("\"Fantasy\"") && feedback.contains("not grounded"),
        "{feedback}"
    );
    assert_eq!(second[second.len() - 2].role, "assistant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_one_repair_then_fails_with_the_reply_kept() {
    let s = setup(1, 2).await;
    let backend = by_role(|_| Reply::Text("I think the answer is builder!".into()));
    let summary = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend.clone(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 1);
    let failed = s.q.failures().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].error_kind, "invalid_output");
    assert_eq!(failed[0].file.as_deref(), Some("notes/builder.md"));
    // Two attempts, each with one repair request that feeds the error back.
    assert_eq!(backend.calls(), 4);
    let repair = &backend.requests()[1];
    assert!(repair.messages.last().unwrap().content.contains("invalid"));
    assert!(
        s.q.current_findings().await.unwrap().is_empty(),
        "a failed chunk yields nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_transient_permanent_panic_and_hang() {
    // Transient error once: done on attempt 2.
    let s = setup(1, 3).await;
    let backend = by_role(|n| {
        if n == 0 {
            Reply::Fail("busy".into())
        } else {
            Reply::Text(finding(
                "Builder",
                "A builder collects optional settings before construction.",
            ))
        }
    });
    let sum = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((sum.jobs_failed, sum.jobs_dead), (1, 0));
    assert_eq!(states(&s.q, "extract").await, vec![(JobState::Done, 1)]);

    // Always failing: dead after max attempts.
    let s = setup(1, 3).await;
    let sum = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        by_role(|_| Reply::Fail("down".into())),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((sum.jobs_failed, sum.jobs_dead), (2, 1));
    assert_eq!(s.q.failures().await.unwrap()[0].attempts, 3);

    // A panicking handler is a failed attempt, not a crashed run.
    let s = setup(1, 3).await;
    let backend = by_role(|n| {
        if n == 0 {
            Reply::Panic
        } else {
            Reply::Text(finding(
                "Builder",
                "A builder collects optional settings before construction.",
            ))
        }
    });
    let sum = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!((sum.jobs_failed, sum.jobs_dead), (1, 0));

    // A hung generation times out and is retried.
    let s = setup(1, 2).await;
    let backend = by_role(|_| Reply::Stall);
    let sum = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(sum.jobs_dead, 1);
    assert_eq!(s.q.failures().await.unwrap()[0].error_kind, "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_added_from_a_file_runs_over_every_chunk() {
    let s = setup(2, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (agents_dir, prompts_dir) = (dir.path().join("agents"), dir.path().join("prompts"));
    std::fs::create_dir_all(&agents_dir).unwrap();
    std::fs::create_dir_all(&prompts_dir).unwrap();
    std::fs::write(agents_dir.join("reviewer.toml"), "name = \"reviewer\"\ninput = \"chunk\"\noutput = \"notes\"\nprompt = \"reviewer.tera\"\nschema = '{\"type\":\"object\",\"properties\":{\"risky\":{\"type\":\"boolean\"}},\"required\":[\"risky\"]}'\n").unwrap();
    std::fs::write(
        prompts_dir.join("reviewer.tera"),
        "{{ chunk.text }}\nSECURITY REVIEW: is it risky?",
    )
    .unwrap();
    let agents = Agents::load(Some(&agents_dir), Some(&prompts_dir)).unwrap();
    // The reviewer's jobs, as `enqueue` would create them for each chunk.
    let mut tx = s.q.begin().await.unwrap();
    let jobs: Vec<NewJob> = (1..=2)
        .map(|cid| NewJob {
            role: "reviewer".into(),
            stage: "reviewer".into(),
            input_kind: "chunk".into(),
            input_id: Some(cid),
            dedup: format!("rev{cid}"),
            priority: 0,
            max_attempts: 3,
            payload: serde_json::json!({}),
            est_tokens: 10,
            depends_on: vec![],
        })
        .collect();
    insert_jobs(&mut tx, &jobs, s.q.now()).await.unwrap();
    tx.commit().await.unwrap();
    let backend = FakeBackend::new(|req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("SECURITY REVIEW") {
            Reply::Text(r#"{"risky": false}"#.into())
        } else {
            Reply::Text(r#"{"findings": []}"#.into())
        }
    });
    run(&s.q, agents, backend, Duration::from_secs(5)).await;
    assert_eq!(states(&s.q, "reviewer").await, vec![(JobState::Done, 2)]);
    let out = tempfile::tempdir().unwrap();
    let agents = Agents::load(Some(&agents_dir), Some(&prompts_dir)).unwrap();
    quarry::cmd::render(&s.q, &agents, out.path())
        .await
        .unwrap();
    let page = std::fs::read_to_string(out.path().join("sources/notes/builder.md")).unwrap();
    assert!(page.contains("reviewer, lines 1-7"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pattern_names_land_inside_output() {
    // A note that discusses the reserved device name, so the finding is accepted.
    let text = format!(
        "{CHUNK}\nCON is a reserved device name on Windows.\nA file called CON cannot be opened.\n"
    );
    let s = setup_text(1, 3, &text).await;
    let backend = by_role(|_| {
        Reply::Text(
            serde_json::json!({"findings": [
                {"name": "../../builder/settings", "category": "idiom", "summary": "A path, not a pattern.", "evidence": "A builder collects optional settings"},
                {"name": "CON", "category": "idiom", "summary": "A reserved device name.", "evidence": "A builder collects optional settings"}]})
            .to_string(),
        )
    });
    run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("output");
    quarry::cmd::render(&s.q, &Agents::load(None, None).unwrap(), &out)
        .await
        .unwrap();
    let files: Vec<_> = walkdir::WalkDir::new(root.path())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(files.iter().all(|f| f.starts_with(&out)), "{files:?}");
    assert!(
        out.join("patterns/builder-settings.md").exists(),
        "{files:?}"
    );
    assert!(out.join("patterns/con-pattern.md").exists(), "{files:?}");
    assert!(!Path::new("/etc/passwd.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_without_terms_is_not_sent_to_the_extractor() {
    let s = setup(0, 3).await;
    common::Seed {
        root: "/r",
        rel_path: "notes/diary.md",
        heading: &[],
        chunks: vec![("went for a walk, then read a while and slept.".into(), 1, 1)],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    let backend = by_role(|_| Reply::Text(finding("Walk", "went for a walk")));
    run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend.clone(),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(backend.calls(), 0, "the model was asked");
    assert_eq!(states(&s.q, "extract").await, [(JobState::Done, 1)]);
    assert!(s.q.current_findings().await.unwrap().is_empty());
}

/// One finding without code, its evidence a sentence of the chunk.
fn plain_finding(name: &str, evidence: &str) -> Reply {
    Reply::Text(
        serde_json::json!({"findings": [{"name": name, "category": "idiom",
            "summary": "What the text teaches.", "evidence": evidence, "code": ""}]})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_documents_main_pattern_takes_its_other_names_as_sections() {
    let s = setup(0, 3).await;
    // A chapter: its title is the pattern most of its chunks name; a section's name is a part.
    common::Seed {
        root: "/r",
        rel_path: "guide/errors.md",
        heading: &["Error handling"],
        chunks: vec![
            (
                "# Error handling\n\nError handling gathers every failure in one type.\nSee `Result<T, Error>`.\n".into(),
                1,
                3,
            ),
            (
                "## Flat enums\n\nFlat enums give each failure a number.\n".into(),
                5,
                7,
            ),
            (
                "## Example\n\nError handling keeps callers simple.\n".into(),
                9,
                11,
            ),
        ],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    // Notes: every section is a topic of its own (none is "Example" or the like), so the
    // title names the collection even where it is found most often; the topics keep pages.
    common::Seed {
        root: "/r",
        rel_path: "notes/iterators.md",
        heading: &["Iterator tricks"],
        chunks: vec![
            (
                "# Iterator tricks\n\nIterator tricks collected this month.\nSee `Iterator::fold`.\n".into(),
                1,
                3,
            ),
            (
                "## Folding\n\nFolding sums a list in one expression.\n".into(),
                5,
                7,
            ),
            (
                "## Zipping\n\nIterator tricks also cover zipping two lists.\n".into(),
                9,
                11,
            ),
        ],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    let backend = FakeBackend::new(|req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("does the text above really") {
            return Reply::Text(ACCEPT.into());
        } else if user.contains("Pattern: ") {
            return Reply::Text(PAGE.into());
        } else if user.contains("\"overview\"") {
            return Reply::Text(OVERVIEW.into());
        }
        let (name, sentence) = [
            (
                "Error handling",
                "Error handling gathers every failure in one type.",
            ),
            ("Flat enums", "Flat enums give each failure a number."),
            ("Error handling", "Error handling keeps callers simple."),
            ("Iterator tricks", "Iterator tricks collected this month."),
            ("Folding", "Folding sums a list in one expression."),
            (
                "Iterator tricks",
                "Iterator tricks also cover zipping two lists.",
            ),
        ]
        .into_iter()
        .find(|(_, s)| user.contains(s))
        .expect("a known chunk");
        plain_finding(name, sentence)
    });
    let summary = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 0);
    let mut names: Vec<String> =
        s.q.patterns()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
    names.sort();
    assert_eq!(names, ["Error handling", "Folding", "Iterator tricks"]);
    let out = tempfile::tempdir().unwrap();
    quarry::cmd::render(&s.q, &Agents::load(None, None).unwrap(), out.path())
        .await
        .unwrap();
    let page = std::fs::read_to_string(out.path().join("patterns/error-handling.md")).unwrap();
    let part = page
        .find("## Flat enums")
        .expect("the part is a section of the page");
    assert!(
        page[part..].contains("`guide/errors.md:7-7`"),
        "the section cites its lines: {page}"
    );
    assert!(!out.path().join("patterns/flat-enums.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_of_a_title_meet_on_its_page_and_a_subject_of_its_own_keeps_one() {
    let s = setup(0, 3).await;
    // The title's name is found once, its variant twice: the title has no majority, yet the
    // variant ("Default Constructors"), a name found in the variant's section ("Default
    // trait") and one in its discussion ("Builders") are sections of its page; a section on
    // another subject ("Field init shorthand") keeps a page of its own.
    let chunks = [
        (
            vec!["Constructors"],
            "# Constructors\n\nConstructors are associated functions named `new`.\n",
        ),
        (
            vec!["Constructors", "Default Constructors"],
            "## Default Constructors\n\nDefault constructors come from `Default::default()`.\n",
        ),
        (
            vec!["Constructors", "Default Constructors"],
            "Default constructors let `#[derive(Default)]` work.\n",
        ),
        (
            vec!["Constructors", "Default Constructors"],
            "The Default trait gives a value through `T::default()`.\n",
        ),
        (
            vec!["Constructors", "Field init shorthand"],
            "## Field init shorthand\n\nField init shorthand writes `Point { x, y }`.\n",
        ),
        (
            vec!["Constructors", "Discussion"],
            "## Discussion\n\nBuilders replace `new` when there are many options.\nBuilders name each option they set.\n",
        ),
    ];
    common::Seed {
        root: "/r",
        rel_path: "idioms/ctor.md",
        heading: &[],
        chunks: chunks
            .iter()
            .enumerate()
            .map(|(i, (_, t))| (t.to_string(), 4 * i as i64 + 1, 4 * i as i64 + 3))
            .collect(),
        priority: 30,
        max_attempts: 3,
    }
    .insert_with_paths(
        &s.q,
        &chunks.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
    )
    .await;
    // A title made of two names, neither found under the title's own name: the most found
    // (the first on a tie) is the page, the other its section.
    common::Seed {
        root: "/r",
        rel_path: "idioms/mem.md",
        heading: &["`mem::{take(_), replace(_)}` to keep owned values in changed enums"],
        chunks: vec![
            ("# `mem::{take(_), replace(_)}` to keep owned values in changed enums\n\nUse `mem::take` to move a value out of a `&mut` reference, leaving its default.\n".into(), 1, 3),
            ("## Discussion\n\nWith `mem::replace` you choose the value left behind.\n".into(), 5, 7),
        ],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    let backend = FakeBackend::new(|req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("does the text above really") {
            return Reply::Text(ACCEPT.into());
        } else if user.contains("Pattern: ") {
            return Reply::Text(PAGE.into());
        } else if user.contains("\"overview\"") {
            return Reply::Text(OVERVIEW.into());
        }
        let (name, sentence) = [
            (
                "Constructors",
                "Constructors are associated functions named `new`.",
            ),
            (
                "Default Constructors",
                "Default constructors come from `Default::default()`.",
            ),
            (
                "Default Constructors",
                "Default constructors let `#[derive(Default)]` work.",
            ),
            (
                "Default trait",
                "The Default trait gives a value through `T::default()`.",
            ),
            (
                "Field init shorthand",
                "Field init shorthand writes `Point { x, y }`.",
            ),
            (
                "Builders",
                "Builders replace `new` when there are many options.",
            ),
            (
                "mem::take",
                "Use `mem::take` to move a value out of a `&mut` reference, leaving its default.",
            ),
            (
                "mem::replace",
                "With `mem::replace` you choose the value left behind.",
            ),
        ]
        .into_iter()
        .find(|(_, s)| user.contains(s))
        .expect("a known chunk");
        plain_finding(name, sentence)
    });
    let summary = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 0);
    let rejected: Vec<_> =
        s.q.current_findings()
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.status != quarry::queue::FindingStatus::Accepted)
            .map(|f| (f.pattern, f.reason))
            .collect();
    assert!(
        rejected.is_empty(),
        "the fixture's names pass the checks: {rejected:?}"
    );
    let mut names: Vec<String> =
        s.q.patterns()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
    names.sort();
    assert_eq!(names, ["Constructors", "Field init shorthand", "mem::take"]);
    let out = tempfile::tempdir().unwrap();
    quarry::cmd::render(&s.q, &Agents::load(None, None).unwrap(), out.path())
        .await
        .unwrap();
    let page = std::fs::read_to_string(out.path().join("patterns/constructors.md")).unwrap();
    for section in ["## Default Constructors", "## Default trait", "## Builders"] {
        assert!(page.contains(section), "{section} is a section: {page}");
    }
    assert!(!page.contains("Field init"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_numbered_item_that_shows_rust_keeps_its_page_though_the_title_is_found_most() {
    let s = setup(0, 3).await;
    // A post of numbered misconceptions: its title is the name found most (intro, a step,
    // conclusion), yet each item whose section shows Rust code is a subject of its own, with
    // the other names of its section; a numbered step with no code, named after its heading,
    // is part of the post.
    let chunks = [
        (
            vec!["Common misconceptions"],
            "# Common misconceptions\n\nCommon misconceptions trip up every beginner.\n",
        ),
        (
            vec!["Common misconceptions", "1) Clones are slow"],
            "### 1) Clones are slow\n\nCloning an `Rc` only bumps a count.\n\n```rust\nlet b = Rc::clone(&a);\n```\n",
        ),
        (
            vec!["Common misconceptions", "2) Boxes are slow"],
            "### 2) Boxes are slow\n\nA box is one allocation.\n\n```rust\nlet b: Box<u8> = Box::new(1);\n```\n",
        ),
        (
            vec!["Common misconceptions", "2) Boxes are slow"],
            "**Heap allocation**: a `Vec<u8>` of one element costs one too.\n",
        ),
        (
            vec!["Common misconceptions", "3) Read the book"],
            "### 3) Read the book\n\nRead the book twice, slowly.\n",
        ),
        (
            vec!["Common misconceptions", "Conclusion"],
            "## Conclusion\n\nCommon misconceptions fade with practice.\n",
        ),
    ];
    common::Seed {
        root: "/r",
        rel_path: "posts/misconceptions.md",
        heading: &[],
        chunks: chunks
            .iter()
            .enumerate()
            .map(|(i, (_, t))| (t.to_string(), 6 * i as i64 + 1, 6 * i as i64 + 5))
            .collect(),
        priority: 30,
        max_attempts: 3,
    }
    .insert_with_paths(
        &s.q,
        &chunks.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
    )
    .await;
    let backend = FakeBackend::new(|req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("does the text above really") {
            return Reply::Text(ACCEPT.into());
        } else if user.contains("Pattern: ") {
            return Reply::Text(PAGE.into());
        } else if user.contains("\"overview\"") {
            return Reply::Text(OVERVIEW.into());
        }
        let (name, sentence) = [
            (
                "Common misconceptions",
                "Common misconceptions trip up every beginner.",
            ),
            ("Clones are slow", "Cloning an `Rc` only bumps a count."),
            ("Boxes are slow", "A box is one allocation."),
            (
                "Heap allocation",
                "a `Vec<u8>` of one element costs one too.",
            ),
            ("Read the book", "Read the book twice, slowly."),
            (
                "Common misconceptions",
                "Common misconceptions fade with practice.",
            ),
        ]
        .into_iter()
        .find(|(_, s)| user.contains(s))
        .expect("a known chunk");
        plain_finding(name, sentence)
    });
    let summary = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 0);
    let rejected: Vec<_> =
        s.q.current_findings()
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.status != quarry::queue::FindingStatus::Accepted)
            .map(|f| (f.pattern, f.reason))
            .collect();
    assert!(
        rejected.is_empty(),
        "the fixture's names pass the checks: {rejected:?}"
    );
    let mut names: Vec<String> =
        s.q.patterns()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
    names.sort();
    assert_eq!(
        names,
        ["Boxes are slow", "Clones are slow", "Common misconceptions"]
    );
    // Another name in an item's section is an example of the item: it joins the item's page,
    // not the title's, however often the title is found.
    let boxes = s.q.patterns().await.unwrap();
    let boxes = boxes.iter().find(|p| p.name == "Boxes are slow").unwrap();
    let on_page: Vec<String> =
        s.q.pattern_findings(boxes.id)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.pattern)
            .collect();
    assert!(
        on_page.iter().any(|n| n == "Heap allocation"),
        "{on_page:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_at_max_tokens_inside_a_text_field_is_closed_not_lost() {
    let s = setup(1, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let agents_dir = dir.path().join("agents");
    std::fs::create_dir_all(&agents_dir).unwrap();
    let writer =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/writer.toml"))
            .unwrap();
    assert!(writer.contains("max_tokens = 640"));
    std::fs::write(
        agents_dir.join("writer.toml"),
        writer
            .replace("max_tokens = 640", "max_tokens = 60")
            .replace("enabled = false", "enabled = true"),
    )
    .unwrap();
    // 60 tokens are 240 bytes for the fake: the reply is cut inside "pitfalls".
    let page_reply = format!(
        r#"{{"summary": "A builder collects settings before it builds.", "when_to_use": "Many optional settings.", "pitfalls": "{}"}}"#,
        // Prose the chunk supports (most of its words are the chunk's): a page shows only that.
        "Optional settings a builder collects before construction stay optional settings: \
         the builder collects the port settings, the builder collects optional settings \
         before construction of the config, and build ends construction of the config \
         builder with its port settings collected before construction."
    );
    let backend = FakeBackend::new(move |req: &Request, _| {
        let user = &req.messages.last().unwrap().content;
        if user.contains("does the text above really") {
            Reply::Text(ACCEPT.into())
        } else if user.contains("Pattern: ") {
            Reply::Text(page_reply.clone())
        } else if user.contains("\"overview\"") {
            Reply::Text(OVERVIEW.into())
        } else {
            Reply::Text(finding(
                "Builder",
                "A builder collects optional settings before construction.",
            ))
        }
    });
    let agents = Agents::load(Some(&agents_dir), None).unwrap();
    let summary = run(&s.q, agents, backend, Duration::from_secs(5)).await;
    assert_eq!(summary.jobs_dead, 0, "{:?}", s.q.failures().await.unwrap());
    let out = tempfile::tempdir().unwrap();
    quarry::cmd::render(
        &s.q,
        &Agents::load(Some(&agents_dir), None).unwrap(),
        out.path(),
    )
    .await
    .unwrap();
    let page = std::fs::read_to_string(out.path().join("patterns/builder.md")).unwrap();
    assert!(
        page.contains("A builder collects settings before it builds."),
        "{page}"
    );
    assert!(
        page.contains("Optional settings a builder collects") && page.contains('…'),
        "{page}"
    );
}

/// A file with no Rust in it (a preface) and a chunk that is a list of references teach no
/// pattern: the extractor is not asked about them, no page is made from them, and the source
/// page says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_chunks_that_teach_nothing_are_not_sent_to_the_model() {
    let s = setup(1, 3).await;
    common::Seed {
        root: "/r",
        rel_path: "preface.md",
        heading: &["Preface"],
        chunks: vec![(
            "# Preface\n\nThis book grew out of notes kept over many years. Thanks to everyone who read drafts.\n".into(),
            1,
            3,
        )],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    common::Seed {
        root: "/r",
        rel_path: "post.md",
        heading: &["Guards"],
        chunks: vec![
            (
                "# Guards\n\nA guard releases its lock in `Drop::drop`.\n".into(),
                1,
                3,
            ),
            (
                "## Further reading\n\n- [Guards in depth](https://example.org/guards)\n- [Drop order](./drop.md)\n- [The Rustonomicon](https://example.org/nomicon)\n".into(),
                5,
                9,
            ),
        ],
        priority: 30,
        max_attempts: 3,
    }
    .insert(&s.q)
    .await;
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let backend = FakeBackend::new(move |req: &Request, _| {
        let user = req.messages.last().unwrap().content.clone();
        let reply = if user.contains("Pattern: ") {
            PAGE.to_string()
        } else if user.contains("\"overview\"") {
            OVERVIEW.to_string()
        } else {
            seen.lock().unwrap().push(user.clone());
            if user.contains("A guard releases") {
                finding("Guard", "A guard releases its lock in `Drop::drop`.")
            } else {
                finding(
                    "Builder",
                    "A builder collects optional settings before construction.",
                )
            }
        };
        Reply::Text(reply)
    });
    let summary = run(
        &s.q,
        Agents::load(None, None).unwrap(),
        backend,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(summary.jobs_dead, 0);
    let asked = asked.lock().unwrap().clone();
    assert!(asked.iter().any(|u| u.contains("A guard releases")));
    assert!(asked.iter().any(|u| u.contains("A builder collects")));
    assert!(
        !asked
            .iter()
            .any(|u| u.contains("notes kept over many years") || u.contains("Drop order")),
        "{asked:#?}"
    );
    let out = tempfile::tempdir().unwrap();
    quarry::cmd::render(&s.q, &Agents::load(None, None).unwrap(), out.path())
        .await
        .unwrap();
    let preface = std::fs::read_to_string(out.path().join("sources/preface.md")).unwrap();
    assert!(
        preface.contains("lines 1-3 were not read for patterns: no Rust in the file"),
        "{preface}"
    );
    let post = std::fs::read_to_string(out.path().join("sources/post.md")).unwrap();
    assert!(
        post.contains("lines 5-9 were not read for patterns: a list of references"),
        "{post}"
    );
    let patterns: Vec<String> =
        s.q.patterns()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
    assert_eq!(patterns.len(), 2, "{patterns:?}");
}
