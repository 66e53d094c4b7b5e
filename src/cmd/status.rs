//! `quarry status` (what is queued, running, done and failed, and why) and `quarry watch`
//! (the live view, from another terminal).

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;

use super::{open_queue, progress_mode};
use crate::cli::ProgressArg;
use crate::config::Config;
use crate::engine;
use crate::progress;

pub async fn status(cfg: &Config, json: bool, failed: bool) -> Result<u8> {
    let q = open_queue(cfg).await?;
    let counts = q.counts().await?;
    let lines = progress::stage_lines(&counts);
    let failures = q.failures().await?;
    let sources = q.current_sources().await?;
    let refused: Vec<_> = sources
        .iter()
        .filter(|s| s.status == crate::queue::SourceStatus::Refused)
        .collect();
    // Files read all the same, with a fallback or remark (malformed JSON read as text, …).
    let warnings: Vec<(&str, &str)> = sources
        .iter()
        .filter(|s| s.status == crate::queue::SourceStatus::Active)
        .flat_map(|s| s.notes.iter().map(|n| (s.rel_path.as_str(), n.as_str())))
        .collect();
    let running = q.running().await?;
    let bill = q.bill().await?;
    if json {
        let v = serde_json::json!({
            "db": cfg.db.to_string(),
            "stages": lines,
            "running": running,
            "failed": failures,
            "refused": refused.iter().map(|s| serde_json::json!({"file": s.rel_path, "kind": s.refusal_kind, "reason": s.refusal_message})).collect::<Vec<_>>(),
            "warnings": warnings.iter().map(|(file, note)| serde_json::json!({"file": file, "warning": note})).collect::<Vec<_>>(),
            "remaining_tokens": progress::remaining_tokens(&counts),
            "bill": bill,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "stage", "queued", "running", "done", "retry", "dead", "total"
    );
    for l in &lines {
        println!(
            "{:<12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            l.stage, l.waiting, l.running, l.done, l.failed, l.dead, l.total
        );
    }
    print_bill(&bill);
    println!(
        "files: {} read, {} refused or skipped, {} warning(s){}",
        sources.len() - refused.len(),
        refused.len(),
        warnings.len(),
        if (refused.is_empty() && warnings.is_empty()) || failed {
            ""
        } else {
            " (see --failed)"
        }
    );
    if let Some(line) = hosts_line(&running) {
        println!("{line}");
    }
    for r in &running {
        println!(
            "running: job {} {} on {} {} {}",
            r.id,
            r.role,
            r.owner,
            r.file.clone().unwrap_or_default(),
            r.heading.clone().unwrap_or_default()
        );
    }
    if failed {
        for s in &refused {
            println!(
                "refused  {}  {}: {}",
                s.rel_path,
                s.refusal_kind.clone().unwrap_or_default(),
                s.refusal_message.clone().unwrap_or_default()
            );
        }
        for (file, note) in &warnings {
            println!("warning  {file}: {note}");
        }
        for j in &failures {
            let place = match (&j.file, j.lines) {
                (Some(f), Some((a, b))) => format!("{f}:{a}-{b}"),
                (Some(f), None) => f.clone(),
                _ => "-".into(),
            };
            println!(
                "{:<9} job {} {} {} attempts {}/{}  {}: {}",
                j.state.as_str(),
                j.id,
                j.role,
                place,
                j.attempts,
                j.max_attempts,
                j.error_kind,
                j.error
            );
        }
        if refused.is_empty() && failures.is_empty() && warnings.is_empty() {
            println!("nothing failed");
        }
    }
    Ok(0)
}

pub async fn watch(cfg: &Config, arg: ProgressArg) -> Result<u8> {
    let q = open_queue(cfg).await?;
    let mode = progress_mode(arg, false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_shutdown_tx, shutdown_rx) = watch::channel(engine::Stop::Run);
    let view = tokio::spawn(progress::show(
        q.clone(),
        None,
        mode,
        0,
        stop_rx,
        shutdown_rx,
    ));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if q.is_drained().await? { break; }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = view.await;
    Ok(0)
}

/// The token bill per stage: what each stage asked of the model, and how much of its prompts
/// a KV cache served instead of computing.
pub fn print_bill(bill: &[crate::queue::StageBill]) {
    if bill.iter().all(|b| b.prompt_tokens + b.gen_tokens == 0) {
        return;
    }
    println!(
        "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9} {:>8}",
        "tokens",
        "jobs",
        "prompt",
        "cached",
        "computed",
        "generated",
        "forced",
        "model s",
        "span s"
    );
    let mut total = crate::queue::StageBill {
        stage: "total".into(),
        ..Default::default()
    };
    for b in bill {
        print_bill_line(b);
        total.jobs += b.jobs;
        total.prompt_tokens += b.prompt_tokens;
        total.cached_tokens += b.cached_tokens;
        total.computed_tokens += b.computed_tokens;
        total.gen_tokens += b.gen_tokens;
        total.forced_tokens += b.forced_tokens;
        total.attempt_seconds += b.attempt_seconds;
    }
    // Stages overlap: the total has no span of its own.
    total.span_seconds = f64::NAN;
    print_bill_line(&total);
}

fn print_bill_line(b: &crate::queue::StageBill) {
    let span = if b.span_seconds.is_nan() {
        "-".to_string()
    } else {
        format!("{:.0}", b.span_seconds)
    };
    println!(
        "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9.0} {:>8}",
        b.stage,
        b.jobs,
        b.prompt_tokens,
        b.cached_tokens,
        b.computed_tokens,
        b.gen_tokens,
        b.forced_tokens,
        b.attempt_seconds,
        span
    );
}

/// Which machines hold leases now, and how many processes and jobs each:
/// `workers: box-a 2 processes, 6 jobs · box-b 1 process, 3 jobs`.
fn hosts_line(running: &[crate::queue::RunningJob]) -> Option<String> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut hosts: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
    for r in running {
        let e = hosts.entry(r.host.as_str()).or_default();
        e.0.insert(r.owner.as_str());
        e.1 += 1;
    }
    if hosts.is_empty() {
        return None;
    }
    let parts: Vec<String> = hosts
        .iter()
        .map(|(host, (owners, jobs))| {
            let n = owners.len();
            format!(
                "{host} {n} process{}, {jobs} job{}",
                if n == 1 { "" } else { "es" },
                if *jobs == 1 { "" } else { "s" }
            )
        })
        .collect();
    Some(format!("workers: {}", parts.join(" · ")))
}

#[cfg(test)]
mod host_tests {
    use super::*;
    use crate::queue::{JobId, RunningJob};

    fn job(owner: &str) -> RunningJob {
        RunningJob {
            id: JobId(1),
            role: "extractor".into(),
            stage: "extract".into(),
            owner: owner.into(),
            host: crate::queue::owner_host(owner).into(),
            started_at: 0,
            file: None,
            heading: None,
        }
    }

    #[test]
    fn the_hosts_line_counts_processes_and_jobs_per_machine() {
        assert_eq!(hosts_line(&[]), None);
        let running = [
            job("box-b:7"),
            job("box-a:1"),
            job("box-a:1"),
            job("box-a:2"),
        ];
        assert_eq!(
            hosts_line(&running).unwrap(),
            "workers: box-a 2 processes, 3 jobs · box-b 1 process, 1 job"
        );
    }
}
