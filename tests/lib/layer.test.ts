import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import {
    copyEntries,
    GZIP_LEVEL,
    CHUNK_MAX_BYTES,
    CHUNK_MIN_BYTES,
    CHUNK_SPREAD,
    chunkCuts,
    chunkOptions,
    normalizeEntries,
    parseChown,
    writeLayer,
    NotDaemonlessError,
    type LayerEntry,
    type PlacedCopy,
} from "../../lib/layer/writer";
import { computeAppInputs } from "../../lib/plan";
import * as tar from "tar-stream";
import { readLayerEntries, tempDir, writeFiles } from "../helpers/images";
import type { InputFile } from "../../lib/plan";
import { needTools } from "../helpers/tools";

const BASE_HASH = "a".repeat(64);

function files(paths: Array<[string, boolean]>): InputFile[] {
    return paths.map(([p, x]) => ({ path: p, size: 1, executable: x, sha256: "0".repeat(64) }));
}

function copy(sources: string[], dest: string, extra: Partial<PlacedCopy> = {}): PlacedCopy {
    return { keyword: "COPY", line: 3, sources, dest, workdir: "/app", ...extra };
}

test("copyEntries: directory contents, file into dir, relative dest against WORKDIR, owner and mode", () => {
    const fl = files([
        ["src/a.py", false],
        ["src/sub/b.py", false],
        ["run.sh", true],
    ]);
    const e = copyEntries("/ctx", fl, [copy(["src/"], "/app/src/", { chown: "1000:2000" }), copy(["run.sh"], "./")]);
    const by = Object.fromEntries(e.map((x) => [x.dest, x]));
    assert.deepEqual(
        Object.keys(by).sort(),
        ["/app", "/app/run.sh", "/app/src", "/app/src/a.py", "/app/src/sub", "/app/src/sub/b.py"].filter((p) => p !== "/app"),
    );
    assert.equal(by["/app/src/a.py"].uid, 1000);
    assert.equal(by["/app/src/a.py"].gid, 2000);
    assert.equal(by["/app/src/a.py"].mode, 0o644);
    assert.equal(by["/app/src/sub"].type, "directory");
    assert.equal(by["/app/src/sub"].uid, 1000);
    assert.equal(by["/app/run.sh"].mode, 0o755);
    assert.equal(by["/app/run.sh"].uid, 0);
    assert.equal(by["/app/run.sh"].source, path.join("/ctx", "run.sh"));
});

test("copyEntries: single file to a file path, wildcard sources, --chmod, later COPY wins", () => {
    const fl = files([
        ["conf/a.ini", false],
        ["conf/b.ini", false],
        ["x.txt", true],
    ]);
    const e = copyEntries("/ctx", fl, [
        copy(["x.txt"], "/etc/renamed.txt"),
        copy(["conf/*.ini"], "/etc/conf/", { chmod: "600" }),
        copy(["x.txt"], "/etc/renamed.txt", { chown: "5" }),
    ]);
    const by = Object.fromEntries(e.map((x) => [x.dest, x]));
    assert.ok(by["/etc/renamed.txt"]);
    assert.equal(by["/etc/renamed.txt"].uid, 5);
    assert.equal(by["/etc/renamed.txt"].gid, 5);
    assert.equal(by["/etc/conf/a.ini"].mode, 0o600);
    assert.equal(by["/etc/conf/b.ini"].mode, 0o600);
});

test("copyEntries: a source matching no context file is an input error naming Dockerfile:line and the pattern", () => {
    assert.throws(
        () => copyEntries("/ctx", files([["a", false]]), [copy(["missing.txt"], "/x")], "Dockerfile"),
        /Dockerfile:3 \(COPY missing\.txt\).*matches no file/,
    );
    // A wildcard may match nothing, as in BuildKit: the other sources are still copied.
    const out = copyEntries("/ctx", files([["package.json", false]]), [copy(["package.json", "yarn.loc[k]"], "/app/")], "Dockerfile");
    assert.deepEqual(
        out.map((e) => e.dest),
        ["/app/package.json"],
    );
});

