//! Rows, prompts, and the column mapping that turns a record (one JSON line, one Parquet
//! row) into a [`Row`].

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorKind, FieldError};
use crate::path::{json_type, keys, FieldPath};
use crate::template::Template;

/// One chat message, as Hugging Face chat datasets store them (`{"role": …, "content": …}`).
/// Other keys of a message object are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, or whatever the data says.
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }
}

/// A prompt: plain text, or a list of chat messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prompt {
    /// Plain text.
    Text(String),
    /// Chat messages, in order (never empty).
    Messages(Vec<Message>),
}

impl Prompt {
    /// The prompt's content bytes, the input of a content hash (for a train/eval split by
    /// content):
    ///
    /// * a text prompt: its UTF-8 bytes, exactly;
    /// * one `user` message alone: its content's UTF-8 bytes (so a dataset gives the same
    ///   bytes whether it stores the prompt as text or as a single-turn chat);
    /// * any other list of messages: the compact JSON array of `{"role":…,"content":…}`
    ///   objects, keys in that order, as `serde_json` writes it (no spaces, non-ASCII
    ///   characters unescaped).
    ///
    /// No Unicode or whitespace normalization is applied. [`Mapper::content_bytes`] is what
    /// the [`Index`](crate::Index) hashes: the same bytes with the mapping's system prompt left
    /// out.
    pub fn content_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Prompt::Text(text) => Cow::Borrowed(text.as_bytes()),
            Prompt::Messages(messages) => messages_content_bytes(messages),
        }
    }

    /// The text of a text prompt.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Prompt::Text(text) => Some(text),
            Prompt::Messages(_) => None,
        }
    }

    /// The messages of a chat prompt.
    pub fn as_messages(&self) -> Option<&[Message]> {
        match self {
            Prompt::Text(_) => None,
            Prompt::Messages(messages) => Some(messages),
        }
    }
}

fn messages_content_bytes(messages: &[Message]) -> Cow<'_, [u8]> {
    match messages {
        [only] if only.role == "user" => Cow::Borrowed(only.content.as_bytes()),
        _ => Cow::Owned(serde_json::to_vec(messages).expect("messages serialize")),
    }
}

/// The XXH3-64 hash (seed 0) of content bytes: what [`Index::content_hash`](crate::Index)
/// records for each row. It is the hash gristmill's task sources use for their train/eval
/// partition, so a text prompt hashes as the same text generated in process would.
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Where a row is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// 0-based index among the file's rows: the `i` of [`Index::get`](crate::Index::get).
    pub index: u64,
    /// 1-based line number in a JSON Lines file (blank lines count, though they hold no row),
    /// or 1-based row number in a Parquet file.
    pub number: u64,
}

/// One row of a dataset, mapped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The row's id: the id column's string (or integer, written in decimal), or by default
    /// the 0-based row index in decimal.
    pub id: String,
    /// The prompt (with the mapping's template and system prompt applied).
    pub prompt: Prompt,
    /// The gold answer, as the data holds it: `None` when the mapping names no gold column or
    /// the row's gold is null.
    pub gold: Option<Value>,
    /// The metadata columns passed through (keyed by column name, or by the dotted path for
    /// listed nested fields).
    pub metadata: Map<String, Value>,
    /// Where the row is in its file.
    pub position: Position,
}

/// Where the prompt comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptSource {
    /// A column holding text.
    Text(FieldPath),
    /// A column holding chat messages: a non-empty list of `{role, content}` objects.
    Messages(FieldPath),
    /// A column holding either (decided row by row: a string is text, a list is messages).
    Auto(FieldPath),
    /// Text rendered from a template over the row's columns.
    Template(Template),
}

/// Which columns pass through as metadata.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Metadata {
    /// Every top-level column the mapping does not otherwise read (the prompt column or the
    /// template's variables' columns, the gold column and the id column are left out, whole,
    /// even when only a nested field of them is read).
    #[default]
    All,
    /// These fields only (dotted paths allowed; each must be present in every row, null
    /// allowed).
    Columns(Vec<FieldPath>),
    /// No metadata.
    None,
}

/// What a [`Mapper`] reads from each record: the fields it needs (checked against a Parquet
/// schema when the file is opened) and whether it reads every column.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Fields read from every row.
    pub paths: Vec<FieldPath>,
    /// Whether every column must be decoded (otherwise only the paths' top-level columns are).
    pub all_columns: bool,
}

impl Needs {
    /// The top-level columns to decode, or `None` for all of them.
    pub fn columns(&self) -> Option<BTreeSet<String>> {
        if self.all_columns {
            None
        } else {
            Some(self.paths.iter().map(|p| p.column().to_owned()).collect())
        }
    }
}

/// Turns one record of a file (a JSON object: a JSON line, or a Parquet row converted to
/// JSON) into a typed row. [`Mapping`] and [`PoolMapping`](crate::PoolMapping) are mappers;
/// implement it for other shapes and every reader and the index work with it.
pub trait Mapper: Send + Sync {
    /// The row type produced.
    type Row: Send;

