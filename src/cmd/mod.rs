//! The commands: turn parsed arguments into a `Config`, wire the modules together and
//! report. One file per command; what several share is here.

mod ask;
mod bench;
mod enqueue;
mod init;
mod jobs;
mod models;
mod run;
mod search;
pub mod status;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::agent::Agents;
use crate::cli::{Cli, Command, ProgressArg};
use crate::config::Config;
use crate::progress::Mode;
use crate::queue::{Queue, QueueOptions};

pub use enqueue::{enqueue, ingest_options, EnqueueReport};
pub use run::{pipeline_embedder, render, render_with, start_backends};

pub async fn main(cli: Cli) -> Result<u8> {
    let mut cfg = Config::load(cli.global.config.as_deref())?;
    if let Some(db) = &cli.global.db {
        cfg.db = crate::queue::DbUrl::parse(db);
    }
    let db = cfg.db.clone();
    dispatch(cli, cfg)
        .await
        .map_err(|e| with_database_hint(e, &db))
}

/// A database error names the database and says what to do; SQLite's own text ("attempt
/// to write a readonly database") names neither.
fn with_database_hint(e: anyhow::Error, db: &crate::queue::DbUrl) -> anyhow::Error {
    let Some(sql) = e.chain().find_map(|c| c.downcast_ref::<sqlx::Error>()) else {
        return e;
    };
    let cause = sql.to_string().to_lowercase();
    let hint = if cause.contains("readonly") || cause.contains("read-only") {
        "the file or its folder is read-only: make both writable, or pass --db with a writable path"
    } else if cause.contains("locked") || cause.contains("busy") {
        "another process holds its write lock: wait for it, or stop it"
    } else if cause.contains("not a database") || cause.contains("malformed") {
        "the file is damaged or is not a quarry database: move it aside and run `quarry enqueue` again"
    } else if cause.contains("disk") || cause.contains("full") {
        "check the free space and health of its disk"
    } else if cause.contains("unable to open") {
        "check that its folder exists and is writable"
    } else if cause.contains("password authentication") || cause.contains("role \"") {
        "check the user and password in the URL"
    } else if cause.contains("connection refused")
        || cause.contains("timed out")
        || cause.contains("failed to lookup address")
    {
        "check that the PostgreSQL server runs and is reachable at that address"
    } else {
        ""
    };
    let text = one_line(&e);
    let named = text.contains(&db.to_string());
    anyhow::anyhow!(
        "{}{text}{}",
        if named {
            String::new()
        } else {
            format!("queue database {db}: ")
        },
        if hint.is_empty() {
            String::new()
        } else {
            format!("; {hint}")
        }
    )
}

/// An error and its causes on one line, each cause once: a cause whose text the message
/// already holds (thiserror messages often embed their source) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn dispatch(cli: Cli, mut cfg: Config) -> Result<u8> {
    match cli.command {
        Command::Init { dir } => init::init(&dir),
        Command::Enqueue {
            dir,
            include,
            exclude,
            model,
        } => {
            cfg.ingest.include.extend(include);
            cfg.ingest.exclude.extend(exclude);
            if let Some(m) = model {
                set_default_model(&mut cfg, m);
            }
            let report = enqueue(&cfg, &dir).await?;
            println!("{report}");
            Ok(0)
        }
        Command::Run(args) => run::run(cfg, args).await,
        Command::Status { json, failed } => status::status(&cfg, json, failed).await,
        Command::Watch { progress } => status::watch(&cfg, progress).await,
        Command::Retry { job, dead } => jobs::retry(&cfg, job, dead).await,
        Command::Cancel { job } => jobs::cancel(&cfg, job).await,
        Command::Render { output, force } => {
            if let Some(o) = output {
                cfg.output = o;
            }
            let q = open_queue(&cfg).await?;
            let agents = load_agents(&cfg)?;
            let templates = crate::kb::Templates::load(Some(&cfg.templates_dir))?;
            let embedder = run::pipeline_embedder(&cfg);
            let see_also = run::see_also(&cfg, embedder.as_deref());
            let r = render_with(&q, &agents, &templates, &cfg.output, force, see_also).await?;
            println!("{}: {r}", cfg.output.join("index.md").display());
            Ok(if r.failed.is_empty() { 0 } else { 1 })
        }
        Command::Models => models::models(&cfg),
        Command::Search(args) => search::search(&cfg, args).await,
        Command::Ask(args) => {
            if let Some(m) = args.model.clone() {
                set_default_model(&mut cfg, m);
            }
            ask::ask(&cfg, args).await
        }
        Command::Index => search::index(&cfg).await,
        Command::Bench { what } => bench::bench(&cfg, what).await,
    }
}

