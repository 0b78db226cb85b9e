//! What the model tests share: running one test of this binary again in a child process
//! with other thread counts (or kernels), and reading back the digest it prints.

/// Runs test `test` of the current test binary alone in a child process with `child_var`
/// set (so the child computes instead of spawning) and the extra environment `envs`, and
/// returns the digest the child printed on a `DIGEST <hex>` line.
pub fn child_digest(test: &str, child_var: &str, envs: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(child_var, "1")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines()
        .find_map(|l| l.split_once("DIGEST ").map(|(_, d)| d.trim().to_string()))
        .expect("no digest printed")
}
