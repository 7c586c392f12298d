//! What the launcher's tests share: a plain HTTP client, digests and header reads.

#![allow(dead_code)]

use ocistore_test_registry::{FakeOptions, FakeRegistry};
use reqwest::{Client, Response};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A client that times out after 10 s and never follows a redirect (the tests look at them).
pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The sha256 digest of `bytes`, `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Header `name` of `response` as text.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// A test double with the default options.
pub fn double() -> FakeRegistry {
    FakeRegistry::start(FakeOptions::default()).unwrap()
}
