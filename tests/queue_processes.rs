//! The queue under real processes: kill -9 at random moments, several processes on one file
//! or one PostgreSQL database, the database server restarted under them. The model is the
//! scripted fake (it takes 0.2-2 s per job), so what is tested is the queue.
//!
//! The PostgreSQL tests run on the server named by `QUARRY_TEST_PG` (each on a database of
//! its own); `scripts/pg-test-cluster.sh run …` starts a throwaway one and sets it, with
//! `QUARRY_TEST_PG_RESTART`, the command that restarts it. Without it they are skipped,
//! saying so, except under CI, where they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quarry::queue::{DbUrl, Queue};

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
            text = format!("name = \"{name}\"\nenabled = false\n");
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
async fn seed(db: impl Into<DbUrl>, n: usize) {
    seed_with(db, n, None).await
}

/// `seed`, with chunk `poison.0`'s text holding `poison.1`.
async fn seed_with(db: impl Into<DbUrl>, n: usize, poison: Option<(usize, &str)>) {
    let q = Queue::open(db, true).await.unwrap();
    common::Seed {
        root: "/seed",
        rel_path: "seed.md",
        // The scripted finding is discussed (in the heading), so it is accepted at once.
        heading: &["Scripted pattern"],
        chunks: (0..n)
            .map(|i| {
                // With a mark of Rust (`Vec<T>`): a file without Rust is not read at all.
                let mut text =
                    format!("Chunk {i}: the scripted evidence sentence lives here in a `Vec<T>`.");
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
    run_on(dir, None)
}

/// `quarry run` in `dir`, on `db` (`QUARRY_DB`) when given.
fn run_on(dir: &Path, db: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quarry"));
    cmd.current_dir(dir)
        .args(["run", "--progress", "plain", "--quiet"])
        .env("QUARRY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(db) = db {
        cmd.env("QUARRY_DB", db);
    }
    cmd.spawn().unwrap()
}

/// The checks both databases share: every extract job done, each chunk's finding stored
/// once, no job over its attempts. A macro: the pools are of two types.
macro_rules! assert_exactly_once {
    ($pool:expr, $n:expr) => {{
        let pool = &$pool;
        let n: i64 = $n;
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE stage = 'extract' AND state = 'done'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(done, n, "every job done");
        let (findings, chunks): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT chunk_id) FROM findings")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            (findings, chunks),
            (n, n),
            "each chunk's result visible exactly once"
        );
        let over: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE attempts > max_attempts")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(over, 0, "attempts never exceed the maximum");
    }};
}

async fn check_exactly_once(db: &Path, n: i64) {
    let q = Queue::open(db, false).await.unwrap();
    assert_eq!(q.integrity_check().await.unwrap(), "ok");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_exactly_once!(pool, n);
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

/// The test server is shared: the test that restarts it holds this for writing, the others
/// for reading, so a restart never hits another test's seeding or checks.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A new database on the test server, or None (skipped, saying so) when `QUARRY_TEST_PG` is
/// not set; under CI a missing server is a failure.
async fn pg_database() -> Option<String> {
    let server = match std::env::var("QUARRY_TEST_PG") {
        Ok(s) if !s.is_empty() => s,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs these tests on PostgreSQL: set QUARRY_TEST_PG (scripts/pg-test-cluster.sh)"
            );
            eprintln!("skipped: QUARRY_TEST_PG is not set");
            return None;
        }
    };
    Some(
        quarry::queue::db::create_scratch(&server, "quarry_proc")
            .await
            .unwrap(),
    )
}

/// On PostgreSQL: every extract job done once, each chunk's finding stored once, no job
/// over its attempts.
async fn check_exactly_once_pg(url: &str, n: i64) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    assert_exactly_once!(pool, n);
    // Each job completed by one attempt: no second 'done' attempt anywhere.
    let twice: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT job_id FROM attempts WHERE outcome = 'done'
                               GROUP BY job_id HAVING COUNT(*) > 1) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "no job completed twice");
    pool.close().await;
    quarry::queue::db::drop_scratch(url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_four_processes_5000_jobs_each_done_once() {
    let _server = SERVER.read().await;
    let Some(url) = pg_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [0, 0], 3);
    seed(DbUrl::parse(&url), 5000).await;
    let children: Vec<Child> = (0..4).map(|_| run_on(dir.path(), Some(&url))).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
    }
    check_exactly_once_pg(&url, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_of_workers_mid_job_loses_and_duplicates_nothing() {
    let _server = SERVER.read().await;
    let Some(url) = pg_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [200, 1500], 3);
    seed(DbUrl::parse(&url), 60).await;
    // Two workers at a time; one of them killed in the middle of its jobs, six times.
    for _ in 0..6 {
        let mut victim = run_on(dir.path(), Some(&url));
        let survivor = run_on(dir.path(), Some(&url));
        std::thread::sleep(Duration::from_millis(fastrand::u64(600..1800)));
        let _ = victim.kill(); // SIGKILL
        victim.wait().unwrap();
        let mut survivor = survivor;
        let _ = survivor.kill();
        survivor.wait().unwrap();
    }
    let out = run_on(dir.path(), Some(&url)).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "final run: {:?} {stderr}", out.status);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (dead, crashed): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE state = 'dead'), COALESCE(SUM(crashes), 0)::BIGINT FROM jobs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dead, 0, "no job dies of crashes that were not its own");
    assert!(crashed > 0, "some job was killed mid-run");
    pool.close().await;
    check_exactly_once_pg(&url, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_workers_reconnect_and_nothing_is_lost_or_done_twice() {
    let _server = SERVER.write().await;
    let Some(url) = pg_database().await else {
        return;
    };
    let restart = std::env::var("QUARRY_TEST_PG_RESTART").expect(
        "QUARRY_TEST_PG_RESTART: the command that restarts the test server (scripts/pg-test-cluster.sh sets it)",
    );
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [20, 120], 3);
    seed(DbUrl::parse(&url), 600).await;
    let children: Vec<Child> = (0..2).map(|_| run_on(dir.path(), Some(&url))).collect();
    for at in [1500, 2500] {
        std::thread::sleep(Duration::from_millis(at));
        let status = Command::new("sh").args(["-c", &restart]).status().unwrap();
        assert!(status.success(), "restarting the server: {status:?}");
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{:?} {stderr}", out.status);
    }
    check_exactly_once_pg(&url, 600).await;
}
