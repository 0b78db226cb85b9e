//! One function per subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use gristmill_core::spec::{Overrides, ValidSpec};
use gristmill_core::SpecError;
use gristmill_engine::{catalog, reference_policy, run_rollouts, Environment, RunOutcome};
use gristmill_learn::TrainConfig;
use gristmill_store::{NewRun, RunId, RunStatus, Store};
use serde_json::json;

use crate::output::{num, progress, table, write_json, Progress};

/// The flags of every command that runs a spec, declared once (`--db` is global).
#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Root seed (default: the spec's `run.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Steps (default: the spec's `run.steps`).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl RunFlags {
    /// The spec overrides these flags ask for (applied before validation).
    pub fn overrides(&self) -> Overrides {
        Overrides { seed: self.seed, steps: self.steps }
    }
}

/// `gristmill run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Spec file (TOML); without one, the built-in example (examples/learn.toml) runs.
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// `gristmill replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Run id to re-execute.
    pub run_id: RunId,
    /// Worker threads for the replay (may differ from the original).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A spec that failed to load: printed as a list of problems, exit code 2.
#[derive(Debug)]
struct InvalidSpec(SpecError);

impl std::fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for InvalidSpec {}

/// Reads, overrides and validates the spec at `path`; returns it with its text.
pub(crate) fn load_spec(path: &Path, overrides: &Overrides) -> anyhow::Result<(ValidSpec, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading spec {}", path.display()))?;
    let valid = gristmill_engine::load_spec_bytes(&bytes, &path.display().to_string(), overrides)
        .map_err(InvalidSpec)?;
    // A valid spec is UTF-8, so this copies the text unchanged.
    Ok((valid, String::from_utf8_lossy(&bytes).into_owned()))
}

/// A stored spec text, validated again with the run's seed and steps.
fn stored_spec(store: &Store, run: &gristmill_store::RunRecord) -> anyhow::Result<(ValidSpec, String)> {
    // The exact text the run ran, when recorded (runs from before texts were kept by digest
    // have their spec's first text).
    let text = match &run.spec_text {
        Some(digest) => store.spec_text(&run.spec_hash, digest)?.map(|t| t.text),
        None => store.spec(&run.spec_hash)?.map(|s| s.text),
    }
    .ok_or_else(|| anyhow!("spec {} of run {} is missing", run.spec_hash, run.id))?;
    let overrides = Overrides { seed: Some(run.seed), steps: Some(run.steps) };
    let valid = gristmill_engine::load_spec(&text, &format!("run {} spec", run.id), &overrides)
        .map_err(|e| anyhow!("{e}"))?;
    Ok((valid, text))
}

/// Stores the spec text and creates run `new` recording which text it ran; the new run's
/// lease is this process's.
pub(crate) fn create_run(
    store: &mut Store,
    valid: &ValidSpec,
    text: &str,
    new: &NewRun,
) -> anyhow::Result<RunId> {
    let digest = store.put_spec(valid.hash(), &valid.spec().name, text)?;
    Ok(store.create_run_with_spec_text(new, &digest)?)
}

pub(crate) fn exit_for(e: anyhow::Error) -> anyhow::Result<ExitCode> {
    if let Some(InvalidSpec(err)) = e.downcast_ref::<InvalidSpec>() {
        eprintln!("{err}");
        return Ok(ExitCode::from(2));
    }
    Err(e)
}

pub(crate) fn pool(threads: Option<usize>) -> anyhow::Result<(rayon::ThreadPool, usize)> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
    Ok((pool, n))
}

