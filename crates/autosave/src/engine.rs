//! The engine: records changes, runs the one background flusher task, wakes waiters.
//!
//! All shared state lives in one [`State`] behind a `std::sync::Mutex` that is only held for
//! short critical sections, never across an `.await`. The flusher task is woken through a
//! [`Notify`]; waiters are resolved through one `oneshot` channel each.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{AutoSave, Error, Flush};

/// What a flush attempt hands to the waiters it serves.
type Outcome<E> = Result<(), Arc<E>>;

/// A caller waiting for a flush that covers `version`.
struct Waiter<E> {
    version: u64,
    /// Registered by `flush_now`/`close` (as opposed to `changed` under `Always`).
    explicit: bool,
    /// How many flush attempts had started when this waiter registered. A failed attempt only
    /// fails waiters registered before it started; a successful one serves every waiter it covers.
    after: u64,
    tx: oneshot::Sender<Outcome<E>>,
}

struct State<E> {
    /// Number of changes recorded.
    version: u64,
    /// Highest version covered by a successful flush.
    durable: u64,
    /// When the first change not yet taken by a flush attempt was recorded. It triggers the
    /// automatic flush (`Always` at once, `Debounce(d)` at this instant + d); a flush attempt
    /// clears it, so after a failure only a new change (or an explicit request) retries.
    pending_since: Option<Instant>,
    /// An explicit waiter is not served by the attempt in flight, if any.
    requested: bool,
    /// `close` was called or the engine was dropped: flush once more if dirty, then exit.
    closing: bool,
    /// The flusher task is gone; nobody will resolve new waiters.
    stopped: bool,
    /// Flush attempts started.
    attempts: u64,
    flushes: u64,
    failed_flushes: u64,
    waiters: VecDeque<Waiter<E>>,
}

struct Shared<E> {
    policy: AutoSave,
    state: Mutex<State<E>>,
    wake: Notify,
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // No code panics while holding the lock, but a poisoned lock must not wedge the store.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a waiter for `version`; the caller then wakes the flusher.
    fn register(&self, st: &mut State<E>, version: u64, explicit: bool) -> Saved<E> {
        let (tx, rx) = oneshot::channel();
        st.waiters.push_back(Waiter {
            version,
            explicit,
            after: st.attempts,
            tx,
        });
        if explicit {
            st.requested = true;
        }
        Saved {
            version,
            inner: Inner::Waiting(rx),
        }
    }
}

/// The autosave engine: records changes to a [`Flush`] target and decides when to flush it,
/// according to an [`AutoSave`] policy.
///
/// It owns one background tokio task that calls [`Flush::flush`] (never two at once). Changes
/// recorded while a flush runs are written together by the next flush: that is the group commit.
///
/// The caller must apply each change to the state that `F` flushes *before* calling
/// [`changed`](Self::changed).
///
/// Dropping the engine without [`close`](Self::close) asks the task to make one last
/// best-effort flush if anything is unsaved, then to exit; that flush happens only while the
/// runtime keeps running, and its error is lost. `F` must not own its `AutoSaver` (the task holds
/// an `Arc<F>`, so that would be a reference cycle and the engine would never be dropped).
pub struct AutoSaver<F: Flush> {
    shared: Arc<Shared<F::Error>>,
    task: Option<JoinHandle<()>>,
}

impl<F: Flush> AutoSaver<F> {
    /// Creates the engine and spawns its flusher task with `tokio::spawn`.
    ///
    /// Nothing is flushed until a change is recorded.
    ///
    /// # Panics
    /// Outside a tokio runtime (`tokio::spawn` panics there). [`AutoSave::Debounce`] also needs
    /// the runtime's time driver (`enable_time` / `enable_all`, as `#[tokio::main]` has):
    /// without it the flusher task panics at its first sleep and every waiter then gets
    /// [`Error::Stopped`].
    pub fn new(flusher: Arc<F>, policy: AutoSave) -> Self {
        let shared = Arc::new(Shared {
            policy,
            state: Mutex::new(State {
                version: 0,
                durable: 0,
                pending_since: None,
                requested: false,
                closing: false,
                stopped: false,
                attempts: 0,
                flushes: 0,
                failed_flushes: 0,
                waiters: VecDeque::new(),
            }),
            wake: Notify::new(),
        });
        let task = tokio::spawn(run(flusher, Arc::clone(&shared)));
        AutoSaver {
            shared,
            task: Some(task),
        }
    }

    /// The policy this engine was created with.
    pub fn policy(&self) -> AutoSave {
        self.shared.policy
    }

