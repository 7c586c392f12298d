//! `ReadOnlyStore` over layout directories and tars of them: every fixture written by another
//! tool opens both ways (tar entries with and without `./`), tags resolve, blobs verify, the
//! predecessor graph is complete; bad input of every kind is a typed error and nothing is ever
//! written.

use oci_spec::image::{Descriptor, Digest, MediaType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use store_core::content::fetch_all;
use store_core::descriptor::{is_manifest_type, OCTET_STREAM, REF_NAME};
use store_core::digest::{digest_string, Algorithm};
use store_core::{
    ErrorKind, Fetcher, PredecessorFinder, ReadOnlyGraphTarget, ReadOnlyStorage, Resolver,
    TagLister,
};
use store_fs::ReadOnlyStore;
use tar::{EntryType, Header};
use tokio::io::AsyncReadExt;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The repository's fixture layouts (`tests/fixtures/`, written by its `regenerate.sh`).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

const ALL_FIXTURES: [&str; 9] = [
    "umoci",
    "handmade",
    "handmade-exotic",
    "edge/dup-tag",
    "edge/empty",
    "edge/null-manifests",
    "edge/umoci-init",
    "edge/umoci-rm-all",
    "edge/skopeo-index-only",
];

/// Tags and the digests `tests/fixtures/README.md` lists for them.
const EXPECTED_TAGS: &[(&str, &str, &str)] = &[
    ("umoci", "v1", "sha256:e907c39a08ff3c506b7363ea6375b5beb1d231e666e21bd63c6162885cee1d3e"),
    ("umoci", "v1-alias", "sha256:e907c39a08ff3c506b7363ea6375b5beb1d231e666e21bd63c6162885cee1d3e"),
    ("umoci", "v2", "sha256:3050746ba3dad1476210bac98b3bcf1048211fb00c9d01122b6f780a3e310626"),
    ("handmade", "multi", "sha256:2af80c09ae50bfa867b8b6bd81adfdfbdf8b896cc48410bb65cf06dde13160c9"),
    ("handmade", "nested", "sha256:8b02e837b774f4605e7f14c89e4c456c5830805656640f2b36b7327746d9256d"),
    ("handmade", "amd64", "sha256:cf485475385ecd768f5f7abe0c7321a05e96c14a63530a8eb91203b7718ebb0d"),
    (
        "handmade",
        "sha256-cf485475385ecd768f5f7abe0c7321a05e96c14a63530a8eb91203b7718ebb0d",
        "sha256:c944f827c9eba5d07869cf4af0a5cd7e22fcfedcd8c8aec06c9f14a84b063593",
    ),
    ("edge/dup-tag", "multi", "sha256:cf485475385ecd768f5f7abe0c7321a05e96c14a63530a8eb91203b7718ebb0d"),
    ("edge/dup-tag", "nested", "sha256:8b02e837b774f4605e7f14c89e4c456c5830805656640f2b36b7327746d9256d"),
    (
        "handmade-exotic",
        "sha512",
        "sha512:575e8353d642284041cbd0a3fd67867b369b9bb7945cb78826cceb2dde9c7ed336fc7a834c61ed026704f126bd932300df04457d4cc56a679e674edadf9a54f7",
    ),
    ("handmade-exotic", "docker-v2s2", "sha256:efb6a360b1436f26c881137aa57447c74ccead507227154a9fa04eaa77f4b329"),
    ("handmade-exotic", "docker-list", "sha256:a8cbc309fb1026bf5b3fe2ab4a9aeb75fee2880f7c1a99c610be132d32e685b6"),
    (
        "handmade-exotic",
        "example.com/kit/exotic:1.0",
        "sha256:77d07bb9b19d87c7dcc0b52062bbe8696dac60dc745d80c5257e6f4bdf9a38bb",
    ),
    ("handmade-exotic", "v1.0.0-rc.1_x", "sha256:77d07bb9b19d87c7dcc0b52062bbe8696dac60dc745d80c5257e6f4bdf9a38bb"),
    (
        "edge/skopeo-index-only",
        "multi",
        "sha256:2af80c09ae50bfa867b8b6bd81adfdfbdf8b896cc48410bb65cf06dde13160c9",
    ),
];

// ---------------------------------------------------------------------------------------------
// Helpers: listings, tars, small layouts.

/// Every path under `dir` with its type, size and modification time.
fn listing(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.insert(
                path.clone(),
                format!(
                    "{:?} {} {:?}",
                    meta.file_type(),
                    meta.len(),
                    meta.modified().ok()
                ),
            );
            if meta.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// Every regular file under `dir`, relative to it, sorted.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    listing(dir)
        .keys()
        .filter(|p| fs::symlink_metadata(p).unwrap().is_file())
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect()
}

/// Appends one entry whose name is written byte for byte (so `./`, `..` and absolute names
/// survive), with a GNU long-name entry first when the name does not fit in the header.
fn append_raw(
    builder: &mut tar::Builder<fs::File>,
    name: &[u8],
    kind: EntryType,
    link: Option<&[u8]>,
    data: &[u8],
) {
    if name.len() > 100 {
        let mut long = Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(EntryType::GNULongName);
        long.set_mode(0o644);
        long.set_uid(0);
        long.set_gid(0);
        long.set_mtime(0);
        long.set_size(name.len() as u64 + 1);
        long.set_cksum();
        let mut body = name.to_vec();
        body.push(0);
        builder.append(&long, &body[..]).unwrap();
    }
    let mut header = Header::new_gnu();
    let n = name.len().min(100);
    header.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    header.set_entry_type(kind);
    header.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    if let Some(link) = link {
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    }
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

/// A PAX record `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len.to_string().len() + body.len() != len {
        len = len.to_string().len() + body.len();
    }
    format!("{len}{body}")
}

