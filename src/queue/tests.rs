use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;

struct TestQueue {
    q: Queue,
    clock: Arc<AtomicI64>,
    _dir: Option<tempfile::TempDir>,
}

impl TestQueue {
    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A queue on a new SQLite file.
async fn queue() -> TestQueue {
    let dir = tempfile::tempdir().unwrap();
    let db = DbUrl::from(dir.path().join("q.db"));
    open_test(db, Some(dir)).await
}

/// A queue on a new database of the PostgreSQL server named by `QUARRY_TEST_PG`, or None
/// (the test is skipped, saying so) when it is not set. CI always sets it (`.ci/run` starts
/// a throwaway server): there, a missing server fails the test instead of skipping it.
async fn queue_pg() -> Option<TestQueue> {
    let server = match std::env::var("QUARRY_TEST_PG") {
        Ok(s) if !s.is_empty() => s,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the queue suite on PostgreSQL too: set QUARRY_TEST_PG \
                 (scripts/pg-test-cluster.sh run … does)"
            );
            eprintln!("skipped on PostgreSQL: QUARRY_TEST_PG is not set");
            return None;
        }
    };
    let url = db::create_scratch(&server, "quarry_test").await.unwrap();
    Some(open_test(DbUrl::Postgres(url), None).await)
}

async fn open_test(db: DbUrl, dir: Option<tempfile::TempDir>) -> TestQueue {
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let c = clock.clone();
    let q = Queue::open_with(
        db,
        true,
        Arc::new(move || c.load(Ordering::SeqCst)),
        QueueOptions {
            lease: Duration::from_secs(10),
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
        },
    )
    .await
    .unwrap();
    TestQueue {
        q,
        clock,
        _dir: dir,
    }
}

/// One suite, two databases: each named test runs as `sqlite::NAME` on a new SQLite file
/// and as `postgres::NAME` on a new PostgreSQL database (dropped after it passes).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::queue().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(t) = super::queue_pg().await else { return };
                    let url = t.q.db().as_text();
                    super::$name(t).await;
                    super::db::drop_scratch(&url).await.unwrap();
                }
            )*
        }
    };
}

on_both! {
    claim_complete_and_nothing_left,
    enqueueing_twice_creates_each_job_once,
    an_expired_lease_is_rescued_and_the_stale_worker_is_fenced_out,
    heartbeats_keep_a_lease_alive,
    transient_failure_then_done_and_permanent_failure_then_dead,
    a_permanent_error_dies_at_once,
    a_job_waits_for_its_dependencies,
    release_puts_a_job_back_without_counting_the_attempt,
    crashes_of_the_process_are_not_attempts,
    a_job_that_crashed_twice_runs_alone_in_its_process,
    a_job_that_kills_its_process_each_time_it_runs_alone_ends_dead,
    cancel_settles_a_job_and_unknown_jobs_are_errors,
    concurrent_claimers_never_share_a_job,
    leases_of_a_dead_owner_can_be_expired_at_once,
    complete_many_is_fenced_per_job,
    the_bill_counts_every_attempts_tokens_per_stage,
    the_store_keeps_versions_chunks_findings_and_patterns,
    a_higher_priority_job_is_claimed_first_and_stages_filter_claims,
    a_database_that_recorded_an_edited_migrations_earlier_text_opens,
}

