# cache.sh - what the tests of the size bound, the cache command and the
# admin API share: pulling a one-layer image through nginx, and where the
# cache keeps a blob.
# shellcheck shell=bash disable=SC2154 # T, CACHE: set by common.sh and mirror.sh

# pull_image NS NAME [QUERY]: the manifest of test/NAME:v1 (in namespace NS, or
# the default namespace when NS is empty) and the config and first layer it
# names, through nginx; each blob must hash to its digest. The manifest is
# left in $T/NAME.json, its first layer's digest in LAYER. A QUERY gives the
# manifest another key in nginx's cache, so that the responder answers it.
# A miss is committed just after its last byte is sent: unless COMMIT_WAIT
# is "no" (S3, a full disk), it waits (bounded) for the blobs' files.
pull_image() {
	local base=/v2/${1:+$1/}test/$2 d
	mirror_curl "$base/manifests/v1${3:+?$3}" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-o "$T/$2.json" || return 1
	LAYER=$(json_get "$T/$2.json" layers 0 digest) || return 1
	for d in "$(json_get "$T/$2.json" config digest)" "$LAYER"; do
		mirror_curl "$base/blobs/$d" --max-time 60 -o "$T/blob" || return 1
		[ "$(sha256_of "$T/blob")" = "$d" ] || return 1
		[ "${COMMIT_WAIT:-yes}" = no ] || wait_until 10 test -e "$(blob_file "$d")" || return 1
	done
}

# age_image NAME EPOCH: the cached manifest, config and layer of test/NAME (as
# pulled by pull_image) last used at EPOCH. Pulls here come within a second of
# each other, and storage times have one-second resolution: without this, the
# least recently used of them is a tie, broken by key.
age_image() {
	local d
	for d in "$(sha256_of "$T/$1.json")" "$(json_get "$T/$1.json" config digest)" \
		"$(json_get "$T/$1.json" layers 0 digest)"; do
		[ ! -e "$(blob_file "$d")" ] || touch -m -d "@$2" "$(blob_file "$d")"
	done
}

# blob_file DIGEST: where the filesystem cache keeps a blob.
blob_file() {
	echo "$CACHE/blobs/sha256/${1:7:2}/${1:7}"
}
