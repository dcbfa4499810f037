// The Pulumi program's entry (Pulumi.yaml `main`). Exports index.ts's program: the compiled copy in
// build/ when it is up to date (bin/fresh.js), which spares every preview and up the TypeScript
// compile of the program (about a second); otherwise index.ts through ts-node without
// type-checking (tsconfig.pulumi.json), as Pulumi's own TypeScript support would load it. Either
// way the same program runs; `npm run typecheck` is the type check.
"use strict";
const path = require("node:path");
const { compiledIsFresh } = require("./fresh");

const root = path.join(__dirname, "..");
if (compiledIsFresh(root)) {
    module.exports = require("../build/index.js");
} else {
    let tsNode;
    try {
        tsNode = require("ts-node");
    } catch {
        throw new Error(
            "thinlayer: build/ holds no up-to-date compiled program and ts-node is not installed, so index.ts cannot load. Fix: run `npm ci` in the project (it installs the devDependencies and builds build/), or `npm run build`.",
        );
    }
    tsNode.register({ project: path.join(root, "tsconfig.pulumi.json"), transpileOnly: true });
    module.exports = require("../index.ts");
}
