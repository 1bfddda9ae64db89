"use strict";
// Runs a worker entry file without a snapshot: `node loader.cjs <fd> --fd 3 --init fd:4`.
// The entry is read from a descriptor (the state directory is not visible in a sandbox)
// and run as a script, so no eval-mode globals (`module`, built-in modules) appear.
const fs = require("node:fs");
const fd = Number(process.argv[2]);
const source = fs.readFileSync(fd, "utf8");
fs.closeSync(fd);
require("node:vm").runInThisContext(`(function (require) {${source}\n})`, { filename: "noslate:runtime" })(require);
