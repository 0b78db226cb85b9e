//! Formats, options, and the streaming [`Reader`].

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Place};
use crate::jsonl::{is_blank, parse_record, Line, LineReader};
use crate::mapping::{Mapper, Mapping, Position};
use crate::parquet::{batch_row, guarded, row_error, ParquetFile};

/// A file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// JSON Lines: one JSON object per line (UTF-8; `\n` or `\r\n`; blank lines and a leading
    /// byte order mark are skipped). What `datasets.Dataset.to_json` writes by default.
    JsonLines,
    /// Apache Parquet, read through Arrow. Snappy is always supported; zstd and gzip with the
    /// crate features of those names.
    Parquet,
}

impl Format {
    /// The format a file name implies: `.jsonl`, `.ndjson` and `.json` are JSON Lines
    /// (`Dataset.to_json` writes JSON lines under any name), `.parquet` and `.pq` are Parquet;
    /// case is ignored.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }

    fn resolve(path: &Path, options: &ReadOptions) -> Result<Format, Error> {
        options
            .format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| Error::file(path, ErrorKind::UnknownFormat))
    }

    /// How a place in a file of this format is named: a line or a row.
    pub(crate) fn place(self, number: u64) -> Place {
        match self {
            Format::JsonLines => Place::Line(number),
            Format::Parquet => Place::Row(number),
        }
    }
}

/// Options for reading and indexing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// The format, overriding the one the extension implies.
    pub format: Option<Format>,
    /// The largest line (JSON Lines, bytes without the terminator) or row (Parquet: the size of
    /// its decoded values written as JSON) accepted; a larger one is
    /// [`ErrorKind::RowTooLarge`]. Default 16 MiB. A longer JSON line is skipped without being
    /// held in memory; a Parquet row is measured after its row group's columns are decoded.
    pub max_row_bytes: usize,
    /// Rows per Arrow record batch in a Parquet scan. Default 1024.
    pub batch_rows: usize,
    /// Rows decoded together by [`Index::get`](crate::Index::get) on a Parquet file: a whole
    /// row group when it has at most this many rows, else an aligned block of this many rows
    /// of it. Default 1024.
    pub block_rows: usize,
    /// Decoded Parquet blocks kept by [`Index::get`](crate::Index::get) (least recently used
    /// dropped first). Default 16.
    pub cache_blocks: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            max_row_bytes: 16 << 20,
            batch_rows: 1024,
            block_rows: 1024,
            cache_blocks: 16,
        }
    }
}

impl ReadOptions {
    /// Sets [`ReadOptions::format`].
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }
    /// Sets [`ReadOptions::max_row_bytes`].
    pub fn max_row_bytes(mut self, bytes: usize) -> Self {
        self.max_row_bytes = bytes;
        self
    }
    /// Sets [`ReadOptions::batch_rows`].
    pub fn batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }
    /// Sets [`ReadOptions::block_rows`].
    pub fn block_rows(mut self, rows: usize) -> Self {
        self.block_rows = rows.max(1);
        self
    }
    /// Sets [`ReadOptions::cache_blocks`].
    pub fn cache_blocks(mut self, blocks: usize) -> Self {
        self.cache_blocks = blocks;
        self
    }
}

/// One record of a file before mapping, with where it is.
pub(crate) struct RawRecord {
    pub(crate) position: Position,
    /// Byte offset of its line (JSON Lines only).
    pub(crate) offset: u64,
    pub(crate) record: Result<Map<String, Value>, Error>,
}

/// The records of a file, in order.
pub(crate) enum Records {
    Jsonl(JsonlRecords),
    Parquet(ParquetRecords),
}

pub(crate) struct JsonlRecords {
    path: PathBuf,
    lines: LineReader<File>,
    next_index: u64,
    done: bool,
}

pub(crate) struct ParquetRecords {
    path: PathBuf,
    file: ParquetFile,
    batches: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    row_in_batch: usize,
    next_index: u64,
    max_row_bytes: usize,
    done: bool,
}

impl Records {
    pub(crate) fn open(
        path: &Path,
        mapper: &impl Mapper,
        options: &ReadOptions,
        hash_bytes: bool,
    ) -> Result<(Format, Records), Error> {
        let format = Format::resolve(path, options)?;
        let records = match format {
            Format::JsonLines => {
                let file = File::open(path).map_err(|e| Error::file(path, ErrorKind::Io(e)))?;
                let mut lines = LineReader::new(file, options.max_row_bytes, 0, 0);
                if hash_bytes {
                    lines.hash_bytes();
                }
                let first =
                    lines.first_significant_byte().map_err(|e| Error::file(path, ErrorKind::Io(e)))?;
                if first == Some(b'[') {
                    return Err(Error::file(path, ErrorKind::JsonArray));
                }
                Records::Jsonl(JsonlRecords { path: path.to_path_buf(), lines, next_index: 0, done: false })
            }
            Format::Parquet => {
                let file = ParquetFile::open(path, &mapper.needs())?;
                let batches = file.scan(options.batch_rows).map_err(|kind| Error::file(path, kind))?;
                Records::Parquet(ParquetRecords {
                    path: path.to_path_buf(),
                    file,
                    batches,
                    batch: None,
                    row_in_batch: 0,
                    next_index: 0,
                    max_row_bytes: options.max_row_bytes,
                    done: false,
                })
            }
        };
        Ok((format, records))
    }

    pub(crate) fn next_record(&mut self) -> Option<RawRecord> {
        match self {
            Records::Jsonl(r) => r.next_record(),
            Records::Parquet(r) => r.next_record(),
        }
    }

    /// The Parquet file, for the index.
    pub(crate) fn into_parquet(self) -> Option<ParquetFile> {
        match self {
            Records::Parquet(r) => Some(r.file),
            Records::Jsonl(_) => None,
        }
    }

