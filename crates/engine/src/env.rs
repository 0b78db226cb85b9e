//! An environment assembled from a validated spec: sources, pieces, the gold suite, and the
//! keyed sampling of training tasks.

use std::sync::Arc;

use gristmill_core::piece::{PieceKind, RewardPiece, ScoreBatch, ScoreKey};
use gristmill_core::policy::Response;
use gristmill_core::rng::{derive_seed, stream, Purpose};
use gristmill_core::spec::{Catalog, ValidSpec};
use gristmill_core::task::{
    generate_task, generate_task_into, Features, GoldKind, Split, Task, TaskKey, TaskSource,
};
use gristmill_pieces::{BuildContext, BuiltPiece, Curriculum, Hint};
use rand::Rng;
use rayon::prelude::*;

use crate::error::EngineError;

/// The gold metric's verifier per [`GoldKind`] (indexed by discriminant), built once.
fn gold_verifiers() -> &'static [Option<gristmill_text::verify::Verifier>; 5] {
    static VERIFIERS: std::sync::OnceLock<[Option<gristmill_text::verify::Verifier>; 5]> =
        std::sync::OnceLock::new();
    VERIFIERS.get_or_init(|| GoldKind::ALL.map(gristmill_pieces::free_text::gold_verifier))
}

/// One piece of an assembled environment.
#[derive(Clone)]
pub struct EnvPiece {
    /// Spec id.
    pub id: String,
    /// Kind name as written in the spec (e.g. `noisy_verifier`).
    pub kind_name: &'static str,
    /// What the piece does.
    pub kind: PieceKind,
    /// Channel weight `w_i` in `r = Σ w_i r_i` (reward pieces).
    pub weight: f64,
    /// The built piece.
    pub built: BuiltPiece,
}

impl EnvPiece {
    /// The reward scorer, for reward pieces.
    pub fn scorer(&self) -> Option<&dyn RewardPiece> {
        match &self.built {
            BuiltPiece::Reward(r) => Some(r.as_ref()),
            BuiltPiece::RewardModel(m) => Some(m),
            _ => None,
        }
    }
}

/// Which pieces are switched on. A switched-off reward piece's channel is removed (scores
/// 0 with weight 0); a switched-off curriculum samples by the spec's mixture weights; a
/// switched-off hint is never shown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coalition {
    /// One flag per piece, in spec order.
    pub on: Vec<bool>,
}

impl Coalition {
    /// All pieces on.
    pub fn all(n: usize) -> Self {
        Coalition { on: vec![true; n] }
    }
    /// The coalition whose members are the set bits of `mask`.
    pub fn from_mask(n: usize, mask: u64) -> Self {
        Coalition { on: (0..n).map(|i| mask >> i & 1 == 1).collect() }
    }
}

/// Where a training task is drawn: the slot `index` of `step` under root `seed`, from the
/// sampling distribution `weights`, with the hint shown with `hint_probability`.
#[derive(Debug, Clone, Copy)]
pub struct TaskSlot<'a> {
    /// Sampling weights over sources.
    pub weights: &'a [f64],
    /// Probability that the hint is shown (`None`: no hint piece on).
    pub hint_probability: Option<f64>,
    /// Run root seed.
    pub seed: u64,
    /// Training step.
    pub step: u64,
    /// Task slot within the step.
    pub index: u64,
}

/// An environment ready to roll out.
#[derive(Clone)]
pub struct Environment {
    /// The validated spec.
    pub spec: Arc<ValidSpec>,
    /// Single-turn sources, in spec order.
    pub sources: Arc<Vec<Box<dyn TaskSource>>>,
    /// Pieces, in spec order.
    pub pieces: Arc<Vec<EnvPiece>>,
    /// Positions in `pieces` of the reward pieces, in channel order.
    pub channels: Vec<usize>,
    /// Which pieces are on.
    pub coalition: Coalition,
    /// The checker of code tasks' gold (all tests pass), when a source has unit-test gold.
    gold_code: Option<Arc<gristmill_pieces::CodeVerifier>>,
    /// What the caller supplied to the pieces (kept for rebuilding with another seed).
    services: Services,
}

