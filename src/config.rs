//! Validated settings: `quarry.toml` (optional) overridden by command-line flags. No clap types
//! pass this module; everything downstream takes a `Config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The default model's file, which the set-up (`scripts/setup.sh`) puts in
/// `data_dir()/models/`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where quarry keeps what is the user's, not a project's (the set-up's models), so that
/// `quarry run` finds the default model from any folder: `$QUARRY_DATA_DIR`, else
/// `$XDG_DATA_HOME/quarry`, else `~/.local/share/quarry`. `scripts/setup.sh` follows the
/// same rule.
pub fn data_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("QUARRY_DATA_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("quarry")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/quarry")))
        .unwrap_or_else(|| PathBuf::from(".quarry"))
}

/// The default model's path: `data_dir()/models/DEFAULT_MODEL_FILE`.
pub fn default_model_path() -> PathBuf {
    data_dir().join("models").join(DEFAULT_MODEL_FILE)
}

/// The embedding model's folder, which the set-up fills.
pub const DEFAULT_EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";

/// The embedding model's folder: `data_dir()/models/DEFAULT_EMBEDDING_MODEL`.
pub fn default_embedding_model_path() -> PathBuf {
    data_dir().join("models").join(DEFAULT_EMBEDDING_MODEL)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{0}")]
    Value(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The queue database: a SQLite file (the default, `queue.db`), or a PostgreSQL server
    /// (`postgres://user:password@host/db`) that several machines share.
    pub db: crate::queue::DbUrl,
    /// Where the knowledge base is rendered.
    pub output: PathBuf,
    /// User roles and prompts; the built-in ones are used for what is missing.
    pub agents_dir: PathBuf,
    pub prompts_dir: PathBuf,
    /// User page templates (`*.tera`); the built-in ones are used for what is missing.
    pub templates_dir: PathBuf,
    /// Concurrent workers (3-5 suits a small machine).
    pub workers: usize,
    pub backend: BackendConfig,
    pub models: BTreeMap<String, ModelConfig>,
    pub ingest: IngestConfig,
    pub queue: QueueConfig,
    pub search: SearchConfig,
}

/// Which backend serves the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// llama.cpp in process (llama-cpp-2).
    #[default]
    Llama,
    /// An OpenAI-compatible server.
    Openai,
    /// Scripted replies, for tests of everything around the model.
    Fake,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// `llama` (embedded llama.cpp), `openai` (an OpenAI-compatible server: llama-server,
    /// llamafile, Ollama, mlx_lm.server) or `fake` (scripted, for tests of the plumbing).
    pub kind: BackendKind,
    /// For `fake`: the reply to every request.
    pub fake_reply: String,
    /// For `fake`: each request takes a random time in this range (ms).
    pub fake_delay_ms: [u64; 2],
    /// For `fake`: a request whose prompt holds this text aborts the process (a poison
    /// input, for the crash tests). Empty: never.
    pub fake_abort_marker: String,
    /// Memory all loaded models may take together (MB). Models load when a role first needs
    /// them; the least recently used idle ones are unloaded to make room.
    pub memory_budget_mb: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Which backend serves this model; unset: `[backend] kind`. So one role can run on the
    /// embedded engine and another on a server, switched by this line alone.
    pub kind: Option<BackendKind>,
    pub path: PathBuf,
    pub ctx_per_slot: u32,
    /// KV cache cells shared by all workers; 0: twice `ctx_per_slot`.
    pub kv_tokens: u32,
    pub batch: u32,
    /// 0: the number of physical cores.
    pub threads: usize,
    pub memory_budget_mb: u64,
    pub chat_template: String,
    pub prefix_cache: bool,
    /// Append the text a role's schema forces (the rest of a term or a quoted sentence once
    /// its start is chosen) in one batch instead of one decoding step per token.
    pub jump_forward: bool,
    /// Element type of the KV cache: "f16", "q8_0" (half the memory) or "q4_0".
    pub kv_type: crate::llm::llama::KvType,
    /// One KV cache shared by all workers (true), or one of `ctx_per_slot` cells per worker.
    pub kv_unified: bool,
    /// Contexts over the one loaded model, each on its own thread with its share of the
    /// workers' slots and of the threads; 0: one per worker for a model under 300 MB (its
    /// decoding is bound by compute), else one context batching all workers.
    pub contexts: usize,
    /// Seconds a generation may go without progress before it counts as hung: the embedded
    /// engine renews it with each prompt chunk read and each token made, so a long reply on a
    /// busy machine is not cut; a server's reply must come whole within it.
    pub timeout_s: u64,
    /// With `backend.kind = "openai"`: the server's base URL, e.g. http://127.0.0.1:8080
    /// (llama-server), http://127.0.0.1:11434 (Ollama).
    pub url: String,
    /// The model name the server knows.
    pub remote_model: String,
    /// Environment variable holding an API key, if the server wants one.
    pub api_key_env: String,
    /// How the role grammar is sent: "gbnf" (llama-server, llamafile), "json", "none".
    pub grammar_mode: crate::llm::openai::GrammarMode,
    /// Stream replies from the server (server-sent events): the time to first token is
    /// measured at the first token and a stalled stream is noticed.
    pub stream: bool,
    /// Seconds a streamed reply may send nothing before it is given up and retried.
    pub stall_timeout_s: u64,
    /// Further attempts after a transient server failure (unreachable, 429, 5xx, stalled),
    /// with exponential backoff from 0.5 s to 8 s or the server's `Retry-After`.
    pub retries: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    pub extensions: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub max_file_bytes: u64,
    pub chunk_tokens: usize,
    pub overlap_tokens: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub lease_s: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

/// Retrieval: `quarry search` and `quarry ask`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Folder of the sentence-embedding model (config.json, tokenizer.json,
    /// model.safetensors); the set-up installs all-MiniLM-L6-v2 there.
    pub embedding_model: PathBuf,
    /// Dimensions of its vectors: a model of another dimension is refused.
    pub dimensions: usize,
    /// Texts embedded per batch.
    pub batch: usize,
    /// Chunks a search returns (and `ask` reads).
    pub top_k: usize,
    /// `ask` answers only when the nearest chunk's cosine similarity to the question is at
    /// least this (calibrated on bench/retrieval: see docs/benchmarks.md).
    pub min_similarity: f32,
    /// `ask`: a quote after the first is kept only when its sentence's cosine similarity to
    /// the question is at least this (a weak second citation, a record line, is dropped).
    pub min_sentence_similarity: f32,
    /// The pipeline: how many chunks of other files near each pattern the planner looks up
    /// (hybrid search, SQLite only); those that name and discuss the pattern are cited by its
    /// page (and shown to the writer, when it runs). 0: none.
    pub related: usize,
    /// The pipeline: a chunk of another file is related to a pattern only when its cosine
    /// similarity to the pattern's query is at least this.
    pub related_min_similarity: f32,
    /// "See also" links a pattern page to the nearest other pages at least this similar.
    pub see_also_min_similarity: f32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            embedding_model: default_embedding_model_path(),
            dimensions: 384,
            batch: 16,
            top_k: 5,
            min_similarity: 0.2,
            min_sentence_similarity: 0.2,
            related: 3,
            related_min_similarity: 0.45,
            see_also_min_similarity: 0.55,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let mut models = BTreeMap::new();
        models.insert("default".to_string(), ModelConfig::default());
        Config {
            db: crate::queue::DbUrl::parse("queue.db"),
            output: "output".into(),
            agents_dir: "agents".into(),
            prompts_dir: "prompts".into(),
            templates_dir: "templates".into(),
            workers: 4,
            backend: BackendConfig::default(),
            models,
            ingest: IngestConfig::default(),
            queue: QueueConfig::default(),
            search: SearchConfig::default(),
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            kind: BackendKind::Llama,
            fake_reply: r#"{"findings": []}"#.into(),
            fake_delay_ms: [0, 0],
            fake_abort_marker: String::new(),
            memory_budget_mb: 8192,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kind: None,
            path: default_model_path(),
            ctx_per_slot: 2048,
            kv_tokens: 0,
            batch: 512,
            threads: 0,
            memory_budget_mb: 8192,
            chat_template: "chatml".into(),
            prefix_cache: true,
            jump_forward: true,
            kv_type: crate::llm::llama::KvType::F16,
            kv_unified: true,
            contexts: 0,
            timeout_s: 300,
            url: "http://127.0.0.1:8080".into(),
            remote_model: "default".into(),
            api_key_env: String::new(),
            grammar_mode: crate::llm::openai::GrammarMode::Gbnf,
            stream: true,
            stall_timeout_s: 60,
            retries: 3,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            extensions: crate::ingest::IngestOptions::default().extensions,
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_bytes: 5 * 1024 * 1024,
            chunk_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_s: 120,
            backoff_base_ms: 2000,
            backoff_max_ms: 120_000,
        }
    }
}