/// A database made before a landed migration's text was edited recorded the earlier
/// checksum; a newer quarry opens it (sqlx alone refuses: "previously applied but has been
/// modified").
async fn a_database_that_recorded_an_edited_migrations_earlier_text_opens(t: TestQueue) {
    let (version, earlier) = EDITED_MIGRATIONS[0];
    let earlier = hex::decode(earlier).unwrap();
    on_pool!(&t.q.writer, p => sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2",
    )
    .bind(earlier.as_slice())
    .bind(version)
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    let again = Queue::open(t.q.db().clone(), false)
        .await
        .expect("a database with the earlier checksum opens");
    let now: Vec<u8> = on_pool!(&again.writer, p => sqlx::query_scalar(
        "SELECT checksum FROM _sqlx_migrations WHERE version = $1",
    )
    .bind(version)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_ne!(now, earlier);
}

/// Every landed migration, pinned by its checksum (the first 8 bytes of its SHA-384): a
/// database that applied a migration refuses to open with another text of it, so a landed
/// migration is never edited (a change is a new migration, which adds its line here).
#[test]
fn landed_migrations_keep_their_text() {
    let pinned = [
        ("migrations", 20261123000001, "ed1d55c59cb1ca86"),
        ("migrations", 20261123000002, "45fbc678aa5422ab"),
        ("migrations", 20261123000003, "f9cccde4a363cee8"),
        ("migrations", 20261130000001, "72ac30e4c68a2708"),
        ("migrations", 20261130000002, "f528821c0120afd8"),
        ("migrations", 20261130000010, "1a5f0ed40da11e95"),
        ("migrations", 20261130000030, "6fe6d08a5bf839b5"),
        ("migrations", 20261201000001, "e9e9afefcbe4c98a"),
        ("migrations", 20261207000001, "0be78b25665f54b0"),
        ("migrations_pg", 20261130000002, "b7e49fd34ffb1f80"),
        ("migrations_pg", 20261130000030, "b680e010b3f03086"),
        ("migrations_pg", 20261201000001, "e9e9afefcbe4c98a"),
        ("migrations_pg", 20261207000001, "3560b89a0c6dcd02"),
    ];
    let now: Vec<(&str, i64, String)> =
        [("migrations", &MIGRATOR), ("migrations_pg", &MIGRATOR_PG)]
            .into_iter()
            .flat_map(|(dir, m)| {
                m.iter()
                    .map(move |x| (dir, x.version, hex::encode(&x.checksum[..8])))
            })
            .collect();
    for (dir, version, sum) in &now {
        let pin = pinned.iter().find(|(d, v, _)| d == dir && v == version);
        match pin {
            Some((_, _, p)) => assert_eq!(
                p, sum,
                "{dir}/{version}_* was edited after it landed: put the change in a new migration"
            ),
            None => panic!("{dir}/{version}_* is new: pin it in this test"),
        }
    }
    assert_eq!(now.len(), pinned.len(), "a pinned migration is gone");
}

fn job(dedup: &str) -> NewJob {
    NewJob {
        role: "r".into(),
        stage: "s".into(),
        input_kind: "kb".into(),
        input_id: None,
        dedup: dedup.into(),
        priority: 0,
        max_attempts: 3,
        payload: serde_json::json!({"k": dedup}),
        est_tokens: 10,
        depends_on: Vec::new(),
    }
}

fn failure(retryable: bool) -> Failure {
    Failure {
        kind: "test".into(),
        message: "boom".into(),
        reply: Some("garbage reply".into()),
        retryable,
    }
}

async fn claim_complete_and_nothing_left(t: TestQueue) {
    let ids = t.q.enqueue(&[job("a"), job("b")]).await.unwrap();
    assert_eq!(ids.len(), 2);
    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(l.attempt, 1);
    assert_eq!(l.payload["k"], "a");
    assert!(t.q.complete(&l, &Done::default()).await.unwrap());
    let l2 = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_ne!(l.id, l2.id);
    assert!(
        t.q.claim("w", &[]).await.unwrap().is_none(),
        "b is leased, a done"
    );
    assert_eq!(t.q.job_state(l.id).await.unwrap(), Some(JobState::Done));
}

async fn enqueueing_twice_creates_each_job_once(t: TestQueue) {
    assert_eq!(t.q.enqueue(&[job("a"), job("b")]).await.unwrap().len(), 2);
    assert_eq!(
        t.q.enqueue(&[job("a"), job("b"), job("c")])
            .await
            .unwrap()
            .len(),
        1
    );
    let total: i64 = t.q.counts().await.unwrap().iter().map(|c| c.jobs).sum();
    assert_eq!(total, 3);
}

async fn an_expired_lease_is_rescued_and_the_stale_worker_is_fenced_out(t: TestQueue) {
    t.q.enqueue(&[job("a")]).await.unwrap();
    let stale = t.q.claim("w1", &[]).await.unwrap().unwrap();
    t.advance(11_000); // past the 10 s lease
    assert_eq!(t.q.rescue_expired().await.unwrap(), 1);
    let fresh = t.q.claim("w2", &[]).await.unwrap().unwrap();
    assert_eq!(fresh.id, stale.id);
    assert_eq!(fresh.attempt, 1, "a lost lease is not the job's attempt");
    // The stale worker's completion and failure change nothing.
    assert!(!t.q.complete(&stale, &Done::default()).await.unwrap());
    assert_eq!(
        t.q.fail(&stale, &failure(true), &Done::default())
            .await
            .unwrap(),
        FailOutcome::Lost
    );
    assert!(!t.q.heartbeat(&stale).await.unwrap());
    assert!(t.q.complete(&fresh, &Done::default()).await.unwrap());
}

async fn heartbeats_keep_a_lease_alive(t: TestQueue) {
    t.q.enqueue(&[job("a")]).await.unwrap();
    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    for _ in 0..5 {
        t.advance(6_000);
        assert!(t.q.heartbeat(&l).await.unwrap());
        assert_eq!(t.q.rescue_expired().await.unwrap(), 0);
    }
    assert!(t.q.complete(&l, &Done::default()).await.unwrap());
}

async fn transient_failure_then_done_and_permanent_failure_then_dead(t: TestQueue) {
    t.q.enqueue(&[job("flaky"), job("broken")]).await.unwrap();
    let a = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(
        t.q.fail(&a, &failure(true), &Done::default())
            .await
            .unwrap(),
        FailOutcome::Retry
    );
    let b = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(b.payload["k"], "broken");
    assert_eq!(
        t.q.fail(&b, &failure(true), &Done::default())
            .await
            .unwrap(),
        FailOutcome::Retry
    );
    // Both wait for their backoff: nothing is claimable now.
    assert!(t.q.claim("w", &[]).await.unwrap().is_none());
    t.advance(1_000);
    let a2 = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!((a2.id, a2.attempt), (a.id, 2));
    assert!(t.q.complete(&a2, &Done::default()).await.unwrap());
    let mut last = None;
    for attempt in 2..=3 {
        t.advance(10_000);
        let l = t.q.claim("w", &[]).await.unwrap().unwrap();
        assert_eq!((l.id, l.attempt), (b.id, attempt));
        last = Some(
            t.q.fail(&l, &failure(true), &Done::default())
                .await
                .unwrap(),
        );
    }
    assert_eq!(last, Some(FailOutcome::Dead));
    t.advance(100_000);
    assert!(
        t.q.claim("w", &[]).await.unwrap().is_none(),
        "dead jobs are not retried"
    );
    let failed = t.q.failures().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].state, failed[0].attempts), (JobState::Dead, 3));
    assert_eq!(failed[0].error, "boom");
    // `retry --dead` brings it back with fresh attempts.
    assert_eq!(t.q.retry(None).await.unwrap(), 1);
    assert_eq!(t.q.claim("w", &[]).await.unwrap().unwrap().attempt, 1);
}

