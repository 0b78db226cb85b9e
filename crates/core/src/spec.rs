//! The environment spec: a TOML file that fully describes a run together with a root seed.
//!
//! ```toml
//! name = "arith"
//! [run]
//! seed = 7
//! steps = 20
//! tasks_per_step = 32
//! responses_per_task = 8
//! [policy]
//! kind = "oracle"
//! params = { error_rate = 0.3 }
//! [[source]]
//! id = "add"
//! family = "addition"
//! knobs = { digits = 2 }
//! [[piece]]
//! id = "gold"
//! kind = "exact_verifier"
//! [eval]
//! size = 128
//! seed = 99
//! ```
//!
//! [`EnvSpec::parse`] checks syntax, types and unknown keys; [`EnvSpec::validate`] checks
//! meaning against a [`Catalog`] of families and piece kinds. Both report every problem they
//! can find, each with its field path.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::digest::content_hash;
use crate::episode::EpisodeFamilyInfo;
use crate::error::{SpecError, SpecProblem};
use crate::params::{resolve, ParamSpec, Params};
use crate::piece::{PieceKind, PieceKindInfo};
use crate::task::FamilyInfo;

/// Upper bounds on sizes a spec may ask for; beyond them a spec is refused, not truncated.
pub mod limits {
    /// Training steps.
    pub const MAX_STEPS: u64 = 1_000_000;
    /// Tasks per step (B).
    pub const MAX_TASKS_PER_STEP: u32 = 65_536;
    /// Responses per task (G).
    pub const MAX_RESPONSES_PER_TASK: u32 = 1_024;
    /// Samples per step (B × G).
    pub const MAX_SAMPLES_PER_STEP: u64 = 1 << 22;
    /// Gold suite size.
    pub const MAX_EVAL_SIZE: u32 = 1_000_000;
    /// Pieces in one environment.
    pub const MAX_PIECES: usize = 64;
    /// Forks per multi-turn snapshot.
    pub const MAX_FORKS: u32 = 65_536;
}

/// The whole spec.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EnvSpec {
    /// Environment name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Run settings.
    #[serde(default)]
    pub run: RunSpec,
    /// The policy that answers tasks.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Task sources.
    #[serde(rename = "source", default)]
    pub sources: Vec<SourceSpec>,
    /// Pieces.
    #[serde(rename = "piece", default)]
    pub pieces: Vec<PieceSpec>,
    /// Multi-turn episode sources.
    #[serde(rename = "episode", default)]
    pub episodes: Vec<EpisodeSpec>,
    /// The gold eval suite.
    #[serde(default)]
    pub eval: EvalSpec,
}

/// Run settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunSpec {
    /// Root seed (overridable with `--seed`).
    #[serde(default)]
    pub seed: u64,
    /// Steps (overridable with `--steps`).
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Tasks per step (B).
    #[serde(default = "default_tasks")]
    pub tasks_per_step: u32,
    /// Responses per task (G).
    #[serde(default = "default_group")]
    pub responses_per_task: u32,
}

fn default_steps() -> u64 {
    10
}
fn default_tasks() -> u32 {
    32
}
fn default_group() -> u32 {
    8
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            seed: 0,
            steps: default_steps(),
            tasks_per_step: default_tasks(),
            responses_per_task: default_group(),
        }
    }
}

/// The policy: a reference policy (`uniform`, `oracle`) or a trainable one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PolicySpec {
    /// Policy kind.
    pub kind: String,
    /// Kind parameters.
    #[serde(default)]
    pub params: toml::Table,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec { kind: "oracle".into(), params: toml::Table::new() }
    }
}

/// A task source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SourceSpec {
    /// Unique id.
    pub id: String,
    /// Family name (`kind` is accepted too: `[[source]] kind = "dataset"` reads naturally).
    #[serde(alias = "kind")]
    pub family: String,
    /// Mixture weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// Difficulty knobs.
    #[serde(default)]
    pub knobs: toml::Table,
}

/// A piece.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PieceSpec {
    /// Unique id.
    pub id: String,
    /// Kind name (e.g. `noisy_verifier`).
    pub kind: String,
    /// Weight of its channel in the combined reward (`r = Σ w_i r_i`).
    #[serde(default = "one")]
    pub weight: f64,
    /// Kind parameters.
    #[serde(default)]
    pub params: toml::Table,
    /// Whether the piece's own parameters are trained (trainable kinds only).
    #[serde(default)]
    pub train: bool,
}

