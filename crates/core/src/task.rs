//! Tasks, task sources and their finite answer spaces.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{ParseError, TaskError};
use crate::params::{ParamSpec, Params};
use crate::rng::{stream, KeyedRng, Purpose};

/// A finite, enumerable answer space: the integers `lo .. lo + size`.
///
/// Every family maps its answers to integers (a comparison's `<`, `=`, `>` to −1, 0, 1; a
/// base-conversion answer to its value), which lets exact policies put logits over the space
/// and lets pieces such as an off-by-k verifier compare answers numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct AnswerSpace {
    /// Smallest answer.
    pub lo: i64,
    /// Number of answers.
    pub size: u32,
}

impl AnswerSpace {
    /// The space `lo..=hi`.
    pub fn inclusive(lo: i64, hi: i64) -> Self {
        debug_assert!(hi >= lo);
        AnswerSpace { lo, size: (hi - lo + 1) as u32 }
    }
    /// Largest answer.
    pub fn hi(&self) -> i64 {
        self.lo + self.size as i64 - 1
    }
    /// Whether `v` is in the space.
    pub fn contains(&self, v: i64) -> bool {
        v >= self.lo && v <= self.hi()
    }
    /// Position of `v` in the space.
    pub fn index_of(&self, v: i64) -> Option<usize> {
        self.contains(v).then(|| (v - self.lo) as usize)
    }
    /// The answer at position `i`.
    pub fn value(&self, i: usize) -> i64 {
        self.lo + i as i64
    }
}

/// Which side of the train/eval partition a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training tasks.
    Train,
    /// Gold evaluation tasks, never seen in training.
    Eval,
}

impl Split {
    /// `train` or `eval`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Eval => "eval",
        }
    }
}

/// Names a task uniquely: regenerating from the key gives the same task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskKey {
    /// Seed of the batch or suite the task was drawn in.
    pub seed: u64,
    /// Position of the task's source in the spec.
    pub source: u32,
    /// Position of the task within its batch or suite.
    pub index: u64,
    /// Train or eval.
    pub split: Split,
}

impl TaskKey {
    /// Feeds the key's fields to a digest (cheaper than its text, and equally unique).
    pub fn digest_into(&self, d: &mut crate::digest::Digest) {
        d.u64(self.seed).u64(u64::from(self.source)).u64(self.index).u64(self.split as u64);
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.split {
            Split::Train => 't',
            Split::Eval => 'e',
        };
        write!(f, "{s}{:016x}-{}-{}", self.seed, self.source, self.index)
    }
}

impl FromStr for TaskKey {
    type Err = TaskError;
    fn from_str(text: &str) -> Result<Self, TaskError> {
        let bad = |why: &str| TaskError::BadKey { key: text.to_string(), why: why.to_string() };
        let split = match text.chars().next() {
            Some('t') => Split::Train,
            Some('e') => Split::Eval,
            _ => return Err(bad("must start with `t` (train) or `e` (eval)")),
        };
        let mut parts = text[1..].split('-');
        let seed = parts
            .next()
            .and_then(|p| u64::from_str_radix(p, 16).ok())
            .ok_or_else(|| bad("seed is not hex"))?;
        let source =
            parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| bad("source is not a number"))?;
        let index = parts.next().and_then(|p| p.parse().ok()).ok_or_else(|| bad("index is not a number"))?;
        if parts.next().is_some() {
            return Err(bad("too many parts"));
        }
        Ok(TaskKey { seed, source, index, split })
    }
}

impl serde::Serialize for TaskKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a family generates: the visible prompt, the feature encoding, and the gold answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskBody {
    /// Plain-text prompt, ending with the family's answer-format instruction.
    pub prompt: String,
    /// Task encoding for learned policies; length is the source's `feature_dim()`.
    pub features: Vec<f64>,
    /// The gold answer (in the source's answer space). `0` for free-text tasks, whose gold
    /// is in [`reference`](TaskBody::reference).
    pub gold: i64,
    /// The free-text reference of a task drawn from a user's dataset: its gold answer of any
    /// [`GoldKind`], its chat messages and metadata. `None` for the integer families. Shared,
    /// not copied: a dataset row is read once per draw and handed to every piece.
    pub reference: Option<Arc<Reference>>,
}

/// What kind of thing a free-text task's gold answer is, which decides how the engine's gold
/// metric checks a response (pieces may check it any way they like).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldKind {
    /// A string, compared after normalization (case, whitespace, punctuation).
    Text,
    /// A number (integer, decimal, fraction, percentage…), compared with a tolerance.
    Number,
    /// A math answer (LaTeX-ish), compared by equivalence.
    Math,
    /// A multiple-choice letter.
    Choice,
    /// A list of unit tests a code solution must pass.
    Tests,
}

