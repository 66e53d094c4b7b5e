//! The only code that draws on the terminal. Fed by worker events and by the database's
//! counts, so `quarry watch` in another terminal shows the same figures as `quarry run`.
//! Rendering is a pure function of a `Snapshot`; the loop only decides when and how to print.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::agent::InputKind;
use crate::llm::GenProgress;
use crate::queue::{JobId, JobState, Queue, StageCount};

/// Log lines written while the live view owns the terminal are held here and printed above
/// the view at its next redraw, so they never tear it.
static LOG_HOLD: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// The tracing writer: stderr, or the hold while the live view runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut hold) = LOG_HOLD.lock() {
            if let Some(h) = hold.as_mut() {
                if h.len() < 1 << 20 {
                    h.extend_from_slice(buf);
                }
                return Ok(buf.len());
            }
        }
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

fn hold_logs(on: bool) -> Vec<u8> {
    match LOG_HOLD.lock() {
        Ok(mut h) => {
            let held = h.take().unwrap_or_default();
            if on {
                *h = Some(Vec::new());
            }
            held
        }
        Err(_) => Vec::new(),
    }
}

fn take_held_logs() -> Vec<u8> {
    match LOG_HOLD.lock() {
        Ok(mut h) => h.as_mut().map(std::mem::take).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// What workers tell the view.
#[derive(Debug)]
pub enum Event {
    JobStarted {
        worker: usize,
        job: JobId,
        role: String,
        stage: String,
        /// What the role reads, so the view names its input (a chunk, a pattern) whatever
        /// the user called its stage.
        input: InputKind,
        input_id: Option<i64>,
        progress: Arc<GenProgress>,
    },
    JobFinished {
        worker: usize,
        job: JobId,
        outcome: String,
        error: Option<String>,
    },
    /// The run embeds its chunks for retrieval (once, when it first plans the pages): shown
    /// as a stage of its own, `embed done/total`.
    Embedding { done: usize, total: usize },
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place on a terminal.
    Live,
    /// One line every few seconds (pipes, CI).
    Plain,
    /// Nothing until the summary.
    Quiet,
}

/// One stage's counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StageLine {
    pub stage: String,
    pub done: i64,
    pub running: i64,
    pub waiting: i64,
    pub failed: i64,
    pub dead: i64,
    pub total: i64,
}

/// What one worker is doing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerLine {
    pub worker: usize,
    pub role: String,
    pub what: String,
    pub gen_tokens: u64,
    pub prompt_done: u64,
    pub prompt_tokens: u64,
    pub tps: f64,
}

/// Everything the view shows at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub stages: Vec<StageLine>,
    pub workers: Vec<WorkerLine>,
    pub prompt_tps: f64,
    pub gen_tps: f64,
    pub eta: Option<Duration>,
    pub failures: i64,
    pub last_error: Option<String>,
    pub elapsed: Duration,
    pub draining: bool,
}

/// Folds (stage, state) counts into one line per stage, in pipeline order.
pub fn stage_lines(counts: &[StageCount]) -> Vec<StageLine> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, StageLine> = BTreeMap::new();
    for c in counts {
        if !order.contains(&c.stage) {
            order.push(c.stage.clone());
        }
        let line = map.entry(c.stage.clone()).or_insert_with(|| StageLine {
            stage: c.stage.clone(),
            ..StageLine::default()
        });
        match c.state {
            JobState::Done => line.done += c.jobs,
            JobState::Leased => line.running += c.jobs,
            JobState::Queued => line.waiting += c.jobs,
            JobState::Failed => line.failed += c.jobs,
            JobState::Dead => line.dead += c.jobs,
            JobState::Cancelled => {}
        }
        if c.state != JobState::Cancelled {
            line.total += c.jobs;
        }
    }
    let rank = |s: &str| match s {
        "extract" => 0,
        "validate" => 1,
        "write" => 3,
        "synthesize" => 4,
        _ => 2,
    };
    order.sort_by_key(|s| rank(s));
    order.into_iter().filter_map(|s| map.remove(&s)).collect()
}

