//! Candidate pools: one row per prompt with a list of candidate responses.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorKind, FieldError};
use crate::mapping::{wrong, Mapper, Mapping, Needs, Position, Prompt};
use crate::path::FieldPath;

/// One candidate response of a pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The response text (required).
    pub text: String,
    /// The candidate's logit under the policy that produced the pool (default 0).
    pub logit: f64,
    /// The candidate's gold score, if known.
    pub gold: Option<f64>,
    /// Named scores (a reward model, a verifier…), by column.
    pub scores: BTreeMap<String, f64>,
    /// Other fields, kept only with [`PoolMapping::keep_extra_fields`].
    pub extra: Map<String, Value>,
}

/// One candidate pool: a prompt and its candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    /// The row's id (see [`Row::id`](crate::Row::id)).
    pub id: String,
    /// The prompt.
    pub prompt: Prompt,
    /// The gold answer, if the mapping names one and the row's is not null.
    pub gold: Option<Value>,
    /// The candidates (never empty).
    pub candidates: Vec<Candidate>,
    /// Metadata columns passed through (the candidate column is never among them).
    pub metadata: Map<String, Value>,
    /// Where the row is in its file.
    pub position: Position,
}

/// How to read a candidate pool: a [`Mapping`] for the prompt, gold, id and metadata, plus
/// the column holding the candidates, a list of objects
/// `{"text": str, "logit": number?, "gold": number?, "scores": {name: number}?}`.
///
/// A null field of a candidate counts as absent (a Parquet list of structs cannot tell them
/// apart, and a NaN read from Parquet is null): a null logit is 0, a null score is left out.
///
/// ```
/// use gristmill_data::{Mapping, PoolMapping};
/// let pools = PoolMapping::new(Mapping::text("prompt").gold("gold").id("id"));
/// # let _ = pools;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolMapping {
    base: Mapping,
    candidates: FieldPath,
    keep_extra: bool,
}

impl PoolMapping {
    /// Pools whose candidates are in the column `candidates`.
    pub fn new(base: Mapping) -> Self {
        PoolMapping { base, candidates: FieldPath::new("candidates"), keep_extra: false }
    }

    /// The candidates are at `path` instead.
    pub fn candidates(mut self, path: impl Into<FieldPath>) -> Self {
        self.candidates = path.into();
        self
    }

    /// Keeps unknown candidate fields in [`Candidate::extra`] instead of reporting them as
    /// [`ErrorKind::UnknownCandidateField`].
    pub fn keep_extra_fields(mut self) -> Self {
        self.keep_extra = true;
        self
    }

    fn parse_candidates(&self, record: &Map<String, Value>) -> Result<Vec<Candidate>, FieldError> {
        let field = self.candidates.as_str();
        let items = match self.candidates.lookup(record)? {
            Value::Array(items) => items,
            other => return Err(wrong(field, "a list of candidates", other)),
        };
        if items.is_empty() {
            return Err(FieldError::new(field, ErrorKind::EmptyPool));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.parse_candidate(item, &format!("{field}[{i}]")))
            .collect()
    }

    fn parse_candidate(&self, item: &Value, at: &str) -> Result<Candidate, FieldError> {
        let object = match item {
            Value::Object(object) => object,
            other => return Err(wrong(at, "a candidate object", other)),
        };
        let mut candidate = Candidate {
            text: String::new(),
            logit: 0.0,
            gold: None,
            scores: BTreeMap::new(),
            extra: Map::new(),
        };
        let mut has_text = false;
        for (key, value) in object {
            let here = || format!("{at}.{key}");
            match key.as_str() {
                "text" => match value {
                    Value::String(s) => {
                        candidate.text = s.clone();
                        has_text = true;
                    }
                    other => return Err(wrong(&here(), "a string", other)),
                },
                "logit" => match value {
                    Value::Null => {}
                    Value::Number(n) => candidate.logit = n.as_f64().unwrap_or(f64::NAN),
                    other => return Err(wrong(&here(), "a number", other)),
                },
                "gold" => match value {
                    Value::Null => {}
                    Value::Number(n) => candidate.gold = n.as_f64(),
                    other => return Err(wrong(&here(), "a number", other)),
                },
                "scores" => match value {
                    Value::Null => {}
                    Value::Object(scores) => {
                        for (name, score) in scores {
                            match score {
                                Value::Null => {}
                                Value::Number(n) => {
                                    candidate.scores.insert(name.clone(), n.as_f64().unwrap_or(f64::NAN));
                                }
                                other => {
                                    return Err(wrong(&format!("{at}.scores.{name}"), "a number", other))
                                }
                            }
                        }
                    }
                    other => return Err(wrong(&here(), "an object of numbers", other)),
                },
                _ if self.keep_extra => {
                    candidate.extra.insert(key.clone(), value.clone());
                }
                _ => return Err(FieldError::new(here(), ErrorKind::UnknownCandidateField)),
            }
        }
        if !has_text {
            return Err(FieldError::new(
                format!("{at}.text"),
                ErrorKind::Missing { available: crate::path::keys(object) },
            ));
        }
        Ok(candidate)
    }
}

impl Mapper for PoolMapping {
    type Row = PoolRow;

    fn needs(&self) -> Needs {
        let mut needs = self.base.needs();
        needs.paths.push(self.candidates.clone());
        needs
    }

    fn map(&self, record: Map<String, Value>, position: Position) -> Result<PoolRow, FieldError> {
        let candidates = self.parse_candidates(&record)?;
        let row = self.base.map_with(record, position, &[self.candidates.column()])?;
        Ok(PoolRow {
            id: row.id,
            prompt: row.prompt,
            gold: row.gold,
            candidates,
            metadata: row.metadata,
            position: row.position,
        })
    }

    fn content_bytes<'a>(&self, row: &'a PoolRow) -> Cow<'a, [u8]> {
        self.base.content_bytes_of(&row.prompt)
    }
}
