//! Tracking hits: answered at once by the HTTP edge, queued here, and
//! written in batches by one writer per process (a bounded queue; a flush
//! [`FLUSH_EVERY`] after the first hit of a batch, in transactions of at
//! most [`BATCH`] hits, and a last one at shutdown, so none is lost on a
//! graceful stop).

pub mod agent;

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::domain::tracking::{self, Hit};
use crate::store::Store;

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

/// Writes the hits `recorder` queues until `stop` turns true, then writes
/// what is left. `window`: seconds after delivery in which a hit is a
/// scanner's.
pub async fn write_hits(store: Store, recorder: &Recorder, window: i64, mut stop: watch::Receiver<bool>) {
    let Some(mut rx) = recorder.take() else {
        return;
    };
    let mut batch: Vec<Hit> = Vec::with_capacity(BATCH);
    let mut stopping = false;
    while !stopping {
        // Asleep until a hit comes; then asleep again for the rest of the
        // flush period, and the queue taken in one go: the writer wakes a
        // few times a second whatever the rate, not once a hit.
        tokio::select! {
            n = rx.recv_many(&mut batch, QUEUE) => if n == 0 { break },
            _ = stop.wait_for(|s| *s) => stopping = true,
        }
        if !stopping {
            tokio::select! {
                _ = tokio::time::sleep(FLUSH_EVERY) => {}
                _ = stop.wait_for(|s| *s) => stopping = true,
            }
        }
        // What came meanwhile, bounded: senders never keep the writer here.
        for _ in 0..QUEUE {
            let Ok(h) = rx.try_recv() else { break };
            batch.push(h);
        }
        flush(&store, &mut batch, window).await;
    }
}

/// Writes a batch, retrying a failed write a few times (a restarting
/// database) before giving it up with an error in the log.
async fn flush(store: &Store, batch: &mut Vec<Hit>, window: i64) {
    for chunk in batch.chunks(BATCH) {
        let mut tries = 0;
        loop {
            match tracking::record_hits(store, chunk, window).await {
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