test("parseChown: numeric and root only; names are not daemonless", () => {
    assert.deepEqual(parseChown("1000"), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseChown("root:10"), { uid: 0, gid: 10 });
    assert.deepEqual(parseChown(undefined), { uid: 0, gid: 0 });
    assert.throws(() => parseChown("app:app"), NotDaemonlessError);
});

test("normalizeEntries adds parent dirs (root, 0755) and sorts by byte order", () => {
    const n = normalizeEntries([
        { dest: "/b/z", type: "file", source: "/x", mode: 0o644, uid: 1, gid: 1 },
        { dest: "/a/B/c", type: "file", source: "/x", mode: 0o644, uid: 1, gid: 1 },
    ]);
    assert.deepEqual(
        n.map((e) => e.dest),
        ["/a", "/a/B", "/a/B/c", "/b", "/b/z"],
    );
    assert.deepEqual([n[0].mode, n[0].uid, n[0].type], [0o755, 0, "directory"]);
});

test("writeLayer is reproducible: same bytes whatever the mtimes, umask and discovery order; gzip header has no name or mtime", async () => {
    const d1 = tempDir();
    const d2 = tempDir();
    for (const [d, mode] of [
        [d1, 0o644],
        [d2, 0o600],
    ] as const) {
        writeFiles(d, { "a.txt": "alpha\n", "dir/b.txt": "beta\n", "run.sh": { content: "#!/bin/sh\n", mode: 0o755 } });
        fs.chmodSync(path.join(d, "a.txt"), mode);
    }
    fs.utimesSync(path.join(d2, "a.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const fl1 = files([
        ["a.txt", false],
        ["dir/b.txt", false],
        ["run.sh", true],
    ]);
    const fl2 = [...fl1].reverse();
    const l1 = await writeLayer(copyEntries(d1, fl1, [copy(["."], "/srv/")]), path.join(d1, "..", path.basename(d1) + ".tgz"));
    const l2 = await writeLayer(copyEntries(d2, fl2, [copy(["."], "/srv/")]), path.join(d2, "..", path.basename(d2) + ".tgz"));
    assert.equal(l1.digest, l2.digest);
    assert.equal(l1.diffId, l2.diffId);
    const gz = fs.readFileSync(l1.file);
    assert.equal(gz.length, l1.size);
    assert.equal(gz[3] & 0x08, 0, "FNAME flag must be clear");
    assert.equal(gz.readUInt32LE(4), 0, "gzip mtime must be 0");
    const entries = await readLayerEntries(gz);
    assert.deepEqual(
        entries.map((e) => [e.name.replace(/\/$/, ""), e.type, e.mode.toString(8), e.uid, e.mtime]),
        [
            ["srv", "directory", "755", 0, 0],
            ["srv/a.txt", "file", "644", 0, 0],
            ["srv/dir", "directory", "755", 0, 0],
            ["srv/dir/b.txt", "file", "644", 0, 0],
            ["srv/run.sh", "file", "755", 0, 0],
        ],
    );
    // A content change changes the digest.
    fs.writeFileSync(path.join(d2, "a.txt"), "ALPHA\n");
    const l3 = await writeLayer(copyEntries(d2, fl2, [copy(["."], "/srv/")]), l2.file + ".3");
    assert.notEqual(l3.digest, l1.digest);
});

test("writeLayer honours SOURCE_DATE_EPOCH-like epoch", async () => {
    const d = tempDir();
    writeFiles(d, { f: "x" });
    const l = await writeLayer([{ dest: "/f", type: "file", source: path.join(d, "f"), mode: 0o644, uid: 0, gid: 0 }], path.join(d, "l.tgz"), {
        epoch: 1700000000,
    });
    const entries = await readLayerEntries(fs.readFileSync(l.file));
    assert.equal(entries[0].mtime, 1700000000);
});