/// Appends one ustar entry named by a PAX `path` record (the header's own name field holds a
/// truncated placeholder, so only a reader that applies the record finds the entry).
fn append_pax(builder: &mut tar::Builder<fs::File>, name: &str, kind: EntryType, data: &[u8]) {
    let record = pax_record("path", name);
    let mut pax = Header::new_ustar();
    pax.as_old_mut().name[..12].copy_from_slice(b"PaxHeaders/x");
    pax.set_entry_type(EntryType::XHeader);
    pax.set_mode(0o644);
    pax.set_uid(0);
    pax.set_gid(0);
    pax.set_mtime(0);
    pax.set_size(record.len() as u64);
    pax.set_cksum();
    builder.append(&pax, record.as_bytes()).unwrap();
    let mut header = Header::new_ustar();
    header.as_old_mut().name[..11].copy_from_slice(b"placeholder");
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

/// Appends every directory and file under `src` with names `<prefix><relative path>`, named in
/// the header (GNU long names when needed) or, with `pax`, by PAX records.
fn append_tree(builder: &mut tar::Builder<fs::File>, src: &Path, prefix: &str, pax: bool) {
    let mut append = |name: String, kind: EntryType, data: &[u8]| {
        if pax {
            append_pax(builder, &name, kind, data);
        } else {
            append_raw(builder, name.as_bytes(), kind, None, data);
        }
    };
    if !prefix.is_empty() {
        append(prefix.to_string(), EntryType::Directory, b"");
    }
    for (path, _) in listing(src) {
        let relative = path.strip_prefix(src).unwrap().to_str().unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            append(format!("{prefix}{relative}/"), EntryType::Directory, b"");
        } else if meta.is_file() {
            let data = fs::read(&path).unwrap();
            append(format!("{prefix}{relative}"), EntryType::Regular, &data);
        }
    }
}

/// How a tar of a layout names its entries.
#[derive(Debug, Clone, Copy)]
enum TarStyle {
    /// `tar::Builder::append_dir_all`: `blobs/sha256/...`, long names as GNU entries.
    Builder,
    /// Every name starts with `./`, as `tar -C dir -cf x.tar .` writes them.
    DotSlash,
    /// Every name is a PAX `path` record, starting with `./`.
    Pax,
}

/// Writes a tar of the layout `src` at `out`.
fn write_tar(src: &Path, out: &Path, style: TarStyle) {
    let file = fs::File::create(out).unwrap();
    let mut builder = tar::Builder::new(file);
    builder.sparse(false);
    builder.follow_symlinks(false);
    match style {
        TarStyle::Builder => builder.append_dir_all("", src).unwrap(),
        TarStyle::DotSlash => append_tree(&mut builder, src, "./", false),
        TarStyle::Pax => append_tree(&mut builder, src, "./", true),
    }
    builder.into_inner().unwrap().sync_all().unwrap();
    // The archive names its entries the way the style says.
    let mut archive = tar::Archive::new(fs::File::open(out).unwrap());
    let mut long_names = 0;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path_bytes().into_owned();
        long_names += usize::from(name.len() > 100);
        match style {
            TarStyle::Builder => assert!(!name.starts_with(b"./"), "{name:?}"),
            TarStyle::DotSlash | TarStyle::Pax => {
                assert!(name.starts_with(b"./"), "{name:?}")
            }
        }
    }
    if src.join("blobs/sha512").exists() {
        assert!(long_names > 0, "sha512 blob names need long-name entries");
    }
}

/// A raw archive entry: name, type, link target.
type RawEntry<'a> = (&'a [u8], EntryType, Option<&'a [u8]>);

