//! The archive file, apart from any database: gzip over JSON lines, versioned
//! and checksummed.
//!
//! ```text
//! {"format":"ieum-archive","version":1,"schema":"m2026…","source":"sqlite","createdAt":"…",
//!  "tables":[{"name":"users","columns":[{"name":"id","kind":"uuid"},…],"rows":3},…]}
//! {"table":"users"}
//! ["0193…","mina",…]                      one JSON array per row, columns in header order
//! …                                        every table of the header, in its order
//! {"object":{"key":"attachments/…/image","size":52341}}   with --with-files: each
//! {"chunk":"iVBORw0KGgo…"}                                  object's bytes, base64,
//! …                                                        in chunks of 192 KiB
//! {"end":{"rows":123456,"objects":2,"sha256":"…"}}   SHA-256 of every byte above, uncompressed
//! ```
//!
//! A [`Reader`] accepts an archive only as a whole: the header's format and
//! version, each table's marker, row count and row width, every value of its
//! column's kind, the end line's total and checksum, and nothing after it.

use std::io::{self, BufRead, BufReader, Read, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sea_orm::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ArchiveError;

pub const FORMAT: &str = "ieum-archive";
pub const VERSION: u32 = 1;
/// The longest line a reader takes: far above any row (a message's content is
/// limited to kilobytes), so a damaged file cannot fill memory.
pub const MAX_LINE: usize = 16 << 20;
/// The largest stored file a reader takes (it holds one in memory at a time).
pub const MAX_OBJECT: u64 = 1 << 30;
/// Bytes of a stored file per chunk line (256 KiB of base64).
const CHUNK: usize = 192 << 10;

/// What a column holds, the same on both backends (SQLite declares every
/// integer `integer`, so integers are one kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Uuid,
    Timestamp,
    Bool,
    Int,
    Float,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The last migration of the database it was written from.
    pub schema: String,
    /// `sqlite` or `postgres`.
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub tables: Vec<Table>,
    /// Stored files follow the tables.
    #[serde(default)]
    pub files: bool,
}

