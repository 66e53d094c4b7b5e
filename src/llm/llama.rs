//! The embedded llama.cpp backend: one engine thread per loaded model owns the model and one
//! context with several sequence slots. Requests arrive on a bounded channel with their own
//! reply channel; every step admits waiting requests into free slots, prefills in chunks and
//! decodes all active sequences in one batch (continuous batching). A new request reuses the
//! KV cache of the longest common token prefix held by any slot (`seq_cp`), so a role's shared
//! instructions and a chunk read by two roles are computed once.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use async_channel::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend as Ggml;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use super::gguf::{self, GgufError, GgufInfo};
use super::{
    Backend, BoxFuture, Completion, LlmError, Message, Request, StopReason, TextStream, Timings,
};

/// How to load and run a model.
#[derive(Clone, Debug)]
pub struct LlamaOptions {
    pub path: PathBuf,
    /// Concurrent sequences in the one context.
    pub slots: usize,
    /// Context tokens one request may use (prompt + reply).
    pub ctx_per_slot: u32,
    /// KV cache cells shared by all slots (the context is unified); 0: `ctx_per_slot` times
    /// min(slots, 2). Requests wait for room rather than fail.
    pub kv_tokens: u32,
    /// Threads for decoding; physical cores is best.
    pub threads: i32,
    /// Most tokens evaluated in one step (prefill chunks share it).
    pub batch: u32,
    /// Refuse to load when the estimate exceeds this.
    pub memory_budget_mb: u64,
    /// Used when the GGUF has no chat template (e.g. "chatml").
    pub fallback_template: String,
    /// Reuse KV of common prefixes across requests.
    pub prefix_cache: bool,
    /// Append the text a request's schema forces (the rest of a term or a quoted sentence
    /// once its start is chosen) in one batch instead of one step per token.
    pub jump_forward: bool,
    /// Element type of the KV cache.
    pub kv_type: KvType,
    /// One KV cache shared by all slots (true), or a stream of `ctx_per_slot` cells per slot
    /// (false): more memory, but each sequence attends over its own cells only.
    pub kv_unified: bool,
    /// Contexts over the one loaded model, each on a thread of its own with its share of the
    /// slots and threads; 0: one per slot for a small model (`SMALL_MODEL_BYTES`), else one.
    /// On a few cores a small model's decoding is bound by compute, and sequences on threads
    /// of their own beat one batch on all threads (docs/benchmarks.md); a larger model is
    /// bound by memory bandwidth, which one batch shares.
    pub contexts: usize,
}

/// Element type of the KV cache: `q8_0` halves its memory at a negligible cost in quality,
/// `q4_0` quarters it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvType {
    #[default]
    F16,
    Q8_0,
    Q4_0,
}

impl KvType {
    /// Bytes per 32 elements.
    fn bytes_per_32(self) -> u64 {
        match self {
            KvType::F16 => 64,
            KvType::Q8_0 => 34,
            KvType::Q4_0 => 18,
        }
    }

    fn to_llama(self) -> KvCacheType {
        match self {
            KvType::F16 => KvCacheType::F16,
            KvType::Q8_0 => KvCacheType::Q8_0,
            KvType::Q4_0 => KvCacheType::Q4_0,
        }
    }
}

impl LlamaOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LlamaOptions {
            path: path.into(),
            slots: 4,
            ctx_per_slot: 2048,
            kv_tokens: 0,
            threads: crate::config::physical_cores() as i32,
            batch: 512,
            memory_budget_mb: 8192,
            fallback_template: "chatml".into(),
            prefix_cache: true,
            jump_forward: true,
            kv_type: KvType::F16,
            kv_unified: true,
            contexts: 0,
        }
    }
}

/// Weights below this size decode bound by compute on a CPU (see `LlamaOptions::contexts`).
pub const SMALL_MODEL_BYTES: u64 = 300 * 1024 * 1024;

impl LlamaOptions {
    /// The options of each context for a model file of `model_bytes`: its share of the slots
    /// and threads.
    fn per_context(&self, model_bytes: u64) -> Vec<LlamaOptions> {
        let k = match self.contexts {
            0 if model_bytes < SMALL_MODEL_BYTES => self.slots,
            0 => 1,
            k => k,
        }
        .clamp(1, self.slots.max(1));
        (0..k)
            .map(|i| LlamaOptions {
                slots: self.slots / k + usize::from(i < self.slots % k),
                threads: (self.threads / k as i32).max(1),
                contexts: 1,
                ..self.clone()
            })
            .collect()
    }

