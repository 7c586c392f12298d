//! The ocistore conformance suite against a repository of the real `docker-registry`
//! (distribution 2.8), each check on a registry of its own. Where docker-registry is not
//! installed (and `OCISTORE_REQUIRE_INTEROP` is not `1`), the checks run against the test
//! double of ocistore-test-registry instead, after saying so.
//!
//! Every check runs; the capabilities (`common::distribution`) say where a registry differs
//! from a layout, and the checks assert the registry's behaviour there.

mod common;

store_core::conformance_tests!(
    || async { common::registry_or_double("conformance/repo") },
    capabilities = common::registry_capabilities()
);
