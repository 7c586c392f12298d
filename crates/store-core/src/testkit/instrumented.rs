//! [`Instrumented`]: a target wrapper that counts and logs every call per method, can make
//! chosen calls fail, and measures how many calls run at once.
//!
//! It implements every trait of [`crate::traits`] its inner store implements, by forwarding,
//! so it stands in for any store in any position (source or destination of a copy).

use crate::content::BoxReader;
use crate::error::{Error, Result};
use crate::traits::{
    Deleter, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger,
    Untagger,
};
use async_trait::async_trait;
use oci_spec::image::Descriptor;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// A method of the trait family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// [`Fetcher::fetch`].
    Fetch,
    /// [`Pusher::push`].
    Push,
    /// [`ReadOnlyStorage::exists`].
    Exists,
    /// [`Resolver::resolve`].
    Resolve,
    /// [`Tagger::tag`].
    Tag,
    /// [`PredecessorFinder::predecessors`].
    Predecessors,
    /// [`Deleter::delete`].
    Delete,
    /// [`Untagger::untag`].
    Untag,
    /// [`TagLister::tags`].
    Tags,
}

/// How many times each method was called. Compare whole values, so that a test asserts the
/// methods it expects no call of too: `CallCounts { fetch: 11, ..Default::default() }`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallCounts {
    /// Calls of `fetch`.
    pub fetch: u64,
    /// Calls of `push`.
    pub push: u64,
    /// Calls of `exists`.
    pub exists: u64,
    /// Calls of `resolve`.
    pub resolve: u64,
    /// Calls of `tag`.
    pub tag: u64,
    /// Calls of `predecessors`.
    pub predecessors: u64,
    /// Calls of `delete`.
    pub delete: u64,
    /// Calls of `untag`.
    pub untag: u64,
    /// Calls of `tags`.
    pub tags: u64,
}

/// Counts calls in flight, possibly across several [`Instrumented`] wrappers, and remembers the
/// most there ever were at once.
#[derive(Debug, Default)]
pub struct Gauge {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    /// A gauge at zero.
    pub fn new() -> Arc<Gauge> {
        Arc::new(Gauge::default())
    }

    /// The most calls that were in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// The calls in flight now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst)
    }

    fn enter(self: &Arc<Self>) -> GaugeGuard {
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(Arc::clone(self))
    }
}

struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone)]
enum Action {
    /// The call returns this error.
    Fail(Error),
    /// The fetch succeeds but its reader fails with this error after half the content.
    BreakReader(Error),
}

#[derive(Debug, Clone)]
struct Fault {
    method: Method,
    key: String,
    action: Action,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<(Method, String)>,
    faults: Vec<Fault>,
}

#[derive(Debug, Default)]
struct Shared {
    log: Mutex<Log>,
    gauge: Option<Arc<Gauge>>,
}

/// A store wrapper that logs every call (method and the digest or reference it concerns),
/// injects the faults it is given, and, with a [`Gauge`], yields once inside every call so that
/// concurrent calls overlap and can be counted. Cloning shares the log.
#[derive(Debug, Clone)]
pub struct Instrumented<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Instrumented<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Instrumented {
            inner,
            shared: Arc::new(Shared::default()),
        }
    }

    /// Wraps `inner`, counting its calls in flight in `gauge` (which several wrappers may
    /// share); every call then yields to the scheduler once before it runs.
    pub fn with_gauge(inner: S, gauge: Arc<Gauge>) -> Self {
        Instrumented {
            inner,
            shared: Arc::new(Shared {
                log: Mutex::default(),
                gauge: Some(gauge),
            }),
        }
    }

    /// The wrapped store (calls made on it directly are not logged).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many times each method was called since creation or the last [`Self::reset`].
    pub fn counts(&self) -> CallCounts {
        let mut counts = CallCounts::default();
        for (method, _) in &self.log().calls {
            let slot = match method {
                Method::Fetch => &mut counts.fetch,
                Method::Push => &mut counts.push,
                Method::Exists => &mut counts.exists,
                Method::Resolve => &mut counts.resolve,
                Method::Tag => &mut counts.tag,
                Method::Predecessors => &mut counts.predecessors,
                Method::Delete => &mut counts.delete,
                Method::Untag => &mut counts.untag,
                Method::Tags => &mut counts.tags,
            };
            *slot += 1;
        }
        counts
    }

    /// The digest (or reference, for `resolve`, `tag` and `untag`; `last` for `tags`) of each
    /// call of `method`, in call order. A `tag` call logs the tag.
    pub fn calls(&self, method: Method) -> Vec<String> {
        self.log()
            .calls
            .iter()
            .filter(|(m, _)| *m == method)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Forgets every call logged so far (the faults stay).
    pub fn reset(&self) {
        self.log().calls.clear();
    }

    /// Makes every call of `method` concerning `key` (a digest, or a reference for `resolve`,
    /// `tag` and `untag`) fail with `error`, without reaching the inner store.
    pub fn fail(&self, method: Method, key: &str, error: Error) {
        self.log().faults.push(Fault {
            method,
            key: key.to_string(),
            action: Action::Fail(error),
        });
    }

    /// Makes every fetch of `digest` succeed with a reader that fails with `error` after
    /// half the content.
    pub fn break_reader(&self, digest: &str, error: Error) {
        self.log().faults.push(Fault {
            method: Method::Fetch,
            key: digest.to_string(),
            action: Action::BreakReader(error),
        });
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.log().faults.clear();
    }

    /// Logs the call and returns the fault set for it, if any.
    async fn enter(&self, method: Method, key: &str) -> (Option<GaugeGuard>, Option<Action>) {
        let action = {
            let mut log = self.log();
            log.calls.push((method, key.to_string()));
            log.faults
                .iter()
                .find(|f| f.method == method && f.key == key)
                .map(|f| f.action.clone())
        };
        let guard = match &self.shared.gauge {
            Some(gauge) => {
                let guard = gauge.enter();
                tokio::task::yield_now().await;
                Some(guard)
            }
            None => None,
        };
        (guard, action)
    }
}