    /// Records one change, already applied to the flushed state, and returns a future that
    /// resolves according to the policy.
    ///
    /// The change is recorded when this method is called, not when the future is first polled,
    /// so a caller that drops the future has still recorded its change.
    ///
    /// - `Always`: resolves once a flush covering this change succeeded, or with that flush's
    ///   [`Error::Flush`] (the change stays pending and a later flush retries it).
    /// - `Manual`, `Debounce`: resolves at once with `Ok(())`.
    ///
    /// Resolves with [`Error::Stopped`] if the flusher task is gone (it panicked or the runtime
    /// shut down).
    pub fn changed(&self) -> Saved<F::Error> {
        let mut st = self.shared.lock();
        st.version += 1;
        let version = st.version;
        if st.stopped {
            return Saved::ready(version, Err(Error::Stopped));
        }
        let first = st.pending_since.is_none();
        if first {
            st.pending_since = Some(Instant::now());
        }
        match self.shared.policy {
            AutoSave::Always => {
                let saved = self.shared.register(&mut st, version, false);
                drop(st);
                self.shared.wake.notify_one();
                saved
            }
            AutoSave::Debounce(_) => {
                drop(st);
                if first {
                    // Starts the debounce sleep.
                    self.shared.wake.notify_one();
                }
                Saved::ready(version, Ok(()))
            }
            AutoSave::Manual => Saved::ready(version, Ok(())),
        }
    }

    /// Flushes at once, whatever the policy, and returns a future that resolves once a flush
    /// covering every change recorded before this call succeeded.
    ///
    /// If nothing is unsaved it resolves at once without flushing. If a flush is already running
    /// and covers every change, its success is reused; if it fails, a new flush is made for this
    /// call. Resolves with [`Error::Flush`] if the flush made for this call fails (the engine stays
    /// dirty; call again to retry), or [`Error::Stopped`] if the flusher task is gone.
    pub fn flush_now(&self) -> Saved<F::Error> {
        let mut st = self.shared.lock();
        let version = st.version;
        if st.durable >= version {
            return Saved::ready(version, Ok(()));
        }
        if st.stopped {
            return Saved::ready(version, Err(Error::Stopped));
        }
        let saved = self.shared.register(&mut st, version, true);
        drop(st);
        self.shared.wake.notify_one();
        saved
    }

    /// Flushes every unsaved change, then stops the flusher task and waits for it to exit.
    ///
    /// Returns `Ok(())` if nothing was unsaved or the final flush succeeded; otherwise the error
    /// of the final flush ([`Error::Flush`]; the engine is gone, so nothing retries it) or
    /// [`Error::Stopped`] if the task had already stopped with changes unsaved.
    pub async fn close(mut self) -> Result<(), Error<F::Error>> {
        let saved = {
            let mut st = self.shared.lock();
            st.closing = true;
            let version = st.version;
            if st.durable >= version {
                Saved::ready(version, Ok(()))
            } else if st.stopped {
                Saved::ready(version, Err(Error::Stopped))
            } else {
                self.shared.register(&mut st, version, true)
            }
        };
        self.shared.wake.notify_one();
        let result = saved.await;
        if let Some(task) = self.task.take() {
            // The task exits after the final flush. A panic there was already reported to the
            // waiter as `Stopped`.
            let _ = task.await;
        }
        result
    }

    /// Number of changes recorded so far (the version of the latest change).
    pub fn version(&self) -> u64 {
        self.shared.lock().version
    }

    /// The highest version covered by a successful flush.
    pub fn durable_version(&self) -> u64 {
        self.shared.lock().durable
    }

    /// Whether some recorded change is not yet covered by a successful flush.
    pub fn is_dirty(&self) -> bool {
        let st = self.shared.lock();
        st.version > st.durable
    }

    /// Number of successful flushes so far.
    pub fn flushes(&self) -> u64 {
        self.shared.lock().flushes
    }

    /// Number of failed flushes so far.
    pub fn failed_flushes(&self) -> u64 {
        self.shared.lock().failed_flushes
    }
}

impl<F: Flush> Drop for AutoSaver<F> {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        // The task is detached: it makes its last flush if dirty, then exits.
    }
}

impl<F: Flush> fmt::Debug for AutoSaver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("AutoSaver")
            .field("policy", &self.shared.policy)
            .field("version", &st.version)
            .field("durable_version", &st.durable)
            .field("flushes", &st.flushes)
            .field("failed_flushes", &st.failed_flushes)
            .finish()
    }
}

/// A future returned by [`AutoSaver::changed`] and [`AutoSaver::flush_now`]: resolves once the
/// change (or every change before the `flush_now` call) is saved as the policy requires.
///
/// The change or flush request was registered when it was created; awaiting it only waits for
/// the outcome. Output: `Ok(())`, or [`Error::Flush`] with the error of the flush that covered
/// it, or [`Error::Stopped`] if the flusher task went away first.
#[must_use = "the change is recorded; await this to learn whether it was saved"]
pub struct Saved<E> {
    version: u64,
    inner: Inner<E>,
}

enum Inner<E> {
    Ready(Option<Result<(), Error<E>>>),
    Waiting(oneshot::Receiver<Outcome<E>>),
}

