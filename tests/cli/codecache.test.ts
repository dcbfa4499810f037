// bin/codecache.js: the bundled CLI compiled with V8's code cache of an earlier run (Node 20), or
// Node's own compile cache (22.1+). Real processes, a real cache directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as Module from "node:module";
import * as path from "node:path";
import { tempDir } from "../helpers/images";

const CODECACHE = path.resolve(__dirname, "../../bin/codecache.js");
const builtin = typeof (Module as { enableCompileCache?: unknown }).enableCompileCache === "function";

/** Runs `bundle` (build/bin/x.js under `root`) as the CLI entry runs the bundle: its stdout, and the cache state. */
function run(root: string, env: NodeJS.ProcessEnv = {}): { out: string; last?: { name: string; used: boolean } } {
    const script = `const c = require(${JSON.stringify(CODECACHE)}); c.runCached(${JSON.stringify(path.join(root, "build", "bin", "x.js"))}, "ensure"); process.on("exit", () => process.stderr.write(JSON.stringify(c.state.last ?? null)));`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout, last: JSON.parse(r.stderr || "null") ?? undefined };
}

function bundle(root: string, text: string): void {
    fs.mkdirSync(path.join(root, "build", "bin"), { recursive: true });
    fs.writeFileSync(
        path.join(root, "build", "bin", "x.js"),
        `function f() { return ${JSON.stringify(text)}; }\nprocess.stdout.write(f() + " " + typeof require + " " + __filename);\n`,
    );
}

test(
    "a first run writes the cache, the next compiles from it; a rebuilt bundle of the same length never meets the old code",
    { skip: builtin && "Node's own compile cache (module.enableCompileCache) is used here" },
    () => {
        const root = tempDir();
        bundle(root, "one");
        const file = path.join(root, "build", "bin", "x.js");
        const a = run(root);
        assert.equal(a.out, `one function ${file}`);
        assert.equal(a.last?.used, false);
        const cacheDir = path.join(root, "build", ".v8cache");
        assert.deepEqual(fs.readdirSync(cacheDir), [a.last?.name], "written at exit, by its name");
        const b = run(root);
        assert.deepEqual([b.out, b.last], [a.out, { name: a.last?.name, used: true }]);
        // Same length, other code (V8 alone would accept the old cache): another name, the new output.
        bundle(root, "two");
        const c = run(root);
        assert.equal(c.out, `two function ${file}`);
        assert.notEqual(c.last?.name, a.last?.name);
        assert.equal(c.last?.used, false);
        assert.deepEqual(fs.readdirSync(cacheDir), [c.last?.name], "the old bundle's cache was dropped");
    },
);

test(
    "a damaged cache is rejected and rewritten; an unwritable cache directory or THINLAYER_CODE_CACHE=0 only costs the compile",
    { skip: builtin && "Node's own compile cache is used here" },
    () => {
        const root = tempDir();
        bundle(root, "ok");
        const first = run(root);
        const cached = path.join(root, "build", ".v8cache", first.last?.name as string);
        fs.writeFileSync(cached, Buffer.alloc(fs.statSync(cached).size, 7));
        const damaged = run(root);
        assert.deepEqual([damaged.out, damaged.last?.used], [first.out, false]);
        assert.equal(run(root).last?.used, true, "rewritten after the rejection");
        // A file where the directory should be: nothing can be written, the run still works.
        const other = tempDir();
        bundle(other, "ro");
        fs.writeFileSync(path.join(other, "build", ".v8cache"), "not a directory");
        assert.equal(run(other).out.startsWith("ro "), true);
        const off = tempDir();
        bundle(off, "off");
        const r = run(off, { THINLAYER_CODE_CACHE: "0" });
        assert.equal(r.out.startsWith("off "), true);
        assert.equal(r.last, undefined);
        assert.equal(fs.existsSync(path.join(off, "build", ".v8cache")), false);
    },
);
