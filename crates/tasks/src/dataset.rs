//! `dataset`: tasks read from a user's JSON Lines or Parquet file (as Hugging Face `datasets`
//! exports them), with a column mapping, and free-text gold answers.
//!
//! ```toml
//! [[source]]
//! id = "gsm"
//! kind = "dataset"
//! knobs = { path = "examples/data/word_problems.jsonl", prompt = "question", gold = "answer", gold_kind = "number" }
//! ```
//!
//! The file is indexed once when the environment is built (one streaming pass that validates
//! every row, so a malformed row fails the build with its file, line or row, and field); a
//! task draw then reads one row. Which row is drawn is a uniform from the task's keyed
//! stream, so the same seed gives the same tasks at any thread count; the train/eval split is
//! by the hash of the row's prompt content, as for every source ([`is_eval_content`]).
//!
//! Relative paths are resolved against the working directory of the process (the directory
//! `gristmill` is started in), not the spec file's directory: the same spec text names the
//! same file wherever it is stored, which keeps a stored spec replayable from the directory it
//! was run in.
//!
//! [`is_eval_content`]: gristmill_core::task::is_eval_content

use std::sync::Arc;

use gristmill_core::params::{ParamSpec, Params};
use gristmill_core::rng::KeyedRng;
use gristmill_core::task::{
    AnswerSpace, ChatMessage, FamilyInfo, Features, GoldKind, Reference, TaskBody, TaskSource,
};
use gristmill_data::{Index, Mapping, Metadata, Prompt, ReadOptions};
use rand::Rng;

/// The family name in specs.
pub const NAME: &str = "dataset";

const GOLD_KINDS: &[&str] = &["text", "number", "math", "choice", "tests"];

/// The dataset source's knobs.
pub const KNOBS: &[ParamSpec] = &[
    ParamSpec::text("path", "", "the JSON Lines (.jsonl/.json/.ndjson) or Parquet (.parquet) file; relative to the working directory"),
    ParamSpec::choice("format", &["auto", "jsonl", "parquet"], "auto", "file format (auto: from the extension)"),
    ParamSpec::text("prompt", "", "column holding the prompt: text, or chat messages [{role, content}] (default `prompt` when no other prompt knob is set)"),
    ParamSpec::text("messages", "", "column holding chat messages (instead of `prompt`)"),
    ParamSpec::text("template", "", "prompt rendered from the row: text with {column} placeholders, {{ and }} for braces (instead of `prompt`)"),
    ParamSpec::text("system", "", "system prompt put before every prompt (not part of the split's content hash)"),
    ParamSpec::text("gold", "answer", "column (dotted path allowed) holding the gold answer; empty for open-ended tasks graded by judges only (their gold metric is 0)"),
    ParamSpec::choice("gold_kind", GOLD_KINDS, "text", "what the gold is: text, number, math, choice (a letter) or tests (a list of unit tests)"),
    ParamSpec::text("id", "", "column holding each row's id (default: the row number)"),
    ParamSpec::text("solution", "", "top-level column holding a reference solution or response, written by the oracle policy (code tasks, open-ended tasks)"),
];

/// The catalog entry. Its `build` cannot read a file (it is infallible, for the procedural
/// families), so it gives a source that fails every draw; [`open`] is the real constructor,
/// and [`crate::open_source`] picks it for this family.
pub const INFO: FamilyInfo = FamilyInfo {
    name: NAME,
    doc: "Tasks read from a JSON Lines or Parquet file (as Hugging Face `datasets` exports them): a prompt \
          column (text or chat messages) or a template, a gold column whose kind (text, number, math, choice, \
          tests) the free-text verifiers read, an id, and every other column as metadata. Rows are drawn \
          uniformly from the task's keyed stream; the split is by prompt content.",
    answer_format: "free text; each verifier piece documents how it extracts the answer (e.g. `Answer: …`, \\boxed{…})",
    multi_turn: false,
    knobs: KNOBS,
    build: |_| Box::new(DatasetSource::unopened()),
};

