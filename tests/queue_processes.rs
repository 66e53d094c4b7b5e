//! The queue under real processes: kill -9 at random moments, several processes on one file.
//! The model is the scripted fake (it takes 0.2-2 s per job), so what is tested is the queue.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quarry::queue::Queue;

mod common;

const REPLY: &str = r#"{"findings": [{"name": "Scripted pattern", "category": "idiom", "summary": "A scripted finding for the queue tests.", "evidence": "the scripted evidence sentence"}]}"#;

/// A project folder: quarry.toml with the fake backend, and the built-in roles with only
/// the extractor enabled.
fn project(dir: &Path, delay: [u64; 2], max_attempts: u32) {
    project_with(dir, delay, max_attempts, "")
}

/// `project`, with the fake backend aborting the process on prompts holding `abort_marker`.
fn project_with(dir: &Path, delay: [u64; 2], max_attempts: u32, abort_marker: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    for name in ["extractor", "validator", "writer", "synthesizer"] {
        let mut text = std::fs::read_to_string(repo.join(format!("agents/{name}.toml"))).unwrap();
        text = text.replace(
            "max_attempts = 3",
            &format!("max_attempts = {max_attempts}"),
        );
        if name != "extractor" {
            text.push_str("\nenabled = false\n");
        }
        std::fs::write(dir.join(format!("agents/{name}.toml")), text).unwrap();
    }
    let cfg = format!(
        "workers = 4\n[backend]\nkind = \"fake\"\nfake_reply = '{REPLY}'\nfake_delay_ms = [{}, {}]\nfake_abort_marker = '{abort_marker}'\n[queue]\nlease_s = 2\nbackoff_base_ms = 50\nbackoff_max_ms = 200\n",
        delay[0], delay[1]
    );
    std::fs::write(dir.join("quarry.toml"), cfg).unwrap();
}

/// `n` chunks of one source and an extract job for each, inserted directly.
async fn seed(db: &Path, n: usize) {
    seed_with(db, n, None).await
}

/// `seed`, with chunk `poison.0`'s text holding `poison.1`.
async fn seed_with(db: &Path, n: usize, poison: Option<(usize, &str)>) {
    let q = Queue::open(db, true).await.unwrap();
    common::Seed {
        root: "/seed",
        rel_path: "seed.md",
        // The scripted finding is discussed (in the heading), so it is accepted at once.
        heading: &["Scripted pattern"],
        chunks: (0..n)
            .map(|i| {
                let mut text = format!("Chunk {i}: the scripted evidence sentence lives here.");
                if let Some((_, marker)) = poison.filter(|p| p.0 == i) {
                    text.push_str(marker);
                }
                (text, i as i64 + 1, i as i64 + 1)
            })
            .collect(),
        priority: 0,
        max_attempts: 3,
    }
    .insert(&q)
    .await;
    q.close().await;
}

fn run(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(dir)
        .args(["run", "--progress", "plain", "--quiet"])
        .env("QUARRY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn check_exactly_once(db: &Path, n: i64) {
    let q = Queue::open(db, false).await.unwrap();
    assert_eq!(q.integrity_check().await.unwrap(), "ok");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let done: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE stage = 'extract' AND state = 'done'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(done, n, "every job done");
    let (findings, chunks): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT chunk_id) FROM findings")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (findings, chunks),
        (n, n),
        "each chunk's result visible exactly once"
    );
    let over: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE attempts > max_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(over, 0, "attempts never exceed the maximum");
    pool.close().await;
}

fn no_temp_files(dir: &Path) {
    for e in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy();
        assert!(
            !name.contains(".tmp."),
            "temp file left: {}",
            e.path().display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_twenty_five_times_loses_and_duplicates_nothing_200_done_0_dead_exit_0() {
    // The jobs allow 3 attempts: crashes of the process are not the jobs' attempts, so 25
    // kills at random moments must not kill any job.
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [200, 2000], 3);
    let db: PathBuf = dir.path().join("queue.db");
    seed(&db, 200).await;
    let mut kills = 0;
    while kills < 25 {
        let mut child = run(dir.path());
        let wait = Duration::from_millis(fastrand::u64(300..2500));
        std::thread::sleep(wait);
        if child.try_wait().unwrap().is_some() {
            break; // finished before we could kill it
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    let started = Instant::now();
    let child = run(dir.path());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "final run: {:?} {stderr}", out.status);
    assert!(started.elapsed() < Duration::from_secs(400));
    check_exactly_once(&db, 200).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE state = 'dead'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "no job dies of crashes that were not its own");
    pool.close().await;
    no_temp_files(dir.path());
    assert!(dir.path().join("output/index.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_queue_without_lock_errors() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [0, 0], 3);
    let db = dir.path().join("queue.db");
    seed(&db, 5000).await;
    let children: Vec<Child> = (0..4).map(|_| run(dir.path())).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("database is locked"), "{stderr}");
    }
    check_exactly_once(&db, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_crashes_the_process_every_time_ends_dead_and_the_rest_finish() {
    const MARKER: &str = " QUARRY-TEST-POISON";
    let dir = tempfile::tempdir().unwrap();
    project_with(dir.path(), [20, 150], 3, MARKER);
    let db: PathBuf = dir.path().join("queue.db");
    seed_with(&db, 40, Some((5, MARKER))).await;
    let mut crashes = 0;
    let status = loop {
        let out = run(dir.path()).wait_with_output().unwrap();
        match out.status.code() {
            Some(code) => break code,
            None => crashes += 1, // killed by the abort
        }
        assert!(crashes <= 12, "the poison job never ended dead");
    };
    assert_eq!(status, 1, "a dead job: exit 1");
    assert!(crashes >= 3, "it crashed the run {crashes} times");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT j.state, COALESCE(j.last_error_kind, ''), c.text FROM jobs j JOIN chunks c ON c.id = j.input_id
         WHERE j.state != 'done'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "only the poison job is not done: {rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("dead", "crashed")
    );
    assert!(rows[0].2.contains(MARKER));
    pool.close().await;
    let out = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(dir.path())
        .args(["status", "--failed"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("each time this job ran alone"), "{text}");
}
