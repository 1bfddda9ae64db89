#!/bin/sh
# Rebuild the Node worker host bundle (js/dist/host.js, committed) from js/src/ and
# runtime_v8's Web API layer (plugins/runtime_v8/js/src, imported read-only), with the
# same resolution options scripts/build-js.sh uses for runtime_v8's bundle.
# Usage: build.sh [OUTFILE]   (default: plugins/runtime_node/js/dist/host.js)
set -e
cd "$(dirname "$0")/../../.."
OUT=${1:-plugins/runtime_node/js/dist/host.js}
node_modules/.bin/esbuild plugins/runtime_node/js/src/main.js --bundle --format=iife \
  --global-name=__noslateHost --platform=neutral --target=es2022 \
  --main-fields=module,main --conditions=worker,browser --external:node:* \
  --alias:@exodus/bytes/encoding.js=@exodus/bytes/encoding-lite.js \
  --alias:tr46=./plugins/runtime_v8/js/src/tr46-lazy.cjs \
  --banner:js='"use strict";' --minify-whitespace --minify-syntax --keep-names \
  --legal-comments=none --charset=utf8 --log-level=warning \
  --outfile="$OUT"