/// A multi-turn episode source.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EpisodeSpec {
    /// Unique id.
    pub id: String,
    /// Multi-turn family name.
    pub family: String,
    /// Difficulty knobs.
    #[serde(default)]
    pub knobs: toml::Table,
    /// Episodes started per step.
    #[serde(default = "default_episodes")]
    pub episodes_per_step: u32,
    /// Forks taken from each episode's snapshot.
    #[serde(default = "default_forks")]
    pub forks: u32,
    /// Steps taken before the snapshot.
    #[serde(default = "default_prefix")]
    pub prefix_steps: u32,
}

fn default_episodes() -> u32 {
    4
}
fn default_forks() -> u32 {
    8
}
fn default_prefix() -> u32 {
    2
}

/// The gold eval suite.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EvalSpec {
    /// Number of eval tasks.
    #[serde(default = "default_eval_size")]
    pub size: u32,
    /// Seed of the suite (independent of the run seed, so runs with different seeds share
    /// one suite).
    #[serde(default = "default_eval_seed")]
    pub seed: u64,
    /// Source ids the suite draws from (default: all sources, round-robin).
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    /// Share of each source's task universe reserved for eval (by content hash).
    #[serde(default = "default_fraction")]
    pub fraction: f64,
}

fn default_eval_size() -> u32 {
    256
}
fn default_eval_seed() -> u64 {
    0x901d
}
fn default_fraction() -> f64 {
    0.2
}

impl Default for EvalSpec {
    fn default() -> Self {
        EvalSpec {
            size: default_eval_size(),
            seed: default_eval_seed(),
            sources: None,
            fraction: default_fraction(),
        }
    }
}

fn one() -> f64 {
    1.0
}

/// A policy kind: its name and parameters.
#[derive(Debug, Clone, Copy)]
pub struct PolicyKindInfo {
    /// Name used in specs.
    pub name: &'static str,
    /// One paragraph.
    pub doc: &'static str,
    /// Whether the policy trains (has parameters and gradients).
    pub trainable: bool,
    /// Declared parameters.
    pub params: &'static [ParamSpec],
}

/// What a spec may name: families, piece kinds and policy kinds.
#[derive(Debug, Clone, Copy)]
pub struct Catalog<'a> {
    /// Single-turn families.
    pub families: &'a [FamilyInfo],
    /// Multi-turn families.
    pub episodes: &'a [EpisodeFamilyInfo],
    /// Piece kinds.
    pub pieces: &'a [PieceKindInfo],
    /// Policy kinds.
    pub policies: &'a [PolicyKindInfo],
}

/// A spec whose every name and value has been checked, with knobs and params resolved.
///
/// It cannot be changed once validated (its fields are private): changes a command line asks
/// for ([`Overrides`]) are applied to the parsed [`EnvSpec`] before validation, so the content
/// hash, the resolved params and the root seed always describe the same spec.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    spec: EnvSpec,
    hash: String,
    source_knobs: Vec<Params>,
    source_families: Vec<FamilyInfo>,
    piece_params: Vec<Params>,
    piece_kinds: Vec<PieceKindInfo>,
    episode_knobs: Vec<Params>,
    episode_families: Vec<EpisodeFamilyInfo>,
    policy_params: Params,
    policy_kind: PolicyKindInfo,
    eval_sources: Vec<usize>,
}

impl ValidSpec {
    /// The spec as written (with any overrides applied before validation).
    pub fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    /// Content hash of the canonical spec (its TOML re-serialised; comments do not count).
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// The root seed: the one source of truth for every keyed stream of a run.
    pub fn seed(&self) -> u64 {
        self.spec.run.seed
    }
    /// Resolved knobs per source (same order as `spec().sources`).
    pub fn source_knobs(&self) -> &[Params] {
        &self.source_knobs
    }
    /// Family info per source.
    pub fn source_families(&self) -> &[FamilyInfo] {
        &self.source_families
    }
    /// Resolved params per piece.
    pub fn piece_params(&self) -> &[Params] {
        &self.piece_params
    }
    /// Kind info per piece.
    pub fn piece_kinds(&self) -> &[PieceKindInfo] {
        &self.piece_kinds
    }
    /// Resolved knobs per episode source.
    pub fn episode_knobs(&self) -> &[Params] {
        &self.episode_knobs
    }
    /// Family info per episode source.
    pub fn episode_families(&self) -> &[EpisodeFamilyInfo] {
        &self.episode_families
    }
    /// Resolved policy params.
    pub fn policy_params(&self) -> &Params {
        &self.policy_params
    }
    /// Policy kind.
    pub fn policy_kind(&self) -> &PolicyKindInfo {
        &self.policy_kind
    }
    /// Source indices the eval suite draws from.
    pub fn eval_sources(&self) -> &[usize] {
        &self.eval_sources
    }
    /// Positions (in `spec().pieces`) of the pieces that emit reward channels, in channel order.
    pub fn reward_pieces(&self) -> Vec<usize> {
        (0..self.spec.pieces.len()).filter(|&i| self.piece_kinds[i].kind.is_reward()).collect()
    }
    /// Position of the piece with kind `kind`, if any.
    pub fn piece_of_kind(&self, kind: PieceKind) -> Option<usize> {
        self.piece_kinds.iter().position(|k| k.kind == kind)
    }
}