    /// The KV cells to allocate: at least one full request.
    pub fn kv_cells(&self) -> u32 {
        if !self.kv_unified {
            return self.ctx_per_slot * self.slots.max(1) as u32;
        }
        let auto = self.ctx_per_slot * (self.slots.clamp(1, 2) as u32);
        if self.kv_tokens == 0 {
            auto
        } else {
            self.kv_tokens.max(self.ctx_per_slot)
        }
    }
}

/// Memory a model will take: weights + the shared KV cache + compute buffers.
pub fn estimate_mb(info: &GgufInfo, opts: &LlamaOptions) -> u64 {
    // kv_bytes_per_token counts f16 elements (2 bytes, 64 per 32).
    let contexts = opts.per_context(info.file_bytes);
    let cells: u64 = contexts.iter().map(|c| c.kv_cells() as u64).sum();
    let kv = info.kv_bytes_per_token() * cells * opts.kv_type.bytes_per_32() / 64;
    let vocab = info
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|v| match v {
            gguf::Value::Array { len } => Some(*len),
            _ => None,
        })
        .unwrap_or(32_000);
    let embd = info.arch_u64("embedding_length").unwrap_or(4096);
    // logits for a full batch plus activations: a rough upper bound.
    let compute = contexts.len() as u64 * opts.batch as u64 * (vocab * 4 + embd * 4 * 16);
    (info.file_bytes + kv + compute) / (1024 * 1024) + 16
}

fn ggml() -> Result<&'static Ggml, LlmError> {
    static GGML: OnceLock<Result<Ggml, String>> = OnceLock::new();
    GGML.get_or_init(|| {
        Ggml::init()
            .map(|mut b| {
                if std::env::var_os("QUARRY_LLAMA_LOG").is_none() {
                    b.void_logs();
                }
                b
            })
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| LlmError::Inference(format!("cannot start llama.cpp: {e}")))
}

/// Reads and checks a model file's GGUF header, with the error a user is shown.
pub fn read_info(path: &Path) -> Result<GgufInfo, LlmError> {
    gguf::read(path).map_err(|e| match e {
        GgufError::Missing(path) => LlmError::ModelMissing {
            path: std::path::absolute(&path).unwrap_or(path),
        },
        other => LlmError::ModelInvalid {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// llama.cpp's own grammar for a JSON Schema (its `json_schema_to_grammar`), in GBNF. Quarry
/// writes its grammars itself (`grammar::schema_to_gbnf`); the tests check them against this
/// one.
pub fn reference_grammar(schema: &serde_json::Value) -> Result<String, LlmError> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string())
        .map_err(|e| LlmError::Grammar(format!("llama.cpp cannot convert the schema: {e}")))
}

/// Checks the file and loads the model's weights (shared by the engine and tokenizer).
fn load_model(opts: &LlamaOptions) -> Result<(Arc<LlamaModel>, GgufInfo), LlmError> {
    let info = read_info(&opts.path)?;
    let need = estimate_mb(&info, opts);
    if need > opts.memory_budget_mb {
        return Err(LlmError::OverBudget {
            model: model_name(&opts.path),
            need_mb: need,
            budget_mb: opts.memory_budget_mb,
        });
    }
    let model = LlamaModel::load_from_file(ggml()?, &opts.path, &LlamaModelParams::default())
        .map_err(|e| LlmError::ModelInvalid {
            path: opts.path.clone(),
            reason: format!(
                "llama.cpp could not load it ({e}); is the quantisation supported by this build?"
            ),
        })?;
    Ok((Arc::new(model), info))
}

pub fn model_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

struct Job {
    req: Request,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Completion, LlmError>>,
}

/// A handle to the engine threads of one model (one per context). Dropping the last handle
/// stops them.
pub struct LlamaEngine {
    name: String,
    model: Arc<LlamaModel>,
    info: GgufInfo,
    tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    stats: Arc<Mutex<EngineStats>>,
}

/// Counters over the engine's life.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EngineStats {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub gen_tokens: u64,
    /// Of `gen_tokens`, those forced by a grammar and appended in one batch.
    pub forced_tokens: u64,
    pub steps: u64,
}

impl LlamaEngine {
    /// Loads the model once and starts one engine thread per context; the threads take
    /// requests from one queue, each when it has a free slot.
    pub fn start(opts: LlamaOptions) -> Result<Arc<LlamaEngine>, LlmError> {
        let (model, info) = load_model(&opts)?;
        let name = format!("llama:{}", model_name(&opts.path));
        let (tx, rx) = async_channel::bounded::<Job>(opts.slots.max(1) * 4);
        let stats = Arc::new(Mutex::new(EngineStats::default()));
        let mut threads = Vec::new();
        let engine = |threads: Vec<std::thread::JoinHandle<()>>| LlamaEngine {
            name: name.clone(),
            model: model.clone(),
            info: info.clone(),
            tx: Mutex::new(Some(tx.clone())),
            threads: Mutex::new(threads),
            stats: stats.clone(),
        };
        for (i, copts) in opts.per_context(info.file_bytes).into_iter().enumerate() {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (m, st, n, rx) = (model.clone(), stats.clone(), name.clone(), rx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("engine-{}-{i}", model_name(&opts.path)))
                .spawn(move || run_engine(&m, &copts, &n, rx, ready_tx, &st));
            let thread = match spawned {
                Ok(t) => t,
                Err(e) => {
                    drop(engine(threads)); // stops the threads started so far
                    return Err(LlmError::Inference(format!(
                        "cannot start the engine thread: {e}"
                    )));
                }
            };
            threads.push(thread);
            let ready = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(LlmError::EngineGone(name.clone())));
            if let Err(e) = ready {
                drop(engine(threads));
                return Err(e);
            }
        }
        Ok(Arc::new(engine(threads)))
    }

    pub fn info(&self) -> &GgufInfo {
        &self.info
    }

    /// The contexts (engine threads) serving this model.
    pub fn contexts(&self) -> usize {
        self.threads.lock().map(|t| t.len()).unwrap_or(0)
    }

    pub fn stats(&self) -> EngineStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the threads after the requests in flight.
    pub fn shutdown(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            if let Some(tx) = tx.take() {
                tx.close();
            }
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }

    pub fn tokenize(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }
}

