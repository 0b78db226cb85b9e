//! Reads users' datasets — JSON Lines and Parquet files, as Hugging Face `datasets` exports
//! them — into plain rows: an id, a prompt (text or chat messages), a gold answer kept as
//! JSON, and metadata; candidate pools too; and indexes a file for random access by row
//! number, so keyed samplers can ask for row `i` from any thread.
//!
//! ```
//! use gristmill_data::{Index, Mapping, Prompt, ReadOptions, Reader};
//!
//! let dir = std::env::temp_dir().join(format!("gristmill-data-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("math.jsonl");
//! std::fs::write(
//!     &path,
//!     concat!(
//!         r#"{"id": "a1", "question": "What is 17 + 25?", "answer": {"value": "42"}, "level": 1}"#, "\n",
//!         r#"{"id": "a2", "question": "Half of 9?", "answer": {"value": "4.5"}, "level": 2}"#, "\n",
//!     ),
//! )?;
//!
//! // Which column is what: the prompt from a template, the gold at a dotted path, the id;
//! // every other column ("level") passes through as metadata.
//! let mapping = Mapping::template("Solve: {question}")?.gold("answer.value").id("id");
//!
//! // Stream every row (Parquet is read the same way, one record batch at a time).
//! let rows = Reader::open(&path, &mapping, &ReadOptions::default())?
//!     .collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(rows[0].prompt, Prompt::Text("Solve: What is 17 + 25?".into()));
//! assert_eq!(rows[0].gold, Some(serde_json::json!("42")));
//! assert_eq!(rows[1].metadata["level"], 2);
//!
//! // Or index the file once and read any row by number.
//! let index = Index::build(&path, &mapping, &ReadOptions::default())?;
//! assert_eq!(index.len(), 2);
//! assert_eq!(index.get(1)?, rows[1]);
//! println!("data {} ({} bytes)", index.digest(), index.digest().bytes);
//!
//! // Errors name the file, the line or row, and the field.
//! std::fs::write(&path, "{\"id\": \"a3\", \"question\": \"Hi?\"}\n")?;
//! let err = Reader::open(&path, &mapping, &ReadOptions::default())?.next().unwrap().unwrap_err();
//! assert!(err.to_string().ends_with("math.jsonl: line 1: field `answer.value`: is missing; fields here: id, question"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Formats and shapes
//!
//! * **JSON Lines** (`.jsonl`, `.ndjson`, and `.json`, which `Dataset.to_json` writes as JSON
//!   lines by default): one object per line, read line by line with a limit on the line's
//!   size ([`ReadOptions::max_row_bytes`], 16 MiB by default) enforced without holding the
//!   line. A `.json` file holding one JSON array is refused with a hint.
//! * **Parquet** (`.parquet`, `.pq`): read through the Arrow reader, only the columns the
//!   mapping reads, one record batch at a time. Snappy (`Dataset.to_parquet`'s default) is
//!   built in; zstd and gzip come with the `zstd` and `gzip` features. Nested structs, lists
//!   (of structs), maps with string keys, dictionaries, decimals (as strings), dates and
//!   timestamps (as ISO-8601 strings) become JSON; NaN and infinities become null, as pandas
//!   writes them. Binary and time-of-day columns are refused by name when the mapping reads
//!   them.
//! * The format comes from the extension unless [`ReadOptions::format`] says otherwise.
//!
//! A [`Mapping`] says where the prompt is ([`PromptSource`]: a text column, a column of chat
//! messages `[{"role": …, "content": …}, …]`, either, or a [`Template`] with `{column}`
//! placeholders), the gold answer (any JSON value), the id (default: the row index) and the
//! metadata ([`Metadata`]); fields are addressed by dotted paths ([`FieldPath`]). A
//! [`PoolMapping`] reads candidate pools. Any [`Mapper`] can be used instead.
//!
//! Nothing in a malformed file panics: every problem is an [`Error`] naming the file, the
//! 1-based line (JSON Lines) or row (Parquet), and the field; see [`ErrorKind`] for the list.

#![deny(missing_docs)]

mod convert;
mod error;
mod fileio;
mod index;
mod jsonl;
mod mapping;
mod parquet;
mod path;
mod pool;
mod reader;
mod template;

pub use error::{Error, ErrorKind, FieldError, Place, TemplateError};
pub use fileio::{digest_file, FileDigest};
pub use index::Index;
pub use mapping::{
    content_hash, Mapper, Mapping, Message, Metadata, Needs, Position, Prompt, PromptSource, Row,
};
pub use path::FieldPath;
pub use pool::{Candidate, PoolMapping, PoolRow};
pub use reader::{Format, ReadOptions, Reader};
pub use template::Template;

impl<M: Mapper + ?Sized> Mapper for &M {
    type Row = M::Row;

    fn needs(&self) -> Needs {
        (**self).needs()
    }

    fn map(
        &self,
        record: serde_json::Map<String, serde_json::Value>,
        position: Position,
    ) -> Result<M::Row, FieldError> {
        (**self).map(record, position)
    }

    fn content_bytes<'a>(&self, row: &'a M::Row) -> std::borrow::Cow<'a, [u8]> {
        (**self).content_bytes(row)
    }
}
