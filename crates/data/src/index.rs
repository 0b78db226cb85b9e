//! Random access: one streaming pass records where every row is, and `get(i)` then reads one
//! JSON line or one block of a Parquet row group.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;

use crate::error::{Error, ErrorKind, Place};
use crate::fileio::{digest_file, read_at, FileDigest};
use crate::jsonl::{parse_record, BOM};
use crate::mapping::{content_hash, Mapper, Mapping, Position};
use crate::parquet::{batch_row, row_error, ParquetFile};
use crate::reader::{Format, ReadOptions, Records};

/// An index of a file for random access by row number: what keyed sampling needs ("give me
/// row `i`" for arbitrary `i`, from any thread) without reading the file each time or holding
/// it in memory.
///
/// [`Index::build`] reads the file once, streaming: it maps and so validates every row (the
/// first bad row fails the build, with its error), records where each row is, the
/// [`content_hash`] of each row's prompt, and the file's BLAKE3 digest. [`Index::get`] then
/// reads one JSON line (a positioned read, no shared cursor), or decodes one block of a
/// Parquet row group, keeping the last [`ReadOptions::cache_blocks`] decoded blocks.
///
/// **Memory per row**: 16 bytes for JSON Lines (the line's offset and the content hash), 8
/// bytes for Parquet (the content hash), plus 8 bytes per Parquet row group and a few bytes
/// per run of blank lines; a million rows cost 16 MB or 8 MB. The Parquet block cache adds
/// up to `cache_blocks` decoded blocks of `block_rows` rows of the mapped columns (Arrow
/// arrays: about the uncompressed size of those rows).
///
/// The index assumes the file does not change: `get` refuses a file whose size changed
/// ([`ErrorKind::Changed`]); [`digest_file`] checks the bytes themselves.
pub struct Index<M: Mapper = Mapping> {
    path: PathBuf,
    format: Format,
    mapper: M,
    digest: FileDigest,
    hashes: Vec<u64>,
    max_row_bytes: usize,
    storage: Storage,
}

enum Storage {
    Jsonl {
        file: File,
        /// Offset of each row's line, then the file's length.
        offsets: Vec<u64>,
        /// `(row index, blank lines before it)` wherever the count of blank lines before a
        /// row changes: turns an index into a line number.
        blank_runs: Vec<(u64, u64)>,
    },
    Parquet {
        file: ParquetFile,
        block_rows: usize,
        cache: Mutex<Lru>,
    },
}

impl<M: Mapper> Index<M> {
    /// Reads `path` once and indexes it (see the type's documentation).
    pub fn build(path: impl AsRef<Path>, mapper: M, options: &ReadOptions) -> Result<Self, Error> {
        let path = path.as_ref();
        let (format, mut records) = Records::open(path, &mapper, options, true)?;
        let mut hashes = Vec::new();
        let mut offsets = Vec::new();
        let mut blank_runs = Vec::new();
        let mut blanks = 0;
        while let Some(raw) = records.next_record() {
            let place = format.place(raw.position.number);
            let row = raw
                .record
                .and_then(|record| mapper.map(record, raw.position).map_err(|e| e.at(path, place)))?;
            hashes.push(content_hash(&mapper.content_bytes(&row)));
            if format == Format::JsonLines {
                offsets.push(raw.offset);
                let before = raw.position.number - 1 - raw.position.index;
                if before != blanks {
                    blanks = before;
                    blank_runs.push((raw.position.index, blanks));
                }
            }
        }
        hashes.shrink_to_fit();
        let (digest, storage) = match format {
            Format::JsonLines => {
                let lines = records.lines().expect("a JSON Lines file has a line reader");
                let bytes = lines.offset();
                let hasher = lines.take_hasher().expect("the index hashes the bytes it reads");
                offsets.push(bytes);
                offsets.shrink_to_fit();
                let file = File::open(path).map_err(|e| Error::file(path, ErrorKind::Io(e)))?;
                (FileDigest::from_hasher(&hasher, bytes), Storage::Jsonl { file, offsets, blank_runs })
            }
            Format::Parquet => {
                let file = records.into_parquet().expect("a Parquet file has its metadata");
                let digest = digest_file(path)?;
                let cache = Mutex::new(Lru::new(options.cache_blocks));
                (digest, Storage::Parquet { file, block_rows: options.block_rows.max(1), cache })
            }
        };
        Ok(Index {
            path: path.to_path_buf(),
            format,
            mapper,
            digest,
            hashes,
            max_row_bytes: options.max_row_bytes,
            storage,
        })
    }

