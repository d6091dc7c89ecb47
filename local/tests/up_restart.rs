//! `make up` (scripts/up.sh) starts, stops cleanly on TERM, and starts again,
//! even when a pid file from an earlier run names a process that is gone:
//! "running" is decided by a health probe on the port, never by the pid file.
//! It starts its own emulator on a free port, so it runs with or without the
//! one `make test` started.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn answers(url: &str) -> bool {
    Command::new("curl").args(["-fsS", "-m", "2", "-o", "/dev/null", url]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    done()
}

fn up(emulator_port: u16, http_port: u16, state: &std::path::Path) -> Child {
    Command::new(root().join("scripts/up.sh"))
        .current_dir(root())
        .env("TRIALWATCH_EMULATOR_PORT", emulator_port.to_string())
        .env("TRIALWATCH_HTTP_PORT", http_port.to_string())
        .env("TRIALWATCH_STATE_DIR", state)
        .env("TRIALWATCH_STORE", "emulator")
        .env("TRIALWATCH_LOCAL_BIN", env!("CARGO_BIN_EXE_trialwatch-local"))
        .env_remove("AWS_ENDPOINT_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("scripts/up.sh starts")
}

#[test]
fn up_comes_up_stops_on_term_and_comes_up_again_despite_a_stale_pid_file() {
    // GIVEN free ports and a pid file for the emulator's port naming a process that no longer exists
    let (emulator_port, http_port) = (free_port(), free_port());
    let state = std::env::temp_dir().join(format!("tw-up-restart-{}-{emulator_port}", std::process::id()));
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(format!("emulator-{emulator_port}.pid")), "999999999\n").unwrap();
    let health = format!("http://127.0.0.1:{http_port}/health");

    for round in 1..=2 {
        // WHEN `make up` starts
        let mut child = up(emulator_port, http_port, &state);
        // THEN the stack answers its health probe (moto's first start is slow on a busy machine)
        let came_up = wait_until(Duration::from_secs(240), || answers(&health) || child.try_wait().ok().flatten().is_some());
        assert!(came_up && answers(&health), "round {round}: the stack did not come up on {health}");

        // WHEN it is sent TERM
        let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(term.success());
        // THEN it exits, and neither the runner nor the emulator it started is left behind
        assert!(wait_until(Duration::from_secs(60), || child.try_wait().ok().flatten().is_some()), "round {round}: up.sh ignored TERM");
        assert!(!listening(http_port), "round {round}: the runner still listens on {http_port}");
        assert!(
            wait_until(Duration::from_secs(10), || !listening(emulator_port)),
            "round {round}: the emulator still listens on {emulator_port}"
        );
    }
    let _ = std::fs::remove_dir_all(&state);
}