/// Writes a tar of `src` followed by `extra` raw entries.
fn write_tar_with(src: &Path, out: &Path, extra: &[RawEntry<'_>]) {
    let file = fs::File::create(out).unwrap();
    let mut builder = tar::Builder::new(file);
    append_tree(&mut builder, src, "", false);
    for (name, kind, link) in extra {
        append_raw(&mut builder, name, *kind, *link, b"x");
    }
    builder.into_inner().unwrap().sync_all().unwrap();
}

/// Where a test opens a layout from.
enum Opened {
    Dir,
    Tar(TarStyle),
}

/// Opens the layout `dir` in place, or as a tar of it written into `scratch`.
async fn open_as(dir: &Path, how: &Opened, scratch: &Path) -> ReadOnlyStore {
    match how {
        Opened::Dir => ReadOnlyStore::open(dir)
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", dir.display())),
        Opened::Tar(style) => {
            let tar = scratch.join(format!("layout-{style:?}.tar"));
            write_tar(dir, &tar, *style);
            ReadOnlyStore::open(&tar)
                .await
                .unwrap_or_else(|e| panic!("opening a {style:?} tar of {}: {e}", dir.display()))
        }
    }
}

/// The descriptor of the blob file `relative` (`blobs/<alg>/<hex>`) of a layout.
fn blob_desc(relative: &Path, size: u64) -> Descriptor {
    let mut parts = relative.iter().map(|p| p.to_str().unwrap());
    assert_eq!(parts.next(), Some("blobs"));
    let alg = parts.next().unwrap();
    let hex = parts.next().unwrap();
    let digest = Digest::from_str(&format!("{alg}:{hex}")).unwrap();
    Descriptor::new(MediaType::from(OCTET_STREAM), size, digest)
}

/// A small layout written by hand: `blobs` are stored by their sha256, `index` is the
/// `manifests` array of `index.json`.
struct HandLayout {
    dir: tempfile::TempDir,
}

impl HandLayout {
    fn new(blobs: &[&[u8]], index: Value) -> HandLayout {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index});
        fs::write(
            dir.path().join("index.json"),
            serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
        let layout = HandLayout { dir };
        for blob in blobs {
            layout.put(blob);
        }
        layout
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stores `data` under its sha256 digest; returns the digest.
    fn put(&self, data: &[u8]) -> String {
        let digest = digest_string(Algorithm::Sha256, data);
        let dir = self.path().join("blobs/sha256");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(&digest[7..]), data).unwrap();
        digest
    }
}

fn desc(media_type: &str, digest: &str, size: usize) -> Descriptor {
    Descriptor::new(
        MediaType::from(media_type),
        size as u64,
        Digest::from_str(digest).unwrap(),
    )
}

/// A 5 MiB + 3 byte layer (bigger than one read chunk), a config, a manifest tagged `big`.
fn big_image() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let layer: Vec<u8> = (0..(5u32 << 20) + 3)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_string(Algorithm::Sha256, &config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_string(Algorithm::Sha256, &layer), "size": layer.len()}],
    }))
    .unwrap();
    (layer, config, manifest)
}

fn big_layout() -> (HandLayout, Descriptor, Descriptor) {
    let (layer, config, manifest) = big_image();
    let manifest_digest = digest_string(Algorithm::Sha256, &manifest);
    let index = json!([{
        "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest.len(),
        "annotations": {REF_NAME: "big"},
    }]);
    let layout = HandLayout::new(&[&layer, &config, &manifest], index);
    let layer_desc = desc(
        "application/vnd.oci.image.layer.v1.tar",
        &digest_string(Algorithm::Sha256, &layer),
        layer.len(),
    );
    let manifest_desc = desc(OCI_MANIFEST, &manifest_digest, manifest.len());
    (layout, layer_desc, manifest_desc)
}

