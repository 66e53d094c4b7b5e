//! Language-model backends behind one trait: embedded llama.cpp, OpenAI-compatible HTTP
//! servers, and a scripted fake for tests. Only `llama` names `llama_cpp_2`.

pub mod factory;
pub mod fake;
pub mod gguf;
pub mod grammar;
pub mod llama;
pub mod openai;
pub mod registry;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(s: impl Into<String>) -> Self {
        Message {
            role: "system".into(),
            content: s.into(),
        }
    }
    pub fn user(s: impl Into<String>) -> Self {
        Message {
            role: "user".into(),
            content: s.into(),
        }
    }
    pub fn assistant(s: impl Into<String>) -> Self {
        Message {
            role: "assistant".into(),
            content: s.into(),
        }
    }
}

/// Sampling settings of one request.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
    pub max_tokens: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 0.95,
            seed: 42,
            max_tokens: 256,
        }
    }
}

/// A generation request.
#[derive(Clone, Debug)]
pub struct Request {
    pub messages: Vec<Message>,
    pub sampling: Sampling,
    /// GBNF grammar the output must follow.
    pub grammar: Option<String>,
    /// The JSON schema `grammar` was compiled from, when there is one: the embedded engine
    /// appends what it forces (the rest of a term or a quoted sentence once its start is
    /// chosen) in one batch instead of sampling it token by token (jump-forward decoding).
    pub schema: Option<Arc<serde_json::Value>>,
    pub stop: Vec<String>,
    pub timeout: Duration,
    /// Live counters the progress view reads; optional.
    pub progress: Option<Arc<GenProgress>>,
    /// Receives the reply's text as it is generated, piece by piece (the pieces concatenated
    /// are the completion's text); optional.
    pub stream: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl Request {
    pub fn new(messages: Vec<Message>) -> Self {
        Request {
            messages,
            sampling: Sampling::default(),
            grammar: None,
            schema: None,
            stop: Vec::new(),
            timeout: Duration::from_secs(300),
            progress: None,
            stream: None,
        }
    }
}

/// Streams a growing reply: each `push` sends what is new, holding back an incomplete UTF-8
/// sequence and any tail that may still become a stop string; `finish` sends the rest of the
/// final text. Backends that cannot stream call only `finish`.
#[derive(Debug, Default)]
pub struct TextStream {
    tx: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    sent: usize,
}

impl TextStream {
    pub fn new(tx: Option<tokio::sync::mpsc::UnboundedSender<String>>) -> Self {
        TextStream { tx, sent: 0 }
    }

    /// `bytes` is the whole reply so far.
    pub fn push(&mut self, bytes: &[u8], stops: &[String]) {
        if self.tx.is_none() {
            return;
        }
        let hold = stops
            .iter()
            .filter_map(|s| {
                (1..s.len())
                    .rev()
                    .find(|&k| bytes.ends_with(&s.as_bytes()[..k]))
            })
            .max()
            .unwrap_or(0);
        let end = bytes.len().saturating_sub(hold).max(self.sent);
        let new = &bytes[self.sent..end];
        let valid = match std::str::from_utf8(new) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&new[..e.valid_up_to()]).unwrap_or_default(),
        };
        self.send(valid.to_string());
    }

    /// Sends what `text`, the final reply, has beyond what was sent.
    pub fn finish(&mut self, text: &str) {
        if let Some(rest) = text.get(self.sent..) {
            self.send(rest.to_string());
        }
    }

    fn send(&mut self, piece: String) {
        if piece.is_empty() {
            return;
        }
        self.sent += piece.len();
        if let Some(tx) = &self.tx {
            if tx.send(piece).is_err() {
                self.tx = None; // nobody listens any more
            }
        }
    }
}

/// Counters a backend bumps while it works on a request.
#[derive(Debug, Default)]
pub struct GenProgress {
    pub prompt_tokens: AtomicU64,
    pub prompt_done: AtomicU64,
    pub gen_tokens: AtomicU64,
}

impl GenProgress {
    pub fn add_generated(&self, n: u64) {
        self.gen_tokens.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfText,
    StopString,
    MaxTokens,
}

/// Where the time went.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Timings {
    pub queue_ms: f64,
    pub ttft_ms: f64,
    pub prompt_tokens: u64,
    /// Prompt tokens whose KV came from a cached prefix instead of being computed.
    pub cached_tokens: u64,
    pub prompt_ms: f64,
    pub gen_tokens: u64,
    /// Of `gen_tokens`, those the grammar forced, appended in one batch (jump-forward) rather
    /// than sampled one step each.
    pub forced_tokens: u64,
    pub gen_ms: f64,
}