async fn a_permanent_error_dies_at_once(t: TestQueue) {
    t.q.enqueue(&[job("a")]).await.unwrap();
    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(
        t.q.fail(&l, &failure(false), &Done::default())
            .await
            .unwrap(),
        FailOutcome::Dead
    );
}

#[test]
fn backoff_grows_and_stays_within_bounds() {
    let b = Backoff {
        base: Duration::from_secs(2),
        max: Duration::from_secs(30),
    };
    assert_eq!(b.delay(1, 1.0), Duration::from_secs(2));
    assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
    assert_eq!(b.delay(10, 1.0), Duration::from_secs(30));
    assert_eq!(b.delay(3, 0.0), Duration::from_secs(4));
    for attempt in 1..12 {
        for j in [0.0, 0.3, 0.99] {
            let d = b.delay(attempt, j);
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(30));
        }
    }
}

async fn a_job_waits_for_its_dependencies(t: TestQueue) {
    let ids = t.q.enqueue(&[job("a"), job("b")]).await.unwrap();
    let mut last = job("last");
    last.priority = 100;
    last.depends_on = ids.clone();
    t.q.enqueue(&[last]).await.unwrap();
    let first = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_ne!(first.payload["k"], "last", "higher priority but blocked");
    t.q.complete(&first, &Done::default()).await.unwrap();
    let second = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert!(t.q.claim("w", &[]).await.unwrap().is_none());
    t.q.complete(&second, &Done::default()).await.unwrap();
    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(l.payload["k"], "last");
}