impl GoldKind {
    /// Every kind, in declaration order.
    pub const ALL: [GoldKind; 5] =
        [GoldKind::Text, GoldKind::Number, GoldKind::Math, GoldKind::Choice, GoldKind::Tests];

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            GoldKind::Text => "text",
            GoldKind::Number => "number",
            GoldKind::Math => "math",
            GoldKind::Choice => "choice",
            GoldKind::Tests => "tests",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<GoldKind> {
        GoldKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One chat message of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`…
    pub role: String,
    /// The text.
    pub content: String,
}

/// The reference data of a free-text task: what a verifier compares a response with.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The row's id in its dataset.
    pub id: String,
    /// What the gold answer is.
    pub kind: GoldKind,
    /// The gold answer as the data holds it (a string or number; for [`GoldKind::Tests`], a
    /// list of tests).
    pub gold: serde_json::Value,
    /// A reference solution (code tasks), if the data has one.
    pub solution: Option<String>,
    /// The prompt as chat messages (empty when the prompt is plain text); `TaskBody::prompt`
    /// holds their rendering as text.
    pub messages: Vec<ChatMessage>,
    /// The row's other columns, passed to pieces.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Hash of the prompt's content (not of its system prompt or template), which places
    /// the task on one side of the train/eval partition.
    pub content_hash: u64,
}

impl Reference {
    /// The gold answer as text: a string as it is, anything else as JSON.
    pub fn gold_text(&self) -> Cow<'_, str> {
        match &self.gold {
            serde_json::Value::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        }
    }

    /// Writes the text of a response that a perfect solver would give into `out` (cleared
    /// first): `Answer: <gold>` for answers, the reference solution in a fenced block for
    /// tests, the reference response of an open-ended task (no gold). Fails when the data
    /// has no such reference.
    pub fn render_gold_into(&self, out: &mut String) -> Result<(), String> {
        out.clear();
        match self.kind {
            GoldKind::Tests => {
                let solution = self
                    .solution
                    .as_deref()
                    .ok_or_else(|| format!("row `{}` has tests but no reference solution", self.id))?;
                out.push_str("```python\n");
                out.push_str(solution);
                if !solution.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str("```");
            }
            _ if self.gold.is_null() => {
                // An open-ended task: its reference response, if the data has one.
                let solution = self.solution.as_deref().ok_or_else(|| {
                    format!("row `{}` has neither a gold answer nor a reference response", self.id)
                })?;
                out.push_str(solution);
            }
            _ => {
                out.push_str("Answer: ");
                out.push_str(&self.gold_text());
            }
        }
        Ok(())
    }
}

/// One task: an observation for the policy plus hidden gold data.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The key that regenerates this task.
    pub key: TaskKey,
    /// The generated body.
    pub body: TaskBody,
    /// The answer space (the source's).
    pub answers: AnswerSpace,
    /// A hint shown with this task, if the hint piece chose to show one: the last decimal
    /// digit of the gold answer's absolute value. Evaluation never shows hints.
    pub hint: Option<u8>,
}

impl Task {
    /// A placeholder task with empty buffers (and an empty answer space), to be filled by
    /// [`generate_task_into`].
    pub fn empty() -> Task {
        Task {
            key: TaskKey { seed: 0, source: 0, index: 0, split: Split::Train },
            body: TaskBody::default(),
            answers: AnswerSpace { lo: 0, size: 0 },
            hint: None,
        }
    }
    /// The gold answer.
    pub fn gold(&self) -> i64 {
        self.body.gold
    }
    /// The text the policy reads: the prompt, plus the hint line when one is shown.
    pub fn observation_text(&self) -> String {
        match self.hint {
            Some(d) => format!("{}\nHint: the answer's last digit is {d}.", self.body.prompt),
            None => self.body.prompt.clone(),
        }
    }
    /// The hint digit for this task's gold answer.
    pub fn hint_digit(&self) -> u8 {
        (self.body.gold.unsigned_abs() % 10) as u8
    }
}

/// Whether a generated task body carries its feature encoding. Only learned policies read
/// features; skipping them leaves `TaskBody::features` empty and changes nothing else (the
/// encoding never draws randomness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// Compute the feature vector.
    Encode,
    /// Leave it empty.
    Skip,
}

