//! A request as hyper (or `lambda_http`) hands it over, read within its limits into the
//! router's [`Request`]; the router's [`Response`] back, a stored AIP streamed as it is read.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request as HttpRequest;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response as HttpResponse;
use http_body_util::{BodyExt, Limited};

use super::{Peer, RawPath, VerifiedClaims};
use crate::{Request, Response};

/// The request read whole, or the refusal to answer it with: 413 for a body over `limit`
/// (at once when its `Content-Length` says so), 408 for one too slow to arrive.
pub(super) async fn request(request: HttpRequest, limit: usize) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(axum::http::header::CONTENT_LENGTH).map(|v| v.to_str().map(str::parse::<u64>));
    match declared {
        Some(Ok(Ok(n))) if n > limit as u64 => return Err(too_large(limit)),
        Some(Ok(Ok(_))) | None => {}
        Some(_) => return Err(Response::error(400, "The Content-Length header is not a number.")),
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) if caused_by::<http_body_util::LengthLimitError>(e.as_ref()) => return Err(too_large(limit)),
        Err(e) if caused_by::<tower_http::timeout::TimeoutError>(e.as_ref()) => {
            return Err(Response::error(408, "The request's body did not arrive in time."))
        }
        Err(e) => return Err(Response::error(400, format!("The request's body could not be read: {e}."))),
    };
    let path = match parts.extensions.get::<RawPath>() {
        Some(RawPath(raw)) if !raw.is_empty() => raw.clone(),
        _ => parts.uri.path().to_string(),
    };
    Ok(Request {
        method: parts.method.as_str().to_ascii_uppercase(),
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body,
        claims: parts.extensions.get::<VerifiedClaims>().map(|c| c.0.clone()),
        peer: parts.extensions.get::<Peer>().map(|p| p.0.clone()),
    })
}

/// Whether `error`, or anything it wraps (axum boxes a layer's body error), is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(error);
    while let Some(e) = at {
        if e.is::<E>() {
            return true;
        }
        at = e.source();
    }
    false
}

fn too_large(limit: usize) -> Response {
    Response::error(413, format!("The request's body is larger than this route takes ({limit} bytes)."))
}

/// The router's answer as HTTP. A streamed answer larger than `streamed_answer` (API
/// Gateway's payload) is refused with 502: a download link is its way out.
pub(super) fn response(mut answer: Response, streamed_answer: Option<u64>) -> HttpResponse {
    let mut body = Body::from(std::mem::take(&mut answer.body));
    if let Some(stream) = answer.stream.take() {
        if streamed_answer.is_some_and(|most| stream.len > most) {
            return response(
                Response::error(502, "The answer is too large to send through the gateway: ask for a download link."),
                None,
            );
        }
        answer.headers.push(("Content-Length".into(), stream.len.to_string()));
        body = Body::from_stream(read_in_chunks(stream.reader));
    }
    crate::security_headers(&mut answer);
    let mut http = HttpResponse::new(body);
    *http.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &answer.headers {
        match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            (Ok(name), Ok(value)) => {
                http.headers_mut().append(name, value);
            }
            _ => tracing::warn!(name, "a response header could not be written"),
        }
    }
    http
}

/// What a blocking reader gives, as a body that is sent while it is read.
fn read_in_chunks(mut reader: Box<dyn std::io::Read + Send>) -> Chunks {
    const CHUNK: usize = 256 << 10;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || loop {
        let mut chunk = vec![0; CHUNK];
        let read = match reader.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "a download stopped: its object could not be read");
                let _ = sender.blocking_send(Err(e));
                return;
            }
        };
        chunk.truncate(read);
        if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
            return; // the client went away
        }
    });
    Chunks(receiver)
}

struct Chunks(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
