//! The HTTPS server of the answer endpoint: rustls (tokio-rustls, as the broker gate) and
//! hyper's HTTP/1.1 under an axum router, on HQ's tokio runtime.
//!
//! | bound | value | beyond it |
//! | --- | --- | --- |
//! | connections at once | [`MAX_CONNECTIONS`] | closed at once |
//! | TLS handshake | [`HANDSHAKE_TIMEOUT`] | closed |
//! | request headers | [`HEADER_TIMEOUT`], 16 KiB | closed |
//! | one connection | [`CONNECTION_LIFE`] | closed after the request in progress |
//! | request body | [`MAX_BODY`] | 413 |

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hyper_util::rt::{TokioIo, TokioTimer};
use rumqttc::tokio_rustls::TlsAcceptor;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::desk::{Desk, Outcome};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// The longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a request's headers may take to arrive.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one connection is kept.
pub const CONNECTION_LIFE: Duration = Duration::from_secs(60);
/// The largest request body: an answer is about 120 bytes.
pub const MAX_BODY: usize = 4096;

/// The source address of a request.
#[derive(Debug, Clone, Copy)]
struct Source(IpAddr);

/// The endpoint's routes.
pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/answer", post(answer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(desk)
}

async fn answer(
    State(desk): State<Arc<Desk>>,
    Extension(Source(ip)): Extension<Source>,
    body: Bytes,
) -> Response {
    reply(desk.take(ip, &body).await)
}

/// The HTTP reply to an outcome. Refusals say nothing about why a code was refused.
pub fn reply(o: Outcome) -> Response {
    let body = |status: StatusCode, v: serde_json::Value| (status, axum::Json(v)).into_response();
    match o {
        Outcome::Accepted { needs_confirmation } => body(
            StatusCode::OK,
            json!({"ok": true, "self_reported": true, "needs_confirmation": needs_confirmation}),
        ),
        Outcome::Refused => body(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "household number or answer code not accepted"}),
        ),
        Outcome::SourceLimited | Outcome::HouseholdLimited => {
            let mut r = body(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error": "too many answers: try again later"}),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            r
        }
        Outcome::Malformed(why) => {
            body(StatusCode::BAD_REQUEST, json!({"ok": false, "error": why}))
        }
        Outcome::Unavailable => body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": "not stored: try again"}),
        ),
    }
}

/// Serves `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, desk: Arc<Desk>) {
    let router = router(desk);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "answers: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Replies are small: without this, Nagle's algorithm holds each one back for the
        // client's delayed ACK (tens of milliseconds on a kept-alive connection).
        let _ = stream.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!("answers: too many connections, one closed");
            continue;
        };
        let (tls, router) = (tls.clone(), router.clone());
        tokio::spawn(async move {
            let _slot = slot;
            connection(stream, addr, tls, router).await;
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
    tls: TlsAcceptor,
    router: Router,
) {
    let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await else {
        return;
    };
    let ip = addr.ip();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(Source(ip));
            router.clone().oneshot(req)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = tokio::time::sleep(CONNECTION_LIFE) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(HEADER_TIMEOUT, conn).await;
        }
    }
}

/// Listens on `listen` with the certificate and key of `tls`.
pub async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await
}
