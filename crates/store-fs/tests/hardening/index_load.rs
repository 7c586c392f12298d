//! Item: loading trusts nothing. Digest lookups never go through tags; one bad entry is reported
//! and refused where it is used, not at open; `index.json` has a bounded size and costs under
//! 1 KB of memory per entry to open, in time linear in its entries.

use crate::common::{desc, Image, CONFIG, LAYER, MANIFEST};
use crate::util::pattern;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use store_core::content::fetch_all;
use store_core::{ErrorKind, Fetcher, Resolver, TagLister, Tagger, Untagger};
use store_fs::{ReadOnlyStore, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An `index.json` entry for `d`, with `size` written instead of the real one and an optional
/// `ref.name`.
fn entry(d: &Descriptor, size: u64, name: Option<&str>) -> Value {
    let mut value = json!({
        "mediaType": d.media_type().to_string(),
        "digest": d.digest().to_string(),
        "size": size,
    });
    if let Some(name) = name {
        value["annotations"] = json!({ REF_NAME: name });
    }
    value
}

/// Writes `index.json` at `root` with `entries`.
fn write_index(root: &Path, entries: Vec<Value>) {
    let doc = json!({"schemaVersion": 2, "manifests": entries});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
}

/// A layout at `root` holding two images, whose `index.json` the caller then rewrites.
async fn two_images(root: &Path) -> (Image, Image) {
    let store = Store::open(root).await.unwrap();
    let a = Image::new(1, &pattern(2048, 1));
    let b = Image::new(2, &pattern(2048, 2));
    a.push(&store).await;
    b.push(&store).await;
    store.close().await.unwrap();
    (a, b)
}

#[tokio::test]
async fn a_ref_name_spelling_another_entrys_digest_does_not_hijack_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_images(dir.path()).await;
    let a_digest = a.manifest.0.digest().to_string();
    write_index(
        dir.path(),
        vec![
            entry(&a.manifest.0, a.manifest.0.size(), None),
            entry(&b.manifest.0, b.manifest.0.size(), Some(&a_digest)),
        ],
    );
    let store = Store::open(dir.path()).await.unwrap();
    let resolved = store.resolve(&a_digest).await.unwrap();
    assert_eq!(resolved.digest(), a.manifest.0.digest(), "Store::resolve");
    let b_digest = b.manifest.0.digest().to_string();
    let resolved = store.resolve(&b_digest).await.unwrap();
    assert_eq!(
        resolved.digest(),
        b.manifest.0.digest(),
        "Store::resolve of b"
    );
    assert!(
        store.tags(None).await.unwrap().is_empty(),
        "a digest-shaped ref.name is no tag"
    );
    // A write keeps both entries, b's as it was written.
    store.tag(&a.manifest.0, "later").await.unwrap();
    let written = crate::common::index_json(dir.path())["manifests"].clone();
    let list = written.as_array().unwrap();
    assert_eq!(list.len(), 2, "{written}");
    assert!(
        list.iter()
            .any(|e| e["digest"] == b_digest.as_str()
                && e["annotations"][REF_NAME] == a_digest.as_str()),
        "{written}"
    );
    store.untag("later").await.unwrap();
    drop(store);
    let read_only = ReadOnlyStore::open(dir.path()).await.unwrap();
    let resolved = read_only.resolve(&a_digest).await.unwrap();
    assert_eq!(
        resolved.digest(),
        a.manifest.0.digest(),
        "ReadOnlyStore::resolve"
    );
}

#[tokio::test]
async fn one_mis_sized_entry_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_images(dir.path()).await;
    write_index(
        dir.path(),
        vec![
            entry(&a.manifest.0, a.manifest.0.size() + 1, Some("bad")),
            entry(&b.manifest.0, b.manifest.0.size(), Some("good")),
        ],
    );
    let bad_digest = a.manifest.0.digest().to_string();

    let store = Store::open(dir.path())
        .await
        .expect("a layout with one mis-sized entry opens");
    let good = store.resolve("good").await.unwrap();
    assert_eq!(fetch_all(&store, &good).await.unwrap(), b.manifest.1);
    let bad = store.resolve("bad").await.unwrap();
    let fetched = store.fetch(&bad).await.map(|_| ());
    assert_eq!(
        fetched.map_err(|e| e.kind()),
        Err(ErrorKind::Mismatch),
        "what touches the bad entry is refused"
    );
    let report = store.fsck().await.unwrap();
    assert!(report.size_mismatch.contains(&bad_digest), "{report:?}");
    // What the bad entry reaches is unknown to the graph: gc refuses rather than guess.
    let collected = store.gc().await.map(|_| ());
    let err = collected.expect_err("gc while an entry could not be indexed");
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
    assert!(err.to_string().contains(&bad_digest), "{err}");
    drop(store);

    let read_only = ReadOnlyStore::open(dir.path())
        .await
        .expect("read-only: a layout with one mis-sized entry opens");
    let good = read_only.resolve("good").await.unwrap();
    assert_eq!(fetch_all(&read_only, &good).await.unwrap(), b.manifest.1);
}