impl Header {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Marker {
    table: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    rows: u64,
    #[serde(default)]
    objects: u64,
    sha256: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectHead {
    key: String,
    size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectLine {
    object: ObjectHead,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunk {
    chunk: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: End,
}

/// Writes an archive line by line; [`Writer::finish`] adds the end line.
pub struct Writer<W: Write> {
    out: GzEncoder<W>,
    hash: Sha256,
    rows: u64,
    objects: u64,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Self> {
        let mut w = Self {
            out: GzEncoder::new(out, Compression::fast()),
            hash: Sha256::new(),
            rows: 0,
            objects: 0,
            line: Vec::with_capacity(4096),
        };
        w.line(header)?;
        Ok(w)
    }

    fn line(&mut self, value: &impl Serialize) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)?;
        self.line.push(b'\n');
        self.hash.update(&self.line);
        self.out.write_all(&self.line)
    }

    pub fn table(&mut self, name: &str) -> io::Result<()> {
        self.line(&Marker {
            table: name.to_owned(),
        })
    }

    pub fn row(&mut self, values: &[Json]) -> io::Result<()> {
        self.rows += 1;
        self.line(&values)
    }

    /// A stored file, after every table (the header says `files`).
    pub fn object(&mut self, key: &str, bytes: &[u8]) -> io::Result<()> {
        use base64::Engine as _;
        self.objects += 1;
        self.line(&ObjectLine {
            object: ObjectHead {
                key: key.to_owned(),
                size: bytes.len() as u64,
            },
        })?;
        for part in bytes.chunks(CHUNK) {
            self.line(&Chunk {
                chunk: base64::engine::general_purpose::STANDARD.encode(part),
            })?;
        }
        Ok(())
    }

    /// Writes the end line and the gzip trailer; answers the rows and the
    /// files written.
    pub fn finish(mut self) -> io::Result<(W, u64, u64)> {
        let end = EndLine {
            end: End {
                rows: self.rows,
                objects: self.objects,
                sha256: hex(&self.hash.clone().finalize()),
            },
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &end)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok((self.out.finish()?, self.rows, self.objects))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One step of a [`Reader`].
#[derive(Debug)]
pub enum Item {
    /// Rows of the header's table at this index, converted to its columns' kinds.
    Rows(usize, Vec<Vec<Value>>),
    /// A stored file: its key and bytes.
    Object(String, Vec<u8>),
    /// The end line held, and checked out.
    End,
}

/// Reads and checks an archive; rows come in batches of at most `batch`.
pub struct Reader<R: Read> {
    input: BufReader<GzDecoder<R>>,
    header: Header,
    hash: Sha256,
    buf: Vec<u8>,
    line_no: u64,
    table: usize,
    /// Rows left of the current table; `None` before its marker.
    left: Option<u64>,
    rows: u64,
    objects: u64,
    batch: usize,
    done: bool,
}

impl<R: Read> Reader<R> {
    pub fn open(input: R, batch: usize) -> Result<Self, ArchiveError> {
        let mut r = Self {
            input: BufReader::with_capacity(1 << 16, GzDecoder::new(input)),
            header: placeholder_header(),
            hash: Sha256::new(),
            buf: Vec::with_capacity(4096),
            line_no: 0,
            table: 0,
            left: None,
            rows: 0,
            objects: 0,
            batch: batch.max(1),
            done: false,
        };
        if !r.read_line()? {
            return Err(ArchiveError::Damaged("the file is empty".into()));
        }
        let header: Header = serde_json::from_slice(&r.buf)
            .map_err(|_| ArchiveError::Damaged("this is not an ieum archive".into()))?;
        if header.format != FORMAT {
            return Err(ArchiveError::Damaged("this is not an ieum archive".into()));
        }
        if header.version != VERSION {
            return Err(ArchiveError::Version(header.version));
        }
        r.hash.update(&r.buf);
        r.header = header;
        Ok(r)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Reads one line into `buf` (without its newline); false at the end of
    /// the data.
    fn read_line(&mut self) -> Result<bool, ArchiveError> {
        self.buf.clear();
        loop {
            let available = self.input.fill_buf().map_err(damaged)?;
            if available.is_empty() {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                return Err(self.truncated());
            }
            let (take, newline) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if self.buf.len() + take > MAX_LINE {
                return Err(ArchiveError::Damaged(format!(
                    "line {} is longer than {MAX_LINE} bytes",
                    self.line_no + 1
                )));
            }
            self.buf.extend_from_slice(&available[..take]);
            self.input.consume(take);
            if newline {
                self.line_no += 1;
                return Ok(true);
            }
        }
    }

    fn truncated(&self) -> ArchiveError {
        ArchiveError::Damaged(format!(
            "the archive is truncated: it ends after line {} without its end line",
            self.line_no
        ))
    }

    fn bad_line(&self, what: &str) -> ArchiveError {
        ArchiveError::Damaged(format!("line {}: {what}", self.line_no))
    }

    /// The next batch of rows, or the end once every table was read and the
    /// checksum holds.
    pub fn next_item(&mut self) -> Result<Item, ArchiveError> {
        if self.done {
            return Ok(Item::End);
        }
        let mut out = Vec::new();
        loop {
            if self.table == self.header.tables.len() {
                if !self.read_line()? {
                    return Err(self.truncated());
                }
                if self.header.files
                    && let Ok(head) = serde_json::from_slice::<ObjectLine>(&self.buf)
                {
                    self.hash.update(&self.buf);
                    let bytes = self.read_object(head.object.size)?;
                    self.objects += 1;
                    return Ok(Item::Object(head.object.key, bytes));
                }
                self.read_end()?;
                self.done = true;
                return Ok(Item::End);
            }
            match self.left {
                Some(0) => {
                    self.table += 1;
                    self.left = None;
                    if !out.is_empty() {
                        return Ok(Item::Rows(self.table - 1, out));
                    }
                }
                None => {
                    if !self.read_line()? {
                        return Err(self.truncated());
                    }
                    let table = &self.header.tables[self.table];
                    let marker: Marker = serde_json::from_slice(&self.buf)
                        .map_err(|_| self.bad_line("expected a table marker"))?;
                    if marker.table != table.name {
                        return Err(self.bad_line(&format!(
                            "expected table {}, found {}",
                            table.name, marker.table
                        )));
                    }
                    self.left = Some(table.rows);
                    self.hash.update(&self.buf);
                }
                Some(left) => {
                    if !self.read_line()? {
                        return Err(self.truncated());
                    }
                    out.push(self.row()?);
                    self.hash.update(&self.buf);
                    self.rows += 1;
                    self.left = Some(left - 1);
                    if out.len() >= self.batch {
                        return Ok(Item::Rows(self.table, out));
                    }
                }
            }
        }
    }

    /// The line read as a row of the current table.
    fn row(&self) -> Result<Vec<Value>, ArchiveError> {
        let table = &self.header.tables[self.table];
        let row: Vec<Json> = serde_json::from_slice(&self.buf)
            .map_err(|_| self.bad_line(&format!("expected a row of {}", table.name)))?;
        if row.len() != table.columns.len() {
            return Err(self.bad_line(&format!(
                "a row of {} has {} values, not {}",
                table.name,
                row.len(),
                table.columns.len()
            )));
        }
        row.into_iter()
            .zip(&table.columns)
            .map(|(v, c)| {
                to_value(c.kind, v)
                    .map_err(|e| self.bad_line(&format!("{}.{}: {e}", table.name, c.name)))
            })
            .collect()
    }

    /// The chunk lines of a file of `size` bytes.
    fn read_object(&mut self, size: u64) -> Result<Vec<u8>, ArchiveError> {
        use base64::Engine as _;
        if size > MAX_OBJECT {
            return Err(self.bad_line(&format!(
                "a stored file of {size} bytes is over the limit of {MAX_OBJECT}"
            )));
        }
        // Grown as chunks arrive: a damaged size must not reserve a gigabyte.
        let mut bytes = Vec::with_capacity(size.min(4 * CHUNK as u64) as usize);
        while (bytes.len() as u64) < size {
            if !self.read_line()? {
                return Err(self.truncated());
            }
            let chunk: Chunk = serde_json::from_slice(&self.buf)
                .map_err(|_| self.bad_line("expected a chunk of a stored file"))?;
            base64::engine::general_purpose::STANDARD
                .decode_vec(chunk.chunk.as_bytes(), &mut bytes)
                .map_err(|_| self.bad_line("a chunk is not base64"))?;
            if bytes.len() as u64 > size {
                return Err(self.bad_line("a stored file is longer than its size"));
            }
            self.hash.update(&self.buf);
        }
        Ok(bytes)
    }

    /// Checks the end line, already read into `buf`.
    fn read_end(&mut self) -> Result<(), ArchiveError> {
        let end: EndLine = serde_json::from_slice(&self.buf)
            .map_err(|_| self.bad_line("expected the end line after the last table"))?;
        if end.end.rows != self.rows {
            return Err(ArchiveError::Damaged(format!(
                "the end line counts {} rows, the archive holds {}",
                end.end.rows, self.rows
            )));
        }
        if end.end.objects != self.objects {
            return Err(ArchiveError::Damaged(format!(
                "the end line counts {} stored files, the archive holds {}",
                end.end.objects, self.objects
            )));
        }
        if end.end.sha256 != hex(&self.hash.clone().finalize()) {
            return Err(ArchiveError::Damaged(
                "the checksum does not match: the archive was altered".into(),
            ));
        }
        if self.read_line()? {
            return Err(self.bad_line("data after the end line"));
        }
        Ok(())
    }
}

fn damaged(e: io::Error) -> ArchiveError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ArchiveError::Damaged(
            "the archive is truncated: its compressed stream ends early".into(),
        ),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            ArchiveError::Damaged(format!("the compressed stream is damaged: {e}"))
        }
        _ => ArchiveError::Io(e),
    }
}

fn placeholder_header() -> Header {
    Header {
        format: String::new(),
        version: 0,
        schema: String::new(),
        source: String::new(),
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        tables: Vec::new(),
        files: false,
    }
}

/// A timestamp as the archive writes it: RFC 3339, UTC, as precise as stored.
pub fn timestamp(t: DateTime<Utc>) -> Json {
    Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// An archive value as a database value of `kind` (null stays a typed null).
pub fn to_value(kind: Kind, v: Json) -> Result<Value, String> {
    let null = v.is_null();
    let wrong = || format!("not a {kind:?} value");
    Ok(match kind {
        Kind::Uuid => Value::Uuid(if null {
            None
        } else {
            Some(
                v.as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(wrong)?,
            )
        }),
        Kind::Timestamp => Value::ChronoDateTimeUtc(if null {
            None
        } else {
            Some(
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .ok_or_else(wrong)?
                    .with_timezone(&Utc),
            )
        }),
        Kind::Bool => Value::Bool(if null {
            None
        } else {
            Some(v.as_bool().ok_or_else(wrong)?)
        }),
        Kind::Int => Value::BigInt(if null {
            None
        } else {
            Some(v.as_i64().ok_or_else(wrong)?)
        }),
        Kind::Float => Value::Double(if null {
            None
        } else {
            Some(v.as_f64().ok_or_else(wrong)?)
        }),
        Kind::Text => Value::String(match v {
            Json::Null => None,
            Json::String(s) => Some(s),
            _ => return Err(wrong()),
        }),
    })
}

#[cfg(test)]
mod tests;
