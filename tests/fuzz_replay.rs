//! Replays every committed input of the fuzz targets (`fuzz/corpus/<target>/*` and the crash
//! regressions in `fuzz/artifacts/<target>/*`) through the same target bodies cargo-fuzz runs,
//! on stable and without libFuzzer, so that an input that once crashed a parser never crashes it
//! again. The bodies assert their invariants themselves; see fuzz/README.md.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One fuzz target: its directory name under `fuzz/corpus/` and the bodies its
/// `fuzz/fuzz_targets/<name>.rs` calls, in that order.
struct Target {
    name: &'static str,
    bodies: &'static [fn(&[u8])],
}

const TARGETS: &[Target] = &[
    Target {
        name: "index",
        bodies: &[store_fs::fuzzing::fuzz_index],
    },
    Target {
        name: "successors",
        bodies: &[store_core::fuzzing::fuzz_successors],
    },
    Target {
        name: "digest",
        bodies: &[store_core::fuzzing::fuzz_digest],
    },
    Target {
        name: "reference",
        bodies: &[
            store_remote::fuzzing::fuzz_reference,
            store_core::fuzzing::fuzz_tag,
        ],
    },
    Target {
        name: "readonly_tar",
        bodies: &[store_fs::fuzzing::fuzz_readonly_tar],
    },
    Target {
        name: "archive_import",
        bodies: &[store_archive::fuzzing::fuzz_import],
    },
    Target {
        name: "remote_headers",
        bodies: &[store_remote::fuzzing::fuzz_headers],
    },
    Target {
        name: "remote_bodies",
        bodies: &[store_remote::fuzzing::fuzz_bodies],
    },
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files directly in `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("reading a corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target`; returns how many ran and the ones that panicked.
fn replay(target: &Target) -> (usize, Vec<String>) {
    let mut files = inputs(&fuzz_dir().join("corpus").join(target.name));
    files.extend(inputs(&fuzz_dir().join("artifacts").join(target.name)));
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("reading a corpus file");
        for body in target.bodies {
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    (files.len(), failures)
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    let dir = fuzz_dir().join("corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus exists")
        .map(|entry| entry.expect("reading fuzz/corpus").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    known.sort();
    assert_eq!(names, known, "fuzz/corpus and the replayed targets differ");
    for target in TARGETS {
        let source = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", target.name));
        assert!(source.is_file(), "no fuzz target {}", source.display());
    }
}

macro_rules! replay_test {
    ($test:ident, $name:literal) => {
        #[test]
        fn $test() {
            let target = TARGETS
                .iter()
                .find(|t| t.name == $name)
                .expect("a known target");
            let (count, failures) = replay(target);
            assert!(count > 0, "fuzz/corpus/{} is empty", $name);
            assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
        }
    };
}

replay_test!(index_corpus_replays, "index");
replay_test!(successors_corpus_replays, "successors");
replay_test!(digest_corpus_replays, "digest");
replay_test!(reference_corpus_replays, "reference");
replay_test!(readonly_tar_corpus_replays, "readonly_tar");
replay_test!(archive_import_corpus_replays, "archive_import");
replay_test!(remote_headers_corpus_replays, "remote_headers");
replay_test!(remote_bodies_corpus_replays, "remote_bodies");
