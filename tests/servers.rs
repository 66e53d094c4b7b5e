//! quarry against OpenAI-compatible servers: llama.cpp's own `llama-server` (built once per
//! machine into the cache by `scripts/llama-server.sh`) and llama-cpp-python's server (a
//! second, independent implementation that serialises requests; installed into a venv in the
//! cache by `scripts/llama-cpp-python.sh`), both of which `make test` prepares, started on
//! 127.0.0.1 with the default SmolLM2 model; and small loopback mocks only for what a real
//! server cannot be made to do (ignore the schema on every request). Without a server these
//! tests skip saying so, except under CI, where they fail.
//!
//! Every test that runs a model, a server or `quarry run` holds [`one_at_a_time`]: with two
//! cores and the default two test threads, a server test used to share the machine with a
//! second test's `quarry run` (which also loads models and embeds chunks on the CPU), and a
//! server's decoding on a contended machine falls from about 55 to under 1 token/s (seen: 0.3),
//! past the model timeouts (a 300 s job, a 60 s stalled stream): jobs retried, then dead. Waits
//! and model timeouts are scaled by [`slowdown`] for a machine shared with other work; no
//! assertion depends on speed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quarry::llm::openai::{OpenAiBackend, OpenAiOptions};
use quarry::llm::{Backend, Message, Request};

mod common;

/// The machine's cores go to one test at a time: one server, one `quarry run` (which also
/// embeds chunks on the CPU). A tokio mutex, so the async tests hold it across `.await` and
/// the plain ones take it with `blocking_lock`; a test that fails does not poison it.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

fn one_at_a_time_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.blocking_lock()
}

/// How many times slower than an idle machine this one is now: the 1-minute load average
/// per core, rounded up, between 1 and 8. Waits and model timeouts are multiplied by it.
fn slowdown() -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    (load / cores).ceil().clamp(1.0, 8.0) as u64
}

/// `secs` on an idle machine, scaled by [`slowdown`].
fn patience(secs: u64) -> Duration {
    Duration::from_secs(secs * slowdown())
}

/// Threads for a server: all the cores, at most 2 (the model is small).
fn server_threads() -> String {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get().min(2))
        .to_string()
}

/// What a setup script installs: the path it prints with `path`, when that file exists.
/// Missing, the test skips saying so, or fails under CI.
fn installed(script: &str, what: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    let out = Command::new("bash")
        .arg(&script)
        .arg("path")
        .output()
        .expect("bash runs");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs these tests against {what}: install it with `bash {}` (make test does); {} is \
         missing",
        script.display(),
        path.display()
    );
    eprintln!(
        "skipped: {what} is not installed ({} is missing; run `bash {}`)",
        path.display(),
        script.display()
    );
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Which server implementation a [`LlamaServer`] runs.
enum Implementation {
    /// llama.cpp's `llama-server` binary.
    LlamaCpp(PathBuf),
    /// `python -m llama_cpp.server` with this python (llama-cpp-python's venv).
    Python(PathBuf),
}

/// A server child on 127.0.0.1 with the default model, killed when dropped.
struct LlamaServer {
    imp: Implementation,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
    /// How long its last start took, until it answered with the model loaded.
    ready_in: Duration,
}

impl LlamaServer {
    /// llama.cpp's llama-server, or `None` (skipped) when it is not built.
    fn start(dir: &Path) -> Option<LlamaServer> {
        let bin = installed("llama-server.sh", "llama-server")?;
        Some(Self::start_with(Implementation::LlamaCpp(bin), dir))
    }

    /// llama-cpp-python's server, or `None` (skipped) when it is not installed.
    fn start_python(dir: &Path) -> Option<LlamaServer> {
        let python = installed("llama-cpp-python.sh", "llama-cpp-python")?;
        Some(Self::start_with(Implementation::Python(python), dir))
    }

