//! `vellum serve`'s side of the stack: HTTP/1.1 connections accepted on a socket, each on its
//! own task, with hyper's header deadline (which is also the kept-alive connection's idle
//! timeout) and header size limit, so that a slow, idle or half-sent client only ever holds
//! its own connection.

use std::sync::Arc;

use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::{Limits, Peer};

/// Accepts connections until the process ends (or accepting fails for good).
pub async fn serve(listener: std::net::TcpListener, router: axum::Router, limits: Limits) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let connections = Arc::new(Semaphore::new(limits.connections.max(1)));
    loop {
        let Ok(permit) = connections.clone().acquire_owned().await else {
            return Ok(());
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait rather than spin, and go on.
                tracing::warn!(error = %e, "a connection could not be accepted");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, limits) = (router.clone(), limits.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(Peer(peer.ip().to_string()));
                router.clone().oneshot(request.map(Body::new))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.header_read).max_buf_size(limits.header_bytes);
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, %peer, "a connection ended early");
            }
        });
    }
}
