//! The benchmark content (`support/content.rs`) against the check values the oras-go side (`benches/oras-go`, `-selftest`)
//! prints, without the 1 GiB blob (`cargo bench -p ocistore-benches --bench scenarios --
//! --selftest` checks that one too). No timing here.

#[path = "../support/content.rs"]
mod content;

#[test]
fn bench_content_matches_the_oras_go_check_values() {
    let results = content::selftest(false);
    assert_eq!(
        results.len(),
        content::CHECKS.len() - 1,
        "all but the big blob"
    );
    for (what, got, want) in results {
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn the_big_blob_generator_follows_its_definition() {
    use std::io::Read;
    // Two chunks and a bit: the per-chunk header and the base pattern, across a read boundary.
    let size = 2 * content::CHUNK as u64 + 100;
    let mut reader = content::BigReader::new(size);
    let mut all = Vec::new();
    let mut buf = vec![0u8; 300_001];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    assert_eq!(all.len() as u64, size);
    for (p, &byte) in all.iter().enumerate() {
        let (k, j) = (p / content::CHUNK, p % content::CHUNK);
        let want = if j < 8 {
            (k as u64).to_le_bytes()[j]
        } else {
            ((j * 7 + 13) & 0xff) as u8
        };
        assert_eq!(byte, want, "byte {p}");
    }
}