/// Fails with `error` once `budget` bytes were read.
struct BrokenReader {
    inner: BoxReader,
    budget: u64,
    error: Option<Error>,
}

impl AsyncRead for BrokenReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.budget == 0 {
            let error = self
                .error
                .take()
                .unwrap_or_else(|| Error::io("testkit", io::Error::other("broken reader")));
            return Poll::Ready(Err(io::Error::other(error)));
        }
        let limit = usize::try_from(self.budget)
            .unwrap_or(usize::MAX)
            .min(buf.remaining());
        let mut window = ReadBuf::new(buf.initialize_unfilled_to(limit));
        let polled = self.inner.as_mut().poll_read(cx, &mut window);
        let n = window.filled().len();
        if let Poll::Ready(Ok(())) = polled {
            buf.advance(n);
            self.budget -= n as u64;
        }
        polled
    }
}

fn digest_of(desc: &Descriptor) -> &str {
    desc.digest().as_ref()
}

#[async_trait]
impl<S: Fetcher> Fetcher for Instrumented<S> {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let (_guard, action) = self.enter(Method::Fetch, digest_of(target)).await;
        match action {
            Some(Action::Fail(error)) => Err(error),
            Some(Action::BreakReader(error)) => {
                let inner = self.inner.fetch(target).await?;
                Ok(Box::pin(BrokenReader {
                    inner,
                    budget: target.size() / 2,
                    error: Some(error),
                }))
            }
            None => self.inner.fetch(target).await,
        }
    }
}

#[async_trait]
impl<S: Pusher> Pusher for Instrumented<S> {
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let (_guard, action) = self.enter(Method::Push, digest_of(expected)).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.push(expected, content).await,
        }
    }
}

#[async_trait]
impl<S: ReadOnlyStorage> ReadOnlyStorage for Instrumented<S> {
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let (_guard, action) = self.enter(Method::Exists, digest_of(target)).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.exists(target).await,
        }
    }
}

#[async_trait]
impl<S: Resolver> Resolver for Instrumented<S> {
    async fn resolve(&self, reference: &str) -> Result<crate::SharedDescriptor> {
        let (_guard, action) = self.enter(Method::Resolve, reference).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.resolve(reference).await,
        }
    }
}

#[async_trait]
impl<S: Tagger> Tagger for Instrumented<S> {
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let (_guard, action) = self.enter(Method::Tag, reference).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.tag(desc, reference).await,
        }
    }
}

#[async_trait]
impl<S: PredecessorFinder> PredecessorFinder for Instrumented<S> {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<crate::SharedDescriptor>> {
        let (_guard, action) = self.enter(Method::Predecessors, digest_of(node)).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.predecessors(node).await,
        }
    }
}

#[async_trait]
impl<S: Deleter> Deleter for Instrumented<S> {
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let (_guard, action) = self.enter(Method::Delete, digest_of(target)).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.delete(target).await,
        }
    }
}

#[async_trait]
impl<S: Untagger> Untagger for Instrumented<S> {
    async fn untag(&self, reference: &str) -> Result<()> {
        let (_guard, action) = self.enter(Method::Untag, reference).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.untag(reference).await,
        }
    }
}

#[async_trait]
impl<S: TagLister> TagLister for Instrumented<S> {
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        let (_guard, action) = self.enter(Method::Tags, last.unwrap_or("")).await;
        match action {
            Some(Action::Fail(error) | Action::BreakReader(error)) => Err(error),
            None => self.inner.tags(last).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{fetch_all, push_bytes};
    use crate::error_from_io;
    use crate::memory::MemoryStore;
    use crate::testkit::fixtures::layer;
    use crate::ErrorKind;

    #[tokio::test]
    async fn counts_logs_and_injects() {
        let store = Instrumented::new(MemoryStore::new());
        let blob = layer(b"instrumented layer content");
        push_bytes(&store, &blob.desc, blob.data.clone())
            .await
            .unwrap();
        assert!(store.exists(&blob.desc).await.unwrap());
        fetch_all(&store, &blob.desc).await.unwrap();
        assert_eq!(
            store.counts(),
            CallCounts {
                push: 1,
                exists: 1,
                fetch: 1,
                ..Default::default()
            }
        );
        assert_eq!(store.calls(Method::Fetch), [blob.digest().to_string()]);

        store.fail(Method::Exists, blob.digest(), Error::not_found("injected"));
        let err = store.exists(&blob.desc).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);

        store.break_reader(blob.digest(), Error::unsupported("injected mid-stream"));
        let err = fetch_all(&store, &blob.desc).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");

        store.clear_faults();
        store.reset();
        fetch_all(&store, &blob.desc).await.unwrap();
        assert_eq!(store.counts().fetch, 1);
        // error_from_io recovers the injected error's kind from a broken reader.
        let wrapped = io::Error::other(Error::not_found("x"));
        assert_eq!(error_from_io(wrapped, "ctx").kind(), ErrorKind::NotFound);
    }
}
