//! OpenAI-compatible HTTP servers (llama-server, llamafile, Ollama, mlx_lm.server, vLLM):
//! `POST {url}/v1/chat/completions`. Replies are streamed (server-sent events) by default, so
//! the time to first token is measured when the first token arrives and a stream that stops
//! sending is given up after `stall_timeout` rather than the whole request's timeout.
//! Transient failures (the server unreachable, 429, 5xx, a stalled or cut stream) are retried
//! with exponential backoff, honouring `Retry-After`. The role's grammar goes out as
//! llama.cpp's `grammar` field, or as a JSON response format for servers that do not read
//! GBNF.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Backend, BoxFuture, Completion, LlmError, Request, StopReason, TextStream, Timings};

/// How a request's grammar is passed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrammarMode {
    /// llama.cpp's `grammar` field (llama-server, llamafile).
    Gbnf,
    /// `response_format: {"type": "json_object"}` (Ollama, vLLM, most others).
    Json,
    /// Nothing: the reply is checked afterwards only.
    None,
}

/// How one server is spoken to.
#[derive(Clone, Debug)]
pub struct OpenAiOptions {
    /// Base URL, e.g. `http://127.0.0.1:8080` (a trailing `/` or `/v1` is dropped).
    pub url: String,
    /// The model name the server knows.
    pub model: String,
    pub api_key: Option<String>,
    pub grammar: GrammarMode,
    /// Stream the reply (server-sent events); false: one JSON reply.
    pub stream: bool,
    /// A stream that sends nothing for this long is given up (and retried).
    pub stall_timeout: Duration,
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// First backoff; doubled per attempt up to `backoff_max` (a `Retry-After` the server
    /// sends is used instead, within the same cap).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl OpenAiOptions {
    pub fn new(url: &str, model: &str) -> Self {
        OpenAiOptions {
            url: url.to_string(),
            model: model.to_string(),
            api_key: None,
            grammar: GrammarMode::Gbnf,
            stream: true,
            stall_timeout: Duration::from_secs(60),
            retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
        }
    }
}

pub struct OpenAiBackend {
    client: reqwest::Client,
    url: String,
    opts: OpenAiOptions,
}

/// A failed attempt, and how long the server asked to wait before the next.
struct Failed {
    error: LlmError,
    retry_after: Option<Duration>,
}

impl From<LlmError> for Failed {
    fn from(error: LlmError) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

/// What a reply's bytes said, streamed or not.
#[derive(Default)]
struct Reply {
    text: String,
    finish: Option<String>,
    usage: serde_json::Value,
    timings: serde_json::Value,
    /// Content pieces received: the generated tokens when the server reports no usage.
    pieces: u64,
    first_token: Option<Instant>,
}

impl Reply {
    /// Reads one `chat.completion` or `chat.completion.chunk` object.
    fn read(&mut self, v: &serde_json::Value, now: Instant) -> Result<(), String> {
        if let Some(e) = v.get("error") {
            return Err(format!(
                "the server reported an error: {}",
                e.get("message").unwrap_or(e)
            ));
        }
        if let Some(choice) = v["choices"].get(0) {
            let content = choice["delta"]["content"]
                .as_str()
                .or_else(|| choice["message"]["content"].as_str());
            if let Some(c) = content.filter(|c| !c.is_empty()) {
                self.first_token.get_or_insert(now);
                self.text.push_str(c);
                self.pieces += 1;
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                self.finish = Some(f.to_string());
            }
        }
        if v["usage"].is_object() {
            self.usage = v["usage"].clone();
        }
        if v["timings"].is_object() {
            self.timings = v["timings"].clone();
        }
        Ok(())
    }
}

/// The events of a server-sent event stream as they complete: the `data:` payloads of each
/// event, fed bytes as they arrive.
#[derive(Default)]
struct SseReader {
    buf: Vec<u8>,
}

impl SseReader {
    /// The payloads of the events `bytes` completes.
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

/// Where the first event of `buf` ends, and the length of the blank line ending it.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The base URL without a trailing `/` or `/v1`: users paste either.
fn base_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    u.strip_suffix("/v1").unwrap_or(u).to_string()
}

/// Seconds of a `Retry-After` header (the delay form; an HTTP date is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The wait before attempt `attempt` (1-based): the server's `Retry-After` if it sent one,
/// else `base` doubled per attempt; both capped at `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration, asked: Option<Duration>) -> Duration {
    asked
        .unwrap_or_else(|| base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)))
        .min(max)
}