/// Changes to a parsed spec that a command line asks for (`--seed`, `--steps`). They are
/// applied to the [`EnvSpec`] before it is validated ([`EnvSpec::with_overrides`]), so an
/// out-of-range override is reported like any other spec problem, naming the flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Root seed (`run.seed`).
    pub seed: Option<u64>,
    /// Training steps (`run.steps`).
    pub steps: Option<u64>,
}

impl Overrides {
    /// The flag that set the field at `path`, if an override did.
    fn flag_for(&self, path: &str) -> Option<&'static str> {
        match path {
            "run.seed" if self.seed.is_some() => Some("--seed"),
            "run.steps" if self.steps.is_some() => Some("--steps"),
            _ => None,
        }
    }
}

/// `line L, column C` of byte offset `at` in `text` (1-based; columns count characters).
fn position(text: &str, at: usize) -> String {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

/// A spec file's bytes as text. Invalid UTF-8 is a spec problem naming the line and the
/// byte within it, not an I/O error.
pub fn decode_text<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, SpecError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let before = &bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        SpecError {
            origin: origin.to_string(),
            problems: vec![SpecProblem::new(
                format!("line {line}, byte {}", at - line_start + 1),
                format!("invalid UTF-8 (byte 0x{:02x}); a spec must be UTF-8 text", bytes[at]),
            )],
        }
    })
}

/// Parses, overrides and validates `text`, reporting unknown keys together with every
/// validation problem of the same file (unknown keys first, in document order).
pub fn load_valid(
    text: &str,
    origin: &str,
    overrides: &Overrides,
    catalog: &Catalog<'_>,
) -> Result<ValidSpec, SpecError> {
    let (spec, unknown) = EnvSpec::parse_lenient(text, origin)?;
    match (spec.validate_with(overrides, catalog, origin), unknown.is_empty()) {
        (Ok(valid), true) => Ok(valid),
        (Ok(_), false) => Err(SpecError { origin: origin.to_string(), problems: unknown }),
        (Err(mut e), _) => {
            e.problems.splice(0..0, unknown);
            Err(e)
        }
    }
}

fn path_string(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_string(parent)),
        Path::Map { parent, key } => {
            let p = path_string(parent);
            if p.is_empty() {
                key.to_string()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            path_string(parent)
        }
    }
}

impl EnvSpec {
    /// The spec with `overrides` applied (to be validated next).
    pub fn with_overrides(mut self, overrides: &Overrides) -> EnvSpec {
        if let Some(seed) = overrides.seed {
            self.run.seed = seed;
        }
        if let Some(steps) = overrides.steps {
            self.run.steps = steps;
        }
        self
    }

    /// [`with_overrides`](EnvSpec::with_overrides) then [`validate`](EnvSpec::validate); a
    /// problem in an overridden field names the flag that set it.
    pub fn validate_with(
        self,
        overrides: &Overrides,
        catalog: &Catalog<'_>,
        origin: &str,
    ) -> Result<ValidSpec, SpecError> {
        self.with_overrides(overrides).validate(catalog, origin).map_err(|mut e| {
            for p in &mut e.problems {
                if let Some(flag) = overrides.flag_for(&p.path) {
                    p.message = format!("{} (set by {flag})", p.message);
                }
            }
            e
        })
    }

    /// Parses TOML text. `origin` names the file in messages. Reports a syntax error, or
    /// every unknown key together with the first type error.
    pub fn parse(text: &str, origin: &str) -> Result<EnvSpec, SpecError> {
        let (spec, unknown) = EnvSpec::parse_lenient(text, origin)?;
        if unknown.is_empty() {
            Ok(spec)
        } else {
            Err(SpecError { origin: origin.to_string(), problems: unknown })
        }
    }