impl Drop for LlamaEngine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Backend for LlamaEngine {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenize(text)
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Completion, LlmError>> {
        Box::pin(async move {
            let timeout = req.timeout;
            let (reply, rx) = oneshot::channel();
            let tx = self
                .tx
                .lock()
                .ok()
                .and_then(|t| t.clone())
                .ok_or_else(|| LlmError::EngineGone(self.name.clone()))?;
            let job = Job {
                req,
                enqueued: Instant::now(),
                reply,
            };
            // The channel is bounded: wait for room.
            tx.send(job)
                .await
                .map_err(|_| LlmError::EngineGone(self.name.clone()))?;
            // `timeout` is how long the engine may make no progress, not how long a reply may
            // take: on a busy machine a long reply (or a wait behind other slots) takes long
            // and is not hung. The engine times out a slot that makes nothing for `timeout`;
            // here, an engine that takes no step at all for that long (wedged) ends the wait.
            // Dropping `rx` tells the engine to free the slot.
            let mut rx = rx;
            let mut steps = self.stats().steps;
            loop {
                match tokio::time::timeout(timeout + Duration::from_secs(5), &mut rx).await {
                    Ok(Ok(res)) => return res,
                    Ok(Err(_)) => return Err(LlmError::EngineGone(self.name.clone())),
                    Err(_) => {
                        let now = self.stats().steps;
                        if now == steps {
                            return Err(LlmError::Timeout(timeout));
                        }
                        steps = now;
                    }
                }
            }
        })
    }
}

/// One sequence slot of the context.
struct Slot {
    seq: i32,
    /// Tokens whose KV is in this sequence, in order.
    cache: Vec<LlamaToken>,
    active: Option<Active>,
    last_used: Instant,
}

struct Active {
    job: Job,
    prompt: Vec<LlamaToken>,
    /// Next prompt token to evaluate.
    fed: usize,
    max_tokens: usize,
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    bytes: Vec<u8>,
    n_gen: usize,
    /// Token sampled but not yet evaluated.
    next: Option<LlamaToken>,
    /// Tokens the grammar forces after `next`, accepted by it but not yet evaluated: they
    /// are evaluated in one batch, and only the last one's logits are sampled.
    forced: std::collections::VecDeque<LlamaToken>,
    n_forced: usize,
    /// The reply's tokens as the KV cache holds them (sampled or forced), each with the byte
    /// of `bytes` it starts at.
    out: Vec<(LlamaToken, usize)>,
    /// Index in the current batch whose logits belong to this slot.
    logits_at: Option<i32>,
    started: Instant,
    first_token: Option<Instant>,
    prefill_done: Option<Instant>,
    cached: usize,
    /// When the slot counts as hung: `timeout` after it last read a prompt chunk or made a
    /// token.
    deadline: Instant,
    stream: TextStream,
}

