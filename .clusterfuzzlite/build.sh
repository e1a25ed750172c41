#!/bin/bash -eu
# Builds scopebus's fuzz targets into $OUT, with each target's seed corpus
# (ClusterFuzzLite / OSS-Fuzz conventions). Runs inside the OSS-Fuzz builder
# image, whose cargo wrapper adds the sanitizer flags; to try it locally
# without that image (any directory holding the checkout as `scopebus`):
#   SRC=/tmp/cflite OUT=/tmp/cflite-out SCOPEBUS_FUZZ_BUILD_FLAGS="--sanitizer none" \
#     bash .clusterfuzzlite/build.sh
cd "$SRC/scopebus/fuzz"
# shellcheck disable=SC2086 # the flags are words
cargo fuzz build -O ${SCOPEBUS_FUZZ_BUILD_FLAGS:-}
release=target/x86_64-unknown-linux-gnu/release
mkdir -p "$OUT"
for source in fuzz_targets/*.rs; do
  name=$(basename "${source%.rs}")
  cp "$release/$name" "$OUT/"
  if [ -d "corpus/$name" ] && [ -n "$(ls -A "corpus/$name")" ]; then
    (cd "corpus/$name" && zip -q -j "$OUT/${name}_seed_corpus.zip" ./*)
  fi
done