    /// [`parse`](EnvSpec::parse) that returns the unknown keys as problems beside the spec
    /// instead of failing on them, so that a loader can report them together with the
    /// validation problems of the same file. A syntax or type error still fails.
    pub fn parse_lenient(text: &str, origin: &str) -> Result<(EnvSpec, Vec<SpecProblem>), SpecError> {
        let fail = |problems| SpecError { origin: origin.to_string(), problems };
        if let Some(at) = text.find('\0') {
            return Err(fail(vec![SpecProblem::new(
                position(text, at),
                "a NUL byte is not allowed in a spec (is this a binary file?)".to_string(),
            )]));
        }
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let at = match e.span() {
                Some(span) => position(text, span.start.min(text.len())),
                None => "(document)".to_string(),
            };
            let message = e.message().trim().replace('\n', "; ");
            let message =
                if message.is_empty() { "the text is not valid TOML here".to_string() } else { message };
            fail(vec![SpecProblem::new(at, format!("TOML syntax error: {message}"))])
        })?;
        let mut unknown = Vec::new();
        let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(path_string(&p));
        let de = serde_ignored::Deserializer::new(toml::Value::Table(table), &mut on_unknown);
        let result: Result<EnvSpec, _> = serde_path_to_error::deserialize(de);
        let mut problems: Vec<SpecProblem> =
            unknown.into_iter().map(|p| SpecProblem::new(p.clone(), "unknown key")).collect();
        match result {
            Ok(spec) => Ok((spec, problems)),
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." { "(document)".to_string() } else { path };
                problems.push(SpecProblem::new(path, e.into_inner().message().to_string()));
                Err(fail(problems))
            }
        }
    }

    /// Canonical TOML text (used for the content hash and for storing the spec).
    pub fn canonical_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks the spec's meaning against `catalog`, in named phases (run settings, sources,
    /// pieces, episodes, policy, eval suite), and reports every problem found, each with its
    /// field path, in that order.
    pub fn validate(&self, catalog: &Catalog<'_>, origin: &str) -> Result<ValidSpec, SpecError> {
        let mut c = Checker::default();
        self.check_run(&mut c);
        let (source_knobs, source_families) = self.check_sources(catalog, &mut c);
        let (piece_params, piece_kinds) = self.check_pieces(catalog, &mut c);
        let (episode_knobs, episode_families) = self.check_episodes(catalog, &mut c);
        let policy = self.check_policy(catalog, &mut c);
        let eval_sources = self.check_eval(&mut c);
        if !c.problems.is_empty() {
            return Err(SpecError { origin: origin.to_string(), problems: c.problems });
        }
        let (policy_kind, policy_params) = policy.expect("no problems implies a policy");
        Ok(ValidSpec {
            hash: content_hash(self.canonical_toml().as_bytes()),
            spec: self.clone(),
            source_knobs,
            source_families,
            piece_params,
            piece_kinds,
            episode_knobs,
            episode_families,
            policy_params,
            policy_kind,
            eval_sources,
        })
    }

    /// Name and run settings, within their limits.
    fn check_run(&self, c: &mut Checker) {
        if self.name.trim().is_empty() {
            c.push("name".into(), "must not be empty".into());
        }
        let run = &self.run;
        if run.steps == 0 || run.steps > limits::MAX_STEPS {
            c.push(
                "run.steps".into(),
                format!("{} is out of range: expected 1..={}", run.steps, limits::MAX_STEPS),
            );
        }
        if run.tasks_per_step == 0 || run.tasks_per_step > limits::MAX_TASKS_PER_STEP {
            c.push(
                "run.tasks_per_step".into(),
                format!(
                    "{} is out of range: expected 1..={}",
                    run.tasks_per_step,
                    limits::MAX_TASKS_PER_STEP
                ),
            );
        }
        if run.responses_per_task == 0 || run.responses_per_task > limits::MAX_RESPONSES_PER_TASK {
            c.push(
                "run.responses_per_task".into(),
                format!(
                    "{} is out of range: expected 1..={}",
                    run.responses_per_task,
                    limits::MAX_RESPONSES_PER_TASK
                ),
            );
        }
        let samples = run.tasks_per_step as u64 * run.responses_per_task as u64;
        if samples > limits::MAX_SAMPLES_PER_STEP {
            c.push(
                "run".into(),
                format!(
                    "tasks_per_step × responses_per_task = {samples} exceeds the limit of {} samples per step",
                    limits::MAX_SAMPLES_PER_STEP
                ),
            );
        }
    }

    /// Sources: ids, weights, known families and their knobs.
    fn check_sources(&self, catalog: &Catalog<'_>, c: &mut Checker) -> (Vec<Params>, Vec<FamilyInfo>) {
        // Sources.
        if self.sources.is_empty() {
            c.push("source".into(), "at least one [[source]] is required".into());
        }
        let mut source_knobs = Vec::new();
        let mut source_families = Vec::new();
        let mut weight_sum = 0.0;
        for (i, s) in self.sources.iter().enumerate() {
            let path = format!("source[{i}]");
            c.id(&s.id, path.clone());
            c.weight(s.weight, &format!("{path}.weight"));
            if s.weight.is_finite() && s.weight > 0.0 {
                weight_sum += s.weight;
            }
            match catalog.families.iter().find(|f| f.name == s.family) {
                None => c.push(
                    format!("{path}.family"),
                    format!(
                        "unknown family `{}`; known: {}",
                        s.family,
                        catalog.families.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(f) => match resolve(f.knobs, &s.knobs, &format!("{path}.knobs")) {
                    Ok(p) => {
                        source_knobs.push(p);
                        source_families.push(*f);
                    }
                    Err(ps) => c.problems.extend(ps),
                },
            }
        }
        if !self.sources.is_empty() && weight_sum <= 0.0 {
            c.push("source".into(), "source weights must not all be zero".into());
        }

        (source_knobs, source_families)
    }

    /// Pieces: ids, weights, known kinds, at most one curriculum and one hint, params.
    fn check_pieces(&self, catalog: &Catalog<'_>, c: &mut Checker) -> (Vec<Params>, Vec<PieceKindInfo>) {
        // Pieces.
        if self.pieces.len() > limits::MAX_PIECES {
            c.push(
                "piece".into(),
                format!("{} pieces exceed the limit of {}", self.pieces.len(), limits::MAX_PIECES),
            );
        }
        let mut piece_params = Vec::new();
        let mut piece_kinds = Vec::new();
        let mut seen_kinds: BTreeMap<PieceKind, usize> = BTreeMap::new();
        for (i, p) in self.pieces.iter().enumerate() {
            let path = format!("piece[{i}]");
            c.id(&p.id, path.clone());
            c.weight(p.weight, &format!("{path}.weight"));
            match catalog.pieces.iter().find(|k| k.name == p.kind) {
                None => c.push(
                    format!("{path}.kind"),
                    format!(
                        "unknown piece kind `{}`; known: {}",
                        p.kind,
                        catalog.pieces.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(k) => {
                    if matches!(k.kind, PieceKind::Curriculum | PieceKind::Hint) {
                        if let Some(first) = seen_kinds.insert(k.kind, i) {
                            c.push(
                                format!("{path}.kind"),
                                format!("only one {} piece is allowed (first at piece[{first}])", k.kind),
                            );
                        }
                    }
                    match resolve(k.params, &p.params, &format!("{path}.params")) {
                        Ok(params) => {
                            if k.kind == PieceKind::Curriculum {
                                let w = params.weights("source_weights");
                                if !w.is_empty() && w.len() != self.sources.len() {
                                    c.push(
                                        format!("{path}.params.source_weights"),
                                        format!(
                                            "has {} entries but the spec has {} sources",
                                            w.len(),
                                            self.sources.len()
                                        ),
                                    );
                                }
                            }
                            piece_params.push(params);
                            piece_kinds.push(*k);
                        }
                        Err(ps) => c.problems.extend(ps),
                    }
                }
            }
        }

        (piece_params, piece_kinds)
    }

    /// Multi-turn sources: ids, fork and episode counts, known families and knobs.
    fn check_episodes(
        &self,
        catalog: &Catalog<'_>,
        c: &mut Checker,
    ) -> (Vec<Params>, Vec<EpisodeFamilyInfo>) {
        // Episodes.
        let mut episode_knobs = Vec::new();
        let mut episode_families = Vec::new();
        for (i, e) in self.episodes.iter().enumerate() {
            let path = format!("episode[{i}]");
            c.id(&e.id, path.clone());
            if e.forks == 0 || e.forks > limits::MAX_FORKS {
                c.push(
                    format!("{path}.forks"),
                    format!("{} is out of range: expected 1..={}", e.forks, limits::MAX_FORKS),
                );
            }
            if e.episodes_per_step == 0 || e.episodes_per_step > limits::MAX_TASKS_PER_STEP {
                c.push(
                    format!("{path}.episodes_per_step"),
                    format!(
                        "{} is out of range: expected 1..={}",
                        e.episodes_per_step,
                        limits::MAX_TASKS_PER_STEP
                    ),
                );
            }
            match catalog.episodes.iter().find(|f| f.name == e.family) {
                None => c.push(
                    format!("{path}.family"),
                    format!(
                        "unknown multi-turn family `{}`; known: {}",
                        e.family,
                        catalog.episodes.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                    ),
                ),
                Some(f) => match resolve(f.knobs, &e.knobs, &format!("{path}.knobs")) {
                    Ok(p) => {
                        episode_knobs.push(p);
                        episode_families.push(*f);
                    }
                    Err(ps) => c.problems.extend(ps),
                },
            }
        }

        (episode_knobs, episode_families)
    }

    /// The policy kind and its params.
    fn check_policy(&self, catalog: &Catalog<'_>, c: &mut Checker) -> Option<(PolicyKindInfo, Params)> {
        // Policy.
        let mut policy = None;
        match catalog.policies.iter().find(|k| k.name == self.policy.kind) {
            None => c.push(
                "policy.kind".into(),
                format!(
                    "unknown policy kind `{}`; known: {}",
                    self.policy.kind,
                    catalog.policies.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            ),
            Some(k) => match resolve(k.params, &self.policy.params, "policy.params") {
                Ok(p) => policy = Some((*k, p)),
                Err(ps) => c.problems.extend(ps),
            },
        }

        policy
    }

    /// The eval suite: size, held-out fraction, and the sources it draws from.
    fn check_eval(&self, c: &mut Checker) -> Vec<usize> {
        // Eval suite.
        let eval = &self.eval;
        if eval.size == 0 || eval.size > limits::MAX_EVAL_SIZE {
            c.push(
                "eval.size".into(),
                format!("{} is out of range: expected 1..={}", eval.size, limits::MAX_EVAL_SIZE),
            );
        }
        if !(eval.fraction.is_finite() && eval.fraction > 0.0 && eval.fraction <= 0.9) {
            c.push(
                "eval.fraction".into(),
                format!("{} is out of range: expected a number in (0, 0.9]", eval.fraction),
            );
        }
        let mut eval_sources = Vec::new();
        match &eval.sources {
            None => eval_sources.extend(0..self.sources.len()),
            Some(names) => {
                if names.is_empty() {
                    c.push("eval.sources".into(), "must name at least one source".into());
                }
                let mut seen = BTreeSet::new();
                for (i, n) in names.iter().enumerate() {
                    match self.sources.iter().position(|s| &s.id == n) {
                        None => c.push(format!("eval.sources[{i}]"), format!("unknown source `{n}`")),
                        Some(j) => {
                            if !seen.insert(j) {
                                c.push(format!("eval.sources[{i}]"), format!("source `{n}` is listed twice"));
                            }
                            eval_sources.push(j);
                        }
                    }
                }
            }
        }

        eval_sources
    }
}

/// Problems found so far, and the ids seen (ids are unique across sources, pieces and
/// episodes).
#[derive(Default)]
struct Checker {
    problems: Vec<SpecProblem>,
    ids: BTreeMap<String, String>,
}

impl Checker {
    fn push(&mut self, path: String, message: String) {
        self.problems.push(SpecProblem::new(path, message));
    }

    fn id(&mut self, id: &str, path: String) {
        if id.trim().is_empty() {
            self.push(format!("{path}.id"), "must not be empty".into());
        } else if let Some(first) = self.ids.get(id) {
            let message = format!("duplicate id `{id}` (first used at {first})");
            self.push(format!("{path}.id"), message);
        } else {
            self.ids.insert(id.to_string(), path);
        }
    }

    fn weight(&mut self, w: f64, path: &str) {
        check_weight(w, path, &mut |p, m| self.push(p, m));
    }
}

fn check_weight(w: f64, path: &str, push: &mut dyn FnMut(String, String)) {
    if !w.is_finite() {
        push(path.to_string(), format!("{w} is not finite"));
    } else if w < 0.0 {
        push(path.to_string(), format!("{w} is negative; weights must be >= 0"));
    }
}
