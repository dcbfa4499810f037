/**
 * Input snapshots (lib/hashing/snapshot.ts): a warm run reuses the last result only when nothing it
 * looked at changed. The model test applies random edits to a real tree and checks after each
 * that the cached result equals a fresh computation without any cache.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createRequire } from "node:module";
import fc from "fast-check";
import { computeInputs, type InputsArgs } from "../../lib/hashing/inputs";
import { resetCacheForTests, statCacheFile, unreliableFsType, type HashStats } from "../../lib/hashing/filehash";
import { codeFingerprint, fingerprintInputs, snapshotsEnabled } from "../../lib/hashing/snapshot";
import { statcheckImpl } from "../../lib/hashing/statcheck";
import { isolateCache, makeTree, copyDir, tempDir, type Tree } from "./inputs.fixtures";

const cacheDir = isolateCache();
const EXAMPLE = path.resolve(__dirname, "../../examples/django-app");
const stats = (): HashStats => ({ hits: 0, misses: 0, bytesRead: 0 });
/** Longer than a filesystem timestamp tick (1-10 ms on Linux), so a change after a run is never within the racy window. */
const RACY_MS = 20;
const settle = () => sleep(RACY_MS + 5);

const baseArgs = (dir: string, dockerfile = "Dockerfile"): InputsArgs => ({
    role: "base",
    contextDir: dir,
    dockerfile: path.join(dir, dockerfile),
    buildArgs: {},
    platform: "linux/amd64",
});

/** The hash and file list, or the error message: what a run produced. */
async function outcome(args: InputsArgs, cache: boolean, s?: HashStats): Promise<string> {
    resetCacheForTests();
    return computeInputs(args, { cache, racyMs: RACY_MS }, s).then(
        (r) => JSON.stringify({ hash: r.hash, files: r.files, totalBytes: r.totalBytes, warnings: r.warnings, copyOnly: r.copyOnly }),
        (e: Error) => `error: ${e.message}`,
    );
}

void test("snapshots are keyed on the code that computes them: every deciding module, package, lockfile and the native binary", () => {
    assert.match(codeFingerprint() ?? "", /^[0-9a-f]{64}$/, "a module in DECIDING_MODULES is missing (renamed?), which turns snapshots off");
    assert.equal(snapshotsEnabled(), true);
    const inputs = fingerprintInputs().map((f) => path.relative(path.resolve(__dirname, "../.."), f));
    for (const want of [
        "lib/hashing/inputs.ts",
        "lib/dockerfile/analyze.ts",
        "lib/context/dockerignore.ts",
        "lib/hashing/snapshot.ts",
        "node_modules/dockerfile-ast/package.json",
        "node_modules/@balena/dockerignore/package.json",
        "node_modules/.package-lock.json",
        "package-lock.json",
    ]) {
        assert.ok(inputs.includes(want), `${want} in ${JSON.stringify(inputs)}`);
    }
    if (statcheckImpl().impl === "native")
        assert.ok(
            inputs.some((f) => f.endsWith("statcheck.node")),
            "the native binary",
        );
    process.env.THINLAYER_NATIVE = "0";
    try {
        assert.deepEqual(
            fingerprintInputs().map((f) => path.relative(path.resolve(__dirname, "../.."), f)),
            inputs,
            "THINLAYER_NATIVE=0 runs share snapshots with native ones",
        );
    } finally {
        delete process.env.THINLAYER_NATIVE;
    }
});

void test("on a network filesystem neither snapshots nor the stat cache are used (statfs stubbed to NFS)", async (t) => {
    if (process.platform !== "linux") {
        t.skip("the filesystem check reads Linux statfs types");
        return;
    }
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a" });
    await settle();
    const args = baseArgs(dir);
    await outcome(args, true);
    const s0 = stats();
    await outcome(args, true, s0);
    assert.equal(s0.snapshot, true, "primed on this (local) filesystem");
    // The fs module object itself (an import namespace cannot be patched); lib/ reads through it.
    const nodeFs = createRequire(__filename)("node:fs") as typeof fs;
    const real = nodeFs.statfsSync;
    t.mock.method(nodeFs, "statfsSync", (p: fs.PathLike) => ({ ...real(p), type: 0x6969 }));
    assert.equal(snapshotsEnabled(dir), false);
    const s = stats();
    assert.equal(await outcome(args, true, s), await outcome(args, false));
    assert.notEqual(s.snapshot, true);
    assert.equal(s.hits, 0, "the stat cache is off too");
});