async fn release_puts_a_job_back_without_counting_the_attempt(t: TestQueue) {
    t.q.enqueue(&[job("a")]).await.unwrap();
    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert!(t.q.release(&l).await.unwrap());
    let again = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(again.attempt, 1);
    assert_eq!(t.q.expire_owner("w").await.unwrap(), 1);
    assert_eq!(t.q.rescue_expired().await.unwrap(), 1);
    assert_eq!(t.q.claim("w2", &[]).await.unwrap().unwrap().attempt, 1);
}

/// Kills the process `owner`: its leases expire now and are taken back.
async fn crash(t: &TestQueue, owner: &str) {
    t.q.expire_owner(owner).await.unwrap();
    t.q.rescue_expired().await.unwrap();
}

async fn job_row(t: &TestQueue, id: JobId) -> (String, i64, i64, i64, String) {
    on_pool!(t.q.reader(), p => sqlx::query_as(
        "SELECT state, attempts, crashes, solo_crashes, COALESCE(last_error_kind, '') FROM jobs WHERE id = $1",
    )
    .bind(id.0)
    .fetch_one(p)
    .await
    .unwrap())
}

async fn crashes_of_the_process_are_not_attempts(t: TestQueue) {
    let mut one = job("a");
    one.max_attempts = 1;
    let id = t.q.enqueue(&[one, job("b")]).await.unwrap()[0];
    for _ in 0..10 {
        // Each time the process holding "a" (beside "b") dies.
        let a = t.q.claim("p1", &[]).await.unwrap().unwrap();
        assert_eq!(a.id, id);
        t.q.claim("p1", &[]).await.unwrap().unwrap();
        crash(&t, "p1").await;
        let (state, attempts, _, solo, _) = job_row(&t, id).await;
        assert_eq!((state.as_str(), attempts, solo), ("queued", 0, 0));
        if job_row(&t, id).await.2 >= SUSPECT_CRASHES {
            break;
        }
    }
    let (_, _, crashes, _, kind) = job_row(&t, id).await;
    assert_eq!((crashes, kind.as_str()), (SUSPECT_CRASHES, "crashed"));
}

async fn a_job_that_crashed_twice_runs_alone_in_its_process(t: TestQueue) {
    let ids = t.q.enqueue(&[job("a"), job("b"), job("c")]).await.unwrap();
    for _ in 0..SUSPECT_CRASHES {
        t.q.claim("p1", &[]).await.unwrap().unwrap();
        t.q.claim("p1", &[]).await.unwrap().unwrap();
        crash(&t, "p1").await;
    }
    // "a" and "b" are suspects now; "c" is not.
    let first = t.q.claim("p2", &[]).await.unwrap().unwrap();
    assert_eq!(first.id, ids[2], "a plain job goes first");
    assert!(
        t.q.claim("p2", &[]).await.unwrap().is_none(),
        "a suspect is not taken beside another job of this process"
    );
    let other = t.q.claim("p3", &[]).await.unwrap().unwrap();
    assert_eq!(other.id, ids[0], "another process holding nothing takes it");
    assert!(t.q.complete(&first, &Done::default()).await.unwrap());
    let b = t.q.claim("p2", &[]).await.unwrap().unwrap();
    assert_eq!(b.id, ids[1]);
    t.q.enqueue(&[job("d")]).await.unwrap();
    assert!(
        t.q.claim("p2", &[]).await.unwrap().is_none(),
        "nothing is taken beside a suspect"
    );
    // p2 dies while "b" runs alone: the death is blamed on "b".
    crash(&t, "p2").await;
    assert_eq!(job_row(&t, ids[1]).await.3, 1);
}

