// Semver helpers, using the semver package bundled with npm when it can be found.
//   node semver.js NPM_DIR valid-range RANGE          exit 1 if RANGE is not a valid range
//   node semver.js NPM_DIR max-satisfying RANGE V...  print the highest V satisfying RANGE
"use strict";
const [npmDir, cmd, range, ...versions] = process.argv.slice(2);

let semver = null;
try {
  semver = require(require("path").join(npmDir, "node_modules", "semver"));
} catch (e) {
  semver = null;
}

// Fallback without npm's semver: "20", "20.x", ">=18", "^20.1.0", "~20.1", exact versions.
function fallbackSatisfies(v, r) {
  const [maj, min, pat] = v.replace(/^v/, "").split(".").map(Number);
  const m = r.trim().match(/^(>=|\^|~)?\s*v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/);
  if (!m) return null;
  const want = [m[2], m[3], m[4]].map((x) => (x === undefined || x === "x" || x === "*" ? null : Number(x)));
  if (m[1] === ">=") {
    const have = [maj, min, pat];
    for (let i = 0; i < 3; i++) {
      if (want[i] === null) return true;
      if (have[i] !== want[i]) return have[i] > want[i];
    }
    return true;
  }
  if (maj !== want[0]) return false;
  if (m[1] === "^") return want[1] === null || min > want[1] || (min === want[1] && (want[2] === null || pat >= want[2]));
  if (want[1] !== null && min !== want[1]) return false;
  if (m[1] === "~") return want[2] === null || pat >= want[2];
  return want[2] === null || pat === want[2];
}

function satisfies(v, r) {
  if (semver) return semver.satisfies(v, r);
  return fallbackSatisfies(v, r) === true;
}

switch (cmd) {
  case "valid-range":
    if (semver) process.exit(semver.validRange(range) === null ? 1 : 0);
    process.exit(fallbackSatisfies("0.0.0", range) === null ? 1 : 0);
  case "max-satisfying": {
    const ok = versions.filter((v) => satisfies(v.replace(/^v/, ""), range));
    if (!ok.length) process.exit(1);
    ok.sort((a, b) => {
      const pa = a.replace(/^v/, "").split(".").map(Number);
      const pb = b.replace(/^v/, "").split(".").map(Number);
      for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pb[i] - pa[i];
      return 0;
    });
    console.log(ok[0]);
    break;
  }
  default:
    process.stderr.write(`semver.js: unknown command ${cmd}\n`);
    process.exit(2);
}