fn run_engine(
    model: &LlamaModel,
    opts: &LlamaOptions,
    name: &str,
    rx: Receiver<Job>,
    ready: mpsc::Sender<Result<(), LlmError>>,
    stats: &Mutex<EngineStats>,
) {
    let backend = match ggml() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = opts.kv_cells();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(opts.batch)
        .with_n_ubatch(opts.batch)
        .with_n_seq_max(opts.slots as u32)
        .with_n_threads(opts.threads)
        .with_n_threads_batch(opts.threads)
        .with_type_k(opts.kv_type.to_llama())
        .with_type_v(opts.kv_type.to_llama())
        .with_kv_unified(opts.kv_unified);
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(LlmError::Inference(format!(
                "cannot create a context of {n_ctx} tokens for {name}: {e}"
            ))));
            return;
        }
    };
    let template = match model.chat_template(None) {
        Ok(t) => t,
        Err(_) => {
            tracing::warn!(model = name, template = %opts.fallback_template,
                "the model has no chat template (a base model?); using the configured fallback");
            match LlamaChatTemplate::new(&opts.fallback_template) {
                Ok(t) => t,
                Err(e) => {
                    let _ = ready.send(Err(LlmError::Inference(format!("bad chat template: {e}"))));
                    return;
                }
            }
        }
    };
    let _ = ready.send(Ok(()));
    let mut engine = Engine {
        model,
        opts,
        name,
        template,
        slots: (0..opts.slots)
            .map(|i| Slot {
                seq: i as i32,
                cache: Vec::new(),
                active: None,
                last_used: Instant::now(),
            })
            .collect(),
        batch: LlamaBatch::new(opts.batch as usize, opts.slots as i32),
        stats,
    };
    engine.run(&mut ctx, rx);
}

struct Engine<'m> {
    model: &'m LlamaModel,
    opts: &'m LlamaOptions,
    name: &'m str,
    template: LlamaChatTemplate,
    slots: Vec<Slot>,
    batch: LlamaBatch<'static>,
    stats: &'m Mutex<EngineStats>,
}

