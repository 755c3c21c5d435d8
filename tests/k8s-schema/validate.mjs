// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Validates Kubernetes manifests (YAML, several documents per file) against the
// Kubernetes API's OpenAPI schema, as compiled into kubernetes-models' validators
// (pinned by package-lock.json; offline after `npm ci`).  Every document must
// name an apiVersion/kind the package knows.  Exit 0 when all are valid, 1 with
// the schema errors otherwise, 64 on bad usage.
//
// usage: node validate.mjs FILE.yaml...
import fs from "node:fs";
import { parseAllDocuments } from "yaml";

// "apps/v1" + "DaemonSet" -> kubernetes-models/apps/v1/DaemonSet; core "v1" has no group.
async function modelFor(apiVersion, kind) {
  const path = `kubernetes-models/${apiVersion}/${kind}`;
  try {
    return (await import(path))[kind];
  } catch (e) {
    throw new Error(`unknown apiVersion/kind ${apiVersion} ${kind} (${path}: ${e.code || e.message})`);
  }
}

async function check(file) {
  const docs = parseAllDocuments(fs.readFileSync(file, "utf8"));
  let n = 0;
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: YAML: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    if (obj === null) continue;
    const Model = await modelFor(obj.apiVersion, obj.kind);
    // validate() throws with every violation of the schema (types, required, enums).
    try {
      new Model(obj).validate();
    } catch (e) {
      throw new Error(`${file}: ${obj.kind} ${obj.metadata?.name}: ${e.message}`);
    }
    console.log(`valid: ${file}: ${obj.apiVersion} ${obj.kind} ${obj.metadata?.name}`);
    n++;
  }
  if (n === 0) throw new Error(`${file}: no Kubernetes object in it`);
}

if (process.argv.length < 3) {
  console.error("usage: node validate.mjs FILE.yaml...");
  process.exit(64);
}
try {
  for (const f of process.argv.slice(2)) await check(f);
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
