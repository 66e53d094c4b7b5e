//! End-to-end tests of the `quarry` binary: a temp folder, the real default model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::model;

/// A `quarry.toml` choosing the scripted fake backend.
fn fake_backend(dir: &Path) {
    std::fs::write(dir.join("quarry.toml"), "[backend]\nkind = \"fake\"\n").unwrap();
}

fn quarry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(dir)
        .env("QUARRY_LOG", "warn")
        .env_remove("QUARRY_CONFIG")
        .env_remove("QUARRY_DB")
        .args(args)
        .output()
        .expect("the quarry binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn research(dir: &Path) -> PathBuf {
    let r = dir.join("research");
    std::fs::create_dir_all(&r).unwrap();
    std::fs::write(
        r.join("errors.md"),
        "# Errors\n\n## Propagation\n\nThe `?` operator returns early with the error and converts it with `From`.\n\n```rust\nlet text = std::fs::read_to_string(path)?;\n```\n",
    )
    .unwrap();
    std::fs::write(
        r.join("borrow.txt"),
        "Take &str instead of &String in functions that only read text.\nCallers keep ownership and nothing is copied.\n",
    )
    .unwrap();
    std::fs::write(
        r.join("guard.rs"),
        "/// Removes the directory when dropped: cleanup on every path out of a scope.\npub struct Guard(std::path::PathBuf);\n\nimpl Drop for Guard {\n    fn drop(&mut self) {\n        let _ = std::fs::remove_dir_all(&self.0);\n    }\n}\n",
    )
    .unwrap();
    r
}

#[test]
fn a_real_model_writes_a_cited_knowledge_base_and_reenqueue_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = research(dir.path());
    // No --model and no ./models here: the set-up's default model is found from any folder.
    model();
    assert!(!dir.path().join("models").exists());
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("3 files"), "{}", text(&o));

    let o = quarry(
        dir.path(),
        &["run", "--workers", "3", "--progress", "plain"],
    );
    let out = text(&o);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{out}");
    assert!(out.contains("knowledge base: output/index.md"), "{out}");

    let o = quarry(dir.path(), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let extract = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "extract")
        .unwrap();
    assert_eq!(extract["done"], 3, "every extract job is done: {status}");
    assert_eq!(extract["total"], 3);

    let outdir = dir.path().join("output");
    for page in [
        "sources/errors.md",
        "sources/borrow.txt.md",
        "sources/guard.rs.md",
        "index.md",
        "SUMMARY.md",
    ] {
        assert!(outdir.join(page).exists(), "{page} missing");
    }
    // Every citation on every page names a file that exists, with lines inside it.
    let cite = regex_lite_citations();
    let mut citations = 0;
    for entry in walkdir::WalkDir::new(&outdir) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "md") {
            continue;
        }
        let page = std::fs::read_to_string(entry.path()).unwrap();
        for (file, a, b) in cite(&page) {
            let src = folder.join(&file);
            let lines = std::fs::read_to_string(&src)
                .unwrap_or_else(|_| panic!("{} cites missing {file}", entry.path().display()))
                .lines()
                .count();
            assert!(
                a >= 1 && a <= b && b <= lines,
                "{file}:{a}-{b} outside 1-{lines}"
            );
            citations += 1;
        }
    }
    let patterns = outdir.join("patterns");
    if patterns.exists() && std::fs::read_dir(&patterns).unwrap().count() > 0 {
        assert!(citations > 0, "pattern pages must cite their sources");
    }

    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 jobs queued"), "{}", text(&o));
}

/// Finds `path:a-b` citations written as inline code.
fn regex_lite_citations() -> impl Fn(&str) -> Vec<(String, usize, usize)> {
    |page: &str| {
        page.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|span| {
                let (file, range) = span.rsplit_once(':')?;
                let (a, b) = range.split_once('-')?;
                Some((file.to_string(), a.parse().ok()?, b.parse().ok()?))
            })
            .collect()
    }
}

