//! Parquet files through the Arrow reader: footer and schema checks, projection of the
//! columns a mapping reads, streaming by record batch, and reads of one block of rows.

use std::fs::File;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Fields};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
    RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::reader::{ChunkReader, Length};
use serde_json::{Map, Value};

use crate::convert::{check_type, object_size, to_json};
use crate::error::{Error, ErrorKind, Place};
use crate::fileio::{read_at, read_exact_at};
use crate::mapping::Needs;

/// An open file read with positioned reads: clones share no cursor, so concurrent reads of
/// one file (from many threads, or of several column chunks at once) cannot interfere.
#[derive(Clone)]
pub(crate) struct PosFile {
    file: Arc<File>,
    len: u64,
}

impl PosFile {
    pub(crate) fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(PosFile { file: Arc::new(file), len })
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

impl Length for PosFile {
    fn len(&self) -> u64 {
        self.len
    }
}

/// A reader from an offset of a [`PosFile`].
pub(crate) struct PosRead {
    file: Arc<File>,
    pos: u64,
}

impl Read for PosRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl ChunkReader for PosFile {
    type T = PosRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PosRead> {
        Ok(PosRead { file: self.file.clone(), pos: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        // A corrupt footer can ask for any range; never allocate past the end of the file.
        if start.checked_add(length as u64).is_none_or(|end| end > self.len) {
            return Err(ParquetError::EOF(format!(
                "bytes {start}..{} asked for, but the file has {} bytes",
                start.saturating_add(length as u64),
                self.len
            )));
        }
        let mut buf = vec![0; length];
        read_exact_at(&self.file, &mut buf, start)?;
        Ok(buf.into())
    }
}

/// Runs `f`, turning a panic of the Parquet decoder into an error.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ErrorKind> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        ErrorKind::DecoderPanic(message)
    })
}

/// A Parquet file with its metadata loaded, checked against a mapping's needs.
pub(crate) struct ParquetFile {
    pub(crate) chunk: PosFile,
    pub(crate) meta: ArrowReaderMetadata,
    pub(crate) mask: ProjectionMask,
    /// The projected Arrow fields, in batch column order.
    pub(crate) fields: Fields,
    /// The first row of each row group, then the row count.
    pub(crate) row_group_starts: Vec<u64>,
}

