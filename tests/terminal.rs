//! What a person sees: the real binary inside tmux, read with capture-pane.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(sock: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-L")
        .arg(sock)
        .args(args)
        .output()
        .expect("tmux is installed by `make setup`");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screen(sock: &str) -> String {
    tmux(sock, &["capture-pane", "-p", "-t", "t"])
}

/// A project with the fake backend (each reply takes a while) and 24 small files.
fn project(dir: &Path, delay: [u64; 2]) {
    let reply = r#"{"findings": [{"name": "Guard values", "category": "idiom", "summary": "Release in Drop.", "evidence": "A guard releases its resource when dropped."}]}"#;
    std::fs::write(
        dir.join("quarry.toml"),
        format!(
            "[backend]\nkind = \"fake\"\nfake_reply = '{reply}'\nfake_delay_ms = [{}, {}]\n",
            delay[0], delay[1]
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    // The scripted reply suits the extractor only: the other roles are switched off.
    for role in ["validator", "writer", "synthesizer"] {
        std::fs::write(
            dir.join(format!("agents/{role}.toml")),
            format!("name = \"{role}\"\nenabled = false\n"),
        )
        .unwrap();
    }
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    for i in 0..24 {
        std::fs::write(
            notes.join(format!("n{i:02}.md")),
            format!("# Guard values\n\nA guard releases its resource when dropped.\n\nSeen in file {i}, in `Drop::drop`.\n"),
        )
        .unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_quarry");
    let out = Command::new(bin)
        .current_dir(dir)
        .args(["enqueue", "notes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(sock: &str, dir: &Path) {
    start_sized(sock, dir, 90, 24)
}

fn start_sized(sock: &str, dir: &Path, columns: u16, rows: u16) {
    let bin = env!("CARGO_BIN_EXE_quarry");
    let cmd = format!(
        "cd {} && {bin} run --workers 3 --progress live; echo EXIT=$?; exec sh",
        dir.display()
    );
    let (x, y) = (columns.to_string(), rows.to_string());
    tmux(
        sock,
        &["new-session", "-d", "-x", &x, "-y", &y, "-s", "t", &cmd],
    );
}

struct Server(String);
impl Drop for Server {
    fn drop(&mut self) {
        tmux(&self.0, &["kill-server"]);
    }
}

#[test]
fn the_live_view_shows_stages_workers_eta_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [200, 600]);
    let sock = format!("quarry-view-{}", std::process::id());
    let _server = Server(sock.clone());
    start(&sock, dir.path());
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut screens = Vec::new();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let s = screen(&sock);
        let finished = s.contains("EXIT=");
        screens.push(s);
        if finished || Instant::now() > deadline {
            break;
        }
    }
    let last = screens.last().unwrap();
    assert!(last.contains("EXIT=0"), "{last}");
    assert!(
        last.contains("finished in") && last.contains("knowledge base: output/index.md"),
        "{last}"
    );
    let live: Vec<&String> = screens
        .iter()
        .filter(|s| s.contains("w0 ") && s.contains("extract"))
        .collect();
    assert!(live.len() >= 2, "the live view was seen: {screens:#?}");
    assert!(
        live.iter()
            .any(|s| s.contains("extract") && s.contains("[#")),
        "a progress bar: {live:#?}"
    );
    let worker_lines: Vec<String> = live
        .iter()
        .map(|s| {
            s.lines()
                .filter(|l| l.trim_start().starts_with("w0") || l.trim_start().starts_with("w1"))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    assert!(
        worker_lines.windows(2).any(|w| w[0] != w[1]),
        "worker lines change: {worker_lines:#?}"
    );
    assert!(
        live.iter().any(|s| s.lines().any(|l| l.contains("ETA ")
            && l.split("ETA ")
                .nth(1)
                .is_some_and(|e| e.starts_with(|c: char| c.is_ascii_digit())))),
        "a finite ETA: {live:#?}"
    );
    for s in &screens {
        assert!(
            s.lines().all(|l| l.chars().count() <= 90),
            "fits the window: {s}"
        );
    }
}

#[test]
fn ctrl_c_drains_and_leaves_a_usable_terminal() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [1500, 2500]);
    let sock = format!("quarry-ctrlc-{}", std::process::id());
    let _server = Server(sock.clone());
    start(&sock, dir.path());
    std::thread::sleep(Duration::from_secs(3));
    tmux(&sock, &["send-keys", "-t", "t", "C-c"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_draining = false;
    let mut s = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        s = screen(&sock);
        seen_draining |= s.contains("draining");
        if s.contains("EXIT=") {
            break;
        }
    }
    assert!(seen_draining, "says it is draining: {s}");
    assert!(s.contains("EXIT=130") || s.contains("EXIT=0"), "{s}");
    tmux(
        &sock,
        &["send-keys", "-t", "t", "echo still-$((40+2))", "Enter"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let after = screen(&sock);
    assert!(after.contains("still-42"), "the shell answers: {after}");
    // The run resumes where it stopped.
    let out = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .current_dir(dir.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let extract = &status["stages"][0];
    assert_eq!(
        extract["running"], 0,
        "nothing left leased after the drain: {status}"
    );
}

#[test]
fn the_live_view_asks_the_terminal_its_size_and_fits_a_narrow_one() {
    // No $COLUMNS in the environment (shells rarely export it): the view must ask the
    // terminal, or it draws 80 columns into a 56-column window, which wraps.
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), [100, 300]);
    let sock = format!("quarry-narrow-{}", std::process::id());
    let _server = Server(sock.clone());
    start_sized(&sock, dir.path(), 56, 20);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut live = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        // -J joins wrapped lines: a line drawn too wide shows as one long line.
        let s = tmux(&sock, &["capture-pane", "-p", "-J", "-t", "t"]);
        // The live view's screens (the summary after it is plain text that may wrap).
        if s.contains("w0 ") && !s.contains("finished in") {
            live += 1;
            for l in s
                .lines()
                .filter(|l| !l.contains(env!("CARGO_BIN_EXE_quarry")))
            {
                assert!(l.chars().count() <= 56, "wider than the window: {l:?}\n{s}");
            }
        }
        if s.contains("EXIT=") || Instant::now() > deadline {
            assert!(s.contains("EXIT=0"), "{s}");
            break;
        }
    }
    assert!(live >= 1, "the live view was seen");
}