async fn read_to_end(store: &ReadOnlyStore, desc: &Descriptor) -> store_core::Result<Vec<u8>> {
    let mut reader = store.fetch(desc).await?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .await
        .map_err(|e| store_core::error_from_io(e, "reading"))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// What the fixtures' files say, worked out independently of the store.

/// The successor digests (and the media types they are listed with) of a manifest body.
fn listed_children(media_type: &str, body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut one = |v: Option<&Value>| {
        if let Some(d) = v {
            if let (Some(digest), Some(mt)) = (d["digest"].as_str(), d["mediaType"].as_str()) {
                out.push((digest.to_string(), mt.to_string()));
            }
        }
    };
    let list = |key: &str| -> Vec<Value> { body[key].as_array().cloned().unwrap_or_default() };
    match media_type {
        OCI_MANIFEST => {
            one(body.get("subject"));
            one(body.get("config"));
            for l in list("layers") {
                one(Some(&l));
            }
        }
        "application/vnd.docker.distribution.manifest.v2+json" => {
            one(body.get("config"));
            for l in list("layers") {
                one(Some(&l));
            }
        }
        OCI_INDEX => {
            one(body.get("subject"));
            for m in list("manifests") {
                one(Some(&m));
            }
        }
        "application/vnd.docker.distribution.manifest.list.v2+json" => {
            for m in list("manifests") {
                one(Some(&m));
            }
        }
        "application/vnd.oci.artifact.manifest.v1+json" => {
            one(body.get("subject"));
            for b in list("blobs") {
                one(Some(&b));
            }
        }
        _ => {}
    }
    out
}

/// What a fixture's files say: index.json entries, tags (last entry wins), the media types each
/// reachable digest is listed with, and the expected predecessors of every digest.
struct Expected {
    entries: Vec<Value>,
    tags: BTreeMap<String, Value>,
    listed_as: HashMap<String, BTreeSet<String>>,
    predecessors: HashMap<String, BTreeSet<String>>,
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    dir.join("blobs").join(alg).join(hex)
}

fn expected_of(dir: &Path) -> Expected {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut tags = BTreeMap::new();
    for entry in &entries {
        if let Some(name) = entry["annotations"][REF_NAME].as_str() {
            if !name.is_empty() {
                tags.insert(name.to_string(), entry.clone());
            }
        }
    }
    let mut listed_as: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut predecessors: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut queue: VecDeque<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap().to_string(),
                e["mediaType"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut seen = BTreeSet::new();
    while let Some((digest, media_type)) = queue.pop_front() {
        listed_as
            .entry(digest.clone())
            .or_default()
            .insert(media_type.clone());
        if !seen.insert(digest.clone()) || !is_manifest_type(&media_type) {
            continue;
        }
        let Ok(bytes) = fs::read(blob_path(dir, &digest)) else {
            continue; // a missing manifest is tolerated: no node, no edges
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        for (child, child_type) in listed_children(&media_type, &body) {
            predecessors
                .entry(child.clone())
                .or_default()
                .insert(digest.clone());
            queue.push_back((child, child_type));
        }
    }
    Expected {
        entries,
        tags,
        listed_as,
        predecessors,
    }
}

/// Checks one opened fixture against what its files say.
async fn check_fixture(name: &str, dir: &Path, store: &ReadOnlyStore, how: &str) {
    let expected = expected_of(dir);

    // Tags: exactly the ref.names of index.json, each resolving to its (last) entry.
    let tags = store.tags(None).await.unwrap();
    assert_eq!(
        tags,
        expected.tags.keys().cloned().collect::<Vec<_>>(),
        "{name} ({how}): tags"
    );
    for (tag, entry) in &expected.tags {
        let got = store.resolve(tag).await.unwrap();
        assert_eq!(
            got.digest().as_ref(),
            entry["digest"].as_str().unwrap(),
            "{name} ({how}): {tag}"
        );
        assert_eq!(
            got.media_type().as_ref(),
            entry["mediaType"].as_str().unwrap(),
            "{name}: {tag}"
        );
        assert_eq!(got.size(), entry["size"].as_u64().unwrap(), "{name}: {tag}");
        assert_eq!(
            got.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(String::as_str),
            Some(tag.as_str()),
            "{name}: a tag resolves to its index.json entry as written"
        );
    }
    for (fixture, tag, digest) in EXPECTED_TAGS {
        if *fixture == name {
            let got = store.resolve(tag).await.unwrap();
            assert_eq!(got.digest().as_ref(), *digest, "{name} ({how}): {tag}");
        }
    }

    // Every blob file fetches, verifies and equals the file; exists; resolves by digest.
    let last_entry_type: HashMap<String, String> = expected
        .entries
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap().into(),
                e["mediaType"].as_str().unwrap().into(),
            )
        })
        .collect();
    for relative in files_of(dir) {
        if !relative.starts_with("blobs") {
            continue;
        }
        let data = fs::read(dir.join(&relative)).unwrap();
        let plain = blob_desc(&relative, data.len() as u64);
        let digest = plain.digest().to_string();
        let got = read_to_end(store, &plain)
            .await
            .unwrap_or_else(|e| panic!("{name} ({how}): fetch {digest}: {e}"));
        assert!(
            got == data,
            "{name} ({how}): fetch {digest} returned other bytes"
        );
        assert_eq!(fetch_all(store, &plain).await.unwrap().len(), data.len());
        assert!(
            store.exists(&plain).await.unwrap(),
            "{name}: exists {digest}"
        );

        let resolved = store.resolve(&digest).await.unwrap();
        assert_eq!(resolved.digest().as_ref(), digest);
        assert_eq!(
            resolved.size(),
            data.len() as u64,
            "{name}: resolve {digest}"
        );
        assert!(
            resolved.annotations().is_none(),
            "{name}: resolve by digest is plain"
        );
        let media_type = resolved.media_type().to_string();
        if let Some(entry_type) = last_entry_type.get(&digest) {
            assert_eq!(&media_type, entry_type, "{name}: resolve {digest}");
        } else if let Some(types) = expected
            .listed_as
            .get(&digest)
            .filter(|types| types.iter().any(|t| is_manifest_type(t)))
        {
            // A manifest reachable from index.json: its plain descriptor.
            assert!(
                types.contains(&media_type),
                "{name}: resolve {digest} gave {media_type}"
            );
        } else {
            assert_eq!(
                media_type, OCTET_STREAM,
                "{name}: resolve of a blob that is not a known manifest"
            );
        }

        // Predecessors: every indexed manifest that lists it.
        let found: BTreeSet<String> = store
            .predecessors(&plain)
            .await
            .unwrap()
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        let want = expected
            .predecessors
            .get(&digest)
            .cloned()
            .unwrap_or_default();
        assert_eq!(found, want, "{name} ({how}): predecessors of {digest}");
    }
    if ["umoci", "handmade", "handmade-exotic", "edge/dup-tag"].contains(&name) {
        assert!(
            expected.predecessors.len() > 3,
            "{name}: the graph check has edges to check"
        );
    }
    // Children that are not in the layout still know their parents.
    for (digest, want) in &expected.predecessors {
        let node = desc(OCTET_STREAM, digest, 0);
        let found: BTreeSet<String> = store
            .predecessors(&node)
            .await
            .unwrap()
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        assert_eq!(&found, want, "{name} ({how}): predecessors of {digest}");
    }

    assert_eq!(
        store.resolve("").await.unwrap_err().kind(),
        ErrorKind::MissingReference
    );
    assert_eq!(
        store.resolve("no-such-tag").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn assert_read_only_graph_target<T: ReadOnlyGraphTarget + TagLister>(_: &T) {}

#[tokio::test]
async fn every_fixture_opens_as_a_directory_and_as_tars() {
    let scratch = tempfile::tempdir().unwrap();
    for name in ALL_FIXTURES {
        let dir = fixtures().join(name);
        let before = listing(&dir);
        for how in [
            Opened::Dir,
            Opened::Tar(TarStyle::Builder),
            Opened::Tar(TarStyle::DotSlash),
            Opened::Tar(TarStyle::Pax),
        ] {
            let store = open_as(&dir, &how, scratch.path()).await;
            assert_read_only_graph_target(&store);
            let label = match how {
                Opened::Dir => "directory".to_string(),
                Opened::Tar(style) => format!("{style:?} tar"),
            };
            assert_eq!(store.is_archive(), !matches!(how, Opened::Dir));
            check_fixture(name, &dir, &store, &label).await;
        }
        assert_eq!(
            listing(&dir),
            before,
            "{name}: opening wrote into the fixture"
        );
    }
}

#[tokio::test]
async fn shared_layers_list_every_manifest_that_uses_them() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixtures().join("umoci");
    let (v1, v2) = (EXPECTED_TAGS[0].2, EXPECTED_TAGS[2].2);
    let layers = |digest: &str| -> BTreeSet<String> {
        let body: Value =
            serde_json::from_slice(&fs::read(blob_path(&dir, digest)).unwrap()).unwrap();
        body["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let shared: Vec<String> = layers(v1).intersection(&layers(v2)).cloned().collect();
    assert!(
        !shared.is_empty(),
        "the umoci fixture shares a layer between v1 and v2"
    );
    for how in [Opened::Dir, Opened::Tar(TarStyle::DotSlash)] {
        let store = open_as(&dir, &how, scratch.path()).await;
        for layer in &shared {
            let found: BTreeSet<String> = store
                .predecessors(&desc(
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    layer,
                    0,
                ))
                .await
                .unwrap()
                .iter()
                .map(|d| d.digest().to_string())
                .collect();
            assert_eq!(
                found,
                BTreeSet::from([v1.to_string(), v2.to_string()]),
                "{layer}"
            );
        }
    }
}

#[tokio::test]
async fn empty_layouts_open_with_no_tags() {
    let scratch = tempfile::tempdir().unwrap();
    for name in ["edge/empty", "edge/null-manifests", "edge/umoci-init"] {
        let dir = fixtures().join(name);
        for how in [
            Opened::Dir,
            Opened::Tar(TarStyle::Builder),
            Opened::Tar(TarStyle::DotSlash),
        ] {
            let store = open_as(&dir, &how, scratch.path()).await;
            assert!(store.tags(None).await.unwrap().is_empty(), "{name}");
            assert_eq!(
                store.resolve("latest").await.unwrap_err().kind(),
                ErrorKind::NotFound
            );
        }
    }
}

#[tokio::test]
async fn an_index_without_its_children_opens_and_fetches() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixtures().join("edge/skopeo-index-only");
    for how in [
        Opened::Dir,
        Opened::Tar(TarStyle::Builder),
        Opened::Tar(TarStyle::DotSlash),
    ] {
        let store = open_as(&dir, &how, scratch.path()).await;
        let multi = store.resolve("multi").await.unwrap();
        assert_eq!(multi.digest().as_ref(), EXPECTED_TAGS[14].2);
        let body = fetch_all(&store, &multi).await.unwrap();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        let children = parsed["manifests"].as_array().unwrap();
        assert!(!children.is_empty());
        for child in children {
            let child: Descriptor = serde_json::from_value(child.clone()).unwrap();
            assert!(!store.exists(&child).await.unwrap());
            assert_eq!(
                store.fetch(&child).await.err().map(|e| e.kind()),
                Some(ErrorKind::NotFound)
            );
            let parents = store.predecessors(&child).await.unwrap();
            assert_eq!(parents.len(), 1);
            assert_eq!(parents[0].digest(), multi.digest());
        }
    }
}

#[tokio::test]
async fn tags_paginate_like_the_store() {
    let store = ReadOnlyStore::open(fixtures().join("handmade"))
        .await
        .unwrap();
    let all = store.tags(None).await.unwrap();
    assert_eq!(
        all,
        [
            "amd64",
            "multi",
            "nested",
            "sha256-cf485475385ecd768f5f7abe0c7321a05e96c14a63530a8eb91203b7718ebb0d"
        ]
    );
    assert_eq!(store.tags(Some("amd64")).await.unwrap(), all[1..].to_vec());
    assert_eq!(store.tags(Some("n")).await.unwrap(), all[2..].to_vec());
    assert!(store.tags(Some("z")).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Streaming and verification.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_blobs_stream_and_verify_from_directories_and_tars() {
    let (layout, layer, manifest) = big_layout();
    let scratch = tempfile::tempdir().unwrap();
    let (expected_layer, _, _) = big_image();
    for how in [
        Opened::Dir,
        Opened::Tar(TarStyle::Builder),
        Opened::Tar(TarStyle::DotSlash),
    ] {
        let store = Arc::new(open_as(layout.path(), &how, scratch.path()).await);
        assert_eq!(
            store.resolve("big").await.unwrap().digest(),
            manifest.digest()
        );
        let preds = store.predecessors(&layer).await.unwrap();
        assert_eq!(preds.len(), 1);
        assert_eq!(preds[0].digest(), manifest.digest());
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                let layer = layer.clone();
                tokio::spawn(async move { read_to_end(&store, &layer).await })
            })
            .collect();
        for reader in readers {
            let got = reader.await.unwrap().unwrap();
            assert!(got == expected_layer, "the big layer came back different");
        }
    }
}

/// A layout whose blob files hold other bytes than their names say (same length).
fn corrupted_layout(big: bool) -> (HandLayout, Descriptor) {
    let layout = HandLayout::new(&[], json!([]));
    let good: Vec<u8> = if big {
        big_image().0
    } else {
        b"the real content".to_vec()
    };
    let digest = layout.put(&good);
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    fs::write(blob_path(layout.path(), &digest), &bad).unwrap();
    let d = desc(
        "application/vnd.oci.image.layer.v1.tar",
        &digest,
        good.len(),
    );
    (layout, d)
}

#[tokio::test]
async fn corrupted_blobs_end_in_mismatch() {
    let scratch = tempfile::tempdir().unwrap();
    for big in [false, true] {
        let (layout, blob) = corrupted_layout(big);
        for how in [Opened::Dir, Opened::Tar(TarStyle::DotSlash)] {
            let store = open_as(layout.path(), &how, scratch.path()).await;
            let err = read_to_end(&store, &blob).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mismatch, "big={big}: {err}");
            assert_eq!(
                fetch_all(&store, &blob).await.unwrap_err().kind(),
                ErrorKind::Mismatch
            );
        }
    }
}

#[tokio::test]
async fn a_size_that_differs_from_the_file_is_a_mismatch() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = HandLayout::new(&[b"twelve bytes"], json!([]));
    let digest = digest_string(Algorithm::Sha256, b"twelve bytes");
    for how in [Opened::Dir, Opened::Tar(TarStyle::Builder)] {
        let store = open_as(layout.path(), &how, scratch.path()).await;
        for size in [11, 13, 1 << 30] {
            let wrong = desc(OCTET_STREAM, &digest, size);
            let err = store.fetch(&wrong).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::Mismatch, "size {size}: {err}");
        }
        let right = desc(OCTET_STREAM, &digest, 12);
        assert_eq!(read_to_end(&store, &right).await.unwrap(), b"twelve bytes");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: archives.

fn assert_refused(err: store_core::Error, kind: ErrorKind, mention: &str) {
    assert_eq!(err.kind(), kind, "{err}");
    assert!(
        err.to_string().contains(mention),
        "{err:?} does not mention {mention}"
    );
}

async fn open_err(path: &Path) -> store_core::Error {
    match ReadOnlyStore::open(path).await {
        Ok(store) => panic!("{} opened: {store:?}", path.display()),
        Err(e) => e,
    }
}

#[tokio::test]
async fn archives_with_escaping_names_or_links_are_refused() {
    let layout = fixtures().join("handmade");
    let scratch = tempfile::tempdir().unwrap();
    let blob = b"blobs/sha256/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let cases: Vec<(&str, Vec<RawEntry<'_>>, &str)> = vec![
        ("parent", vec![(b"../x", EntryType::Regular, None)], "../x"),
        (
            "parent-inside",
            vec![(b"./blobs/../../x", EntryType::Regular, None)],
            "blobs/../../x",
        ),
        (
            "absolute",
            vec![(b"/tmp/ocistore-evil", EntryType::Regular, None)],
            "/tmp/ocistore-evil",
        ),
        (
            "parent-dir",
            vec![(b"../up/", EntryType::Directory, None)],
            "../up/",
        ),
        (
            "symlink",
            vec![(
                b"blobs/sha256/evil",
                EntryType::Symlink,
                Some(b"/etc/passwd"),
            )],
            "symbolic link",
        ),
        (
            "symlink-blob",
            vec![(blob, EntryType::Symlink, Some(b"../../oci-layout"))],
            "symbolic link",
        ),
        (
            "hardlink",
            vec![(b"blobs/sha256/evil", EntryType::Link, Some(b"oci-layout"))],
            "hard link",
        ),
        (
            "hardlink-out",
            vec![(b"x", EntryType::Link, Some(b"/etc/passwd"))],
            "hard link",
        ),
    ];
    for (label, extra, mention) in cases {
        let tar = scratch.path().join(format!("{label}.tar"));
        write_tar_with(&layout, &tar, &extra);
        let before = listing(scratch.path());
        let err = open_err(&tar).await;
        assert_refused(err, ErrorKind::InvalidLayout, mention);
        assert_eq!(
            listing(scratch.path()),
            before,
            "{label}: something was written"
        );
        assert!(!Path::new("/tmp/ocistore-evil").exists());
    }
    // The same archive without the bad entry opens.
    let tar = scratch.path().join("clean.tar");
    write_tar_with(&layout, &tar, &[]);
    ReadOnlyStore::open(&tar).await.unwrap();
}

