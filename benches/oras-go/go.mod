// The oras-go side of benches/scenarios.rs; see README.md. No code of these modules is kept
// here: the Go module proxy or local source trees (through replace directives that
// benches/compare.sh writes into a copy of this file) provide them.
module oras-go-bench

go 1.25.0

require (
	github.com/opencontainers/go-digest v1.0.0
	github.com/opencontainers/image-spec v1.1.1
	oras.land/oras-go/v2 v2.6.2
)

require golang.org/x/sync v0.22.0 // indirect
