#!/usr/bin/env node
// Entry point for `thinlayer` (npm bin) and for the build commands Pulumi runs. Runs the compiled
// CLI in build/ (`npm run build`, run by `npm ci` through `prepare`) when it is up to date
// (bin/fresh.js). Otherwise (never built, or a source edited since) it loads the TypeScript
// through tsx, so stale code never runs.
"use strict";
const path = require("node:path");
const { compiledIsFresh } = require("./fresh");

const root = path.join(__dirname, "..");
if (compiledIsFresh(root)) {
    require("./codecache").runCached(path.join(root, "build", "bin", "thinlayer.js"), process.argv[2]);
} else {
    require("tsx/cjs");
    require("./thinlayer.ts");
}
