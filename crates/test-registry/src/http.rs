//! A small HTTP/1.1 server on a thread of its own: each of the harness's servers (token server,
//! test double, its redirect target) is one of these with its own handler.

use crate::Error;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::body::{Body, Frame};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// A request as the handlers see it: the body already read whole (test traffic is small).
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    /// The query's pairs, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Header `name` as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) type Resp = Response<BoxBody<Bytes, Infallible>>;
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Resp> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Req) -> BoxFuture + Send + Sync>;

/// A response with `status`, headers `headers` and body `body`.
pub(crate) fn respond(
    status: StatusCode,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Resp {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A body whose length hyper is not told: it goes out chunked, or, when the response carries a
/// `Content-Length` the bytes do not reach, cut short by closing the connection. It yields its
/// bytes in two frames, since hyper takes a body of one frame as one of known length, and is
/// not ready once before the last frame and the end, so that hyper flushes what it has (a cut
/// short body then reaches the client before the connection closes).
pub(crate) struct UnsizedBody {
    frames: Vec<Bytes>,
    paused: bool,
}

impl UnsizedBody {
    /// A body of `bytes`.
    pub fn new(bytes: Bytes) -> UnsizedBody {
        let half = bytes.len() / 2;
        UnsizedBody {
            frames: vec![bytes.slice(half..), bytes.slice(..half)],
            paused: false,
        }
    }
}

impl Body for UnsizedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames.len() < 2 && !self.paused {
            self.paused = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.paused = false;
        Poll::Ready(self.frames.pop().map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Disconnect;

/// A response that closes the connection without answering.
pub(crate) fn disconnect() -> Resp {
    let mut response = respond(StatusCode::INTERNAL_SERVER_ERROR, &[], Bytes::new());
    response.extensions_mut().insert(Disconnect);
    response
}

/// A running server; dropping it stops the server and joins its thread.
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds a free port of `ip` and serves `handler` there until dropped.
    pub fn start(ip: IpAddr, handler: Handler) -> Result<Server, Error> {
        let listener = std::net::TcpListener::bind((ip, 0))
            .map_err(|e| Error::io(format!("binding a port of {ip}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("making the listener non-blocking", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("building the server's runtime", e))?;
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("test-http-{addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stop => {}
                        _ = accept_loop(listener, handler) => {}
                    }
                });
                // The runtime is dropped here, on its own thread, which cancels the
                // connections still open.
            })
            .map_err(|e| Error::io("spawning the server thread", e))?;
        Ok(Server {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, handler: Handler) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, say: wait instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let response = match body.collect().await {
                        Ok(collected) => {
                            let req = Req {
                                method: parts.method,
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().map(str::to_string),
                                headers: parts.headers,
                                body: collected.to_bytes(),
                            };
                            handler(req).await
                        }
                        Err(_) => respond(StatusCode::BAD_REQUEST, &[], "unreadable body"),
                    };
                    if response.extensions().get::<Disconnect>().is_some() {
                        // An error from the service makes hyper close the connection without
                        // writing a response.
                        return Err(std::io::Error::other("disconnect injected by the test"));
                    }
                    Ok(response)
                }
            });
            // A client that hangs up mid-request is no concern of the harness.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
