//! Many processes, one layout: concurrent taggers lose nothing, gc in one process spares what
//! another referenced, a stale or live lock file held by another process, and faults of the
//! index write (a read-only layout, a full disk).
//!
//! Child processes are this test binary, re-executed with `OCISTORE_MP_CHILD=<role>` and the
//! filter `--exact child_entry`; `child_entry` does nothing when the variable is unset.

mod common;

use common::Image;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use store_core::content::push_bytes;
use store_core::{ErrorKind, ReadOnlyStorage, Resolver, TagLister, Tagger};
use store_fs::{Store, StoreOptions, LOCK_FILE};

const ROLE_ENV: &str = "OCISTORE_MP_CHILD";
const DIR_ENV: &str = "OCISTORE_MP_DIR";
const ARG_ENV: &str = "OCISTORE_MP_ARG";

/// Tags each tagger process writes of its own, and tags all of them write.
const OWN_TAGS: u32 = 200;
const SHARED_TAGS: u32 = 50;
const TAGGERS: u32 = 4;

fn spawn_child(role: &str, dir: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .env(ARG_ENV, arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout up to the line `marker` (the test harness prints lines of its own).
fn expect_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, marker: &str) {
    for line in lines.by_ref() {
        // libtest prints "test child_entry ... " without a newline before the child's first line.
        if line.unwrap().trim_end().ends_with(marker) {
            return;
        }
    }
    panic!("the child ended before printing {marker}");
}

fn wait_ok(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}",
        out.status
    );
    stdout
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The images a tagger uses: `process`'s own ones, distinct per process.
fn image_of(process: u32, n: u32) -> Image {
    Image::new(process * 10_000 + n, format!("layer {process}").as_bytes())
}

/// The entry point of every child role.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let arg = std::env::var(ARG_ENV).unwrap_or_default();
    runtime().block_on(async move {
        match role.as_str() {
            "tagger" => tagger(&dir, arg.parse().unwrap()).await,
            "pusher" => pusher(&dir).await,
            "locker" => locker(&dir, &arg),
            "readonly" => read_only_child(&dir, &arg).await,
            "fsize" => full_disk_child(&dir).await,
            other => panic!("unknown role {other}"),
        }
    });
}

/// Tags its own images `p<process>-<n>` and the shared tags `shared-<n>` (with its own image),
/// from several tasks at once, then prints what it wrote.
async fn tagger(dir: &Path, process: u32) {
    let store = std::sync::Arc::new(
        Store::open_with(dir, StoreOptions::default().durable(false))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for worker in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for n in (worker..OWN_TAGS).step_by(4) {
                let image = image_of(process, n);
                image.push(&*store).await;
                let tag = format!("p{process}-{n}");
                store.tag(&image.manifest.0, &tag).await.unwrap();
                written.push((tag, image.manifest.0.digest().to_string()));
                if n < SHARED_TAGS {
                    let shared = format!("shared-{n}");
                    store.tag(&image.manifest.0, &shared).await.unwrap();
                    written.push((shared, image.manifest.0.digest().to_string()));
                }
            }
            written
        }));
    }
    let mut out = std::io::stdout().lock();
    for task in tasks {
        for (tag, digest) in task.await.unwrap() {
            writeln!(out, "{tag} {digest}").unwrap();
        }
    }
    let store = std::sync::Arc::into_inner(store).unwrap();
    store.close().await.unwrap();
}

#[test]
fn four_processes_tagging_one_layout_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        Store::open(dir.path())
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
    });
    let children: Vec<Child> = (0..TAGGERS)
        .map(|p| spawn_child("tagger", dir.path(), &p.to_string()))
        .collect();
    let mut own: BTreeMap<String, String> = BTreeMap::new();
    let mut shared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (p, child) in children.into_iter().enumerate() {
        for line in wait_ok(child, &format!("tagger {p}")).lines() {
            // Lines are "<tag> <digest>", the first one after libtest's "test child_entry ... ".
            let words: Vec<&str> = line.split_whitespace().collect();
            let [.., tag, digest] = words[..] else {
                continue;
            };
            if !digest.starts_with("sha256:") {
                continue;
            }
            if tag.starts_with("shared-") {
                shared.entry(tag.into()).or_default().push(digest.into());
            } else {
                own.insert(tag.into(), digest.into());
            }
        }
    }
    assert_eq!(own.len(), (TAGGERS * OWN_TAGS) as usize);
    assert_eq!(shared.len(), SHARED_TAGS as usize);
    let text = std::fs::read(dir.path().join("index.json")).unwrap();
    serde_json::from_slice::<serde_json::Value>(&text).expect("index.json parses");
    runtime().block_on(async {
        let store = Store::open(dir.path()).await.unwrap();
        for (tag, digest) in &own {
            let got = store.resolve(tag).await.unwrap();
            assert_eq!(got.digest().as_ref(), digest, "{tag}");
            assert!(store.exists(&got).await.unwrap());
        }
        for (tag, digests) in &shared {
            let got = store.resolve(tag).await.unwrap();
            assert!(
                digests.iter().any(|d| d == got.digest().as_ref()),
                "{tag} holds {} which no process wrote",
                got.digest()
            );
        }
        assert_eq!(
            store.tags(None).await.unwrap().len(),
            own.len() + shared.len()
        );
        assert!(store.fsck().await.unwrap().is_clean());
    });
}

