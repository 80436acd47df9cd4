//! The import runner (4.9.3, H-7): takes queued import jobs and reads their
//! files a batch of lines at a time. Each batch commits its addresses with
//! the job's new offset and counts, so a crash or restart resumes after the
//! last committed batch, never doubling a row or a count. With several
//! workers a job is leased; a lease that is not renewed (its worker died)
//! lets another worker take the job over.

use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::domain::lists::{self, NewAddress};
use crate::store::{ImportJob, ImportProgress, StoreError, StoreResult};

/// Lines per batch (and per transaction).
const BATCH_LINES: i64 = 20_000;
/// Seconds a worker holds a job without renewing it.
const LEASE: i64 = 30;
const IDLE: Duration = Duration::from_secs(2);

/// Runs import jobs until `stop` turns true.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match run_one(&app, &stop).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "import runner"),
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = app.import_wakeup.notified() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// Takes one job and runs it to its end, or until `stop`; false when there
/// was none to take.
pub async fn run_one(app: &App, stop: &watch::Receiver<bool>) -> StoreResult<bool> {
    work(app, stop, usize::MAX).await
}

/// Takes one job and runs at most `batches` batches of it, then gives it
/// back: the step tests drive the runner with.
pub async fn run_batches(app: &App, batches: usize) -> StoreResult<bool> {
    let (_keep, stop) = watch::channel(false);
    work(app, &stop, batches).await
}

async fn work(app: &App, stop: &watch::Receiver<bool>, mut batches: usize) -> StoreResult<bool> {
    let now = app.clock.now();
    let Some(mut job) = app.store.claim_import_job(now, now + LEASE).await? else {
        return Ok(false);
    };
    tracing::info!(
        job = job.id,
        customer = job.customer_id,
        list = job.list_id,
        "import started"
    );
    loop {
        if *stop.borrow() || batches == 0 {
            app.store.release_import(job.id).await?;
            return Ok(true);
        }
        batches -= 1;
        let (rows, progress) = match read_batch(app, &job).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "import failed");
                app.store
                    .fail_import(job.id, "the import file could not be read", app.clock.now())
                    .await?;
                return Ok(true);
            }
        };
        let now = app.clock.now();
        let Some(added) = app
            .store
            .import_batch(&job, &rows, progress, now, now + LEASE)
            .await?
        else {
            tracing::info!(job = job.id, "import stopped: its list was deleted");
            return Ok(true);
        };
        job.offset_done = progress.offset;
        job.lines_done += progress.lines;
        job.added += added as i64;
        if progress.finished {
            if let Some(file) = job.file_id {
                app.store.detach_import_file(job.id).await?;
                app.files.delete(job.customer_id, &[file]).await?;
            }
            tracing::info!(
                job = job.id,
                lines = job.lines_done,
                added = job.added,
                "import done"
            );
            return Ok(true);
        }
    }
}

/// The next batch of the job's file from its offset: the addresses parsed,
/// and the progress to commit with them.
async fn read_batch(app: &App, job: &ImportJob) -> StoreResult<(Vec<NewAddress>, ImportProgress)> {
    let file = job.file_id.ok_or(StoreError::NotFound("file"))?;
    let mut cursor = app
        .files
        .cursor_at(job.customer_id, file, job.offset_done as u64)
        .await?;
    let mut batch = Batch {
        job,
        rows: Vec::new(),
        progress: ImportProgress {
            offset: job.offset_done,
            ..Default::default()
        },
        content_seen: job.lines_done > 0,
    };
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let mut start = 0;
        while let Some(len) = pending[start..].iter().position(|b| *b == b'\n') {
            batch.line(&pending[start..start + len], len as i64 + 1);
            start += len + 1;
            if batch.progress.lines >= BATCH_LINES {
                return Ok((batch.rows, batch.progress));
            }
        }
        pending.drain(..start);
        match cursor.next_chunk().await? {
            Some(chunk) => pending.extend_from_slice(&chunk),
            None => {
                if !pending.is_empty() {
                    let len = pending.len() as i64;
                    batch.line(&pending, len);
                }
                batch.progress.finished = true;
                return Ok((batch.rows, batch.progress));
            }
        }
    }
}

struct Batch<'a> {
    job: &'a ImportJob,
    rows: Vec<NewAddress>,
    progress: ImportProgress,
    /// A line with text was read (so a malformed line is no header).
    content_seen: bool,
}

impl Batch<'_> {
    /// One line (without its LF) that takes `consumed` bytes of the file.
    fn line(&mut self, raw: &[u8], consumed: i64) {
        let at_start = self.progress.offset == 0;
        self.progress.offset += consumed;
        self.progress.lines += 1;
        let raw = if at_start {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Some(text) = self.job.encoding.decode_line(raw) else {
            self.progress.invalid += 1;
            self.content_seen = true;
            return;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let first = !std::mem::replace(&mut self.content_seen, true);
        match lists::parse_import_line(text) {
            Some(a) => self.rows.push(a),
            // A first line that is no address is a header (INTERFACE.md): skipped, not counted.
            None if first => {}
            None => self.progress.invalid += 1,
        }
    }
}