#[test]
fn a_missing_or_empty_folder_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = quarry(dir.path(), &["enqueue", "no-such-folder"]);
    assert_eq!(o.status.code(), Some(2));
    let msg = text(&o);
    assert!(msg.contains("no-such-folder"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let o = quarry(dir.path(), &["enqueue", "empty"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no research files"), "{}", text(&o));
    assert!(
        !dir.path().join("queue.db").exists(),
        "nothing half-written"
    );
}

#[test]
fn a_missing_or_corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    research(dir.path());
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = quarry(
        dir.path(),
        &["run", "--model", "models/nope.gguf", "--progress", "plain"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("models/nope.gguf") && text(&o).contains("not found"),
        "{}",
        text(&o)
    );
    std::fs::write(dir.path().join("fake.gguf"), b"this is not a model at all").unwrap();
    let o = quarry(
        dir.path(),
        &["run", "--model", "fake.gguf", "--progress", "plain"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a GGUF"), "{}", text(&o));
    let o = quarry(dir.path(), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        status["stages"][0]["waiting"], 3,
        "the jobs wait for a usable model: {status}"
    );
}

#[test]
fn a_run_without_a_database_says_to_enqueue_first() {
    let dir = tempfile::tempdir().unwrap();
    let o = quarry(dir.path(), &["status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("quarry enqueue"), "{}", text(&o));
}

#[test]
fn an_edited_file_is_a_new_version_and_a_deleted_one_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let folder = research(dir.path());
    fake_backend(dir.path());
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(text(&o).contains("3 new or changed"), "{}", text(&o));
    std::fs::write(
        folder.join("borrow.txt"),
        "Edited: take &[T] instead of &Vec<T>.\n",
    )
    .unwrap();
    std::fs::remove_file(folder.join("guard.rs")).unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    let out = text(&o);
    assert!(
        out.contains("1 new or changed, 1 unchanged, 0 refused, 1 gone"),
        "{out}"
    );
    assert!(
        out.contains("1 jobs queued"),
        "only the edited file's chunk: {out}"
    );
    let o = quarry(dir.path(), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["stages"][0]["total"], 4, "{status}");
}

#[test]
fn three_concurrent_enqueues_on_a_new_database_all_succeed_and_create_each_job_once() {
    // 6 rounds, each on a new database: all 18 enqueues exit 0 (the migration is locked).
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        research(dir.path());
        fake_backend(dir.path());
        let children: Vec<_> = (0..3)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_quarry"))
                    .current_dir(dir.path())
                    .args(["enqueue", "research"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let c = c.wait_with_output().unwrap();
            assert!(c.status.success(), "round {round}: {}", text(&c));
        }
        let o = quarry(dir.path(), &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(status["stages"][0]["total"], 3, "{status}");
    }
}

#[test]
fn log_lines_to_a_file_or_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    research(dir.path());
    fake_backend(dir.path());
    let o = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(dir.path())
        .env("QUARRY_LOG", "info")
        .args(["enqueue", "research"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("INFO"), "some log lines: {err}");
    assert!(!err.contains('\x1b'), "no ANSI codes: {err:?}");
}

#[test]
fn skipped_paths_and_fallbacks_are_stored_and_shown_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let folder = research(dir.path());
    fake_backend(dir.path());
    std::os::unix::fs::symlink(".", folder.join("loop")).unwrap();
    std::os::unix::fs::symlink("nowhere.md", folder.join("dangling.md")).unwrap();
    std::fs::write(folder.join("broken.json"), b"{\"a\": [1, 2,\n").unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    for _ in 0..2 {
        // Still there after the enqueue output is gone, and after enqueueing again.
        let out = text(&quarry(dir.path(), &["status", "--failed"]));
        assert!(
            out.contains("loop  skipped: symbolic link to a folder"),
            "{out}"
        );
        assert!(
            out.contains("dangling.md  skipped: broken symbolic link"),
            "{out}"
        );
        assert!(out.contains("warning  broken.json:"), "{out}");
        let o = quarry(dir.path(), &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let skipped = status["refused"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "skipped")
            .count();
        assert_eq!(skipped, 2, "{status}");
        assert_eq!(status["warnings"][0]["file"], "broken.json", "{status}");
        let o = quarry(dir.path(), &["enqueue", "research"]);
        assert!(text(&o).contains("0 gone"), "{}", text(&o));
    }
}

#[test]
fn bad_files_are_refused_with_reasons_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let folder = research(dir.path());
    fake_backend(dir.path());
    std::fs::write(folder.join("image.md"), b"\x89PNG\r\n\x1a\n\x00\x00binary").unwrap();
    std::fs::write(folder.join("latin1.txt"), b"caf\xe9 au lait\n").unwrap();
    std::fs::write(folder.join("empty.md"), b"").unwrap();
    std::fs::write(folder.join("broken.json"), b"{\"a\": [1, 2,\n").unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("3 refused"), "{}", text(&o));
    let o = quarry(dir.path(), &["status", "--failed"]);
    let out = text(&o);
    for want in [
        "image.md  binary",
        "latin1.txt  invalid_utf8",
        "empty.md  empty",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let o = quarry(dir.path(), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        status["stages"][0]["total"].as_i64().unwrap() >= 4,
        "good files and the JSON fallback: {status}"
    );
}

#[test]
fn bench_engine_reports_every_mode_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = model();
    let o = quarry(
        dir.path(),
        &[
            "bench",
            "engine",
            "--model",
            model.to_str().unwrap(),
            "--slots",
            "2",
            "--requests",
            "2",
            "--max-tokens",
            "4",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let modes: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["mode"].as_str().unwrap(), r["slots"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        modes,
        [
            ("sequential", 1),
            ("per_thread", 2),
            ("batched", 2),
            ("batched_prefix", 2)
        ]
    );
    for r in &rows {
        for field in [
            "prompt_tps",
            "gen_tps",
            "total_tps",
            "ttft_p50_ms",
            "peak_rss_mb",
        ] {
            assert!(r[field].as_f64().unwrap() > 0.0, "{field} in {r}");
        }
        assert!(r["prefix_tokens_saved"].is_u64(), "{r}");
    }
    // The default model is small: the engine serves each slot from a context of its own.
    assert_eq!(rows[2]["contexts"], 2, "{}", rows[2]);
}

#[test]
fn a_folder_of_the_users_is_refused_without_force_and_only_quarrys_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = research(dir.path());
    fake_backend(dir.path());
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let notes = dir.path().join("notes");
    std::fs::create_dir_all(notes.join("sources")).unwrap();
    std::fs::write(notes.join("mine.md"), "# My own note\n").unwrap();
    std::fs::write(notes.join("sources/mine-too.md"), "# Mine too\n").unwrap();
    for args in [
        &["render", "--output", "notes"][..],
        &["run", "--output", "notes", "--progress", "plain"],
    ] {
        let o = quarry(dir.path(), args);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains("notes") && msg.contains("--force"), "{msg}");
        assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
        assert!(!notes.join("index.md").exists(), "{args:?} wrote");
    }
    let o = quarry(
        dir.path(),
        &["run", "--output", "notes", "--force", "--progress", "plain"],
    );
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", text(&o));
    assert!(notes.join("index.md").exists(), "{}", text(&o));
    assert!(notes.join("sources/guard.rs.md").exists());
    assert!(notes.join(".quarry-manifest").exists());
    assert_eq!(
        std::fs::read_to_string(notes.join("mine.md")).unwrap(),
        "# My own note\n"
    );
    // The folder is quarry's now: no --force needed, a stale page goes, the user's file stays.
    std::fs::remove_file(folder.join("guard.rs")).unwrap();
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = quarry(dir.path(), &["render", "--output", "notes"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 removed"), "{}", text(&o));
    assert!(!notes.join("sources/guard.rs.md").exists());
    assert!(notes.join("mine.md").exists() && notes.join("sources/mine-too.md").exists());
}

#[test]
fn init_writes_the_page_templates_and_a_broken_one_stops_run_before_any_job() {
    let dir = tempfile::tempdir().unwrap();
    let o = quarry(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", text(&o));
    let source = dir.path().join("templates/source.md.tera");
    assert!(text(&o).contains("source.md.tera"), "{}", text(&o));
    assert!(std::fs::read_to_string(&source)
        .unwrap()
        .contains("Patterns found"));
    research(dir.path());
    fake_backend(dir.path());
    let o = quarry(dir.path(), &["enqueue", "research"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&source, "# {{ title }}\n{% for p in patterns %}\n").unwrap();
    let o = quarry(dir.path(), &["run", "--progress", "plain"]);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    assert!(msg.contains("templates/source.md.tera"), "{msg}");
    assert_eq!(msg.trim().lines().count(), 1, "one line: {msg}");
    assert!(!dir.path().join("output").exists(), "nothing ran: {msg}");
    // The user's template is used, the built-in ones for the other pages.
    std::fs::write(&source, "{{ title }}: {{ lines }} lines\n").unwrap();
    let o = quarry(dir.path(), &["run", "--progress", "plain"]);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", text(&o));
    let page = std::fs::read_to_string(dir.path().join("output/sources/guard.rs.md")).unwrap();
    assert!(
        page.starts_with("guard.rs: ") && page.ends_with(" lines\n"),
        "{page}"
    );
    let index = std::fs::read_to_string(dir.path().join("output/index.md")).unwrap();
    assert!(index.starts_with("# Knowledge base"), "{index}");
}

/// `quarry bench pipeline` runs the whole pipeline in a queue of its own and prints the bill
/// per stage against the corpus: as JSON, the figures add up.
#[test]
fn bench_pipeline_reports_the_bill_against_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    fake_backend(dir.path());
    let notes = research(dir.path());
    let keep = dir.path().join("bench");
    let out = quarry(
        dir.path(),
        &[
            "bench",
            "pipeline",
            notes.to_str().unwrap(),
            "--keep",
            keep.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json_start = stdout.rfind("\n{").map_or(0, |i| i + 1);
    let v: serde_json::Value = serde_json::from_str(&stdout[json_start..]).expect("JSON");
    let stages = v["stages"].as_array().unwrap();
    assert!(stages.iter().any(|s| s["stage"] == "extract"));
    assert!(
        !stages.iter().any(|s| s["stage"] == "validate"),
        "off by default"
    );
    let sum: i64 = stages
        .iter()
        .map(|s| s["computed_tokens"].as_i64().unwrap() + s["gen_tokens"].as_i64().unwrap())
        .sum();
    assert!(sum > 0);
    assert_eq!(v["computed_tokens"].as_i64().unwrap(), sum);
    assert!(v["corpus_tokens"].as_i64().unwrap() > 0);
    // The queue and the knowledge base were kept where asked; the user's folder untouched.
    assert!(keep.join("queue.db").exists() && keep.join("output/index.md").exists());
    assert!(!dir.path().join("queue.db").exists());
}
