/** The file-hash stat cache: used when it can be, never changes a hash, never serves stale content. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hashFiles, resetCacheForTests, saveCache, cacheDir, statCacheFile, type HashStats } from "../../lib/hashing/filehash";
import { computeInputs } from "../../lib/hashing/inputs";
import { isolateCache, makeTree, copyDir, tempDir } from "./inputs.fixtures";

const cache = isolateCache();
const EXAMPLE = path.resolve(__dirname, "../../examples/django-app");
const stats = (): HashStats => ({ hits: 0, misses: 0, bytesRead: 0 });

void test("the cache lives where THINLAYER_CACHE_DIR says", () => {
    assert.equal(cacheDir(), cache);
});

void test("cache vs no cache: identical hashes on the example app, cold and warm", async () => {
    const dir = path.join(tempDir(), "app");
    copyDir(EXAMPLE, dir);
    await sleep(20);
    const args = { role: "base" as const, contextDir: dir, dockerfile: path.join(dir, "Dockerfile.base"), buildArgs: {}, platform: "linux/amd64" };
    const none = await computeInputs(args, { cache: false });
    const s1 = stats();
    const cold = await computeInputs(args, { cache: true, racyMs: 0 }, s1);
    const s2 = stats();
    const warm = await computeInputs(args, { cache: true, racyMs: 0 }, s2);
    assert.equal(cold.hash, none.hash);
    assert.equal(warm.hash, none.hash);
    assert.deepEqual(warm.files, none.files);
    assert.equal(s2.misses, 0, "the warm run read nothing");
    assert.equal(s2.hits, none.files.length);
});

void test("a cached entry is used across processes (saved to disk) and skipped once the file changes, even with size and mtime restored", async () => {
    const dir = makeTree({ "a.txt": "hello", "b.txt": "world" });
    await sleep(20);
    const first = await hashFiles(dir, ["a.txt", "b.txt"], { racyMs: 0 });
    saveCache();
    resetCacheForTests();
    const s = stats();
    assert.deepEqual(await hashFiles(dir, ["a.txt", "b.txt"], { racyMs: 0 }, s), first);
    assert.equal(s.hits, 2, "loaded from the cache file");

    const f = path.join(dir, "a.txt");
    const { atime, mtime } = fs.statSync(f);
    fs.writeFileSync(f, "jello"); // same size
    fs.utimesSync(f, atime, mtime); // same mtime: only ctime tells
    const s2 = stats();
    const after = await hashFiles(dir, ["a.txt", "b.txt"], { racyMs: 0 }, s2);
    assert.equal(s2.misses, 1);
    assert.notEqual(after[0].sha256, first[0].sha256);
    assert.deepEqual(after, await hashFiles(dir, ["a.txt", "b.txt"], { cache: false }));
});

void test("files changed within the racy window are not cached", async () => {
    const dir = makeTree({ "new.txt": "fresh" });
    await hashFiles(dir, ["new.txt"], { racyMs: 60_000 });
    const s = stats();
    await hashFiles(dir, ["new.txt"], { racyMs: 60_000 }, s);
    assert.equal(s.hits, 0);
    assert.equal(s.misses, 1);
});

void test("a corrupt cache file is ignored", async () => {
    const dir = makeTree({ "x.txt": "x" });
    const want = await hashFiles(dir, ["x.txt"], { cache: false });
    fs.mkdirSync(cache, { recursive: true });
    fs.writeFileSync(statCacheFile(), "{not json");
    resetCacheForTests();
    assert.deepEqual(await hashFiles(dir, ["x.txt"]), want);
});

void test("large files are streamed: a 5 MiB file hashes to its sha256", async () => {
    const dir = makeTree({});
    const buf = Buffer.alloc(5 * 1024 * 1024 + 17, 7);
    fs.writeFileSync(path.join(dir, "big.bin"), buf);
    const [f] = await hashFiles(dir, ["big.bin"], { cache: false });
    const { createHash } = await import("node:crypto");
    assert.equal(f.sha256, createHash("sha256").update(buf).digest("hex"));
    assert.equal(f.size, buf.length);
});

void test("worker-thread and same-thread hashing agree (40 MiB crosses the worker threshold; a 3 MiB file spans chunks)", async () => {
    const dir = makeTree({});
    const names: string[] = [];
    for (let i = 0; i < 300; i++) {
        const name = `d${i % 3}/f${i}.bin`;
        fs.mkdirSync(path.join(dir, `d${i % 3}`), { recursive: true });
        fs.writeFileSync(path.join(dir, name), Buffer.alloc(i === 7 ? 3 * 1024 * 1024 + 7 : 128 * 1024 + i, i));
        names.push(name);
    }
    const st1 = stats();
    const st2 = stats();
    const threaded = await hashFiles(dir, names, { cache: false, threads: 2 }, st1);
    const single = await hashFiles(dir, names, { cache: false, threads: 1 }, st2);
    assert.equal(st1.workers, 2);
    assert.equal(st2.workers, 0);
    assert.deepEqual(threaded, single);
    const { createHash } = await import("node:crypto");
    assert.equal(
        threaded.find((f) => f.path === "d1/f7.bin")?.sha256,
        createHash("sha256")
            .update(Buffer.alloc(3 * 1024 * 1024 + 7, 7))
            .digest("hex"),
    );
});

void test("a symlink is hashed by its target's bytes: targets that are not UTF-8 stay distinct", async () => {
    const dir = makeTree({});
    fs.symlinkSync(Buffer.from([0x74, 0xff]), path.join(dir, "l1"));
    fs.symlinkSync(Buffer.from([0x74, 0xfe]), path.join(dir, "l2"));
    fs.symlinkSync("plain", path.join(dir, "l3"));
    const [l1, l2, l3] = await hashFiles(dir, ["l1", "l2", "l3"], { cache: false });
    const { createHash } = await import("node:crypto");
    assert.notEqual(l1.sha256, l2.sha256);
    assert.equal(
        l1.sha256,
        createHash("sha256")
            .update(Buffer.from([0x74, 0xff]))
            .digest("hex"),
    );
    assert.equal(l1.size, 2);
    assert.equal(l3.sha256, createHash("sha256").update("plain").digest("hex"), "UTF-8 targets hash as before");
});