/// A configured, seeded procedural generator of tasks.
pub trait TaskSource: Send + Sync {
    /// The family name (e.g. `addition`).
    fn family(&self) -> &'static str;
    /// The answer space shared by all tasks of this source.
    fn answers(&self) -> AnswerSpace;
    /// Length of every task's feature vector.
    fn feature_dim(&self) -> usize;
    /// Draws one task body into `body`, overwriting all of it and reusing its buffers (a
    /// rollout loop regenerates thousands of tasks into the same allocations); with
    /// [`Features::Skip`] the feature vector is left empty. All randomness comes from `rng`,
    /// and the draws do not depend on `features`.
    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features);
    /// [`generate_into`](TaskSource::generate_into) for sources that can fail (a dataset
    /// whose file cannot be read): the procedural families never do, and keep the default.
    fn try_generate_into(
        &self,
        rng: &mut KeyedRng,
        body: &mut TaskBody,
        features: Features,
    ) -> Result<(), String> {
        self.generate_into(rng, body, features);
        Ok(())
    }
    /// Whether tasks carry a free-text [`Reference`] instead of an integer answer space
    /// (policies that choose among integers cannot answer them).
    fn free_text(&self) -> bool {
        false
    }
    /// The identity of the outside data the source draws from (a dataset file's BLAKE3 in
    /// hex), so that a run records exactly what it read and a replay can tell when the file
    /// changed; `None` for a procedural family, which the spec alone determines.
    fn data_digest(&self) -> Option<String> {
        None
    }
    /// Draws one task body, with features. All randomness comes from `rng`.
    fn generate(&self, rng: &mut KeyedRng) -> TaskBody {
        let mut body = TaskBody::default();
        self.generate_into(rng, &mut body, Features::Encode);
        body
    }
    /// Writes the canonical text of an answer, as a well-behaved response would write it,
    /// into `out` (cleared first). By default the integer rule's `Answer: <integer>`.
    fn render_answer_into(&self, value: i64, out: &mut String) {
        render_integer_answer(value, out);
    }
    /// The canonical text of an answer, as a well-behaved response would write it.
    fn render_answer(&self, value: i64) -> String {
        let mut out = String::new();
        self.render_answer_into(value, &mut out);
        out
    }
    /// Parses an answer from free response text, by the family's documented rule. By default
    /// the integer rule ([`parse_integer_answer`]) over the source's answer space.
    fn parse_answer(&self, text: &str) -> Result<i64, ParseError> {
        parse_integer_answer(text, self.answers())
    }
}

/// A task family as listed by `gristmill tasks`: its knobs and its constructor.
#[derive(Clone, Copy)]
pub struct FamilyInfo {
    /// Family name used in specs.
    pub name: &'static str,
    /// One paragraph.
    pub doc: &'static str,
    /// The documented answer format (what a response must contain).
    pub answer_format: &'static str,
    /// Whether episodes are multi-turn (those have no single-turn `TaskSource`).
    pub multi_turn: bool,
    /// Difficulty knobs.
    pub knobs: &'static [ParamSpec],
    /// Builds a source from resolved knobs.
    pub build: fn(&Params) -> Box<dyn TaskSource>,
}

impl fmt::Debug for FamilyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FamilyInfo").field("name", &self.name).finish()
    }
}

/// How many draws a split may take before the universe is declared too small.
pub const SPLIT_ATTEMPTS: u32 = 4096;

