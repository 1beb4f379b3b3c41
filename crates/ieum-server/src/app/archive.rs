//! `ieum export` and `ieum import` (issue 20): the store's archive on a file,
//! with a progress bar on a terminal.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ieum_domain::ports::{ObjectStore, SystemClock};

use ieum_store::archive::{self, Progress, Summary};
use ieum_store::{Store, StoreOptions};
use indicatif::{ProgressBar, ProgressStyle};

use super::BoxError;
use crate::config::Config;

/// The configured database, opened as the shell commands do: its directory
/// and file private, the schema left as it is.
pub async fn open_store(config: &Config) -> Result<Store, BoxError> {
    crate::config::private_dir(&config.data_dir)?;
    crate::config::private_database_file(&config.database_url)?;
    Ok(Store::connect(&config.database_url, &StoreOptions::default()).await?)
}

/// A bar on standard error, drawn only when that is a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new(verb: &'static str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} rows, {per_sec}, {eta} left",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(verb);
        Self(bar)
    }
}

impl Progress for Bar {
    fn begin(&self, total_rows: u64) {
        self.0.set_position(0);
        self.0.set_length(total_rows);
    }
    fn advance(&self, rows: u64) {
        self.0.inc(rows);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A new file only its owner reads: the archive holds password hashes.
fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

fn report(verb: &str, s: &Summary, at: &str, started: Instant) -> String {
    format!(
        "{verb} {} rows of {} tables and {} stored files (schema {}) {at} in {:.1} s",
        s.rows,
        s.tables,
        s.objects,
        s.schema,
        started.elapsed().as_secs_f64()
    )
}

/// Where `--out` writes: the file itself, or a new time-named file in a
/// directory (names sort by time).
fn target(out: PathBuf) -> PathBuf {
    if out.is_dir() {
        let name = chrono::Utc::now().format("ieum-%Y%m%dT%H%M%S%3fZ.archive");
        out.join(name.to_string())
    } else {
        out
    }
}

/// Removes all but the newest `keep` archives `export` wrote into `dir`.
fn rotate(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("ieum-") && n.ends_with(".archive"))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for old in names.into_iter().skip(keep) {
        let path = dir.join(old);
        std::fs::remove_file(&path)?;
        removed.push(path);
    }
    Ok(removed)
}

/// Where and what `ieum export` writes.
#[derive(Debug, Clone, Default)]
pub struct ExportTo {
    /// A file, `-` (standard output), or a directory.
    pub out: PathBuf,
    /// With a directory: the newest archives kept there.
    pub keep: Option<usize>,
    /// Carry attachments' stored files too.
    pub with_files: bool,
}

/// The configured file store (the local disk under the data dir, or S3).
fn file_store(config: &Config) -> Result<Arc<dyn ObjectStore>, BoxError> {
    let files = super::storage::files(config, Arc::new(SystemClock))?;
    super::storage::object_store(config, &files)
}

/// `ieum export --out FILE|DIR [--keep N] [--with-files]`: one snapshot of
/// the configured database. The file appears whole or not at all (written
/// beside it, then renamed); with a directory, older archives beyond the
/// newest `keep` go.
pub async fn export(config: Config, to: ExportTo) -> Result<(), BoxError> {
    let ExportTo {
        out,
        keep,
        with_files,
    } = to;
    let objects = with_files.then(|| file_store(&config)).transpose()?;
    let objects = objects.as_deref();
    let dir = out.is_dir().then(|| out.clone());
    if keep.is_some() && dir.is_none() {
        return Err("--keep needs --out to name a directory".into());
    }
    if keep == Some(0) {
        return Err("--keep must keep at least the archive just written".into());
    }
    let out = target(out);
    let store = open_store(&config).await?;
    let started = Instant::now();
    let bar = Bar::new("exporting");
    let result = if out.as_os_str() == "-" {
        let stdout = BufWriter::new(std::io::stdout().lock());
        archive::export(&store, stdout, objects, &bar)
            .await
            .and_then(|(mut w, s)| Ok((w.flush().map(|()| s))?))
    } else {
        let partial = out.with_extension("partial");
        let written = async {
            let file = BufWriter::new(create_private(&partial)?);
            let (file, summary) = archive::export(&store, file, objects, &bar).await?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&partial, &out)?;
            Ok(summary)
        }
        .await;
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        written
    };
    drop(bar);
    store.close().await;
    let summary = result?;
    let line = report(
        "exported",
        &summary,
        &format!("to {}", out.display()),
        started,
    );
    tracing::info!(rows = summary.rows, tables = summary.tables, "{line}");
    if out.as_os_str() != "-" {
        println!("{line}");
    }
    if let (Some(dir), Some(keep)) = (dir, keep) {
        for removed in rotate(&dir, keep)? {
            tracing::info!(file = %removed.display(), keep, "older archive removed");
        }
    }
    Ok(())
}

/// `ieum import FILE`: checks the whole archive before touching the
/// database, then loads it into the configured (empty) database in one
/// transaction.
pub async fn import(config: Config, file: PathBuf) -> Result<(), BoxError> {
    let started = Instant::now();
    let open = || -> Result<BufReader<File>, BoxError> {
        File::open(&file)
            .map(|f| BufReader::with_capacity(1 << 16, f))
            .map_err(|e| format!("cannot read {}: {e}", file.display()).into())
    };
    {
        let bar = Bar::new("checking");
        archive::verify(open()?, &bar)?;
    }
    let objects = file_store(&config)?;
    let store = open_store(&config).await?;
    let result = async {
        store.migrate().await?;
        let bar = Bar::new("importing");
        Ok::<_, BoxError>(archive::import(&store, open()?, objects.as_ref(), &bar).await?)
    }
    .await;
    store.close().await;
    let summary = result?;
    let line = report(
        "imported",
        &summary,
        &format!("from {}", file.display()),
        started,
    );
    tracing::info!(rows = summary.rows, tables = summary.tables, "{line}");
    println!("{line}");
    Ok(())
}