test("layer files come from the input analysis of lib/hashing/inputs.ts (dockerignore applied)", async () => {
    const d = tempDir();
    writeFiles(d, {
        Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app/\n",
        ".dockerignore": "*.md\n",
        "a.py": "1",
        "README.md": "ignored",
    });
    const inputs = await computeAppInputs(
        { contextDir: d, dockerfile: path.join(d, "Dockerfile"), buildArgs: {}, platform: "linux/amd64", baseHash: BASE_HASH },
        { cache: false },
    );
    const e = copyEntries(d, inputs.files, [copy(["."], "/app/")]);
    const names = e.map((x) => x.dest);
    assert.ok(names.includes("/app/a.py"));
    assert.ok(!names.includes("/app/README.md"));
});

test("a layer of many deflate chunks (a file larger than a chunk) is a gzip that independent tools read; still reproducible", async (t) => {
    if (!needTools(t, "gzip", "tar")) return;
    const d = tempDir();
    const big = randomBytes(CHUNK_MAX_BYTES * 2 + 12345);
    writeFiles(d, { "big.bin": big, "small.txt": "s\n" });
    const entries = copyEntries(
        d,
        files([
            ["big.bin", false],
            ["small.txt", false],
        ]),
        [copy(["."], "/data/")],
    );
    const a = await writeLayer(entries, path.join(d, "a.tgz"));
    const b = await writeLayer(entries, path.join(d, "b.tgz"));
    assert.equal(a.digest, b.digest);
    assert.ok(a.size > CHUNK_MAX_BYTES * 2);
    assert.equal(spawnSync("gzip", ["-t", a.file]).status, 0);
    const out = path.join(d, "x");
    fs.mkdirSync(out);
    const r = spawnSync("tar", ["-xzf", a.file, "-C", out], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readFileSync(path.join(out, "data/big.bin")), big);
    const un = spawnSync("sh", ["-c", `gzip -dc ${a.file} | sha256sum`], { encoding: "utf8" });
    assert.equal("sha256:" + un.stdout.split(" ")[0], a.diffId);
});

