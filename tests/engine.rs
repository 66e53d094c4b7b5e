//! The batching engine with the real default model: properties, never exact text.

use std::time::Duration;

use quarry::llm::llama::{LlamaEngine, LlamaOptions};
use quarry::llm::{grammar, Backend, LlmError, Message, Request};

mod common;
use common::model;

/// One context batching `slots` sequences.
fn engine(slots: usize) -> std::sync::Arc<LlamaEngine> {
    engine_with(slots, 1)
}

fn engine_with(slots: usize, contexts: usize) -> std::sync::Arc<LlamaEngine> {
    let mut o = LlamaOptions::new(model());
    o.slots = slots;
    o.contexts = contexts;
    o.ctx_per_slot = 1024;
    LlamaEngine::start(o).unwrap()
}

fn ask(q: &str, max_tokens: u32) -> Request {
    let mut r = Request::new(vec![
        Message::system("You answer briefly."),
        Message::user(q),
    ]);
    r.sampling.max_tokens = max_tokens;
    r.timeout = Duration::from_secs(120);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_give_the_text_each_gives_alone() {
    let questions = [
        "What is a Rust trait?",
        "Name a Rust collection.",
        "What does `?` do in Rust?",
    ];
    // One context batching three sequences, then three contexts of one sequence each.
    for contexts in [1, 3] {
        same_text_alone_and_together(&questions, engine_with(3, contexts)).await;
    }
}

async fn same_text_alone_and_together(questions: &[&str], e: std::sync::Arc<LlamaEngine>) {
    let mut alone = Vec::new();
    for q in questions {
        alone.push(e.generate(ask(q, 24)).await.unwrap().text);
    }
    let together = futures_join(questions.iter().map(|q| e.generate(ask(q, 24)))).await;
    for (a, t) in alone.iter().zip(together) {
        let t = t.unwrap();
        assert!(t.timings.gen_tokens <= 24);
        // llama.cpp's CPU kernels round differently for different batch shapes, so long greedy
        // continuations may drift; cross-talk between sequences would differ from the start.
        let common = a
            .chars()
            .zip(t.text.chars())
            .take_while(|(x, y)| x == y)
            .count();
        assert!(
            common >= 20 || a == &t.text,
            "batched output diverges early:\n{a}\n{}",
            t.text
        );
    }
    let stats = e.stats();
    assert!(
        stats.cached_tokens > 0,
        "the shared system prompt is reused: {stats:?}"
    );
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for f in fs {
        handles.push(f);
    }
    let mut out = Vec::new();
    // Poll all at once: join them through a JoinSet-free select loop.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(|d| d.unwrap()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammar_constrained_output_always_parses() {
    let schema = serde_json::json!({"type": "object", "properties": {
        "verdict": {"type": "string", "enum": ["accept", "reject"]},
        "reason": {"type": "string", "maxLength": 60}}, "required": ["verdict", "reason"]});
    let g = grammar::schema_to_gbnf(&schema).unwrap();
    let e = engine(2);
    for q in [
        "Is Rust memory safe?",
        "Say something random.",
        "Reply with a poem.",
    ] {
        let mut r = ask(q, 200);
        r.grammar = Some(g.clone());
        let c = e.generate(r).await.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&c.text).unwrap_or_else(|err| panic!("{err}: {}", c.text));
        grammar::validate(&schema, &v).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_prompt_is_refused_and_the_engine_goes_on() {
    let e = engine(1);
    let long = "word ".repeat(3000);
    let err = e.generate(ask(&long, 8)).await.unwrap_err();
    assert!(matches!(err, LlmError::PromptTooLong { .. }), "{err}");
    assert!(!err.retryable());
    let ok = e.generate(ask("Hi", 4)).await.unwrap();
    assert!(ok.timings.gen_tokens <= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_request_frees_its_slot() {
    let e = engine(1);
    let slow = ask("Write a long story about a crab.", 400);
    // The caller gives up: its future is dropped, and the engine sees the reply is unwanted.
    let gave_up = tokio::time::timeout(Duration::from_millis(300), e.generate(slow)).await;
    assert!(gave_up.is_err(), "400 tokens in 300 ms: {gave_up:?}");
    // The only slot is free again.
    let ok = e.generate(ask("Hi", 4)).await.unwrap();
    assert!(ok.timings.gen_tokens <= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_keeps_coming_outlives_its_timeout() {
    // The timeout is for a hung engine: a reply longer than it, token after token, is whole.
    let e = engine(1);
    let mut long = ask("Write a long story about a crab.", 400);
    long.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let done = e.generate(long).await.expect("a reply that keeps coming");
    assert!(
        started.elapsed() > Duration::from_millis(500),
        "the reply took less than its timeout ({} tokens): the test shows nothing",
        done.timings.gen_tokens
    );
}

#[test]
fn truncated_and_foreign_files_give_the_documented_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(model()).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = LlamaEngine::start(LlamaOptions::new(&cut)).err().unwrap();
    assert!(matches!(err, LlmError::ModelInvalid { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    let missing = LlamaEngine::start(LlamaOptions::new(dir.path().join("none.gguf")))
        .err()
        .unwrap();
    assert!(
        matches!(missing, LlmError::ModelMissing { .. }),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_load_on_demand_and_the_least_recently_used_makes_room() {
    let mut cfg = quarry::config::Config::default();
    let m = cfg.models.get_mut("default").unwrap();
    m.path = model();
    m.ctx_per_slot = 512;
    let second = m.clone();
    cfg.models.insert("second".into(), second);
    let mut o = LlamaOptions::new(model());
    o.slots = 2;
    o.ctx_per_slot = 512;
    let one = quarry::llm::llama::estimate_mb(&quarry::llm::gguf::read(&model()).unwrap(), &o);
    cfg.backend.memory_budget_mb = one * 3 / 2; // room for one model, not two
    let agents = quarry::cmd::load_agents(&cfg).unwrap();
    let reg = quarry::cmd::start_backends(&cfg, &agents, 2).await.unwrap();
    assert_eq!(
        reg.loaded().await,
        vec!["default"],
        "the default model loads at start"
    );
    let b = reg.get("second").await.unwrap();
    assert!(!b.generate(ask("Say hi.", 4)).await.unwrap().text.is_empty());
    drop(b);
    assert_eq!(
        reg.loaded().await,
        vec!["second"],
        "default was unloaded to make room"
    );
    cfg.backend.memory_budget_mb = one / 2;
    let err = quarry::cmd::start_backends(&cfg, &agents, 2)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(format!("{err:#}").contains("memory budget"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stream_as_they_are_generated() {
    let e = engine(1);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut req = ask("Name three Rust collections.", 24);
    req.stream = Some(tx);
    let done = e.generate(req).await.unwrap();
    let pieces: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(pieces.len() > 1, "one piece per token or so: {pieces:?}");
    assert_eq!(pieces.concat(), done.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_arriving_together_compute_their_shared_prefix_once() {
    let e = engine(4);
    let preamble = "You review Rust notes. Answer in one short sentence. ".repeat(12);
    let reqs = (0..4).map(|i| {
        let mut r = Request::new(vec![
            Message::system(preamble.clone()),
            Message::user(format!("Question {i}: what is a trait?")),
        ]);
        r.sampling.max_tokens = 4;
        r.timeout = Duration::from_secs(120);
        e.generate(r)
    });
    let done: Vec<_> = futures_join(reqs).await;
    let cached: Vec<u64> = done
        .into_iter()
        .map(|d| d.unwrap().timings.cached_tokens)
        .collect();
    // One request computes the preamble; the three others copy it.
    assert!(
        cached.iter().filter(|&&c| c >= 100).count() >= 3,
        "{cached:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extractor_names_only_terms_of_its_chunk() {
    use quarry::agent::context::{ChunkCtx, ChunkPrompt};
    use quarry::agent::Agents;
    use quarry::text::terms::terms;

    let text = "/// Restores the previous depth when it goes out of scope: the guard pattern.\n\
                #[must_use]\npub struct Indent<'a> { p: &'a Printer, depth: usize }\n\n\
                impl Drop for Indent<'_> {\n    fn drop(&mut self) { self.p.depth.set(self.depth); }\n}\n";
    let heading = vec!["struct Indent, impl Drop for Indent<'_>".to_string()];
    let offered = terms(
        text,
        &heading,
        quarry::ingest::FileKind::Rust,
        &quarry::text::terms::FileFacts::of(text, quarry::ingest::FileKind::Rust),
    );
    assert!(offered.len() >= 2, "{offered:?}");
    let agents = Agents::load(None, None).unwrap();
    let role = agents.role("extractor").unwrap();
    let chunk = ChunkCtx {
        file: "src/guard.rs".into(),
        kind: "rust".into(),
        line_start: 1,
        line_end: 8,
        heading: heading.join(" > "),
        text: text.into(),
        terms: offered.clone(),
    };
    let mut req = Request::new(agents.messages(role, &ChunkPrompt { chunk }).unwrap());
    req.grammar = Some(role.grammar_for(text, &offered).unwrap());
    req.sampling = role.sampling();
    req.timeout = Duration::from_secs(300);
    let done = engine(1).generate(req).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(&done.text)
        .unwrap_or_else(|e| panic!("the grammar gives JSON ({e}): {}", done.text));
    grammar::validate(&role.schema, &reply).unwrap();
    for f in reply["findings"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        assert!(
            offered.iter().any(|t| t == name),
            "{name:?} is not one of {offered:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_text_is_appended_in_one_batch_and_the_reply_stays_valid() {
    use quarry::agent::context::{ChunkCtx, ChunkPrompt};
    use quarry::agent::Agents;

    // A chunk whose sentences the extractor quotes: once a quote's first words are chosen, the
    // grammar forces its rest, which jump-forward appends in one batch.
    let text = "A builder collects the settings of a value one call at a time, then builds it.\n\
                Use a builder when a constructor would take many optional arguments.\n\n\
                ```rust\nlet server = ServerBuilder::new().port(8080).build();\n```\n";
    let offered = vec!["builder".to_string(), "ServerBuilder".to_string()];
    let agents = Agents::load(None, None).unwrap();
    let role = agents.role("extractor").unwrap();
    let (schema, grammar) = role.constrained(text, &offered).unwrap();
    let chunk = ChunkCtx {
        file: "notes/builder.md".into(),
        kind: "markdown".into(),
        line_start: 1,
        line_end: 6,
        heading: "Builder".into(),
        text: text.into(),
        terms: offered.clone(),
    };
    let messages = agents.messages(role, &ChunkPrompt { chunk }).unwrap();
    let mut replies = Vec::new();
    for jump in [false, true] {
        let mut o = LlamaOptions::new(model());
        o.slots = 1;
        o.ctx_per_slot = 1024;
        o.jump_forward = jump;
        let e = LlamaEngine::start(o).unwrap();
        let mut req = Request::new(messages.clone());
        req.grammar = Some(grammar.clone());
        req.schema = Some(std::sync::Arc::new(schema.clone()));
        req.sampling = role.sampling();
        req.timeout = Duration::from_secs(300);
        let done = e.generate(req).await.unwrap();
        replies.push((done.text, done.timings, e.stats()));
    }
    // Greedy replies with and without it are not always the same text: the forced tokens are
    // evaluated in one batch (llama.cpp's kernels round differently for other batch shapes) and
    // may be split otherwise than the model would have sampled them. What holds: the reply is
    // valid, every forced field is one of the chunk's own, and fewer steps made it.
    let (off, on) = (&replies[0], &replies[1]);
    assert_eq!(off.1.forced_tokens, 0);
    for (text, timings, _) in [off, on] {
        let v: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the grammar gives JSON ({e}): {text}"));
        grammar::validate(&schema, &v).unwrap();
        assert!(timings.forced_tokens <= timings.gen_tokens);
    }
    assert!(on.1.forced_tokens > 0, "nothing was forced: {}", on.0);
    let steps_per_token = |r: &(
        String,
        quarry::llm::Timings,
        quarry::llm::llama::EngineStats,
    )| { r.2.steps as f64 / r.1.gen_tokens.max(1) as f64 };
    assert!(
        steps_per_token(on) < steps_per_token(off),
        "forced tokens take no step of their own: {} steps for {} tokens with, {} for {} without",
        on.2.steps,
        on.1.gen_tokens,
        off.2.steps,
        off.1.gen_tokens
    );
}