/// Tokens still to process in jobs that may run, from their estimates.
pub fn remaining_tokens(counts: &[StageCount]) -> i64 {
    counts
        .iter()
        .filter(|c| {
            matches!(
                c.state,
                JobState::Queued | JobState::Leased | JobState::Failed
            )
        })
        .map(|c| c.est_tokens)
        .sum()
}

/// Time left at the measured rate; None until there is a rate to trust.
pub fn eta(remaining_tokens: i64, tokens_per_s: f64) -> Option<Duration> {
    if remaining_tokens <= 0 {
        return Some(Duration::ZERO);
    }
    if !tokens_per_s.is_finite() || tokens_per_s < 0.5 {
        return None;
    }
    Some(Duration::from_secs_f64(
        remaining_tokens as f64 / tokens_per_s,
    ))
}

/// A rate over a sliding window of samples (seconds, cumulative count). Only rises count:
/// the total the run shows falls when a job in flight is dropped (interrupted, failed,
/// retried) and its live tokens with it; that work was done, and a speed is never negative.
#[derive(Debug, Default)]
pub struct RateWindow {
    samples: std::collections::VecDeque<(f64, f64)>,
    window: f64,
    /// The last total pushed, and the sum of its rises so far.
    last: Option<f64>,
    risen: f64,
}

