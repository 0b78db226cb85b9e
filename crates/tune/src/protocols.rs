//! The withdrawal protocol and team training.

use gristmill_engine::{Coalition, Environment};
use gristmill_learn::model::{softmax, HINT_FEATURES};
use gristmill_learn::{TrainConfig, Trainer};
use gristmill_pieces::BuiltPiece;
use rayon::prelude::*;
use serde::Serialize;

use crate::tuner::{TuneError, Tuner};

/// The gold metric as the model meets it **with** piece `index` present. Pieces that only
/// shape rewards or sampling do not change what the model sees at evaluation, so this is
/// `M(θ)`; a hint shown with probability `p` gives `(1 − p)·M(θ) + p·M_hinted(θ)`, computed
/// exactly over the suite.
pub fn metric_with_piece(trainer: &Trainer, index: usize) -> Result<f64, TuneError> {
    let env = &trainer.env;
    let BuiltPiece::Hint(h) = &env.pieces[index].built else { return Ok(trainer.state.metric) };
    if !env.coalition.on[index] {
        return Ok(trainer.state.metric);
    }
    let model = &trainer.model;
    let base = model.input - HINT_FEATURES;
    let mut hinted = 0.0;
    for e in &trainer.suite {
        let mut x = e.clone();
        let gold_value = model.space.value(e.start + e.gold);
        x.x[base] = 1.0;
        x.x[base + 1 + (gold_value.unsigned_abs() % 10) as usize] = 1.0;
        hinted += softmax(&model.forward(&trainer.state.theta, &x).logits)[e.gold];
    }
    let hinted = hinted / trainer.suite.len().max(1) as f64;
    Ok((1.0 - h.probability) * trainer.state.metric + h.probability * hinted)
}

/// What withdrawing a piece did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithdrawReport {
    /// Piece id.
    pub piece: String,
    /// Steps trained with the piece.
    pub after: u64,
    /// Steps continued without it.
    pub continued: u64,
    /// `M` with the piece present, at the moment of removal.
    pub metric_with: f64,
    /// `M` right after removal (same parameters, piece gone).
    pub metric_at_removal: f64,
    /// `M` after continuing without the piece.
    pub metric_after: f64,
    /// `M` of the run that never had the piece, same seeds, same total steps.
    pub metric_never: f64,
    /// `metric_with − metric_at_removal`: what vanished the moment the piece left.
    pub drop: f64,
    /// `(metric_after − metric_never) / (metric_with − metric_never)`; `None` when the piece
    /// made no difference to withdraw (|denominator| < 1e-9).
    pub retention: Option<f64>,
    /// The piece's parameters at removal (trained pieces), e.g. `p = 0.03`.
    pub piece_at_removal: Option<String>,
}

/// Trains with piece `index` for `after` steps, removes it, continues `continued` steps, and
/// runs the never-had-it baseline on the same seeds; pieces in `train` learn as they go.
pub fn withdraw(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    index: usize,
    after: u64,
    continued: u64,
    train: &[usize],
) -> Result<WithdrawReport, TuneError> {
    let with = || -> Result<_, TuneError> {
        let mut t = Tuner::new(env.clone(), config.clone(), seed, train)?;
        for _ in 0..after {
            t.step()?;
        }
        let metric_with = metric_with_piece(&t.trainer, index)?;
        let described = t.pieces.iter().find(|p| p.index == index).map(|p| p.describe());
        t.withdraw(index);
        let metric_at_removal = metric_with_piece(&t.trainer, index)?;
        for _ in 0..continued {
            t.step()?;
        }
        Ok((metric_with, metric_at_removal, t.trainer.state.metric, described))
    };
    let never = || -> Result<f64, TuneError> {
        let mut on = env.coalition.on.clone();
        on[index] = false;
        let others: Vec<usize> = train.iter().copied().filter(|&i| i != index).collect();
        let mut t = Tuner::new(env.with_coalition(Coalition { on }), config.clone(), seed, &others)?;
        for _ in 0..after + continued {
            t.step()?;
        }
        Ok(t.trainer.state.metric)
    };
    let (a, b) = rayon::join(with, never);
    let (metric_with, metric_at_removal, metric_after, piece_at_removal) = a?;
    let metric_never = b?;
    let den = metric_with - metric_never;
    Ok(WithdrawReport {
        piece: env.pieces[index].id.clone(),
        after,
        continued,
        metric_with,
        metric_at_removal,
        metric_after,
        metric_never,
        drop: metric_with - metric_at_removal,
        retention: (den.abs() >= 1e-9).then(|| (metric_after - metric_never) / den),
        piece_at_removal,
    })
}

