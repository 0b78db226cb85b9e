//! Typed errors. Every error names the file; a row's error also names the row (1-based line
//! of a JSON Lines file, 1-based row of a Parquet file) and, where one is at fault, the field.

use std::fmt;
use std::path::PathBuf;

/// Where in a file an error is: a 1-based line of a JSON Lines file or a 1-based row of a
/// Parquet file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A 1-based line number of a JSON Lines file (blank lines count).
    Line(u64),
    /// A 1-based row number of a Parquet file.
    Row(u64),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// An error reading a data file: the file, the place in it (absent for problems of the whole
/// file, such as an unreadable Parquet footer or a column missing from its schema), the field
/// at fault (a dotted path such as `answer.value`, or `messages[2].role`), and what is wrong.
///
/// Displayed as `file: line 3: field `answer.value`: is missing; …`.
#[derive(Debug, thiserror::Error)]
#[error("{}{}{}: {kind}", .file.display(), PlaceText(.place), FieldText(.field))]
pub struct Error {
    /// The file being read.
    pub file: PathBuf,
    /// The line or row, if the problem belongs to one.
    pub place: Option<Place>,
    /// The field at fault, if there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: ErrorKind,
}

struct PlaceText<'a>(&'a Option<Place>);
impl fmt::Display for PlaceText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, ": {p}"),
            None => Ok(()),
        }
    }
}

struct FieldText<'a>(&'a Option<String>);
impl fmt::Display for FieldText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, ": field `{name}`"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// An error of the whole file.
    pub(crate) fn file(file: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        Error { file: file.into(), place: None, field: None, kind }
    }
}

/// What is wrong. Each variant's text is what [`Error`] prints after the file, place and field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    /// The extension names no format this crate reads.
    #[error(
        "cannot tell the format from the file name (expected .jsonl, .ndjson, .json or \
         .parquet); set ReadOptions::format"
    )]
    UnknownFormat,
    /// The Parquet reader refused the file (truncated, corrupt, or an unsupported encoding or
    /// compression codec).
    #[error("not a readable Parquet file: {0}")]
    Parquet(String),
    /// A `.json` file that holds one JSON array rather than JSON lines.
    #[error(
        "the file starts with `[`: rows must be JSON objects, one per line (JSON Lines); a \
         file holding one JSON array is not read — write it with `Dataset.to_json(path)` \
         (lines=True, the default) or convert it with `jq -c '.[]'`"
    )]
    JsonArray,
    /// A line that is not valid UTF-8.
    #[error("invalid UTF-8 at byte {byte} of the line")]
    InvalidUtf8 {
        /// 0-based byte offset within the line of the first invalid byte.
        byte: usize,
    },
    /// A line that is not valid JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A line (or Parquet row) that is valid JSON but not an object.
    #[error("expected a JSON object, found {found}")]
    NotAnObject {
        /// What was found instead (`an array`, `a string`, …).
        found: &'static str,
    },
    /// A line or decoded row larger than [`ReadOptions::max_row_bytes`](crate::ReadOptions).
    #[error(
        "the {what} is {size} bytes, over the limit of {limit} bytes \
         (ReadOptions::max_row_bytes)"
    )]
    RowTooLarge {
        /// `line` or `row`.
        what: &'static str,
        /// Its size in bytes (for a Parquet row: the size of its values written as JSON,
        /// at least).
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// A field the mapping names is absent from the row.
    #[error("is missing{}", Available(.available))]
    Missing {
        /// The fields present where the lookup stopped (at most 20, sorted).
        available: Vec<String>,
    },
    /// A template variable names a field absent from the row.
    #[error("unknown template variable {{{name}}}: the row has no such field{}", Available(.available))]
    UnknownTemplateVariable {
        /// The variable as written between the braces.
        name: String,
        /// The fields present where the lookup stopped (at most 20, sorted).
        available: Vec<String>,
    },
    /// A column the mapping names is absent from the Parquet schema.
    #[error("no such column in the file's schema{}", Available(.available))]
    NoSuchColumn {
        /// The fields present where the lookup stopped (at most 20, sorted).
        available: Vec<String>,
    },
    /// A field that is null where a value is required.
    #[error("is null")]
    Null,
    /// A field of the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the mapping needs.
        expected: &'static str,
        /// What the row holds.
        found: &'static str,
    },
    /// An empty list of chat messages.
    #[error("is an empty list of messages")]
    NoMessages,
    /// A row whose messages already start with a system message while the mapping adds one.
    #[error(
        "already starts with a system message, and the mapping's system prompt would add a \
         second one; drop one of them"
    )]
    SecondSystemMessage,
    /// A candidate pool without candidates.
    #[error("is an empty candidate pool")]
    EmptyPool,
    /// A candidate field this crate does not know (see
    /// [`PoolMapping::keep_extra_fields`](crate::PoolMapping::keep_extra_fields)).
    #[error(
        "is not a candidate field (known: text, logit, gold, scores); \
         PoolMapping::keep_extra_fields keeps unknown ones"
    )]
    UnknownCandidateField,
    /// A Parquet column of a type that has no JSON form here (binary, time of day, interval…).
    #[error("has Arrow type {arrow_type}, which is not read; leave it out of the mapping (Metadata::Columns lists the metadata to keep)")]
    UnsupportedType {
        /// The Arrow type, as Arrow prints it.
        arrow_type: String,
    },
    /// [`Index::get`](crate::Index::get) past the last row.
    #[error("row index {index} is out of range: the file has {rows} rows")]
    OutOfRange {
        /// The 0-based index asked for.
        index: u64,
        /// The number of rows indexed.
        rows: u64,
    },
    /// The file's size changed after it was indexed.
    #[error("the file changed since it was indexed ({indexed} bytes then, {now} bytes now); index it again")]
    Changed {
        /// Its size when indexed.
        indexed: u64,
        /// Its size now.
        now: u64,
    },
    /// The Parquet decoder panicked on this file (a malformed file the decoder does not
    /// check); the panic was caught.
    #[error("the Parquet decoder failed on malformed data: {0}")]
    DecoderPanic(String),
}

struct Available<'a>(&'a [String]);
impl fmt::Display for Available<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str("; fields here: ")?;
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// A problem with one field of one row, before the file and place are attached: what a
/// [`Mapper`](crate::Mapper) returns.
#[derive(Debug)]
pub struct FieldError {
    /// The field at fault (`answer.value`, `candidates[3].logit`), or empty for the row as a
    /// whole.
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Self {
        FieldError { field: field.into(), kind }
    }

    /// Attaches the file and place.
    pub(crate) fn at(self, file: &std::path::Path, place: Place) -> Error {
        Error {
            file: file.to_path_buf(),
            place: Some(place),
            field: if self.field.is_empty() { None } else { Some(self.field) },
            kind: self.kind,
        }
    }
}

/// A template that does not parse. Reported when the mapping is built, before any file is
/// read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` with no matching `}`.
    #[error("template: unclosed `{{` at byte {0} (write `{{{{` for a literal brace)")]
    Unclosed(usize),
    /// A `}` with no opening `{`.
    #[error("template: unmatched `}}` at byte {0} (write `}}}}` for a literal brace)")]
    Unmatched(usize),
    /// `{}`: a variable without a name.
    #[error("template: empty variable name at byte {0}")]
    Empty(usize),
    /// A `{` inside a variable name.
    #[error("template: `{{` inside a variable at byte {0}")]
    Nested(usize),
}