    /// Starts on a free port. The port is found by binding 127.0.0.1:0 and let go before the
    /// server binds it, so another process may take it in between: then the server exits,
    /// and it is started again on another port.
    fn start_with(imp: Implementation, dir: &Path) -> LlamaServer {
        let mut s = LlamaServer {
            imp,
            port: 0,
            log: dir.join("server.log"),
            child: None,
            ready_in: Duration::ZERO,
        };
        for attempt in 1.. {
            s.port = free_port();
            if s.try_start() {
                break;
            }
            assert!(
                attempt < 3,
                "the server exited at start {attempt} times: {}",
                s.log_text()
            );
        }
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts it on the same port again and waits until it has loaded the model.
    fn restart(&mut self) {
        assert!(
            self.try_start(),
            "the server did not start again on port {}: {}",
            self.port,
            self.log_text()
        );
    }

    /// Starts the child and waits until it answers: true, or false when it exited first.
    fn try_start(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let model = common::model();
        let port = self.port.to_string();
        let threads = server_threads();
        let mut cmd = match &self.imp {
            Implementation::LlamaCpp(bin) => {
                let mut c = Command::new(bin);
                c.args(["-m", model.to_str().unwrap()])
                    .args(["--host", "127.0.0.1", "--port", &port])
                    .args(["-np", "4", "-c", "8192", "-t", &threads, "--metrics"])
                    // Threads waiting for work sleep rather than spin, leaving the cores to
                    // the other work of a shared machine.
                    .args(["--poll", "0"]);
                c
            }
            Implementation::Python(python) => {
                let mut c = Command::new(python);
                c.args(["-m", "llama_cpp.server"])
                    .args(["--model", model.to_str().unwrap()])
                    .args(["--host", "127.0.0.1", "--port", &port])
                    .args(["--n_ctx", "4096", "--n_threads", &threads])
                    .args(["--n_threads_batch", &threads])
                    // Requests wait their turn instead of cutting off the one being served.
                    .args(["--interrupt_requests", "false"]);
                c
            }
        };
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        self.child = Some(child);
        // llama-server says it is ready on /health once the model is loaded; llama-cpp-python
        // loads the model before it listens, and lists it on /v1/models.
        let ready = match self.imp {
            Implementation::LlamaCpp(_) => "/health",
            Implementation::Python(_) => "/v1/models",
        };
        let wait = patience(120);
        let started = Instant::now();
        while http_get(self.port, ready).is_none_or(|(code, _)| code != 200) {
            if let Some(code) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("the server exited ({code}) on port {}", self.port);
                self.child = None;
                return false;
            }
            assert!(
                started.elapsed() < wait,
                "the server did not become ready in {wait:?}: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.ready_in = started.elapsed();
        true
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A counter of the server's Prometheus metrics, e.g. `llamacpp:prompt_tokens_total`.
    fn metric(&self, name: &str) -> f64 {
        let (_, body) = http_get(self.port, "/metrics").expect("metrics answer");
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A plain HTTP/1.0 GET on loopback: (status, body), or None when nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn quarry(dir: &Path, args: &[&str]) -> Output {
    quarry_cmd(dir, args)
        .output()
        .expect("the quarry binary runs")
}

fn quarry_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quarry"));
    c.current_dir(dir)
        .env("QUARRY_LOG", "warn")
        .env_remove("QUARRY_CONFIG")
        .env_remove("QUARRY_DB")
        .args(args);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The bundled example folder, copied into `dir/research`.
fn example(dir: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/research");
    let to = dir.join("research");
    for e in walkdir::WalkDir::new(&from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(&from).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
    to
}

/// A folder of two short notes, for the runs that only check where requests go.
fn small(dir: &Path) -> PathBuf {
    let r = dir.join("research");
    std::fs::create_dir_all(&r).unwrap();
    std::fs::write(
        r.join("errors.md"),
        "# Errors\n\n## Propagation\n\nThe `?` operator returns early with the error and converts it with `From`.\n\n```rust\nlet text = std::fs::read_to_string(path)?;\n```\n",
    )
    .unwrap();
    std::fs::write(
        r.join("builder.md"),
        "# Builders\n\n## The builder pattern\n\nA *builder* collects optional settings step by step and checks them once in `fn build(self) -> Result<Config, Error>`.\n",
    )
    .unwrap();
    r
}

fn status(dir: &Path) -> serde_json::Value {
    let o = quarry(dir, &["status", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stage(status: &serde_json::Value, name: &str) -> serde_json::Value {
    status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no stage {name} in {status}"))
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every finding's evidence is quoted from its chunk (whitespace aside); returns how many.
async fn findings_quote_their_chunks(dir: &Path) -> usize {
    let q = quarry::queue::Queue::open(dir.join("queue.db"), false)
        .await
        .unwrap();
    let findings = q.current_findings().await.unwrap();
    for f in &findings {
        if f.status == quarry::queue::FindingStatus::Rejected {
            continue;
        }
        let chunk = q.chunk(f.chunk_id).await.unwrap();
        assert!(
            squash(&chunk.text).contains(&squash(&f.evidence)),
            "finding {:?} quotes {:?}, not in its chunk {:?}",
            f.pattern,
            f.evidence,
            chunk.text
        );
        assert!(!f.pattern.trim().is_empty());
    }
    findings.len()
}

/// A model's timeouts, scaled by [`slowdown`]: a slow machine makes a slow run, not dead jobs.
fn timeouts() -> String {
    format!(
        "timeout_s = {}\nstall_timeout_s = {}\n",
        patience(600).as_secs(),
        patience(120).as_secs()
    )
}

fn server_toml(url: &str, extra: &str) -> String {
    format!(
        "[backend]\nkind = \"openai\"\n\n[models.default]\nurl = \"{url}\"\n{}{extra}",
        timeouts()
    )
}

/// The pipeline on the bundled example through `server`: every chunk extracted, findings that
/// quote their chunks, a knowledge base with a page per source.
async fn runs_the_bundled_example(server: &LlamaServer, dir: &Path, workers: usize) {
    let folder = example(dir);
    std::fs::write(dir.join("quarry.toml"), server_toml(&server.url(), "")).unwrap();
    let o = quarry(dir, &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let workers = workers.to_string();
    let o = quarry(dir, &["run", "--workers", &workers, "--progress", "plain"]);
    let out = text(&o);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{out}");
    assert!(out.contains("knowledge base: output/index.md"), "{out}");

    let st = status(dir);
    let extract = stage(&st, "extract");
    assert_eq!(extract["done"], extract["total"], "{st}");
    assert!(extract["total"].as_i64().unwrap() > 0);
    let findings = findings_quote_their_chunks(dir).await;
    assert!(
        findings > 0,
        "the example yields findings through the server"
    );
    let out = dir.join("output");
    assert!(out.join("index.md").exists());
    for f in ["error-handling.md", "guard.rs", "ownership.txt"] {
        assert!(folder.join(f).exists());
    }
    assert!(
        std::fs::read_dir(out.join("sources")).unwrap().count() >= 3,
        "a page per source"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_runs_the_pipeline_on_the_bundled_example() {
    let _one = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = LlamaServer::start(dir.path()) else {
        return;
    };
    runs_the_bundled_example(&server, dir.path(), 3).await;
    // The server did the work: its own counters say so.
    assert!(server.metric("llamacpp:prompt_tokens_total") > 0.0);
    assert!(server.metric("llamacpp:tokens_predicted_total") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_cpp_python_runs_the_pipeline_on_the_bundled_example() {
    let _one = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = LlamaServer::start_python(dir.path()) else {
        return;
    };
    // Two workers: the server serialises requests, so one waits while the other is served.
    runs_the_bundled_example(&server, dir.path(), 2).await;
    // The server did the work: its access log shows the chat requests it answered.
    let log = server.log_text();
    let answered = log
        .lines()
        .filter(|l| l.contains("POST /v1/chat/completions") && l.contains(" 200"))
        .count();
    let extract = stage(&status(dir.path()), "extract");
    assert!(
        answered as i64 >= extract["total"].as_i64().unwrap(),
        "{answered} chat requests answered: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_streams_and_ttft_is_taken_at_the_first_token() {
    let _one = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = LlamaServer::start(dir.path()) else {
        return;
    };
    let b = OpenAiBackend::with_options(OpenAiOptions::new(&server.url(), "default")).unwrap();
    let ask = |tx| {
        let mut r = Request::new(vec![
            Message::system("You answer in JSON."),
            Message::user("Name two Rust error handling techniques."),
        ]);
        r.sampling.max_tokens = 48;
        r.grammar = Some(
            r#"root ::= "{\"names\": [" name ", " name "]}"
name ::= "\"" [a-zA-Z ]{1,20} "\"""#
                .into(),
        );
        r.stream = Some(tx);
        r.timeout = patience(120);
        r
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t = Instant::now();
    let c = b.generate(ask(tx)).await.unwrap();
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    let mut pieces = Vec::new();
    while let Ok(p) = rx.try_recv() {
        pieces.push(p);
    }
    assert!(pieces.len() > 3, "streamed in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), c.text);
    let v: serde_json::Value = serde_json::from_str(&c.text).expect("the grammar was applied");
    assert_eq!(v["names"].as_array().unwrap().len(), 2, "{v}");
    let tm = &c.timings;
    assert!(tm.prompt_tokens > 10 && tm.gen_tokens > 3, "{tm:?}");
    // The first token comes before the last: TTFT is not the whole request.
    assert!(
        tm.ttft_ms > 0.0 && tm.ttft_ms < wall && tm.gen_ms > 0.0,
        "{tm:?} wall {wall}"
    );
    // The same prompt again: the server reuses its cached prefix and reports it.
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let again = b.generate(ask(tx)).await.unwrap();
    assert!(again.timings.cached_tokens > 0, "{:?}", again.timings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_llama_server_mid_run_loses_no_job() {
    let _one = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(mut server) = LlamaServer::start(dir.path()) else {
        return;
    };
    example(dir.path());
    // One retry inside the backend, so the queue sees the failures and retries the jobs, with
    // a backoff that outlasts the server's restart: down for `DOWN`, then loading the model
    // (answering 503 "Loading model") about as long as its first start took, which on a busy
    // machine is many seconds. A job has 3 attempts; with the queue's jitter the third comes
    // at least 1.5 × base after the first failure, so base is twice the outage (its start
    // time was measured on this machine as loaded as it is now: no further scaling).
    const DOWN: Duration = Duration::from_secs(3);
    let outage = DOWN + server.ready_in;
    let base = (outage * 2).as_millis() as u64;
    let cfg = server_toml(
        &server.url(),
        &format!(
            "retries = 1\n\n[queue]\nbackoff_base_ms = {base}\nbackoff_max_ms = {}\n",
            base * 2
        ),
    );
    std::fs::write(dir.path().join("quarry.toml"), cfg).unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let run = quarry_cmd(
        dir.path(),
        &["run", "--workers", "3", "--progress", "plain"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Kill the server once some jobs are done and others are still to do.
    let started = Instant::now();
    loop {
        let st = status(dir.path());
        let e = stage(&st, "extract");
        let (done, total) = (e["done"].as_i64().unwrap(), e["total"].as_i64().unwrap());
        if done >= 1 {
            assert!(
                done < total,
                "the run finished before the server could be killed"
            );
            break;
        }
        assert!(started.elapsed() < patience(300), "no job done: {st}");
        std::thread::sleep(Duration::from_millis(300));
    }
    server.kill();
    std::thread::sleep(DOWN);
    server.restart();
    let out = run.wait_with_output().unwrap();
    let o = text(&out);
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{o}");

    let st = status(dir.path());
    for s in st["stages"].as_array().unwrap() {
        assert_eq!(s["done"], s["total"], "every job done, none lost: {st}");
        assert_eq!(s["dead"], 0, "{st}");
    }
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("queue.db").display()
    ))
    .await
    .unwrap();
    let (failed,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM attempts WHERE outcome IN ('failed', 'lost', 'released') AND error LIKE '%127.0.0.1%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        failed >= 1,
        "the kill interrupted requests that were retried"
    );
    assert!(findings_quote_their_chunks(dir.path()).await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_switches_between_embedded_and_server_by_config_alone() {
    let _one = one_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = LlamaServer::start(dir.path()) else {
        return;
    };
    // The extractor reads model "remote"; every other role the embedded default.
    let run_with = |kind: &str| {
        let work = dir.path().join(kind);
        std::fs::create_dir_all(&work).unwrap();
        small(&work);
        let o = quarry(&work, &["init"]);
        assert!(o.status.success(), "{}", text(&o));
        let role = work.join("agents/extractor.toml");
        let spec = std::fs::read_to_string(&role).unwrap();
        assert!(spec.contains("\nmodel = \"default\"\n"), "{spec}");
        let spec = spec.replacen("\nmodel = \"default\"\n", "\nmodel = \"remote\"\n", 1);
        std::fs::write(&role, spec).unwrap();
        std::fs::write(
            work.join("quarry.toml"),
            format!(
                "[models.default]\n{}\n[models.remote]\nkind = \"{kind}\"\nurl = \"{}\"\n{}",
                timeouts(),
                server.url(),
                timeouts()
            ),
        )
        .unwrap();
        let before = server.metric("llamacpp:prompt_tokens_total");
        let o = quarry(&work, &["enqueue", "research"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = quarry(&work, &["run", "--workers", "2", "--progress", "plain"]);
        assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", text(&o));
        let e = stage(&status(&work), "extract");
        assert_eq!(e["done"], e["total"]);
        server.metric("llamacpp:prompt_tokens_total") - before
    };
    assert!(
        run_with("openai") > 0.0,
        "kind = openai: the extractor asked the server"
    );
    assert_eq!(
        run_with("llama"),
        0.0,
        "kind = llama: nothing reached the server"
    );
}

/// A loopback server that answers every chat request with valid JSON of the wrong shape (a
/// server ignoring the grammar) and records the requests' last user message.
fn schema_ignoring_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                let body = loop {
                    let n = sock.read(&mut tmp).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let t = String::from_utf8_lossy(&buf).to_string();
                    let Some(h) = t.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = t[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        break t[h + 4..].to_string();
                    }
                };
                let reply = if let Ok(req) = serde_json::from_str::<serde_json::Value>(&body) {
                    let last = req["messages"]
                        .as_array()
                        .and_then(|m| m.last())
                        .map(|m| m["content"].as_str().unwrap_or("").to_string())
                        .unwrap_or_default();
                    log.lock().unwrap().push(last);
                    serde_json::json!({
                        "choices": [{"message": {"role": "assistant", "content": "{\"answer\": \"This text is about errors.\"}"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 9}
                    })
                    .to_string()
                } else {
                    r#"{"object":"list","data":[]}"#.to_string()
                };
                let _ = write!(
                    sock,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            });
        }
    });
    (url, seen)
}

#[test]
fn a_server_that_ignores_the_schema_is_detected_repaired_once_and_reported() {
    let _one = one_at_a_time_blocking();
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = schema_ignoring_server();
    small(dir.path());
    std::fs::write(
        dir.path().join("quarry.toml"),
        server_toml(
            &url,
            "\n[queue]\nbackoff_base_ms = 50\nbackoff_max_ms = 100\n",
        ),
    )
    .unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = quarry(
        dir.path(),
        &["run", "--workers", "2", "--progress", "plain"],
    );
    assert_eq!(o.status.code(), Some(1), "dead jobs: exit 1: {}", text(&o));

    let st = status(dir.path());
    let failed = st["failed"].as_array().unwrap();
    let extract: Vec<_> = failed.iter().filter(|f| f["stage"] == "extract").collect();
    assert!(!extract.is_empty(), "{st}");
    for f in &extract {
        assert_eq!(f["error_kind"], "invalid_output", "{f}");
        assert!(
            f["error"].as_str().unwrap().contains("after one repair"),
            "{f}"
        );
        assert!(
            f["error"].as_str().unwrap().contains("findings"),
            "names what is missing: {f}"
        );
    }
    // Each attempt is the question and exactly one repair request.
    let seen = seen.lock().unwrap();
    let repairs = seen
        .iter()
        .filter(|m| m.starts_with("Your reply is invalid"))
        .count();
    assert!(
        repairs > 0 && repairs * 2 == seen.len(),
        "{repairs} repairs of {} requests",
        seen.len()
    );
    let o = quarry(dir.path(), &["status", "--failed"]);
    assert!(text(&o).contains("invalid_output"), "{}", text(&o));
}

#[test]
fn a_server_that_is_down_is_one_clear_line_naming_its_url_within_a_minute() {
    let _one = one_at_a_time_blocking();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    small(dir.path());
    std::fs::write(dir.path().join("quarry.toml"), server_toml(&url, "")).unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = Instant::now();
    let o = quarry(
        dir.path(),
        &["run", "--workers", "2", "--progress", "plain"],
    );
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && o.status.code() != Some(101), "{err}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].contains(&url) && lines[0].contains("refused"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn the_compose_file_runs_workers_beside_llama_server_sharing_the_models_volume() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose.yaml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).expect("valid YAML");
    let services = doc["services"].as_mapping().expect("services");
    // The models mount of a service: (source, target) of its volume ending in /models.
    let models = |name: &str| -> (String, String) {
        let s = &services[name];
        let vols = s["volumes"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has volumes"));
        vols.iter()
            .filter_map(|v| v.as_str())
            .filter_map(|v| {
                // SOURCE:TARGET[:ro], where SOURCE may hold `${VAR:-default}`.
                let mut parts: Vec<&str> = v.split(':').collect();
                if matches!(parts.last(), Some(&"ro") | Some(&"rw")) {
                    parts.pop();
                }
                let target = parts.pop()?.to_string();
                Some((parts.join(":"), target))
            })
            .find(|(_, target)| target.ends_with("/models"))
            .unwrap_or_else(|| panic!("{name} mounts no models folder"))
    };
    let (worker_src, worker_dst) = models("worker");
    let (server_src, server_dst) = models("llama-server");
    assert_eq!(worker_src, server_src, "one models volume");
    // The server loads the model from its mount, and the workers talk to it by service name.
    let cmd: Vec<String> = services["llama-server"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let m = cmd.iter().position(|a| a == "-m").expect("-m MODEL");
    assert!(cmd[m + 1].starts_with(&server_dst), "{cmd:?}");
    assert!(cmd.iter().any(|a| a == "--host") && cmd.contains(&"0.0.0.0".to_string()));
    let sw = &services["server-worker"];
    assert_eq!(
        sw["environment"]["QUARRY_CONFIG"],
        "/etc/quarry/quarry.toml"
    );
    assert!(sw["volumes"][0]
        .as_str()
        .unwrap()
        .starts_with("./quarry.toml:/etc/quarry/quarry.toml"));
    let cfg_path = path.parent().unwrap().join("quarry.toml");
    let cfg: quarry::config::Config =
        toml::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.kind_of("default"), quarry::config::BackendKind::Openai);
    assert!(cfg.model("default").unwrap().url.contains("llama-server:"));
    assert!(worker_dst.starts_with('/'));
}
