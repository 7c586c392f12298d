//! A reproducible tar writer: ustar headers with mtime 0, uid and gid 0, no user or group
//! names, mode 0644 for files and 0755 for directories; a pax `path` or `size` record only
//! where ustar cannot hold the name (sha512 blobs) or the size (8 GiB and more).

use crate::tar_read::BLOCK;

/// The largest size an octal ustar size field holds (11 digits).
const USTAR_MAX_SIZE: u64 = 0o777_7777_7777;

/// The header blocks (one, or three with a pax record) of a file of `size` bytes named `name`,
/// or of a directory.
pub(crate) fn header(name: &str, size: u64, directory: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 * BLOCK as usize);
    let split = split_ustar(name);
    let mut pax = String::new();
    if split.is_none() {
        pax.push_str(&pax_record("path", name));
    }
    if size > USTAR_MAX_SIZE {
        pax.push_str(&pax_record("size", &size.to_string()));
    }
    if !pax.is_empty() {
        // Named as GNU tar and Go name theirs, so that old readers extract it as a plain file
        // at a harmless path rather than failing.
        let block = ustar_block("", "././@PaxHeader", pax.len() as u64, b'x', 0o644);
        out.extend_from_slice(&block);
        out.extend_from_slice(pax.as_bytes());
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    let (prefix, short) = split.unwrap_or(("", truncate(name, 100)));
    let (flag, mode) = if directory {
        (b'5', 0o755)
    } else {
        (b'0', 0o644)
    };
    let size_field = if directory {
        0
    } else {
        size.min(USTAR_MAX_SIZE)
    };
    out.extend_from_slice(&ustar_block(prefix, short, size_field, flag, mode));
    out
}

/// The zero bytes that round `size` up to a whole block.
pub(crate) fn padding(size: u64) -> usize {
    ((BLOCK - size % BLOCK) % BLOCK) as usize
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn end() -> [u8; 1024] {
    [0u8; 1024]
}

/// `name` split into a ustar prefix (at most 155 bytes) and name (at most 100), at a `/`.
fn split_ustar(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    let bytes = name.as_bytes();
    (0..bytes.len())
        .filter(|i| bytes[*i] == b'/')
        .find(|i| *i <= 155 && bytes.len() - i - 1 <= 100 && bytes.len() - i > 1)
        .map(|i| (&name[..i], &name[i + 1..]))
}

/// At most `max` bytes of `name` (layout names are ASCII).
fn truncate(name: &str, max: usize) -> &str {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// One pax record, `<len> <key>=<value>\n`, whose length counts its own digits.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// One ustar header block.
fn ustar_block(prefix: &str, name: &str, size: u64, flag: u8, mode: u32) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0);
    block[156] = flag;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    octal(&mut block[329..337], 0);
    octal(&mut block[337..345], 0);
    block[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|b| u64::from(*b)).sum();
    // Six digits, NUL, space: the form GNU tar and Go write.
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
    block
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["x", &"a".repeat(93), &"a".repeat(94), &"b".repeat(200)] {
            let record = pax_record("path", value);
            let (len, _) = record.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), record.len(), "{record}");
        }
    }

    #[test]
    fn long_names_split_or_go_to_pax() {
        let sha384 = format!("blobs/sha384/{}", "a".repeat(96));
        assert_eq!(
            split_ustar(&sha384),
            Some(("blobs/sha384", &"a".repeat(96)[..]))
        );
        let sha512 = format!("blobs/sha512/{}", "a".repeat(128));
        assert_eq!(split_ustar(&sha512), None);
        assert_eq!(header(&sha512, 3, false).len(), 3 * 512);
        assert_eq!(header(&sha384, 3, false).len(), 512);
        assert_eq!(header("index.json", 1 << 40, false).len(), 3 * 512);
    }
}