    /// The line reader, for the index.
    pub(crate) fn lines(&mut self) -> Option<&mut LineReader<File>> {
        match self {
            Records::Jsonl(r) => Some(&mut r.lines),
            Records::Parquet(_) => None,
        }
    }

    fn path(&self) -> &Path {
        match self {
            Records::Jsonl(r) => &r.path,
            Records::Parquet(r) => &r.path,
        }
    }

    fn rows_hint(&self) -> Option<u64> {
        match self {
            Records::Jsonl(_) => None,
            Records::Parquet(r) => Some(r.file.rows() - r.next_index),
        }
    }
}

impl JsonlRecords {
    fn next_record(&mut self) -> Option<RawRecord> {
        if self.done {
            return None;
        }
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    let position = Position { index: self.next_index, number: self.lines.line_number() + 1 };
                    let error = Error {
                        file: self.path.clone(),
                        place: Some(Place::Line(position.number)),
                        field: None,
                        kind: ErrorKind::Io(e),
                    };
                    return Some(RawRecord { position, offset: self.lines.offset(), record: Err(error) });
                }
            };
            let record = match line {
                Line::Text(bytes) if is_blank(bytes) => continue,
                Line::Text(bytes) => parse_record(bytes),
                Line::TooLong(size) => {
                    Err(ErrorKind::RowTooLarge { what: "line", size, limit: self.lines_limit() })
                }
            };
            let number = self.lines.line_number();
            let position = Position { index: self.next_index, number };
            self.next_index += 1;
            let record = record.map_err(|kind| Error {
                file: self.path.clone(),
                place: Some(Place::Line(number)),
                field: None,
                kind,
            });
            return Some(RawRecord { position, offset: self.lines.line_offset(), record });
        }
    }

    fn lines_limit(&self) -> u64 {
        self.lines.limit() as u64
    }
}

impl ParquetRecords {
    fn next_record(&mut self) -> Option<RawRecord> {
        if self.done {
            return None;
        }
        loop {
            if let Some(batch) = &self.batch {
                if self.row_in_batch < batch.num_rows() {
                    let row = self.row_in_batch;
                    self.row_in_batch += 1;
                    let number = self.next_index + 1;
                    let position = Position { index: self.next_index, number };
                    self.next_index += 1;
                    let record = batch_row(&self.file.fields, batch, row, self.max_row_bytes)
                        .map_err(|(field, kind)| row_error(&self.path, number, field, kind));
                    return Some(RawRecord { position, offset: 0, record });
                }
            }
            let next = match guarded(|| self.batches.next()) {
                Ok(next) => next.map(|batch| batch.map_err(|e| ErrorKind::Parquet(e.to_string()))),
                Err(panic) => Some(Err(panic)),
            };
            match next {
                Some(Ok(batch)) => {
                    self.batch = Some(batch);
                    self.row_in_batch = 0;
                }
                None if self.next_index == self.file.rows() => {
                    self.done = true;
                    return None;
                }
                end => {
                    // A decoding error, or data that ends before the footer's row count.
                    self.done = true;
                    let number = self.next_index + 1;
                    let kind = match end {
                        Some(Err(kind)) => kind,
                        _ => ErrorKind::Parquet(format!(
                            "the data ends after {} rows, but the footer says {}",
                            self.next_index,
                            self.file.rows()
                        )),
                    };
                    let position = Position { index: self.next_index, number };
                    let record = Err(row_error(&self.path, number, None, kind));
                    return Some(RawRecord { position, offset: 0, record });
                }
            }
        }
    }
}

/// Streams the rows of a file through a mapper: JSON lines one at a time, Parquet one record
/// batch at a time (at most one row group's projected column chunks are held while it is
/// decoded; a scan of a million-row file stays under 15 MB resident, see BENCHMARKS.md).
///
/// Each item is a row or an error naming the file, the line or row, and the field. After a
/// row's error the reader goes on with the next row; after an error of the file itself (an
/// I/O error, undecodable Parquet data) it ends. So every problem of a file can be collected
/// in one pass:
///
/// ```no_run
/// # use gristmill_data::{Mapping, ReadOptions, Reader};
/// let reader = Reader::open("train.jsonl", Mapping::text("question"), &ReadOptions::default())?;
/// let problems: Vec<_> = reader.filter_map(Result::err).take(100).collect();
/// for p in &problems {
///     eprintln!("{p}");
/// }
/// # Ok::<(), gristmill_data::Error>(())
/// ```
pub struct Reader<M: Mapper = Mapping> {
    mapper: M,
    format: Format,
    records: Records,
}

impl<M: Mapper> Reader<M> {
    /// Opens `path` (its format from the options or its extension). Problems of the whole file
    /// (unreadable, not Parquet, a JSON array, a column missing from a Parquet schema or of an
    /// unsupported type) are reported here.
    pub fn open(path: impl AsRef<Path>, mapper: M, options: &ReadOptions) -> Result<Self, Error> {
        let (format, records) = Records::open(path.as_ref(), &mapper, options, false)?;
        Ok(Reader { mapper, format, records })
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        self.records.path()
    }

    /// The mapper.
    pub fn mapper(&self) -> &M {
        &self.mapper
    }
}

impl<M: Mapper> Iterator for Reader<M> {
    type Item = Result<M::Row, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.records.next_record()?;
        let place = self.format.place(raw.position.number);
        Some(raw.record.and_then(|record| {
            self.mapper.map(record, raw.position).map_err(|e| e.at(self.records.path(), place))
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.records.rows_hint() {
            Some(n) => (0, Some(n as usize)),
            None => (0, None),
        }
    }
}
