//! Coexistence with buildkit's OCI index writer, played by real tools: `flock(1)` holds an
//! exclusive lock on `index.json.lock` (as buildkit does around every index.json update) while
//! `jq` reads index.json, appends an entry and renames the result into place. Our `tag` meanwhile
//! waits for the lock (seen in /proc/locks as a blocked waiter, not guessed from timing), then
//! merges the other writer's entry, so neither side loses its tag.

mod interop;

use interop::*;
use ocistore::descriptor::REF_NAME;
use ocistore::fs::{Store, LOCK_FILE};
use ocistore::{Resolver, TagLister, Tagger};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The buildkit-style writer, run under `flock -x index.json.lock`: read index.json as soon as
/// the lock is held, say LOCKED, wait for a line on stdin, write the entry given as `$1` into
/// what it read, rename it into place, say WROTE.
const WRITER: &str = r#"
set -e
before=$(cat index.json)
echo LOCKED
read -r go
printf '%s' "$before" | jq -c --argjson e "$1" '.manifests = ((.manifests // []) + [$e])' > index.json.buildkit-tmp
mv index.json.buildkit-tmp index.json
echo WROTE
"#;

/// Whether /proc/locks shows process `pid` blocked waiting for a flock on the inode `ino`.
fn blocked_on(pid: u32, ino: u64) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    let (pid, inode) = (pid.to_string(), format!(":{ino}"));
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->")
            && fields.contains(&"FLOCK")
            && fields.contains(&pid.as_str())
            && fields.iter().any(|f| f.ends_with(&inode))
    })
}

fn tags_in_file(root: &Path) -> Vec<String> {
    let out = ok(
        "jq",
        &[
            &"-r",
            &format!(".manifests[].annotations[\"{REF_NAME}\"] // empty"),
            &root.join("index.json"),
        ],
    );
    let mut tags: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_waits_for_a_flock_holder_and_merges_its_entry() {
    if !have(&["flock", "jq"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("layout");
    let store = std::sync::Arc::new(open_store(&root).await);
    let mut ours = Ours::build();
    ours.write(&store).await;
    // Their image's blobs are in place (buildkit writes blobs before it touches the index);
    // only its index entry is left to the other process.
    for blob in ours.app_v2.blobs() {
        push(&*store, blob).await;
    }
    let theirs = &ours.app_v2.manifest.desc;
    let entry = serde_json::json!({
        "mediaType": theirs.media_type().to_string(),
        "digest": theirs.digest().to_string(),
        "size": theirs.size(),
        "annotations": {REF_NAME: "theirs", "io.containerd.image.name": "docker.io/example/theirs:1"},
    });
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join(LOCK_FILE))
        .unwrap();
    let lock_ino = std::fs::metadata(root.join(LOCK_FILE)).unwrap().ino();

    /// The writer process, killed and reaped if anything below fails, so the test never hangs
    /// on it (std never signals a child it has already reaped).
    struct Writer(std::process::Child);
    impl Drop for Writer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut writer = Writer(
        Command::new("flock")
            .args(["-x", LOCK_FILE, "sh", "-c", WRITER, "sh"])
            .arg(entry.to_string())
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(writer.0.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "LOCKED");
    let index_while_locked = std::fs::read(root.join("index.json")).unwrap();

    let tagging = {
        let store = store.clone();
        let desc = ours.app.manifest.desc.clone();
        tokio::spawn(async move { store.tag(&desc, "ours").await })
    };
    // Wait (bounded) until the kernel lists this process as blocked on the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !blocked_on(std::process::id(), lock_ino) {
        assert!(
            !tagging.is_finished(),
            "tag returned while another process held index.json.lock: {:?}",
            tagging.await
        );
        assert!(
            Instant::now() < deadline,
            "our tag never waited for index.json.lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!tagging.is_finished());
    assert_eq!(
        std::fs::read(root.join("index.json")).unwrap(),
        index_while_locked,
        "index.json was written while the other process held the lock"
    );

    // Let the writer write and release the lock; our tag then goes through.
    let mut stdin = writer.0.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    drop(stdin);
    assert_eq!(lines.next().unwrap().unwrap(), "WROTE");
    assert!(writer.0.wait().unwrap().success());
    tagging.await.unwrap().unwrap();

    // Both entries are in index.json (read by jq, like the other writer would), and ours, the
    // earlier tags and theirs are all known to our store.
    let mut expected: Vec<String> = ours.tags.iter().map(|t| t.name.to_string()).collect();
    expected.extend(["ours".to_string(), "theirs".to_string()]);
    expected.sort();
    assert_eq!(tags_in_file(&root), expected);
    assert_eq!(store.tags(None).await.unwrap(), expected);
    let resolved = store.resolve("theirs").await.unwrap();
    assert_eq!(resolved.digest(), theirs.digest());
    assert_eq!(
        resolved.annotations().as_ref().unwrap()["io.containerd.image.name"],
        "docker.io/example/theirs:1"
    );

    // A fresh open agrees, and the layout is whole.
    let reopened = Store::open(&root).await.unwrap();
    assert_eq!(reopened.tags(None).await.unwrap(), expected);
    let report = reopened.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    reopened.close().await.unwrap();
}
