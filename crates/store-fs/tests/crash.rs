//! Crash safety: a child process pushes, tags and untags in a loop on one layout and is killed
//! with SIGKILL at random moments; after every kill the layout reopens, `index.json` parses,
//! `fsck` finds nothing corrupt, missing or mis-sized, every tag whose `tag()` had returned before
//! the kill resolves and fetches, and every untagged scratch tag stays gone.
//!
//! The child is this test binary itself, re-executed with `OCISTORE_CRASH_CHILD=<dir>` and the
//! filter `--exact child_worker`. The kill moments are random (xorshift seeded from the clock,
//! printed; set `OCISTORE_CRASH_SEED` to replay one); the assertions hold whatever the moment.

mod common;

use bytes::Bytes;
use common::{listing, Image};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use store_core::content::{fetch_all, push_bytes};
use store_core::{ErrorKind, Pusher, Tagger, Untagger};
use store_fs::Store;
use tokio::io::{AsyncRead, ReadBuf};

/// Names the layout directory the child works on; unset, `child_worker` does nothing.
const CHILD_ENV: &str = "OCISTORE_CRASH_CHILD";
/// The first image number of a child, so that every round pushes images and tags of its own.
const BASE_ENV: &str = "OCISTORE_CRASH_BASE";
/// Replays a run: the seed the parent printed.
const SEED_ENV: &str = "OCISTORE_CRASH_SEED";

const ROUNDS: usize = 60;
/// Image numbers reserved per round; a child is killed long before it gets through them.
const PER_ROUND: u64 = 100_000;
/// Every this many images the layer is above the store's 256 KiB in-memory limit (streaming).
const BIG_EVERY: u64 = 6;
/// Every this many images a scratch tag is set and removed again.
const SCRATCH_EVERY: u64 = 3;
/// A child that prints nothing for this long is stuck: a guard against hanging, not a verdict.
const WATCHDOG: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The layer of image `n`: distinct per `n`; every [`BIG_EVERY`]th one streams.
fn layer_bytes(n: u64) -> Vec<u8> {
    let len = if n.is_multiple_of(BIG_EVERY) {
        (256 << 10) + 1 + (n % 64) as usize * 16
    } else {
        512 + (n % 1024) as usize
    };
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    out.extend_from_slice(&n.to_le_bytes());
    while out.len() < len {
        state = xorshift(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = xorshift(self.0);
        self.0 % n
    }
}

/// Hands out content in small pieces with a pause before each, like a slow network: a
/// streaming push spends most of its time waiting for content, which is where a kill lands.
struct Trickle {
    data: Bytes,
    pause: Pin<Box<tokio::time::Sleep>>,
}

const PIECE: usize = 16 << 10;
const PAUSE: Duration = Duration::from_micros(500);

impl Trickle {
    fn new(data: Bytes) -> Trickle {
        Trickle {
            data,
            pause: Box::pin(tokio::time::sleep(PAUSE)),
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.data.is_empty() || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        ready!(this.pause.as_mut().poll(cx));
        let n = this.data.len().min(PIECE).min(buf.remaining());
        buf.put_slice(&this.data.split_to(n));
        let next = tokio::time::Instant::now() + PAUSE;
        this.pause.as_mut().reset(next);
        Poll::Ready(Ok(()))
    }
}

/// Pushes config, layer (through a [`Trickle`]) and manifest; AlreadyExists is fine.
async fn push_image(store: &Store, image: &Image) {
    let (layer, layer_bytes) = &image.layer;
    let results = [
        push_bytes(store, &image.config.0, image.config.1.clone()).await,
        store
            .push(layer, Box::pin(Trickle::new(layer_bytes.clone())))
            .await,
        push_bytes(store, &image.manifest.0, image.manifest.1.clone()).await,
    ];
    for result in results {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => panic!("push in the child: {e}"),
        }
    }
}

/// The child: pushes, tags and untags on the layout at `$OCISTORE_CRASH_CHILD` until killed.
/// A line is printed only after the call it reports has returned.
#[test]
fn child_worker() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let base: u64 = std::env::var(BASE_ENV)
        .expect("the parent sets the base")
        .parse()
        .unwrap();
    runtime().block_on(async move {
        let store = Store::open(&dir).await.expect("open in the child");
        let stdout = std::io::stdout();
        for n in base.. {
            let image = Image::new(n as u32, &layer_bytes(n));
            push_image(&store, &image).await;
            let manifest = &image.manifest.0;
            let tag = format!("t{n}");
            store.tag(manifest, &tag).await.expect("tag in the child");
            {
                let mut out = stdout.lock();
                writeln!(out, "TAGGED {tag} {}", manifest.digest()).unwrap();
                out.flush().unwrap();
            }
            if n.is_multiple_of(SCRATCH_EVERY) {
                let scratch = format!("s{n}");
                store.tag(manifest, &scratch).await.expect("scratch tag");
                store.untag(&scratch).await.expect("untag in the child");
                let mut out = stdout.lock();
                writeln!(out, "UNTAGGED {scratch}").unwrap();
                out.flush().unwrap();
            }
        }
    });
}

/// What the children reported, over all rounds.
#[derive(Default)]
struct Reported {
    /// Tag → manifest digest, for every `TAGGED` line.
    tagged: BTreeMap<String, String>,
    /// Every `UNTAGGED` scratch tag.
    untagged: BTreeSet<String>,
}

