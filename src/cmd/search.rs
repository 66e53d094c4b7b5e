//! `quarry search` (the best chunks for a query, with `path:lines`, a snippet and the scores)
//! and `quarry index` (the search index caught up ahead of time).

use std::time::{Duration, Instant};

use anyhow::Result;

use super::open_queue;
use crate::cli::{SearchArgs, SearchModeArg};
use crate::config::Config;
use crate::search::{self, answer::display_path, Embedder, Hit, Mode, Retriever};

pub fn load_embedder(cfg: &Config) -> Result<Embedder> {
    Ok(Embedder::load(
        &cfg.search.embedding_model,
        cfg.search.dimensions,
    )?)
}

/// Progress of long embedding work, one line on stderr at most every two seconds.
pub fn embedding_progress() -> impl FnMut(usize, usize) {
    let start = Instant::now();
    let mut last = Instant::now();
    let mut announced = false;
    move |done, total| {
        if !announced && total > 0 {
            eprintln!("quarry: embedding {total} chunks (once; later searches reuse them)");
            announced = true;
        }
        if last.elapsed() >= Duration::from_secs(2) || done == total {
            last = Instant::now();
            let rate = done as f64 / start.elapsed().as_secs_f64().max(1e-9);
            eprintln!("quarry: embedded {done}/{total} chunks ({rate:.0}/s)");
        }
    }
}

/// Opens the retriever the way search and ask do: the query checked before anything is
/// written, then the index caught up (unless `no_index`).
pub async fn open_retriever<'a>(
    cfg: &Config,
    queue: &'a crate::queue::Queue,
    embedder: &'a Embedder,
    query: &str,
    no_index: bool,
) -> Result<Retriever<'a>> {
    search::check_query(embedder, query)?;
    Ok(Retriever::open(
        queue,
        embedder,
        !no_index,
        cfg.search.batch,
        embedding_progress(),
    )
    .await?)
}

pub async fn search(cfg: &Config, args: SearchArgs) -> Result<u8> {
    let queue = open_queue(cfg).await?;
    let embedder = load_embedder(cfg)?;
    let retriever = open_retriever(cfg, &queue, &embedder, &args.query, args.no_index).await?;
    let mode = match args.mode {
        SearchModeArg::Text => Mode::Text,
        SearchModeArg::Vector => Mode::Vector,
        SearchModeArg::Hybrid => Mode::Hybrid,
    };
    let k = args.top.unwrap_or(cfg.search.top_k).max(1);
    let start = Instant::now();
    let hits = retriever.search(&args.query, k, mode).await?;
    // Pattern pages too (their vectors are made when the knowledge base is rendered).
    let pages = match mode {
        Mode::Text => Vec::new(),
        _ => {
            let qv = retriever.embed_query(&args.query)?;
            search::pages::search(
                &queue,
                &embedder,
                &qv,
                search::pages::SEE_ALSO,
                cfg.search.min_similarity,
            )
            .await?
        }
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if args.json {
        let out = serde_json::json!({
            "query": args.query,
            "mode": mode,
            "model": embedder.name(),
            "ms": ms,
            "hits": hits.iter().map(|h| serde_json::json!({
                "location": location(h),
                "path": display_path(&h.chunk),
                "line_start": h.chunk.line_start,
                "line_end": h.chunk.line_end,
                "chunk_id": h.chunk.id,
                "headings": h.chunk.heading_path,
                "score": h.score,
                "bm25": h.bm25,
                "text_rank": h.text_rank,
                "similarity": h.similarity,
                "vector_rank": h.vector_rank,
                "snippet": snippet(&h.chunk.text, &args.query),
            })).collect::<Vec<_>>(),
            "pages": pages.iter().map(|p| serde_json::json!({
                "path": cfg.output.join(&p.path),
                "title": p.title,
                "similarity": p.similarity,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if hits.is_empty() {
        println!("no chunk matches {:?}", args.query);
        return Ok(0);
    }
    for (i, h) in hits.iter().enumerate() {
        let mut scores = format!("score {:.4}", h.score);
        if let (Some(b), Some(r)) = (h.bm25, h.text_rank) {
            scores.push_str(&format!("  bm25 {b:.2} (#{r})"));
        }
        if let Some(s) = h.similarity {
            match h.vector_rank {
                Some(r) => scores.push_str(&format!("  cos {s:.3} (#{r})")),
                None => scores.push_str(&format!("  cos {s:.3}")),
            }
        }
        println!("{}. {}  {scores}", i + 1, location(h));
        if !h.chunk.heading_path.is_empty() {
            println!("   {}", h.chunk.heading_path.join(" > "));
        }
        println!("   {}", snippet(&h.chunk.text, &args.query));
    }
    if !pages.is_empty() {
        println!("pages:");
        for p in &pages {
            println!(
                "   {}  {}  cos {:.3}",
                cfg.output.join(&p.path).display(),
                p.title,
                p.similarity
            );
        }
    }
    println!(
        "({} of {} chunks, {} pages, {mode:?}, {ms:.0} ms)",
        hits.len(),
        retriever.len(),
        pages.len()
    );
    Ok(0)
}

pub async fn index(cfg: &Config) -> Result<u8> {
    let queue = open_queue(cfg).await?;
    let embedder = load_embedder(cfg)?;
    let report =
        search::update_index(&queue, &embedder, cfg.search.batch, embedding_progress()).await?;
    println!("{}: {report} ({})", cfg.db, embedder.name());
    Ok(0)
}

fn location(h: &Hit) -> String {
    format!(
        "{}:{}-{}",
        display_path(&h.chunk).display(),
        h.chunk.line_start,
        h.chunk.line_end
    )
}

/// The chunk's line holding the most query words (its first non-empty line when none does),
/// whitespace collapsed, cut to 160 characters.
pub fn snippet(text: &str, query: &str) -> String {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect();
    let best = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .max_by_key(|(i, l)| {
            let lower = l.to_lowercase();
            (
                words.iter().filter(|w| lower.contains(w.as_str())).count(),
                std::cmp::Reverse(*i),
            )
        })
        .map(|(_, l)| l)
        .unwrap_or("");
    let flat = best.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippet_is_the_line_with_most_query_words() {
        let text = "# Title\n\nNothing here.\nA guard   drops the lock.\nThe lock guard drops the lock on scope exit.\n";
        assert_eq!(
            snippet(text, "does the guard drop the lock on exit?"),
            "The lock guard drops the lock on scope exit."
        );
        assert_eq!(snippet(text, "zebra"), "# Title");
        let long = "word ".repeat(100);
        assert_eq!(snippet(&long, "word").chars().count(), 161);
    }
}
