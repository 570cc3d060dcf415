//! The HTTPS server of the answer endpoint: rustls (tokio-rustls, as the broker gate) and
//! hyper's HTTP/1.1 under an axum router, on HQ's tokio runtime.
//!
//! | bound | value | beyond it |
//! | --- | --- | --- |
//! | connections at once | [`MAX_CONNECTIONS`], [`MAX_CONNECTIONS_PER_SOURCE`] from one source | closed at once |
//! | TLS handshake | [`HANDSHAKE_TIMEOUT`] | closed |
//! | request headers | [`HEADER_TIMEOUT`], 16 KiB | closed |
//! | one connection | [`CONNECTION_LIFE`] | closed after the request in progress |
//! | request body | [`MAX_BODY`] | 413 |

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
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
use tower::ServiceExt;

use super::desk::{AnswerVerdict, Desk};
use super::limits::Peer;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections served at once from one source (an IPv4 address, an IPv6 /64): one source
/// cannot take every connection by opening them slowly.
pub const MAX_CONNECTIONS_PER_SOURCE: u32 = 16;
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
pub struct Source(pub IpAddr);

/// The endpoint's routes.
pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/answer", post(answer))
        .route("/answer/tv", post(answer_tv))
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

/// A stock TV's answer (its form, see [`super::tv`]), answered with a word it can show.
async fn answer_tv(
    State(desk): State<Arc<Desk>>,
    Extension(Source(ip)): Extension<Source>,
    body: Bytes,
) -> Response {
    super::tv::reply(desk.take_with(ip, || super::tv::parse(&body)).await)
}

/// The HTTP reply to an outcome. Refusals say nothing about why a code was refused.
pub fn reply(o: AnswerVerdict) -> Response {
    let body = |status: StatusCode, v: serde_json::Value| (status, axum::Json(v)).into_response();
    match o {
        AnswerVerdict::Accepted { needs_confirmation } => body(
            StatusCode::OK,
            json!({"ok": true, "self_reported": true, "needs_confirmation": needs_confirmation}),
        ),
        AnswerVerdict::Refused => body(
            StatusCode::FORBIDDEN,
            json!({"ok": false, "error": "household number or answer code not accepted"}),
        ),
        AnswerVerdict::SourceLimited | AnswerVerdict::HouseholdLimited => {
            let mut r = body(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error": "too many answers: try again later"}),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            r
        }
        AnswerVerdict::Malformed(why) => {
            body(StatusCode::BAD_REQUEST, json!({"ok": false, "error": why}))
        }
        AnswerVerdict::Unavailable => body(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ok": false, "error": "not stored: try again"}),
        ),
    }
}

/// Serves `listener` until the task is dropped or aborted, with `more` routes (`/anpi`).
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, desk: Arc<Desk>, more: Option<Router>) {
    let router = match more {
        Some(more) => router(desk).merge(more),
        None => router(desk),
    };
    let slots = Arc::new(Slots::default());
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
        let Some(slot) = slots.take(addr.ip()) else {
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

/// The connections open now: in all, and per source (only sources with a connection open,
/// so at most [`MAX_CONNECTIONS`] entries).
#[derive(Debug, Default)]
pub struct Slots {
    open: Mutex<(usize, HashMap<Peer, u32>)>,
}

/// One connection's place; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    peer: Peer,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<Peer, u32>)> {
        // Nothing under this lock panics.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a connection from `ip`, if there is room in all and for its source.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let peer = Peer::of(ip);
        let mut open = self.lock();
        if open.0 >= MAX_CONNECTIONS {
            return None;
        }
        let n = open.1.entry(peer).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_SOURCE {
            return None;
        }
        *n += 1;
        open.0 += 1;
        Some(Slot {
            slots: Arc::clone(self),
            peer,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().0
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn one_source_cannot_take_every_connection() {
        let slots = Arc::new(Slots::default());
        let ip = |n: u32| IpAddr::V4(Ipv4Addr::from(n));
        let mine: Vec<Slot> = (0..100).filter_map(|_| slots.take(ip(1))).collect();
        assert_eq!(mine.len(), MAX_CONNECTIONS_PER_SOURCE as usize);
        let others: Vec<Slot> = (2..2000).filter_map(|n| slots.take(ip(n))).collect();
        assert_eq!(slots.open(), MAX_CONNECTIONS);
        assert_eq!(others.len(), MAX_CONNECTIONS - mine.len());
        drop(mine);
        assert!(slots.take(ip(1)).is_some(), "places given back");
        drop(others);
        assert_eq!(slots.open(), 0);
        assert!(
            slots.lock().1.is_empty(),
            "no source kept without a connection"
        );
    }

    #[tokio::test]
    async fn the_router_refuses_what_is_not_an_answer() {
        use axum::body::Body;
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("{e}") };
        let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&e));
        let store = crate::store::AnswerStore::open(&dir.path().join("hq.sqlite"))
            .unwrap_or_else(|e| fail(&e));
        let key =
            super::super::AnswerCodeKey::derive(&evac_protocol::SecretKey::from_seed(&[1; 32]));
        let town: evac_protocol::TownId = "minato".parse().unwrap_or_else(|e| fail(&e));
        let right = key.code(&town, 2);
        let rates = super::super::limits::Rates {
            source_burst: 1000,
            source_every: Duration::from_millis(1),
            household_burst: 10,
            household_every: Duration::from_secs(1),
            wrong_code_cost: 0,
            failures_before_confirmation: 5,
            max_sources: 10,
        };
        let desk =
            Arc::new(Desk::new(town, [1, 2], key, rates, store).unwrap_or_else(|e| fail(&e)));
        let send = |method: &str, body: Vec<u8>| {
            let mut req = hyper::Request::builder()
                .method(method)
                .uri("/answer")
                .header("content-length", body.len())
                .body(Body::from(body))
                .unwrap_or_else(|e| fail(&e));
            req.extensions_mut()
                .insert(Source(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            router(Arc::clone(&desk)).oneshot(req)
        };
        let status = |r: Result<Response, std::convert::Infallible>| match r {
            Ok(r) => r.status().as_u16(),
            Err(e) => match e {},
        };
        assert_eq!(status(send("POST", vec![b'x'; MAX_BODY + 1]).await), 413);
        assert_eq!(status(send("POST", b"{".to_vec()).await), 400);
        assert_eq!(status(send("GET", vec![]).await), 405);
        let ok =
            format!(r#"{{"town":"minato","household":2,"code":"{right}","answer":"at_shelter"}}"#);
        assert_eq!(status(send("POST", ok.into_bytes()).await), 200);
        let tv = |body: String| {
            let mut req = hyper::Request::builder()
                .method("POST")
                .uri("/answer/tv")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap_or_else(|e| fail(&e));
            req.extensions_mut()
                .insert(Source(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            router(Arc::clone(&desk)).oneshot(req)
        };
        let text = |r: Result<Response, std::convert::Infallible>| async move {
            let Ok(r) = r;
            assert_eq!(r.status().as_u16(), 200);
            let b = axum::body::to_bytes(r.into_body(), MAX_BODY)
                .await
                .unwrap_or_else(|e| fail(&e));
            String::from_utf8_lossy(&b).into_owned()
        };
        let line = |code: &str| format!("Denbun=v1%20minato%202%20{code}%20at_shelter");
        assert_eq!(
            text(tv(line(&right.to_string())).await).await,
            "accepted\r\n"
        );
        assert_eq!(text(tv(line("00000000")).await).await, "refused\r\n");
        assert!(text(tv("v1".into()).await).await.starts_with("malformed "));
    }
}
