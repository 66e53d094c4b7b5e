//! A small, pure GGUF header reader: checks that a file is a complete GGUF model before
//! llama.cpp sees it, and reads the metadata `quarry models` shows and the memory estimate
//! needs. Arrays (the tokenizer's vocabulary) are skipped, not loaded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("model file {0} not found")]
    Missing(PathBuf),
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a GGUF file (it starts with {magic:?}, not \"GGUF\")")]
    NotGguf { path: PathBuf, magic: String },
    #[error("{path} uses GGUF version {version}; this build reads versions 2 and 3")]
    Version { path: PathBuf, version: u32 },
    #[error("{path} is truncated or corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// A metadata value; arrays are summarised by their length.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { len: u64 },
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What the header says about a model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GgufInfo {
    pub path: PathBuf,
    pub version: u32,
    pub file_bytes: u64,
    pub tensors: u64,
    pub metadata: BTreeMap<String, Value>,
}

impl GgufInfo {
    pub fn architecture(&self) -> &str {
        self.str("general.architecture").unwrap_or("unknown")
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }
    /// A per-architecture key such as `llama.block_count`.
    pub fn arch_u64(&self, suffix: &str) -> Option<u64> {
        self.metadata
            .get(&format!("{}.{suffix}", self.architecture()))
            .and_then(Value::as_u64)
    }
    pub fn context_length(&self) -> Option<u64> {
        self.arch_u64("context_length")
    }
    pub fn has_chat_template(&self) -> bool {
        self.metadata.contains_key("tokenizer.chat_template")
    }
    /// The quantisation, from `general.file_type`.
    pub fn quantisation(&self) -> String {
        let ft = self
            .metadata
            .get("general.file_type")
            .and_then(Value::as_u64);
        match ft {
            Some(0) => "F32",
            Some(1) => "F16",
            Some(2) => "Q4_0",
            Some(3) => "Q4_1",
            Some(7) => "Q8_0",
            Some(8) => "Q5_0",
            Some(9) => "Q5_1",
            Some(10) => "Q2_K",
            Some(11) => "Q3_K_S",
            Some(12) => "Q3_K_M",
            Some(13) => "Q3_K_L",
            Some(14) => "Q4_K_S",
            Some(15) => "Q4_K_M",
            Some(16) => "Q5_K_S",
            Some(17) => "Q5_K_M",
            Some(18) => "Q6_K",
            Some(32) => "BF16",
            Some(n) => return format!("file_type {n}"),
            None => "unknown",
        }
        .to_string()
    }

    /// Bytes of KV cache per token of context (f16 keys and values).
    pub fn kv_bytes_per_token(&self) -> u64 {
        let layers = self.arch_u64("block_count").unwrap_or(32);
        let embd = self.arch_u64("embedding_length").unwrap_or(4096);
        let heads = self.arch_u64("attention.head_count").unwrap_or(32).max(1);
        let kv_heads = self.arch_u64("attention.head_count_kv").unwrap_or(heads);
        let head_dim = self
            .arch_u64("attention.key_length")
            .unwrap_or(embd / heads);
        2 * layers * kv_heads * head_dim * 2
    }
}

/// Reads and checks a GGUF header.
pub fn read(path: &Path) -> Result<GgufInfo, GgufError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            GgufError::Missing(path.to_path_buf())
        } else {
            GgufError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let file = File::open(path).map_err(io_err)?;
    let file_bytes = file.metadata().map_err(io_err)?.len();
    let mut r = Reader {
        inner: BufReader::new(file),
        path: path.to_path_buf(),
        file_bytes,
    };
    let mut magic = [0u8; 4];
    r.exact(&mut magic)?;
    if &magic != b"GGUF" {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            magic: String::from_utf8_lossy(&magic).into_owned(),
        });
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version {
            path: path.to_path_buf(),
            version,
        });
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    if tensors > 1_000_000 || kvs > 1_000_000 {
        return Err(r.corrupt(format!("implausible counts: {tensors} tensors, {kvs} keys")));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..kvs {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty)?;
        metadata.insert(key, value);
    }
    let alignment = metadata
        .get("general.alignment")
        .and_then(Value::as_u64)
        .unwrap_or(32)
        .max(1);
    // Tensor infos: name, dims, type, offset. The data must reach the end of the last tensor.
    let mut max_offset = 0u64;
    for _ in 0..tensors {
        let _name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims > 8 {
            return Err(r.corrupt(format!("tensor with {n_dims} dimensions")));
        }
        for _ in 0..n_dims {
            r.u64()?;
        }
        let _ty = r.u32()?;
        max_offset = max_offset.max(r.u64()?);
    }
    let pos = r.pos()?;
    let data_start = pos.div_ceil(alignment) * alignment;
    if tensors > 0 && data_start + max_offset >= file_bytes {
        return Err(r.corrupt(format!(
            "tensor data ends early: the file has {file_bytes} bytes, tensors start at byte {}",
            data_start + max_offset
        )));
    }
    Ok(GgufInfo {
        path: path.to_path_buf(),
        version,
        file_bytes,
        tensors,
        metadata,
    })
}

