#!/bin/sh
# Rebuild the Node worker host bundle (js/dist/host.js, committed) from js/src/.
set -e
cd "$(dirname "$0")/../../.."
node_modules/.bin/esbuild plugins/runtime_node/js/src/main.js --bundle --platform=node --format=iife \
  --global-name=__noslateHost --target=node20 --banner:js='"use strict";' --legal-comments=none \
  --outfile=plugins/runtime_node/js/dist/host.js
