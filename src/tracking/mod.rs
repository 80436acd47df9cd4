//! Tracking hits: answered at once by the HTTP edge, queued here, and
//! written in batches by one writer per process (a bounded queue; a flush
//! every [`FLUSH_EVERY`] or [`BATCH`] hits, and a last one at shutdown, so
//! none is lost on a graceful stop).

pub mod agent;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::app::App;
use crate::store::Hit;

/// Hits waiting at most; a full queue makes requests wait (never drops).
const QUEUE: usize = 65_536;
/// Hits written in one transaction at most.
const BATCH: usize = 4_096;
/// The longest a hit waits for its batch.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

pub struct Recorder {
    tx: mpsc::Sender<Hit>,
    rx: Mutex<Option<mpsc::Receiver<Hit>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Recorder {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }
}

impl Recorder {
    /// Queues a hit for the writer.
    pub async fn record(&self, hit: Hit) {
        if self.tx.send(hit).await.is_err() {
            tracing::error!("tracking hit after the writer stopped");
        }
        metrics::counter!("tracking_hits_total").increment(1);
    }

    /// The queue's receiving end, for the one writer of this process.
    fn take(&self) -> Option<mpsc::Receiver<Hit>> {
        self.rx.lock().expect("recorder lock").take()
    }
}

/// Click links looked up lately: (delivery, link) → URL, so a busy link
/// costs no query. Bounded: emptied when full.
#[derive(Default)]
pub struct LinkCache(Mutex<HashMap<(i64, i64), Arc<str>>>);

const LINKS_CACHED: usize = 100_000;

impl LinkCache {
    pub fn get(&self, delivery: i64, link: i64) -> Option<Arc<str>> {
        self.0
            .lock()
            .expect("link cache lock")
            .get(&(delivery, link))
            .cloned()
    }

    pub fn put(&self, delivery: i64, link: i64, url: Arc<str>) {
        let mut cache = self.0.lock().expect("link cache lock");
        if cache.len() >= LINKS_CACHED {
            cache.clear();
        }
        cache.insert((delivery, link), url);
    }
}

/// Writes queued hits until `stop` turns true, then writes what is left.
pub async fn write_hits(app: App, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = app.hits.take() else {
        return;
    };
    let window = app.config.scanner_window.as_secs() as i64;
    let mut batch: Vec<Hit> = Vec::with_capacity(BATCH);
    let mut stopping = false;
    while !stopping {
        if batch.is_empty() {
            tokio::select! {
                hit = rx.recv() => match hit {
                    Some(h) => batch.push(h),
                    None => break,
                },
                _ = stop.wait_for(|s| *s) => stopping = true,
            }
        }
        let deadline = Instant::now() + FLUSH_EVERY;
        while !stopping && batch.len() < BATCH {
            tokio::select! {
                hit = rx.recv() => match hit {
                    Some(h) => batch.push(h),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = stop.wait_for(|s| *s) => stopping = true,
            }
        }
        if stopping {
            while let Ok(h) = rx.try_recv() {
                batch.push(h);
            }
        }
        flush(&app, &mut batch, window).await;
    }
}

/// Writes a batch, retrying a failed write a few times (a restarting
/// database) before giving it up with an error in the log.
async fn flush(app: &App, batch: &mut Vec<Hit>, window: i64) {
    for chunk in batch.chunks(BATCH) {
        let mut tries = 0;
        loop {
            match app.store.record_hits(chunk, window).await {
                Ok(_) => break,
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, "writing tracking hits; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, hits = chunk.len(), "tracking hits not written");
                    break;
                }
            }
        }
    }
    batch.clear();
}

/// `part / whole × 100` with two decimals, rounded half up; `0.00` when
/// `whole` is 0.
pub fn ratio(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0.00".to_string();
    }
    let hundredths = (part.max(0) as i128 * 20_000 + whole as i128) / (2 * whole as i128);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::ratio;

    #[test]
    fn ratios_have_two_decimals_rounded_half_up() {
        assert_eq!(ratio(0, 0), "0.00");
        assert_eq!(ratio(1, 3), "33.33");
        assert_eq!(ratio(2, 3), "66.67");
        assert_eq!(ratio(1, 8), "12.50");
        assert_eq!(ratio(1, 1), "100.00");
        assert_eq!(ratio(1, 200_000), "0.00");
        assert_eq!(ratio(1, 20_000), "0.01");
    }
}