impl Config {
    /// Reads `path` if given, else `./quarry.toml` if it exists, else the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("quarry.toml"), false),
        };
        if !required && !path.exists() {
            return Ok(Config::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.workers == 0 || self.workers > 64 {
            return Err(ConfigError::Value(format!(
                "workers must be between 1 and 64 (3-5 suits a small machine), not {}",
                self.workers
            )));
        }
        if self.search.top_k == 0 || self.search.batch == 0 || self.search.dimensions == 0 {
            return Err(ConfigError::Value(
                "[search] top_k, batch and dimensions must be at least 1".into(),
            ));
        }
        if !self.models.contains_key("default") {
            return Err(ConfigError::Value(
                "[models.default] is missing: roles use the model named \"default\" unless they name another".into(),
            ));
        }
        Ok(())
    }

    pub fn model(&self, name: &str) -> Result<&ModelConfig, ConfigError> {
        self.models.get(name).ok_or_else(|| {
            ConfigError::Value(format!(
                "no model named {name:?} in [models] of quarry.toml"
            ))
        })
    }

    /// The backend serving model `name`: its own `kind`, else `[backend] kind`.
    pub fn kind_of(&self, name: &str) -> BackendKind {
        self.models
            .get(name)
            .and_then(|m| m.kind)
            .unwrap_or(self.backend.kind)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.queue.lease_s.max(1))
    }
}