test("the layer gzip is exactly its tar cut at chunkCuts, each chunk deflated in one pass with chunkOptions after the 32 KiB before it, whatever the parallelism", async () => {
    const d = tempDir();
    // Text larger than a chunk (deflated chunks, a file read in pieces), random bytes (run-length-coded chunks), small files.
    const words = randomBytes(CHUNK_MAX_BYTES).toString("hex");
    let text = "";
    for (let i = 0; text.length < CHUNK_MAX_BYTES * 2.5; i += 7)
        text += `def f_${words.slice(i % words.length, (i % words.length) + 6)}(request):\n    return render(request, "x.html")\n`;
    writeFiles(d, { "big.py": text, "blob.bin": randomBytes(CHUNK_MAX_BYTES * 2 + 4321), "a.txt": "a\n", empty: "" });
    const entries = copyEntries(
        d,
        files([
            ["a.txt", false],
            ["big.py", false],
            ["blob.bin", false],
            ["empty", false],
        ]),
        [copy(["."], "/srv/")],
    );
    const one = await writeLayer(entries, undefined, { parallelism: 1 });
    const many = await writeLayer(entries, path.join(d, "..", path.basename(d) + ".tgz"), { parallelism: 6 });
    assert.ok(one.data);
    assert.deepEqual(fs.readFileSync(many.file), one.data);
    assert.deepEqual([many.digest, many.diffId, many.size, many.tarSize], [one.digest, one.diffId, one.size, one.tarSize]);
    // An independent reference: gunzip, check the diffID, deflate chunk by chunk in one shot with
    // room for the whole output (stored blocks are then 64 KiB, whatever the exact room), each
    // after the tar's 32 KiB before it as the dictionary and ended by a sync flush; then the
    // empty final block and the trailer (crc32, size).
    const tarBytes = zlib.gunzipSync(one.data);
    assert.equal(tarBytes.length, one.tarSize);
    assert.equal("sha256:" + createHash("sha256").update(tarBytes).digest("hex"), one.diffId);
    const levels: number[] = [];
    const expected: Buffer[] = [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])];
    const cuts = chunkCuts(tarBytes);
    assert.ok(cuts.length >= 3, `several chunks: cuts at ${cuts.join(",")}`);
    const bounds = [0, ...cuts, tarBytes.length];
    for (let i = 0; i + 1 < bounds.length; i++) {
        const chunk = tarBytes.subarray(bounds[i], bounds[i + 1]);
        assert.ok(chunk.length <= CHUNK_MAX_BYTES && chunk.length % 512 === 0, `chunk ${i}: ${chunk.length} B`);
        if (i + 1 < bounds.length - 1) assert.ok(chunk.length >= CHUNK_MIN_BYTES, `chunk ${i}: ${chunk.length} B`);
        const o = chunkOptions(chunk);
        levels.push(o.strategy === zlib.constants.Z_RLE ? 0 : o.level);
        const dictionary = tarBytes.subarray(Math.max(0, bounds[i] - 32 * 1024), bounds[i]);
        expected.push(
            zlib.deflateRawSync(chunk, {
                ...o,
                ...(i > 0 ? { dictionary } : {}),
                finishFlush: zlib.constants.Z_SYNC_FLUSH,
                chunkSize: 2 * chunk.length + 65536,
            }),
        );
    }
    assert.ok(levels.includes(GZIP_LEVEL) && levels.includes(0), `both deflated and run-length-coded chunks: ${levels.join(",")}`);
    const trailer = Buffer.alloc(10);
    trailer.set([3, 0]);
    trailer.writeUInt32LE(zlib.crc32(tarBytes), 2);
    trailer.writeUInt32LE(tarBytes.length, 6);
    expected.push(trailer);
    assert.deepEqual(one.data, Buffer.concat(expected));
    assert.equal("sha256:" + createHash("sha256").update(one.data).digest("hex"), one.digest);
});

