//! Backends from the configuration: the model registry of a run, loading each configured
//! model with the backend kind the config names (embedded llama.cpp, an OpenAI-compatible
//! server, or the scripted fake).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::{BackendKind, Config, ModelConfig};
use crate::llm::fake::FakeBackend;
use crate::llm::llama::{LlamaEngine, LlamaOptions};
use crate::llm::openai::{OpenAiBackend, OpenAiOptions};
use crate::llm::registry::{Loader, Registry};
use crate::llm::{Backend, LlmError};

/// Loads the models of `quarry.toml` by name, for the registry.
struct ConfigLoader {
    cfg: Config,
    slots: usize,
}

impl ConfigLoader {
    fn llama_options(&self, name: &str) -> Result<LlamaOptions, LlmError> {
        let m = self.model(name)?;
        let mut o = LlamaOptions::new(&m.path);
        o.slots = self.slots;
        o.ctx_per_slot = m.ctx_per_slot;
        o.kv_tokens = m.kv_tokens;
        o.batch = m.batch;
        if m.threads > 0 {
            o.threads = m.threads as i32;
        }
        o.memory_budget_mb = m.memory_budget_mb;
        o.fallback_template = m.chat_template.clone();
        o.prefix_cache = m.prefix_cache;
        o.jump_forward = m.jump_forward;
        o.kv_type = m.kv_type;
        o.kv_unified = m.kv_unified;
        o.contexts = m.contexts;
        Ok(o)
    }

    fn model(&self, name: &str) -> Result<&crate::config::ModelConfig, LlmError> {
        self.cfg
            .model(name)
            .map_err(|e| LlmError::Inference(e.to_string()))
    }
}

impl Loader for ConfigLoader {
    fn estimate_mb(&self, name: &str) -> Result<u64, LlmError> {
        if self.cfg.kind_of(name) != BackendKind::Llama {
            return Ok(0);
        }
        let o = self.llama_options(name)?;
        let info = crate::llm::llama::read_info(&o.path)?;
        Ok(crate::llm::llama::estimate_mb(&info, &o))
    }

    fn load(&self, name: &str) -> Result<Arc<dyn Backend>, LlmError> {
        let m = self.model(name)?;
        Ok(match self.cfg.kind_of(name) {
            BackendKind::Fake => FakeBackend::with_delay(
                self.cfg.backend.fake_reply.clone(),
                Duration::from_millis(self.cfg.backend.fake_delay_ms[0]),
                Duration::from_millis(self.cfg.backend.fake_delay_ms[1]),
                &self.cfg.backend.fake_abort_marker,
            ),
            BackendKind::Openai => Arc::new(openai_backend(m)?),
            BackendKind::Llama => LlamaEngine::start(self.llama_options(name)?)?,
        })
    }
}

/// The server backend of a model of kind `openai`, as its `[models.NAME]` says.
pub fn openai_backend(m: &ModelConfig) -> Result<OpenAiBackend, LlmError> {
    let mut o = OpenAiOptions::new(&m.url, &m.remote_model);
    o.api_key = (!m.api_key_env.is_empty())
        .then(|| std::env::var(&m.api_key_env).ok())
        .flatten();
    o.grammar = m.grammar_mode;
    o.stream = m.stream;
    o.stall_timeout = Duration::from_secs(m.stall_timeout_s.max(1));
    o.retries = m.retries;
    OpenAiBackend::with_options(o)
}

/// Loads model `name` of the config alone, outside a registry (benchmarks): the embedded
/// engine with `slots` concurrent sequences, or a server (checked to answer first).
pub async fn load_model(cfg: &Config, name: &str, slots: usize) -> Result<Arc<dyn Backend>> {
    let m = cfg.model(name)?;
    if cfg.kind_of(name) == BackendKind::Openai {
        let b = openai_backend(m)?;
        b.check(SERVER_WAIT)
            .await
            .with_context(|| format!("model {name:?}"))?;
        return Ok(Arc::new(b));
    }
    let loader = ConfigLoader {
        cfg: cfg.clone(),
        slots,
    };
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        loader
            .load(&name)
            .with_context(|| format!("model {name:?}"))
    })
    .await
    .context("the thread loading the model stopped")?
}

/// How long a run waits for a model's server to answer before it stops with an error naming
/// the server (it may still be starting).
pub const SERVER_WAIT: Duration = Duration::from_secs(10);

/// The model registry of a run: each model loads when a role first needs it. Every model an
/// enabled role names is checked first (file, header, memory estimate) and the default one
/// is loaded, so a missing or broken model stops the run before any job.
pub async fn start_backends(
    cfg: &Config,
    agents: &crate::agent::Agents,
    slots: usize,
) -> Result<crate::engine::Backends> {
    let loader = Arc::new(ConfigLoader {
        cfg: cfg.clone(),
        slots,
    });
    let mut names: Vec<&str> = agents.roles().map(|r| r.spec.model.as_str()).collect();
    names.sort();
    names.dedup();
    for name in names {
        loader
            .estimate_mb(name)
            .with_context(|| format!("model {name:?}"))?;
        // A server that is down stops the run now, with its URL, not every job later.
        if cfg.kind_of(name) == BackendKind::Openai {
            let m = cfg.model(name)?;
            openai_backend(m)?
                .check(SERVER_WAIT)
                .await
                .with_context(|| format!("model {name:?}"))?;
        }
    }
    let registry = Arc::new(Registry::new(loader, cfg.backend.memory_budget_mb));
    registry
        .get("default")
        .await
        .map(drop)
        .context("model \"default\"")?;
    Ok(registry)
}
