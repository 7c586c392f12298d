//! Small blocking file-system primitives, all relative to an open directory handle: unique temp
//! names, opening without following links or blocking on special files, atomic replace,
//! no-clobber creation, directory listing, and [`spawn_blocking`] to run them on the blocking pool.
//!
//! Every name given to a `*_at` function is one component inside its directory handle, so no
//! symbolic link anywhere in a path is ever resolved: the layout's root is opened once (the user
//! chose it, link or not) and each directory below it is opened with `O_NOFOLLOW`. A file is
//! opened with `O_NONBLOCK`, which makes opening a FIFO or device return at once instead of
//! waiting for a writer or a carrier, and is then refused unless `fstat` says it is regular
//! (`O_NONBLOCK` changes nothing for reads of a regular file).
//!
//! Everything here except [`spawn_blocking`] blocks. Callers usually run it on the blocking pool;
//! a few run it on the calling thread when it is only a handful of syscalls on cached data (the
//! blob module's `INLINE_IO_LIMIT_BYTES`, 64 KiB): reads of small blobs, and, when not durable,
//! writes of small blobs and of a small `index.json`.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store_core::{Error, Result};

/// Runs `f` on the blocking pool and flattens a join failure into `Io`.
pub(crate) async fn spawn_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("a blocking file operation", io::Error::other(e)))?
}

/// Runs `f` on this thread when it is a worker of a multi-threaded tokio runtime, through
/// [`tokio::task::block_in_place`]: the worker's other tasks move to another thread while `f`
/// blocks, and this task goes on without waiting to be woken by a blocking-pool thread (two
/// thread switches, which cost more than a write of a few hundred KiB to the page cache).
/// Returns `None`, without running `f`, anywhere else (a current-thread runtime, where
/// `block_in_place` is not allowed, or no runtime): the caller then uses [`spawn_blocking`].
pub(crate) fn block_here<T>(f: impl FnOnce() -> T) -> Option<T> {
    let on_workers = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    on_workers.then(|| tokio::task::block_in_place(f))
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer (in this or another process) will pick: pid, time and a counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{nanos:x}-{n}", std::process::id())
}

/// What a directory entry is, from `lstat` (a link is a link, never what it points to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl FileKind {
    fn from_mode(mode: libc::mode_t) -> FileKind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::Regular,
            libc::S_IFDIR => FileKind::Directory,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFBLK => FileKind::BlockDevice,
            _ => FileKind::Unknown,
        }
    }

    /// From a `d_type`; `None` when the file system does not say (`DT_UNKNOWN`).
    fn from_d_type(d_type: u8) -> Option<FileKind> {
        match d_type {
            libc::DT_REG => Some(FileKind::Regular),
            libc::DT_DIR => Some(FileKind::Directory),
            libc::DT_LNK => Some(FileKind::Symlink),
            libc::DT_FIFO => Some(FileKind::Fifo),
            libc::DT_SOCK => Some(FileKind::Socket),
            libc::DT_CHR => Some(FileKind::CharDevice),
            libc::DT_BLK => Some(FileKind::BlockDevice),
            _ => None,
        }
    }

    /// "a FIFO", "a directory"...: for messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "not a regular file",
        }
    }
}

/// What `lstat` says about an entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) kind: FileKind,
    pub(crate) len: u64,
    pub(crate) modified: SystemTime,
    pub(crate) identity: Identity,
}