async fn a_job_that_kills_its_process_each_time_it_runs_alone_ends_dead(t: TestQueue) {
    let ids = t.q.enqueue(&[job("poison"), job("b")]).await.unwrap();
    let mut crashes = 0;
    loop {
        let l = t.q.claim("p", &[]).await.unwrap();
        let Some(l) = l else { break };
        if l.id == ids[0] {
            crashes += 1;
            crash(&t, "p").await;
        } else {
            assert!(t.q.complete(&l, &Done::default()).await.unwrap());
        }
        assert!(crashes < 10, "the poison job must die");
    }
    let (state, _, _, solo, kind) = job_row(&t, ids[0]).await;
    assert_eq!(
        (state.as_str(), solo, kind.as_str()),
        ("dead", 3, "crashed")
    );
    assert_eq!(t.q.job_state(ids[1]).await.unwrap(), Some(JobState::Done));
    let f = t.q.failures().await.unwrap();
    assert!(
        f[0].error.contains("each time this job ran alone"),
        "{}",
        f[0].error
    );
}

async fn cancel_settles_a_job_and_unknown_jobs_are_errors(t: TestQueue) {
    let ids = t.q.enqueue(&[job("a")]).await.unwrap();
    assert!(t.q.cancel(ids[0]).await.unwrap());
    assert!(!t.q.cancel(ids[0]).await.unwrap());
    assert!(t.q.claim("w", &[]).await.unwrap().is_none());
    assert!(matches!(
        t.q.cancel(JobId(999)).await,
        Err(QueueError::NoSuchJob(_))
    ));
}

