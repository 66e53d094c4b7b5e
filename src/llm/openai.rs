//! OpenAI-compatible HTTP servers (llama-server, llamafile, Ollama, mlx_lm.server, vLLM):
//! `POST {url}/v1/chat/completions`, with a timeout and retries of transient failures. The
//! role's grammar goes out as llama.cpp's `grammar` field, or as a JSON response format for
//! servers that do not read GBNF.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{Backend, BoxFuture, Completion, LlmError, Request, StopReason, Timings};

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

pub struct OpenAiBackend {
    client: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
    grammar: GrammarMode,
    retries: u32,
}

impl OpenAiBackend {
    pub fn new(
        url: &str,
        model: &str,
        api_key: Option<String>,
        grammar: GrammarMode,
    ) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| LlmError::Http {
                url: url.to_string(),
                message: e.to_string(),
                retryable: false,
            })?;
        Ok(OpenAiBackend {
            client,
            url: url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            grammar,
            retries: 2,
        })
    }

    fn body(&self, req: &Request) -> serde_json::Value {
        let mut body = json!({
            "model": self.model,
            "messages": req.messages,
            "max_tokens": req.sampling.max_tokens,
            "temperature": req.sampling.temperature,
            "top_p": req.sampling.top_p,
            "seed": req.sampling.seed,
            "stream": false,
        });
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        if let Some(g) = &req.grammar {
            match self.grammar {
                GrammarMode::Gbnf => body["grammar"] = json!(g),
                GrammarMode::Json => body["response_format"] = json!({"type": "json_object"}),
                GrammarMode::None => {}
            }
        }
        body
    }

    async fn once(&self, req: &Request) -> Result<Completion, LlmError> {
        let endpoint = format!("{}/v1/chat/completions", self.url);
        let err = |message: String, retryable: bool| LlmError::Http {
            url: endpoint.clone(),
            message,
            retryable,
        };
        let started = Instant::now();
        let mut http = self
            .client
            .post(&endpoint)
            .timeout(req.timeout)
            .json(&self.body(req));
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        let resp = http.send().await.map_err(|e| {
            if e.is_timeout() {
                LlmError::Timeout(req.timeout)
            } else {
                err(format!("cannot reach the server: {e}"), true)
            }
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| err(format!("reading the reply: {e}"), true))?;
        if !status.is_success() {
            let retryable = status.is_server_error() || status.as_u16() == 429;
            let snippet: String = text.chars().take(300).collect();
            return Err(err(format!("HTTP {status}: {snippet}"), retryable));
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| err(format!("the reply is not JSON: {e}"), true))?;
        let choice = &v["choices"][0];
        let content = choice["message"]["content"]
            .as_str()
            .ok_or_else(|| err("the reply has no choices[0].message.content".into(), true))?
            .to_string();
        let stop = match choice["finish_reason"].as_str() {
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::EndOfText,
        };
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        let u = &v["usage"];
        let t = &v["timings"]; // llama-server adds its own timings
        let timings = Timings {
            queue_ms: 0.0,
            ttft_ms: t["prompt_ms"].as_f64().unwrap_or(wall),
            prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
            cached_tokens: t["cache_n"].as_u64().unwrap_or(0),
            prompt_ms: t["prompt_ms"].as_f64().unwrap_or(0.0),
            gen_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
            gen_ms: t["predicted_ms"].as_f64().unwrap_or(wall),
        };
        if let Some(p) = &req.progress {
            p.add_generated(timings.gen_tokens);
        }
        // The request is not streamed over HTTP: the reply arrives as one piece.
        super::TextStream::new(req.stream.clone()).finish(&content);
        Ok(Completion {
            text: content,
            stop,
            timings,
        })
    }
}

impl Backend for OpenAiBackend {
    fn name(&self) -> String {
        format!("openai:{}@{}", self.model, self.url)
    }

    fn generate(&self, req: Request) -> BoxFuture<'_, Result<Completion, LlmError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                match self.once(&req).await {
                    Err(e) if e.retryable() && attempt < self.retries => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "retrying the server");
                        tokio::time::sleep(Duration::from_millis(300 * attempt as u64)).await;
                    }
                    other => return other,
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
}