/// Pushes an image without tagging it, prints `PUSHED`, waits for a line on stdin, then tags
/// it `late` and prints `TAGGED`.
async fn pusher(dir: &Path) {
    let store = Store::open_with(dir, StoreOptions::default().durable(false))
        .await
        .unwrap();
    let image = Image::new(7, b"pushed by another process");
    image.push(&store).await;
    println!("PUSHED");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    store.tag(&image.manifest.0, "late").await.unwrap();
    println!("TAGGED");
    store.close().await.unwrap();
}

#[test]
fn gc_spares_what_another_process_pushed_or_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let image = Image::new(7, b"pushed by another process");
    let rt = runtime();
    // The collector opens first, so everything the other process does is news to it.
    let collector = rt.block_on(Store::open_with(
        dir.path(),
        StoreOptions::default().durable(false),
    ));
    let collector = collector.unwrap();
    let mut child = spawn_child("pusher", dir.path(), "");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "PUSHED");

    // Pushed, not yet tagged: young files are spared (default grace: an hour), and so is the
    // young manifest's untagged index.json entry.
    let report = rt.block_on(collector.gc()).unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert_eq!(report.entries_removed, 0);
    assert!(common::index_json(dir.path())
        .to_string()
        .contains(image.manifest.0.digest().as_ref()));
    for d in [&image.manifest.0, &image.config.0, &image.layer.0] {
        assert!(rt.block_on(collector.exists(d)).unwrap());
    }

    // Tagged by the other process: gc merges index.json first, so even with no grace at all
    // the image is reachable and stays.
    writeln!(child.stdin.take().unwrap()).unwrap();
    expect_line(&mut lines, "TAGGED");
    wait_ok(child, "pusher");
    rt.block_on(collector.close()).unwrap();
    let collector = rt
        .block_on(Store::open_with(
            dir.path(),
            StoreOptions::default()
                .durable(false)
                .gc_grace(Duration::ZERO),
        ))
        .unwrap();
    let report = rt.block_on(collector.gc()).unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert_eq!(
        rt.block_on(collector.resolve("late")).unwrap().digest(),
        image.manifest.0.digest()
    );
}

#[test]
fn gc_merges_a_tag_written_after_it_opened() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let options = StoreOptions::default()
        .durable(false)
        .gc_grace(Duration::ZERO);
    let collector = rt.block_on(Store::open_with(dir.path(), options)).unwrap();
    let mut child = spawn_child("pusher", dir.path(), "");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "PUSHED");
    writeln!(child.stdin.take().unwrap()).unwrap();
    expect_line(&mut lines, "TAGGED");
    wait_ok(child, "pusher");
    // The collector never saw the tag in memory; gc reads it from index.json under the lock.
    let report = rt.block_on(collector.gc()).unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    let image = Image::new(7, b"pushed by another process");
    for d in [&image.manifest.0, &image.config.0, &image.layer.0] {
        assert!(rt.block_on(collector.exists(d)).unwrap());
    }
    assert_eq!(
        rt.block_on(collector.resolve("late")).unwrap().digest(),
        image.manifest.0.digest(),
        "the merged tag is known in memory too"
    );
}