struct Reader {
    inner: BufReader<File>,
    path: PathBuf,
    file_bytes: u64,
}

impl Reader {
    fn corrupt(&self, what: String) -> GgufError {
        GgufError::Corrupt {
            path: self.path.clone(),
            what,
        }
    }
    fn pos(&mut self) -> Result<u64, GgufError> {
        let path = self.path.clone();
        self.inner
            .stream_position()
            .map_err(|source| GgufError::Io { path, source })
    }
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), GgufError> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt("the header ends before its end".into())
            } else {
                GgufError::Io {
                    path: self.path.clone(),
                    source: e,
                }
            }
        })
    }
    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let pos = self.pos()?;
        if pos.saturating_add(n) > self.file_bytes {
            return Err(self.corrupt("a value runs past the end of the file".into()));
        }
        let path = self.path.clone();
        self.inner
            .seek(SeekFrom::Current(n as i64))
            .map_err(|source| GgufError::Io { path, source })?;
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > 64 * 1024 * 1024 || self.pos()? + len > self.file_bytes {
            return Err(self.corrupt(format!("a string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    fn scalar_size(ty: u32) -> Option<u64> {
        match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }
    fn value(&mut self, ty: u32) -> Result<Value, GgufError> {
        let mut b8 = [0u8; 8];
        Ok(match ty {
            0 => {
                self.exact(&mut b8[..1])?;
                Value::Int(b8[0] as i64)
            }
            1 => {
                self.exact(&mut b8[..1])?;
                Value::Int(b8[0] as i8 as i64)
            }
            2 => {
                self.exact(&mut b8[..2])?;
                Value::Int(u16::from_le_bytes([b8[0], b8[1]]) as i64)
            }
            3 => {
                self.exact(&mut b8[..2])?;
                Value::Int(i16::from_le_bytes([b8[0], b8[1]]) as i64)
            }
            4 => Value::Int(self.u32()? as i64),
            5 => Value::Int(self.u32()? as i32 as i64),
            6 => Value::Float(f32::from_bits(self.u32()?) as f64),
            7 => {
                self.exact(&mut b8[..1])?;
                Value::Bool(b8[0] != 0)
            }
            8 => Value::Str(self.string()?),
            9 => {
                let elem = self.u32()?;
                let len = self.u64()?;
                match Self::scalar_size(elem) {
                    Some(size) => self.skip(len.saturating_mul(size))?,
                    None if elem == 8 => {
                        for _ in 0..len {
                            let n = self.u64()?;
                            self.skip(n)?;
                        }
                    }
                    None => return Err(self.corrupt(format!("array of value type {elem}"))),
                }
                Value::Array { len }
            }
            10 => Value::Int(self.u64()? as i64),
            11 => Value::Int(self.u64()? as i64),
            12 => Value::Float(f64::from_bits(self.u64()?)),
            other => return Err(self.corrupt(format!("unknown value type {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gguf_bytes(truncate_data: bool) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u64.to_le_bytes()); // tensors
        b.extend_from_slice(&2u64.to_le_bytes()); // kvs
        let key = |b: &mut Vec<u8>, k: &str| {
            b.extend_from_slice(&(k.len() as u64).to_le_bytes());
            b.extend_from_slice(k.as_bytes());
        };
        key(&mut b, "general.architecture");
        b.extend_from_slice(&8u32.to_le_bytes());
        key(&mut b, "llama");
        key(&mut b, "llama.context_length");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&2048u32.to_le_bytes());
        key(&mut b, "w");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&4u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&64u64.to_le_bytes()); // offset in data
        while b.len() % 32 != 0 {
            b.push(0);
        }
        if !truncate_data {
            b.extend_from_slice(&[0u8; 80]);
        }
        b
    }

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn reads_a_small_header() {
        let f = write(&gguf_bytes(false));
        let info = read(f.path()).unwrap();
        assert_eq!(info.architecture(), "llama");
        assert_eq!(info.context_length(), Some(2048));
        assert!(!info.has_chat_template());
    }

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let f = write(&gguf_bytes(true));
        assert!(matches!(read(f.path()), Err(GgufError::Corrupt { .. })));
        let full = gguf_bytes(false);
        let f = write(&full[..30]);
        assert!(matches!(read(f.path()), Err(GgufError::Corrupt { .. })));
        let f = write(b"PK\x03\x04 this is a zip");
        assert!(matches!(read(f.path()), Err(GgufError::NotGguf { .. })));
        assert!(matches!(
            read(Path::new("/nonexistent/model.gguf")),
            Err(GgufError::Missing(_))
        ));
    }
}