impl<E> Saved<E> {
    fn ready(version: u64, result: Result<(), Error<E>>) -> Self {
        Saved {
            version,
            inner: Inner::Ready(Some(result)),
        }
    }

    /// The version this future waits for: the change's own version for
    /// [`changed`](AutoSaver::changed), the latest version at the call for
    /// [`flush_now`](AutoSaver::flush_now).
    pub fn version(&self) -> u64 {
        self.version
    }
}

// `Saved` is never pin-projected: both variants are moved freely.
impl<E> Unpin for Saved<E> {}

impl<E> Future for Saved<E> {
    type Output = Result<(), Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().inner {
            Inner::Ready(result) => Poll::Ready(
                result
                    .take()
                    .expect("autosave::Saved polled after completion"),
            ),
            Inner::Waiting(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(Ok(()))) => Poll::Ready(Ok(())),
                Poll::Ready(Ok(Err(e))) => Poll::Ready(Err(Error::Flush(e))),
                Poll::Ready(Err(_)) => Poll::Ready(Err(Error::Stopped)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<E> fmt::Debug for Saved<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved")
            .field("version", &self.version)
            .field("ready", &matches!(self.inner, Inner::Ready(_)))
            .finish()
    }
}

/// What the flusher task does next.
enum Step {
    Flush {
        attempt: u64,
        version: u64,
        last: bool,
    },
    SleepUntil(Instant),
    Wait,
    Exit,
}

/// The flusher task: wait until dirty and due → read the version → flush → publish.
async fn run<F: Flush>(flusher: Arc<F>, shared: Arc<Shared<F::Error>>) {
    let _guard = StopGuard(&shared);
    loop {
        if shared.policy == AutoSave::Always {
            // Callers woken by the previous flush are runnable now; letting them run first puts
            // their changes into this flush instead of the next one (bigger groups, no timers).
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
        }
        match next_step(&shared) {
            Step::Exit => return,
            Step::Wait => shared.wake.notified().await,
            Step::SleepUntil(deadline) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {}
                    _ = shared.wake.notified() => {}
                }
            }
            Step::Flush {
                attempt,
                version,
                last,
            } => {
                let result = flusher.flush().await;
                finish(&shared, attempt, version, result);
                if last {
                    return;
                }
            }
        }
    }
}

/// How often the flusher yields to runnable callers before it snapshots an `Always` group.
const GATHER_YIELDS: usize = 3;

/// Decides the next step under the lock; when a flush is due, reads the version it will cover.
fn next_step<E>(shared: &Shared<E>) -> Step {
    let mut st = shared.lock();
    if st.version <= st.durable {
        st.requested = false;
        st.pending_since = None;
        return if st.closing { Step::Exit } else { Step::Wait };
    }
    let due = st.closing
        || st.requested
        || match shared.policy {
            AutoSave::Always => st.pending_since.is_some(),
            AutoSave::Manual => false,
            AutoSave::Debounce(d) => match st.pending_since.and_then(|t| t.checked_add(d)) {
                Some(deadline) if Instant::now() >= deadline => true,
                Some(deadline) => return Step::SleepUntil(deadline),
                None => false,
            },
        };
    if !due {
        return Step::Wait;
    }
    // This attempt covers every change recorded so far, and every waiter registered so far.
    st.requested = false;
    st.pending_since = None;
    st.attempts += 1;
    Step::Flush {
        attempt: st.attempts,
        version: st.version,
        last: st.closing,
    }
}

/// Publishes the outcome of flush attempt `attempt`, which covered `version`.
fn finish<E>(shared: &Shared<E>, attempt: u64, version: u64, result: Result<(), E>) {
    let outcome: Outcome<E> = result.map_err(Arc::new);
    let mut served = Vec::new();
    {
        let mut st = shared.lock();
        if outcome.is_ok() {
            st.durable = st.durable.max(version);
            st.flushes += 1;
        } else {
            st.failed_flushes += 1;
        }
        let mut kept = VecDeque::with_capacity(st.waiters.len());
        for w in st.waiters.drain(..) {
            // A success serves everyone it covers; a failure only those who were waiting when
            // the attempt started (later `flush_now` callers get a fresh attempt).
            if w.version <= version && (outcome.is_ok() || attempt > w.after) {
                served.push(w.tx);
            } else {
                kept.push_back(w);
            }
        }
        st.requested = kept.iter().any(|w| w.explicit);
        st.waiters = kept;
    }
    for tx in served {
        // The waiter may have dropped its future; nothing to tell then.
        let _ = tx.send(outcome.clone());
    }
}

/// Marks the engine stopped when the flusher task ends (normally, by a panic in `flush`, or by
/// the runtime dropping it), and drops every waiter's sender so they resolve with `Stopped`.
struct StopGuard<'a, E>(&'a Shared<E>);

impl<E> Drop for StopGuard<'_, E> {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.0.lock();
            st.stopped = true;
            std::mem::take(&mut st.waiters)
        };
        drop(waiters);
    }
}