fn execute(
    valid: ValidSpec,
    threads: Option<usize>,
    show_progress: bool,
    services: &gristmill_engine::Services,
) -> anyhow::Result<(RunOutcome, usize)> {
    let (pool, n) = pool(threads)?;
    let seed = valid.spec().run.seed;
    let steps = valid.spec().run.steps;
    let policy = reference_policy(valid.policy_kind().name, valid.policy_params()).ok_or_else(|| {
        anyhow!("policy kind `{}` cannot roll out without training", valid.policy_kind().name)
    })?;
    let epsilon =
        if valid.policy_kind().name == "uniform" { 1.0 } else { valid.policy_params().float("error_rate") };
    let env = pool.install(|| Environment::build_with(valid, services))?;
    let pb = if show_progress { progress(steps, "rollouts") } else { Progress::hidden() };
    let outcome =
        pool.install(|| run_rollouts(&env, policy.as_ref(), seed, steps, epsilon, &|_| pb.inc(1)))?;
    pb.finish();
    Ok((outcome, n))
}

/// The built-in example environment, run when `gristmill run` is given no spec.
pub const DEFAULT_SPEC: &str = include_str!("../../../examples/learn.toml");

pub fn run(db: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    let overrides = args.flags.overrides();
    let loaded = match &args.spec {
        Some(path) => load_spec(path, &overrides),
        None => {
            gristmill_engine::load_spec(DEFAULT_SPEC, "built-in example (examples/learn.toml)", &overrides)
                .map(|v| (v, DEFAULT_SPEC.to_string()))
                .map_err(|e| InvalidSpec(e).into())
        }
    };
    let (valid, text) = match loaded {
        Ok(v) => v,
        Err(e) => return exit_for(e),
    };
    let flags = &args.flags;
    let mut store = Store::open(db)?;
    let (seed, steps) = (valid.seed(), valid.spec().run.steps);
    let config = json!({ "seed": seed, "steps": steps, "threads": flags.threads });
    let threads_used =
        flags.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let lm = gristmill_lm_run::LmConfig::of(&valid).transpose()?;
    let train = TrainConfig::of(&valid);
    let trains = train.is_some() || lm.is_some();
    let mut new = NewRun::new(if trains { "train".into() } else { "run".into() }, valid.hash(), seed, steps);
    new.threads = threads_used as u32;
    new.config = config;
    let run_id = create_run(&mut store, &valid, &text, &new)?;
    if let Some(config) = lm {
        return crate::lmtrain::train_lm_run(
            &mut store,
            run_id,
            valid,
            config,
            flags.threads,
            flags.json.as_deref(),
            false,
        );
    }
    if let Some(config) = train {
        return crate::train::train_run(
            &mut store,
            run_id,
            valid,
            config,
            flags.threads,
            flags.json.as_deref(),
            false,
        );
    }
    let spec_hash = valid.hash().to_string();
    let name = valid.spec().name.clone();
    let services = crate::verdicts::services(db, &valid)?;
    let outcome = match execute(valid, flags.threads, true, &services) {
        Ok((o, _)) => o,
        Err(e) => {
            store.fail_run(run_id, &format!("{e:#}"))?;
            return Err(e);
        }
    };
    for s in &outcome.steps {
        store.put_step_metrics(run_id, s.step, &s.values)?;
    }
    for p in &outcome.pieces {
        store.put_piece_summary(run_id, &p.id, &p.kind, &serde_json::to_value(p)?)?;
    }
    let summary = summary_json(run_id, &spec_hash, seed, &outcome);
    store.finish_run(run_id, &outcome.digest, &summary)?;

    println!(
        "run {run_id}: {name} (spec {}), seed {seed}, {steps} steps, {} samples",
        &spec_hash[..12],
        outcome.samples
    );
    print_outcome(&outcome);
    println!("digest {}", outcome.digest);
    if let Some(path) = &flags.json {
        write_json(path, &summary)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn summary_json(run_id: RunId, spec_hash: &str, seed: u64, o: &RunOutcome) -> serde_json::Value {
    let pieces: serde_json::Map<String, serde_json::Value> = o
        .pieces
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                json!({ "kind": p.kind, "weight": p.weight, "mean_reward": p.mean_reward, "agreement": p.agreement }),
            )
        })
        .collect();
    json!({
        "run_id": run_id.0,
        "spec_hash": spec_hash,
        "seed": seed,
        "digest": o.digest,
        "samples": o.samples,
        "gold_mean": o.gold_mean,
        "pieces": pieces,
        "episodes": o.episodes,
        "data": o.data,
    })
}

