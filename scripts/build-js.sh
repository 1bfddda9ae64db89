#!/bin/sh
# Build the runtime_v8 JavaScript bundle (plugins/runtime_v8/js/dist/runtime.js) with
# esbuild from the repo's node_modules. Runs `npm ci` first when node_modules is missing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if [ ! -x node_modules/.bin/esbuild ]; then
  npm ci --no-audit --no-fund
fi
OUT=plugins/runtime_v8/js/dist/runtime.js
GEN=plugins/runtime_v8/js/build
mkdir -p "$(dirname "$OUT")" "$GEN"
# UTS-46 (tr46) is embedded as a string and compiled only when a host name needs it:
# parsing its tables costs tens of milliseconds at every context start otherwise.
node_modules/.bin/esbuild node_modules/tr46/index.js --bundle --format=iife --global-name=__tr46 \
  --platform=neutral --main-fields=module,main --minify --legal-comments=none --log-level=warning \
  --outfile="$GEN/tr46.iife.js"
node -e 'const fs=require("fs");const [src,dst]=process.argv.slice(1);fs.writeFileSync(dst,"module.exports = "+JSON.stringify(fs.readFileSync(src,"utf8")+";return __tr46;")+";\n")' \
  "$GEN/tr46.iife.js" "$GEN/tr46-source.cjs"
node_modules/.bin/esbuild plugins/runtime_v8/js/src/index.js \
  --bundle --format=iife --platform=neutral --target=es2022 \
  --main-fields=module,main --conditions=worker,browser \
  --alias:@exodus/bytes/encoding.js=@exodus/bytes/encoding-lite.js \
  --alias:tr46=./plugins/runtime_v8/js/src/tr46-lazy.cjs \
  --banner:js='"use strict";' \
  --minify-whitespace --minify-syntax --keep-names --legal-comments=none --charset=utf8 \
  --log-level=warning --outfile="$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "built $OUT ($(wc -c < "$OUT") bytes)"
