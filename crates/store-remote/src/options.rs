//! How a [`crate::Client`] talks to registries: transport, limits, retries.

use std::time::Duration;

/// Options of a [`crate::Client`]; `Default` gives sensible values, and the fields are public
/// so that callers write `ClientOptions { plain_http: true, ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Use `http://` for every host. Without it, `localhost`, `127.0.0.1` and `[::1]` still use
    /// plain HTTP (as oras and skopeo allow); every other host uses HTTPS.
    pub plain_http: bool,
    /// The time allowed to open a connection.
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of a response (a stalled transfer fails after it).
    pub read_timeout: Duration,
    /// How many times a request that is safe to repeat (a token request included) is retried
    /// after a 429, a 5xx or a dropped connection.
    pub retries: u32,
    /// The first backoff; each retry doubles it (with jitter).
    pub backoff_base: Duration,
    /// The longest single wait between retries, including one asked for by `Retry-After`.
    pub backoff_max: Duration,
    /// The largest manifest (or token response, or referrers page) read into memory.
    pub max_metadata_bytes: u64,
    /// Blobs of at most this size whose size is known are uploaded in one `PUT`; larger ones
    /// in `PATCH` chunks.
    pub monolithic_limit: u64,
    /// The size of one `PATCH` chunk (raised to the registry's `OCI-Chunk-Min-Length`).
    pub chunk_size: u64,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// The default limit of a manifest body read into memory: 4 MiB, as oras-go.
pub const DEFAULT_MAX_METADATA_BYTES: u64 = 4 << 20;

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            plain_http: false,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            retries: 4,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            monolithic_limit: 16 << 20,
            chunk_size: 16 << 20,
            user_agent: format!("ocistore/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl ClientOptions {
    /// The URL scheme for `host`: `http` when asked for or for a loopback name, else `https`.
    pub fn scheme_for(&self, host: &str) -> &'static str {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !port.contains(']') => name,
            _ => host,
        };
        if self.plain_http || matches!(name, "localhost" | "127.0.0.1" | "[::1]") {
            "http"
        } else {
            "https"
        }
    }

    /// The wait before retry number `attempt` (0-based): `backoff_base * 2^attempt` with up to
    /// 50 % jitter, or what `Retry-After` asked for, never above `backoff_max`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let wait = match retry_after {
            Some(asked) => asked,
            None => {
                let exp = self.backoff_base.saturating_mul(1u32 << attempt.min(16));
                // Jitter from the clock's low bits: no RNG dependency, good enough to spread
                // clients that failed together.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                exp + exp.mul_f64(f64::from(nanos % 500) / 1000.0)
            }
        };
        wait.min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_plain_http_others_https() {
        let o = ClientOptions::default();
        assert_eq!(o.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(o.scheme_for("localhost"), "http");
        assert_eq!(o.scheme_for("[::1]:5000"), "http");
        assert_eq!(o.scheme_for("registry-1.docker.io"), "https");
        assert_eq!(o.scheme_for("localhost.evil.example"), "https");
        let plain = ClientOptions {
            plain_http: true,
            ..Default::default()
        };
        assert_eq!(plain.scheme_for("r.example:80"), "http");
        assert!(o.user_agent.starts_with("ocistore/"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let o = ClientOptions {
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..Default::default()
        };
        let first = o.backoff(0, None);
        assert!(first >= Duration::from_millis(10) && first < Duration::from_millis(16));
        let third = o.backoff(2, None);
        assert!(third >= Duration::from_millis(40) && third < Duration::from_millis(61));
        assert_eq!(o.backoff(10, None), Duration::from_millis(100));
        assert_eq!(
            o.backoff(0, Some(Duration::from_secs(5))),
            Duration::from_millis(100)
        );
        assert_eq!(
            o.backoff(0, Some(Duration::from_millis(3))),
            Duration::from_millis(3)
        );
    }
}
