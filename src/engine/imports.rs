//! The import runner (4.9.3, H-7): takes queued import jobs and reads their
//! files a batch of lines at a time. Each batch commits its addresses with
//! the job's new offset and counts, so a crash or restart resumes after the
//! last committed batch, never doubling a row or a count. With several
//! workers a job is leased; a lease that is not renewed (its worker died)
//! lets another worker take the job over.

use std::hash::RandomState;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::AbortOnDrop;
use crate::app::App;
use crate::domain::lists::{self, AddressRecords, FileEncoding, PackedAddresses};
use crate::domain::lists::{ImportJob, ImportProgress};
use crate::domain::storage::FileStorage;
use crate::store::{StoreError, StoreResult};

/// Lines per batch (and per transaction).
const BATCH_LINES: i64 = 20_000;
/// The longest line kept in memory: far beyond any address record. A
/// longer one (a binary blob, a file of one line) is skipped as it streams
/// by and counted invalid, so memory stays bounded whatever the upload.
const MAX_LINE: usize = 64 * 1024;
/// Seconds a worker holds a job without renewing it.
const LEASE: i64 = 30;
/// The bits of a file's repeat filter: 8 MiB, whatever the file's size.
/// Measured with distinct addresses: none of a million wrongly taken for a
/// repeat; 90 of 3.5 million (a file of the largest size, D-17, of short
/// records), one in 39,000.
const FILTER_BITS: usize = 1 << 26;
/// Bits set per address in the filter.
const FILTER_HASHES: u32 = 8;
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
        job = %job.id,
        customer = %job.customer_id,
        list = %job.list_id,
        "import started"
    );
    // The file is read and parsed a batch ahead of the writer, on the other
    // core; what is read ahead and not committed is read again on resumption.
    let (sender, mut receiver) = mpsc::channel(1);
    let reader = AbortOnDrop(tokio::spawn(read_file(app.clone(), job.clone(), sender)));
    loop {
        if *stop.borrow() || batches == 0 {
            drop(reader);
            app.store.release_import(job.id).await?;
            return Ok(true);
        }
        batches -= 1;
        let batch = match receiver.recv().await {
            Some(Ok(b)) => b,
            failed => {
                let error = match failed {
                    Some(Err(e)) => e.to_string(),
                    _ => "the reader stopped".to_string(),
                };
                tracing::error!(job = %job.id, error, "import failed");
                app.store
                    .fail_import(job.id, "the import file could not be read", app.clock.now())
                    .await?;
                return Ok(true);
            }
        };
        let now = app.clock.now();
        let Some(added) = app
            .store
            .import_batch(
                &job,
                &batch.rows,
                &batch.repeats,
                batch.progress,
                now,
                now + LEASE,
            )
            .await?
        else {
            tracing::info!(job = %job.id, "import stopped: its list was deleted");
            return Ok(true);
        };
        job.offset_done = batch.progress.offset;
        job.lines_done += batch.progress.lines;
        job.added += added as i64;
        if batch.progress.finished {
            if let Some(file) = job.file_id {
                app.store.detach_import_file(job.id).await?;
                app.files.delete(job.customer_id, &[file]).await?;
            }
            tracing::info!(
                job = %job.id,
                lines = job.lines_done,
                added = job.added,
                "import done"
            );
            return Ok(true);
        }
    }
}

/// A batch of lines parsed, with the progress to commit with its rows.
struct Batch {
    rows: PackedAddresses,
    /// The positions in `rows` of those that may repeat an address read
    /// before (`FileKeys`), in order.
    repeats: Vec<usize>,
    progress: ImportProgress,
}

/// Reads the job's file from its offset and sends it on in batches of
/// `BATCH_LINES` lines, the last one marked finished; stops at the first
/// error (sent on too) or when the writer is gone.
async fn read_file(app: App, job: ImportJob, out: mpsc::Sender<StoreResult<Batch>>) {
    let cursor = match job.file_id {
        Some(file) => {
            app.files
                .cursor_at(job.customer_id, file, job.offset_done as u64)
                .await
        }
        None => Err(StoreError::NotFound("file")),
    };
    let mut cursor = match cursor {
        Ok(c) => c,
        Err(e) => {
            let _ = out.send(Err(e)).await;
            return;
        }
    };
    let mut lines = Lines::new(&job, app.store.uses_import_repeats());
    loop {
        let chunk = match cursor.next_chunk().await {
            Ok(c) => c,
            Err(e) => {
                let _ = out.send(Err(e)).await;
                return;
            }
        };
        // Parsing is CPU work: off the runtime's threads.
        let parsed = tokio::task::spawn_blocking(move || {
            let batches = match &chunk {
                Some(bytes) => lines.feed(bytes),
                None => vec![lines.finish()],
            };
            (lines, batches, chunk.is_none())
        })
        .await;
        let Ok((back, batches, end)) = parsed else { return };
        lines = back;
        for b in batches {
            if out.send(Ok(b)).await.is_err() {
                return;
            }
        }
        if end {
            return;
        }
    }
}

