#!/usr/bin/env node
// Entry point for `thinlayer` (npm bin) and for the build commands Pulumi runs. Runs the compiled
// CLI in build/ (`npm run build`, run by `npm ci` through `prepare`) when it is up to date: no
// source under bin/, cli/ or lib/ newer than build/.stamp. Otherwise (never built, or a source edited
// since) it loads the TypeScript through tsx, as before, so stale code never runs.
// The check is one stat per source file (~50 files, well under a millisecond).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");

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

function compiledIsFresh() {
    if (process.env.THINLAYER_NO_BUILD === "1") return false;
    let since;
    try {
        since = fs.statSync(path.join(root, "build", ".stamp")).mtimeMs;
    } catch {
        return false;
    }
    // tsconfig*.json too: a change of compiler options is a change of the output.
    for (const f of ["tsconfig.json", "tsconfig.build.json"]) {
        try {
            if (fs.statSync(path.join(root, f)).mtimeMs > since) return false;
        } catch {
            // absent: nothing to compare
        }
    }
    return !["bin", "cli", "lib"].some((d) => newerThan(path.join(root, d), since));
}

if (compiledIsFresh()) {
    require("../build/bin/thinlayer.js");
} else {
    require("tsx/cjs");
    require("./thinlayer.ts");
}
