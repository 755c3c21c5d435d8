// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// Validates a speedscope file against the JSON schema that the speedscope npm
// package ships (dist/release/file-format-schema.json).  Exit 0 when valid.
"use strict";
const fs = require("fs");
const Ajv = require("ajv");
const schema = require("speedscope/dist/release/file-format-schema.json");

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
const doc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
if (!validate(doc)) {
  console.error(JSON.stringify(validate.errors, null, 1));
  process.exit(1);
}
console.log(`valid: ${doc.profiles.length} profiles, ${doc.shared.frames.length} frames`);