#[tokio::test]
async fn files_that_are_not_tars_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let mut state: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", garbage.clone()),
        ("short", garbage[..100].to_vec()),
        ("text", b"{\"imageLayoutVersion\":\"1.0.0\"}".to_vec()),
        ("empty", Vec::new()),
        ("zeros", vec![0; 4096]),
        (
            "gzip",
            [&[0x1f, 0x8b, 0x08, 0x00][..], &garbage[..600]].concat(),
        ),
        (
            "zstd",
            [&[0x28, 0xb5, 0x2f, 0xfd][..], &garbage[..600]].concat(),
        ),
    ];
    for (label, bytes) in cases {
        let path = scratch.path().join(format!("{label}.tar"));
        fs::write(&path, &bytes).unwrap();
        let before = listing(scratch.path());
        let err = open_err(&path).await;
        if ["gzip", "zstd"].contains(&label) {
            assert!(
                err.to_string().contains(&format!("{label}-compressed")),
                "{err}"
            );
        }
        assert_refused(err, ErrorKind::InvalidLayout, path.to_str().unwrap());
        assert_eq!(
            listing(scratch.path()),
            before,
            "{label}: something was written"
        );
    }
}

#[tokio::test]
async fn truncated_archives_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let (layout, _, _) = big_layout();
    let tar = scratch.path().join("big.tar");
    write_tar(layout.path(), &tar, TarStyle::Builder);
    let bytes = fs::read(&tar).unwrap();
    for cut in [bytes.len() / 2, 1 << 20, 700] {
        let path = scratch.path().join(format!("cut-{cut}.tar"));
        fs::write(&path, &bytes[..cut]).unwrap();
        let err = open_err(&path).await;
        assert_eq!(err.kind(), ErrorKind::InvalidLayout, "cut at {cut}: {err}");
    }
}

