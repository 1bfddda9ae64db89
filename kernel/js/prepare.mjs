// Deploy-time code preparation with esbuild (called by kernel/jsprepare.py for every JS runtime).
// stdin: {"code", "filename", "mode": "check" | "module", "loader"}
// stdout: {"ok": true, "code"} or {"ok": false, "errors": [{file, line, column, text}]}
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "..", "package.json"));
const esbuild = require("esbuild");

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));

function report(err) {
  const errors = (err.errors || []).map((e) => ({
    file: path.basename((e.location && e.location.file) || req.filename),
    line: e.location ? e.location.line : 0,
    column: e.location ? e.location.column + 1 : 0,
    text: e.text,
  }));
  if (errors.length === 0) errors.push({ file: req.filename, line: 0, column: 0, text: String(err.message || err) });
  process.stdout.write(JSON.stringify({ ok: false, errors }));
}

// An upload is one file: every import must stay inside it. esbuild never reads the host
// file system on a tenant's behalf (no `/etc/shadow`, no state directory, no /proc, no
// /dev/zero): each specifier is refused with an error naming it. `data:` URLs carry
// their content in the specifier and are allowed.
const confine = {
  name: "noslate-confine",
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      if (args.path.startsWith("data:")) return { path: args.path, namespace: "dataurl" };
      return {
        errors: [
          {
            text:
              `cannot import ${JSON.stringify(args.path)}: imports resolve only within the uploaded ` +
              "file (bundle dependencies into it before deploying)",
          },
        ],
      };
    });
  },
};

try {
  if (req.mode === "check") {
    await esbuild.transform(req.code, { loader: req.loader, sourcefile: req.filename, logLevel: "silent", format: undefined });
    process.stdout.write(JSON.stringify({ ok: true, code: req.code }));
  } else {
    const out = await esbuild.build({
      stdin: { contents: req.code, loader: req.loader, sourcefile: req.filename, resolveDir: "/nonexistent" },
      absWorkingDir: "/nonexistent",
      plugins: [confine],
      tsconfigRaw: {},
      bundle: true,
      write: false,
      format: "cjs",
      platform: "neutral",
      target: "es2022",
      logLevel: "silent",
      charset: "utf8",
      jsx: "transform",
    });
    process.stdout.write(JSON.stringify({ ok: true, code: out.outputFiles[0].text }));
  }
} catch (err) {
  report(err);
}