/// The digest of the outside data one source reads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataDigest {
    /// The source's id.
    pub source: String,
    /// BLAKE3 of the file, hex.
    pub blake3: String,
}

/// Services the caller supplies to an environment's pieces.
#[derive(Clone, Default)]
pub struct Services {
    /// The cache judges keep their verdicts in (the run store's, for a command that has one);
    /// `None` gives each judge its own in-memory cache.
    pub verdicts: Option<Arc<dyn gristmill_pieces::VerdictCache>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("verdicts", &self.verdicts.is_some()).finish()
    }
}

/// The one catalog of everything a spec may name: the built-in task families and episode
/// families, every piece kind and every policy kind (reference and trainable).
pub fn catalog() -> Catalog<'static> {
    Catalog {
        families: gristmill_tasks::source_kinds(),
        episodes: gristmill_tasks::episode_families(),
        pieces: gristmill_pieces::kinds(),
        policies: crate::policy::POLICY_KINDS,
    }
}

impl Environment {
    /// Builds every source and piece of a validated spec (reward models train here, on the
    /// spec's seed).
    pub fn build(spec: ValidSpec) -> Result<Environment, EngineError> {
        Environment::build_with(spec, &Services::default())
    }

    /// [`build`](Environment::build) with services for the pieces (a judge's verdict cache).
    pub fn build_with(spec: ValidSpec, services: &Services) -> Result<Environment, EngineError> {
        let mut sources: Vec<Box<dyn TaskSource>> = Vec::with_capacity(spec.source_families().len());
        let mut gold_code = None;
        for ((f, k), s) in spec.source_families().iter().zip(spec.source_knobs()).zip(&spec.spec().sources) {
            let source = gristmill_tasks::open_source(f, k)
                .map_err(|e| EngineError::Dataset { id: s.id.clone(), source: Box::new(e) })?;
            if source.free_text() && matches!(spec.spec().policy.kind.as_str(), "loglinear" | "mlp") {
                return Err(EngineError::FreeTextPolicy {
                    policy: spec.spec().policy.kind.clone(),
                    source_id: s.id.clone(),
                });
            }
            if gold_code.is_none()
                && f.name == gristmill_tasks::dataset::NAME
                && k.choice("gold_kind") == "tests"
            {
                let sandbox = gristmill_sandbox::Sandbox::new(gristmill_sandbox::SandboxConfig::default())
                    .map_err(|e| EngineError::GoldSandbox { id: s.id.clone(), reason: e.to_string() })?;
                gold_code = Some(Arc::new(gristmill_pieces::CodeVerifier::new(sandbox)));
            }
            sources.push(source);
        }
        let source_refs: Vec<&dyn TaskSource> = sources.iter().map(|s| s.as_ref()).collect();
        let source_ids: Vec<String> = spec.spec().sources.iter().map(|s| s.id.clone()).collect();
        let source_weights: Vec<f64> = spec.spec().sources.iter().map(|s| s.weight).collect();
        let ctx = BuildContext {
            seed: spec.spec().run.seed,
            sources: &source_refs,
            source_ids: &source_ids,
            source_weights: &source_weights,
            eval_fraction: spec.spec().eval.fraction,
            verdicts: services.verdicts.as_ref(),
        };
        let mut pieces = Vec::with_capacity(spec.spec().pieces.len());
        for (i, p) in spec.spec().pieces.iter().enumerate() {
            let info = &spec.piece_kinds()[i];
            let built = gristmill_pieces::build(info, &p.id, &spec.piece_params()[i], &ctx)
                .map_err(|source| EngineError::Piece { id: p.id.clone(), source: Box::new(source) })?;
            pieces.push(EnvPiece {
                id: p.id.clone(),
                kind_name: info.name,
                kind: info.kind,
                weight: p.weight,
                built,
            });
        }
        let channels = (0..pieces.len()).filter(|&i| pieces[i].kind.is_reward()).collect();
        let n = pieces.len();
        Ok(Environment {
            spec: Arc::new(spec),
            sources: Arc::new(sources),
            pieces: Arc::new(pieces),
            channels,
            coalition: Coalition::all(n),
            gold_code,
            services: services.clone(),
        })
    }

