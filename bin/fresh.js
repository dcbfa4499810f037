// Whether the compiled copy in build/ (scripts/build.mjs; `npm ci` runs it through `prepare`) may
// run instead of the TypeScript: build/.stamp (the time the build STARTED) is newer than every
// source it was built from and than the compiler options. One stat per source file (~100 files,
// about a millisecond). Used by the CLI entry (bin/thinlayer.js) and the program entry
// (bin/program.js), so neither ever runs stale code. THINLAYER_NO_BUILD=1 forces the TypeScript.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

/** What the build compiles (tsconfig.build.json `include`): directories, and single files. */
const SOURCE_DIRS = ["bin", "cli", "lib", "components"];
const SOURCE_FILES = ["index.ts", "config.ts", "tsconfig.json", "tsconfig.build.json"];

function newerThan(dir, since) {
    let entries;
    try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
        return false;
    }
    for (const e of entries) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
            if (newerThan(p, since)) return true;
        } else if (e.name.endsWith(".ts") && fs.statSync(p).mtimeMs > since) {
            return true;
        }
    }
    return false;
}

/** True when `root`/build holds an up-to-date compile of root's sources. */
function compiledIsFresh(root) {
    if (process.env.THINLAYER_NO_BUILD === "1") return false;
    let since;
    try {
        since = fs.statSync(path.join(root, "build", ".stamp")).mtimeMs;
    } catch {
        return false;
    }
    for (const f of SOURCE_FILES) {
        try {
            if (fs.statSync(path.join(root, f)).mtimeMs > since) return false;
        } catch {
            // absent: nothing to compare
        }
    }
    return !SOURCE_DIRS.some((d) => newerThan(path.join(root, d), since));
}

// The watched lists are exported for the test that keeps them in step with tsconfig.build.json.
module.exports = { compiledIsFresh, SOURCE_DIRS, SOURCE_FILES };
