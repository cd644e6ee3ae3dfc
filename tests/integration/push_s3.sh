#!/usr/bin/env bash
# push_s3.sh - push.sh on S3 storage (Swift with s3api): upload sessions,
# chunks, pushed manifests and tags live in the bucket.
PUSH_STORAGE=s3 exec "$(dirname "$0")/push.sh"