    /// The number of rows.
    pub fn len(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The file indexed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The mapper rows are read with.
    pub fn mapper(&self) -> &M {
        &self.mapper
    }

    /// The BLAKE3 digest and length of the file's bytes when indexed.
    pub fn digest(&self) -> &FileDigest {
        &self.digest
    }

    /// The [`content_hash`] of row `i`'s content bytes ([`Mapper::content_bytes`]), or `None`
    /// past the end: enough to split rows into train and eval by content without reading them.
    pub fn content_hash(&self, i: u64) -> Option<u64> {
        self.hashes.get(usize::try_from(i).ok()?).copied()
    }

    /// Every row's content hash, in row order.
    pub fn content_hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// For a Parquet file, the first row of each row group followed by the row count.
    pub fn row_group_starts(&self) -> Option<&[u64]> {
        match &self.storage {
            Storage::Parquet { file, .. } => Some(&file.row_group_starts),
            Storage::Jsonl { .. } => None,
        }
    }

    /// The heap bytes the index itself holds (without the Parquet block cache).
    pub fn memory_bytes(&self) -> usize {
        let storage = match &self.storage {
            Storage::Jsonl { offsets, blank_runs, .. } => offsets.capacity() * 8 + blank_runs.capacity() * 16,
            Storage::Parquet { file, .. } => file.row_group_starts.capacity() * 8,
        };
        self.hashes.capacity() * 8 + storage
    }

    /// Row `i` (0-based), equal to the `i`-th row a [`Reader`](crate::Reader) yields.
    pub fn get(&self, i: u64) -> Result<M::Row, Error> {
        if i >= self.len() {
            return Err(Error::file(&self.path, ErrorKind::OutOfRange { index: i, rows: self.len() }));
        }
        match &self.storage {
            Storage::Jsonl { file, offsets, blank_runs } => {
                self.check_unchanged(file)?;
                let run = blank_runs.partition_point(|&(index, _)| index <= i);
                let blanks = if run == 0 { 0 } else { blank_runs[run - 1].1 };
                let position = Position { index: i, number: i + 1 + blanks };
                let place = Place::Line(position.number);
                let io_error = |e| Error {
                    file: self.path.clone(),
                    place: Some(place),
                    field: None,
                    kind: ErrorKind::Io(e),
                };
                let (start, next) = (offsets[i as usize], offsets[i as usize + 1]);
                // The line, its terminator and any blank lines after it; no more than a line
                // within the limit (with a byte order mark and `\r\n`) needs.
                let len = (next - start).min(self.max_row_bytes as u64 + 5) as usize;
                let mut buf = vec![0u8; len];
                let mut filled = 0;
                while filled < len {
                    match read_at(file, &mut buf[filled..], start + filled as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_error(e)),
                    }
                }
                let mut line = &buf[..filled];
                if let Some(end) = memchr::memchr(b'\n', line) {
                    line = &line[..end];
                }
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                if start == 0 {
                    line = line.strip_prefix(BOM).unwrap_or(line);
                }
                let record = parse_record(line).map_err(|kind| Error {
                    file: self.path.clone(),
                    place: Some(place),
                    field: None,
                    kind,
                })?;
                self.mapper.map(record, position).map_err(|e| e.at(&self.path, place))
            }
            Storage::Parquet { file, block_rows, cache } => {
                self.check_unchanged(file.chunk.file())?;
                let starts = &file.row_group_starts;
                let group = starts.partition_point(|&s| s <= i) - 1;
                let within = (i - starts[group]) as usize;
                let group_rows = (starts[group + 1] - starts[group]) as usize;
                let block_start = within / block_rows * block_rows;
                let block_len = (*block_rows).min(group_rows - block_start);
                let key = (group, block_start);
                let number = i + 1;
                // The guard is dropped before the match: decoding happens outside the lock.
                let cached = cache.lock().unwrap_or_else(|p| p.into_inner()).get(key);
                let block = match cached {
                    Some(block) => block,
                    None => {
                        // Threads may decode different blocks at once.
                        let batches = file
                            .read_block(group, block_start, block_len)
                            .map_err(|kind| row_error(&self.path, number, None, kind))?;
                        let block = Arc::new(batches);
                        cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, block.clone());
                        block
                    }
                };
                let mut row = within - block_start;
                for batch in block.iter() {
                    if row < batch.num_rows() {
                        let record = batch_row(&file.fields, batch, row, self.max_row_bytes)
                            .map_err(|(field, kind)| row_error(&self.path, number, field, kind))?;
                        let position = Position { index: i, number };
                        return self
                            .mapper
                            .map(record, position)
                            .map_err(|e| e.at(&self.path, Place::Row(number)));
                    }
                    row -= batch.num_rows();
                }
                Err(row_error(
                    &self.path,
                    number,
                    None,
                    ErrorKind::Parquet(format!(
                        "row group {group} decoded to fewer rows than its footer says"
                    )),
                ))
            }
        }
    }

    fn check_unchanged(&self, file: &File) -> Result<(), Error> {
        let now = file.metadata().map_err(|e| Error::file(&self.path, ErrorKind::Io(e)))?.len();
        if now != self.digest.bytes {
            return Err(Error::file(&self.path, ErrorKind::Changed { indexed: self.digest.bytes, now }));
        }
        Ok(())
    }
}

type Block = Arc<Vec<RecordBatch>>;

/// A small least-recently-used cache of decoded blocks, keyed by (row group, first row).
struct Lru {
    capacity: usize,
    tick: u64,
    entries: Vec<((usize, usize), u64, Block)>,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru { capacity, tick: 0, entries: Vec::with_capacity(capacity) }
    }

    fn get(&mut self, key: (usize, usize)) -> Option<Block> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.iter_mut().find(|(k, _, _)| *k == key).map(|(_, used, block)| {
            *used = tick;
            block.clone()
        })
    }

    fn insert(&mut self, key: (usize, usize), block: Block) {
        if self.capacity == 0 || self.entries.iter().any(|(k, _, _)| *k == key) {
            return;
        }
        self.tick += 1;
        if self.entries.len() == self.capacity {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].1).expect("capacity > 0");
            self.entries.swap_remove(oldest);
        }
        self.entries.push((key, self.tick, block));
    }
}