/// Which inode an entry is and when its content or metadata last changed, as the kernel reports
/// them. While the caller keeps the inode open its number cannot be reused, so an equal identity
/// then means the very same file, unchanged since, unless it was rewritten in place within one
/// tick of the file system's clock with the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    len: i64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stat {
    fn from_raw(st: &libc::stat) -> Stat {
        // Casts: the field types differ between systems; a negative time or size cannot occur on
        // a sane file system and reads as the epoch or 0.
        #[allow(clippy::unnecessary_cast)]
        let (secs, nanos, len) = (
            st.st_mtime as i64,
            st.st_mtime_nsec as i64,
            st.st_size as i64,
        );
        let modified = if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nanos.clamp(0, 999_999_999) as u32)
        } else {
            UNIX_EPOCH
        };
        // Casts as above.
        #[allow(clippy::unnecessary_cast)]
        let identity = Identity {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            len,
            modified: (secs, nanos),
            changed: (st.st_ctime as i64, st.st_ctime_nsec as i64),
        };
        Stat {
            kind: FileKind::from_mode(st.st_mode as libc::mode_t),
            len: len.max(0) as u64,
            modified,
            identity,
        }
    }
}

/// Calls `f` with `name` as a NUL-terminated string, without allocating for the short names the
/// store uses (digests and temp names).
fn with_name<T>(
    name: &OsStr,
    f: impl FnOnce(*const libc::c_char) -> io::Result<T>,
) -> io::Result<T> {
    let bytes = name.as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file name with a NUL byte",
        ));
    }
    let mut buf = [0u8; 256];
    if bytes.len() < buf.len() {
        buf[..bytes.len()].copy_from_slice(bytes);
        f(buf.as_ptr().cast())
    } else {
        let owned = CString::new(bytes)?;
        f(owned.as_ptr())
    }
}

