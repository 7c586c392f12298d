//! The engine: records changes, runs the flushes, wakes waiters.
//!
//! All shared state lives in one [`State`] behind a `std::sync::Mutex` that is only held for
//! short critical sections, never across an `.await`. Waiters are resolved through one
//! `oneshot` channel each. A flush is run either by a waiter, in its own task, when it is
//! polled while no flush is in flight (the leader: a caller that would otherwise hand the flush
//! to another task and wait to be woken runs it itself), or by the background flusher task,
//! woken through a [`Notify`], for the changes nobody waits on and the groups that gathered
//! while a flush ran. Either way one flush at most is in flight.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{AutoSave, Error, Flush};

/// What a flush attempt hands to the waiters it serves.
type Outcome<E> = Result<(), Arc<E>>;

/// One call of [`Flush::flush`], owning what it flushes.
type FlushFuture<E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send>>;

/// Starts a flush for a leader; `None` once the flusher is gone (the background task holds the
/// only strong reference, so that dropping the engine still drops `F` when the task ends).
type StartFlush<E> = Box<dyn Fn() -> Option<FlushFuture<E>> + Send + Sync>;

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
    /// The flusher task is gone (or a flush panicked); nobody will resolve new waiters.
    stopped: bool,
    /// A flush attempt is in flight (run by the background task or by a leader).
    flushing: bool,
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
    start: StartFlush<E>,
}

impl<E> Shared<E> {
    fn lock(&self) -> MutexGuard<'_, State<E>> {
        // No code panics while holding the lock, but a poisoned lock must not wedge the store.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a waiter for `version`; the caller then wakes the flusher.
    fn register(self: &Arc<Self>, st: &mut State<E>, version: u64, explicit: bool) -> Saved<E> {
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
            inner: Inner::Waiting(rx, Arc::clone(self)),
            lead: None,
        }
    }

    /// Starts a flush attempt covering every change recorded so far, and every waiter
    /// registered so far.
    fn begin(st: &mut State<E>) -> Attempt {
        st.requested = false;
        st.pending_since = None;
        st.attempts += 1;
        st.flushing = true;
        Attempt {
            number: st.attempts,
            version: st.version,
        }
    }

    /// Marks the engine stopped and drops every waiter's sender, so they resolve with
    /// `Stopped`; wakes the background task so that it exits.
    fn stop(&self) {
        let waiters = {
            let mut st = self.lock();
            st.stopped = true;
            st.flushing = false;
            std::mem::take(&mut st.waiters)
        };
        drop(waiters);
        self.wake.notify_one();
    }
}

/// A flush attempt: its number and the version it covers.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    number: u64,
    version: u64,
}

