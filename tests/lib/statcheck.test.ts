/**
 * The warm-run signature check: the native accelerator (native/statcheck) and the fs.lstatSync
 * fallback must give the same answer on real files, for every kind of change.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { checkSignatures, statcheckImpl, SIGNATURE_FIELDS } from "../../lib/hashing/statcheck";
import { fileSignature } from "../../lib/context/lookups";
import { makeTree } from "./inputs.fixtures";

/** Locally a missing build skips these tests with the reason; under CI=true it fails them. */
function needNative(t: TestContext): boolean {
    const { impl, reason } = statcheckImpl();
    if (impl === "native") return true;
    const msg = `thinlayer-statcheck is not loaded (${reason ?? "?"}); npm ci builds it with node-gyp (python3, make, a C compiler)`;
    if (process.env.CI === "true") throw new Error(`${msg}; CI=true, so this is a failure, not a skip`);
    t.skip(msg);
    return false;
}

/** Records the signatures of `rels` under `root` as the snapshot stores them. */
function record(root: string, rels: string[]): { paths: Buffer; expected: Float64Array } {
    const expected = new Float64Array(rels.length * SIGNATURE_FIELDS);
    rels.forEach((rel, i) => expected.set(fileSignature(fs.lstatSync(path.join(root, rel))), i * SIGNATURE_FIELDS));
    return { paths: Buffer.from(rels.join("\0"), "utf8"), expected };
}

const both = (root: string, r: { paths: Buffer; expected: Float64Array }) => ({
    native: checkSignatures(root, r.paths, r.expected, "native"),
    js: checkSignatures(root, r.paths, r.expected, "js"),
});

void test("native and JS checks agree: unchanged files match; each kind of change is caught at its index", async (t) => {
    if (!needNative(t)) return;
    const names = ["a.txt", "sub/b.txt", "sub/deeper/c.txt", "ünïcode ✓.txt", "link", "exec.sh", "gone.txt", "swap.txt"];
    const root = makeTree({
        "a.txt": "aaaa",
        "sub/b.txt": "bbbb",
        "sub/deeper/c.txt": "cccc",
        "ünïcode ✓.txt": "uuuu",
        link: { symlink: "a.txt" },
        "exec.sh": "#!/bin/sh\n",
        "gone.txt": "x",
        "swap.txt": "ssss",
    });
    await sleep(20);
    const rec = record(root, names);
    assert.deepEqual(both(root, rec), { native: names.length, js: names.length });

    // Each change, applied on its own to a fresh copy of the recorded state.
    const changes: [string, (f: string) => void][] = [
        ["a.txt", (f) => fs.writeFileSync(f, "AAAA")], // same size
        [
            "a.txt",
            (f) => {
                const { atime, mtime } = fs.statSync(f);
                fs.writeFileSync(f, "zzzz");
                fs.utimesSync(f, atime, mtime); // same size and mtime: only ctime tells
            },
        ],
        ["sub/deeper/c.txt", (f) => fs.appendFileSync(f, "!")],
        ["ünïcode ✓.txt", (f) => fs.chmodSync(f, 0o600)], // mode bits other than exec still move ctime and mode
        [
            "link",
            (f) => {
                fs.rmSync(f);
                fs.symlinkSync("sub/b.txt", f);
            },
        ],
        ["exec.sh", (f) => fs.chmodSync(f, 0o755)],
        ["gone.txt", (f) => fs.rmSync(f)],
        [
            "swap.txt",
            (f) => {
                fs.writeFileSync(`${f}.new`, "ssss");
                fs.renameSync(`${f}.new`, f); // same content, new inode
            },
        ],
    ];
    for (const [k, [name, change]] of changes.entries()) {
        const dir = `${root}-${k}`;
        fs.cpSync(root, dir, { recursive: true, verbatimSymlinks: true });
        await sleep(20);
        const r = record(dir, names);
        assert.deepEqual(both(dir, r), { native: names.length, js: names.length }, "the copy matches its own record");
        change(path.join(dir, name));
        assert.deepEqual(both(dir, r), { native: names.indexOf(name), js: names.indexOf(name) }, `after changing ${name}`);
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

void test("native check across its threads: the first mismatch wins, whichever range it is in", async (t) => {
    if (!needNative(t)) return;
    const tree: Record<string, string> = {};
    const names: string[] = [];
    for (let i = 0; i < 9000; i++) {
        const name = `d${i % 7}/f${String(i).padStart(5, "0")}`;
        tree[name] = String(i);
        names.push(name);
    }
    const root = makeTree(tree);
    await sleep(20);
    const rec = record(root, names);
    assert.deepEqual(both(root, rec), { native: 9000, js: 9000 });
    fs.writeFileSync(path.join(root, names[8500]), "changed late");
    assert.deepEqual(both(root, rec), { native: 8500, js: 8500 });
    fs.writeFileSync(path.join(root, names[100]), "changed early");
    assert.deepEqual(both(root, rec), { native: 100, js: 100 });
});

void test("malformed input: fewer paths than signatures is a mismatch, bad argument types throw", async (t) => {
    if (!needNative(t)) return;
    const root = makeTree({ "a.txt": "a", "b.txt": "b" });
    await sleep(20);
    const rec = record(root, ["a.txt", "b.txt"]);
    const onePath = Buffer.from("a.txt");
    assert.equal(checkSignatures(root, onePath, rec.expected, "native"), 1);
    assert.equal(checkSignatures(root, onePath, rec.expected, "js"), 1);
    assert.equal(checkSignatures(root, rec.paths, new Float64Array(0), "native"), 0);
    // A root longer than PATH_MAX, and a path that is not a directory's child: mismatches, never a crash or a throw.
    const longRoot = `/${"a".repeat(6000)}`;
    assert.equal(checkSignatures(longRoot, rec.paths, rec.expected, "native"), 0);
    assert.equal(checkSignatures(longRoot, rec.paths, rec.expected, "js"), 0);
    const underFile = Buffer.from("a.txt/x\0b.txt");
    assert.equal(checkSignatures(root, underFile, rec.expected, "native"), 0);
    assert.equal(checkSignatures(root, underFile, rec.expected, "js"), 0);
    const { createRequire } = await import("node:module");
    const native = createRequire(__filename)("thinlayer-statcheck") as { check: (...a: unknown[]) => number };
    assert.throws(() => native.check("not a buffer", rec.paths, rec.expected), /root must be a Buffer/);
    assert.throws(() => native.check(Buffer.from(root + "/"), rec.paths, new Float64Array(5)), /6 numbers per path/);
    assert.throws(() => native.check(Buffer.from(root + "/"), rec.paths), /takes 3 arguments/);
});

void test("THINLAYER_NATIVE=0 selects the fs.lstatSync check", () => {
    const saved = process.env.THINLAYER_NATIVE;
    process.env.THINLAYER_NATIVE = "0";
    try {
        assert.deepEqual(statcheckImpl(), { impl: "js", reason: "THINLAYER_NATIVE=0" });
    } finally {
        if (saved === undefined) delete process.env.THINLAYER_NATIVE;
        else process.env.THINLAYER_NATIVE = saved;
    }
});
