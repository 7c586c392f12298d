//! Helpers of the hardening tests: guarded runs, FIFOs, blob paths, a reader that stalls until
//! the test releases it.

use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use store_core::ErrorKind;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::oneshot;

/// How long a guarded operation may take before the test calls it a hang. Generous: it only
/// decides anything while the hang exists.
pub const GUARD: Duration = Duration::from_secs(20);

/// A current-thread runtime, as a single-threaded caller would use.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `body` on a thread of its own with a current-thread runtime of its own, and panics
/// naming `what` if it has not finished within [`GUARD`] (after calling `unjam`, which should
/// release whatever the body may be stuck on, so that its thread can end).
pub fn guarded<F>(what: &str, unjam: impl FnOnce(), body: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        current_thread().block_on(body);
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(GUARD) {
        Ok(()) => {
            let _ = thread.join();
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            unjam();
            panic!("{what} did not finish within {GUARD:?}: it hangs");
        }
    }
}

/// `len` bytes that differ with `seed` (no two blobs share a digest).
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// `blobs/<alg>/<hex>` of `d` under `root`.
pub fn blob_path(root: &Path, d: &Descriptor) -> PathBuf {
    let digest = d.digest().to_string();
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join("blobs").join(alg).join(hex)
}

/// Replaces whatever is at `path` with a FIFO.
pub fn make_fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Releases a reader blocked opening the FIFO at `path`: opening its write end lets the
/// reader's open return, and closing it gives the reader end-of-file.
pub fn unjam_fifo(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    for _ in 0..100 {
        if std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that `result` is refused with `InvalidLayout` and that the message names `name`.
pub fn assert_refused<T: std::fmt::Debug>(result: store_core::Result<T>, name: &str, what: &str) {
    match result {
        Ok(value) => panic!("{what}: expected InvalidLayout naming {name}, got Ok({value:?})"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidLayout, "{what}: {e}");
            assert!(e.to_string().contains(name), "{what}: names {name}: {e}");
        }
    }
}

/// Every entry (file, link, directory) directly in `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Serves `data` once the test sends on the paired sender; until then every read is pending.
/// `stalled` is set when the store first reads.
pub struct StallingReader {
    gate: Option<oneshot::Receiver<()>>,
    stalled: Arc<AtomicBool>,
    data: io::Cursor<Bytes>,
}

impl StallingReader {
    /// The reader, the sender that releases it, and the flag set at the first read.
    pub fn new(data: Bytes) -> (StallingReader, oneshot::Sender<()>, Arc<AtomicBool>) {
        let (release, gate) = oneshot::channel();
        let stalled = Arc::new(AtomicBool::new(false));
        let reader = StallingReader {
            gate: Some(gate),
            stalled: Arc::clone(&stalled),
            data: io::Cursor::new(data),
        };
        (reader, release, stalled)
    }
}

impl AsyncRead for StallingReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(gate) = this.gate.as_mut() {
            this.stalled.store(true, Ordering::SeqCst);
            match Pin::new(gate).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => this.gate = None,
            }
        }
        Pin::new(&mut this.data).poll_read(cx, buf)
    }
}