    /// The same environment with piece `index` replaced (e.g. by a retrained copy, or with
    /// a new channel weight). Other pieces are shared, not rebuilt.
    pub fn with_piece(&self, index: usize, piece: EnvPiece) -> Environment {
        let mut pieces: Vec<EnvPiece> = self.pieces.as_ref().clone();
        pieces[index] = piece;
        Environment { pieces: Arc::new(pieces), ..self.clone() }
    }

    /// Position of the piece with id `id`.
    pub fn piece_index(&self, id: &str) -> Option<usize> {
        self.pieces.iter().position(|p| p.id == id)
    }

    /// The same environment with only `coalition`'s pieces on.
    pub fn with_coalition(&self, coalition: Coalition) -> Environment {
        Environment { coalition, ..self.clone() }
    }

    /// The same spec with another root seed: validated again and rebuilt, so pieces that
    /// train when built (reward models) train on the new seed, and the root seed stays the
    /// one the validated spec names. The coalition is kept; pieces replaced with
    /// [`with_piece`](Environment::with_piece) are not (apply them again).
    pub fn reseeded(&self, seed: u64) -> Result<Environment, EngineError> {
        if seed == self.seed() {
            return Ok(self.clone());
        }
        let origin = format!("{} with seed {seed}", self.spec.spec().name);
        let overrides = gristmill_core::spec::Overrides { seed: Some(seed), steps: None };
        let spec = self.spec.spec().clone().validate_with(&overrides, &catalog(), &origin)?;
        let mut env = Environment::build_with(spec, &self.services)?;
        env.coalition = self.coalition.clone();
        Ok(env)
    }

    /// `(source id, digest)` of every source that reads outside data (datasets), in spec
    /// order: what, besides the spec, a run's numbers depend on.
    pub fn data_digests(&self) -> Vec<DataDigest> {
        self.spec
            .spec()
            .sources
            .iter()
            .zip(self.sources.iter())
            .filter_map(|(s, src)| {
                src.data_digest().map(|blake3| DataDigest { source: s.id.clone(), blake3 })
            })
            .collect()
    }

    /// The root seed the spec names.
    pub fn seed(&self) -> u64 {
        self.spec.spec().run.seed
    }

    /// Channel ids in channel order.
    pub fn channel_ids(&self) -> Vec<String> {
        self.channels.iter().map(|&i| self.pieces[i].id.clone()).collect()
    }

    /// Channel weights (0 for switched-off pieces), in channel order.
    pub fn channel_weights(&self) -> Vec<f64> {
        self.channels
            .iter()
            .map(|&i| if self.coalition.on[i] { self.pieces[i].weight } else { 0.0 })
            .collect()
    }

    /// The active curriculum, if any.
    pub fn curriculum(&self) -> Option<&Curriculum> {
        self.pieces.iter().enumerate().find_map(|(i, p)| match &p.built {
            BuiltPiece::Curriculum(c) if self.coalition.on[i] => Some(c),
            _ => None,
        })
    }

    /// The active hint, if any.
    pub fn hint(&self) -> Option<&Hint> {
        self.pieces.iter().enumerate().find_map(|(i, p)| match &p.built {
            BuiltPiece::Hint(h) if self.coalition.on[i] => Some(h),
            _ => None,
        })
    }