impl RateWindow {
    pub fn new(window: Duration) -> Self {
        RateWindow {
            window: window.as_secs_f64(),
            ..RateWindow::default()
        }
    }
    pub fn push(&mut self, t: f64, total: f64) {
        self.risen += self.last.map_or(total, |last| (total - last).max(0.0));
        self.last = Some(total);
        self.samples.push_back((t, self.risen));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t0, _)| t - t0 > self.window)
        {
            self.samples.pop_front();
        }
    }
    pub fn rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => (c1 - c0) / (t1 - t0),
            _ => 0.0,
        }
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn bar(done: i64, total: i64, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let filled = if total > 0 {
        ((done as f64 / total as f64) * width as f64).round() as usize
    } else {
        0
    }
    .min(width);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The live view's lines, fitted to `width` columns and `height` rows.
pub fn render(s: &Snapshot, width: usize, height: usize) -> Vec<String> {
    let width = width.max(20);
    let mut lines = Vec::new();
    let eta = s
        .eta
        .map(fmt_duration)
        .unwrap_or_else(|| "estimating".into());
    let head = format!(
        "quarry {} · {} · prompt {:.0} tok/s · gen {:.1} tok/s · ETA {}",
        if s.draining {
            "draining (Ctrl-C again to stop now)"
        } else {
            "running"
        },
        fmt_duration(s.elapsed),
        s.prompt_tps,
        s.gen_tps,
        eta
    );
    lines.push(clip(&head, width));
    let bar_w = if width >= 60 { 20 } else { 0 };
    for st in &s.stages {
        let mut line = format!("{:<10} {:>5}/{:<5}", st.stage, st.done, st.total);
        if bar_w > 0 {
            line = format!(
                "{:<10} {} {:>5}/{:<5}",
                st.stage,
                bar(st.done, st.total, bar_w),
                st.done,
                st.total
            );
        }
        if st.running > 0 {
            line.push_str(&format!(" run {}", st.running));
        }
        if st.failed > 0 {
            line.push_str(&format!(" retry {}", st.failed));
        }
        if st.dead > 0 {
            line.push_str(&format!(" dead {}", st.dead));
        }
        lines.push(clip(&line, width));
    }
    let room = height.saturating_sub(lines.len() + 2);
    for w in s.workers.iter().take(room) {
        let line = if w.role.is_empty() {
            format!("  w{} idle", w.worker)
        } else {
            format!(
                "  w{} {:<10} {} · prompt {}/{} · {} tok · {:.1} tok/s",
                w.worker, w.role, w.what, w.prompt_done, w.prompt_tokens, w.gen_tokens, w.tps
            )
        };
        lines.push(clip(&line, width));
    }
    if s.failures > 0 {
        let e = s.last_error.clone().unwrap_or_default();
        lines.push(clip(
            &format!("failures {} · latest: {e}", s.failures),
            width,
        ));
    }
    lines.truncate(height.max(1));
    lines
}

/// The one plain line for pipes and CI.
pub fn plain_line(s: &Snapshot) -> String {
    let stages: Vec<String> = s
        .stages
        .iter()
        .map(|st| format!("{} {}/{}", st.stage, st.done, st.total))
        .collect();
    let busy = s.workers.iter().filter(|w| !w.role.is_empty()).count();
    format!(
        "[{}] {} · workers busy {} · prompt {:.0} tok/s · gen {:.1} tok/s · failures {} · ETA {}",
        fmt_duration(s.elapsed),
        stages.join(" · "),
        busy,
        s.prompt_tps,
        s.gen_tps,
        s.failures,
        s.eta
            .map(fmt_duration)
            .unwrap_or_else(|| "estimating".into())
    )
}

struct Live {
    role: String,
    what: String,
    progress: Arc<GenProgress>,
    started: Instant,
}

/// Shows progress until `stop` turns true. `events` is None for `quarry watch`.
pub async fn show(
    queue: Queue,
    mut events: Option<mpsc::Receiver<Event>>,
    mode: Mode,
    workers: usize,
    mut stop: watch::Receiver<bool>,
    draining: crate::engine::Shutdown,
) {
    if mode == Mode::Quiet {
        let _ = stop.wait_for(|s| *s).await;
        return;
    }
    let started = Instant::now();
    // Without events (`quarry watch`), the workers are read from the leases in the database.
    let from_db = events.is_none();
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    let mut failures = 0i64;
    let mut last_error = None;
    let mut prompt_rate = RateWindow::new(Duration::from_secs(30));
    let mut gen_rate = RateWindow::new(Duration::from_secs(30));
    let mut drawn = 0usize;
    let mut embedding: Option<(usize, usize)> = None;
    let every = if mode == Mode::Live {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(every);
    let base = queue.counts().await.unwrap_or_default();
    let base_prompt: i64 = base.iter().map(|c| c.prompt_tokens).sum();
    let base_gen: i64 = base.iter().map(|c| c.gen_tokens).sum();
    let mut stdout = std::io::stdout();
    if mode == Mode::Live {
        hold_logs(true);
        let _ = write!(stdout, "\x1b[?25l");
    }
    loop {
        tokio::select! {
            ev = async { match events.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match ev {
                    Some(Event::JobStarted { worker, role, stage, input, input_id, progress, job }) => {
                        let what = match input_id { Some(i) => format!("{stage} #{job} on {i}"), None => format!("{stage} #{job}") };
                        let what = describe(&queue, input, input_id).await.unwrap_or(what);
                        live.insert(worker, Live { role, what, progress, started: Instant::now() });
                    }
                    Some(Event::JobFinished { worker, error, outcome, job }) => {
                        live.remove(&worker);
                        if let Some(e) = error {
                            failures += 1;
                            last_error = Some(format!("job {job} {outcome}: {e}"));
                        }
                    }
                    Some(Event::Embedding { done, total }) => embedding = Some((done, total)),
                    None => events = None,
                }
                continue;
            }
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        let finished = *stop.borrow();
        let counts = queue.counts().await.unwrap_or_default();
        let t = started.elapsed().as_secs_f64();
        let live_prompt: u64 = live
            .values()
            .map(|l| l.progress.prompt_done.load(Ordering::Relaxed))
            .sum();
        let live_gen: u64 = live
            .values()
            .map(|l| l.progress.gen_tokens.load(Ordering::Relaxed))
            .sum();
        let p: i64 =
            counts.iter().map(|c| c.prompt_tokens).sum::<i64>() - base_prompt + live_prompt as i64;
        let g: i64 = counts.iter().map(|c| c.gen_tokens).sum::<i64>() - base_gen + live_gen as i64;
        prompt_rate.push(t, p as f64);
        gen_rate.push(t, g as f64);
        let dead: i64 = counts
            .iter()
            .filter(|c| c.state == JobState::Dead)
            .map(|c| c.jobs)
            .sum();
        let db_workers: Vec<WorkerLine> = if from_db {
            let now_ms = queue.now();
            queue
                .running()
                .await
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, r)| WorkerLine {
                    worker: i,
                    role: r.role,
                    what: format!(
                        "{} {} ({}s, {})",
                        r.file.unwrap_or_else(|| r.stage.clone()),
                        r.heading.unwrap_or_default(),
                        (now_ms - r.started_at).max(0) / 1000,
                        r.owner
                    ),
                    ..WorkerLine::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut stages = stage_lines(&counts);
        if let Some((done, total)) = embedding {
            stages.push(StageLine {
                stage: "embed".into(),
                done: done as i64,
                total: total as i64,
                running: i64::from(done < total),
                ..StageLine::default()
            });
        }
        let snap = Snapshot {
            stages,
            workers: if from_db {
                db_workers
            } else {
                (0..workers)
                    .map(|w| match live.get(&w) {
                        Some(l) => {
                            let gen = l.progress.gen_tokens.load(Ordering::Relaxed);
                            WorkerLine {
                                worker: w,
                                role: l.role.clone(),
                                what: l.what.clone(),
                                gen_tokens: gen,
                                prompt_done: l.progress.prompt_done.load(Ordering::Relaxed),
                                prompt_tokens: l.progress.prompt_tokens.load(Ordering::Relaxed),
                                tps: gen as f64 / l.started.elapsed().as_secs_f64().max(0.001),
                            }
                        }
                        None => WorkerLine {
                            worker: w,
                            ..WorkerLine::default()
                        },
                    })
                    .collect()
            },
            prompt_tps: prompt_rate.rate(),
            gen_tps: gen_rate.rate(),
            eta: eta(
                remaining_tokens(&counts),
                prompt_rate.rate() + gen_rate.rate(),
            ),
            failures: failures.max(dead),
            last_error: last_error.clone(),
            elapsed: started.elapsed(),
            draining: *draining.borrow() > crate::engine::Stop::Run,
        };
        match mode {
            Mode::Live => {
                let (w, h) = terminal_size();
                let lines = render(&snap, w, h.saturating_sub(1));
                let mut out = String::new();
                if drawn > 0 {
                    out.push_str(&format!("\x1b[{drawn}A"));
                }
                // Held log lines scroll by above the view.
                let logs = take_held_logs();
                for l in String::from_utf8_lossy(&logs).lines() {
                    out.push_str("\x1b[2K");
                    out.push_str(&clip(l, w.max(20)));
                    out.push('\n');
                }
                for l in &lines {
                    out.push_str("\x1b[2K");
                    out.push_str(l);
                    out.push('\n');
                }
                for _ in lines.len()..drawn {
                    out.push_str("\x1b[2K\n");
                }
                let extra = drawn.saturating_sub(lines.len());
                if extra > 0 {
                    out.push_str(&format!("\x1b[{extra}A"));
                }
                drawn = lines.len();
                let _ = stdout.write_all(out.as_bytes());
                let _ = stdout.flush();
            }
            Mode::Plain => {
                println!("{}", plain_line(&snap));
            }
            Mode::Quiet => {}
        }
        if finished {
            break;
        }
    }
    if mode == Mode::Live {
        let _ = write!(stdout, "\x1b[?25h");
        let _ = stdout.flush();
        let rest = hold_logs(false);
        let _ = std::io::stderr().write_all(&rest);
    }
}

/// A running job's input as the user knows it: a pattern's page, a chunk's file and lines.
async fn describe(queue: &Queue, input: InputKind, input_id: Option<i64>) -> Option<String> {
    let id = input_id?;
    match input {
        InputKind::Kb => None,
        InputKind::Pattern => queue
            .pattern(id)
            .await
            .ok()
            .map(|p| format!("page {}", p.name)),
        InputKind::Chunk | InputKind::Findings => {
            let c = queue.chunk(id).await.ok()?;
            let head = c.heading_path.last().cloned().unwrap_or_default();
            Some(format!(
                "{}:{}-{} {}",
                c.rel_path, c.line_start, c.line_end, head
            ))
        }
    }
}

/// Columns and rows of the terminal: asked of the terminal itself (shells rarely export
/// `$COLUMNS`/`$LINES`), else from those variables, else 80x24.
pub fn terminal_size() -> (usize, usize) {
    if let Some((terminal_size::Width(w), terminal_size::Height(h))) =
        terminal_size::terminal_size()
            .or_else(|| terminal_size::terminal_size_of(std::io::stderr()))
    {
        if w > 0 && h > 0 {
            return (usize::from(w), usize::from(h));
        }
    }
    let get = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (get("COLUMNS", 80), get("LINES", 24))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(stage: &str, state: JobState, jobs: i64, est: i64) -> StageCount {
        StageCount {
            stage: stage.into(),
            state,
            jobs,
            est_tokens: est,
            prompt_tokens: 0,
            gen_tokens: 0,
        }
    }

    #[test]
    fn eta_comes_from_tokens_left_and_the_rate() {
        assert_eq!(eta(1000, 100.0), Some(Duration::from_secs(10)));
        assert_eq!(eta(0, 0.0), Some(Duration::ZERO));
        assert_eq!(eta(1000, 0.0), None);
        assert_eq!(eta(1000, f64::NAN), None);
    }

    #[test]
    fn remaining_counts_only_jobs_that_may_run() {
        let c = vec![
            count("extract", JobState::Done, 5, 5000),
            count("extract", JobState::Queued, 2, 800),
            count("extract", JobState::Leased, 1, 400),
            count("extract", JobState::Dead, 1, 400),
        ];
        assert_eq!(remaining_tokens(&c), 1200);
        let lines = stage_lines(&c);
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].done, lines[0].total, lines[0].dead), (5, 9, 1));
    }

    #[test]
    fn rate_window_measures_recent_speed() {
        let mut r = RateWindow::new(Duration::from_secs(10));
        r.push(0.0, 0.0);
        r.push(5.0, 500.0);
        assert!((r.rate() - 100.0).abs() < 1e-9);
        r.push(20.0, 600.0);
        r.push(25.0, 700.0);
        assert!((r.rate() - 20.0).abs() < 1e-9, "{}", r.rate());
    }

    #[test]
    fn a_total_that_falls_when_work_is_dropped_gives_no_negative_speed() {
        let mut r = RateWindow::new(Duration::from_secs(10));
        r.push(0.0, 1000.0);
        r.push(5.0, 400.0); // a job in flight was interrupted: its 600 live tokens are gone
        assert_eq!(r.rate(), 0.0);
        r.push(10.0, 900.0); // and the work goes on from the lower total
        assert!((r.rate() - 50.0).abs() < 1e-9, "{}", r.rate());
    }

    #[test]
    fn the_view_fits_a_small_terminal() {
        let snap = Snapshot {
            stages: stage_lines(&[
                count("write", JobState::Queued, 3, 0),
                count("extract", JobState::Done, 10, 0),
            ]),
            workers: (0..8)
                .map(|w| WorkerLine {
                    worker: w,
                    role: "extractor".into(),
                    what: "a/very/long/path/to/some/file.md:1-40 A heading that goes on and on"
                        .into(),
                    ..WorkerLine::default()
                })
                .collect(),
            eta: Some(Duration::from_secs(125)),
            ..Snapshot::default()
        };
        let lines = render(&snap, 40, 10);
        assert!(lines.len() <= 10);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
        assert!(
            lines[1].starts_with("extract"),
            "stages in pipeline order: {lines:#?}"
        );
        assert!(plain_line(&snap).contains("ETA 2m05s"));
    }
}