/// Whether a task body belongs to the eval side of the partition. The partition is by
/// content (a hash of the prompt), so a task is eval-only or train-only wherever it is drawn:
/// the gold suite is disjoint from training by construction.
///
/// The hash is XXH3-64 (seed 0) of the prompt's bytes: a frozen, specified function, so the
/// partition never moves, and cheap enough to run on every generated task (a cryptographic
/// hash cost a fifth of a rollout). Collisions only matter if they are adversarial, and
/// prompts are ours.
///
/// A free-text task is placed by its [`Reference::content_hash`] instead: the hash of the
/// row's prompt content as the data holds it, so editing a system prompt or a template does
/// not move rows between the splits.
#[inline]
pub fn is_eval_content(body: &TaskBody, eval_fraction: f64) -> bool {
    let h = match &body.reference {
        Some(r) => r.content_hash,
        None => xxhash_rust::xxh3::xxh3_64(body.prompt.as_bytes()),
    };
    // The top 53 bits as a uniform in [0, 1): exact in f64, so the threshold is exact too.
    ((h >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < eval_fraction
}

/// Generates the task named by `key` from `source`, redrawing until it falls on the key's
/// side of the content partition.
pub fn generate_task(
    source: &dyn TaskSource,
    source_id: &str,
    key: TaskKey,
    eval_fraction: f64,
) -> Result<Task, TaskError> {
    let mut task = Task::empty();
    generate_task_into(source, source_id, key, eval_fraction, Features::Encode, &mut task)?;
    Ok(task)
}

/// [`generate_task`] into an existing task, reusing its buffers, with or without features.
/// On success every field of `task` is overwritten (the hint is cleared); on error its body
/// is unspecified.
pub fn generate_task_into(
    source: &dyn TaskSource,
    source_id: &str,
    key: TaskKey,
    eval_fraction: f64,
    features: Features,
    task: &mut Task,
) -> Result<(), TaskError> {
    let mut rng = stream(key.seed, Purpose::TASK, key.source as u64, key.index);
    let want_eval = key.split == Split::Eval;
    // A source that does not set a reference must not inherit the last task's.
    task.body.reference = None;
    for _ in 0..SPLIT_ATTEMPTS {
        source
            .try_generate_into(&mut rng, &mut task.body, features)
            .map_err(|message| TaskError::Source { source_id: source_id.to_string(), message })?;
        if is_eval_content(&task.body, eval_fraction) == want_eval {
            task.key = key;
            task.answers = source.answers();
            task.hint = None;
            return Ok(());
        }
    }
    Err(TaskError::SplitExhausted {
        source_id: source_id.to_string(),
        split: key.split.name(),
        attempts: SPLIT_ATTEMPTS,
    })
}

/// Parses the text after the last `Answer:` marker (case-insensitive), trimmed and with a
/// trailing period removed. Families share this rule; each then reads its own format.
pub fn answer_text(text: &str) -> Result<&str, ParseError> {
    // The last `answer:`, ignoring ASCII case, found without lowercasing a copy: the marker
    // is ASCII, so a match always starts on a character boundary.
    const MARKER: &[u8] = b"answer:";
    let pos = text
        .as_bytes()
        .windows(MARKER.len())
        .rposition(|w| w.eq_ignore_ascii_case(MARKER))
        .ok_or(ParseError::Missing)?;
    let rest = &text[pos + "answer:".len()..];
    let line = rest.lines().next().unwrap_or("").trim();
    let line = line.strip_suffix('.').unwrap_or(line).trim();
    if line.is_empty() {
        return Err(ParseError::Missing);
    }
    Ok(line)
}

/// Writes `Answer: <v>` into `out` (cleared first): the canonical text of an integer answer.
pub fn render_integer_answer(v: i64, out: &mut String) {
    out.clear();
    out.push_str("Answer: ");
    out.push_str(itoa::Buffer::new().format(v));
}

/// Parses a decimal integer answer (after `Answer:`) and checks it is in `space`.
pub fn parse_integer_answer(text: &str, space: AnswerSpace) -> Result<i64, ParseError> {
    let s = answer_text(text)?;
    let v: i64 = s.parse().map_err(|_| ParseError::Malformed(s.to_string()))?;
    if !space.contains(v) {
        return Err(ParseError::OutOfSpace(s.to_string()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_key_round_trips() {
        let k = TaskKey { seed: 0xdead_beef, source: 3, index: 17, split: Split::Eval };
        let s = k.to_string();
        assert_eq!(s, "e00000000deadbeef-3-17");
        assert_eq!(s.parse::<TaskKey>().unwrap(), k);
        assert!("x1-2-3".parse::<TaskKey>().is_err());
        assert!("t1-2".parse::<TaskKey>().is_err());
        assert!("t1-2-3-4".parse::<TaskKey>().is_err());
    }

    #[test]
    fn answer_parsing_rule() {
        let space = AnswerSpace::inclusive(0, 99);
        assert_eq!(parse_integer_answer("I think... Answer: 42", space), Ok(42));
        assert_eq!(parse_integer_answer("answer: 7.\nmore", space), Ok(7));
        assert_eq!(parse_integer_answer("Answer: 1\nAnswer: 3", space), Ok(3));
        assert_eq!(parse_integer_answer("42", space), Err(ParseError::Missing));
        assert_eq!(parse_integer_answer("Answer: x", space), Err(ParseError::Malformed("x".into())));
        assert_eq!(parse_integer_answer("Answer: 100", space), Err(ParseError::OutOfSpace("100".into())));
        // Any ASCII case, the last marker wins, and text around it may be non-ASCII.
        assert_eq!(parse_integer_answer("ANSWER: 5 — änswer: 6, AnSwEr: 8", space), Ok(8));
        assert_eq!(parse_integer_answer("é answer:9é", space), Err(ParseError::Malformed("9é".into())));
        assert_eq!(parse_integer_answer("answer", space), Err(ParseError::Missing));
    }

    #[test]
    fn answer_space_indexing() {
        let s = AnswerSpace::inclusive(-1, 1);
        assert_eq!(s.size, 3);
        assert_eq!(s.index_of(-1), Some(0));
        assert_eq!(s.index_of(2), None);
        assert_eq!(s.value(2), 1);
    }
}