impl Timings {
    pub fn prompt_tps(&self) -> f64 {
        rate(
            self.prompt_tokens.saturating_sub(self.cached_tokens),
            self.prompt_ms,
        )
    }
    pub fn gen_tps(&self) -> f64 {
        rate(self.gen_tokens, self.gen_ms)
    }
}

pub fn rate(tokens: u64, ms: f64) -> f64 {
    if ms <= 0.0 {
        0.0
    } else {
        tokens as f64 * 1000.0 / ms
    }
}

/// A finished generation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Completion {
    pub text: String,
    pub stop: StopReason,
    pub timings: Timings,
}

/// Errors of a backend. `retryable` says whether another attempt may succeed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model file {path} not found (looked there): run `make setup` for the default model, or pass --model FILE, or set path under [models.NAME] in quarry.toml")]
    ModelMissing { path: PathBuf },
    #[error("model file {path} is not a usable GGUF model: {reason}")]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("model {model} needs about {need_mb} MB but the memory budget is {budget_mb} MB: lower slots/context, or raise memory_budget_mb ([backend] for all loaded models, [models.NAME] for one)")]
    OverBudget {
        model: String,
        need_mb: u64,
        budget_mb: u64,
    },
    #[error("prompt of {tokens} tokens does not fit the context of {limit} tokens per slot of model {model}")]
    PromptTooLong {
        model: String,
        tokens: usize,
        limit: usize,
    },
    #[error("generation timed out after {0:?}")]
    Timeout(Duration),
    #[error("generation was cancelled")]
    Cancelled,
    #[error("invalid grammar: {0}")]
    Grammar(String),
    #[error("the engine of model {0} stopped")]
    EngineGone(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("server {url}: {message}")]
    Http {
        url: String,
        message: String,
        retryable: bool,
    },
    #[error("scripted fake: {0}")]
    Scripted(String),
}

impl LlmError {
    /// Whether trying again can help.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::ModelMissing { .. }
            | LlmError::ModelInvalid { .. }
            | LlmError::OverBudget { .. }
            | LlmError::PromptTooLong { .. }
            | LlmError::Grammar(_) => false,
            LlmError::Http { retryable, .. } => *retryable,
            _ => true,
        }
    }

    /// A stable short name for logs, status and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::ModelMissing { .. } => "model_missing",
            LlmError::ModelInvalid { .. } => "model_invalid",
            LlmError::OverBudget { .. } => "over_budget",
            LlmError::PromptTooLong { .. } => "prompt_too_long",
            LlmError::Timeout(_) => "timeout",
            LlmError::Cancelled => "cancelled",
            LlmError::Grammar(_) => "grammar",
            LlmError::EngineGone(_) => "engine_gone",
            LlmError::Inference(_) => "inference",
            LlmError::Http { .. } => "http",
            LlmError::Scripted(_) => "scripted",
        }
    }
}

/// A model backend. Cheap to clone behind an `Arc`; safe to call from many workers at once.
pub trait Backend: Send + Sync {
    /// A short name for logs and benchmarks, e.g. `llama:SmolLM2-135M-Instruct.Q4_1`.
    fn name(&self) -> String;

    /// Generates a completion.
    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Completion, LlmError>>;

    /// Counts tokens as this backend's model would (for chunk sizing and the ETA).
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn streams_whole_characters_and_holds_back_a_possible_stop() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = TextStream::new(Some(tx));
        let stops = vec!["</end>".to_string()];
        let reply = "héllo </en";
        let bytes = reply.as_bytes();
        s.push(&bytes[..2], &stops); // "h" + half of "é"
        s.push(&bytes[..7], &stops); // "héllo "
        s.push(bytes, &stops); // "</en" may be a stop: held
        assert_eq!(collect(&mut rx), ["h", "éllo "]);
        // It was not a stop after all: the final text flushes it.
        s.finish("héllo </enough");
        assert_eq!(collect(&mut rx), ["</enough"]);
    }

    #[test]
    fn a_cut_stop_string_is_never_streamed() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = TextStream::new(Some(tx));
        let stops = vec!["STOP".to_string()];
        s.push(b"ok S", &stops);
        s.push(b"ok ST", &stops);
        s.finish("ok ");
        assert_eq!(collect(&mut rx).concat(), "ok ");
    }
}