void test("the default racy window is 2 s: a file changed 1.2 s ago is not snapshotted", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a" });
    await sleep(1200);
    await assertNeverSnapshotted(baseArgs(dir)); // the default window
});

void test("the caches are off on network, FUSE and VM-shared filesystems; on here", () => {
    for (const t of [0x6969, 0xff534d42, 0xfe534d42, 0x65735546, 0x01021997, 0x6a656a63]) assert.equal(unreliableFsType(t), true, t.toString(16));
    assert.equal(unreliableFsType(0xfe534d42 | 0), true, "a sign-extended f_type is read unsigned");
    for (const t of [0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x794c7630]) assert.equal(unreliableFsType(t), false, t.toString(16)); // ext4, xfs, btrfs, tmpfs, overlayfs
    assert.equal(snapshotsEnabled(tempDir()), true, `this machine's temp dir (statfs type ${fs.statfsSync(tempDir()).type.toString(16)})`);
});

void test("a warm run is served by the snapshot: same result as no cache, nothing read, no walk", async () => {
    const dir = path.join(tempDir(), "app");
    copyDir(EXAMPLE, dir);
    await settle();
    for (const dockerfile of ["Dockerfile.base", "Dockerfile"]) {
        const args = dockerfile === "Dockerfile" ? { ...baseArgs(dir, dockerfile), role: "app" as const, baseHash: "a".repeat(64) } : baseArgs(dir, dockerfile);
        const none = await outcome(args, false);
        const s1 = stats();
        assert.equal(await outcome(args, true, s1), none);
        assert.notEqual(s1.snapshot, true, "the first run computes");
        const s2 = stats();
        assert.equal(await outcome(args, true, s2), none);
        assert.equal(s2.snapshot, true, `${dockerfile}: the second run is a snapshot hit`);
        assert.equal(s2.misses, 0);
        assert.equal(s2.hits, (JSON.parse(none) as { files: unknown[] }).files.length);
    }
});

void test("a snapshot hit keeps the result's warnings and totals (the .git warning, total bytes) and builds the same file list", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", ".git/HEAD": "ref: refs/heads/main\n", "a.txt": "aaaa" });
    await settle();
    const args = baseArgs(dir);
    const fresh = await computeInputs(args, { cache: false });
    assert.ok(
        fresh.warnings.some((w) => w.includes(".git/")),
        "the fresh run warns",
    );
    await outcome(args, true);
    resetCacheForTests();
    const s = stats();
    const hit = await computeInputs(args, { cache: true, racyMs: RACY_MS }, s);
    assert.equal(s.snapshot, true);
    assert.deepEqual(hit.warnings, fresh.warnings);
    assert.equal(hit.totalBytes, fresh.totalBytes);
    assert.deepEqual(hit.files, fresh.files);
    assert.equal(hit.files, hit.files, "built once");
});

void test("what the key covers: build args, platform and base hash each give a fresh computation", async () => {
    const dir = makeTree({ Dockerfile: "ARG V\nFROM scratch\nCOPY a.txt /a\n", "a.txt": "a" });
    await settle();
    const variants: InputsArgs[] = [
        baseArgs(dir),
        { ...baseArgs(dir), buildArgs: { V: "2" } },
        { ...baseArgs(dir), platform: "linux/arm64" },
        { ...baseArgs(dir), role: "app", baseHash: "b".repeat(64) },
        { ...baseArgs(dir), role: "app", baseHash: "c".repeat(64) },
    ];
    const seen = new Set<string>();
    for (const args of variants) {
        await outcome(args, true); // primes this variant's snapshot
        for (const other of variants) {
            const s = stats();
            assert.equal(await outcome(other, true, s), await outcome(other, false), JSON.stringify(other));
        }
        seen.add(await outcome(args, false));
    }
    assert.equal(seen.size, variants.length, "every variant has its own hash");
});

