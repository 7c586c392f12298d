#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ (named by their
# sha1, as libFuzzer names what it finds), mostly from the layouts in tests/fixtures. Run it
# before a fuzz run on a fresh corpus; `cargo fuzz cmin` then keeps the seeds that add coverage.
set -euo pipefail

cd "$(dirname "$0")"
fixtures=../tests/fixtures
corpus=corpus

# seed TARGET: stdin becomes one input of TARGET.
seed() {
    local dir=$corpus/$1 tmp
    mkdir -p "$dir"
    tmp=$(mktemp)
    cat >"$tmp"
    mv "$tmp" "$dir/$(sha1sum "$tmp" | cut -c1-40)"
}

# index: each fixture's index.json alone, and pairs and triples joined by NUL (base, ours,
# theirs of a merge).
indexes=()
while IFS= read -r -d '' file; do indexes+=("$file"); done \
    < <(find "$fixtures" -name index.json -print0 | sort -z)
for file in "${indexes[@]}"; do seed index <"$file"; done
for ((i = 0; i + 2 < ${#indexes[@]}; i++)); do
    { cat "${indexes[i]}"; printf '\0'; cat "${indexes[i+1]}"; printf '\0'; cat "${indexes[i+2]}"; } | seed index
done
{ cat "$fixtures/handmade/index.json"; printf '\0'; cat "$fixtures/edge/dup-tag/index.json"; } | seed index

# successors: every JSON blob under each media-type selector (first byte 0..5).
while IFS= read -r -d '' blob; do
    head -c1 "$blob" | grep -q '{' || continue
    for selector in 0 1 2 3 4 5; do
        { printf "\\x0$selector"; cat "$blob"; } | seed successors
    done
done < <(find "$fixtures" -path '*/blobs/*' -type f -size -16k -print0 | sort -z)

# digest: digests of each algorithm and the descriptors index.json lists.
for name in sha256 sha384 sha512; do
    printf '%s:%s' "$name" "$(printf fuzz | "${name}sum" | cut -d' ' -f1)" | seed digest
done
printf 'sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855' | seed digest
printf 'md5:d41d8cd98f00b204e9800998ecf8427e' | seed digest
jq -c '.manifests[]?' "$fixtures/handmade-exotic/index.json" "$fixtures/handmade/index.json" |
    while IFS= read -r line; do printf '%s' "$line" | seed digest; done

# reference: references as users type them, and image-spec ref.name tags.
for text in alpine library/alpine:3.19 docker.io/alpine index.docker.io/library/alpine:latest \
    localhost/a/b:v1 localhost:5000/repo@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 \
    '[::1]:5000/a/b:c' 127.0.0.1:5000/x/y:z@sha512:$(printf x | sha512sum | cut -d' ' -f1) \
    ghcr.io/o/r--x__y.z:1.0-rc_1 example.com/kit/exotic:1.0 v1.0.0-rc.1_x 'a--b/c+d@e:f' 'A/B'; do
    printf '%s' "$text" | seed reference
done

# readonly_tar and archive_import: tars of the fixture layouts (the import also compressed).
for layout in handmade handmade-exotic umoci edge/empty edge/null-manifests edge/skopeo-index-only; do
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$fixtures/$layout" -cf - . |
        tee >(seed readonly_tar) | seed archive_import
done
tar --sort=name --mtime=@0 -C "$fixtures/handmade" -cf - . | gzip -n | seed archive_import
tar --sort=name --mtime=@0 -C "$fixtures/umoci" -cf - . | zstd -q | seed archive_import

# remote_headers: challenges (even first byte) and Link headers (odd first byte).
for header in 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"' \
    'Basic realm="registry"' 'bearer realm=https://x/t, service=r' \
    'Bearer realm="a\"b",error="insufficient_scope", Basic realm="x"' 'Negotiate abc=='; do
    printf '\0%s' "$header" | seed remote_headers
done
for header in '</v2/_catalog?last=b&n=2>; rel="next"' \
    '<https://registry.example/v2/library/alpine/tags/list?last=3&n=2>; rel="next"' \
    '<http://127.0.0.1:5000/v2/x>; rel=prev, </v2/y?n=1>; rel="next first"' \
    '<https://evil.example/v2/x>; rel="next"'; do
    printf '\1%s' "$header" | seed remote_headers
    printf '\3%s' "$header" | seed remote_headers
done

# remote_bodies: distribution error bodies and token responses.
for body in '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}' \
    '{"errors":[{"code":"DENIED"},{"code":"UNAUTHORIZED","message":"a\u0007b"}]}' \
    '{"token":"abc","expires_in":300,"issued_at":"2024-01-01T00:00:00Z"}' \
    '{"access_token":"xyz","refresh_token":"r","expires_in":0}' '{"token":""}' 'not json'; do
    printf '%s' "$body" | seed remote_bodies
done