impl OpenAiBackend {
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        grammar: GrammarMode,
    ) -> Result<Self, LlmError> {
        let mut o = OpenAiOptions::new(url, model);
        o.api_key = api_key;
        o.grammar = grammar;
        Self::with_options(o)
    }

    pub fn with_options(opts: OpenAiOptions) -> Result<Self, LlmError> {
        let url = base_url(&opts.url);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LlmError::Http {
                url: url.clone(),
                message: e.to_string(),
                retryable: false,
            })?;
        Ok(OpenAiBackend { client, url, opts })
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server answers at all: `GET /v1/models`, tried every second for up to
    /// `wait` (a server may still be starting). Any HTTP answer counts; only a server that
    /// cannot be reached is an error, naming the URL and what to do.
    pub async fn check(&self, wait: Duration) -> Result<(), LlmError> {
        let endpoint = format!("{}/v1/models", self.url);
        let started = Instant::now();
        loop {
            let mut http = self.client.get(&endpoint).timeout(Duration::from_secs(5));
            if let Some(key) = &self.opts.api_key {
                http = http.bearer_auth(key);
            }
            match http.send().await {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() + Duration::from_secs(1) >= wait => {
                    return Err(LlmError::Http {
                        url: self.url.clone(),
                        message: format!(
                            "cannot reach the server ({}) for {} s: start it, or fix `url` of this model in quarry.toml",
                            error_chain(&e),
                            started.elapsed().as_secs()
                        ),
                        retryable: false,
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    fn body(&self, req: &Request) -> serde_json::Value {
        let mut body = json!({
            "model": self.opts.model,
            "messages": req.messages,
            "max_tokens": req.sampling.max_tokens,
            "temperature": req.sampling.temperature,
            "top_p": req.sampling.top_p,
            "seed": req.sampling.seed,
            "stream": self.opts.stream,
        });
        if self.opts.stream {
            // The token counts come in the last event (OpenAI, llama-server, Ollama).
            body["stream_options"] = json!({"include_usage": true});
        }
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        if let Some(g) = &req.grammar {
            match self.opts.grammar {
                GrammarMode::Gbnf => body["grammar"] = json!(g),
                GrammarMode::Json => body["response_format"] = json!({"type": "json_object"}),
                GrammarMode::None => {}
            }
        }
        body
    }

    async fn once(&self, req: &Request) -> Result<Completion, Failed> {
        let endpoint = format!("{}/v1/chat/completions", self.url);
        let err = |message: String, retryable: bool| LlmError::Http {
            url: endpoint.clone(),
            message,
            retryable,
        };
        let started = Instant::now();
        let mut http = self.client.post(&endpoint).json(&self.body(req));
        if let Some(key) = &self.opts.api_key {
            http = http.bearer_auth(key);
        }
        let resp = http.send().await.map_err(|e| {
            err(
                format!("cannot reach the server: {}", error_chain(&e)),
                true,
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let asked = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            let retryable = status.is_server_error() || status.as_u16() == 429;
            let snippet: String = text.chars().take(300).collect();
            return Err(Failed {
                error: err(format!("HTTP {status}: {snippet}"), retryable),
                retry_after: asked,
            });
        }
        let mut reply = Reply::default();
        let mut stream = TextStream::new(req.stream.clone());
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            let mut resp = resp;
            let mut sse = SseReader::default();
            let mut counted = 0;
            'read: loop {
                let chunk = tokio::time::timeout(self.opts.stall_timeout, resp.chunk())
                    .await
                    .map_err(|_| {
                        err(
                            format!(
                                "the stream stalled: nothing for {} s after {} characters",
                                self.opts.stall_timeout.as_secs_f64(),
                                reply.text.len()
                            ),
                            true,
                        )
                    })?
                    .map_err(|e| err(format!("the stream broke: {}", error_chain(&e)), true))?;
                let Some(bytes) = chunk else {
                    break; // the server closed the stream
                };
                for data in sse.feed(&bytes) {
                    if data.trim() == "[DONE]" {
                        break 'read;
                    }
                    let v: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                        err(format!("an event of the stream is not JSON: {e}"), true)
                    })?;
                    reply.read(&v, Instant::now()).map_err(|m| err(m, true))?;
                    stream.push(reply.text.as_bytes(), &req.stop);
                    if let Some(p) = &req.progress {
                        p.add_generated(reply.pieces - counted);
                        counted = reply.pieces;
                    }
                }
            }
            if reply.finish.is_none() && reply.usage.is_null() {
                return Err(err(
                    format!(
                        "the stream ended before the reply did ({} characters)",
                        reply.text.len()
                    ),
                    true,
                )
                .into());
            }
        } else {
            let text = resp
                .text()
                .await
                .map_err(|e| err(format!("reading the reply: {}", error_chain(&e)), true))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| err(format!("the reply is not JSON: {e}"), true))?;
            if v["choices"][0]["message"]["content"].as_str().is_none() {
                return Err(err("the reply has no choices[0].message.content".into(), true).into());
            }
            reply.read(&v, Instant::now()).map_err(|m| err(m, true))?;
            // A reply that arrives as one piece has its first token when it arrives.
            reply.first_token.get_or_insert_with(Instant::now);
        }
        let end = Instant::now();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let first = reply.first_token.unwrap_or(end);
        let (u, t) = (&reply.usage, &reply.timings); // llama-server adds its own timings
        let timings = Timings {
            queue_ms: 0.0,
            ttft_ms: ms(first - started),
            prompt_tokens: u["prompt_tokens"]
                .as_u64()
                .or_else(|| t["prompt_n"].as_u64())
                .unwrap_or(0),
            cached_tokens: t["cache_n"]
                .as_u64()
                .or_else(|| u["prompt_tokens_details"]["cached_tokens"].as_u64())
                .unwrap_or(0),
            prompt_ms: t["prompt_ms"].as_f64().unwrap_or(ms(first - started)),
            gen_tokens: u["completion_tokens"]
                .as_u64()
                .or_else(|| t["predicted_n"].as_u64())
                .unwrap_or(reply.pieces),
            forced_tokens: 0,
            gen_ms: t["predicted_ms"].as_f64().unwrap_or(ms(end - first)),
        };
        if let Some(p) = &req.progress {
            if !is_sse {
                p.add_generated(timings.gen_tokens);
            }
        }
        stream.finish(&reply.text);
        let stop = match reply.finish.as_deref() {
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::EndOfText,
        };
        Ok(Completion {
            text: reply.text,
            stop,
            timings,
        })
    }
}

/// An error with its causes, on one line (reqwest hides the useful part, such as
/// "Connection refused", in its sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl Backend for OpenAiBackend {
    fn name(&self) -> String {
        format!("openai:{}@{}", self.opts.model, self.url)
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Completion, LlmError>> {
        Box::pin(async move {
            let deadline = Instant::now() + req.timeout;
            let mut attempt = 0;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let result = tokio::time::timeout(left, self.once(&req))
                    .await
                    .unwrap_or_else(|_| Err(LlmError::Timeout(req.timeout).into()));
                match result {
                    Ok(c) => return Ok(c),
                    Err(f) if f.error.retryable() && attempt < self.opts.retries => {
                        attempt += 1;
                        let wait = backoff(
                            attempt,
                            self.opts.backoff_base,
                            self.opts.backoff_max,
                            f.retry_after,
                        );
                        if Instant::now() + wait >= deadline {
                            return Err(f.error);
                        }
                        tracing::debug!(error = %f.error, attempt, ?wait, "retrying the server");
                        tokio::time::sleep(wait).await;
                    }
                    Err(f) => return Err(f.error),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-endpoint HTTP server on loopback that answers each connection with the next
    /// canned (status, body) and records the request bodies.
    async fn server(replies: Vec<(u16, String)>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, body) in replies {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                loop {
                    let n = sock.read(&mut tmp).await.unwrap();
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len: usize = text[..h]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len {
                            seen.push(text[h + 4..].to_string());
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
            seen
        });
        (url, handle)
    }

    fn req() -> Request {
        let mut r = Request::new(vec![Message::user("hi")]);
        r.grammar = Some("root ::= \"x\"".into());
        r.timeout = Duration::from_secs(5);
        r
    }

    #[tokio::test]
    async fn parses_a_reply_and_sends_the_grammar() {
        let body = r#"{"choices":[{"message":{"content":"{\"ok\":true}"},"finish_reason":"stop"}],
                      "usage":{"prompt_tokens":12,"completion_tokens":5},
                      "timings":{"prompt_ms":40.0,"predicted_ms":50.0,"cache_n":8}}"#;
        let (url, seen) = server(vec![(200, body.into())]).await;
        let b = OpenAiBackend::new(&url, "m", None, GrammarMode::Gbnf).unwrap();
        let c = b.generate(req()).await.unwrap();
        assert_eq!(c.text, "{\"ok\":true}");
        assert_eq!(
            (
                c.timings.prompt_tokens,
                c.timings.gen_tokens,
                c.timings.cached_tokens
            ),
            (12, 5, 8)
        );
        let sent: serde_json::Value = serde_json::from_str(&seen.await.unwrap()[0]).unwrap();
        assert_eq!(sent["grammar"], "root ::= \"x\"");
        assert_eq!(sent["model"], "m");
    }

    #[tokio::test]
    async fn a_server_error_is_retried_and_a_client_error_is_not() {
        let ok =
            r#"{"choices":[{"message":{"content":"fine"},"finish_reason":"length"}],"usage":{}}"#;
        let (url, _) = server(vec![(503, "busy".into()), (200, ok.into())]).await;
        let b = OpenAiBackend::new(&url, "m", None, GrammarMode::Json).unwrap();
        let c = b.generate(req()).await.unwrap();
        assert_eq!((c.text.as_str(), c.stop), ("fine", StopReason::MaxTokens));

        let (url, _) = server(vec![(400, "bad model".into())]).await;
        let b = OpenAiBackend::new(&url, "m", None, GrammarMode::Json).unwrap();
        let e = b.generate(req()).await.unwrap_err();
        assert!(!e.retryable() && e.to_string().contains("400"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_retryable_error_naming_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let b = OpenAiBackend::new(&url, "m", None, GrammarMode::None).unwrap();
        let e = b.generate(req()).await.unwrap_err();
        assert!(e.retryable() && e.to_string().contains(&url), "{e}");
    }
    /// One scripted reply of [`script`]: status, extra headers, and the body in parts, each
    /// sent after its delay; `hang` keeps the connection open afterwards without a word.
    struct Scripted {
        status: u16,
        headers: &'static str,
        parts: Vec<(u64, String)>,
        hang: bool,
    }

    fn sse(events: &[&str]) -> Vec<(u64, String)> {
        events
            .iter()
            .map(|e| (0, format!("data: {e}\n\n")))
            .collect()
    }

    fn delta(text: &str) -> String {
        json!({"choices":[{"delta":{"content":text},"finish_reason":null}]}).to_string()
    }

    /// A loopback server answering each connection with the next scripted reply (chunked
    /// encoding for a streamed one); returns the times at which requests arrived.
    async fn script(replies: Vec<Scripted>) -> (String, tokio::task::JoinHandle<Vec<Instant>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle =
            tokio::spawn(async move {
                let mut arrivals = Vec::new();
                let mut open = Vec::new();
                for r in replies {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    arrivals.push(Instant::now());
                    let mut buf = [0u8; 65536];
                    let _ = sock.read(&mut buf).await.unwrap();
                    let head =
                        format!(
                    "HTTP/1.1 {} X\r\ncontent-type: {}\r\n{}transfer-encoding: chunked\r\n\r\n",
                    r.status,
                    if r.status == 200 { "text/event-stream" } else { "application/json" },
                    r.headers
                );
                    sock.write_all(head.as_bytes()).await.unwrap();
                    for (delay, part) in r.parts {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let chunk = format!("{:x}\r\n{part}\r\n", part.len());
                        if sock.write_all(chunk.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    if r.hang {
                        open.push(sock);
                    } else {
                        let _ = sock.write_all(b"0\r\n\r\n").await;
                    }
                }
                arrivals
            });
        (url, handle)
    }

    fn fast(url: &str) -> OpenAiBackend {
        let mut o = OpenAiOptions::new(url, "m");
        o.backoff_base = Duration::from_millis(50);
        o.stall_timeout = Duration::from_millis(400);
        OpenAiBackend::with_options(o).unwrap()
    }

    #[tokio::test]
    async fn a_stream_is_read_piece_by_piece_and_ttft_is_taken_at_the_first_token() {
        let usage = json!({"choices":[{"delta":{},"finish_reason":"stop"}],
                           "usage":{"prompt_tokens":20,"completion_tokens":3},
                           "timings":{"prompt_n":20,"cache_n":4,"prompt_ms":10.0,"predicted_ms":600.0}})
        .to_string();
        let mut parts = sse(&[&delta("{\"a\"")]);
        parts.push((300, format!("data: {}\n\n", delta(":"))));
        parts.push((
            300,
            format!("data: {}\n\ndata: {usage}\n\ndata: [DONE]\n\n", delta("1}")),
        ));
        let (url, _) = script(vec![Scripted {
            status: 200,
            headers: "",
            parts,
            hang: false,
        }])
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut r = req();
        r.stream = Some(tx);
        let t = Instant::now();
        let c = fast(&url).generate(r).await.unwrap();
        let total = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(c.text, "{\"a\":1}");
        let mut pieces = Vec::new();
        while let Ok(p) = rx.try_recv() {
            pieces.push(p);
        }
        assert!(pieces.len() >= 3, "streamed as it came: {pieces:?}");
        assert_eq!(pieces.concat(), c.text);
        // The first token came at once, the rest 600 ms later.
        assert!(
            c.timings.ttft_ms < 250.0 && total >= 550.0,
            "{:?} total {total}",
            c.timings
        );
        assert_eq!(
            (
                c.timings.prompt_tokens,
                c.timings.cached_tokens,
                c.timings.gen_tokens
            ),
            (20, 4, 3)
        );
    }

    #[tokio::test]
    async fn a_stalled_stream_is_given_up_and_retried() {
        let done =
            json!({"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}).to_string();
        let (url, arrivals) = script(vec![
            Scripted {
                status: 200,
                headers: "",
                parts: sse(&[&delta("{")]),
                hang: true,
            },
            Scripted {
                status: 200,
                headers: "",
                parts: sse(&[&done, "[DONE]"]),
                hang: false,
            },
        ])
        .await;
        let t = Instant::now();
        let c = fast(&url).generate(req()).await.unwrap();
        assert_eq!(
            c.text, "ok",
            "the second attempt's reply, not the stalled one's"
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert_eq!(arrivals.await.unwrap().len(), 2);

        // Every attempt stalls: the error says so and names the server.
        let (url, _) = script(
            (0..6)
                .map(|_| Scripted {
                    status: 200,
                    headers: "",
                    parts: sse(&[&delta("{")]),
                    hang: true,
                })
                .collect(),
        )
        .await;
        let e = fast(&url).generate(req()).await.unwrap_err();
        assert!(
            e.to_string().contains("stalled") && e.to_string().contains(&url),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_stream_cut_before_its_end_is_an_error_not_a_short_reply() {
        let (url, _) = script(
            (0..4)
                .map(|_| Scripted {
                    status: 200,
                    headers: "",
                    parts: sse(&[&delta("{\"a\"")]),
                    hang: false,
                })
                .collect(),
        )
        .await;
        let e = fast(&url).generate(req()).await.unwrap_err();
        assert!(
            e.retryable() && e.to_string().contains("ended before"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn too_many_requests_waits_as_long_as_the_server_asks() {
        let done =
            json!({"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}).to_string();
        let (url, arrivals) = script(vec![
            Scripted {
                status: 429,
                headers: "retry-after: 1\r\n",
                parts: vec![(0, "{}".into())],
                hang: false,
            },
            Scripted {
                status: 503,
                headers: "",
                parts: vec![(0, "loading".into())],
                hang: false,
            },
            Scripted {
                status: 200,
                headers: "",
                parts: sse(&[&done, "[DONE]"]),
                hang: false,
            },
        ])
        .await;
        let c = fast(&url).generate(req()).await.unwrap();
        assert_eq!(c.text, "ok");
        let a = arrivals.await.unwrap();
        let gaps: Vec<Duration> = a.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps[0] >= Duration::from_millis(950),
            "Retry-After: 1 honoured: {gaps:?}"
        );
        assert!(
            gaps[1] >= Duration::from_millis(100) && gaps[1] < Duration::from_millis(900),
            "backoff doubled from 50 ms: {gaps:?}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_the_server_may_ask_for_more() {
        let (b, m) = (Duration::from_millis(500), Duration::from_secs(8));
        let waits: Vec<u128> = (1..=6)
            .map(|a| backoff(a, b, m, None).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000]);
        assert_eq!(
            backoff(1, b, m, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(backoff(1, b, m, Some(Duration::from_secs(60))), m);
    }

    #[test]
    fn events_split_across_reads_are_joined() {
        let mut r = SseReader::default();
        assert!(r.feed(b"data: {\"a\"").is_empty());
        assert_eq!(r.feed(b":1}\n\ndata: [DO"), ["{\"a\":1}"]);
        assert_eq!(r.feed(b"NE]\r\n\r\n: comment\n\n"), ["[DONE]"]);
        assert_eq!(base_url("http://h:1/v1/"), "http://h:1");
    }

    #[tokio::test]
    async fn check_names_the_url_of_a_server_that_is_down() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let b = fast(&url);
        let e = b.check(Duration::from_secs(2)).await.unwrap_err();
        assert!(
            !e.retryable() && e.to_string().contains(&url) && e.to_string().contains("refused"),
            "{e}"
        );
        let (url, _) = script(vec![Scripted {
            status: 404,
            headers: "",
            parts: vec![],
            hang: false,
        }])
        .await;
        fast(&url).check(Duration::from_secs(2)).await.unwrap();
    }
}