void test("a snapshot (and the stat cache) made by one user is not served to another", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a" });
    await settle();
    const args = baseArgs(dir);
    await outcome(args, true);
    const s1 = stats();
    await outcome(args, true, s1);
    assert.equal(s1.snapshot, true);
    const fileBefore = statCacheFile();
    const real = process.geteuid;
    process.geteuid = () => 4242; // another user: the result could differ by read permission
    try {
        const s2 = stats();
        assert.equal(await outcome(args, true, s2), await outcome(args, false));
        assert.notEqual(s2.snapshot, true, "not served across users");
        assert.equal(s2.hits, 0, "nor the stat cache");
        assert.notEqual(statCacheFile(), fileBefore);
    } finally {
        process.geteuid = real;
    }
    const s3 = stats();
    await outcome(args, true, s3);
    assert.equal(s3.snapshot, true, "the first user's snapshot is still there");
});

/** Two cached runs in a row: the second must not be a snapshot hit (the first saved none). */
async function assertNeverSnapshotted(args: InputsArgs, racyMs?: number): Promise<void> {
    for (let i = 0; i < 2; i++) {
        const s = stats();
        await computeInputs(args, { cache: true, racyMs }, s);
        assert.notEqual(s.snapshot, true);
    }
}

void test("files changed within the racy window are never snapshotted", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a" });
    await assertNeverSnapshotted(baseArgs(dir), 60_000);
});

void test("a directory listed within the racy window is never snapshotted, even when every file is old", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY src /x\n", "src/a.txt": "a" });
    await sleep(1100);
    fs.mkdirSync(path.join(dir, "src/fresh")); // src's listing changes now; no file does
    await assertNeverSnapshotted(baseArgs(dir), 1000);
});