/// Splits a file's bytes into lines and parses them into batches.
struct Lines {
    encoding: FileEncoding,
    /// The start of a line that the next chunk ends.
    pending: Vec<u8>,
    /// Bytes of the current line let go because it is longer than `MAX_LINE`.
    dropped: i64,
    batch: Batch,
    /// A line with text was read (so a malformed line is no header).
    content_seen: bool,
    /// None when the store does not use the marks.
    keys: Option<FileKeys>,
}

/// The addresses read so far, in a Bloom filter of a fixed size: a row
/// that repeats an earlier line anywhere in the file is always marked as a
/// possible repeat, a new one very seldom. The store may then write the
/// unmarked rows the fast way, as new, and check only the marked ones.
/// Kept for one run of the job only (the reader lives as long as the
/// writer): after a restart the rows of the batches committed before are in
/// the list, where the store's duplicate check finds them.
struct FileKeys(fastbloom::BloomFilter<RandomState>);

impl FileKeys {
    fn new() -> FileKeys {
        // Random keys: no one can make an address look like a repeat on purpose.
        let filter = fastbloom::BloomFilter::with_num_bits(FILTER_BITS)
            .hasher(RandomState::new())
            .hashes(FILTER_HASHES);
        FileKeys(filter)
    }

    /// True when `key` may have been read before; remembers it.
    fn insert(&mut self, key: &str) -> bool {
        self.0.insert(key)
    }
}

impl Lines {
    /// `mark`: whether to mark the rows that may repeat an earlier line.
    fn new(job: &ImportJob, mark: bool) -> Lines {
        Lines {
            encoding: job.encoding,
            pending: Vec::new(),
            dropped: 0,
            batch: Batch::at(job.offset_done),
            content_seen: job.lines_done > 0,
            keys: mark.then(FileKeys::new),
        }
    }

    /// Takes the next bytes of the file; returns the batches they complete.
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<Batch> {
        let mut done = Vec::new();
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            self.hold(&bytes[..end]);
            self.end_line(1, &mut done);
            bytes = &bytes[end + 1..];
        }
        self.hold(bytes);
        done
    }

    /// Keeps the start of the current line, or only counts it once it is
    /// too long to be a record.
    fn hold(&mut self, bytes: &[u8]) {
        if self.dropped > 0 || self.pending.len() + bytes.len() > MAX_LINE {
            self.dropped += (self.pending.len() + bytes.len()) as i64;
            self.pending.clear();
        } else {
            self.pending.extend_from_slice(bytes);
        }
    }

    /// The current line ends (`lf`: 1 with its LF, 0 at the end of the file).
    fn end_line(&mut self, lf: i64, done: &mut Vec<Batch>) {
        let line = std::mem::take(&mut self.pending);
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            self.batch.overlong(dropped + lf, &mut self.content_seen);
            self.close_if_full(done);
        } else {
            self.line(&line, line.len() as i64 + lf, done);
        }
        // Keep the buffer's allocation for the next line.
        self.pending = line;
        self.pending.clear();
    }

    /// The file has ended: the last batch, with a last line without LF.
    fn finish(&mut self) -> Batch {
        let mut done = Vec::new();
        if !self.pending.is_empty() || self.dropped > 0 {
            self.end_line(0, &mut done);
        }
        // A full batch that the last line completed ends the file just the same.
        let mut last = done
            .pop()
            .unwrap_or_else(|| std::mem::replace(&mut self.batch, Batch::at(0)));
        last.progress.finished = true;
        last
    }

    fn close_if_full(&mut self, done: &mut Vec<Batch>) {
        if self.batch.progress.lines >= BATCH_LINES {
            let next = Batch::at(self.batch.progress.offset);
            done.push(std::mem::replace(&mut self.batch, next));
        }
    }

    /// One line (without its LF) that takes `consumed` bytes of the file.
    fn line(&mut self, raw: &[u8], consumed: i64, done: &mut Vec<Batch>) {
        self.batch.line(
            raw,
            consumed,
            self.encoding,
            &mut self.content_seen,
            self.keys.as_mut(),
        );
        self.close_if_full(done);
    }
}

