//! `gristmill withdraw` and `gristmill tune`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use comfy_table::Cell;
use gristmill_core::digest::Digest;
use gristmill_core::spec::ValidSpec;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_store::{NewRun, RunId, Store};
use gristmill_tune::{
    study, study_runs, team, transfer, withdraw, Artifact, HintSignal, TrainedOn, TuneError,
};
use serde_json::json;

use crate::commands::RunFlags;
use crate::output::{num, progress, table, write_json};

/// `gristmill withdraw`.
#[derive(Args, Debug)]
pub struct WithdrawArgs {
    /// Spec file with a trainable policy.
    pub spec: PathBuf,
    /// Id of the piece to withdraw.
    #[arg(long)]
    pub piece: String,
    /// Steps trained with the piece (default: half the spec's steps).
    #[arg(long)]
    pub after: Option<u64>,
    /// Steps continued without it (default: the other half).
    #[arg(long = "continue")]
    pub continue_steps: Option<u64>,
    /// What trains a hint marked `train = true`: the one-step lookahead on the hint-free
    /// metric, or the earlier first-order signal (for comparison).
    #[arg(long, value_enum, default_value_t = HintSignalArg::Lookahead)]
    pub hint_signal: HintSignalArg,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// `--hint-signal` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HintSignalArg {
    /// Paired hint-free lookahead (default).
    Lookahead,
    /// First-order, hinted vs unhinted samples of the step.
    FirstOrder,
}

impl From<HintSignalArg> for HintSignal {
    fn from(a: HintSignalArg) -> HintSignal {
        match a {
            HintSignalArg::Lookahead => HintSignal::Lookahead,
            HintSignalArg::FirstOrder => HintSignal::FirstOrder,
        }
    }
}

/// `gristmill tune`.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Spec file with a trainable policy and pieces marked `train = true`.
    pub spec: PathBuf,
    /// Write each jointly trained piece as an artifact file into this directory (artifacts
    /// are always kept in the run store).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Instead of the team study, run the benchmark study: trained pieces against the pieces
    /// as configured and against a grid search over static configurations given the same
    /// rollout budget, on every seed of `--seeds` (see docs/trainable-pieces.md).
    #[arg(long)]
    pub study: bool,
    /// Seeds of the study, comma-separated (default: the spec's seed and the next two).
    #[arg(long, value_delimiter = ',', requires = "study")]
    pub seeds: Vec<u64>,
    #[command(flatten)]
    pub flags: RunFlags,
}

/// `gristmill transfer`.
#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Artifact: a file written by `tune --export`, or a hash (or unique prefix) in the store.
    pub artifact: String,
    /// Target spec (e.g. one with a held-out task family, which a reward model, a channel
    /// weight or a hint accepts; a curriculum needs the sources it was trained over).
    #[arg(long)]
    pub to: PathBuf,
    #[command(flatten)]
    pub flags: RunFlags,
}

struct Prepared {
    env: Environment,
    config: TrainConfig,
    seed: u64,
    steps: u64,
    train: Vec<usize>,
    store: Store,
    run_id: RunId,
    pool: rayon::ThreadPool,
}

fn prepare(
    db: &Path,
    spec: &Path,
    kind: &str,
    flags: &RunFlags,
) -> anyhow::Result<Result<Prepared, ExitCode>> {
    let (valid, text): (ValidSpec, String) = match crate::commands::load_spec(spec, &flags.overrides()) {
        Ok(v) => v,
        Err(e) => return crate::commands::exit_for(e).map(Err),
    };
    let config = TrainConfig::of(&valid).ok_or_else(|| {
        anyhow!(
            "{kind} needs a trainable policy (`loglinear` or `mlp`); the spec's policy is `{}`",
            valid.policy_kind().name
        )
    })?;
    let (pool, n) = crate::commands::pool(flags.threads)?;
    let (seed, steps) = (valid.seed(), valid.spec().run.steps);
    let train: Vec<usize> =
        valid.spec().pieces.iter().enumerate().filter(|(_, p)| p.train).map(|(i, _)| i).collect();
    let mut store = Store::open(db)?;
    let mut new = NewRun::new(kind.into(), valid.hash(), seed, steps);
    new.threads = n as u32;
    let run_id = crate::commands::create_run(&mut store, &valid, &text, &new)?;
    let services = crate::verdicts::services(db, &valid)?;
    let env = pool.install(|| Environment::build_with(valid, &services))?;
    Ok(Ok(Prepared { env, config, seed, steps, train, store, run_id, pool }))
}

