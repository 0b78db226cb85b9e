//! The withdrawal protocol and team training.

use gristmill_engine::{Coalition, Environment};
use gristmill_learn::model::{softmax, HINT_FEATURES};
use gristmill_learn::{TrainConfig, Trainer};
use gristmill_pieces::BuiltPiece;
use rayon::prelude::*;
use serde::Serialize;

use crate::tuner::{HintSignal, TuneError, Tuner};

/// The gold metric as the model meets it **with** piece `index` present. Pieces that only
/// shape rewards or sampling do not change what the model sees at evaluation, so this is
/// `M(θ)`; a hint shown with probability `p` gives `(1 − p)·M(θ) + p·M_hinted(θ)`, computed
/// exactly over the suite.
pub fn metric_with_piece(trainer: &Trainer, index: usize) -> Result<f64, TuneError> {
    let env = trainer.env();
    let BuiltPiece::Hint(h) = &env.pieces[index].built else { return Ok(trainer.current_metric()) };
    if !env.coalition.on[index] {
        return Ok(trainer.current_metric());
    }
    let model = trainer.model();
    let base = model.input - HINT_FEATURES;
    let mut hinted = 0.0;
    for e in trainer.suite() {
        let mut x = e.clone();
        let gold_value = model.space.value(e.start + e.gold);
        x.x[base] = 1.0;
        x.x[base + 1 + (gold_value.unsigned_abs() % 10) as usize] = 1.0;
        hinted += softmax(&model.forward(trainer.theta(), &x).logits)[e.gold];
    }
    let hinted = hinted / trainer.suite().len().max(1) as f64;
    Ok((1.0 - h.probability) * trainer.current_metric() + h.probability * hinted)
}

/// Below this gain of the kept piece over never having it, retention is not reported: a
/// ratio over one percentage point of expected gold accuracy or less is dominated by the
/// seed-to-seed spread of these runs (several points on the example specs), and its sign
/// flips with the seed.
pub const MIN_RETAINABLE_GAIN: f64 = 0.01;

/// What withdrawing a piece did.
///
/// Three runs on the same seeds and the same total steps `after + continued`: the piece kept
/// throughout, the piece withdrawn after `after` steps, and the piece never present.
/// Retention compares them at the same horizon,
/// `retention = (metric_after − metric_never) / (metric_kept − metric_never)`:
/// the share of what the piece gives, kept to the end, that stays with the model when the
/// piece leaves early. With `continued = 0` the kept run *is* the withdrawn run at removal,
/// and this is `(M at removal − M never) / (M with piece − M never)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WithdrawReport {
    /// Piece id.
    pub piece: String,
    /// Steps trained with the piece.
    pub after: u64,
    /// Steps continued without it.
    pub continued: u64,
    /// `M` with the piece present, at the moment of removal (for a hint shown with
    /// probability `p`: `(1 − p)·M + p·M_hinted`, see [`metric_with_piece`]).
    pub metric_with: f64,
    /// `M` right after removal (same parameters, piece gone).
    pub metric_at_removal: f64,
    /// `M` after continuing without the piece.
    pub metric_after: f64,
    /// `M` with the piece present at the end of the run that kept it for all
    /// `after + continued` steps (equal to `metric_with` when `continued = 0`).
    pub metric_kept: f64,
    /// `M` of the run that never had the piece, same seeds, same total steps.
    pub metric_never: f64,
    /// `metric_with − metric_at_removal`: what vanished the moment the piece left.
    pub drop: f64,
    /// `metric_kept − metric_never`: what having the piece to the end gives.
    pub gain_kept_piece: f64,
    /// `metric_after − metric_never`: what stays with the model after withdrawal.
    pub gain_retained: f64,
    /// `gain_retained / gain_kept_piece`; `None` when `gain_kept_piece` is below
    /// [`MIN_RETAINABLE_GAIN`] (nothing to retain, or the piece hurts), see `retention_note`.
    pub retention: Option<f64>,
    /// Why `retention` is missing, when it is.
    pub retention_note: Option<String>,
    /// The piece's parameters at removal (trained pieces), e.g. `p = 0.03`.
    pub piece_at_removal: Option<String>,
}