/// One configuration of a team study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamRun {
    /// Piece ids trained in this run (the rest keep their configured values).
    pub trained: Vec<String>,
    /// Final `M`.
    pub metric: f64,
    /// Gain over the untrained environment.
    pub gain: f64,
    /// Final parameters of the trained pieces, described.
    pub pieces: Vec<(String, String)>,
    /// Final parameters of the trained pieces.
    pub learned: Vec<(String, crate::tuner::Learnable)>,
}

/// A pair's interaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interaction {
    /// First piece.
    pub a: String,
    /// Second piece.
    pub b: String,
    /// Counterfactual interaction index `v(ab) − v(a) − v(b) + v(∅)` of trained pieces.
    pub interaction: f64,
    /// Cosine of the pieces' accumulated parameter steps in the joint run (in-run conflict
    /// when negative).
    pub alignment: Option<f64>,
}

/// Team training: untrained, each piece trained alone, every pair, and all together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamReport {
    /// `M_0`.
    pub metric_start: f64,
    /// The environment with no piece trained.
    pub untrained: TeamRun,
    /// Each trainable piece trained alone.
    pub singles: Vec<TeamRun>,
    /// All trainable pieces trained together.
    pub joint: TeamRun,
    /// Pairwise interactions.
    pub pairs: Vec<Interaction>,
    /// Whether joint training lost to the best single piece.
    pub interference: bool,
}

/// Runs the team study over the pieces at `trainable`, `steps` steps each, in parallel.
pub fn team(
    env: &Environment,
    config: &TrainConfig,
    seed: u64,
    steps: u64,
    trainable: &[usize],
) -> Result<TeamReport, TuneError> {
    let n = trainable.len();
    let mut sets: Vec<Vec<usize>> = vec![vec![]];
    sets.extend(trainable.iter().map(|&i| vec![i]));
    for a in 0..n {
        for b in a + 1..n {
            sets.push(vec![trainable[a], trainable[b]]);
        }
    }
    if n > 2 {
        sets.push(trainable.to_vec());
    }
    type Out =
        (f64, Vec<(String, String)>, Vec<Vec<f64>>, Vec<String>, Vec<(String, crate::tuner::Learnable)>);
    let results: Vec<Result<Out, TuneError>> = sets
        .par_iter()
        .map(|set| {
            let mut t = Tuner::new(env.clone(), config.clone(), seed, set)?;
            for _ in 0..steps {
                t.step()?;
            }
            let rows = t.trainer.channels.iter().map(|c| c.id.clone()).collect();
            let learned = t.pieces.iter().map(|p| (p.id.clone(), p.params.clone())).collect();
            Ok((
                t.trainer.state.metric,
                t.pieces.iter().map(|p| (p.id.clone(), p.describe())).collect(),
                t.gram,
                rows,
                learned,
            ))
        })
        .collect();
    let results: Vec<Out> = results.into_iter().collect::<Result<_, _>>()?;
    let metric_start = Trainer::new(env.clone(), config.clone(), seed)?.state.metric;
    let id = |i: usize| env.pieces[i].id.clone();
    let base = results[0].0;
    let run = |k: usize| TeamRun {
        trained: sets[k].iter().map(|&i| id(i)).collect(),
        metric: results[k].0,
        gain: results[k].0 - base,
        pieces: results[k].1.clone(),
        learned: results[k].4.clone(),
    };
    let singles: Vec<TeamRun> = (1..=n).map(run).collect();
    let joint_k = if n > 2 {
        sets.len() - 1
    } else if n == 2 {
        n + 1
    } else {
        n.min(1)
    };
    let joint = run(joint_k);
    let mut pairs = Vec::new();
    let mut k = n + 1;
    for a in 0..n {
        for b in a + 1..n {
            let v = |x: usize| results[x].0;
            let (gram, rows) = (&results[joint_k].2, &results[joint_k].3);
            let ra = rows.iter().position(|r| *r == id(trainable[a]));
            let rb = rows.iter().position(|r| *r == id(trainable[b]));
            let alignment = match (ra, rb) {
                (Some(i), Some(j)) => {
                    let d = (gram[i][i] * gram[j][j]).sqrt();
                    (d > 0.0).then(|| gram[i][j] / d)
                }
                _ => None,
            };
            pairs.push(Interaction {
                a: id(trainable[a]),
                b: id(trainable[b]),
                interaction: v(k) - v(1 + a) - v(1 + b) + v(0),
                alignment,
            });
            k += 1;
        }
    }
    let best_single = singles.iter().map(|s| s.metric).fold(f64::NEG_INFINITY, f64::max);
    Ok(TeamReport {
        metric_start,
        untrained: run(0),
        interference: n > 1 && joint.metric < best_single,
        singles,
        joint,
        pairs,
    })
}