fn finish(
    p: &mut Prepared,
    name: &str,
    body: &serde_json::Value,
    json_path: Option<&Path>,
) -> anyhow::Result<()> {
    let mut body = body.clone();
    body["run_id"] = json!(p.run_id.0);
    body["seed"] = json!(p.seed);
    let digest = Digest::new().str(&body.to_string()).hex();
    p.store.put_result(p.run_id, name, &body)?;
    p.store.finish_run(p.run_id, &digest, &body)?;
    if let Some(path) = json_path {
        write_json(path, &body)?;
    }
    Ok(())
}

pub fn withdraw_cmd(db: &Path, args: WithdrawArgs) -> anyhow::Result<ExitCode> {
    let mut p = match prepare(db, &args.spec, "withdraw", &args.flags)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let Some(index) = p.env.piece_index(&args.piece) else {
        let known = p.env.pieces.iter().map(|x| x.id.as_str()).collect::<Vec<_>>().join(", ");
        let e = TuneError::UnknownPiece { id: args.piece.clone(), known };
        p.store.fail_run(p.run_id, &e.to_string())?;
        return Err(e.into());
    };
    let after = args.after.unwrap_or(p.steps / 2);
    let cont = args.continue_steps.unwrap_or(p.steps - p.steps / 2);
    let result =
        p.pool.install(|| withdraw(&p.env, &p.config, index, after, cont, &p.train, args.hint_signal.into()));
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            p.store.fail_run(p.run_id, &e.to_string())?;
            return Err(e.into());
        }
    };
    let mut t = table(&[
        "piece",
        "M with piece (at removal)",
        "M at removal",
        "drop",
        "M after withdrawal",
        "M kept to the end",
        "M never had it",
        "retention",
    ]);
    t.add_row(vec![
        Cell::new(&r.piece),
        num(Some(r.metric_with), 4),
        num(Some(r.metric_at_removal), 4),
        num(Some(r.drop), 4),
        num(Some(r.metric_after), 4),
        num(Some(r.metric_kept), 4),
        num(Some(r.metric_never), 4),
        num(r.retention, 3),
    ]);
    println!(
        "withdraw `{}` after {after} steps, continue {cont} steps; the kept and never-had-it runs \
         take {} steps on the same seeds",
        r.piece,
        after + cont
    );
    if let Some(d) = &r.piece_at_removal {
        println!("trained piece at removal: {d}");
    }
    println!("{t}");
    println!(
        "retention = (M after − M never) / (M kept − M never) = {:.4} / {:.4}",
        r.gain_retained, r.gain_kept_piece
    );
    if let Some(note) = &r.retention_note {
        println!("retention {note}");
    }
    finish(&mut p, "withdraw", &serde_json::to_value(&r)?, args.flags.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

pub fn tune_cmd(db: &Path, args: TuneArgs) -> anyhow::Result<ExitCode> {
    let mut p = match prepare(db, &args.spec, "tune", &args.flags)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if p.train.is_empty() {
        let e = anyhow!("no piece is marked `train = true` in {}; nothing to tune", args.spec.display());
        p.store.fail_run(p.run_id, &e.to_string())?;
        return Err(e);
    }
    if args.study {
        return study_cmd(p, &args);
    }
    let result = p.pool.install(|| team(&p.env, &p.config, p.steps, &p.train));
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            p.store.fail_run(p.run_id, &e.to_string())?;
            return Err(e.into());
        }
    };
    println!("M at start {:.4}; {} steps per run", r.metric_start, p.steps);
    let mut t = table(&["trained pieces", "final M", "gain vs untrained", "learned"]);
    let rows = std::iter::once(&r.untrained).chain(&r.singles).chain(std::iter::once(&r.joint));
    for run in rows {
        let name = if run.trained.is_empty() { "(none)".to_string() } else { run.trained.join(" + ") };
        let learned = run.pieces.iter().map(|(id, d)| format!("{id}: {d}")).collect::<Vec<_>>().join("\n");
        t.add_row(vec![
            Cell::new(name),
            num(Some(run.metric), 4),
            num(Some(run.gain), 4),
            Cell::new(learned),
        ]);
    }
    println!("{t}");
    if !r.pairs.is_empty() {
        let mut t = table(&["pair", "interaction v(ab)−v(a)−v(b)+v(∅)", "in-run alignment (cos)"]);
        for i in &r.pairs {
            t.add_row(vec![
                Cell::new(format!("{} × {}", i.a, i.b)),
                num(Some(i.interaction), 4),
                num(i.alignment, 3),
            ]);
        }
        println!("{t}");
    }
    if r.interference {
        println!(
            "INTERFERENCE: joint training ({:.4}) loses to the best single trained piece",
            r.joint.metric
        );
    } else {
        println!("no interference: joint training is at least as good as every single trained piece");
    }
    // The jointly trained pieces become versioned artifacts, each recording the piece's
    // configuration and the sources it was trained over, which `transfer` checks.
    let spec_hash = p.env.spec.hash().to_string();
    let mut artifacts = Vec::new();
    for (id, params) in &r.joint.learned {
        let Some(index) = p.env.piece_index(id) else { continue };
        let trained_on = TrainedOn {
            spec_hash: spec_hash.clone(),
            seed: p.seed,
            policy: p.config.arch_name(),
            steps: p.steps,
        };
        let a = Artifact::new(&p.env, index, params.clone(), trained_on);
        let hash = a.hash();
        let body = serde_json::to_value(&a)?;
        p.store.put_artifact(&hash, &a.piece_kind, id, &body, Some(p.run_id))?;
        if let Some(dir) = &args.export {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{id}-{}.json", &hash[..12]));
            write_json(&path, &body)?;
            println!("artifact {id}: {} → {}", &hash[..12], path.display());
        } else {
            println!("artifact {id}: {} (in the store)", &hash[..12]);
        }
        artifacts.push(json!({ "piece": id, "hash": hash }));
    }
    let mut body = serde_json::to_value(&r)?;
    body["artifacts"] = json!(artifacts);
    finish(&mut p, "tune", &body, args.flags.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn study_cmd(mut p: Prepared, args: &TuneArgs) -> anyhow::Result<ExitCode> {
    let seeds = if args.seeds.is_empty() {
        vec![p.seed, p.seed.wrapping_add(1), p.seed.wrapping_add(2)]
    } else {
        args.seeds.clone()
    };
    let pb = progress(study_runs(&p.env, seeds.len(), &p.train), "study runs");
    let result = p.pool.install(|| study(&p.env, &p.config, &seeds, p.steps, &p.train, &|| pb.inc(1)));
    pb.finish();
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            p.store.fail_run(p.run_id, &e.to_string())?;
            return Err(e.into());
        }
    };
    println!(
        "{}: pieces [{}], {} steps per run, seeds {:?}; grid of {} static configurations \
         (equal-compute search: {} steps each)",
        args.spec.display(),
        r.pieces.join(", "),
        r.steps,
        r.seeds,
        r.grid_size,
        r.grid_short_steps
    );
    let mut t = table(&[
        "arm",
        "mean final M",
        "gain vs untrained (mean ± sd)",
        "gain per seed",
        "rollout batches",
        "∇M evaluations",
    ]);
    let arms: Vec<_> = std::iter::once(&r.untrained)
        .chain(std::iter::once(&r.trained))
        .chain(&r.trained_alone)
        .chain([&r.grid_equal_compute, &r.grid_full])
        .collect();
    for a in &arms {
        let mean_m = a.metric.iter().sum::<f64>() / a.metric.len().max(1) as f64;
        t.add_row(vec![
            Cell::new(&a.name),
            num(Some(mean_m), 4),
            Cell::new(format!("{:+.4} ± {:.4}", a.mean_gain, a.sd_gain)),
            Cell::new(a.gain.iter().map(|g| format!("{g:+.4}")).collect::<Vec<_>>().join(" ")),
            num(Some(a.compute.rollout_batches as f64), 0),
            num(Some(a.compute.metric_gradients as f64), 0),
        ]);
    }
    println!("{t}");
    let mut t = table(&["arm", "seed", "configuration it ended with"]);
    for a in arms.iter().skip(1) {
        for (seed, c) in r.seeds.iter().zip(&a.configuration) {
            t.add_row(vec![Cell::new(&a.name), Cell::new(seed), Cell::new(c)]);
        }
    }
    println!("{t}");
    println!(
        "compute: one rollout batch = {} tasks × {} responses sampled and scored; the \
         equal-compute grid's winner is scored by its full-length run, which is not charged",
        p.env.spec.spec().run.tasks_per_step,
        p.env.spec.spec().run.responses_per_task
    );
    finish(&mut p, "study", &serde_json::to_value(&r)?, args.flags.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The artifact `given` names: a file, a stored hash, or a unique stored-hash prefix. Every
/// route goes through `Artifact::from_value`, so an old-format or malformed document is
/// refused with the reason, wherever it comes from.
fn load_artifact(store: &Store, given: &str) -> anyhow::Result<Artifact> {
    let read = |body: serde_json::Value| Artifact::from_value(body).map_err(|e| anyhow!("{given}: {e}"));
    let path = Path::new(given);
    if path.exists() {
        let text = std::fs::read_to_string(path)?;
        return Artifact::from_json(&text).map_err(|e| anyhow!("{given}: {e}"));
    }
    if let Some(rec) = store.artifact(given)? {
        return read(rec.body);
    }
    // Stored artifacts are listed by piece kind; a prefix may name any of them.
    let matches: Vec<_> = gristmill_pieces::kinds()
        .iter()
        .flat_map(|k| store.artifacts(k.name).unwrap_or_default())
        .filter(|a| a.hash.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => read(one.body.clone()),
        [] => Err(anyhow!("no artifact file or stored artifact `{given}`")),
        _ => Err(anyhow!("`{given}` matches {} stored artifacts; give more of the hash", matches.len())),
    }
}

pub fn transfer_cmd(db: &Path, args: TransferArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(db)?;
    let artifact = load_artifact(&store, &args.artifact)?;
    drop(store);
    let mut p = match prepare(db, &args.to, "transfer", &args.flags)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let target = args.to.display().to_string();
    let result = p.pool.install(|| transfer(&artifact, &p.env, &p.config, p.steps, &target));
    let cases = match result {
        Ok(c) => c,
        Err(e) => {
            p.store.fail_run(p.run_id, &e.to_string())?;
            return Err(e.into());
        }
    };
    println!(
        "artifact {} ({} `{}`, trained with {} on spec {}) applied to {target}",
        &artifact.hash()[..12],
        artifact.piece_kind,
        artifact.piece_id,
        artifact.trained_on.policy,
        // A hand-edited file may carry a short hash; never slice past its end.
        artifact.trained_on.spec_hash.chars().take(12).collect::<String>()
    );
    let mut t = table(&["setting", "policy", "seed", "M untrained piece", "M trained piece", "gain kept"]);
    for c in &cases {
        t.add_row(vec![
            Cell::new(&c.setting),
            Cell::new(&c.policy),
            Cell::new(c.seed),
            num(Some(c.metric_untrained), 4),
            num(Some(c.metric_trained), 4),
            num(Some(c.gain_kept), 4),
        ]);
    }
    println!("{t}");
    let body = json!({ "artifact": artifact.hash(), "piece": artifact.piece_id, "cases": cases });
    finish(&mut p, "transfer", &body, args.flags.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