impl Engine<'_> {
    fn run(&mut self, ctx: &mut LlamaContext<'_>, rx: Receiver<Job>) {
        let mut waiting: std::collections::VecDeque<Job> = Default::default();
        let mut open = true;
        loop {
            // Admit: block when idle, otherwise take what there is room for (other contexts
            // take from the same queue).
            let busy = self.slots.iter().any(|s| s.active.is_some());
            if open && !busy && waiting.is_empty() {
                match rx.recv_blocking() {
                    Ok(job) => waiting.push_back(job),
                    Err(_) => open = false,
                }
            }
            let free = self.slots.iter().filter(|s| s.active.is_none()).count();
            while open && waiting.len() < free {
                match rx.try_recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => open = false,
                }
            }
            if !open && waiting.is_empty() && !self.slots.iter().any(|s| s.active.is_some()) {
                return;
            }
            while let Some(free) = self.pick_slot(waiting.front()) {
                let Some(job) = waiting.pop_front() else {
                    break;
                };
                match self.admit(ctx, free, job) {
                    Ok(None) => {}
                    Ok(Some(job)) => {
                        // No room in the KV cache until a running request ends, or its
                        // prefix is being computed for another request: wait.
                        waiting.push_front(job);
                        break;
                    }
                    Err(failed) => {
                        let (job, e) = *failed;
                        let _ = job.reply.send(Err(e));
                    }
                }
            }
            self.reap();
            if !self.slots.iter().any(|s| s.active.is_some()) {
                continue;
            }
            self.step(ctx);
        }
    }

    /// True when a request being prefilled shares a longer prefix with `prompt` (at least
    /// 32 tokens more) than any KV cache holds yet: requests that arrive together (the same
    /// role's instructions) then wait for that prefix to be computed once and copy it,
    /// instead of all computing it side by side.
    fn prefix_coming(&self, prompt: &[LlamaToken]) -> bool {
        let cached = self
            .slots
            .iter()
            .map(|s| common_prefix(&s.cache, prompt))
            .max()
            .unwrap_or(0);
        let coming = self
            .slots
            .iter()
            .filter_map(|s| s.active.as_ref())
            .map(|a| common_prefix(&a.prompt, prompt))
            .max()
            .unwrap_or(0);
        coming >= cached + 32
    }

    /// A free slot for the job: the one whose cache shares most with it, else the least
    /// recently used.
    fn pick_slot(&self, job: Option<&Job>) -> Option<usize> {
        job?;
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .min_by_key(|(_, s)| s.last_used)
            .map(|(i, _)| i)
    }

    fn render(&self, messages: &[Message]) -> Result<String, LlmError> {
        let chat: Vec<LlamaChatMessage> = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.replace('\0', "")))
            .collect::<Result<_, _>>()
            .map_err(|e| LlmError::Inference(e.to_string()))?;
        self.model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| LlmError::Inference(format!("chat template: {e}")))
    }

    fn admit(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        slot: usize,
        job: Job,
    ) -> Result<Option<Job>, Box<(Job, LlmError)>> {
        let text = match self.render(&job.req.messages) {
            Ok(t) => t,
            Err(e) => return Err(Box::new((job, e))),
        };
        let prompt = self.model.vocab().tokenize(text.as_bytes(), true, true);
        let limit = self.opts.ctx_per_slot as usize;
        if prompt.is_empty() || prompt.len() + 8 > limit {
            let e = LlmError::PromptTooLong {
                model: self.name.to_string(),
                tokens: prompt.len(),
                limit,
            };
            return Err(Box::new((job, e)));
        }
        let max_tokens = (job.req.sampling.max_tokens as usize).min(limit - prompt.len());
        if self.opts.prefix_cache && self.prefix_coming(&prompt) {
            return Ok(Some(job));
        }
        if !self.make_room(ctx, slot, prompt.len() + max_tokens) {
            return Ok(Some(job));
        }
        let grammar = match &job.req.grammar {
            Some(g) => match LlamaSampler::grammar(self.model, g, "root") {
                Ok(s) => Some(s),
                Err(e) => return Err(Box::new((job, LlmError::Grammar(e.to_string())))),
            },
            None => None,
        };
        let s = &job.req.sampling;
        let chain = if s.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(s.top_p, 1),
                LlamaSampler::temp(s.temperature),
                LlamaSampler::dist(s.seed),
            ])
        };

        // Prefix reuse: the longest common prefix held by any slot.
        let mut reuse = 0usize;
        let mut from = slot;
        if self.opts.prefix_cache {
            for (i, other) in self.slots.iter().enumerate() {
                let n = common_prefix(&other.cache, &prompt);
                if n > reuse || (n == reuse && i == slot) {
                    reuse = n;
                    from = i;
                }
            }
        }
        // Always evaluate at least the last prompt token, for its logits.
        reuse = reuse.min(prompt.len() - 1);
        let seq = self.slots[slot].seq;
        if from == slot && reuse > 0 {
            // Keep our own [0, reuse), drop the rest.
            let kept = ctx.clear_kv_cache_seq(Some(seq as u32), Some(reuse as u32), None);
            if !matches!(kept, Ok(true)) {
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                reuse = 0;
            }
        } else {
            let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
            if reuse > 0 {
                let src = self.slots[from].seq;
                if self.opts.kv_unified {
                    let _ = ctx.copy_kv_cache_seq(src, seq, Some(0), Some(reuse as u32));
                } else {
                    // Between streams llama.cpp copies a whole sequence: copy, then trim.
                    let _ = ctx.copy_kv_cache_seq(src, seq, None, None);
                    let _ = ctx.clear_kv_cache_seq(Some(seq as u32), Some(reuse as u32), None);
                }
            }
        }
        let slot_ref = &mut self.slots[slot];
        slot_ref.cache = prompt[..reuse].to_vec();
        slot_ref.last_used = Instant::now();
        let deadline = Instant::now() + job.req.timeout;
        if let Some(p) = &job.req.progress {
            p.prompt_tokens
                .store(prompt.len() as u64, std::sync::atomic::Ordering::Relaxed);
            p.prompt_done
                .store(reuse as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let job_stream = job.req.stream.clone();
        slot_ref.active = Some(Active {
            job,
            fed: reuse,
            cached: reuse,
            prompt,
            max_tokens,
            chain,
            grammar,
            bytes: Vec::new(),
            n_gen: 0,
            next: None,
            forced: Default::default(),
            n_forced: 0,
            out: Vec::new(),
            logits_at: None,
            started: Instant::now(),
            first_token: None,
            prefill_done: None,
            deadline,
            stream: TextStream::new(job_stream),
        });
        Ok(None)
    }

    /// KV cells other slots hold or may still need (shared prefixes counted in full: safe).
    fn kv_used(&self, except: usize) -> usize {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != except)
            .map(|(_, s)| {
                s.cache.len()
                    + s.active.as_ref().map_or(0, |a| {
                        a.prompt.len().saturating_sub(a.fed) + a.max_tokens.saturating_sub(a.n_gen)
                    })
            })
            .sum()
    }

    /// Frees the caches of idle slots, least recently used first, until `need` cells fit.
    /// False when running requests hold too much: the caller waits.
    fn make_room(&mut self, ctx: &mut LlamaContext<'_>, slot: usize, need: usize) -> bool {
        if !self.opts.kv_unified {
            return true; // every slot has a stream of its own, and the request fits in it
        }
        let budget = self.opts.kv_cells() as usize;
        loop {
            if self.kv_used(slot) + need <= budget {
                return true;
            }
            let victim = self
                .slots
                .iter()
                .enumerate()
                .filter(|(i, s)| *i != slot && s.active.is_none() && !s.cache.is_empty())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i);
            let Some(v) = victim else { return false };
            let _ = ctx.clear_kv_cache_seq(Some(self.slots[v].seq as u32), None, None);
            self.slots[v].cache.clear();
        }
    }

    /// Ends requests whose caller went away or whose time is up.
    fn reap(&mut self) {
        let now = Instant::now();
        for slot in &mut self.slots {
            let gone = match &slot.active {
                Some(a) if a.job.reply.is_closed() => Some(LlmError::Cancelled),
                Some(a) if now > a.deadline => Some(LlmError::Timeout(a.job.req.timeout)),
                _ => None,
            };
            if let Some(e) = gone {
                if let Some(a) = slot.active.take() {
                    let _ = a.job.reply.send(Err(e));
                }
            }
        }
    }

    fn step(&mut self, ctx: &mut LlamaContext<'_>) {
        self.batch.clear();
        let cap = self.opts.batch as usize;
        let mut used = 0usize;
        // Decoding slots first: one token each.
        for slot in &mut self.slots {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            a.logits_at = None;
            // The sampled token, then what the grammar forces after it, as far as the batch
            // holds; the last token's logits are sampled once nothing forced is left.
            let mut feed: Vec<LlamaToken> = a.next.take().into_iter().collect();
            let room = cap.saturating_sub(used + feed.len());
            let n = a.forced.len().min(room);
            feed.extend(a.forced.drain(..n));
            let done = a.forced.is_empty();
            for (k, &tok) in feed.iter().enumerate() {
                let last = done && k + 1 == feed.len();
                let pos = slot.cache.len() as i32;
                if self.batch.add(tok, pos, &[slot.seq], last).is_err() {
                    break;
                }
                if last {
                    a.logits_at = Some(used as i32);
                }
                slot.cache.push(tok);
                used += 1;
            }
        }
        // Prefilling slots share what is left, in chunks.
        let prefilling: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .active
                    .as_ref()
                    .is_some_and(|a| a.fed < a.prompt.len())
            })
            .collect();
        if !prefilling.is_empty() {
            let share = ((cap - used) / prefilling.len()).max(1);
            for i in prefilling {
                let slot = &mut self.slots[i];
                let Some(a) = slot.active.as_mut() else {
                    continue;
                };
                let take = share.min(a.prompt.len() - a.fed).min(cap - used);
                for k in 0..take {
                    let idx = a.fed + k;
                    let last = idx + 1 == a.prompt.len();
                    let pos = idx as i32;
                    if self
                        .batch
                        .add(a.prompt[idx], pos, &[slot.seq], last)
                        .is_err()
                    {
                        break;
                    }
                    if last {
                        a.logits_at = Some(used as i32);
                    }
                    slot.cache.push(a.prompt[idx]);
                    used += 1;
                }
                a.fed += take;
                if take > 0 {
                    a.deadline = Instant::now() + a.job.req.timeout;
                }
                if let Some(p) = &a.job.req.progress {
                    p.prompt_done
                        .store(a.fed as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        if used == 0 {
            return;
        }
        if let Err(e) = ctx.decode(&mut self.batch) {
            tracing::error!(model = self.name, error = %e, "decode failed; failing the requests in this step");
            for slot in &mut self.slots {
                if let Some(a) = slot.active.take() {
                    let _ = a
                        .job
                        .reply
                        .send(Err(LlmError::Inference(format!("decode failed: {e}"))));
                    let _ = ctx.clear_kv_cache_seq(Some(slot.seq as u32), None, None);
                    slot.cache.clear();
                }
            }
            return;
        }
        if let Ok(mut st) = self.stats.lock() {
            st.steps += 1;
        }
        let vocab = self.model.vocab();
        for slot in &mut self.slots {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            let Some(idx) = a.logits_at.take() else {
                continue;
            };
            let now = Instant::now();
            if a.prefill_done.is_none() {
                a.prefill_done = Some(now);
            }
            let tok = sample(ctx, idx, &mut a.chain, a.grammar.as_mut());
            a.first_token.get_or_insert(now);
            a.deadline = now + a.job.req.timeout;
            let mut stop = None;
            if vocab.is_eog(tok) {
                stop = Some(StopReason::EndOfText);
            } else {
                a.out.push((tok, a.bytes.len()));
                a.bytes
                    .extend_from_slice(&vocab.token_to_piece(tok, false, None));
                a.n_gen += 1;
                if let Some(p) = &a.job.req.progress {
                    p.add_generated(1);
                }
                if let Some(cut) = find_stop(&a.bytes, &a.job.req.stop) {
                    a.bytes.truncate(cut);
                    stop = Some(StopReason::StopString);
                } else if a.n_gen >= a.max_tokens {
                    stop = Some(StopReason::MaxTokens);
                } else {
                    a.next = Some(tok);
                    if self.opts.jump_forward {
                        jump_forward(&vocab, a);
                    }
                    a.stream.push(&a.bytes, &a.job.req.stop);
                }
            }
            if let Some(stop) = stop {
                let mut a = slot.active.take().expect("active slot");
                slot.last_used = now;
                let done = a.prefill_done.unwrap_or(now);
                let timings = Timings {
                    queue_ms: ms(a.started - a.job.enqueued),
                    ttft_ms: ms(a.first_token.unwrap_or(now) - a.job.enqueued),
                    prompt_tokens: a.prompt.len() as u64,
                    cached_tokens: a.cached as u64,
                    prompt_ms: ms(done - a.started),
                    gen_tokens: a.n_gen as u64,
                    forced_tokens: a.n_forced as u64,
                    gen_ms: ms(now - done),
                };
                if let Ok(mut st) = self.stats.lock() {
                    st.requests += 1;
                    st.prompt_tokens += timings.prompt_tokens;
                    st.cached_tokens += timings.cached_tokens;
                    st.gen_tokens += timings.gen_tokens;
                    st.forced_tokens += timings.forced_tokens;
                }
                let text = String::from_utf8_lossy(&a.bytes).into_owned();
                a.stream.finish(&text);
                let _ = a.job.reply.send(Ok(Completion {
                    text,
                    stop,
                    timings,
                }));
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Appends to `a` what its grammar forces after the text it has generated (jump-forward
/// decoding): the text its schema forces ([`super::grammar::forced_in`]: the rest of a term or
/// a quoted sentence once its start is chosen) is accepted by the grammar and queued to be
/// evaluated in one batch, up to `max_tokens`.
///
/// The tokens queued are those the tokenizer reads the whole value as (from the reply's
/// token holding its opening quote), as the model would most likely have sampled them, when
/// the model's own tokens of the value so far agree with that reading up to the one just
/// sampled (which is then replaced, not yet evaluated); else the rest's own tokens.
fn jump_forward(vocab: &llama_cpp_2::vocab::LlamaVocab<'_>, a: &mut Active) {
    let (Some(schema), Some(grammar)) = (a.job.req.schema.as_deref(), a.grammar.as_mut()) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&a.bytes) else {
        return; // cut inside a character: the next token completes it
    };
    let Some((quote, rest)) = super::grammar::forced_in(schema, text) else {
        return;
    };
    let pieces = vocab.tokenize(rest.as_bytes(), false, false);
    if a.n_gen + pieces.len() > a.max_tokens {
        return; // sampled as before, and cut at max_tokens as before
    }
    // The grammar reads characters: any tokens of the rest take it to the same state.
    let mut accepted = 0;
    for &tok in &pieces {
        if !allows(grammar, tok) {
            break;
        }
        grammar.accept(tok);
        accepted += 1;
    }
    if accepted == 0 {
        return;
    }
    let pieces = &pieces[..accepted];
    let bytes: Vec<u8> = pieces
        .iter()
        .flat_map(|&t| vocab.token_to_piece(t, false, None))
        .collect();
    // The value as the tokenizer reads it, from the token holding its quote.
    let first = a.out.iter().rposition(|&(_, at)| at <= quote).unwrap_or(0);
    let from = a.out.get(first).map_or(0, |&(_, at)| at);
    let mut feed: Vec<LlamaToken> = pieces.to_vec();
    let mut at = a.bytes.len();
    let mut replaced = false;
    if text.is_char_boundary(from) {
        let value = format!("{}{}", &text[from..], String::from_utf8_lossy(&bytes));
        let read = vocab.tokenize(value.as_bytes(), false, false);
        let mine: Vec<LlamaToken> = a.out[first..].iter().map(|&(t, _)| t).collect();
        let evaluated = mine.len() - 1; // the last one sampled is still to be evaluated
        let fits = a.n_gen - 1 + read.len().saturating_sub(evaluated) <= a.max_tokens;
        if fits && read.len() > evaluated && read[..evaluated] == mine[..evaluated] {
            a.next = None;
            if let Some((_, start)) = a.out.pop() {
                at = start;
            }
            a.n_gen -= 1;
            replaced = true;
            feed = read[evaluated..].to_vec();
        }
    }
    for &tok in &feed {
        a.out.push((tok, at));
        at += vocab.token_to_piece(tok, false, None).len();
    }
    a.bytes.extend_from_slice(&bytes);
    // A replaced sampled token is counted as sampled: the rest of the feed was forced.
    let added = feed.len() - usize::from(replaced);
    a.n_gen += feed.len();
    a.n_forced += added;
    a.forced.extend(feed);
    if let Some(p) = &a.job.req.progress {
        p.add_generated(added as u64);
    }
}

/// True when the grammar admits `tok` next.
fn allows(grammar: &mut LlamaSampler, tok: LlamaToken) -> bool {
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(tok, 1.0, 0.0)], false);
    grammar.apply(&mut one);
    one.data.first().is_some_and(|d| d.logit().is_finite())
}

/// Samples the next token. With a grammar, the unconstrained best token is tried first and
/// the full grammar pass runs only when the grammar rejects it (about 1.4x instead of 2x the
/// cost of a step).
fn sample(
    ctx: &LlamaContext<'_>,
    idx: i32,
    chain: &mut LlamaSampler,
    grammar: Option<&mut LlamaSampler>,
) -> LlamaToken {
    let tok = chain.sample(ctx, idx);
    let Some(grammar) = grammar else { return tok };
    let tok = if allows(grammar, tok) {
        tok
    } else {
        let mut all = ctx.token_data_array_ith(idx);
        grammar.apply(&mut all);
        chain.apply(&mut all);
        all.selected_token().unwrap_or(tok)
    };
    grammar.accept(tok);
    tok
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Byte offset where the first stop string starts, if one occurs.
fn find_stop(bytes: &[u8], stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| bytes.windows(s.len()).position(|w| w == s.as_bytes()))
        .min()
}

/// A model's tokenizer alone (vocabulary only, no weights): sizes chunks in the tokens of the
/// model that will read them.
pub struct Tokenizer {
    model: LlamaModel,
}

impl Tokenizer {
    pub fn load(path: &Path) -> Result<Tokenizer, LlmError> {
        read_info(path)?;
        let params = LlamaModelParams::default().with_vocab_only(true);
        let model = LlamaModel::load_from_file(ggml()?, path, &params).map_err(|e| {
            LlmError::ModelInvalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }
        })?;
        Ok(Tokenizer { model })
    }
}

impl crate::ingest::TokenCounter for Tokenizer {
    fn count(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_share_the_slots_and_threads() {
        let mut o = LlamaOptions::new("m.gguf");
        o.slots = 5;
        o.threads = 2;
        let small = o.per_context(100 << 20);
        assert_eq!(small.iter().map(|c| c.slots).collect::<Vec<_>>(), [1; 5]);
        assert!(small.iter().all(|c| c.threads == 1 && c.contexts == 1));
        assert_eq!(
            o.per_context(SMALL_MODEL_BYTES).len(),
            1,
            "a larger model: one batch"
        );
        o.contexts = 2;
        let two = o.per_context(100 << 20);
        assert_eq!(two.iter().map(|c| c.slots).collect::<Vec<_>>(), [3, 2]);
        assert!(two.iter().all(|c| c.threads == 1));
        o.contexts = 9;
        assert_eq!(
            o.per_context(100 << 20).len(),
            5,
            "never more contexts than slots"
        );
    }

    #[test]
    fn stop_strings_cut_at_the_earliest() {
        assert_eq!(find_stop(b"abc</end>def", &["</end>".into()]), Some(3));
        assert_eq!(find_stop(b"abc", &["x".into(), String::new()]), None);
        assert_eq!(find_stop(b"a.b;c", &[";".into(), ".".into()]), Some(1));
    }
}