/// The autosave engine: records changes to a [`Flush`] target and decides when to flush it,
/// according to an [`AutoSave`] policy.
///
/// A caller awaiting a [`Saved`] while no flush runs calls [`Flush::flush`] itself; one
/// background tokio task makes the other flushes; never two run at once. Changes recorded while
/// a flush runs are written together by the next flush: that is the group commit.
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
        let weak: Weak<F> = Arc::downgrade(&flusher);
        let start: StartFlush<F::Error> = Box::new(move || {
            let flusher = weak.upgrade()?;
            let flush: FlushFuture<F::Error> = Box::pin(async move { flusher.flush().await });
            Some(flush)
        });
        let shared = Arc::new(Shared {
            policy,
            state: Mutex::new(State {
                version: 0,
                durable: 0,
                pending_since: None,
                requested: false,
                closing: false,
                stopped: false,
                flushing: false,
                attempts: 0,
                flushes: 0,
                failed_flushes: 0,
                waiters: VecDeque::new(),
            }),
            wake: Notify::new(),
            start,
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
/// The change or flush request was registered when it was created; awaiting it waits for the
/// outcome. When it is polled while no flush is in flight, it runs the flush itself, in the
/// caller's task (the background task would otherwise run it and wake the caller: two hand-offs
/// saved per flush); dropped in the middle of that flush, it lets the flush finish in a task of
/// its own, so a cancelled caller never leaves a half-done flush. Output: `Ok(())`, or
/// [`Error::Flush`] with the error of the flush that covered it, or [`Error::Stopped`] if the
/// flusher task went away first or the flush panicked.
#[must_use = "the change is recorded; await this to learn whether it was saved"]
pub struct Saved<E> {
    version: u64,
    inner: Inner<E>,
    /// The flush this future runs as the leader, while it runs.
    lead: Option<Lead<E>>,
}

enum Inner<E> {
    Ready(Option<Result<(), Error<E>>>),
    Waiting(oneshot::Receiver<Outcome<E>>, Arc<Shared<E>>),
}

impl<E> Saved<E> {
    fn ready(version: u64, result: Result<(), Error<E>>) -> Self {
        Saved {
            version,
            inner: Inner::Ready(Some(result)),
            lead: None,
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

impl<E: Send + Sync + 'static> Future for Saved<E> {
    type Output = Result<(), Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            if let Some(lead) = &mut this.lead {
                match lead.poll(cx) {
                    // The flush serves this waiter too: its answer is in the channel now.
                    Poll::Ready(()) => this.lead = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            match &mut this.inner {
                Inner::Ready(result) => {
                    return Poll::Ready(
                        result
                            .take()
                            .expect("autosave::Saved polled after completion"),
                    )
                }
                Inner::Waiting(rx, shared) => match Pin::new(rx).poll(cx) {
                    Poll::Ready(Ok(Ok(()))) => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(Err(e))) => return Poll::Ready(Err(Error::Flush(e))),
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(Error::Stopped)),
                    Poll::Pending => match Lead::claim(shared, this.version) {
                        Some(lead) => this.lead = Some(lead),
                        None => return Poll::Pending,
                    },
                },
            }
        }
    }
}

/// A flush run by a waiter (see [`Saved`]).
struct Lead<E> {
    shared: Arc<Shared<E>>,
    attempt: Attempt,
    /// `None` once finished.
    flush: Option<FlushFuture<E>>,
    /// Already handed to a task of its own after its waiter went away.
    detached: bool,
    /// Hands an unfinished flush to a task of its own; gives it back without a runtime.
    detach: fn(Lead<E>) -> Option<Lead<E>>,
}

impl<E: Send + Sync + 'static> Lead<E> {
    /// Takes the next flush for a waiter of `version` when none is in flight and its change is
    /// not saved yet; `None` otherwise (the waiter is served by the flush in flight, or the
    /// engine is closing or stopped, and the background task has it).
    fn claim(shared: &Arc<Shared<E>>, version: u64) -> Option<Lead<E>> {
        let attempt = {
            let mut st = shared.lock();
            if st.flushing || st.stopped || st.closing || st.durable >= version {
                return None;
            }
            Shared::begin(&mut st)
        };
        match (shared.start)() {
            Some(flush) => Some(Lead {
                shared: Arc::clone(shared),
                attempt,
                flush: Some(flush),
                detached: false,
                detach: Lead::finish_alone,
            }),
            None => {
                // The flusher is gone, and with it the background task.
                shared.stop();
                None
            }
        }
    }

    /// Spawns `rest` on the current runtime to run to its end; gives it back without one.
    fn finish_alone(rest: Lead<E>) -> Option<Lead<E>> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(FinishAlone(rest));
                None
            }
            Err(_) => Some(rest),
        }
    }

    /// Drives the flush; once it ends, publishes its outcome. A panic in the flush stops the
    /// engine, as one in the background task does.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(flush) = &mut self.flush else {
            return Poll::Ready(());
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| flush.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                self.flush = None;
                finish(&self.shared, self.attempt, result);
                Poll::Ready(())
            }
            Err(_) => {
                self.flush = None;
                self.shared.stop();
                Poll::Ready(())
            }
        }
    }
}

impl<E> Drop for Lead<E> {
    fn drop(&mut self) {
        let Some(flush) = self.flush.take() else {
            return;
        };
        // The waiter went away in the middle of its flush: let the flush finish on its own, so
        // that no other flush starts while this one may still be writing.
        let flush = if self.detached {
            flush
        } else {
            let rest = Lead {
                shared: Arc::clone(&self.shared),
                attempt: self.attempt,
                flush: Some(flush),
                detached: true,
                detach: self.detach,
            };
            match (self.detach)(rest) {
                None => return,
                Some(mut rest) => match rest.flush.take() {
                    Some(flush) => flush,
                    None => return,
                },
            }
        };
        // No runtime to finish it on, or it was dropped again (the runtime is shutting down):
        // nothing can tell what it wrote, so the engine stops as when its task is gone.
        drop(flush);
        self.shared.stop();
    }
}

/// A leader's flush left to finish in a task of its own.
struct FinishAlone<E>(Lead<E>);

impl<E: Send + Sync + 'static> Future for FinishAlone<E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut().0.poll(cx)
    }
}

impl<E> fmt::Debug for Saved<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Saved")
            .field("version", &self.version)
            .field("ready", &matches!(self.inner, Inner::Ready(_)))
            .field("leading", &self.lead.is_some())
            .finish()
    }
}

/// What the flusher task does next.
enum Step {
    Flush { attempt: Attempt, last: bool },
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
            Step::Flush { attempt, last } => {
                let result = flusher.flush().await;
                finish(&shared, attempt, result);
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
    if st.stopped {
        return Step::Exit;
    }
    if st.flushing {
        // A leader's flush; its end wakes this task.
        return Step::Wait;
    }
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
    let last = st.closing;
    Step::Flush {
        attempt: Shared::begin(&mut st),
        last,
    }
}

/// Publishes the outcome of flush attempt `attempt`; wakes the background task when changes
/// remain unsaved (the next group, if a leader ran this one).
fn finish<E>(shared: &Shared<E>, attempt: Attempt, result: Result<(), E>) {
    let Attempt {
        number: attempt,
        version,
    } = attempt;
    let outcome: Outcome<E> = result.map_err(Arc::new);
    let mut served = Vec::new();
    let dirty = {
        let mut st = shared.lock();
        st.flushing = false;
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
        st.version > st.durable
    };
    if dirty {
        shared.wake.notify_one();
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
