//! Answers streamed a batch at a time, for the vendor API and the console
//! (H-9: listings and exports are never held whole in memory).

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::stream;

use crate::domain::storage::StoreError;

/// Rows fetched per query while streaming a listing or an export.
pub const STREAM_BATCH: i64 = 2_000;

/// Produces the next batch of a streamed answer and the state after it;
/// `None` at the end.
pub type NextBatch<S> = fn(S) -> Batch<S>;
/// The bytes of one batch and the state after it; `None` at the end.
pub type Batch<S> = BoxFuture<'static, Result<Option<(Vec<u8>, S)>, StoreError>>;

/// A body streamed a batch at a time (H-9: listings and exports are never
/// held whole): `head`, the batches, then `tail`. A failure midway ends the
/// body early (the client sees a cut answer, the log says why).
pub fn streamed<S: Send + 'static>(head: Vec<u8>, state: S, next: NextBatch<S>, tail: &'static [u8]) -> Body {
    enum Phase<S> {
        Head(Vec<u8>, S),
        Rows(S),
        Done,
    }
    Body::from_stream(stream::unfold(
        Phase::Head(head, state),
        move |phase| async move {
            match phase {
                Phase::Head(head, s) => Some((Ok::<_, std::io::Error>(Bytes::from(head)), Phase::Rows(s))),
                Phase::Rows(s) => match next(s).await {
                    Ok(Some((bytes, s))) => Some((Ok(Bytes::from(bytes)), Phase::Rows(s))),
                    Ok(None) => Some((Ok(Bytes::from_static(tail)), Phase::Done)),
                    Err(e) => {
                        tracing::error!(error = %e, "streamed answer failed midway");
                        Some((Err(std::io::Error::other("streamed answer failed")), Phase::Done))
                    }
                },
                Phase::Done => None,
            }
        },
    ))
}

/// A text export (A.5.3): UTF-8, TAB-separated, LF after every line.
pub fn text_export<S: Send + 'static>(filename: String, state: S, next: NextBatch<S>) -> Response {
    let mut r = (StatusCode::OK, streamed(Vec::new(), state, next, b"")).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
