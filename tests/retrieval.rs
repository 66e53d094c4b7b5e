//! Retrieval with the real models the set-up installs: all-MiniLM-L6-v2 (embeddings) and
//! SmolLM2 (ask), over the bundled example folder. Properties only, never exact text.

mod common;

use std::path::{Path, PathBuf};

use quarry::config::{BackendKind, Config};
use quarry::llm::fake::{FakeBackend, Reply};
use quarry::queue::Queue;
use quarry::search::answer::{self, AnswerKind, AskOptions, Quote};
use quarry::search::{Embedder, Mode, Retriever};

fn embedder() -> Embedder {
    let dir = quarry::config::default_embedding_model_path();
    assert!(
        dir.join("model.safetensors").exists(),
        "run `make setup` first: {} is missing",
        dir.display()
    );
    Embedder::load(&dir, 384).unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/research")
}

/// The bundled example enqueued into a fresh database.
async fn example_db(dir: &Path) -> Queue {
    let mut cfg = Config {
        db: dir.join("q.db").into(),
        ..Config::default()
    };
    cfg.backend.kind = BackendKind::Fake; // chunk sizes by estimate: no chat model needed
    quarry::cmd::enqueue(&cfg, &example()).await.unwrap();
    Queue::open(&cfg.db, false).await.unwrap()
}

/// A quote's lines, read from the file itself, hold the quoted sentence: its words, in order.
fn assert_resolves(q: &Quote) {
    let text = std::fs::read_to_string(&q.path)
        .or_else(|_| std::fs::read_to_string(example().join(&q.path)))
        .unwrap_or_else(|e| panic!("{}: {e}", q.path.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        q.line_start >= 1 && q.line_end as usize <= lines.len(),
        "{}",
        q.location()
    );
    let range = lines[q.line_start as usize - 1..q.line_end as usize].join(" ");
    let mut at = 0;
    for word in q.sentence.split_whitespace() {
        match range[at..].find(word) {
            Some(i) => at += i + word.len(),
            None => panic!(
                "{}: {:?} does not hold {:?} of {:?}",
                q.location(),
                range,
                word,
                q.sentence
            ),
        }
    }
    // The sentence starts on its first line.
    let first = q.sentence.split_whitespace().next().unwrap();
    assert!(
        lines[q.line_start as usize - 1].contains(first),
        "{}",
        q.location()
    );
}

#[test]
fn paraphrases_are_nearer_than_unrelated_sentences() {
    let e = embedder();
    assert_eq!(e.dim(), 384);
    let v = e
        .embed_batch(&[
            "The lock is released automatically when the guard goes out of scope.",
            "Dropping the guard object frees the mutex without an explicit unlock call.",
            "Banana bread needs ripe bananas, flour and an hour in the oven.",
            "Take a &str parameter when the function only reads the text.",
            "Borrowed string slices make functions accept more kinds of arguments.",
        ])
        .unwrap();
    let cos = |a: usize, b: usize| quarry::search::index::dot(&v[a], &v[b]);
    for x in &v {
        let n: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "unit length: {n}");
    }
    assert!(
        cos(0, 1) > cos(0, 2) + 0.2,
        "{} vs {}",
        cos(0, 1),
        cos(0, 2)
    );
    assert!(
        cos(3, 4) > cos(3, 2) + 0.2,
        "{} vs {}",
        cos(3, 4),
        cos(3, 2)
    );
    assert!(
        cos(0, 1) > cos(0, 3),
        "guard paraphrase beats another Rust topic"
    );
}

#[tokio::test]
async fn search_finds_the_example_file_that_answers() {
    let dir = tempfile::tempdir().unwrap();
    let q = example_db(dir.path()).await;
    let e = embedder();
    let r = Retriever::open(&q, &e, true, 16, |_, _| {}).await.unwrap();
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        let hits = r
            .search(
                "how does the guard release the resource when dropped",
                3,
                mode,
            )
            .await
            .unwrap();
        assert!(
            hits.iter().any(|h| h.chunk.rel_path == "guard.rs"),
            "{mode:?}: {:?}",
            hits.iter().map(|h| &h.chunk.rel_path).collect::<Vec<_>>()
        );
    }
}