async fn concurrent_claimers_never_share_a_job(t: TestQueue) {
    let jobs: Vec<NewJob> = (0..300).map(|i| job(&format!("j{i}"))).collect();
    t.q.enqueue(&jobs).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..4 {
        let q = t.q.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(l) = q.claim(&format!("w{w}"), &[]).await.unwrap() {
                assert!(q.complete(&l, &Done::default()).await.unwrap());
                mine.push(l.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!((n, all.len()), (300, 300));
    assert_eq!(t.q.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn opening_a_missing_database_without_create_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err = Queue::open(&dir.path().join("nope.db"), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("quarry enqueue"), "{err}");
}

async fn leases_of_a_dead_owner_can_be_expired_at_once(t: TestQueue) {
    t.q.enqueue(&[job("a"), job("b")]).await.unwrap();
    t.q.claim("host:1", &[]).await.unwrap().unwrap();
    t.q.claim("host:2", &[]).await.unwrap().unwrap();
    assert_eq!(t.q.lease_owners().await.unwrap().len(), 2);
    assert_eq!(t.q.expire_owner("host:1").await.unwrap(), 1);
    assert_eq!(
        t.q.rescue_expired().await.unwrap(),
        1,
        "only the dead owner's lease"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_a_reader_polls() {
    let t = queue().await;
    let wal = t.q.path().unwrap().with_extension("db-wal");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let q = t.q.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut polls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                q.counts().await.unwrap();
                polls += 1;
            }
            polls
        })
    };
    let mut max_wal = 0u64;
    for round in 0..30 {
        let jobs: Vec<NewJob> = (0..100).map(|i| job(&format!("r{round}j{i}"))).collect();
        t.q.enqueue(&jobs).await.unwrap();
        let leases = t.q.claim_many("w", &[], 100).await.unwrap();
        let done: Vec<_> = leases.into_iter().map(|l| (l, Done::default())).collect();
        t.q.complete_many(&done).await.unwrap();
        if round % 5 == 4 {
            t.q.checkpoint().await.unwrap();
        }
        max_wal = max_wal.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    stop.store(true, Ordering::Relaxed);
    let polls = reader.await.unwrap();
    assert!(polls > 10, "the reader kept polling ({polls})");
    t.q.checkpoint().await.unwrap();
    let end = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(max_wal < 8 * 1024 * 1024, "WAL grew to {max_wal} bytes");
    assert!(
        end < 64 * 1024,
        "a checkpoint truncates the WAL, left {end} bytes"
    );
}

async fn complete_many_is_fenced_per_job(t: TestQueue) {
    let jobs: Vec<NewJob> = (0..5).map(|i| job(&format!("m{i}"))).collect();
    t.q.enqueue(&jobs).await.unwrap();
    let mut leases = t.q.claim_many("w", &[], 5).await.unwrap();
    assert_eq!(leases.len(), 5);
    leases[2].token = "stale".into();
    let done: Vec<_> = leases
        .iter()
        .cloned()
        .map(|l| (l, Done::default()))
        .collect();
    let res = t.q.complete_many(&done).await.unwrap();
    assert_eq!(res, [true, true, false, true, true]);
    assert_eq!(
        t.q.job_state(leases[2].id).await.unwrap(),
        Some(JobState::Leased)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_processes_opening_a_new_database_at_once_all_succeed() {
    for round in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let opens: Vec<_> = (0..3)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { Queue::open(&path, true).await.map(|q| q.db().clone()) })
            })
            .collect();
        for o in opens {
            let r = o.await.unwrap();
            assert!(r.is_ok(), "round {round}: {}", r.unwrap_err());
        }
    }
}

async fn the_bill_counts_every_attempts_tokens_per_stage(t: TestQueue) {
    let mut other = job("b");
    other.stage = "later".into();
    t.q.enqueue(&[job("a"), other]).await.unwrap();
    let a = t.q.claim("w", &[]).await.unwrap().unwrap();
    let spent = Done {
        prompt_tokens: 100,
        cached_tokens: 60,
        gen_tokens: 10,
        forced_tokens: 4,
        ..Done::default()
    };
    t.q.fail(&a, &failure(true), &spent).await.unwrap();
    t.advance(2_000);
    let a = t.q.claim("w", &[]).await.unwrap().unwrap();
    t.advance(1_500);
    assert!(t.q.complete(&a, &spent).await.unwrap());
    let bill = t.q.bill().await.unwrap();
    assert_eq!(bill.len(), 2);
    assert_eq!(
        bill[0],
        StageBill {
            stage: "s".into(),
            jobs: 1,
            done: 1,
            prompt_tokens: 200,
            cached_tokens: 120,
            computed_tokens: 80,
            gen_tokens: 20,
            forced_tokens: 8,
            attempt_seconds: 1.5,
            // From the first attempt's start to the second one's end.
            span_seconds: 3.5,
        }
    );
    assert_eq!((bill[1].stage.as_str(), bill[1].done), ("later", 0));
}

async fn a_higher_priority_job_is_claimed_first_and_stages_filter_claims(t: TestQueue) {
    let mut urgent = job("urgent");
    urgent.priority = 5;
    urgent.stage = "other".into();
    t.q.enqueue(&[job("a"), urgent]).await.unwrap();
    let only_s = t.q.claim("w", &["s".to_string()]).await.unwrap().unwrap();
    assert_eq!(only_s.payload["k"], "a", "the stage filter holds");
    t.q.release(&only_s).await.unwrap();
    let first = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(first.payload["k"], "urgent");
    assert_eq!(t.q.pending_in(&["other", "s"]).await.unwrap(), 2);
    assert_eq!(t.q.pending_in(&[]).await.unwrap(), 0);
}

async fn the_store_keeps_versions_chunks_findings_and_patterns(t: TestQueue) {
    use store::{NewChunk, NewFinding, NewSource};
    let source = |hash: &str| NewSource {
        root: "/r".into(),
        rel_path: "a.md".into(),
        kind: Some("markdown".into()),
        content_hash: Some(hash.into()),
        notes: vec!["a note".into()],
        ..NewSource::default()
    };
    let mut tx = t.q.begin().await.unwrap();
    let (s1, v1) = store::insert_source(&mut tx, &source("h1"), 1)
        .await
        .unwrap();
    let (s2, v2) = store::insert_source(&mut tx, &source("h2"), 2)
        .await
        .unwrap();
    assert_eq!((v1, v2), (1, 2));
    let chunk = NewChunk {
        ordinal: 0,
        line_start: 1,
        line_end: 3,
        heading_path: vec!["Title".into()],
        text: "The text of the chunk.".into(),
        tokens: 5,
        ..NewChunk::default()
    };
    let c = store::insert_chunk(&mut tx, s2, &chunk).await.unwrap();
    let latest = store::latest_versions(&mut tx, "/r", &["a.md", "b.md"])
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!((latest["a.md"].id, latest["a.md"].version), (s2, 2));
    let mut extract = job("x");
    extract.input_kind = "chunk".into();
    extract.input_id = Some(c);
    let jid = insert_jobs(&mut tx, &[extract], 3).await.unwrap()[0];
    tx.commit().await.unwrap();

    let sources = t.q.latest_sources("/r").await.unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(
        (sources[0].id, sources[0].status),
        (s2, SourceStatus::Active)
    );
    assert_eq!(sources[0].notes, ["a note"]);
    assert_ne!(s1, s2);
    let row = t.q.chunk(c).await.unwrap();
    assert_eq!((row.rel_path.as_str(), row.heading_path.len()), ("a.md", 1));
    assert_eq!(t.q.source_text(s2).await.unwrap(), "The text of the chunk.");
    let chunks = t.q.source_chunks(s2).await.unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        (chunks[0].id, chunks[0].text.as_str()),
        (c, "The text of the chunk.")
    );
    assert_eq!(t.q.chunk_counts().await.unwrap(), [(s2, 1)]);

    let l = t.q.claim("w", &[]).await.unwrap().unwrap();
    assert_eq!(l.id, jid);
    let mut tx = t.q.begin().await.unwrap();
    let done = Done {
        result: serde_json::json!({"ok": true}),
        ..Done::default()
    };
    assert!(t.q.complete_in(&mut tx, &l, &done).await.unwrap());
    let finding = NewFinding {
        pattern: "Typestate".into(),
        pattern_key: "typestate".into(),
        category: "idiom".into(),
        summary: "s".into(),
        evidence: "e".into(),
        code: None,
        line_start: 1,
        line_end: 2,
        status: FindingStatus::Pending,
        reason: None,
    };
    store::insert_findings(&mut tx, jid, &row, &[finding.clone(), finding])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let found = t.q.findings_of_job(jid).await.unwrap();
    assert_eq!(found.len(), 2);
    let mut tx = t.q.begin().await.unwrap();
    for f in &found {
        store::set_finding_status(&mut tx, f.id, FindingStatus::Accepted, "ok")
            .await
            .unwrap();
    }
    let p1 = store::upsert_pattern(&mut tx, "typestate", "Typestate", "idiom", "typestate", 4)
        .await
        .unwrap();
    let p2 = store::upsert_pattern(&mut tx, "typestate", "Typestate", "idiom", "typestate", 4)
        .await
        .unwrap();
    let p3 = store::upsert_pattern(&mut tx, "type state", "Type state", "idiom", "typestate", 4)
        .await
        .unwrap();
    assert_eq!(p1, p2, "one pattern per key");
    store::link_finding(&mut tx, p1, found[0].id).await.unwrap();
    store::link_finding(&mut tx, p1, found[0].id).await.unwrap();
    assert_eq!(
        store::pattern_finding_ids(&mut tx, p1).await.unwrap(),
        [found[0].id]
    );
    assert_eq!(store::jobs_of_stage(&mut tx, "s").await.unwrap(), [jid]);
    tx.commit().await.unwrap();
    assert_eq!(t.q.pattern(p3).await.unwrap().slug, "typestate-2");
    assert_eq!(t.q.patterns().await.unwrap().len(), 2);
    assert_eq!(t.q.ungrouped_findings().await.unwrap().len(), 1);
    assert_eq!(t.q.pattern_findings(p1).await.unwrap().len(), 1);
    assert_eq!(t.q.current_findings().await.unwrap().len(), 2);
    assert_eq!(
        t.q.latest_result("s", None).await.unwrap(),
        None,
        "the job read a chunk"
    );
    assert_eq!(
        t.q.latest_result("s", Some(c)).await.unwrap(),
        Some(serde_json::json!({"ok": true}))
    );
    assert_eq!(t.q.chunk_results("s", s2).await.unwrap().len(), 1);
    assert_eq!(t.q.stages().await.unwrap(), ["s"]);
    let running = t.q.running().await.unwrap();
    assert!(running.is_empty());
}

#[test]
fn only_errors_that_waiting_can_cure_are_transient() {
    let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    assert!(QueueError::from(io).is_transient());
    assert!(QueueError::from(sqlx::Error::PoolTimedOut).is_transient());
    assert!(!QueueError::from(sqlx::Error::RowNotFound).is_transient());
    assert!(!QueueError::NoSuchJob(JobId(1)).is_transient());
    assert!(!QueueError::Corrupt("x".into()).is_transient());
}