fn set_default_model(cfg: &mut Config, path: PathBuf) {
    cfg.models.entry("default".into()).or_default().path = path;
}

pub fn load_agents(cfg: &Config) -> Result<Agents> {
    Ok(Agents::load(Some(&cfg.agents_dir), Some(&cfg.prompts_dir))?)
}

async fn open_queue(cfg: &Config) -> Result<Queue> {
    retry_transient(|| async {
        Ok(Queue::open_with(
            &cfg.db,
            false,
            crate::queue::system_clock(),
            queue_options(cfg),
        )
        .await?)
    })
    .await
}

/// Runs `f` again, with backoff, while it fails for a reason waiting can cure (a database
/// server starting or restarting, the network): up to about a minute, then the error.
pub async fn retry_transient<T, F, Fut>(mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let started = std::time::Instant::now();
    let mut failures = 0;
    loop {
        match f().await {
            Err(e) if is_transient(&e) && started.elapsed() < Duration::from_secs(60) => {
                failures += 1;
                let wait = crate::engine::db_backoff(failures);
                tracing::warn!(error = %one_line(&e), retry_in_ms = wait.as_millis() as u64, "the database is unreachable; trying again");
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

/// True when some cause of `e` is a database error that waiting can cure.
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<sqlx::Error>()
            .is_some_and(crate::queue::is_transient)
            || c.downcast_ref::<crate::queue::QueueError>()
                .is_some_and(|q| q.is_transient())
    })
}

fn queue_options(cfg: &Config) -> QueueOptions {
    QueueOptions {
        lease: cfg.lease(),
        backoff: crate::queue::Backoff {
            base: Duration::from_millis(cfg.queue.backoff_base_ms),
            max: Duration::from_millis(cfg.queue.backoff_max_ms),
        },
    }
}

fn progress_mode(arg: ProgressArg, quiet: bool) -> Mode {
    use std::io::IsTerminal;
    if quiet {
        return Mode::Quiet;
    }
    match arg {
        ProgressArg::Live => Mode::Live,
        ProgressArg::Plain => Mode::Plain,
        ProgressArg::Auto => {
            if std::io::stdout().is_terminal() && std::env::var_os("CI").is_none() {
                Mode::Live
            } else {
                Mode::Plain
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_only_database_error_is_one_line_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.db");
        Queue::open(&db, true).await.unwrap().close().await;
        // A real SQLite refusal: the database opened read-only, then written.
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let err = sqlx::query("DELETE FROM jobs")
            .execute(&pool)
            .await
            .unwrap_err();
        let err = anyhow::Error::from(crate::queue::QueueError::from(err));
        let msg = one_line(&with_database_hint(err, &crate::queue::DbUrl::from(&db)));
        assert!(msg.contains(&db.display().to_string()), "{msg}");
        assert!(msg.contains("readonly"), "{msg}");
        assert!(msg.contains("writable"), "says what to do: {msg}");
        assert_eq!(msg.matches("readonly").count(), 1, "the cause once: {msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn one_line_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open x.db: {source}")]
        struct Outer {
            source: std::io::Error,
        }
        let e = anyhow::Error::from(Outer {
            source: std::io::Error::other("disk on fire"),
        })
        .context("enqueue failed");
        assert_eq!(
            one_line(&e),
            "enqueue failed: cannot open x.db: disk on fire"
        );
    }
}
