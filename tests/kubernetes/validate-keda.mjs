// Validate KEDA objects (JSON lines on stdin) against KEDA's own schema, as published
// in npm @kubernetes-models/keda. Prints one line per object; exit 1 on any failure.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";

const KINDS = { ScaledObject };
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
let failed = 0;
for (const line of Buffer.concat(chunks).toString("utf8").split("\n").filter(Boolean)) {
  const obj = JSON.parse(line);
  const Kind = KINDS[obj.kind];
  try {
    if (!Kind) throw new Error(`no KEDA schema for kind ${obj.kind}`);
    new Kind(obj).validate();
    console.log(`ok ${obj.kind}/${obj.metadata.name}`);
  } catch (err) {
    failed++;
    console.log(`invalid ${obj.kind}/${obj.metadata && obj.metadata.name}: ${err.message}`);
  }
}
process.exit(failed ? 1 : 0);
