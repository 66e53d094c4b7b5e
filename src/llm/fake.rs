//! A scripted backend for fast, deterministic tests of everything around the model. It can
//! answer from a script, fail, stall, or return garbage, and it records what it was asked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Backend, BoxFuture, Completion, LlmError, Request, StopReason, Timings};

/// What the fake does for one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Text(String),
    Fail(String),
    /// Never answers (until the request's timeout).
    Stall,
    Panic,
    /// Aborts the whole process, as a crash in native code would (a poison input).
    Abort,
}

type ScriptFn = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// The scripted fake.
pub struct FakeBackend {
    script: Box<ScriptFn>,
    delay: (Duration, Duration),
    calls: AtomicUsize,
    seen: Mutex<Vec<Request>>,
}

impl FakeBackend {
    /// Answers each request with `script(request, call_number)`.
    pub fn new(script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(FakeBackend {
            script: Box::new(script),
            delay: (Duration::ZERO, Duration::ZERO),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// Always the same reply.
    pub fn constant(text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        Self::new(move |_, _| Reply::Text(text.clone()))
    }

    /// Like `constant`, taking a random time in `[min, max]` per request; with a non-empty
    /// `abort_marker`, a request whose prompt holds it aborts the process.
    pub fn with_delay(
        text: impl Into<String>,
        min: Duration,
        max: Duration,
        abort_marker: &str,
    ) -> Arc<Self> {
        let text = text.into();
        let marker = abort_marker.to_string();
        Arc::new(FakeBackend {
            script: Box::new(move |req, _| {
                if !marker.is_empty() && req.messages.iter().any(|m| m.content.contains(&marker)) {
                    Reply::Abort
                } else {
                    Reply::Text(text.clone())
                }
            }),
            delay: (min, max.max(min)),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Backend for FakeBackend {
    fn name(&self) -> String {
        "fake".into()
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Completion, LlmError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(req.clone());
            }
            let (min, max) = self.delay;
            if !max.is_zero() {
                let span = (max - min).as_millis() as u64;
                let extra = if span == 0 {
                    0
                } else {
                    fastrand::u64(0..=span)
                };
                tokio::time::sleep(min + Duration::from_millis(extra)).await;
            }
            let prompt_tokens: usize = req.messages.iter().map(|m| m.content.len() / 4).sum();
            match (self.script)(&req, n) {
                Reply::Text(mut text) => {
                    // Like a model, the fake stops at max_tokens (four bytes a token).
                    let limit = (req.sampling.max_tokens as usize).saturating_mul(4);
                    let mut stop = StopReason::EndOfText;
                    if text.len() > limit {
                        let mut cut = limit;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        text.truncate(cut);
                        stop = StopReason::MaxTokens;
                    }
                    let gen = text.len().div_ceil(4);
                    if let Some(p) = &req.progress {
                        p.add_generated(gen as u64);
                    }
                    super::TextStream::new(req.stream.clone()).finish(&text);
                    Ok(Completion {
                        text,
                        stop,
                        timings: Timings {
                            prompt_tokens: prompt_tokens as u64,
                            gen_tokens: gen as u64,
                            prompt_ms: 1.0,
                            gen_ms: 1.0,
                            ..Timings::default()
                        },
                    })
                }
                Reply::Fail(msg) => Err(LlmError::Scripted(msg)),
                Reply::Stall => {
                    tokio::time::sleep(req.timeout).await;
                    Err(LlmError::Timeout(req.timeout))
                }
                Reply::Panic => panic!("scripted panic in the fake backend"),
                Reply::Abort => std::process::abort(),
            }
        })
    }
}
