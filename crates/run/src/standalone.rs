//! Standalone metrics: what each piece looks like by its own proxy, before it trains
//! anything. Computed exactly by enumerating the answer space of a fixed sample of
//! training tasks.

use gristmill_core::piece::ScoreKey;
use gristmill_core::policy::Response;
use gristmill_core::rng::{derive_seed, Purpose};
use gristmill_learn::model::softmax;
use gristmill_learn::{LearnError, Trainer};
use gristmill_pieces::BuiltPiece;
use serde::Serialize;

/// Training tasks the standalone metrics are computed on.
pub const STANDALONE_TASKS: usize = 64;

/// A piece's standalone metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standalone {
    /// Piece id.
    pub id: String,
    /// Kind name.
    pub kind: String,
    /// Which number is the piece's headline proxy.
    pub metric: &'static str,
    /// The headline proxy value.
    pub value: Option<f64>,
    /// Pairwise agreement with gold under the current policy (reward pieces).
    pub agreement_policy: Option<f64>,
    /// Pairwise agreement with gold under uniform answers (reward pieces).
    pub agreement_uniform: Option<f64>,
    /// Held-out pairwise accuracy (reward models).
    pub pairwise_accuracy: Option<f64>,
    /// Mean over tasks of the reward's variance under the current policy (reward pieces).
    pub reward_variance: Option<f64>,
    /// Entropy of the sampling distribution (curriculum).
    pub curriculum_entropy: Option<f64>,
}

/// Standalone metrics of every piece under `trainer`'s current policy.
///
/// Agreement is pairwise and exact: for each task, over pairs (gold answer, other answer)
/// weighted by `π(g)·π(y)` (or uniformly), the share the piece orders like gold (ties half).
pub fn standalone(trainer: &Trainer) -> Result<Vec<Standalone>, LearnError> {
    let env = trainer.env();
    let seed = derive_seed(trainer.seed(), Purpose::named("standalone"), 0, 0);
    let weights = env.mixture();
    let tasks: Vec<_> = (0..STANDALONE_TASKS as u64)
        .map(|i| env.training_task(&weights, None, seed, 0, i))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for piece in env.pieces.iter() {
        let mut s = Standalone {
            id: piece.id.clone(),
            kind: piece.kind_name.to_string(),
            metric: "",
            value: None,
            agreement_policy: None,
            agreement_uniform: None,
            pairwise_accuracy: None,
            reward_variance: None,
            curriculum_entropy: None,
        };
        match &piece.built {
            BuiltPiece::Curriculum(c) => {
                s.metric = "entropy";
                s.curriculum_entropy = Some(c.entropy());
                s.value = s.curriculum_entropy;
            }
            BuiltPiece::Hint(h) => {
                s.metric = "probability";
                s.value = Some(h.probability);
            }
            _ => {
                let Some(scorer) = piece.scorer() else { continue };
                let (mut ap, mut wp, mut au, mut wu, mut var) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for (t, task) in tasks.iter().enumerate() {
                    let src = env.sources[task.key.source as usize].as_ref();
                    let e = trainer.model().encode(task);
                    let p = softmax(&trainer.model().forward(trainer.theta(), &e).logits);
                    let r: Vec<f64> = (0..task.answers.size as usize)
                        .map(|y| {
                            let resp = Response::from_answer(src, task.answers.value(y));
                            let key = ScoreKey { seed, step: t as u64, index: y as u64 };
                            scorer.score(task, &resp, key)
                        })
                        .collect();
                    let g = e.gold;
                    for y in 0..r.len() {
                        if y == g {
                            continue;
                        }
                        let a = if r[g] > r[y] {
                            1.0
                        } else if r[g] == r[y] {
                            0.5
                        } else {
                            0.0
                        };
                        ap += p[g] * p[y] * a;
                        wp += p[g] * p[y];
                        au += a;
                        wu += 1.0;
                    }
                    let mean: f64 = p.iter().zip(&r).map(|(p, r)| p * r).sum();
                    var += p.iter().zip(&r).map(|(p, r)| p * (r - mean) * (r - mean)).sum::<f64>();
                }
                s.agreement_policy = (wp > 0.0).then(|| ap / wp);
                s.agreement_uniform = (wu > 0.0).then(|| au / wu);
                s.reward_variance = Some(var / tasks.len() as f64);
                if let BuiltPiece::RewardModel(m) = &piece.built {
                    s.metric = "pairwise accuracy";
                    s.pairwise_accuracy = Some(m.pairwise_accuracy());
                    s.value = s.pairwise_accuracy;
                } else {
                    s.metric = "agreement (uniform)";
                    s.value = s.agreement_uniform;
                }
            }
        }
        out.push(s);
    }
    Ok(out)
}