#[tokio::test]
async fn an_archive_without_a_layout_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let layout = HandLayout::new(&[b"x"], json!([]));
    fs::remove_file(layout.path().join("oci-layout")).unwrap();
    let tar = scratch.path().join("no-layout.tar");
    write_tar(layout.path(), &tar, TarStyle::DotSlash);
    assert_refused(open_err(&tar).await, ErrorKind::InvalidLayout, "oci-layout");

    fs::write(
        layout.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    write_tar(layout.path(), &tar, TarStyle::DotSlash);
    assert_refused(open_err(&tar).await, ErrorKind::UnsupportedVersion, "2.0.0");

    fs::write(
        layout.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(layout.path().join("index.json"), b"").unwrap();
    write_tar(layout.path(), &tar, TarStyle::Builder);
    assert_refused(open_err(&tar).await, ErrorKind::InvalidLayout, "index.json");

    fs::remove_file(layout.path().join("index.json")).unwrap();
    write_tar(layout.path(), &tar, TarStyle::Builder);
    assert_refused(open_err(&tar).await, ErrorKind::InvalidLayout, "index.json");
}

// ---------------------------------------------------------------------------------------------
// Bad input: directories.

/// Opens `dir`, expecting an error of `kind` mentioning `mention`, and checks nothing was
/// written.
async fn assert_dir_refused(dir: &Path, kind: ErrorKind, mention: &str) {
    let before = listing(dir);
    let err = open_err(dir).await;
    assert_refused(err, kind, mention);
    assert_eq!(
        listing(dir),
        before,
        "opening {} wrote into it",
        dir.display()
    );
}

#[tokio::test]
async fn bad_layout_directories_are_refused_and_left_alone() {
    let layout = HandLayout::new(&[b"x"], json!([]));
    let root = layout.path();
    let layout_file = root.join("oci-layout");
    let index_file = root.join("index.json");

    fs::remove_file(&layout_file).unwrap();
    assert_dir_refused(
        root,
        ErrorKind::InvalidLayout,
        layout_file.to_str().unwrap(),
    )
    .await;
    assert!(!layout_file.exists(), "oci-layout must not be created");

    fs::write(&layout_file, br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    assert_dir_refused(root, ErrorKind::UnsupportedVersion, "2.0.0").await;

    fs::write(&layout_file, b"not json").unwrap();
    assert_dir_refused(
        root,
        ErrorKind::InvalidLayout,
        layout_file.to_str().unwrap(),
    )
    .await;

    fs::write(&layout_file, br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(&index_file, b"").unwrap();
    assert_dir_refused(root, ErrorKind::InvalidLayout, index_file.to_str().unwrap()).await;

    fs::write(&index_file, b"{not json").unwrap();
    assert_dir_refused(root, ErrorKind::InvalidLayout, index_file.to_str().unwrap()).await;

    fs::remove_file(&index_file).unwrap();
    assert_dir_refused(root, ErrorKind::InvalidLayout, index_file.to_str().unwrap()).await;
    assert!(!index_file.exists(), "index.json must not be created");

    // A layout file that is a symbolic link is not followed.
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("index.json");
    fs::write(&outside, br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    std::os::unix::fs::symlink(&outside, &index_file).unwrap();
    assert_dir_refused(root, ErrorKind::InvalidLayout, "symbolic link").await;
    fs::remove_file(&index_file).unwrap();

    // A symlinked blobs/ directory is refused.
    fs::write(&index_file, br#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    ReadOnlyStore::open(root).await.unwrap();
    fs::rename(root.join("blobs"), elsewhere.path().join("blobs")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("blobs"), root.join("blobs")).unwrap();
    assert_dir_refused(root, ErrorKind::InvalidLayout, "symbolic link").await;

    // A path that does not exist.
    let missing = root.join("no-such-layout");
    assert_eq!(open_err(&missing).await.kind(), ErrorKind::NotFound);
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_symlinked_blob_is_never_followed_out_of_the_layout() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = b"secret bytes outside the layout".to_vec();
    let secret_path = secret_dir.path().join("secret");
    fs::write(&secret_path, &secret).unwrap();
    let digest = digest_string(Algorithm::Sha256, &secret);

    let layout = HandLayout::new(&[b"x"], json!([]));
    let link = blob_path(layout.path(), &digest);
    std::os::unix::fs::symlink(&secret_path, &link).unwrap();
    let before = listing(layout.path());

    let store = ReadOnlyStore::open(layout.path()).await.unwrap();
    let target = desc(
        "application/vnd.oci.image.layer.v1.tar",
        &digest,
        secret.len(),
    );
    let err = store
        .fetch(&target)
        .await
        .err()
        .expect("fetch of a symlinked blob must fail");
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
    assert_eq!(
        fetch_all(&store, &target).await.unwrap_err().kind(),
        ErrorKind::InvalidLayout
    );
    assert!(
        !store.exists(&target).await.unwrap(),
        "a symbolic link is not a blob"
    );
    assert_eq!(
        store.resolve(&digest).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(store.predecessors(&target).await.unwrap().is_empty());
    assert_eq!(listing(layout.path()), before);
    assert_eq!(fs::read(&secret_path).unwrap(), secret);
}

// ---------------------------------------------------------------------------------------------
// Bad input: descriptors.

#[tokio::test]
async fn absurd_sizes_and_malformed_digests_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = fixtures().join("handmade");
    let present = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    for how in [Opened::Dir, Opened::Tar(TarStyle::DotSlash)] {
        let store = open_as(&dir, &how, scratch.path()).await;

        let huge = desc(OCTET_STREAM, present, 0).clone();
        let mut huge = huge;
        huge.set_size(1 << 62);
        assert_eq!(
            store.fetch(&huge).await.err().map(|e| e.kind()),
            Some(ErrorKind::SizeExceedsLimit)
        );
        assert_eq!(
            store.exists(&huge).await.unwrap_err().kind(),
            ErrorKind::SizeExceedsLimit
        );
        assert_eq!(
            fetch_all(&store, &huge).await.unwrap_err().kind(),
            ErrorKind::SizeExceedsLimit
        );

        for text in [
            "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "foo:bar",
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ] {
            let bad = desc(OCI_MANIFEST, text, 3);
            let err = store.fetch(&bad).await.err().unwrap();
            assert_eq!(err.kind(), ErrorKind::InvalidDigest, "fetch {text}: {err}");
            assert_eq!(
                store.exists(&bad).await.unwrap_err().kind(),
                ErrorKind::InvalidDigest,
                "{text}"
            );
            assert_eq!(
                store.resolve(text).await.unwrap_err().kind(),
                ErrorKind::NotFound,
                "{text}"
            );
            assert!(store.predecessors(&bad).await.unwrap().is_empty());
        }
        // Absent but well formed.
        let absent = desc(
            OCTET_STREAM,
            &digest_string(Algorithm::Sha256, b"absent"),
            6,
        );
        assert!(!store.exists(&absent).await.unwrap());
        assert_eq!(
            store.fetch(&absent).await.err().map(|e| e.kind()),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            store
                .resolve(absent.digest().as_ref())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
    }
}