impl Batch {
    /// An empty batch that starts at `offset` of the file.
    fn at(offset: i64) -> Batch {
        Batch {
            rows: PackedAddresses::default(),
            repeats: Vec::new(),
            progress: ImportProgress {
                offset,
                ..Default::default()
            },
        }
    }

    /// A line longer than `MAX_LINE`: no record, counted invalid.
    fn overlong(&mut self, consumed: i64, content_seen: &mut bool) {
        self.progress.offset += consumed;
        self.progress.lines += 1;
        self.progress.invalid += 1;
        *content_seen = true;
    }

    fn line(
        &mut self,
        raw: &[u8],
        consumed: i64,
        encoding: FileEncoding,
        content_seen: &mut bool,
        keys: Option<&mut FileKeys>,
    ) {
        let at_start = self.progress.offset == 0;
        self.progress.offset += consumed;
        self.progress.lines += 1;
        let raw = if at_start {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Some(text) = encoding.decode_line(raw) else {
            self.progress.invalid += 1;
            *content_seen = true;
            return;
        };
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let first = !std::mem::replace(content_seen, true);
        match lists::parse_import_line(text) {
            Some(a) => {
                self.rows.push(&a);
                if let Some(keys) = keys
                    && self.rows.last_key().is_some_and(|k| keys.insert(k))
                {
                    self.repeats.push(self.rows.count() - 1);
                }
            }
            // A first line that is no address is a header: skipped, not counted.
            None if first => {}
            None => self.progress.invalid += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ImportJob {
        ImportJob {
            id: crate::domain::ids::ImportId(1),
            customer_id: crate::domain::ids::CustomerId(1),
            list_id: crate::domain::ids::ListId(1),
            file_id: None,
            file_name: String::new(),
            encoding: FileEncoding::Utf8,
            state: crate::domain::lists::ImportState::Running,
            size: 0,
            offset_done: 0,
            lines_done: 0,
            added: 0,
            invalid: 0,
            duplicate: 0,
            error: String::new(),
            created_at: 0,
            finished_at: None,
        }
    }

    /// Feeds `file` in chunks of `chunk` bytes; the last batch's progress.
    fn read(file: &[u8], chunk: usize) -> (ImportProgress, usize) {
        let mut lines = Lines::new(&job(), false);
        let mut batches = Vec::new();
        for c in file.chunks(chunk) {
            batches.extend(lines.feed(c));
            assert!(lines.pending.len() <= MAX_LINE, "memory stays bounded");
        }
        let last = lines.finish();
        let rows = batches.iter().chain([&last]).map(|b| b.rows.count()).sum();
        (last.progress, rows)
    }

    #[test]
    fn a_repeat_anywhere_in_the_file_is_marked_and_kept_in_order() {
        let mut file = b"a@x.cn;first\n".to_vec();
        for i in 0..BATCH_LINES {
            file.extend_from_slice(format!("u{i}@x.cn\n").as_bytes());
        }
        file.extend_from_slice(b"A@X.CN;again\nu7@X.cn\nb@x.cn\n");
        let mut lines = Lines::new(&job(), true);
        let mut batches = lines.feed(&file);
        batches.push(lines.finish());
        let counts: Vec<(usize, &[usize])> = batches
            .iter()
            .map(|b| (b.rows.count(), b.repeats.as_slice()))
            .collect();
        // The first line and 19,999 more, then u19999, two repeats, b.
        assert_eq!(counts, [(BATCH_LINES as usize, &[][..]), (4, &[1, 2][..])]);
        let last = &batches[1].rows;
        let kept: Vec<_> = (0..4).map(|i| last.record(i).key).collect();
        assert_eq!(kept, ["u19999@x.cn", "a@x.cn", "u7@x.cn", "b@x.cn"]);
    }

    #[test]
    fn an_overlong_line_is_skipped_as_it_streams_and_counted_invalid() {
        let mut file = b"a@x.cn;A\n".to_vec();
        file.extend(std::iter::repeat_n(b'z', 3 * MAX_LINE));
        file.extend_from_slice(b"\nb@x.cn;B\n");
        file.extend(std::iter::repeat_n(b'y', MAX_LINE + 1));
        for chunk in [7, 4096, MAX_LINE, file.len()] {
            let (p, rows) = read(&file, chunk);
            assert_eq!(rows, 2, "chunk {chunk}");
            assert_eq!(p.invalid, 2, "chunk {chunk}");
            assert_eq!(p.lines, 4, "chunk {chunk}");
            assert_eq!(
                p.offset,
                file.len() as i64,
                "every byte accounted for (chunk {chunk})"
            );
            assert!(p.finished);
        }
    }
}