/// Retention and, when it is undefined, why.
fn retention(gain_retained: f64, gain_kept_piece: f64) -> (Option<f64>, Option<String>) {
    if gain_kept_piece >= MIN_RETAINABLE_GAIN {
        (Some(gain_retained / gain_kept_piece), None)
    } else if gain_kept_piece <= -MIN_RETAINABLE_GAIN {
        let note = format!(
            "undefined: keeping the piece ends {:.4} below never having it, so there is no gain to retain",
            -gain_kept_piece
        );
        (None, Some(note))
    } else {
        let note = format!(
            "undefined: keeping the piece gains {gain_kept_piece:.4} over never having it \
             (|gain| < {MIN_RETAINABLE_GAIN}), too little for a meaningful ratio"
        );
        (None, Some(note))
    }
}

/// Trains with piece `index` for `after` steps, removes it, continues `continued` steps; runs
/// the same with the piece kept throughout and without it ever, on the environment's seed;
/// pieces in `train` learn as they go (in every run that has them), a trained hint by
/// `hint_signal`.
pub fn withdraw(
    env: &Environment,
    config: &TrainConfig,
    index: usize,
    after: u64,
    continued: u64,
    train: &[usize],
    hint_signal: HintSignal,
) -> Result<WithdrawReport, TuneError> {
    let tuner = |env: Environment, train: &[usize]| -> Result<Tuner, TuneError> {
        let mut t = Tuner::new(env, config.clone(), train)?;
        t.hint_signal = hint_signal;
        Ok(t)
    };
    if index >= env.pieces.len() {
        let known = env.pieces.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
        return Err(TuneError::UnknownPiece { id: format!("#{index}"), known });
    }
    if !env.coalition.on[index] {
        return Err(TuneError::Piece(
            env.pieces[index].id.clone(),
            "the piece is already switched off in this environment; there is nothing to withdraw".into(),
        ));
    }
    let with = || -> Result<_, TuneError> {
        let mut t = tuner(env.clone(), train)?;
        t.advance(after)?;
        let metric_with = metric_with_piece(t.trainer(), index)?;
        let described = t.pieces.iter().find(|p| p.index == index).map(|p| p.describe());
        t.withdraw(index)?;
        let metric_at_removal = metric_with_piece(t.trainer(), index)?;
        t.advance(continued)?;
        Ok((metric_with, metric_at_removal, t.trainer().current_metric(), described))
    };
    let kept = || -> Result<Option<f64>, TuneError> {
        if continued == 0 {
            return Ok(None);
        }
        let mut t = tuner(env.clone(), train)?;
        t.advance(after + continued)?;
        Ok(Some(metric_with_piece(t.trainer(), index)?))
    };
    let never = || -> Result<f64, TuneError> {
        let mut on = env.coalition.on.clone();
        on[index] = false;
        let others: Vec<usize> = train.iter().copied().filter(|&i| i != index).collect();
        let mut t = tuner(env.with_coalition(Coalition { on }), &others)?;
        t.advance(after + continued)?;
        Ok(t.trainer().current_metric())
    };
    let (a, (k, b)) = rayon::join(with, || rayon::join(kept, never));
    let (metric_with, metric_at_removal, metric_after, piece_at_removal) = a?;
    let metric_kept = k?.unwrap_or(metric_with);
    let metric_never = b?;
    let gain_kept_piece = metric_kept - metric_never;
    let gain_retained = metric_after - metric_never;
    let (retention, retention_note) = retention(gain_retained, gain_kept_piece);
    Ok(WithdrawReport {
        piece: env.pieces[index].id.clone(),
        after,
        continued,
        metric_with,
        metric_at_removal,
        metric_after,
        metric_kept,
        metric_never,
        drop: metric_with - metric_at_removal,
        gain_kept_piece,
        gain_retained,
        retention,
        retention_note,
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

/// Runs the team study over the pieces at `trainable`, `steps` steps each, in parallel, on
/// the environment's seed.
pub fn team(
    env: &Environment,
    config: &TrainConfig,
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
            let mut t = Tuner::new(env.clone(), config.clone(), set)?;
            t.advance(steps)?;
            let rows = t.trainer().channels().iter().map(|c| c.id.clone()).collect();
            let learned = t.pieces.iter().map(|p| (p.id.clone(), p.params.clone())).collect();
            Ok((
                t.trainer().current_metric(),
                t.pieces.iter().map(|p| (p.id.clone(), p.describe())).collect(),
                t.gram,
                rows,
                learned,
            ))
        })
        .collect();
    let results: Vec<Out> = results.into_iter().collect::<Result<_, _>>()?;
    let metric_start = Trainer::new(env.clone(), config.clone())?.current_metric();
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