/// Why a dataset source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The knobs do not describe a readable mapping.
    #[error("knob `{knob}`: {message}")]
    Knob {
        /// The knob at fault.
        knob: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read or a row is malformed (the error names file, row, field).
    #[error(transparent)]
    Data(#[from] gristmill_data::Error),
}

/// A dataset opened and indexed: draws rows as tasks. (The catalog's infallible `build` gives
/// one without an index, which fails every draw by saying so.)
pub struct DatasetSource {
    index: Option<Index<Mapping>>,
    kind: GoldKind,
    has_gold: bool,
    solution: Option<String>,
}

impl std::fmt::Debug for DatasetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatasetSource")
            .field("path", &self.index.as_ref().map(|i| i.path()))
            .field("rows", &self.rows())
            .finish()
    }
}

fn knob_text<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    Some(params.text(name)).filter(|s| !s.is_empty())
}

/// The column mapping the knobs describe.
pub fn mapping(params: &Params) -> Result<Mapping, DatasetError> {
    let prompt_knobs: Vec<&'static str> =
        ["prompt", "messages", "template"].into_iter().filter(|k| knob_text(params, k).is_some()).collect();
    if prompt_knobs.len() > 1 {
        return Err(DatasetError::Knob {
            knob: prompt_knobs[1],
            message: format!(
                "give one of `prompt`, `messages`, `template`, not {}",
                prompt_knobs.join(" and ")
            ),
        });
    }
    let mut mapping = if let Some(t) = knob_text(params, "template") {
        Mapping::template(t).map_err(|e| DatasetError::Knob { knob: "template", message: e.to_string() })?
    } else if let Some(m) = knob_text(params, "messages") {
        Mapping::messages(m)
    } else {
        Mapping::auto(knob_text(params, "prompt").unwrap_or("prompt"))
    };
    // An empty `gold` means open-ended tasks (graded by judges only): no gold column is read.
    if let Some(gold) = knob_text(params, "gold") {
        mapping = mapping.gold(gold).require_gold();
    }
    mapping = mapping.metadata(Metadata::All);
    if let Some(id) = knob_text(params, "id") {
        mapping = mapping.id(id);
    }
    if let Some(system) = knob_text(params, "system") {
        mapping = mapping.system_prompt(system);
    }
    Ok(mapping)
}

/// Opens and indexes the dataset the knobs name (one streaming pass over the file).
pub fn open(params: &Params) -> Result<DatasetSource, DatasetError> {
    let path = knob_text(params, "path")
        .ok_or(DatasetError::Knob { knob: "path", message: "a dataset source needs a file path".into() })?;
    let format = match params.choice("format") {
        "jsonl" => Some(gristmill_data::Format::JsonLines),
        "parquet" => Some(gristmill_data::Format::Parquet),
        _ => None,
    };
    let mut options = ReadOptions::default();
    options.format = format;
    let kind = GoldKind::from_name(params.choice("gold_kind")).unwrap_or(GoldKind::Text);
    let index = Index::build(path, mapping(params)?, &options)?;
    if index.is_empty() {
        return Err(DatasetError::Knob { knob: "path", message: format!("{path}: the file holds no rows") });
    }
    Ok(DatasetSource {
        index: Some(index),
        kind,
        has_gold: knob_text(params, "gold").is_some(),
        solution: knob_text(params, "solution").map(str::to_owned),
    })
}