impl ParquetFile {
    pub(crate) fn open(path: &Path, needs: &Needs) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::file(path, ErrorKind::Io(e)))?;
        let chunk = PosFile::new(file).map_err(|e| Error::file(path, ErrorKind::Io(e)))?;
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
        let meta = guarded(|| ArrowReaderMetadata::load(&chunk, options))
            .map_err(|kind| Error::file(path, kind))?
            .map_err(|e| Error::file(path, ErrorKind::Parquet(e.to_string())))?;
        let schema = meta.schema().clone();
        for p in &needs.paths {
            check_path(schema.fields(), p.segments()).map_err(|available| Error {
                file: path.to_path_buf(),
                place: None,
                field: Some(p.as_str().to_owned()),
                kind: ErrorKind::NoSuchColumn { available },
            })?;
        }
        let indices: Vec<usize> = match needs.columns() {
            None => (0..schema.fields().len()).collect(),
            Some(columns) => schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| columns.contains(f.name()))
                .map(|(i, _)| i)
                .collect(),
        };
        for &i in &indices {
            let field = &schema.fields()[i];
            check_type(field.data_type()).map_err(|arrow_type| Error {
                file: path.to_path_buf(),
                place: None,
                field: Some(field.name().clone()),
                kind: ErrorKind::UnsupportedType { arrow_type },
            })?;
        }
        let fields: Fields = indices.iter().map(|&i| schema.fields()[i].clone()).collect();
        let mask = ProjectionMask::roots(meta.parquet_schema(), indices);
        let mut row_group_starts = vec![0u64];
        for rg in meta.metadata().row_groups() {
            let rows = u64::try_from(rg.num_rows()).map_err(|_| {
                Error::file(path, ErrorKind::Parquet(format!("a row group of {} rows", rg.num_rows())))
            })?;
            row_group_starts.push(row_group_starts.last().unwrap() + rows);
        }
        row_group_starts.shrink_to_fit();
        Ok(ParquetFile { chunk, meta, mask, fields, row_group_starts })
    }

    pub(crate) fn rows(&self) -> u64 {
        *self.row_group_starts.last().unwrap()
    }

    fn builder(&self) -> ParquetRecordBatchReaderBuilder<PosFile> {
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.chunk.clone(), self.meta.clone())
            .with_projection(self.mask.clone())
    }

    /// A reader of every row, in batches of `batch_rows`.
    pub(crate) fn scan(&self, batch_rows: usize) -> Result<ParquetRecordBatchReader, ErrorKind> {
        guarded(|| self.builder().with_batch_size(batch_rows.max(1)).build())?
            .map_err(|e| ErrorKind::Parquet(e.to_string()))
    }

    /// Rows `start..start + len` of row group `row_group`.
    pub(crate) fn read_block(
        &self,
        row_group: usize,
        start: usize,
        len: usize,
    ) -> Result<Vec<RecordBatch>, ErrorKind> {
        let group_rows = (self.row_group_starts[row_group + 1] - self.row_group_starts[row_group]) as usize;
        let mut builder = self.builder().with_row_groups(vec![row_group]).with_batch_size(len.max(1));
        if len < group_rows {
            let mut selectors = Vec::with_capacity(3);
            if start > 0 {
                selectors.push(RowSelector::skip(start));
            }
            selectors.push(RowSelector::select(len));
            if start + len < group_rows {
                selectors.push(RowSelector::skip(group_rows - start - len));
            }
            builder = builder.with_row_selection(RowSelection::from(selectors));
        }
        guarded(|| -> Result<Vec<RecordBatch>, ParquetError> {
            let reader = builder.build()?;
            let mut batches = Vec::new();
            for batch in reader {
                batches.push(batch?);
            }
            Ok(batches)
        })?
        .map_err(|e| ErrorKind::Parquet(e.to_string()))
    }
}

/// Checks a dotted path against the schema as far as the schema can tell (through structs,
/// and numeric segments through lists); on failure returns the names present where it stopped.
fn check_path(fields: &Fields, segments: &[String]) -> Result<(), Vec<String>> {
    let names = |fields: &Fields| {
        let mut names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
        names.sort();
        names.truncate(20);
        names
    };
    let Some(field) = fields.iter().find(|f| f.name() == &segments[0]) else {
        return Err(names(fields));
    };
    let mut data_type = field.data_type();
    for segment in &segments[1..] {
        data_type = match data_type {
            DataType::Struct(children) => match children.iter().find(|f| f.name() == segment) {
                Some(child) => child.data_type(),
                None => return Err(names(children)),
            },
            DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _)
                if segment.parse::<usize>().is_ok() =>
            {
                item.data_type()
            }
            // Maps, dictionaries and type mismatches are left to the row-by-row check.
            _ => return Ok(()),
        };
    }
    Ok(())
}

/// Row `row` of a batch as a record, with the size limit applied.
pub(crate) fn batch_row(
    fields: &Fields,
    batch: &RecordBatch,
    row: usize,
    max_row_bytes: usize,
) -> Result<Map<String, Value>, (Option<String>, ErrorKind)> {
    let mut record = Map::new();
    for (field, column) in fields.iter().zip(batch.columns()) {
        let value = to_json(column.as_ref() as &dyn Array, row)
            .map_err(|arrow_type| (Some(field.name().clone()), ErrorKind::UnsupportedType { arrow_type }))?;
        record.insert(field.name().clone(), value);
    }
    let size = object_size(&record);
    if size > max_row_bytes as u64 {
        return Err((None, ErrorKind::RowTooLarge { what: "row", size, limit: max_row_bytes as u64 }));
    }
    Ok(record)
}

/// The error of row `number` (1-based).
pub(crate) fn row_error(path: &Path, number: u64, field: Option<String>, kind: ErrorKind) -> Error {
    Error { file: path.to_path_buf(), place: Some(Place::Row(number)), field, kind }
}