/// The documented limit on the size of `index.json`.
const INDEX_LIMIT: u64 = store_fs::MAX_INDEX_JSON_SIZE;

#[tokio::test]
async fn an_index_json_beyond_the_limit_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    // Valid JSON, one byte past the limit: only the limit refuses it.
    let mut body = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    body.resize(INDEX_LIMIT as usize + 1, b' ');
    std::fs::write(dir.path().join("index.json"), &body).unwrap();
    for read_only in [false, true] {
        let opened = if read_only {
            ReadOnlyStore::open(dir.path()).await.map(|_| ())
        } else {
            Store::open(dir.path()).await.map(|_| ())
        };
        let err = opened.expect_err("an index.json beyond the limit");
        assert_eq!(
            err.kind(),
            ErrorKind::SizeExceedsLimit,
            "read-only {read_only}: {err}"
        );
        assert!(err.to_string().contains("index.json"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Memory per entry, measured in a child process so that nothing else the test binary does
// counts: the peak of the bytes held on the heap (counted by this binary's allocator, so the
// figure is the same on every run) within the budget, and the peak resident set (VmHWM, which
// adds the allocator's own overhead and varies by some percent from run to run) within a looser
// bound that still catches fragmentation running away.

const MEMORY_CHILD_ENV: &str = "OCISTORE_HARDENING_MEMORY_CHILD";
const MEMORY_MARK: &str = "HARDENING-HWM-KB";
const HEAP_MARK: &str = "HARDENING-HEAP-PEAK-BYTES";
/// The bound on the peak resident set per entry.
const RSS_BOUND_PER_ENTRY: u64 = 1536;
/// Entries of the measured `index.json`; each tags a manifest of its own that is on disk.
const ENTRIES: usize = 20_000;
/// The budget per entry, everything included (the index, the graph, the bytes read).
const BUDGET_PER_ENTRY: u64 = 1024;

/// The peak resident set of this process, in KiB.
fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The child half of [`opening_costs_under_a_kilobyte_per_entry`]: opens the layout named by
/// the environment and prints how much the peak resident set grew. Does nothing otherwise.
#[test]
fn memory_child() {
    let Some(dir) = std::env::var_os(MEMORY_CHILD_ENV) else {
        return;
    };
    let runtime = crate::util::current_thread();
    let before = vm_hwm_kb();
    let live_before = LIVE_BYTES.load(Ordering::SeqCst);
    PEAK_LIVE_BYTES.store(live_before, Ordering::SeqCst);
    let store = runtime.block_on(Store::open(&dir)).unwrap();
    let after = vm_hwm_kb();
    let heap_peak = PEAK_LIVE_BYTES
        .load(Ordering::SeqCst)
        .saturating_sub(live_before);
    drop(store);
    println!("{MEMORY_MARK} {}", after.saturating_sub(before));
    println!("{HEAP_MARK} {heap_peak}");
}

/// The number printed after `mark` by a child.
fn measurement(stdout: &str, mark: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.split_once(mark))
        .and_then(|(_, rest)| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child printed no {mark}: {stdout}"))
}

/// A layout with `count` tagged manifests (sharing one config and one layer).
fn many_entries(root: &Path, count: usize) {
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = desc(CONFIG, config_bytes);
    let layer_bytes = pattern(1024, 1);
    let layer = desc(LAYER, &layer_bytes);
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |d: &Descriptor, bytes: &[u8]| {
        let hex = d.digest().to_string()[7..].to_string();
        std::fs::write(blobs.join(hex), bytes).unwrap();
    };
    put(&config, config_bytes);
    put(&layer, &layer_bytes);
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut entries = Vec::with_capacity(count);
    for n in 0..count {
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": entry(&config, config.size(), None),
            "layers": [entry(&layer, layer.size(), None)],
            "annotations": {"n": n.to_string()},
        }))
        .unwrap();
        let manifest = desc(MANIFEST, &body);
        put(&manifest, &body);
        entries.push(entry(&manifest, manifest.size(), Some(&format!("tag-{n}"))));
    }
    write_index(root, entries);
}

/// The standard output of a child that succeeded.
fn child_output(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn opening_costs_under_a_kilobyte_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    many_entries(dir.path(), ENTRIES);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "index_load::memory_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEMORY_CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = child_output(&out);
    let grew_kb = measurement(&stdout, MEMORY_MARK);
    let heap_peak = measurement(&stdout, HEAP_MARK);
    let rss_per_entry = grew_kb * 1024 / ENTRIES as u64;
    let heap_per_entry = heap_peak / ENTRIES as u64;
    println!(
        "opening {ENTRIES} entries: peak heap {heap_per_entry} bytes per entry, \
         peak resident set {rss_per_entry} bytes per entry"
    );
    assert!(
        heap_per_entry < BUDGET_PER_ENTRY,
        "opening {ENTRIES} entries held at most {heap_peak} bytes on the heap: \
         {heap_per_entry} bytes per entry, over the {BUDGET_PER_ENTRY}-byte budget"
    );
    assert!(
        rss_per_entry < RSS_BOUND_PER_ENTRY,
        "opening {ENTRIES} entries grew the peak resident set by {grew_kb} KiB: \
         {rss_per_entry} bytes per entry, over the {RSS_BOUND_PER_ENTRY}-byte bound"
    );
}