/// Picks the first sentence listed under the first label in the prompt: what a perfect
/// extractive model could answer, checked like any reply.
fn first_listed(req: &quarry::llm::Request) -> String {
    let prompt = &req.messages.last().unwrap().content;
    let mut label = None;
    for line in prompt.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            label = rest.split(']').next().map(str::to_string);
        } else if let (Some(l), Some(s)) = (&label, line.strip_prefix("- ")) {
            return serde_json::json!({"answer": [{"source": l, "sentence": s}]}).to_string();
        }
    }
    "{\"answer\": []}".into()
}

#[tokio::test]
async fn ask_with_a_scripted_model_cites_real_lines_of_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let q = example_db(dir.path()).await;
    let e = embedder();
    let r = Retriever::open(&q, &e, true, 16, |_, _| {}).await.unwrap();
    let opts = AskOptions::default();

    let fake = FakeBackend::new(|req, _| Reply::Text(first_listed(req)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let a = answer::ask(
        &r,
        fake.as_ref(),
        "How should errors be handled?",
        &opts,
        Some(tx),
    )
    .await
    .unwrap();
    assert_eq!(a.kind, AnswerKind::Extractive, "{a:?}");
    assert_eq!(a.quotes.len(), 1);
    assert!(a.refused.is_empty(), "{:?}", a.refused);
    for quote in &a.quotes {
        assert_resolves(quote);
    }
    let req = &fake.requests()[0];
    let gbnf = req.grammar.as_deref().unwrap();
    assert!(
        gbnf.contains("C1"),
        "the grammar names the retrieved labels"
    );
    let streamed: String = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(streamed, a.reply, "the reply was streamed");

    // A model that cites a passage that was never retrieved: refused, and the nearest
    // sentence is shown instead, said to be so.
    let liar = FakeBackend::new(|req, _| Reply::Text(first_listed(req).replacen("\"C", "\"C9", 1)));
    let a = answer::ask(
        &r,
        liar.as_ref(),
        "How should errors be handled?",
        &opts,
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.kind, AnswerKind::Nearest, "{a:?}");
    assert!(
        a.refused[0].reason.contains("not retrieved"),
        "{:?}",
        a.refused
    );
    assert_resolves(&a.quotes[0]);

    // Nothing near the question: no model is asked.
    let silent = FakeBackend::new(|_, _| Reply::Fail("must not be asked".into()));
    let a = answer::ask(
        &r,
        silent.as_ref(),
        "What is a good recipe for banana bread?",
        &opts,
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.kind, AnswerKind::NothingRelevant, "{a:?}");
    assert!(a.best_similarity < opts.min_similarity);
    assert_eq!(silent.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_with_the_real_model_cites_lines_that_hold_its_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let q = example_db(dir.path()).await;
    let e = embedder();
    let r = Retriever::open(&q, &e, true, 16, |_, _| {}).await.unwrap();
    let mut o = quarry::llm::llama::LlamaOptions::new(common::model());
    o.slots = 1;
    let llm = quarry::llm::llama::LlamaEngine::start(o).unwrap();
    for question in [
        "How does a scope guard clean up when it is dropped?",
        "How should errors be handled?",
    ] {
        let a = answer::ask(&r, llm.as_ref(), question, &AskOptions::default(), None)
            .await
            .unwrap();
        assert!(
            matches!(a.kind, AnswerKind::Extractive | AnswerKind::Nearest),
            "{question}: {a:?}"
        );
        assert!(!a.quotes.is_empty(), "{question}: {a:?}");
        // The grammar allows only retrieved sentences under their own label.
        assert!(
            a.refused.is_empty(),
            "{question}: {:?} in {}",
            a.refused,
            a.reply
        );
        for quote in &a.quotes {
            assert_resolves(quote);
        }
    }
}