test("the tar is byte for byte what tar-stream 3 wrote for the same entries (the format of every earlier layer): ustar, prefix splits, PAX names and links, big files", async () => {
    const d = tempDir();
    const long = (n: number) => "d".repeat(n);
    const contents: Record<string, Buffer | string> = {
        empty: "",
        one: "1",
        "b511.bin": randomBytes(511),
        "b512.bin": randomBytes(512),
        "b513.bin": randomBytes(513),
        "big.bin": randomBytes(4 * 1024 * 1024 + 12345), // read in chunks
        "run.sh": "#!/bin/sh\necho hi\n",
    };
    writeFiles(d, contents);
    const src = (f: string) => path.join(d, f);
    const entries: LayerEntry[] = [
        { dest: "/srv", type: "directory", mode: 0o755, uid: 0, gid: 0 },
        ...Object.keys(contents).map((f) => ({
            dest: `/srv/${f}`,
            type: "file" as const,
            source: src(f),
            mode: f === "run.sh" ? 0o755 : 0o644,
            uid: 10001,
            gid: 10001,
        })),
        { dest: "/srv/setuid", type: "file", source: src("one"), mode: 0o4755, uid: 0, gid: 0 },
        // Over 100 bytes, split into prefix + name; too long for any split; non-ASCII: PAX.
        { dest: `/srv/${long(60)}/${long(60)}/file.py`, type: "file", source: src("one"), mode: 0o644, uid: 0, gid: 0 },
        { dest: `/srv/${long(120)}`, type: "file", source: src("one"), mode: 0o644, uid: 0, gid: 0 },
        { dest: `/srv/${long(150)}/${long(20)}/x`, type: "file", source: src("one"), mode: 0o644, uid: 0, gid: 0 },
        { dest: "/srv/caf\u00e9/\u00fcber.txt", type: "file", source: src("one"), mode: 0o644, uid: 0, gid: 0 },
        { dest: "/srv/link", type: "symlink", linkname: "run.sh", mode: 0o777, uid: 0, gid: 0 },
        { dest: "/srv/farlink", type: "symlink", linkname: `/${long(120)}/target`, mode: 0o777, uid: 0, gid: 0 },
    ];
    const epoch = 1_700_000_000;
    const ours = zlib.gunzipSync((await writeLayer(entries, undefined, { epoch })).data as Buffer);
    // The same entries through tar-stream, as the writer fed it before it wrote its tar itself.
    const pack = tar.pack();
    const collected = (async () => {
        const chunks: Buffer[] = [];
        for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
        return Buffer.concat(chunks);
    })();
    for (const e of normalizeEntries(entries)) {
        const base = { name: e.dest.slice(1), mode: e.mode, uid: e.uid, gid: e.gid, uname: "", gname: "", mtime: new Date(epoch * 1000) };
        await new Promise<void>((res, rej) => {
            const done = (err?: Error | null) => (err ? rej(err) : res());
            if (e.type === "directory") pack.entry({ ...base, type: "directory" }, done);
            else if (e.type === "symlink") pack.entry({ ...base, type: "symlink", linkname: e.linkname, mode: 0o777 }, done);
            else {
                const body = fs.readFileSync(e.source as string);
                pack.entry({ ...base, type: "file", size: body.length }, body, done);
            }
        });
    }
    pack.finalize();
    const theirs = await collected;
    assert.equal(ours.length, theirs.length);
    assert.ok(ours.equals(theirs), `first difference at byte ${ours.findIndex((b, i) => b !== theirs[i])}`);
    // Where the writer differs from tar-stream on purpose: mode 0 (COPY --chmod=000) stays 0 (tar-stream wrote 0644), as in BuildKit.
    const zero = zlib.gunzipSync(
        (await writeLayer([{ dest: "/secret", type: "file", source: src("one"), mode: 0, uid: 0, gid: 0 }], undefined, { epoch })).data as Buffer,
    );
    assert.equal(zero.toString("latin1", 100, 108), "000000 \0", "the mode field of /secret");
});

test("chunkCuts follows its rules block by block: the fast scan cuts exactly where the rules applied to every block do", () => {
    // The rules as written, one 512-byte block at a time.
    const reference = (b: Buffer): number[] => {
        const cuts: number[] = [];
        for (let start = 0, o = 512; o + 512 <= b.length; o += 512) {
            const len = o - start;
            const candidate = b.toString("latin1", o + 257, o + 262) === "ustar" && zlib.crc32(b.subarray(o, o + 100)) % CHUNK_SPREAD === 0;
            if (len >= CHUNK_MAX_BYTES || (len >= CHUNK_MIN_BYTES && candidate)) {
                cuts.push(o);
                start = o;
            }
        }
        return cuts;
    };
    for (const [size, planted, aligned] of [
        [6 * CHUNK_MAX_BYTES + 300, 400, 0.5], // many candidates, a trailing partial block
        [5 * CHUNK_MAX_BYTES, 3, 1], // few: forced cuts at CHUNK_MAX_BYTES
        [3 * CHUNK_MAX_BYTES + 511, 2000, 0.1], // mostly magic inside blocks, not at byte 257
    ] as const) {
        const b = randomBytes(size);
        for (let i = 0; i < planted; i++) {
            const block = Math.floor(Math.random() * (size / 512)) * 512;
            const at = Math.random() < aligned ? block + 257 : block + Math.floor(Math.random() * 507);
            if (at + 5 <= size) b.write("ustar", at, "latin1");
        }
        // And one candidate whose block is cut short by the end of the buffer (never decided).
        if (size % 512 > 262) b.write("ustar", size - (size % 512) + 257, "latin1");
        const cuts = chunkCuts(b);
        assert.deepEqual(cuts, reference(b), `size ${size}`);
        assert.ok(cuts.length >= 2, `size ${size}: ${cuts.length} cuts`);
    }
    // A candidate that does not cut (its name's crc32) exactly where a chunk reaches its maximum: cut there all the same.
    const b = randomBytes(3 * CHUNK_MAX_BYTES);
    b.write("ustar", CHUNK_MAX_BYTES + 257, "latin1");
    while (zlib.crc32(b.subarray(CHUNK_MAX_BYTES, CHUNK_MAX_BYTES + 100)) % CHUNK_SPREAD === 0) b[CHUNK_MAX_BYTES]++;
    assert.deepEqual(reference(b), [CHUNK_MAX_BYTES, 2 * CHUNK_MAX_BYTES]);
    assert.deepEqual(chunkCuts(b), reference(b));
});

