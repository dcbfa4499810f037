// Runs the bundled CLI (one CommonJS file) with V8's code cache, so a run does not parse and
// compile the ~1 MB bundle afresh: Node 22.1+ has this built in (module.enableCompileCache),
// which is used when present; on Node 20 the bundle is compiled through vm.Script with the
// cached data of an earlier run of the same command. The cache lives in build/.v8cache/, named
// by the bundle's sha256, the command and the Node version (V8 itself only checks the source's
// length, so the name is what keeps a rebuilt bundle from meeting old code). It is written once,
// at the exit of a run that had none (or whose cache V8 rejected), with every function that run
// compiled. Best effort: an unwritable build/ or a damaged cache only costs the compile.
// THINLAYER_CODE_CACHE=0 turns it off.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");

/** The last runCached's cache file name and whether its code came from it (for tests). */
const state = { last: undefined };

function runCached(file, command) {
    if (process.env.THINLAYER_CODE_CACHE === "0") return require(file);
    if (typeof Module.enableCompileCache === "function") {
        Module.enableCompileCache(path.join(path.dirname(file), "..", ".v8cache"));
        return require(file);
    }
    const vm = require("node:vm");
    const { createHash } = require("node:crypto");
    const source = fs.readFileSync(file, "utf8");
    const dir = path.join(path.dirname(file), "..", ".v8cache");
    const key = createHash("sha256").update(source).digest("hex").slice(0, 16);
    const name = `${key}-${/^[a-z]+$/.test(command ?? "") ? command : "other"}-${process.version}.bin`;
    let cachedData;
    try {
        cachedData = fs.readFileSync(path.join(dir, name));
    } catch {
        cachedData = undefined;
    }
    const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
    const used = cachedData !== undefined && !script.cachedDataRejected;
    state.last = { name, used };
    if (!used) process.once("exit", () => save(dir, name, key, script));
    const m = new Module(file, module);
    m.filename = file;
    m.paths = Module._nodeModulePaths(path.dirname(file));
    m.loaded = true;
    script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file));
    return m.exports;
}

/** Writes the cache (by rename: a concurrent run reads a whole file or none) and drops other bundles' caches. */
function save(dir, name, key, script) {
    try {
        fs.mkdirSync(dir, { recursive: true });
        const tmp = path.join(dir, `${name}.${process.pid}.tmp`);
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, path.join(dir, name));
        for (const f of fs.readdirSync(dir)) if (!f.startsWith(key) && !f.endsWith(".tmp")) fs.rmSync(path.join(dir, f), { force: true });
    } catch {
        // A cache: the next run compiles again.
    }
}

module.exports = { runCached, state };