impl DatasetSource {
    fn unopened() -> DatasetSource {
        DatasetSource { index: None, kind: GoldKind::Text, has_gold: false, solution: None }
    }
    fn index(&self) -> Result<&Index<Mapping>, String> {
        self.index.as_ref().ok_or_else(|| {
            "a dataset source must be opened with gristmill_tasks::open_source (it reads a file)".into()
        })
    }
    /// Rows in the file (0 before it is opened).
    pub fn rows(&self) -> u64 {
        self.index.as_ref().map_or(0, |i| i.len())
    }
    /// The file's length and BLAKE3 digest, for the run record.
    pub fn digest(&self) -> Option<&gristmill_data::FileDigest> {
        self.index.as_ref().map(|i| i.digest())
    }
    /// The reference of row `i` and the prompt text, as a draw would produce them.
    pub fn row(&self, i: u64, prompt: &mut String) -> Result<Reference, String> {
        let index = self.index()?;
        let row = index.get(i).map_err(|e| e.to_string())?;
        // The index hashed every row's prompt content when it was built.
        let hash = index.content_hash(i).ok_or_else(|| format!("row {i} is not in the index"))?;
        let mut metadata = row.metadata;
        let solution = match &self.solution {
            None => None,
            Some(col) => match metadata.remove(col) {
                Some(serde_json::Value::String(s)) => Some(s),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => {
                    return Err(format!(
                        "{}: row {}: field `{col}`: expected a string solution, found {}",
                        index.path().display(),
                        row.position.number,
                        json_type(&other)
                    ))
                }
            },
        };
        let gold = row.gold.unwrap_or(serde_json::Value::Null);
        if self.has_gold {
            check_gold(self.kind, &gold).map_err(|why| {
                format!("{}: row {}: gold: {why}", index.path().display(), row.position.number)
            })?;
        }
        prompt.clear();
        let messages = match row.prompt {
            Prompt::Text(t) => {
                prompt.push_str(&t);
                Vec::new()
            }
            Prompt::Messages(ms) => {
                for (k, m) in ms.iter().enumerate() {
                    if k > 0 {
                        prompt.push_str("\n\n");
                    }
                    prompt.push_str(&m.role);
                    prompt.push_str(": ");
                    prompt.push_str(&m.content);
                }
                ms.into_iter().map(|m| ChatMessage { role: m.role, content: m.content }).collect()
            }
        };
        Ok(Reference { id: row.id, kind: self.kind, gold, solution, messages, metadata, content_hash: hash })
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A gold value must be of a shape its kind can be checked against: text for most kinds (a
/// number is accepted for `number`, `math` and `text`), a non-empty list for `tests`.
fn check_gold(kind: GoldKind, gold: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match (kind, gold) {
        (GoldKind::Tests, Value::Array(a)) if !a.is_empty() => Ok(()),
        (GoldKind::Tests, other) => {
            Err(format!("expected a non-empty list of tests, found {}", json_type(other)))
        }
        (GoldKind::Choice, Value::String(s)) if s.trim().chars().count() == 1 => Ok(()),
        (GoldKind::Choice, other) => Err(format!("expected one letter, found {other}")),
        (_, Value::String(s)) if !s.trim().is_empty() => Ok(()),
        (_, Value::Number(_)) => Ok(()),
        (k, other) => Err(format!("expected {} gold as text, found {}", k.name(), json_type(other))),
    }
}

impl TaskSource for DatasetSource {
    fn family(&self) -> &'static str {
        NAME
    }
    fn answers(&self) -> AnswerSpace {
        AnswerSpace { lo: 0, size: 0 }
    }
    fn feature_dim(&self) -> usize {
        0
    }
    fn generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, features: Features) {
        // Infallible callers get an empty prompt on a read error; the engine calls
        // `try_generate_into`, which reports it.
        if self.try_generate_into(rng, body, features).is_err() {
            body.prompt.clear();
            body.reference = None;
        }
    }
    fn try_generate_into(&self, rng: &mut KeyedRng, body: &mut TaskBody, _: Features) -> Result<(), String> {
        let i = rng.random_range(0..self.index()?.len());
        let reference = self.row(i, &mut body.prompt)?;
        body.features.clear();
        body.gold = 0;
        body.reference = Some(Arc::new(reference));
        Ok(())
    }
    fn free_text(&self) -> bool {
        true
    }
    fn data_digest(&self) -> Option<String> {
        self.digest().map(|d| d.hex())
    }
    fn parse_answer(&self, _text: &str) -> Result<i64, gristmill_core::ParseError> {
        // Free-text tasks have no integer answer; verifier pieces read the text.
        Err(gristmill_core::ParseError::Missing)
    }
}