/// Takes the exclusive lock on index.json.lock and prints `LOCKED`. With arg `die`, waits to
/// be killed; with arg `write`, waits for a line on stdin, then adds an entry to index.json the
/// way buildkit's writer does (read, add, write a temp file, rename) and exits (releasing it).
fn locker(dir: &Path, mode: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .unwrap();
    file.lock().unwrap();
    println!("LOCKED");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    if mode == "write" {
        let path = dir.join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        index["manifests"].as_array_mut().unwrap().push(entry);
        let temp = dir.join("index.json.buildkit-tmp");
        std::fs::write(&temp, serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::rename(&temp, &path).unwrap();
        println!("WROTE");
    }
}

#[test]
fn a_stale_lock_left_by_a_killed_process_blocks_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        Store::open(dir.path())
            .await
            .unwrap()
            .close()
            .await
            .unwrap()
    });
    let mut child = spawn_child("locker", dir.path(), "die");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "LOCKED");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dir.path().join(LOCK_FILE).exists(),
        "the lock file stays behind"
    );
    rt.block_on(async {
        let store = Store::open(dir.path()).await.unwrap();
        let image = Image::new(1, b"x");
        image.push(&store).await;
        store.tag(&image.manifest.0, "after-kill").await.unwrap();
        store.close().await.unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        assert!(store.resolve("after-kill").await.is_ok());
    });
}

#[test]
fn tag_waits_for_a_foreign_lock_holder_and_keeps_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = std::sync::Arc::new(rt.block_on(Store::open(dir.path())).unwrap());
    let (ours, theirs) = (Image::new(1, b"ours"), Image::new(2, b"theirs"));
    rt.block_on(async {
        ours.push(&*store).await;
        theirs.push(&*store).await;
    });
    let mut child = spawn_child("locker", dir.path(), "write");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "LOCKED");

    let tagging = {
        let store = store.clone();
        let manifest = ours.manifest.0.clone();
        rt.spawn(async move { store.tag(&manifest, "ours").await })
    };
    // While the other process holds the lock, our tag cannot have written index.json: it
    // waits. (A correct store never finishes here, however long we look.)
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !tagging.is_finished(),
        "tag returned while another process held the lock"
    );
    let entry = serde_json::json!({
        "mediaType": theirs.manifest.0.media_type().to_string(),
        "digest": theirs.manifest.0.digest().to_string(),
        "size": theirs.manifest.0.size(),
        "annotations": {"org.opencontainers.image.ref.name": "theirs"}
    });
    writeln!(child.stdin.take().unwrap(), "{entry}").unwrap();
    expect_line(&mut lines, "WROTE");
    wait_ok(child, "locker");
    rt.block_on(tagging).unwrap().unwrap();
    assert_eq!(
        rt.block_on(store.resolve("theirs")).unwrap().digest(),
        theirs.manifest.0.digest(),
        "their entry was merged into memory"
    );
    let index = common::index_json(dir.path());
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert_eq!(names, ["ours", "theirs"]);
}

/// Opens the (read-only) layout, checks reads work and writes fail clearly; prints `OK`.
async fn read_only_child(dir: &Path, tag: &str) {
    // SAFETY: geteuid takes no argument, cannot fail and touches no memory of ours.
    if unsafe { libc::geteuid() } == 0 {
        // Root ignores permissions: become nobody for this check.
        // SAFETY: setgid/setuid take a plain id and touch no memory of ours; this child process
        // runs this check alone, so no other thread relies on its credentials.
        assert_eq!(unsafe { libc::setgid(65534) }, 0);
        // SAFETY: as for setgid above.
        assert_eq!(unsafe { libc::setuid(65534) }, 0);
    }
    let store = Store::open(dir).await.expect("a read-only layout opens");
    let desc = store.resolve(tag).await.expect("reads still work");
    store_core::content::fetch_all(&store, &desc)
        .await
        .expect("fetch works");
    let err = store.tag(&desc, "new-tag").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    let blob = common::desc(common::LAYER, b"new");
    let err = push_bytes(&store, &blob, &b"new"[..]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(store.resolve(tag).await.is_ok(), "still serving reads");
    println!("OK");
}

#[test]
fn a_read_only_layout_serves_reads_and_refuses_writes_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("layout");
    let image = Image::new(1, b"x");
    runtime().block_on(async {
        let store = Store::open(&dir).await.unwrap();
        image.push(&store).await;
        store.tag(&image.manifest.0, "v1").await.unwrap();
        store.close().await.unwrap();
    });
    let before = common::listing(&dir);
    let index_before = std::fs::read(dir.join("index.json")).unwrap();
    // Everything readable, nothing writable.
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    fn lock_down(path: &Path) {
        let meta = std::fs::metadata(path).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                lock_down(&entry.unwrap().path());
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555)).unwrap();
        } else {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
    }
    lock_down(&dir);
    let out = wait_ok(spawn_child("readonly", &dir, "v1"), "read-only child");
    assert!(out.contains("OK"), "{out}");
    assert_eq!(common::listing(&dir), before, "nothing was written");
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), index_before);
    // Let the temp dir be removed.
    fn unlock(path: &Path) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                unlock(&entry.unwrap().path());
            }
        }
    }
    unlock(&dir);
}