    /// The spec's mixture weights over sources, normalized: the reference distribution `p₀`.
    pub fn mixture(&self) -> Vec<f64> {
        let w: Vec<f64> = self.spec.spec().sources.iter().map(|s| s.weight).collect();
        let total: f64 = w.iter().sum();
        w.iter().map(|x| x / total).collect()
    }

    /// The distribution training tasks are drawn from: the curriculum's when one is on,
    /// else the mixture.
    pub fn sampling_distribution(&self) -> Vec<f64> {
        match self.curriculum() {
            Some(c) => c.weights.clone(),
            None => self.mixture(),
        }
    }

    /// The source of training-task slot `index` at `step`: inverse CDF of one keyed uniform,
    /// so coalitions with different distributions still share their random numbers.
    pub fn draw_source(&self, weights: &[f64], seed: u64, step: u64, index: u64) -> u32 {
        let u: f64 = stream(seed, Purpose::SOURCE, step, index).random();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut last_positive = 0;
        for (i, w) in weights.iter().enumerate() {
            if *w > 0.0 {
                last_positive = i;
                acc += w / total;
                if u < acc {
                    return i as u32;
                }
            }
        }
        last_positive as u32
    }

    /// Training task for slot `index` at `step`, drawn from `weights`, with the hint shown
    /// according to `hint_probability` (keyed, so the decision is common across coalitions).
    pub fn training_task(
        &self,
        weights: &[f64],
        hint_probability: Option<f64>,
        seed: u64,
        step: u64,
        index: u64,
    ) -> Result<Task, EngineError> {
        let mut task = Task::empty();
        let slot = TaskSlot { weights, hint_probability, seed, step, index };
        self.training_task_into(slot, Features::Encode, &mut task)?;
        Ok(task)
    }

    /// [`training_task`](Environment::training_task) into an existing task, reusing its
    /// buffers, with or without the feature encoding.
    pub fn training_task_into(
        &self,
        slot: TaskSlot<'_>,
        features: Features,
        task: &mut Task,
    ) -> Result<(), EngineError> {
        let TaskSlot { weights, hint_probability, seed, step, index } = slot;
        let source = self.draw_source(weights, seed, step, index);
        let key =
            TaskKey { seed: derive_seed(seed, Purpose::TASK, step, 0), source, index, split: Split::Train };
        self.task_into(key, features, task)?;
        if let Some(probability) = hint_probability {
            if (Hint { probability }).shows(seed, step, index) {
                task.hint = Some(task.hint_digit());
            }
        }
        Ok(())
    }

    /// Regenerates the task named by `key`.
    pub fn task(&self, key: TaskKey) -> Result<Task, EngineError> {
        let s = key.source as usize;
        let source = self.sources.get(s).ok_or(EngineError::UnknownSource { index: key.source })?;
        Ok(generate_task(
            source.as_ref(),
            &self.spec.spec().sources[s].id,
            key,
            self.spec.spec().eval.fraction,
        )?)
    }

    /// [`task`](Environment::task) into an existing task, reusing its buffers, with or
    /// without the feature encoding.
    pub fn task_into(&self, key: TaskKey, features: Features, task: &mut Task) -> Result<(), EngineError> {
        let s = key.source as usize;
        let source = self.sources.get(s).ok_or(EngineError::UnknownSource { index: key.source })?;
        let id = &self.spec.spec().sources[s].id;
        Ok(generate_task_into(source.as_ref(), id, key, self.spec.spec().eval.fraction, features, task)?)
    }

    /// The gold eval suite: `eval.size` tasks round-robin over the eval sources, from the
    /// eval seed, on the eval side of the content partition (so never seen in training).
    pub fn eval_suite(&self) -> Result<Vec<Task>, EngineError> {
        let eval = &self.spec.spec().eval;
        let srcs = &self.spec.eval_sources();
        (0..eval.size as u64)
            .into_par_iter()
            .map(|i| {
                let source = srcs[(i % srcs.len() as u64) as usize] as u32;
                self.task(TaskKey { seed: eval.seed, source, index: i, split: Split::Eval })
            })
            .collect()
    }