test("chunkOptions: incompressible chunks are run-length coded only, compressible ones deflated at GZIP_LEVEL", () => {
    const normal = { level: GZIP_LEVEL, strategy: zlib.constants.Z_DEFAULT_STRATEGY };
    assert.deepEqual(chunkOptions(randomBytes(1024 * 1024)), { level: 1, strategy: zlib.constants.Z_RLE });
    const text = Buffer.from("def handler(request):\n    return render(request, 'index.html', {'x': 1})\n".repeat(20000));
    assert.deepEqual(chunkOptions(text), normal);
    assert.deepEqual(chunkOptions(randomBytes(1000)), normal, "too small to sample: always deflated");
});

test("a random file's chunks keep its data as stored blocks and squeezes only the tar header and padding runs", async () => {
    const d = tempDir();
    writeFiles(d, { "a.bin": randomBytes(300_000), "b.bin": randomBytes(300_001) });
    const entries = copyEntries(
        d,
        files([
            ["a.bin", false],
            ["b.bin", false],
        ]),
        [copy(["."], "/srv/")],
    );
    const l = await writeLayer(entries, undefined);
    const stored = zlib.gzipSync(zlib.gunzipSync(l.data as Buffer), { level: 0 }).length;
    assert.ok(l.size < stored, `run-length coded ${l.size} B < stored ${stored} B`);
    assert.ok(l.size < l.tarSize, `smaller than the tar: ${l.size} < ${l.tarSize}`);
});

test("a symlink named directly as a COPY source is followed (target content, link's name); a link inside a copied directory stays a link", async () => {
    const d = tempDir();
    writeFiles(d, {
        Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY current.conf /etc/app.conf\nCOPY conf/ /conf/\n",
        "conf/v2.conf": { content: "v=2\n", mode: 0o755 },
    });
    fs.symlinkSync("conf/v2.conf", path.join(d, "current.conf"));
    fs.symlinkSync("v2.conf", path.join(d, "conf", "latest.conf"));
    const inputs = await computeAppInputs(
        { contextDir: d, dockerfile: path.join(d, "Dockerfile"), buildArgs: {}, platform: "linux/amd64", baseHash: BASE_HASH },
        { cache: false },
    );
    const l = await writeLayer(
        copyEntries(d, inputs.files, [copy(["current.conf"], "/etc/app.conf"), copy(["conf/"], "/conf/")]),
        path.join(d, "..", path.basename(d) + ".tgz"),
    );
    const entries = await readLayerEntries(fs.readFileSync(l.file));
    const byName = new Map(entries.map((e) => [e.name.replace(/\/$/, ""), e]));
    assert.deepEqual(
        [byName.get("etc/app.conf")?.type, byName.get("etc/app.conf")?.content, byName.get("etc/app.conf")?.mode.toString(8)],
        ["file", "v=2\n", "755"],
    );
    assert.equal(byName.get("conf/latest.conf")?.type, "symlink");
});