impl Reported {
    /// Records one complete line; returns whether it was a report.
    fn record(&mut self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["TAGGED", tag, digest] => {
                let old = self.tagged.insert(tag.to_string(), digest.to_string());
                assert!(old.is_none(), "tag {tag} reported twice");
                true
            }
            ["UNTAGGED", tag] => {
                assert!(
                    self.untagged.insert(tag.to_string()),
                    "{tag} untagged twice"
                );
                true
            }
            _ => false,
        }
    }
}

/// Reads the child's stdout on a thread; only complete lines (ending in `\n`) are sent.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.ends_with('\n') => {
                    if tx.send(line.trim_end().to_string()).is_err() {
                        return;
                    }
                }
                // A line cut short by the kill: not a report.
                Ok(_) => return,
            }
        }
    });
    rx
}

/// Runs one child on `dir` and kills it at a random moment. Returns how many report lines it
/// printed.
fn run_child(
    dir: &Path,
    stderr_path: &Path,
    base: u64,
    rng: &mut Rng,
    reported: &mut Reported,
) -> usize {
    let stderr = std::fs::File::create(stderr_path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env(BASE_ENV, base.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let mut printed = 0;
    let mut ended_early = false;
    // A third of the rounds kill after 0..120 ms (often before the first line, even during
    // open); the others after 1..=12 lines, plus a random sub-millisecond delay.
    if rng.below(3) == 0 {
        std::thread::sleep(Duration::from_micros(rng.below(120_000)));
    } else {
        let want = 1 + rng.below(12) as usize;
        while printed < want {
            match lines.recv_timeout(WATCHDOG) {
                Ok(line) => {
                    if reported.record(&line) {
                        printed += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    ended_early = true;
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the child printed nothing for {WATCHDOG:?}; its stderr:\n{}",
                        std::fs::read_to_string(stderr_path).unwrap_or_default()
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(1_000)));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    // Whatever the child printed before it died was printed after its call returned.
    for line in lines.iter() {
        if reported.record(&line) {
            printed += 1;
        }
    }
    assert!(
        !ended_early && status.signal() == Some(libc::SIGKILL),
        "the child ended by itself ({status}); its stderr:\n{}",
        std::fs::read_to_string(stderr_path).unwrap_or_default()
    );
    printed
}

/// Everything that must hold after a kill.
async fn check_layout(dir: &Path, reported: &Reported, round: usize) {
    let index_path = dir.join("index.json");
    if index_path.exists() {
        let bytes = std::fs::read(&index_path).unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_else(|e| {
            panic!(
                "round {round}: index.json does not parse ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
    }
    let store = Store::open(dir)
        .await
        .unwrap_or_else(|e| panic!("round {round}: reopening after the kill: {e}"));
    let bytes = std::fs::read(&index_path).unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .unwrap_or_else(|e| panic!("round {round}: index.json after open does not parse: {e}"));

    let report = store.fsck().await.unwrap();
    assert!(
        report.corrupt.is_empty()
            && report.missing.is_empty()
            && report.size_mismatch.is_empty()
            && report.invalid_manifests.is_empty()
            && report.layout_errors.is_empty(),
        "round {round}: fsck after the kill: {report:?}"
    );
    assert!(report.is_clean());
    // Only published blobs live under blobs/: every file is named by a digest (fsck re-hashed
    // each of them above, so none is partial).
    for file in listing(&dir.join("blobs")) {
        let hex = file.strip_prefix("sha256/").unwrap_or_else(|| {
            panic!("round {round}: unexpected file blobs/{file}");
        });
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "round {round}: unexpected file blobs/{file}"
        );
    }

    for (tag, digest) in &reported.tagged {
        let desc = store
            .resolve(tag)
            .await
            .unwrap_or_else(|e| panic!("round {round}: tag {tag} reported set, resolve: {e}"));
        assert_eq!(
            desc.digest().to_string(),
            *digest,
            "round {round}: tag {tag}"
        );
        fetch_all(&store, &desc)
            .await
            .unwrap_or_else(|e| panic!("round {round}: fetching {tag} ({digest}): {e}"));
    }
    for tag in &reported.untagged {
        match store.resolve(tag).await {
            Ok(desc) => panic!(
                "round {round}: scratch tag {tag} was untagged but resolves to {}",
                desc.digest()
            ),
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::NotFound,
                "round {round}: untagged {tag}: {e}"
            ),
        }
    }
    store.close().await.unwrap();
}

#[test]
fn store_survives_sigkill_at_random_moments() {
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) => text.parse().expect("OCISTORE_CRASH_SEED is a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    };
    println!("crash test seed: {seed} (replay with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("layout");
    let stderr_path = temp.path().join("child-stderr");
    let rt = runtime();
    let mut reported = Reported::default();
    let mut mid_work = 0;
    for round in 0..ROUNDS {
        let printed = run_child(
            &dir,
            &stderr_path,
            round as u64 * PER_ROUND,
            &mut rng,
            &mut reported,
        );
        if printed > 0 {
            mid_work += 1;
        }
        rt.block_on(check_layout(&dir, &reported, round));
    }
    println!(
        "{ROUNDS} rounds, {mid_work} killed after printing at least one line; {} tags and {} \
         untagged scratch tags checked",
        reported.tagged.len(),
        reported.untagged.len()
    );
    assert!(
        mid_work >= 10,
        "only {mid_work} of {ROUNDS} rounds killed the child after it had done some work"
    );
    assert!(!reported.tagged.is_empty() && !reported.untagged.is_empty());
}