    /// The gold score of `response` to `task`: what the gold metric counts. This is the one
    /// place it is computed (rollouts, training, eval and the server all call it).
    ///
    /// An integer family's task scores `1` when the family's parsed answer is the gold. A
    /// free-text task is checked by its gold kind, with the most lenient answer extraction
    /// (`\boxed{}`, "the answer is", `Answer:`, the last number): text by normalized match,
    /// numbers with a tolerance, math by equivalence, a letter among A–Z; code scores `1`
    /// when every unit test passes in the sandbox with its default limits.
    pub fn gold_score(&self, task: &Task, response: &Response) -> f64 {
        let Some(reference) = &task.body.reference else {
            return match &response.answer {
                Ok(v) if *v == task.gold() => 1.0,
                _ => 0.0,
            };
        };
        let pass = match reference.kind {
            GoldKind::Tests => self
                .gold_code
                .as_ref()
                .is_some_and(|c| c.fraction_passed(task, &response.text).is_ok_and(|f| f == 1.0)),
            // An open-ended task (no gold) is graded by its judges only.
            _ if reference.gold.is_null() => false,
            kind => gold_verifiers()[kind as usize]
                .as_ref()
                .is_some_and(|v| v.verify(&reference.gold_text(), &response.text).correct),
        };
        f64::from(u8::from(pass))
    }

    /// The reward vector of `response` to `task`: one entry per channel (0 for switched-off
    /// channels).
    pub fn score_into(&self, task: &Task, response: &Response, key: ScoreKey, out: &mut Vec<f64>) {
        let start = out.len();
        out.resize(start + self.channels.len(), 0.0);
        self.score_to(task, response, key, &mut out[start..]);
    }

    /// The reward vector of `response` to `task`, written to `out` (one slot per channel).
    pub fn score_to(&self, task: &Task, response: &Response, key: ScoreKey, out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.channels.len());
        for (slot, &i) in out.iter_mut().zip(&self.channels) {
            let p = &self.pieces[i];
            *slot = match (self.coalition.on[i], p.scorer()) {
                (true, Some(s)) => s.score(task, response, key),
                _ => 0.0,
            };
        }
    }

    /// The reward vectors of every response of `batch`, channel by channel: `out` is
    /// `[sample][channel]` (length `responses × channels`), and `column` is scratch. Equal
    /// bit for bit to [`score_to`](Environment::score_to) per sample.
    pub fn score_batch_to(&self, batch: &ScoreBatch<'_>, out: &mut [f64], column: &mut Vec<f64>) {
        let (n, c) = (batch.responses.len(), self.channels.len());
        debug_assert_eq!(out.len(), n * c);
        column.clear();
        column.resize(n, 0.0);
        for (ch, &i) in self.channels.iter().enumerate() {
            match (self.coalition.on[i], self.pieces[i].scorer()) {
                (true, Some(scorer)) => scorer.score_batch(batch, column),
                _ => column.fill(0.0),
            }
            for (j, &r) in column.iter().enumerate() {
                out[j * c + ch] = r;
            }
        }
    }

    /// The named parts of each switched-on channel's reward that has parts (a rubric
    /// judge's items): `(channel id, [(part, score)])`, channels in order.
    pub fn sub_scores(&self, task: &Task, response: &Response) -> Vec<(String, Vec<(String, f64)>)> {
        self.channels
            .iter()
            .filter(|&&i| self.coalition.on[i])
            .filter_map(|&i| {
                let parts = self.pieces[i].scorer()?.sub_scores(task, response);
                (!parts.is_empty()).then(|| (self.pieces[i].id.clone(), parts))
            })
            .collect()
    }

    /// The reward vector of `response` to `task`.
    pub fn score(&self, task: &Task, response: &Response, key: ScoreKey) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.channels.len());
        self.score_into(task, response, key, &mut out);
        out
    }
}
