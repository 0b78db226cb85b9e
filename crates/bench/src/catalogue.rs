//! The credit catalogue: in-run credit against exact Shapley on many specs and seeds.
//!
//! For every spec and seed it trains the in-run run (one run, credit per piece) and all
//! `2ⁿ` coalitions on the same seed (exact Shapley, and leave-one-out from the same
//! values), then checks, per piece, whether the in-run credit has the sign of the Shapley
//! value when that value is above the spec's noise floor (the largest `|Shapley|` of the
//! `random_reward` control over the seeds), and whether, on seeds where every piece's
//! Shapley value has one sign, no piece's `|in-run credit|` exceeds `2·|ΔM|`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use gristmill_core::spec::Overrides;
use gristmill_engine::Environment;
use gristmill_learn::TrainConfig;
use gristmill_measure::{kendall_tau, DEFAULT_NODES};
use gristmill_run::coalition::shapley;
use gristmill_run::Run;
use serde::Serialize;

/// One piece on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct PieceResult {
    /// Piece id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// In-run credit.
    pub inrun: f64,
    /// Exact Shapley value.
    pub shapley: f64,
    /// Leave-one-out.
    pub loo: f64,
}

/// One spec on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct SeedResult {
    /// Root seed.
    pub seed: u64,
    /// `M_T − M_0` of the full run.
    pub delta_metric: f64,
    /// In-run residual.
    pub residual: f64,
    /// `Σ|in-run| / |ΔM|`.
    pub conflict_index: Option<f64>,
    /// Kendall τ between in-run credit and Shapley over the pieces.
    pub tau: Option<f64>,
    /// Per piece.
    pub pieces: Vec<PieceResult>,
}

/// One spec over its seeds, with the checks.
#[derive(Debug, Clone, Serialize)]
pub struct SpecResult {
    /// Spec name.
    pub name: String,
    /// Spec file.
    pub path: String,
    /// Optimizer and σ, for the table.
    pub setting: String,
    /// The noise floor: max over seeds of |Shapley(control)| (or the catalogue's).
    pub noise_floor: f64,
    /// Seeds.
    pub seeds: Vec<SeedResult>,
    /// (piece, seed) pairs above the floor whose signs agree / are checked.
    pub signs_agree: (usize, usize),
    /// The disagreements: (piece, seed, in-run, Shapley).
    pub sign_disagreements: Vec<(String, u64, f64, f64)>,
    /// Seeds where all Shapley values share one sign, and of those the seeds where
    /// some |in-run| exceeds 2|ΔM|.
    pub same_sign_seeds: usize,
    /// Seeds breaking the 2|ΔM| bound among the same-sign seeds.
    pub bound_breaks: Vec<u64>,
}

fn build(path: &Path, seed: u64) -> anyhow::Result<(Environment, TrainConfig)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let env = gristmill_engine::load(
        &text,
        &path.display().to_string(),
        &Overrides { seed: Some(seed), steps: None },
    )?;
    let config = TrainConfig::of(&env.spec)
        .ok_or_else(|| anyhow!("{}: the catalogue needs a trainable policy", path.display()))?;
    Ok((env, config))
}

/// Runs one spec on `seeds`.
pub fn run_spec(path: &Path, seeds: &[u64]) -> anyhow::Result<SpecResult> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut setting = String::new();
    for &seed in seeds {
        let (env, config) = build(path, seed)?;
        name = env.spec.spec().name.clone();
        setting = format!(
            "{}, {}",
            config.arch_name(),
            match config.normalization {
                gristmill_learn::Normalization::Shared => "shared σ",
                gristmill_learn::Normalization::PerChannel => "per-channel σ",
                gristmill_learn::Normalization::None => "no σ",
            }
        );
        let steps = env.spec.spec().run.steps;
        let mut credited = config.clone();
        credited.credit_nodes = DEFAULT_NODES;
        let mut run = Run::with_config(env.clone(), credited)?;
        run.advance(steps)?;
        let credit = run.ledger().expect("credit is on");
        let (phi, values) = shapley(&env, &config, steps)?;
        let n = env.pieces.len();
        let full = (1u64 << n) - 1;
        let pieces: Vec<PieceResult> = env
            .pieces
            .iter()
            .enumerate()
            .map(|(i, p)| PieceResult {
                id: p.id.clone(),
                kind: p.kind_name.to_string(),
                inrun: credit.row(&p.id).unwrap_or(0.0),
                shapley: phi[i],
                loo: values[&full] - values[&(full & !(1 << i))],
            })
            .collect();
        let (a, b): (Vec<f64>, Vec<f64>) = pieces.iter().map(|p| (p.inrun, p.shapley)).unzip();
        out.push(SeedResult {
            seed,
            delta_metric: credit.delta_metric(),
            residual: credit.residual(),
            conflict_index: credit.conflict_index(),
            tau: kendall_tau(&a, &b),
            pieces,
        });
    }
    let floor = out
        .iter()
        .flat_map(|s| s.pieces.iter().filter(|p| p.kind == "random_reward").map(|p| p.shapley.abs()))
        .fold(f64::NAN, f64::max);
    Ok(summarize(name, path, setting, floor, out))
}

/// The checks of one spec, with noise floor `floor` (NaN: the spec has no control).
pub fn summarize(
    name: String,
    path: &Path,
    setting: String,
    floor: f64,
    seeds: Vec<SeedResult>,
) -> SpecResult {
    let mut agree = (0, 0);
    let mut disagreements = Vec::new();
    let (mut same_sign, mut breaks) = (0, Vec::new());
    for s in &seeds {
        for p in s.pieces.iter().filter(|p| p.kind != "random_reward") {
            if p.shapley.abs() > floor {
                agree.1 += 1;
                if p.inrun.signum() == p.shapley.signum() {
                    agree.0 += 1;
                } else {
                    disagreements.push((p.id.clone(), s.seed, p.inrun, p.shapley));
                }
            }
        }
        let checked: Vec<&PieceResult> = s.pieces.iter().filter(|p| p.kind != "random_reward").collect();
        let one_sign = checked.iter().all(|p| p.shapley >= 0.0) || checked.iter().all(|p| p.shapley <= 0.0);
        if one_sign {
            same_sign += 1;
            if s.pieces.iter().any(|p| p.inrun.abs() > 2.0 * s.delta_metric.abs()) {
                breaks.push(s.seed);
            }
        }
    }
    SpecResult {
        name,
        path: path.display().to_string(),
        setting,
        noise_floor: floor,
        seeds,
        signs_agree: agree,
        sign_disagreements: disagreements,
        same_sign_seeds: same_sign,
        bound_breaks: breaks,
    }
}

/// The default catalogue: `examples/catalogue/*.toml` and the README example.
pub fn default_specs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("examples/catalogue");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v.push(root.join("examples/learn.toml"));
    Ok(v)
}