    /// What the mapper reads.
    fn needs(&self) -> Needs;

    /// Maps one record. A problem is reported with the field at fault; the reader adds the
    /// file and place.
    fn map(&self, record: Map<String, Value>, position: Position) -> Result<Self::Row, FieldError>;

    /// The content bytes of a row's prompt (see [`Prompt::content_bytes`]); the index stores
    /// their [`content_hash`].
    fn content_bytes<'a>(&self, row: &'a Self::Row) -> Cow<'a, [u8]>;
}

/// A column mapping: where the prompt, the gold answer, the id and the metadata of a row are.
///
/// ```
/// use gristmill_data::{Mapping, Metadata};
/// let gsm = Mapping::text("question").gold("answer");
/// let chat = Mapping::messages("messages").gold("reference.value").id("uid");
/// let templ = Mapping::template("Solve: {problem}\nUse {{braces}} for sets.")
///     .unwrap()
///     .system_prompt("You are a careful mathematician.")
///     .metadata(Metadata::Columns(vec!["level".into()]));
/// # let _ = (gsm, chat, templ);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    prompt: PromptSource,
    gold: Option<FieldPath>,
    id: Option<FieldPath>,
    metadata: Metadata,
    system_prompt: Option<String>,
    require_gold: bool,
}

impl Mapping {
    /// A mapping whose prompt comes from `source`, with no gold, ids by row index and every
    /// other column as metadata.
    pub fn new(source: PromptSource) -> Self {
        Mapping {
            prompt: source,
            gold: None,
            id: None,
            metadata: Metadata::All,
            system_prompt: None,
            require_gold: false,
        }
    }

    /// The prompt is the text in `column`.
    pub fn text(column: impl Into<FieldPath>) -> Self {
        Mapping::new(PromptSource::Text(column.into()))
    }

    /// The prompt is the chat messages in `column`.
    pub fn messages(column: impl Into<FieldPath>) -> Self {
        Mapping::new(PromptSource::Messages(column.into()))
    }

    /// The prompt is the text or the messages in `column`, row by row.
    pub fn auto(column: impl Into<FieldPath>) -> Self {
        Mapping::new(PromptSource::Auto(column.into()))
    }

    /// The prompt is `template` rendered over the row (see [`Template`]).
    pub fn template(template: &str) -> Result<Self, crate::TemplateError> {
        Ok(Mapping::new(PromptSource::Template(Template::parse(template)?)))
    }

    /// The gold answer is the value at `path` (any JSON value; null gives `None`).
    pub fn gold(mut self, path: impl Into<FieldPath>) -> Self {
        self.gold = Some(path.into());
        self
    }

    /// Makes a null gold answer an error ([`ErrorKind::Null`]) instead of `None`.
    pub fn require_gold(mut self) -> Self {
        self.require_gold = true;
        self
    }

    /// The id is the string or integer at `path`.
    pub fn id(mut self, path: impl Into<FieldPath>) -> Self {
        self.id = Some(path.into());
        self
    }

    /// Which columns pass through as metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// A system message put before every prompt: a text prompt becomes a `system` message and
    /// a `user` message. A row whose messages already start with a system message is an error
    /// ([`ErrorKind::SecondSystemMessage`]). The system prompt is not part of the content
    /// bytes, so changing it does not move the train/eval split.
    pub fn system_prompt(mut self, text: impl Into<String>) -> Self {
        self.system_prompt = Some(text.into());
        self
    }

    /// Where the prompt comes from.
    pub fn prompt_source(&self) -> &PromptSource {
        &self.prompt
    }

    /// The top-level columns the mapping reads for the prompt, gold and id (the ones
    /// [`Metadata::All`] leaves out).
    pub(crate) fn consumed_columns(&self) -> BTreeSet<String> {
        let mut columns = BTreeSet::new();
        match &self.prompt {
            PromptSource::Text(p) | PromptSource::Messages(p) | PromptSource::Auto(p) => {
                columns.insert(p.column().to_owned());
            }
            PromptSource::Template(t) => {
                columns.extend(t.variables().map(|p| p.column().to_owned()));
            }
        }
        columns.extend(self.gold.iter().chain(&self.id).map(|p| p.column().to_owned()));
        columns
    }

    /// The fields read for the prompt, gold, id and listed metadata.
    pub(crate) fn paths(&self) -> Vec<FieldPath> {
        let mut paths = Vec::new();
        match &self.prompt {
            PromptSource::Text(p) | PromptSource::Messages(p) | PromptSource::Auto(p) => {
                paths.push(p.clone())
            }
            PromptSource::Template(t) => paths.extend(t.variables().cloned()),
        }
        paths.extend(self.gold.iter().cloned());
        paths.extend(self.id.iter().cloned());
        if let Metadata::Columns(list) = &self.metadata {
            paths.extend(list.iter().cloned());
        }
        paths
    }

