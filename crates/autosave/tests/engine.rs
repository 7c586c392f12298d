//! Behaviour of the autosave engine against a fake flusher: no disk, no wall clock.
//!
//! The fake counts its calls, records the caller's change counter it saw when each flush started
//! (its "snapshot") and the (tokio, possibly paused) instant of each call. A semaphore gate lets
//! a test hold a flush in flight; flushes can be told to fail or panic.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autosave::{AutoSave, AutoSaver, Error, Flush};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

#[derive(Debug)]
struct FakeError(u64);

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulated failure of flush call {}", self.0)
    }
}

impl std::error::Error for FakeError {}

struct Fake {
    /// The caller's in-memory change counter (bumped before each `changed`).
    applied: AtomicU64,
    calls: AtomicU64,
    /// `applied` as read by each successful flush when it started.
    snapshots: Mutex<Vec<u64>>,
    /// When each flush call started.
    times: Mutex<Vec<Instant>>,
    started: watch::Sender<u64>,
    done: watch::Sender<u64>,
    gate: Option<Semaphore>,
    fail_next: AtomicU64,
    panic_next: AtomicBool,
    /// Flushes running now, and whether two ever ran at once.
    in_flight: AtomicU64,
    overlapped: AtomicBool,
    /// The tokio task each flush call ran in.
    tasks: Mutex<Vec<Option<tokio::task::Id>>>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Self::build(None)
    }

    fn gated() -> Arc<Self> {
        Self::build(Some(Semaphore::new(0)))
    }

    fn build(gate: Option<Semaphore>) -> Arc<Self> {
        Arc::new(Fake {
            applied: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            snapshots: Mutex::new(Vec::new()),
            times: Mutex::new(Vec::new()),
            started: watch::channel(0).0,
            done: watch::channel(0).0,
            gate,
            fail_next: AtomicU64::new(0),
            panic_next: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            overlapped: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn release(&self, n: usize) {
        self.gate.as_ref().expect("gated fake").add_permits(n);
    }

    fn calls(&self) -> u64 {
        self.calls.load(SeqCst)
    }

    fn snapshots(&self) -> Vec<u64> {
        self.snapshots.lock().unwrap().clone()
    }

    fn times(&self) -> Vec<Instant> {
        self.times.lock().unwrap().clone()
    }

    async fn wait_started(&self, n: u64) {
        self.started
            .subscribe()
            .wait_for(|&c| c >= n)
            .await
            .unwrap();
    }

    async fn wait_done(&self, n: u64) {
        self.done.subscribe().wait_for(|&c| c >= n).await.unwrap();
    }
}

#[async_trait::async_trait]
impl Flush for Fake {
    type Error = FakeError;

    async fn flush(&self) -> Result<(), FakeError> {
        let n = self.calls.fetch_add(1, SeqCst) + 1;
        if self.in_flight.fetch_add(1, SeqCst) > 0 {
            self.overlapped.store(true, SeqCst);
        }
        self.tasks.lock().unwrap().push(tokio::task::try_id());
        let snapshot = self.applied.load(SeqCst);
        self.times.lock().unwrap().push(Instant::now());
        self.started.send_replace(n);
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.in_flight.fetch_sub(1, SeqCst);
        if self.panic_next.swap(false, SeqCst) {
            panic!("simulated panic in flush call {n}");
        }
        let failed = self
            .fail_next
            .fetch_update(SeqCst, SeqCst, |f| f.checked_sub(1))
            .is_ok();
        let result = if failed {
            Err(FakeError(n))
        } else {
            self.snapshots.lock().unwrap().push(snapshot);
            Ok(())
        };
        self.done.send_replace(n);
        result
    }
}

/// Applies one change to the fake's state, then records it, as a store must.
fn change(fake: &Fake, saver: &AutoSaver<Fake>) -> autosave::Saved<FakeError> {
    fake.applied.fetch_add(1, SeqCst);
    saver.changed()
}

/// Yields until the flusher task has exited (it holds the other `Arc<Fake>`).
async fn wait_task_exit(fake: &Arc<Fake>) {
    for _ in 0..10_000 {
        if Arc::strong_count(fake) == 1 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the flusher task did not exit");
}

#[tokio::test]
async fn always_returns_only_after_a_flush_covering_the_change() {
    let fake = Fake::gated();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
    let saved = change(&fake, &saver);
    assert_eq!(saved.version(), 1);
    let waiter = tokio::spawn(saved);
    fake.wait_started(1).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!waiter.is_finished(), "returned before its flush finished");
    assert_eq!(saver.durable_version(), 0);
    assert!(saver.is_dirty());

    fake.release(1);
    waiter.await.unwrap().unwrap();
    assert_eq!(saver.durable_version(), 1);
    assert!(!saver.is_dirty());
    assert_eq!(saver.flushes(), 1);
    assert_eq!(fake.snapshots(), vec![1]);
    saver.close().await.unwrap();
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn always_groups_concurrent_changes_into_few_flushes() {
    let fake = Fake::gated();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));

    // A first change starts a flush that stays in flight...
    let first = tokio::spawn(change(&fake, &saver));
    fake.wait_started(1).await;

    // ...while 100 concurrent callers record theirs.
    let mut callers = Vec::new();
    for _ in 0..100 {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        callers.push(tokio::spawn(async move {
            let saved = change(&fake, &saver);
            let version = saved.version();
            saved.await.unwrap();
            // Returned only after a successful flush that covered this change.
            assert!(saver.durable_version() >= version);
            assert!(fake.snapshots().iter().any(|&s| s >= version));
        }));
    }
    while saver.version() < 101 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.calls(), 1);

    fake.release(1_000);
    first.await.unwrap().unwrap();
    for caller in callers {
        caller.await.unwrap();
    }
    // One flush for the first change, one for the 100 that arrived while it ran.
    assert_eq!(saver.flushes(), 2);
    assert_eq!(fake.snapshots(), vec![1, 101]);
    assert_eq!(saver.durable_version(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn always_is_correct_under_real_concurrency() {
    let fake = Fake::new();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let saved = change(&fake, &saver);
                let version = saved.version();
                saved.await.unwrap();
                assert!(saver.durable_version() >= version);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(saver.version(), 1_600);
    assert_eq!(saver.durable_version(), 1_600);
    assert!(saver.flushes() <= 1_600);
    assert_eq!(saver.flushes(), fake.calls());
    let snapshots = fake.snapshots();
    assert!(snapshots.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(snapshots.last(), Some(&1_600));
}

#[tokio::test(start_paused = true)]
async fn debounce_flushes_at_the_deadline_and_not_before() {
    let d = Duration::from_millis(100);
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Debounce(d));
    let t0 = Instant::now();

    change(&fake, &saver).await.unwrap(); // returns at once
    assert_eq!(Instant::now(), t0);
    tokio::time::sleep(Duration::from_millis(40)).await;
    change(&fake, &saver).await.unwrap(); // rides along
    tokio::time::sleep(Duration::from_millis(59)).await;
    assert_eq!(Instant::now(), t0 + Duration::from_millis(99));
    assert_eq!(fake.calls(), 0, "flushed before the debounce deadline");
    assert!(saver.is_dirty());

    fake.wait_done(1).await;
    assert_eq!(
        fake.times(),
        vec![t0 + d],
        "flushed exactly d after the first change"
    );
    assert_eq!(fake.snapshots(), vec![2]);
    assert_eq!(saver.durable_version(), 2);

    // Clean: no further flush, however long we wait.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(fake.calls(), 1);

    // The next change starts a new window.
    let t1 = Instant::now();
    change(&fake, &saver).await.unwrap();
    fake.wait_done(2).await;
    assert_eq!(fake.times()[1], t1 + d);
    assert_eq!(fake.snapshots(), vec![2, 3]);
    saver.close().await.unwrap();
    assert_eq!(fake.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn debounce_flush_now_flushes_at_once() {
    let fake = Fake::new();
    let saver = AutoSaver::new(
        Arc::clone(&fake),
        AutoSave::Debounce(Duration::from_secs(3600)),
    );
    let t0 = Instant::now();
    change(&fake, &saver).await.unwrap();
    change(&fake, &saver).await.unwrap();
    saver.flush_now().await.unwrap();
    assert_eq!(
        Instant::now(),
        t0,
        "flush_now waited for the debounce timer"
    );
    assert_eq!(fake.times(), vec![t0]);
    assert_eq!(saver.durable_version(), 2);

    // The old deadline does not cause a second flush.
    tokio::time::sleep(Duration::from_secs(7200)).await;
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn debounce_close_flushes_at_once() {
    let fake = Fake::new();
    let saver = AutoSaver::new(
        Arc::clone(&fake),
        AutoSave::Debounce(Duration::from_secs(3600)),
    );
    let t0 = Instant::now();
    change(&fake, &saver).await.unwrap();
    saver.close().await.unwrap();
    assert_eq!(Instant::now(), t0);
    assert_eq!(fake.snapshots(), vec![1]);
    assert_eq!(
        Arc::strong_count(&fake),
        1,
        "the flusher task is still running"
    );
}

#[tokio::test(start_paused = true)]
async fn debounce_failure_is_retried_by_the_next_change() {
    let d = Duration::from_millis(50);
    let fake = Fake::new();
    fake.fail_next.store(1, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Debounce(d));
    let t0 = Instant::now();
    change(&fake, &saver).await.unwrap();
    fake.wait_done(1).await;
    assert_eq!(fake.times(), vec![t0 + d]);
    assert_eq!(saver.failed_flushes(), 1);
    assert!(saver.is_dirty());

    // No retry loop on its own.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(fake.calls(), 1);

    let t1 = Instant::now();
    change(&fake, &saver).await.unwrap();
    fake.wait_done(2).await;
    assert_eq!(fake.times()[1], t1 + d);
    assert_eq!(fake.snapshots(), vec![2]);
    assert!(!saver.is_dirty());
}

#[tokio::test(start_paused = true)]
async fn manual_never_flushes_until_asked() {
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    for _ in 0..10 {
        change(&fake, &saver).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    assert_eq!(fake.calls(), 0);
    assert!(saver.is_dirty());
    assert_eq!(saver.version(), 10);

    saver.flush_now().await.unwrap();
    assert_eq!(fake.snapshots(), vec![10]);
    assert_eq!(saver.durable_version(), 10);

    // Nothing dirty: resolves without flushing.
    saver.flush_now().await.unwrap();
    assert_eq!(fake.calls(), 1);

    change(&fake, &saver).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(fake.calls(), 1);
    saver.close().await.unwrap();
    assert_eq!(fake.snapshots(), vec![10, 11]);
    assert_eq!(
        Arc::strong_count(&fake),
        1,
        "the flusher task is still running"
    );
}

#[tokio::test]
async fn a_change_is_recorded_even_if_its_future_is_dropped() {
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    drop(change(&fake, &saver));
    assert_eq!(saver.version(), 1);
    assert!(saver.is_dirty());
    saver.close().await.unwrap();
    assert_eq!(fake.snapshots(), vec![1]);
}

#[tokio::test(start_paused = true)]
async fn always_failure_is_reported_and_a_later_flush_retries() {
    let fake = Fake::new();
    fake.fail_next.store(1, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);

    let err = change(&fake, &saver).await.unwrap_err();
    assert_eq!(err.flush_error().expect("a flush error").0, 1);
    assert!(saver.is_dirty());
    assert_eq!(saver.failed_flushes(), 1);
    assert_eq!(saver.flushes(), 0);

    // No retry loop on its own.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fake.calls(), 1);

    saver.flush_now().await.unwrap();
    assert_eq!(fake.calls(), 2);
    assert_eq!(saver.durable_version(), 1);
    assert!(!saver.is_dirty());

    // The next change also retries whatever a failure left behind.
    fake.fail_next.store(1, SeqCst);
    assert!(change(&fake, &saver).await.is_err());
    change(&fake, &saver).await.unwrap();
    assert_eq!(fake.snapshots(), vec![1, 3]);
    assert_eq!(saver.failed_flushes(), 2);
    assert_eq!(saver.flushes(), 2);
}

#[tokio::test]
async fn one_failed_flush_is_shared_by_all_its_waiters() {
    let fake = Fake::gated();
    fake.fail_next.store(1, SeqCst);
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let first = tokio::spawn(change(&fake, &saver));
    fake.wait_started(1).await;
    // These three arrive during the first flush: the second flush serves them together.
    let waiters: Vec<_> = (0..3).map(|_| change(&fake, &saver)).collect();
    fake.fail_next.store(2, SeqCst); // the first and second flush fail
    fake.release(10);
    assert!(first.await.unwrap().is_err());
    let mut errors = Vec::new();
    for w in waiters {
        errors.push(w.await.unwrap_err().flush_error().unwrap().clone());
    }
    assert!(errors.iter().all(|e| Arc::ptr_eq(e, &errors[0])));
    assert_eq!(errors[0].0, 2);
    assert_eq!(fake.calls(), 2);

    saver.flush_now().await.unwrap();
    assert_eq!(saver.durable_version(), 4);
    assert_eq!(fake.snapshots(), vec![4]);
}

#[tokio::test]
async fn manual_flush_now_fails_once_then_succeeds() {
    let fake = Fake::new();
    fake.fail_next.store(1, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    let err = saver.flush_now().await.unwrap_err();
    assert!(matches!(err, Error::Flush(_)));
    assert_eq!(
        err.to_string(),
        "flush failed: simulated failure of flush call 1"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(saver.is_dirty());
    saver.flush_now().await.unwrap();
    assert!(!saver.is_dirty());
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn flush_now_during_a_failing_flush_gets_a_fresh_attempt() {
    let fake = Fake::gated();
    fake.fail_next.store(1, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    let early = tokio::spawn(saver.flush_now());
    fake.wait_started(1).await;
    // Asked while the (doomed) flush runs: it must not inherit an error from before the call.
    let late = saver.flush_now();
    fake.release(2);
    assert!(early.await.unwrap().is_err());
    late.await.unwrap();
    assert_eq!(fake.calls(), 2);
    assert_eq!(saver.durable_version(), 1);
}

#[tokio::test]
async fn flush_now_during_a_successful_flush_reuses_it_when_covered() {
    let fake = Fake::gated();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    let early = tokio::spawn(saver.flush_now());
    fake.wait_started(1).await;
    let late = saver.flush_now(); // nothing changed since the flush started
    fake.release(10);
    early.await.unwrap().unwrap();
    late.await.unwrap();
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn flush_now_covers_changes_made_during_a_running_flush() {
    let fake = Fake::gated();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let first = tokio::spawn(change(&fake, &saver));
    fake.wait_started(1).await;
    let second = change(&fake, &saver);
    let flushed = saver.flush_now();
    assert_eq!(flushed.version(), 2);
    fake.release(10);
    flushed.await.unwrap();
    assert!(saver.durable_version() >= 2);
    first.await.unwrap().unwrap();
    second.await.unwrap();
    assert_eq!(fake.snapshots(), vec![1, 2]);
}

#[tokio::test]
async fn close_waits_for_the_running_flush_and_saves_the_rest() {
    let fake = Fake::gated();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
    let first = tokio::spawn(change(&fake, &saver));
    fake.wait_started(1).await;
    let second = change(&fake, &saver);
    let closing = tokio::spawn(saver.close());
    fake.release(10);
    closing.await.unwrap().unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap();
    assert_eq!(fake.snapshots(), vec![1, 2]);
    assert_eq!(Arc::strong_count(&fake), 1);
}

#[tokio::test]
async fn close_reports_the_error_of_its_final_flush() {
    let fake = Fake::new();
    fake.fail_next.store(1, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    let err = saver.close().await.unwrap_err();
    assert_eq!(err.flush_error().unwrap().0, 1);
    assert_eq!(
        Arc::strong_count(&fake),
        1,
        "the flusher task is still running"
    );
}

#[tokio::test]
async fn close_when_clean_does_not_flush() {
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
    saver.close().await.unwrap();
    assert_eq!(fake.calls(), 0);
    assert_eq!(Arc::strong_count(&fake), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_flushes_a_pending_debounced_change_at_once() {
    let fake = Fake::new();
    let saver = AutoSaver::new(
        Arc::clone(&fake),
        AutoSave::Debounce(Duration::from_secs(3600)),
    );
    let t0 = Instant::now();
    change(&fake, &saver).await.unwrap();
    drop(saver);
    fake.wait_done(1).await;
    assert_eq!(
        fake.times(),
        vec![t0],
        "did not wait for the debounce deadline"
    );
    assert_eq!(fake.snapshots(), vec![1]);
    wait_task_exit(&fake).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_flushes_a_pending_manual_change() {
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    change(&fake, &saver).await.unwrap();
    drop(saver);
    fake.wait_done(1).await;
    assert_eq!(fake.snapshots(), vec![2]);
    wait_task_exit(&fake).await;
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn dropping_a_clean_engine_does_not_flush() {
    let fake = Fake::new();
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
    change(&fake, &saver).await.unwrap();
    drop(saver);
    wait_task_exit(&fake).await;
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn dropping_with_a_failing_last_flush_does_not_retry_forever() {
    let fake = Fake::new();
    fake.fail_next.store(u64::MAX, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Manual);
    change(&fake, &saver).await.unwrap();
    drop(saver);
    wait_task_exit(&fake).await;
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_panicking_flush_stops_the_engine_without_hanging_waiters() {
    let fake = Fake::new();
    fake.panic_next.store(true, SeqCst);
    let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
    let err = change(&fake, &saver).await.unwrap_err();
    assert!(matches!(err, Error::Stopped));
    assert_eq!(err.to_string(), "the autosave flusher has stopped");
    assert!(matches!(change(&fake, &saver).await, Err(Error::Stopped)));
    assert!(matches!(saver.flush_now().await, Err(Error::Stopped)));
    assert!(matches!(saver.close().await, Err(Error::Stopped)));
}

#[test]
fn waiters_resolve_when_the_runtime_shuts_down() {
    let fake = Fake::gated(); // never released: the flush never finishes
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (saver, saved) = rt.block_on(async {
        let saver = AutoSaver::new(Arc::clone(&fake), AutoSave::Always);
        let saved = change(&fake, &saver);
        fake.wait_started(1).await;
        (saver, saved)
    });
    drop(rt);
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(matches!(other.block_on(saved), Err(Error::Stopped)));
    assert!(matches!(
        other.block_on(saver.flush_now()),
        Err(Error::Stopped)
    ));
    drop(saver);
}

#[tokio::test]
async fn a_waiter_runs_the_flush_itself_when_none_is_in_flight() {
    let fake = Fake::new();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let caller = {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        tokio::spawn(async move {
            change(&fake, &saver).await.unwrap();
            tokio::task::id()
        })
    };
    let caller_task = caller.await.unwrap();
    // No hand-off to the background task and back: the flush ran in the caller's own task.
    assert_eq!(fake.tasks.lock().unwrap().clone(), vec![Some(caller_task)]);
    assert_eq!(saver.durable_version(), 1);
    assert_eq!(fake.snapshots(), vec![1]);
}

#[tokio::test]
async fn a_waiter_dropped_in_the_middle_of_its_flush_lets_it_finish_alone() {
    let fake = Fake::gated();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let leader = {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        tokio::spawn(async move { change(&fake, &saver).await })
    };
    fake.wait_started(1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    // A change recorded now waits for the abandoned flush instead of overlapping it.
    let second = {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        tokio::spawn(async move { change(&fake, &saver).await })
    };
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.calls(), 1, "a second flush started beside the first");
    assert_eq!(saver.durable_version(), 0);
    fake.release(2);
    second.await.unwrap().unwrap();
    assert_eq!(fake.snapshots(), vec![1, 2]);
    assert_eq!(saver.durable_version(), 2);
    assert!(!fake.overlapped.load(SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_and_the_background_task_never_flush_at_once() {
    let fake = Fake::new();
    let saver = Arc::new(AutoSaver::new(Arc::clone(&fake), AutoSave::Always));
    let mut callers = Vec::new();
    for _ in 0..16 {
        let (fake, saver) = (Arc::clone(&fake), Arc::clone(&saver));
        callers.push(tokio::spawn(async move {
            for _ in 0..50 {
                let saved = change(&fake, &saver);
                let version = saved.version();
                saved.await.unwrap();
                assert!(saver.durable_version() >= version);
            }
        }));
    }
    // Changes nobody waits on are the background task's.
    for _ in 0..50 {
        drop(change(&fake, &saver));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    saver.flush_now().await.unwrap();
    assert_eq!(saver.durable_version(), 16 * 50 + 50);
    assert!(!fake.overlapped.load(SeqCst), "two flushes ran at once");
    assert!(fake.calls() <= 16 * 50 + 50);
}