fn print_outcome(o: &RunOutcome) {
    let mut t = table(&["piece", "kind", "weight", "mean reward", "agreement with gold"]);
    for p in &o.pieces {
        t.add_row(vec![
            comfy_table::Cell::new(&p.id),
            comfy_table::Cell::new(&p.kind),
            num(Some(p.weight), 2),
            num(p.mean_reward, 4),
            num(p.agreement, 4),
        ]);
    }
    t.add_row(vec![
        comfy_table::Cell::new("(gold)"),
        comfy_table::Cell::new("exact match"),
        num(None, 2),
        num(Some(o.gold_mean), 4),
        num(Some(1.0), 4),
    ]);
    println!("{t}");
    if !o.episodes.is_empty() {
        let mut t = table(&["episode source", "forks", "env steps", "mean return"]);
        for e in &o.episodes {
            t.add_row(vec![
                comfy_table::Cell::new(&e.id),
                num(Some(e.forks as f64), 0),
                num(Some(e.steps as f64), 0),
                num(Some(e.mean_return), 4),
            ]);
        }
        println!("{t}");
    }
}

/// `gristmill resume RUN_ID`.
pub fn resume(
    db: &Path,
    run_id: RunId,
    threads: Option<usize>,
    json_path: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut store = Store::open(db)?;
    let run = store.run(run_id)?;
    let (valid, _) = stored_spec(&store, &run)?;
    let lm = gristmill_lm_run::LmConfig::of(&valid).transpose()?;
    let config = TrainConfig::of(&valid);
    if config.is_none() && lm.is_none() {
        bail!("run {run_id} does not train (policy `{}`); nothing to resume", valid.policy_kind().name)
    }
    match run.status {
        RunStatus::Finished => {
            println!("run {run_id} already finished (digest {})", run.digest.unwrap_or_default());
            // Its report is the stored summary; a requested --json still gets it.
            if let (Some(path), Some(summary)) = (json_path, &run.summary) {
                write_json(path, &crate::train::stored_report(&store, run_id, summary)?)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        RunStatus::Failed => {
            bail!(
                "run {run_id} failed ({}); resuming would fail again at the same step",
                run.error.unwrap_or_default()
            )
        }
        RunStatus::Running | RunStatus::Stopped => {}
    }
    match (config, lm) {
        (_, Some(lm)) => {
            crate::lmtrain::train_lm_run(&mut store, run_id, valid, lm, threads, json_path, true)
        }
        (Some(config), None) => {
            crate::train::train_run(&mut store, run_id, valid, config, threads, json_path, true)
        }
        (None, None) => {
            bail!("run {run_id} does not train (policy `{}`); nothing to resume", valid.policy_kind().name)
        }
    }
}

pub fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    match load_spec(path, &Overrides::default()) {
        Ok((valid, _)) => {
            println!(
                "{}: ok ({} sources, {} pieces, {} episode sources; spec hash {})",
                path.display(),
                valid.spec().sources.len(),
                valid.spec().pieces.len(),
                valid.spec().episodes.len(),
                &valid.hash()[..12]
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => exit_for(e),
    }
}

pub fn tasks() -> anyhow::Result<ExitCode> {
    let c = catalog();
    let mut t = table(&["family", "turns", "knobs", "answer space (defaults)", "answer format"]);
    for f in c.families {
        let knobs = f.knobs.iter().map(|k| format!("{}: {}", k.name, k.describe_range())).collect::<Vec<_>>();
        let src = (f.build)(&gristmill_core::params::Params::defaults(f.knobs));
        let a = src.answers();
        t.add_row(vec![
            f.name.to_string(),
            "1".into(),
            knobs.join("\n"),
            format!("{}..={} ({} answers)", a.lo, a.hi(), a.size),
            f.answer_format.to_string(),
        ]);
    }
    for f in c.episodes {
        let knobs = f.knobs.iter().map(|k| format!("{}: {}", k.name, k.describe_range())).collect::<Vec<_>>();
        t.add_row(vec![
            f.name.to_string(),
            "multi".into(),
            knobs.join("\n"),
            "-".into(),
            f.action_format.to_string(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub fn pieces() -> anyhow::Result<ExitCode> {
    let c = catalog();
    let mut t = table(&["kind", "does", "params"]);
    for k in c.pieces {
        let params =
            k.params.iter().map(|p| format!("{}: {}", p.name, p.describe_range())).collect::<Vec<_>>();
        t.add_row(vec![k.name.to_string(), k.kind.to_string(), params.join("\n")]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub fn policies() -> anyhow::Result<ExitCode> {
    let c = catalog();
    let mut t = table(&["kind", "trains", "does", "params (range, default)"]);
    for k in c.policies {
        let params = k
            .params
            .iter()
            .map(|p| format!("{}: {} — {}", p.name, p.describe_range(), p.doc))
            .collect::<Vec<_>>();
        let trains = if k.trainable { "yes" } else { "no" };
        t.add_row(vec![k.name.to_string(), trains.to_string(), k.doc.to_string(), params.join("\n")]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub fn replay(db: &Path, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(db)?;
    let run = store.run(args.run_id)?;
    let digest =
        run.digest.clone().ok_or_else(|| anyhow!("run {} has no digest (status {})", run.id, run.status))?;
    let (valid, text) = stored_spec(&store, &run)?;
    // Judges replay from the verdicts the run stored: nothing is asked again.
    let services = crate::verdicts::services(db, &valid)?;
    let mut data_changes = Vec::new();
    let lm = gristmill_lm_run::LmConfig::of(&valid).transpose()?;
    let (recomputed_digest, recomputed_metrics, n) = if let Some(lm) = lm {
        crate::lmtrain::replay_lm(valid, &text, lm, run.seed, run.steps, args.threads, &services)?
    } else if let Some(config) = TrainConfig::of(&valid) {
        // Re-train into a scratch in-memory store, then compare with what was stored.
        let (pool, n) = pool(args.threads)?;
        let mut scratch = Store::open_in_memory()?;
        scratch.put_spec(valid.hash(), &valid.spec().name, &text)?;
        let id = scratch.create_run(&NewRun::new(
            "train".into(),
            valid.hash().to_string(),
            run.seed,
            run.steps,
        ))?;
        let digest = pool
            .install(|| crate::train::train_into(&mut scratch, id, valid, config, None, true, &services))?
            .digest();
        let metrics = scratch.step_metrics(id)?.into_iter().map(|m| (m.step, m.name, m.value)).collect();
        (digest, metrics, n)
    } else {
        let (outcome, n) = execute(valid, args.threads, true, &services)?;
        // A dataset edited since the run: say which, before the numbers that follow from it.
        let recorded: Vec<gristmill_engine::DataDigest> = run
            .summary
            .as_ref()
            .and_then(|s| s.get("data"))
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_default();
        for now in &outcome.data {
            match recorded.iter().find(|r| r.source == now.source) {
                Some(r) if r.blake3 != now.blake3 => data_changes.push(format!(
                    "data of source `{}` changed since the run: recorded blake3 {}, now {}",
                    now.source, r.blake3, now.blake3
                )),
                _ => {}
            }
        }
        let metrics = outcome
            .steps
            .iter()
            .flat_map(|s| s.values.iter().map(move |(k, v)| (s.step, k.clone(), *v)))
            .collect::<Vec<_>>();
        (outcome.digest, metrics, n)
    };
    let stored = store.step_metrics(run.id)?;
    let mut differences = data_changes;
    if stored.len() != recomputed_metrics.len() {
        differences.push(format!("{} stored metrics, {} recomputed", stored.len(), recomputed_metrics.len()));
    }
    let mut stored_sorted: Vec<(u64, String, f64)> =
        stored.iter().map(|m| (m.step, m.name.clone(), m.value)).collect();
    stored_sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut re_sorted = recomputed_metrics;
    re_sorted.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (a, b) in stored_sorted.iter().zip(&re_sorted) {
        if a.0 != b.0 || a.1 != b.1 || a.2.to_bits() != b.2.to_bits() {
            differences
                .push(format!("step {} {}: stored {} ≠ replayed {} ({} {})", a.0, a.1, a.2, b.2, b.0, b.1));
        }
    }
    if recomputed_digest != digest {
        differences.push(format!("digest: stored {digest} ≠ replayed {recomputed_digest}"));
    }
    println!("replayed run {} with {n} threads: {} metrics compared", run.id, re_sorted.len());
    if differences.is_empty() {
        println!("identical: digest {digest}");
        Ok(ExitCode::SUCCESS)
    } else {
        for d in differences.iter().take(20) {
            println!("DIFFERENT {d}");
        }
        println!("{} differences", differences.len());
        Ok(ExitCode::from(1))
    }
}

pub fn runs(db: &Path, limit: u32) -> anyhow::Result<ExitCode> {
    let store = Store::open(db)?;
    let mut t = table(&["id", "kind", "status", "seed", "steps", "digest"]);
    for r in store.list_runs(limit as usize)? {
        t.add_row(vec![
            r.id.to_string(),
            r.kind.to_string(),
            r.status.to_string(),
            r.seed.to_string(),
            format!("{}/{}", r.steps_done, r.steps),
            r.digest.as_deref().map(|d| d[..16.min(d.len())].to_string()).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// `gristmill serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Spec files to serve (repeatable); without one, the built-in example is served.
    #[arg(long = "spec")]
    pub specs: Vec<PathBuf>,
    /// Largest request batch (tasks per sample, items per score, forks per fork).
    #[arg(long, default_value_t = 1024)]
    pub max_batch: usize,
    /// Most live episode sessions.
    #[arg(long, default_value_t = 10_000)]
    pub max_sessions: usize,
    /// Seconds before an idle session expires.
    #[arg(long, default_value_t = 300)]
    pub session_idle_secs: u64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Most open connections; at the limit the one waiting longest on its client is closed.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request head.
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// Seconds a client may take to send a request body (then 408).
    #[arg(long, default_value_t = 30.0)]
    pub body_timeout_secs: f64,
    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, default_value_t = 60.0)]
    pub keep_alive_secs: f64,
    /// Seconds a response write may make no progress.
    #[arg(long, default_value_t = 30.0)]
    pub write_timeout_secs: f64,
    /// Bearer tokens, one `<role> <token>` per line (roles `train`, `eval`); without it,
    /// GRISTMILL_TOKENS is read if set, else there is no authentication.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
}

/// `gristmill serve`.
pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let secs = |what: &str, s: f64| {
        std::time::Duration::try_from_secs_f64(s).map_err(|e| anyhow!("--{what} {s}: {e}"))
    };
    let config = gristmill_server::ServerConfig {
        addr: args.addr,
        max_batch: args.max_batch,
        max_sessions: args.max_sessions,
        session_idle_timeout: std::time::Duration::from_secs(args.session_idle_secs),
        body_limit_bytes: args.body_limit,
        max_connections: args.max_connections,
        header_read_timeout: secs("header-timeout-secs", args.header_timeout_secs)?,
        body_read_timeout: secs("body-timeout-secs", args.body_timeout_secs)?,
        keep_alive_timeout: secs("keep-alive-secs", args.keep_alive_secs)?,
        write_timeout: secs("write-timeout-secs", args.write_timeout_secs)?,
        auth: gristmill_server::Tokens::from_file_or_env(args.tokens.as_deref())?,
        ..Default::default()
    };
    let envs = if args.specs.is_empty() {
        vec![gristmill_server::load_env_str(DEFAULT_SPEC, "built-in example (examples/learn.toml)")?]
    } else {
        gristmill_server::load_envs(&args.specs)?
    };
    gristmill_server::serve_blocking(config, envs)?;
    Ok(ExitCode::SUCCESS)
}