    /// Maps a record, leaving the metadata columns of [`Metadata::All`] out when `exclude`
    /// names more columns (the candidate column of a pool).
    pub(crate) fn map_with(
        &self,
        mut record: Map<String, Value>,
        position: Position,
        exclude: &[&str],
    ) -> Result<Row, FieldError> {
        let id = match &self.id {
            None => position.index.to_string(),
            Some(path) => match path.lookup(&record)? {
                Value::String(s) => s.clone(),
                Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
                Value::Null => return Err(FieldError::new(path.as_str(), ErrorKind::Null)),
                other => {
                    return Err(FieldError::new(
                        path.as_str(),
                        ErrorKind::WrongType { expected: "a string or an integer", found: json_type(other) },
                    ))
                }
            },
        };
        let gold = match &self.gold {
            None => None,
            Some(path) => match path.lookup(&record)? {
                Value::Null if self.require_gold => {
                    return Err(FieldError::new(path.as_str(), ErrorKind::Null))
                }
                Value::Null => None,
                value => Some(value.clone()),
            },
        };
        let (prompt, field) = match &self.prompt {
            PromptSource::Text(path) => match path.lookup(&record)? {
                Value::String(s) => (Prompt::Text(s.clone()), path.as_str()),
                other => return Err(wrong(path.as_str(), "a string", other)),
            },
            PromptSource::Messages(path) => {
                (Prompt::Messages(parse_messages(path.lookup(&record)?, path.as_str())?), path.as_str())
            }
            PromptSource::Auto(path) => match path.lookup(&record)? {
                Value::String(s) => (Prompt::Text(s.clone()), path.as_str()),
                value @ Value::Array(_) => {
                    (Prompt::Messages(parse_messages(value, path.as_str())?), path.as_str())
                }
                other => return Err(wrong(path.as_str(), "a string or a list of messages", other)),
            },
            PromptSource::Template(template) => (Prompt::Text(template.render(&record)?), ""),
        };
        let prompt = match &self.system_prompt {
            None => prompt,
            Some(system) => {
                let system = Message::new("system", system.clone());
                match prompt {
                    Prompt::Text(text) => Prompt::Messages(vec![system, Message::new("user", text)]),
                    Prompt::Messages(mut messages) => {
                        if messages[0].role == "system" {
                            return Err(FieldError::new(
                                format!("{field}[0]"),
                                ErrorKind::SecondSystemMessage,
                            ));
                        }
                        messages.insert(0, system);
                        Prompt::Messages(messages)
                    }
                }
            }
        };
        let metadata = match &self.metadata {
            Metadata::None => Map::new(),
            Metadata::Columns(list) => {
                let mut metadata = Map::new();
                for path in list {
                    metadata.insert(path.as_str().to_owned(), path.lookup(&record)?.clone());
                }
                metadata
            }
            Metadata::All => {
                for column in self.consumed_columns() {
                    record.remove(&column);
                }
                for column in exclude {
                    record.remove(*column);
                }
                record
            }
        };
        Ok(Row { id, prompt, gold, metadata, position })
    }

    pub(crate) fn content_bytes_of<'a>(&self, prompt: &'a Prompt) -> Cow<'a, [u8]> {
        match (prompt, &self.system_prompt) {
            // The first message is the mapping's system prompt; a text prompt under it is
            // one user message, which hashes as its text, as without a system prompt.
            (Prompt::Messages(messages), Some(_)) => messages_content_bytes(&messages[1..]),
            _ => prompt.content_bytes(),
        }
    }
}

impl Mapper for Mapping {
    type Row = Row;

    fn needs(&self) -> Needs {
        Needs { paths: self.paths(), all_columns: self.metadata == Metadata::All }
    }

    fn map(&self, record: Map<String, Value>, position: Position) -> Result<Row, FieldError> {
        self.map_with(record, position, &[])
    }

    fn content_bytes<'a>(&self, row: &'a Row) -> Cow<'a, [u8]> {
        self.content_bytes_of(&row.prompt)
    }
}

pub(crate) fn wrong(field: &str, expected: &'static str, found: &Value) -> FieldError {
    let kind = match found {
        Value::Null => ErrorKind::Null,
        other => ErrorKind::WrongType { expected, found: json_type(other) },
    };
    FieldError::new(field, kind)
}

/// Parses a list of `{role, content}` objects; `field` names the list in errors.
pub(crate) fn parse_messages(value: &Value, field: &str) -> Result<Vec<Message>, FieldError> {
    let items = match value {
        Value::Array(items) => items,
        other => return Err(wrong(field, "a list of {role, content} messages", other)),
    };
    if items.is_empty() {
        return Err(FieldError::new(field, ErrorKind::NoMessages));
    }
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let object = match item {
            Value::Object(object) => object,
            other => return Err(wrong(&format!("{field}[{i}]"), "a {role, content} object", other)),
        };
        let text = |key: &str| -> Result<String, FieldError> {
            match object.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(wrong(&format!("{field}[{i}].{key}"), "a string", other)),
                None => Err(FieldError::new(
                    format!("{field}[{i}].{key}"),
                    ErrorKind::Missing { available: keys(object) },
                )),
            }
        };
        messages.push(Message { role: text("role")?, content: text("content")? });
    }
    Ok(messages)
}
