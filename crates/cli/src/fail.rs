//! What a command that fails reports: one line and an exit status.

use ocistore::ErrorKind;

/// Exit status of a failure that is not a usage error.
pub const EXIT_ERROR: u8 = 1;
/// Exit status of a usage error (bad arguments or location), as clap's own.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of `fsck` when the layout has problems.
pub const EXIT_FSCK_PROBLEMS: u8 = 3;
/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// A failed command: the line printed after `error: ` and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// What failed and why, with a hint where one helps; one line.
    pub message: String,
    /// The exit status.
    pub status: u8,
}

impl Failure {
    /// A failure with exit status 1.
    pub fn error(message: impl Into<String>) -> Failure {
        Failure {
            message: one_line(message.into()),
            status: EXIT_ERROR,
        }
    }

    /// A usage failure (exit status 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: one_line(message.into()),
            status: EXIT_USAGE,
        }
    }

    /// A library error met while doing `what`, with a hint for the kinds where one helps;
    /// `credentials` says which credentials were tried, for a refusal.
    pub fn store(what: &str, err: ocistore::Error, credentials: Option<&str>) -> Failure {
        let hint = match err.kind() {
            ErrorKind::Unauthorized | ErrorKind::Denied => match credentials {
                Some(tried) => format!(" (credentials tried: {tried}; give others with --creds USER:PASS or --authfile FILE)"),
                None => String::new(),
            },
            ErrorKind::Mismatch => " (the content is corrupt; `ocistore fsck oci:PATH` lists what else is)".into(),
            ErrorKind::Backend if err.to_string().contains("https://") => {
                " (if the registry speaks plain HTTP, add --plain-http)".into()
            }
            ErrorKind::TooManyRequests => " (the registry asks to slow down; try again later or with a lower --concurrency)".into(),
            _ => String::new(),
        };
        Failure::error(format!("{what}: {err}{hint}"))
    }
}

/// Newlines in a library message would break the one-line promise.
fn one_line(s: String) -> String {
    if s.contains('\n') {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        s
    }
}

/// `Result` of a command.
pub type CliResult<T> = Result<T, Failure>;
