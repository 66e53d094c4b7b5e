//! `quarry ask`: retrieve, let the chat model choose the sentences that answer (streamed as
//! they are chosen), then print them checked, each as `path:line`.

use std::time::Duration;

use anyhow::Result;

use super::search::{load_embedder, open_retriever};
use super::{load_agents, open_queue};
use crate::cli::AskArgs;
use crate::config::Config;
use crate::search::answer::{self, Answer, AnswerKind, AskOptions, QuoteStream};

pub async fn ask(cfg: &Config, args: AskArgs) -> Result<u8> {
    let queue = open_queue(cfg).await?;
    let embedder = load_embedder(cfg)?;
    let retriever = open_retriever(cfg, &queue, &embedder, &args.question, args.no_index).await?;
    let agents = load_agents(cfg)?;
    let backends = crate::llm::factory::start_backends(cfg, &agents, 1).await?;
    let backend = backends.get("default").await?;
    let opts = AskOptions {
        top_k: args.top.unwrap_or(cfg.search.top_k).max(1),
        min_similarity: cfg.search.min_similarity,
        min_sentence_similarity: cfg.search.min_sentence_similarity,
        timeout: Duration::from_secs(cfg.model("default")?.timeout_s),
        ..AskOptions::default()
    };
    // The model's choices, printed as each sentence is complete.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let streaming = !args.json;
    let printer = tokio::spawn(async move {
        let mut quotes = QuoteStream::default();
        let mut first = true;
        while let Some(piece) = rx.recv().await {
            for (source, sentence) in quotes.push(&piece) {
                if streaming {
                    if first {
                        println!("The model chooses:");
                        first = false;
                    }
                    println!("  [{source}] {sentence}");
                }
            }
        }
    });
    let result = answer::ask(&retriever, &**backend, &args.question, &opts, Some(tx)).await;
    let _ = printer.await;
    let answer = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", report(&answer));
    }
    Ok(0)
}

/// The checked answer as the terminal shows it.
pub fn report(a: &Answer) -> String {
    let mut out = String::new();
    match a.kind {
        AnswerKind::NothingRelevant => {
            out.push_str(&format!(
                "Nothing in your notes is near enough this question to answer it (nearest \
                 similarity {:.2}; an answer needs {:.2}, [search] min_similarity).\n",
                a.best_similarity, a.min_similarity
            ));
            return out;
        }
        AnswerKind::Extractive => out.push_str(&format!(
            "\nAnswer (extractive: sentences of your notes chosen by {}; every citation checked):\n",
            a.model
        )),
        AnswerKind::Nearest => out.push_str(
            "\nThe model's choice did not check out; the sentence of your notes nearest the question:\n",
        ),
    }
    for q in &a.quotes {
        out.push_str(&format!("  \"{}\"\n      {}\n", q.sentence, q.location()));
    }
    for r in &a.refused {
        out.push_str(&format!("  (refused a citation: {})\n", r.reason));
    }
    out.push_str("Passages read:\n");
    for p in &a.passages {
        out.push_str(&format!(
            "  [{}] {}{}\n",
            p.label,
            p.location(),
            p.similarity
                .map(|s| format!("  (similarity {s:.2})"))
                .unwrap_or_default()
        ));
    }
    out
}
