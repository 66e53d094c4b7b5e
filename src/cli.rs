//! The command line (clap derive). Parsing only: `app` turns these into a `Config` and acts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "quarry",
    version,
    about = "Turn a folder of research notes into a markdown knowledge base with small local language models"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (default: ./quarry.toml if present).
    #[arg(long, global = true, env = "QUARRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Queue database: a SQLite file (default: queue.db), or postgres://user:pass@host/db to
    /// share one queue between machines.
    #[arg(long, global = true, env = "QUARRY_DB")]
    pub db: Option<String>,
    /// Write logs here instead of stderr.
    #[arg(long, global = true)]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write quarry.toml and the built-in agents/ and prompts/ for editing.
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Read a folder of research files into the queue (idempotent).
    Enqueue {
        dir: PathBuf,
        /// Only files matching these globs (relative to DIR).
        #[arg(long)]
        include: Vec<String>,
        /// Skip files matching these globs.
        #[arg(long)]
        exclude: Vec<String>,
        /// Path of the GGUF whose tokenizer sizes the chunks (default: the default model).
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Run the workers until every job is settled, then render the knowledge base.
    Run(RunArgs),
    /// What is queued, running, done and failed.
    Status {
        /// One JSON object for scripts.
        #[arg(long)]
        json: bool,
        /// List failed, dead and cancelled jobs and refused files with their errors.
        #[arg(long)]
        failed: bool,
    },
    /// Watch a run from another terminal (reads the database).
    Watch {
        #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
        progress: ProgressArg,
    },
    /// Send a job (or, with --dead, every dead job) back to the queue.
    Retry {
        job: Option<i64>,
        #[arg(long, conflicts_with = "job")]
        dead: bool,
    },
    /// Cancel a job that has not finished.
    Cancel { job: i64 },
    /// Re-render output/ from the database.
    Render {
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write into a non-empty folder quarry did not create (it still removes only files
        /// it wrote).
        #[arg(long)]
        force: bool,
    },
    /// List configured models with their GGUF metadata.
    Models,
    /// Search the ingested notes: full-text (BM25) and embeddings, fused by rank.
    Search(SearchArgs),
    /// Ask your notes: the answer is sentences of your notes, each cited as path:line.
    Ask(AskArgs),
    /// Catch the search index up: full-text rows and an embedding for every chunk that has
    /// none (search and ask do it themselves on first use).
    Index,
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Concurrent workers (3-5 suits a small machine).
    #[arg(long, short)]
    pub workers: Option<usize>,
    /// GGUF model for the default role model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where the knowledge base is written.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Write into a non-empty folder quarry did not create (it still removes only files it
    /// wrote).
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    /// How many chunks to print (default: [search] top_k).
    #[arg(long, short = 'k')]
    pub top: Option<usize>,
    #[arg(long, value_enum, default_value_t = SearchModeArg::Hybrid)]
    pub mode: SearchModeArg,
    /// One JSON object for scripts.
    #[arg(long)]
    pub json: bool,
    /// Do not embed chunks that have no vector yet: refuse instead (see `quarry index`).
    #[arg(long)]
    pub no_index: bool,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    pub question: String,
    /// Chunks retrieved for the answer (default: [search] top_k).
    #[arg(long, short = 'k')]
    pub top: Option<usize>,
    /// GGUF model that chooses the answer (default: the default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// One JSON object for scripts (nothing streamed).
    #[arg(long)]
    pub json: bool,
    /// Do not embed chunks that have no vector yet: refuse instead (see `quarry index`).
    #[arg(long)]
    pub no_index: bool,
}

/// Which ranking `quarry search` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SearchModeArg {
    /// BM25 over the words (SQLite FTS5).
    Text,
    /// Cosine similarity of sentence embeddings.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Live,
    Plain,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Burn down no-op jobs: jobs/s and claim latency.
    Queue {
        #[arg(long, default_value_t = 100_000)]
        jobs: usize,
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Jobs claimed (and completed) per transaction.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long)]
        json: bool,
    },
    /// One extraction workload on every configured model and backend at several numbers of
    /// concurrent agents: speed, memory and correctness, as markdown, JSON and an SVG chart.
    Models {
        /// Models of quarry.toml to compare (default: all of them).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Concurrent agents per row.
        #[arg(long, value_delimiter = ',', default_value = "1,3,5")]
        levels: Vec<usize>,
        /// The labelled chunks (JSON).
        #[arg(long, default_value = "bench/models/extraction.json")]
        chunks: PathBuf,
        /// Times the labelled chunks are sent per row.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// A server process whose peak RSS is reported: PID for every server model, or
        /// MODEL=PID for one (repeat for several servers).
        #[arg(long)]
        server_pid: Vec<crate::bench::models::ServerPid>,
        /// Write models.md, models.json and models.svg (the chart) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sequential vs one context per thread vs the batching engine.
    Engine {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Slot counts to try, e.g. 1,2,4,8.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        slots: Vec<usize>,
        /// Prompts (default: the bundled bench/prompts.txt).
        #[arg(long)]
        prompts: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        requests: usize,
        #[arg(long, default_value_t = 128)]
        max_tokens: u32,
        #[arg(long)]
        json: bool,
    },
    /// Retrieval quality (recall@5, MRR of full-text, vector and hybrid search on a labelled
    /// question set), embedding throughput, and query latency over synthetic chunks.
    Retrieval {
        /// Questions, one a line: `question<TAB>file[,file...]`; a `# corpus: DIR` line
        /// names the folder they are about.
        #[arg(long, default_value = "bench/retrieval/rust-patterns.tsv")]
        questions: PathBuf,
        /// The folder the questions are about (default: the file's `# corpus:` line).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Synthetic index sizes for the latency figures (none: skip them).
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        sizes: Vec<usize>,
        /// Queries timed per size.
        #[arg(long, default_value_t = 50)]
        queries: usize,
        #[arg(long)]
        json: bool,
    },
    /// The whole pipeline on a folder (enqueue, run with the configured model and workers,
    /// render) in a queue of its own, and its token bill per stage against the corpus size.
    Pipeline {
        /// The folder (default: the bundled example).
        #[arg(default_value = "examples/research")]
        dir: PathBuf,
        #[arg(long, short)]
        workers: Option<usize>,
        /// Keep the queue and the knowledge base in this folder (default: a temp dir).
        #[arg(long)]
        keep: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Walk + parse + chunk + insert a generated tree (or an existing folder).
    Ingest {
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Ingest this folder instead; when it does not exist, the tree is generated there
        /// and kept.
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}
