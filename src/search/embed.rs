//! Sentence embeddings in process: a BERT encoder (candle) and its tokenizer (tokenizers,
//! pure Rust), mean-pooled over the real tokens and L2-normalised. Reads the model's files
//! (`config.json`, `tokenizer.json`, `model.safetensors`) from one folder, which the set-up
//! fills with all-MiniLM-L6-v2; downloads nothing.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::{PaddingStrategy, Tokenizer, TruncationParams};

/// Tokens an embedded text keeps (the model's own tokenizer.json says 128); the rest is cut.
pub const MAX_TOKENS: usize = 256;

/// Why the embedding model cannot be used. Each names the folder or file it is about.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model not found: {path} is missing; run `make setup` (scripts/setup.sh installs all-MiniLM-L6-v2 there), or set [search] embedding_model in quarry.toml")]
    Missing { path: PathBuf },
    #[error("embedding model {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("embedding model {path} makes vectors of {found} dimensions, but {expected} are configured ([search] dimensions in quarry.toml): use the model the set-up installs, or set dimensions = {found}")]
    Dimension {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("embedding failed: {0}")]
    Compute(String),
}

impl From<candle_core::Error> for EmbedError {
    fn from(e: candle_core::Error) -> Self {
        EmbedError::Compute(e.to_string())
    }
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    name: String,
    dim: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads the model in folder `dir`, whose vectors must have `expected_dim` dimensions.
    /// Its name (stored beside every vector) is the folder's name.
    pub fn load(dir: &Path, expected_dim: usize) -> Result<Self, EmbedError> {
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(EmbedError::Missing { path: p })
            }
        };
        if !dir.is_dir() {
            return Err(EmbedError::Missing {
                path: dir.to_path_buf(),
            });
        }
        let invalid = |path: &Path, message: String| EmbedError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let config_path = file("config.json")?;
        let config: BertConfig = std::fs::read_to_string(&config_path)
            .map_err(|e| invalid(&config_path, e.to_string()))
            .and_then(|s| {
                serde_json::from_str(&s)
                    .map_err(|e| invalid(&config_path, format!("not a BERT config: {e}")))
            })?;
        if config.hidden_size != expected_dim {
            return Err(EmbedError::Dimension {
                path: dir.to_path_buf(),
                expected: expected_dim,
                found: config.hidden_size,
            });
        }
        let tok_path = file("tokenizer.json")?;
        let tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| invalid(&tok_path, format!("not a tokenizer: {e}")))?;
        let weights = file("model.safetensors")?;
        let bytes = std::fs::read(&weights).map_err(|e| invalid(&weights, e.to_string()))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| invalid(&weights, e.to_string()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "embedding-model".into());
        Self::new(vb, &config, tokenizer, &name)
            .map_err(|e| invalid(&weights, format!("cannot load its weights: {e}")))
    }

    /// A model from its weights (a `VarBuilder`: safetensors, or a `VarMap` in tests), its
    /// config and its tokenizer, cutting at `MAX_TOKENS` and padding to the longest text of a
    /// batch whatever the tokenizer file says.
    pub fn new(
        vb: VarBuilder,
        config: &BertConfig,
        mut tokenizer: Tokenizer,
        name: &str,
    ) -> Result<Self, EmbedError> {
        let model = BertModel::load(vb, config)?;
        let max = MAX_TOKENS.min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Compute(format!("tokenizer truncation: {e}")))?;
        match tokenizer.get_padding_mut() {
            Some(p) => p.strategy = PaddingStrategy::BatchLongest,
            None => {
                tokenizer.with_padding(Some(tokenizers::PaddingParams {
                    strategy: PaddingStrategy::BatchLongest,
                    pad_id: config.pad_token_id as u32,
                    ..Default::default()
                }));
            }
        }
        Ok(Embedder {
            model,
            tokenizer,
            name: name.to_string(),
            dim: config.hidden_size,
        })
    }

    /// The same model under another name (its vectors then count as another model's).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The name stored beside each vector: another name means other vectors.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens of `text` before truncation (with the special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        // The tokenizer truncates; count on a clone without truncation.
        let mut t = self.tokenizer.clone();
        if t.with_truncation(None).is_err() {
            return 0;
        }
        t.encode(text, true).map(|e| e.len()).unwrap_or(0)
    }

    /// One batch: padded to its longest text, mean-pooled over the real tokens, unit length.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Compute(format!("tokenizer: {e}")))?;
        let n = enc.len();
        let len = enc.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &enc {
            let pad = len - e.len();
            ids.extend(
                e.get_ids()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, pad)),
            );
            mask.extend(
                e.get_attention_mask()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, pad)),
            );
        }
        let dev = &self.model.device;
        let ids = Tensor::from_vec(ids, (n, len), dev)?;
        let mask = Tensor::from_vec(mask, (n, len), dev)?;
        let types = ids.zeros_like()?;
        let out = self.model.forward(&ids, &types, Some(&mask))?; // (n, len, dim)
        let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
        let summed = out.broadcast_mul(&m)?.sum(1)?; // (n, dim)
        let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }

    /// Every text, in batches of `batch` texts of similar length (sorted by length, so little
    /// is padding); the vectors come back in the order of `texts`. `progress` is told how many
    /// are done after each batch.
    pub fn embed_all(
        &self,
        texts: &[&str],
        batch: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for group in order.chunks(batch.max(1)) {
            let batch_texts: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            for (&i, v) in group.iter().zip(self.embed_batch(&batch_texts)?) {
                out[i] = v;
            }
            done += group.len();
            progress(done);
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests;
