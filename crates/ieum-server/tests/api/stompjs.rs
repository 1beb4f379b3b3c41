//! Contract A end to end from the real `@stomp/stompjs` client under Node
//! (e2e/contract-a.mjs), against a server on each backend. scripts/test installs
//! e2e/node_modules (`npm ci`) before the suite runs.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::TestServer;
use ieum_test_support::{TestDb, both_backends};

fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

pub async fn run_script(db: TestDb, script: &'static str) {
    let server = TestServer::start(&db).await;
    run_node(&server, script, &[]).await;
    server.stop().await;
}

/// Runs `node e2e/SCRIPT BASE_URL ARGS...` against `server`; it must exit 0
/// and print "all checks passed".
pub async fn run_node(server: &TestServer, script: &'static str, args: &[String]) {
    run_node_with_env(server, script, args, &[]).await;
}

/// [`run_node`] with extra environment variables for the script.
pub async fn run_node_with_env(
    server: &TestServer,
    script: &'static str,
    args: &[String],
    env: &[(&str, String)],
) {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/@stomp/stompjs").exists(),
        "e2e/node_modules is missing: run `npm ci --prefix e2e` (scripts/test does it); this suite is never skipped"
    );
    let base = server.url("");
    let args = args.to_vec();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(base)
            .args(args)
            .envs(env)
            .current_dir(dir)
            .output()
            .expect("node must be installed to run the contract tests")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{script}: {stdout}");
}

async fn stompjs_speaks_contract_a(db: TestDb) {
    run_script(db, "contract-a.mjs").await;
}

async fn stompjs_speaks_contract_b(db: TestDb) {
    run_script(db, "contract-b.mjs").await;
}

async fn stompjs_speaks_contract_c(db: TestDb) {
    run_script(db, "contract-c.mjs").await;
}

/// Logout closes sockets, a couple unpairs and pairs again, "unread by N".
async fn stompjs_lives_through_logout_unpairing_and_reloads(db: TestDb) {
    run_script(db, "lifecycle.mjs").await;
}

both_backends!(
    stompjs_speaks_contract_a,
    stompjs_speaks_contract_b,
    stompjs_speaks_contract_c,
    stompjs_lives_through_logout_unpairing_and_reloads
);