void test("THINLAYER_SNAPSHOTS=0 turns snapshots off; a corrupt snapshot is a miss and gets rewritten", async () => {
    const dir = makeTree({ Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a" });
    await settle();
    const args = baseArgs(dir);
    const want = await outcome(args, false);
    await outcome(args, true);
    process.env.THINLAYER_SNAPSHOTS = "0";
    try {
        const s = stats();
        assert.equal(await outcome(args, true, s), want);
        assert.notEqual(s.snapshot, true);
    } finally {
        delete process.env.THINLAYER_SNAPSHOTS;
    }
    const snaps = path.join(cacheDir, "snapshots");
    for (const f of fs.readdirSync(snaps)) {
        const buf = fs.readFileSync(path.join(snaps, f));
        buf.fill(0x41, 12, 40); // damage the header
        fs.writeFileSync(path.join(snaps, f), buf);
    }
    const s1 = stats();
    assert.equal(await outcome(args, true, s1), want);
    assert.notEqual(s1.snapshot, true);
    const s2 = stats();
    assert.equal(await outcome(args, true, s2), want);
    assert.equal(s2.snapshot, true, "rewritten by the run that ignored it");
});

/**
 * One scenario per kind of lookup, each with a Dockerfile that makes only that lookup, so no other
 * recorded probe can mask a missing one: [name, tree, change].
 */
const SCENARIOS: [string, Tree, (root: string) => void][] = [
    [
        "a new file matching a wildcard at the root",
        { Dockerfile: "FROM scratch\nCOPY *.cfg /x/\n", "a.cfg": "a" },
        (r) => fs.writeFileSync(path.join(r, "b.cfg"), "b"),
    ],
    [
        "a new directory matching a wildcard segment",
        { Dockerfile: "FROM scratch\nCOPY pkg*/m.py /x/\n", "pkg1/m.py": "1" },
        (r) => {
            fs.mkdirSync(path.join(r, "pkg2"));
            fs.writeFileSync(path.join(r, "pkg2/m.py"), "2");
        },
    ],
    [
        "a new file deep inside a copied directory",
        { Dockerfile: "FROM scratch\nCOPY src /x\n", "src/a/b/c.py": "c" },
        (r) => fs.writeFileSync(path.join(r, "src/a/b/d.py"), "d"),
    ],
    [
        "a file re-included by an ignore exception",
        { Dockerfile: "FROM scratch\nCOPY src /x\n", ".dockerignore": "src/*.tmp\n!src/keep.tmp\n", "src/a.py": "a" },
        (r) => fs.writeFileSync(path.join(r, "src/keep.tmp"), "k"),
    ],
    [
        "a named symlink retargeted",
        { Dockerfile: "FROM scratch\nCOPY link /x\n", one: "1", two: "2", link: { symlink: "one" } },
        (r) => {
            fs.rmSync(path.join(r, "link"));
            fs.symlinkSync("two", path.join(r, "link"));
        },
    ],
    [
        "a named source that appears after a wildcard missed it",
        { Dockerfile: "FROM scratch\nCOPY d*/f /x/\n", "d1/f": "1" },
        (r) => {
            fs.mkdirSync(path.join(r, "d2"));
            fs.writeFileSync(path.join(r, "d2/f"), "2");
        },
    ],
    [
        "a bind-mount source gaining a file",
        { Dockerfile: "FROM scratch\nRUN --mount=type=bind,source=req,target=/r true\n", "req/a.txt": "a" },
        (r) => fs.writeFileSync(path.join(r, "req/b.txt"), "b"),
    ],
    ["the executable bit", { Dockerfile: "FROM scratch\nCOPY run.sh /x\n", "run.sh": "#!/bin/sh\n" }, (r) => fs.chmodSync(path.join(r, "run.sh"), 0o755)],
    [
        "a same-size edit with the mtime put back",
        { Dockerfile: "FROM scratch\nCOPY a.txt /x\n", "a.txt": "aaaa" },
        (r) => {
            const f = path.join(r, "a.txt");
            const { atime, mtime } = fs.statSync(f);
            fs.writeFileSync(f, "bbbb");
            fs.utimesSync(f, atime, mtime);
        },
    ],
    [
        "a deleted file in a copied directory",
        { Dockerfile: "FROM scratch\nCOPY src /x\n", "src/a.py": "a", "src/b.py": "b" },
        (r) => fs.rmSync(path.join(r, "src/b.py")),
    ],
    [
        "a rename inside a copied directory",
        { Dockerfile: "FROM scratch\nCOPY src /x\n", "src/a.py": "a" },
        (r) => fs.renameSync(path.join(r, "src/a.py"), path.join(r, "src/b.py")),
    ],
    [
        "a parent link moved outside the context (same file, same inode)",
        { Dockerfile: "FROM scratch\nCOPY linkdir/a.txt /x\n", "real/a.txt": "a", linkdir: { symlink: "real" } },
        (r) => {
            const away = `${r}-away`;
            fs.renameSync(path.join(r, "real"), away); // the file keeps its inode, size and times
            fs.rmSync(path.join(r, "linkdir"));
            fs.symlinkSync(away, path.join(r, "linkdir"));
        },
    ],
    [
        "a per-Dockerfile ignore file appearing",
        { Dockerfile: "FROM scratch\nCOPY . /x\n", "a.txt": "a", "b.txt": "b" },
        (r) => fs.writeFileSync(path.join(r, "Dockerfile.dockerignore"), "b.txt\n"),
    ],
];

void test("each kind of lookup is checked: a change behind it means a fresh computation (native and fs.lstatSync checks)", async () => {
    try {
        for (const [k, [name, tree, change]] of [...SCENARIOS, ...SCENARIOS].entries()) {
            // The second pass runs the same scenarios with the fs.lstatSync fallback check.
            if (k === SCENARIOS.length) process.env.THINLAYER_NATIVE = "0";
            const root = makeTree(tree);
            const args = baseArgs(root);
            await settle();
            const before = await outcome(args, true);
            const s = stats();
            assert.equal(await outcome(args, true, s), before);
            assert.equal(s.snapshot, true, `${name}: primed`);
            change(root);
            await settle();
            const after = await outcome(args, true);
            assert.equal(after, await outcome(args, false), name);
            assert.notEqual(after, before, `${name}: the change shows in the result`);
        }
    } finally {
        delete process.env.THINLAYER_NATIVE;
    }
});

/** The tree the model test edits: directories, wildcards, a named symlink, a bind mount, ignore exceptions. */
const MODEL_TREE: Tree = {
    Dockerfile: [
        "FROM scratch",
        "COPY src/ /app/src/",
        "COPY *.cfg /app/",
        "COPY pkg*/mod.py /app/",
        "COPY named-link /app/linked",
        "RUN --mount=type=bind,source=req,target=/r true",
        "",
    ].join("\n"),
    ".dockerignore": "src/**/*.tmp\n!src/keep.tmp\n",
    "src/a.py": "a",
    "src/sub/b.py": "b",
    "x.cfg": "x",
    "pkg1/mod.py": "m1",
    "target.txt": "t",
    "named-link": { symlink: "target.txt" },
    "src/walked-link": { symlink: "a.py" }, // inside a copied directory: stays a link (hashed by its target text)
    "req/r.txt": "r",
};
const FILES = [
    "src/a.py",
    "src/sub/b.py",
    "src/new.py",
    "src/x.tmp",
    "src/keep.tmp",
    "src/sub/deep/c.py",
    "x.cfg",
    "y.cfg",
    "pkg1/mod.py",
    "pkg2/mod.py",
    "pkg2/other.py",
    "target.txt",
    "other.txt",
    "req/r.txt",
    "req/s.txt",
];

type Op =
    | { op: "write"; file: string; content: string }
    | { op: "remove"; file: string }
    | { op: "chmod"; file: string; exec: boolean }
    | { op: "rename"; from: string; to: string }
    | { op: "mkdir"; dir: string }
    | { op: "relink"; target: string }
    | { op: "ignore"; text: string }
    | { op: "noop" };

const file = fc.constantFrom(...FILES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant("write" as const), file, content: fc.constantFrom("a", "b", "changed", "longer content") }),
    fc.record({ op: fc.constant("remove" as const), file }),
    fc.record({ op: fc.constant("chmod" as const), file, exec: fc.boolean() }),
    fc.record({ op: fc.constant("rename" as const), from: file, to: file }),
    fc.record({ op: fc.constant("mkdir" as const), dir: fc.constantFrom("src/empty", "pkg3", "src/sub/deeper") }),
    fc.record({ op: fc.constant("relink" as const), target: fc.constantFrom("target.txt", "other.txt", "src/a.py", "missing.txt") }),
    fc.record({ op: fc.constant("ignore" as const), text: fc.constantFrom("src/**/*.tmp\n!src/keep.tmp\n", "src/**/*.tmp\n", "src/sub\n") }),
    fc.constant({ op: "noop" as const }),
);