/// `-1` from a syscall becomes the `errno` error.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `openat(dir, name, flags, mode)` retried on `EINTR`, as an owned descriptor.
fn open_raw(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    with_name(name, |name| loop {
        // SAFETY: `dir` is an open descriptor borrowed for the call and `name` a NUL-terminated
        // string alive for the call; the mode is passed as the variadic `c_uint` openat reads.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name,
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        match check(fd) {
            // SAFETY: openat just returned this descriptor; nothing else owns it.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    })
}

/// `lstat` of `name` in `dir` (`fstatat` with `AT_SYMLINK_NOFOLLOW`): one syscall.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<Stat> {
    with_name(name.as_ref(), |name| {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `dir` is open, `name` NUL-terminated and `st` points to writable memory the
        // size of a `stat`; both outlive the call.
        check(unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name,
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: fstatat succeeded, so it filled `st`.
        Ok(Stat::from_raw(unsafe { st.assume_init_ref() }))
    })
}

/// `fstat` of an open descriptor.
pub(crate) fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `st` points to writable memory the size of a `stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(Stat::from_raw(unsafe { st.assume_init_ref() }))
}

/// Opens the directory `name` in `dir` without following a symbolic link. A link fails with
/// `ELOOP` (or `ENOTDIR`), anything else that is not a directory with `ENOTDIR`.
pub(crate) fn open_dir_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<OwnedFd> {
    open_raw(
        dir,
        name.as_ref(),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Opens the directory at `path`, following links (the layout's root: the user chose it).
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    loop {
        // SAFETY: `c` is a NUL-terminated path alive for the call.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        match check(fd) {
            // SAFETY: open just returned this descriptor; nothing else owns it.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Creates the directory `name` in `dir` (mode 0755 before the umask).
pub(crate) fn mkdir_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<()> {
    with_name(name.as_ref(), |name| {
        // SAFETY: `dir` is open and `name` NUL-terminated, both alive for the call.
        check(unsafe { libc::mkdirat(dir.as_raw_fd(), name, 0o755) }).map(|_| ())
    })
}

/// The outcome of opening a file of the layout.
#[derive(Debug)]
pub(crate) enum Opened {
    /// A regular file, and its size.
    File(File, u64),
    /// Something else (a link, directory, FIFO, socket or device), never read.
    Not(FileKind),
}

/// Opens `name` in `dir` with `flags` (plus `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`), then keeps it
/// only if `fstat` says it is a regular file. Errors that mean "not a regular file" (a link, a
/// directory opened for writing, a socket) become [`Opened::Not`].
fn open_regular(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int) -> io::Result<Opened> {
    let flags = flags | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    match open_raw(dir, name, flags, 0o644) {
        Ok(fd) => {
            let st = stat_fd(fd.as_fd())?;
            if st.kind != FileKind::Regular {
                return Ok(Opened::Not(st.kind));
            }
            Ok(Opened::File(File::from(fd), st.len))
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(Opened::Not(FileKind::Symlink)),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EISDIR | libc::ENXIO | libc::ENODEV | libc::EOPNOTSUPP)
            ) =>
        {
            match stat_at(dir, name) {
                Ok(st) if st.kind != FileKind::Regular => Ok(Opened::Not(st.kind)),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Opens `name` in `dir` for reading: never through a symbolic link, never blocking on a FIFO
/// or device, and only when it is a regular file.
pub(crate) fn open_file_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<Opened> {
    open_regular(dir, name.as_ref(), libc::O_RDONLY)
}

/// [`open_file_at`] without updating the file's access time when the file's owner allows it
/// (`O_NOATIME`: the caller owns the file or may act as its owner): a read that is no use of
/// the content, such as indexing at open, then writes no inode. Otherwise as [`open_file_at`].
pub(crate) fn open_file_at_quietly(
    dir: BorrowedFd<'_>,
    name: impl AsRef<OsStr>,
) -> io::Result<Opened> {
    let name = name.as_ref();
    match open_regular(dir, name, libc::O_RDONLY | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open_file_at(dir, name),
        opened => opened,
    }
}

/// Opens `name` in `dir` for reading and writing, creating it (mode 0644) when missing; like
/// [`open_file_at`], never through a link and only when it is a regular file.
pub(crate) fn open_or_create_at(
    dir: BorrowedFd<'_>,
    name: impl AsRef<OsStr>,
) -> io::Result<Opened> {
    open_regular(dir, name.as_ref(), libc::O_RDWR | libc::O_CREAT)
}

/// Creates the new file `name` in `dir`, which must not exist yet (a link there is not
/// followed: `O_EXCL` fails), readable by everyone.
pub(crate) fn create_new_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<File> {
    create_new_with(dir, name.as_ref(), libc::O_WRONLY)
}

/// [`create_new_at`], open for reading too (a file checked after it is filled).
pub(crate) fn create_new_readable_at(
    dir: BorrowedFd<'_>,
    name: impl AsRef<OsStr>,
) -> io::Result<File> {
    create_new_with(dir, name.as_ref(), libc::O_RDWR)
}

fn create_new_with(dir: BorrowedFd<'_>, name: &OsStr, access: libc::c_int) -> io::Result<File> {
    let fd = open_raw(
        dir,
        name,
        access | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o644,
    )?;
    Ok(File::from(fd))
}

/// Whether unnamed files were found unavailable here (no `O_TMPFILE` in the kernel or file
/// system, or no `/proc` to link one through); once found, never tried again.
static NO_UNNAMED_FILES: AtomicBool = AtomicBool::new(false);

/// A new regular file in `dir` with no name (Linux `O_TMPFILE`), open for writing, readable by
/// everyone once named: nothing of it is visible until [`link_unnamed_at`] names it, and it
/// vanishes when closed unnamed or when the process dies, so nothing is left to clean up.
/// `Ok(None)` where unnamed files are unavailable (the caller writes a named staging file).
pub(crate) fn create_unnamed_in(dir: BorrowedFd<'_>) -> io::Result<Option<File>> {
    if NO_UNNAMED_FILES.load(Ordering::Relaxed) {
        return Ok(None);
    }
    create_unnamed(dir)
}

#[cfg(target_os = "linux")]
fn create_unnamed(dir: BorrowedFd<'_>) -> io::Result<Option<File>> {
    match open_raw(
        dir,
        OsStr::new("."),
        libc::O_WRONLY | libc::O_TMPFILE,
        0o644,
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // EOPNOTSUPP: a file system without it; EISDIR or EINVAL: a kernel before 3.11.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            NO_UNNAMED_FILES.store(true, Ordering::Relaxed);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn create_unnamed(_dir: BorrowedFd<'_>) -> io::Result<Option<File>> {
    Ok(None)
}

/// Names the unnamed `file` (from [`create_unnamed_in`] on the same directory's file system)
/// `name` in `dir`; never replaces (fails with `EEXIST`). `Ok(false)` when it cannot be named
/// here (no `/proc`): the caller falls back to a named staging file.
///
/// The link goes through `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW`, which needs no privilege
/// where `AT_EMPTY_PATH` needs `CAP_DAC_READ_SEARCH`.
pub(crate) fn link_unnamed_at(
    file: &File,
    dir: BorrowedFd<'_>,
    name: impl AsRef<OsStr>,
) -> io::Result<bool> {
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let linked = with_name(OsStr::new(&proc_path), |from| {
        with_name(name.as_ref(), |to| {
            // SAFETY: both names are NUL-terminated and `dir` is open, all alive for the
            // call; `AT_SYMLINK_FOLLOW` links the file the /proc entry stands for.
            check(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    from,
                    dir.as_raw_fd(),
                    to,
                    libc::AT_SYMLINK_FOLLOW,
                )
            })
        })
    });
    match linked {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !Path::new("/proc/self/fd").is_dir() => {
            NO_UNNAMED_FILES.store(true, Ordering::Relaxed);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Makes `to` (empty, open for writing) a reflink of all of `from` (`FICLONE`): the two share
/// their blocks until either is written. `Err` with `EOPNOTSUPP`, `EXDEV`, `EINVAL` or `ENOTTY`
/// where the file system has no reflinks or the files are on two file systems.
#[cfg(target_os = "linux")]
pub(crate) fn reflink(from: &File, to: &File) -> io::Result<()> {
    // FICLONE, _IOW(0x94, 9, int), from linux/fs.h (libc does not define it).
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: both descriptors are open for the call; FICLONE takes the source descriptor as
    // its integer argument and writes no memory of ours.
    check(unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) }).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn reflink(_from: &File, _to: &File) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Hard-links `from` in `from_dir` as `to` in `to_dir`; never replaces (fails with `EEXIST`) and
/// never follows a link (`from` is linked as it is).
pub(crate) fn link_at(
    from_dir: BorrowedFd<'_>,
    from: impl AsRef<OsStr>,
    to_dir: BorrowedFd<'_>,
    to: impl AsRef<OsStr>,
) -> io::Result<()> {
    with_name(from.as_ref(), |from| {
        with_name(to.as_ref(), |to| {
            // SAFETY: both directories are open and both names NUL-terminated, all alive for
            // the call; flags 0 links the entry itself, never a link's target.
            check(unsafe { libc::linkat(from_dir.as_raw_fd(), from, to_dir.as_raw_fd(), to, 0) })
                .map(|_| ())
        })
    })
}

/// Removes the entry `name` (not a directory) from `dir`; a link is removed, never its target.
pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> io::Result<()> {
    with_name(name.as_ref(), |name| {
        // SAFETY: `dir` is open and `name` NUL-terminated, both alive for the call.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name, 0) }).map(|_| ())
    })
}

/// Renames `from` to `to`, both in `dir`, replacing `to` (a link there is replaced, never
/// followed).
fn rename_at(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    with_name(from, |from| {
        with_name(to, |to| {
            // SAFETY: `dir` is open and both names NUL-terminated, all alive for the call.
            check(unsafe { libc::renameat(dir.as_raw_fd(), from, dir.as_raw_fd(), to) }).map(|_| ())
        })
    })
}

/// fsyncs an open file or directory, so that entries created or renamed in it survive a crash.
pub(crate) fn sync_fd(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor borrowed for the call.
    check(unsafe { libc::fsync(fd.as_raw_fd()) }).map(|_| ())
}

/// One entry of a directory listing.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: OsString,
    /// From the listing's `d_type`; `None` when the file system does not say (ask [`stat_at`]).
    pub(crate) kind: Option<FileKind>,
}

/// Lists the directory `dir` (without `.` and `..`), through a fresh handle of its own so that
/// the caller's handle keeps its position.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Entry>> {
    let fd = open_dir_at(dir, ".")?;
    // SAFETY: `fd` is an open directory descriptor; fdopendir takes it over (closedir below
    // closes it), so it is released from the OwnedFd first.
    let stream = unsafe { libc::fdopendir(fd.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(fd);
    let mut out = Vec::new();
    let result = loop {
        // readdir signals the end and errors both with NULL; errno tells them apart.
        clear_errno();
        // SAFETY: `stream` is the open directory stream made above, used by this thread only.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            let e = io::Error::last_os_error();
            break match e.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(e),
            };
        }
        // SAFETY: readdir returned a valid entry, alive until the next readdir on `stream`;
        // its name is NUL-terminated and copied out before that.
        let (name, d_type) = unsafe {
            let entry = &*entry;
            (
                CStr::from_ptr(entry.d_name.as_ptr()).to_bytes().to_vec(),
                entry.d_type,
            )
        };
        if name == b"." || name == b".." {
            continue;
        }
        out.push(Entry {
            name: OsString::from_vec(name),
            kind: FileKind::from_d_type(d_type),
        });
    };
    // SAFETY: `stream` is open and not used after this.
    unsafe { libc::closedir(stream) };
    result.map(|()| out)
}

#[cfg(target_os = "linux")]
fn clear_errno() {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = 0 };
}

#[cfg(target_os = "macos")]
fn clear_errno() {
    // SAFETY: __error returns this thread's errno slot.
    unsafe { *libc::__error() = 0 };
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn clear_errno() {}

/// The kind of a listed entry: its `d_type`, or an `lstat` when the file system gave none.
pub(crate) fn entry_kind(dir: BorrowedFd<'_>, entry: &Entry) -> io::Result<FileKind> {
    match entry.kind {
        Some(kind) => Ok(kind),
        None => stat_at(dir, &entry.name).map(|st| st.kind),
    }
}

/// Closes `file` on a thread of its own (started at the first call), or here if that thread
/// cannot be started. For the last descriptor of an unlinked file, closing frees its inode and
/// page cache: tens of µs for a large index that need not delay the caller, who has nothing to
/// wait for there (the file is already gone from every directory).
pub(crate) fn close_later(file: File) {
    static CLOSER: OnceLock<Option<mpsc::Sender<File>>> = OnceLock::new();
    let closer = CLOSER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<File>();
        std::thread::Builder::new()
            .name("ocistore-close".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    let unsent = match closer {
        Some(tx) => tx.send(file).err().map(|e| e.0),
        None => Some(file),
    };
    drop(unsent);
}

/// Reads the regular file `name` in `dir` whole, unless it is missing, not a regular file (never
/// read) or larger than `limit`.
pub(crate) fn read_file_at(
    dir: BorrowedFd<'_>,
    name: impl AsRef<OsStr>,
    limit: Option<u64>,
) -> io::Result<ReadOutcome> {
    let (mut file, len) = match open_file_at(dir, name) {
        Ok(Opened::File(file, len)) => (file, len),
        Ok(Opened::Not(kind)) => return Ok(ReadOutcome::Not(kind)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ReadOutcome::Missing),
        Err(e) => return Err(e),
    };
    if let Some(limit) = limit {
        if len > limit {
            return Ok(ReadOutcome::TooBig(len));
        }
    }
    // Room for exactly what `fstat` saw: growing by doubling would leave up to half of the
    // buffer unused, and the caller may keep it (`index.json` is held as read).
    let mut out = Vec::new();
    out.try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    match limit {
        // One byte past the limit tells a file that grew since the fstat.
        Some(limit) => (&mut file).take(limit + 1).read_to_end(&mut out)?,
        None => file.read_to_end(&mut out)?,
    };
    if let Some(limit) = limit {
        if out.len() as u64 > limit {
            return Ok(ReadOutcome::TooBig(out.len() as u64));
        }
    }
    Ok(ReadOutcome::Bytes(out))
}

/// What [`read_file_at`] found.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// The whole content.
    Bytes(Vec<u8>),
    /// Nothing by that name.
    Missing,
    /// Not a regular file (never read).
    Not(FileKind),
    /// Larger than the limit (this many bytes at least; not read).
    TooBig(u64),
}

/// Replaces `name` in `dir` with `bytes` atomically: a temp file in the same directory, fsync
/// (when `durable`), rename over `name`, fsync of the directory (when `durable`). A crash of the
/// process at any point leaves either the old or the new content, never a torn file; when
/// `durable`, so does a crash of the machine. A link at `name` is replaced, never followed.
/// Returns the new file, open for writing (so that the caller may keep its inode pinned).
///
/// Without `durable` the temp file is swapped with `name` (`renameat2(RENAME_EXCHANGE)`, where
/// the file system has it) and the old content then unlinked under the temp name. A plain rename
/// over an existing file makes ext4 start writing the new file out at once (its `auto_da_alloc`
/// safeguard for programs that do not fsync), and replacing a file whose blocks were allocated
/// frees them, which a `discard` mount turns into a synchronous trim: together ~150 µs per
/// write, 4–5× the cost of the write itself. The swap does neither while the data is still in
/// the page cache; the price is that a crash of the machine may leave `name` empty rather than
/// old or new, which is what not being durable allows.
pub(crate) fn atomic_write(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    durable: bool,
) -> io::Result<File> {
    let temp = unique_name(&format!(".{name}.tmp-"));
    let result = (|| {
        let file = write_new(dir, &temp, bytes, durable)?;
        if !durable && rename_exchange(dir, temp.as_ref(), name.as_ref())? {
            // `temp` now names the old content.
            let _ = unlink_at(dir, &temp);
            return Ok(file);
        }
        rename_at(dir, temp.as_ref(), name.as_ref())?;
        if durable {
            sync_fd(dir)?;
        }
        Ok(file)
    })();
    if result.is_err() {
        let _ = unlink_at(dir, &temp);
    }
    result
}

/// Atomically swaps the entries `a` and `b` of `dir`. Returns `Ok(false)`, having done nothing,
/// when `b` does not exist or the system or file system cannot swap.
#[cfg(target_os = "linux")]
fn rename_exchange(dir: BorrowedFd<'_>, a: &OsStr, b: &OsStr) -> io::Result<bool> {
    let r = with_name(a, |a| {
        with_name(b, |b| {
            // The raw syscall: libc wrappers for renameat2 are missing from older C libraries.
            // SAFETY: `dir` is open and both names NUL-terminated, all alive for the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    dir.as_raw_fd(),
                    a,
                    dir.as_raw_fd(),
                    b,
                    libc::RENAME_EXCHANGE,
                )
            };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
    });
    match r {
        Ok(()) => Ok(true),
        Err(e) => match e.raw_os_error() {
            Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM) => {
                Ok(false)
            }
            _ => Err(e),
        },
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_exchange(_dir: BorrowedFd<'_>, _a: &OsStr, _b: &OsStr) -> io::Result<bool> {
    Ok(false)
}

/// Writes `bytes` as `name` in `dir` only if nothing is there yet (temp file + no-clobber link).
/// Returns `Ok(false)` when another writer got there first.
pub(crate) fn write_if_absent(
    dir: BorrowedFd<'_>,
    name: &str,
    bytes: &[u8],
    durable: bool,
) -> io::Result<bool> {
    let temp = unique_name(".new.tmp-");
    let result = (|| {
        write_new(dir, &temp, bytes, durable)?;
        let created = match link_at(dir, &temp, dir, name) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        unlink_at(dir, &temp)?;
        if durable && created {
            sync_fd(dir)?;
        }
        Ok(created)
    })();
    if result.is_err() {
        let _ = unlink_at(dir, &temp);
    }
    result
}

/// Creates the new file `name` in `dir` holding `bytes`, fsynced when `durable`, and closes it.
fn write_new(dir: BorrowedFd<'_>, name: &str, bytes: &[u8], durable: bool) -> io::Result<File> {
    let mut file = create_new_at(dir, name)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    Ok(file)
}

/// Creates `dir` (and its parents) if missing, following links (the layout's root: the user
/// chose its path); when `durable`, fsyncs the parent of every directory it had to create.
pub(crate) fn ensure_dir(dir: &Path, durable: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            ensure_dir(parent, durable)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if durable {
                let parent = match dir.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                File::open(parent)?.sync_all()?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_fd(path: &Path) -> OwnedFd {
        open_dir(path).unwrap()
    }

    // The tests up to the next comment run under Miri too (fuzz/miri.sh): they reach the unsafe
    // blocks whose calls Miri can execute (fstat, fsync, errno) and check the pointers handed to
    // the other calls.

    #[test]
    fn names_reach_the_kernel_nul_terminated_and_alive() {
        // 255 fits the stack buffer with its NUL; 256 and longer take the CString path.
        for len in [0usize, 1, 255, 256, 4000] {
            let name = "n".repeat(len);
            let seen = with_name(OsStr::new(&name), |ptr| {
                // SAFETY: with_name promises a NUL-terminated string alive for the callback.
                Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec())
            })
            .unwrap();
            assert_eq!(seen, name.as_bytes(), "a name of {len} bytes");
        }
        let err = with_name(OsStr::new("a\0b"), |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn fstat_and_fsync_of_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        fs::write(&path, b"12345").unwrap();
        let file = File::open(&path).unwrap();
        let st = stat_fd(file.as_fd()).unwrap();
        assert_eq!(st.kind, FileKind::Regular);
        assert_eq!(st.len, 5);
        assert!(st.modified > UNIX_EPOCH);
        sync_fd(file.as_fd()).unwrap();
        let dir_handle = File::open(dir.path()).unwrap();
        assert_eq!(
            stat_fd(dir_handle.as_fd()).unwrap().kind,
            FileKind::Directory
        );
    }

    #[test]
    fn errno_is_cleared_for_this_thread() {
        assert!(File::open("/nonexistent-ocistore/x").is_err());
        assert_ne!(io::Error::last_os_error().raw_os_error(), Some(0));
        clear_errno();
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(0));
    }

    // The tests below call openat, fstatat, linkat, renameat2, fdopendir... (through open_dir
    // and the *_at functions), which Miri cannot execute: they are ignored under Miri.

    #[test]
    #[cfg_attr(miri, ignore)]
    fn an_unnamed_file_is_invisible_until_named_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir_fd(dir.path());
        let listing = || {
            let mut names: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let Some(mut file) = create_unnamed_in(fd.as_fd()).unwrap() else {
            // Only where the kernel or file system lacks O_TMPFILE: nothing was created.
            assert!(listing().is_empty());
            return;
        };
        file.write_all(b"abc").unwrap();
        assert!(listing().is_empty(), "visible before it is named");
        assert!(link_unnamed_at(&file, fd.as_fd(), "blob").unwrap());
        assert_eq!(fs::read(dir.path().join("blob")).unwrap(), b"abc");
        let mode = fs::metadata(dir.path().join("blob")).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o444,
            0o444
        );

        let mut other = create_unnamed_in(fd.as_fd()).unwrap().unwrap();
        other.write_all(b"xyz").unwrap();
        let taken = link_unnamed_at(&other, fd.as_fd(), "blob").unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.path().join("blob")).unwrap(), b"abc");
        // Dropped unnamed: nothing left behind.
        drop(other);
        let unnamed = create_unnamed_in(fd.as_fd()).unwrap().unwrap();
        drop(unnamed);
        assert_eq!(listing(), vec![OsString::from("blob")]);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir_fd(dir.path());
        atomic_write(fd.as_fd(), "index.json", b"one", true).unwrap();
        atomic_write(fd.as_fd(), "index.json", b"two", false).unwrap();
        assert_eq!(fs::read(dir.path().join("index.json")).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn relaxed_replacement_swaps_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir_fd(dir.path());
        // No file yet: the swap cannot apply, the rename does.
        atomic_write(fd.as_fd(), "index.json", b"one", false).unwrap();
        for round in 0..3 {
            let body = format!("round {round}");
            atomic_write(fd.as_fd(), "index.json", body.as_bytes(), false).unwrap();
            assert_eq!(
                fs::read(dir.path().join("index.json")).unwrap(),
                body.as_bytes()
            );
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn atomic_write_replaces_a_link_and_never_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("target");
        fs::write(&target, b"theirs").unwrap();
        for durable in [false, true] {
            let link = dir.path().join("index.json");
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let fd = dir_fd(dir.path());
            atomic_write(fd.as_fd(), "index.json", b"ours", durable).unwrap();
            assert_eq!(fs::read(&target).unwrap(), b"theirs");
            assert!(fs::symlink_metadata(&link).unwrap().is_file());
        }
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn write_if_absent_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir_fd(dir.path());
        assert!(write_if_absent(fd.as_fd(), "oci-layout", b"first", true).unwrap());
        assert!(!write_if_absent(fd.as_fd(), "oci-layout", b"second", true).unwrap());
        assert_eq!(fs::read(dir.path().join("oci-layout")).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn special_files_are_never_opened_for_a_blocking_read() {
        let dir = tempfile::tempdir().unwrap();
        let fd = dir_fd(dir.path());
        let fifo = CString::new(dir.path().join("fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        fs::create_dir(dir.path().join("dir")).unwrap();
        fs::write(dir.path().join("file"), b"bytes").unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("socket")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("file"), dir.path().join("link")).unwrap();
        let kind = |name: &str| match open_file_at(fd.as_fd(), name).unwrap() {
            Opened::File(_, len) => panic!("{name} opened as a file of {len} bytes"),
            Opened::Not(kind) => kind,
        };
        assert_eq!(kind("fifo"), FileKind::Fifo);
        assert_eq!(kind("dir"), FileKind::Directory);
        assert_eq!(kind("link"), FileKind::Symlink);
        assert_eq!(kind("socket"), FileKind::Socket);
        assert!(matches!(
            open_or_create_at(fd.as_fd(), "socket").unwrap(),
            Opened::Not(FileKind::Socket)
        ));
        assert!(matches!(
            open_or_create_at(fd.as_fd(), "link").unwrap(),
            Opened::Not(FileKind::Symlink)
        ));
        assert!(matches!(
            open_or_create_at(fd.as_fd(), "dir").unwrap(),
            Opened::Not(FileKind::Directory)
        ));
        assert!(matches!(
            read_file_at(fd.as_fd(), "file", Some(4)).unwrap(),
            ReadOutcome::TooBig(5)
        ));
        match read_file_at(fd.as_fd(), "file", None).unwrap() {
            ReadOutcome::Bytes(bytes) => assert_eq!(bytes, b"bytes"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_file_at(fd.as_fd(), "absent", None).unwrap(),
            ReadOutcome::Missing
        ));
        let err = open_dir_at(fd.as_fd(), "link").unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
            "{err}"
        );
        let mut names: Vec<_> = list_dir(fd.as_fd())
            .unwrap()
            .into_iter()
            .map(|e| {
                let kind = entry_kind(fd.as_fd(), &e).unwrap();
                (e.name.into_string().unwrap(), kind)
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            names,
            [
                ("dir".to_string(), FileKind::Directory),
                ("fifo".to_string(), FileKind::Fifo),
                ("file".to_string(), FileKind::Regular),
                ("link".to_string(), FileKind::Symlink),
                ("socket".to_string(), FileKind::Socket),
            ]
        );
    }
}