/// Physical cores: llama.cpp decodes fastest with one thread per core (hyper-threads and the
/// crate's default of 4 threads on 2 cores halve the speed).
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut cores = std::collections::BTreeSet::new();
    for cpu in 0..logical {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let core = std::fs::read_to_string(format!("{base}/core_id"));
        let pkg = std::fs::read_to_string(format!("{base}/physical_package_id"));
        if let (Ok(c), Ok(p)) = (core, pkg) {
            cores.insert((p.trim().to_string(), c.trim().to_string()));
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_partial_files_fill_in() {
        Config::default().validate().unwrap();
        let cfg: Config =
            toml::from_str("workers = 3\n[models.default]\nctx_per_slot = 1024\n").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.model("default").unwrap().ctx_per_slot, 1024);
        assert_eq!(cfg.model("default").unwrap().path, default_model_path());
        assert!(
            default_model_path().is_absolute(),
            "found from any folder, not ./models"
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let cfg: Config = toml::from_str("workers = 0").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("workers"));
        assert!(toml::from_str::<Config>("wokers = 3").is_err());
    }

    #[test]
    fn a_model_can_name_its_own_backend() {
        let cfg: Config = toml::from_str(
            "[models.default]\n[models.remote]\nkind = \"openai\"\nurl = \"http://127.0.0.1:9\"\n",
        )
        .unwrap();
        assert_eq!(cfg.kind_of("default"), BackendKind::Llama);
        assert_eq!(cfg.kind_of("remote"), BackendKind::Openai);
        let cfg: Config = toml::from_str("[backend]\nkind = \"openai\"\n").unwrap();
        assert_eq!(cfg.kind_of("default"), BackendKind::Openai);
    }

    #[test]
    fn physical_cores_is_at_least_one() {
        assert!(physical_cores() >= 1);
    }
}