// ---------------------------------------------------------------------------------------------
// Time linear in the entries, measured as work rather than time (which a busy machine skews):
// the allocations opening makes, counted by this binary's allocator, in a child process so that
// nothing else the test binary does counts.

/// Counts the allocations of this process (calls, and bytes asked for, a reallocation counting
/// its new size) for [`opening_takes_linear_work`]; the system allocator does the work.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes held now, and the most held since the last reset, for the memory budget.
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_LIVE_BYTES: AtomicU64 = AtomicU64::new(0);

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

fn hold(size: usize) {
    let live = LIVE_BYTES.fetch_add(size as u64, Ordering::SeqCst) + size as u64;
    PEAK_LIVE_BYTES.fetch_max(live, Ordering::SeqCst);
}

fn release(size: usize) {
    LIVE_BYTES.fetch_sub(size as u64, Ordering::SeqCst);
}

// SAFETY: every call is passed to the system allocator unchanged; counting has no effect on it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is the system allocator's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            hold(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            hold(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        release(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            hold(new_size);
            release(layout.size());
        }
        moved
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

const WORK_CHILD_ENV: &str = "OCISTORE_HARDENING_WORK_CHILD";
const WORK_MARK: &str = "HARDENING-WORK";
/// The smaller layout of the linear-time test; the larger has four times as many entries.
const WORK_ENTRIES: usize = 1000;
/// How much more work four times the entries may take: 4 for linear work, 16 for quadratic.
const WORK_RATIO_LIMIT: f64 = 4.6;

/// The child half of [`opening_takes_linear_work`]: opens each layout named by the environment
/// (one path a line, the first opened once before counting, to warm the runtime up) and prints
/// the allocations and bytes each open took. Does nothing otherwise.
#[test]
fn work_child() {
    let Some(dirs) = std::env::var_os(WORK_CHILD_ENV) else {
        return;
    };
    let dirs = dirs.into_string().unwrap();
    let dirs: Vec<&str> = dirs.lines().collect();
    let runtime = crate::util::current_thread();
    runtime.block_on(async {
        Store::open(dirs[0]).await.unwrap().close().await.unwrap();
        for dir in &dirs {
            let (calls, bytes) = (
                ALLOCATIONS.load(Ordering::Relaxed),
                ALLOCATED_BYTES.load(Ordering::Relaxed),
            );
            let store = Store::open(dir).await.unwrap();
            let calls = ALLOCATIONS.load(Ordering::Relaxed) - calls;
            let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
            store.close().await.unwrap();
            println!("{WORK_MARK} {calls} {bytes}");
        }
    });
}

#[test]
fn opening_takes_linear_work() {
    let counts = [0, WORK_ENTRIES, 4 * WORK_ENTRIES];
    let dirs: Vec<tempfile::TempDir> = counts
        .iter()
        .map(|&count| {
            let dir = tempfile::tempdir().unwrap();
            many_entries(dir.path(), count);
            dir
        })
        .collect();
    let paths: Vec<String> = dirs
        .iter()
        .map(|d| d.path().to_str().unwrap().to_string())
        .collect();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "index_load::work_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORK_CHILD_ENV, paths.join("\n"))
        .output()
        .unwrap();
    let stdout = child_output(&out);
    let work: Vec<(u64, u64)> = stdout
        .lines()
        .filter_map(|line| line.split_once(WORK_MARK))
        .filter_map(|(_, rest)| {
            let (calls, bytes) = rest.trim().split_once(' ')?;
            Some((calls.parse().ok()?, bytes.parse().ok()?))
        })
        .collect();
    assert_eq!(work.len(), 3, "the child printed: {stdout}");
    // The work of an empty layout is the same whatever the entries: what grows is the rest.
    let (empty, small, large) = (work[0], work[1], work[2]);
    for (what, base, n, four_n) in [
        ("allocations", empty.0, small.0, large.0),
        ("bytes allocated", empty.1, small.1, large.1),
    ] {
        let (n, four_n) = (n.saturating_sub(base), four_n.saturating_sub(base));
        assert!(
            n > 0,
            "opening {WORK_ENTRIES} entries made no {what}: {stdout}"
        );
        let ratio = four_n as f64 / n as f64;
        println!(
            "{what}: {n} for {WORK_ENTRIES} entries, {four_n} for {} ({ratio:.2}x)",
            4 * WORK_ENTRIES
        );
        assert!(
            ratio < WORK_RATIO_LIMIT,
            "opening four times the entries took {ratio:.2} times the {what} \
             ({n} for {WORK_ENTRIES}, {four_n} for {}): more than linear",
            4 * WORK_ENTRIES
        );
    }
}