function apply(root: string, o: Op): void {
    const p = (rel: string) => path.join(root, rel);
    const exists = (rel: string) => fs.existsSync(p(rel));
    switch (o.op) {
        case "write":
            fs.mkdirSync(path.dirname(p(o.file)), { recursive: true });
            fs.writeFileSync(p(o.file), o.content);
            return;
        case "remove":
            fs.rmSync(p(o.file), { force: true });
            return;
        case "chmod":
            if (exists(o.file)) fs.chmodSync(p(o.file), o.exec ? 0o755 : 0o644);
            return;
        case "rename":
            if (exists(o.from) && o.from !== o.to) {
                fs.mkdirSync(path.dirname(p(o.to)), { recursive: true });
                fs.renameSync(p(o.from), p(o.to));
            }
            return;
        case "mkdir":
            fs.mkdirSync(p(o.dir), { recursive: true });
            return;
        case "relink":
            fs.rmSync(p("named-link"), { force: true });
            fs.symlinkSync(o.target, p("named-link"));
            return;
        case "ignore":
            fs.writeFileSync(p(".dockerignore"), o.text);
            return;
        case "noop":
            return;
    }
}

void test("model: after any sequence of edits, the cached result equals a computation without cache", async () => {
    let hits = 0;
    await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 7 }), async (ops) => {
            const root = makeTree(MODEL_TREE);
            const args = baseArgs(root);
            await settle();
            let last = await outcome(args, true);
            for (const o of ops) {
                apply(root, o);
                await settle();
                const s = stats();
                const cached = await outcome(args, true, s);
                assert.equal(cached, await outcome(args, false), `after ${JSON.stringify(o)} in ${JSON.stringify(ops)}`);
                if (o.op === "noop" && !last.startsWith("error:")) {
                    assert.equal(s.snapshot, true, `a run with nothing changed is a snapshot hit (${JSON.stringify(ops)})`);
                }
                if (s.snapshot === true) hits++;
                last = cached;
            }
            fs.rmSync(root, { recursive: true, force: true });
        }),
        { numRuns: 40 },
    );
    assert.ok(hits > 0, "some runs were served by a snapshot");
});
