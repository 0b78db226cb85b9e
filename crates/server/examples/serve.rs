//! A small stand-alone server for benchmarks and manual testing (the `gristmill serve`
//! subcommand is the real entry point).
//!
//! ```text
//! cargo run --release -p gristmill-server --example serve -- \
//!     [--addr 127.0.0.1:8080] [--spec FILE]... [--threads N] [--max-batch N] \
//!     [--body-limit BYTES] [--max-sessions N] [--max-snapshots N] [--idle-timeout-ms MS] \
//!     [--shutdown-grace-ms MS] [--max-connections N] [--header-timeout-ms MS] \
//!     [--body-timeout-ms MS] [--keep-alive-ms MS] [--write-timeout-ms MS] [--tokens FILE]
//! ```
//!
//! Without `--spec` it serves the crate's test environment (`tests/specs/serve.toml`, built
//! in). Without `--tokens` it reads tokens from `GRISTMILL_TOKENS` when that is set, and
//! otherwise serves without authentication. It prints `gristmill-server: listening on
//! http://ADDR` to stderr once bound, and exits 0 after SIGTERM or SIGINT once in-flight
//! requests have finished.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gristmill_server::{load_env_str, load_envs, serve_blocking, ServerConfig, Tokens};

const DEFAULT_SPEC: &str = include_str!("../tests/specs/serve.toml");

const USAGE: &str = "usage: serve [--addr ADDR] [--spec FILE]... [--threads N] [--max-batch N] \
    [--body-limit BYTES] [--max-sessions N] [--max-snapshots N] [--idle-timeout-ms MS] \
    [--shutdown-grace-ms MS] [--max-connections N] [--header-timeout-ms MS] [--body-timeout-ms MS] \
    [--keep-alive-ms MS] [--write-timeout-ms MS] [--tokens FILE]";

fn parse_args() -> Result<(ServerConfig, Vec<String>, Option<PathBuf>), String> {
    let mut config = ServerConfig::default();
    let mut specs = Vec::new();
    let mut tokens = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        let ms = |v: String| number(v).map(Duration::from_millis);
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                config.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--spec" => specs.push(value()?),
            "--tokens" => tokens = Some(PathBuf::from(value()?)),
            "--threads" => config.worker_threads = Some(number(value()?)? as usize),
            "--max-batch" => config.max_batch = number(value()?)? as usize,
            "--body-limit" => config.body_limit_bytes = number(value()?)? as usize,
            "--max-sessions" => config.max_sessions = number(value()?)? as usize,
            "--max-snapshots" => config.max_snapshots = number(value()?)? as usize,
            "--max-connections" => config.max_connections = number(value()?)? as usize,
            "--idle-timeout-ms" => config.session_idle_timeout = ms(value()?)?,
            "--shutdown-grace-ms" => config.shutdown_grace = ms(value()?)?,
            "--header-timeout-ms" => config.header_read_timeout = ms(value()?)?,
            "--body-timeout-ms" => config.body_read_timeout = ms(value()?)?,
            "--keep-alive-ms" => config.keep_alive_timeout = ms(value()?)?,
            "--write-timeout-ms" => config.write_timeout = ms(value()?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok((config, specs, tokens))
}

fn main() -> ExitCode {
    let (mut config, specs, tokens) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let auth = Tokens::from_file_or_env(tokens.as_deref());
    let envs = auth.and_then(|auth| {
        config.auth = auth;
        if specs.is_empty() {
            load_env_str(DEFAULT_SPEC, "tests/specs/serve.toml (built in)").map(|e| vec![e])
        } else {
            load_envs(&specs)
        }
    });
    match envs.and_then(|envs| serve_blocking(config, envs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gristmill-server: {e}");
            ExitCode::FAILURE
        }
    }
}
