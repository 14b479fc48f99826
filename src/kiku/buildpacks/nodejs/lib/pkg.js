// Read package.json for bin/compile and bin/release.
//   node pkg.js FILE validate            exit 1 with the parse error on stderr if invalid
//   node pkg.js FILE get a.b.c           print a string/number field ("" if absent)
//   node pkg.js FILE has-script NAME     exit 0 if scripts[NAME] is a non-empty string
//   node pkg.js FILE lines a.b           print each item of an array field on its own line
"use strict";
const fs = require("fs");
const [file, cmd, arg] = process.argv.slice(2);

let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(file, "utf8"));
} catch (e) {
  if (cmd === "validate") {
    process.stderr.write(String(e.message) + "\n");
    process.exit(1);
  }
  pkg = {};
}
if (pkg === null || typeof pkg !== "object" || Array.isArray(pkg)) {
  if (cmd === "validate") {
    process.stderr.write("package.json must contain a JSON object\n");
    process.exit(1);
  }
  pkg = {};
}

function lookup(path) {
  let v = pkg;
  for (const k of path.split(".")) {
    if (v === null || typeof v !== "object" || !(k in v)) return undefined;
    v = v[k];
  }
  return v;
}

switch (cmd) {
  case "validate":
    break;
  case "get": {
    const v = lookup(arg);
    if (typeof v === "string" || typeof v === "number") console.log(String(v).trim());
    break;
  }
  case "has-script": {
    const s = pkg.scripts && pkg.scripts[arg];
    process.exit(typeof s === "string" && s.trim() ? 0 : 1);
  }
  case "lines": {
    const v = lookup(arg);
    if (Array.isArray(v)) for (const x of v) if (typeof x === "string") console.log(x);
    break;
  }
  default:
    process.stderr.write(`pkg.js: unknown command ${cmd}\n`);
    process.exit(2);
}