/// With a small file-size limit (a full disk, as far as writes are concerned), a save of a
/// large index.json fails, the old one stays, the changes stay pending, and a later save with
/// room succeeds. Prints `OK`.
async fn full_disk_child(dir: &Path) {
    let store = Store::open_with(
        dir,
        StoreOptions::default().autosave(autosave::AutoSave::Manual),
    )
    .await
    .unwrap();
    let image = Image::new(1, b"x");
    image.push(&store).await;
    store.save_index().await.unwrap();
    let before = std::fs::read(dir.join("index.json")).unwrap();
    for n in 0..2000 {
        store
            .tag(&image.manifest.0, &format!("a-rather-long-tag-name-{n:05}"))
            .await
            .unwrap();
    }
    let limit = libc::rlimit {
        rlim_cur: 64 << 10,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: SIG_IGN installs no handler of ours, and `limit` is a valid rlimit that
    // outlives the call; only this child process changes its limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let err = store.save_index().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");
    assert_eq!(
        std::fs::read(dir.join("index.json")).unwrap(),
        before,
        "old index intact"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "no temp file left behind");
    let room = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `room` is a valid rlimit that outlives the call.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &room), 0);
    }
    store.save_index().await.expect("a later save succeeds");
    store.close().await.unwrap();
    let store = Store::open(dir).await.unwrap();
    assert_eq!(store.tags(None).await.unwrap().len(), 2000);
    println!("OK");
}

#[test]
fn a_failed_index_write_keeps_the_old_file_and_the_pending_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = wait_ok(spawn_child("fsize", dir.path(), ""), "full-disk child");
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn manual_and_debounce_write_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let image = Image::new(1, b"x");
        let store = Store::open_with(
            dir.path(),
            StoreOptions::default().autosave(autosave::AutoSave::Manual),
        )
        .await
        .unwrap();
        let empty = std::fs::read(dir.path().join("index.json")).unwrap();
        image.push(&store).await;
        store.tag(&image.manifest.0, "manual").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("index.json")).unwrap(), empty);
        assert_eq!(store.index_writes(), 0);
        store.close().await.unwrap();
        assert!(
            String::from_utf8(std::fs::read(dir.path().join("index.json")).unwrap())
                .unwrap()
                .contains("manual")
        );

        let store = Store::open_with(
            dir.path(),
            StoreOptions::default()
                .autosave(autosave::AutoSave::Debounce(Duration::from_secs(3600))),
        )
        .await
        .unwrap();
        let before = std::fs::read(dir.path().join("index.json")).unwrap();
        store.tag(&image.manifest.0, "debounced").await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("index.json")).unwrap(),
            before
        );
        store.save_index().await.unwrap();
        assert!(
            String::from_utf8(std::fs::read(dir.path().join("index.json")).unwrap())
                .unwrap()
                .contains("debounced")
        );
        // Dropped without close: a best-effort flush follows.
        store.tag(&image.manifest.0, "dropped").await.unwrap();
        drop(store);
        let mut flushed = false;
        for _ in 0..1000 {
            let text = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
            if text.contains("dropped") {
                flushed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(flushed, "the drop flushed the pending tag");
    });
}

#[test]
fn concurrent_tags_share_index_writes() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let store = std::sync::Arc::new(Store::open(dir.path()).await.unwrap());
        let image = Image::new(1, b"x");
        image.push(&*store).await;
        let writes_before = store.index_writes();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let (store, barrier, manifest) =
                    (store.clone(), barrier.clone(), image.manifest.0.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.tag(&manifest, &format!("t{n}")).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let writes = store.index_writes() - writes_before;
        assert!(writes < 16, "64 concurrent tags cost {writes} index writes");
        // Each tag returned only once durable: every one of them is on disk now.
        let index = common::index_json(dir.path());
        assert_eq!(index["manifests"].as_array().unwrap().len(), 64);
    });
}
