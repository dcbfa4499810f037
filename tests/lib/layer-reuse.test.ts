/**
 * Reusing the previous layer's gzip chunks (lib/layer/writer.ts LayerReuse): a write that reuses
 * gives exactly the bytes a write from nothing gives, after every kind of edit; an edit re-deflates
 * only the chunks around it; a damaged cache entry costs reuse, never correctness.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { CHUNK_MAX_BYTES, chunkCuts, REUSE_KEEP, writeLayer, type LayerBlob, type LayerEntry, type LayerReuse } from "../../lib/layer/writer";
import { tempDir } from "../helpers/images";

/** Python-like text: compressible, and different in every file. */
function source(bytes: number): string {
    const ids = randomBytes(Math.ceil(bytes / 8)).toString("hex");
    let out = "";
    for (let i = 0; out.length < bytes; i += 6)
        out += `def view_${ids.slice(i % ids.length, (i % ids.length) + 6)}(request):\n    return render(request, "page.html")\n`;
    return out.slice(0, bytes);
}

function app(dir: string): void {
    fs.mkdirSync(path.join(dir, "app", "views"), { recursive: true });
    for (let i = 0; i < 60; i++) fs.writeFileSync(path.join(dir, "app", "views", `v${String(i).padStart(2, "0")}.py`), source(40_000 + i * 997));
    for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(dir, "app", `small${i}.py`), source(300 + i * 31));
    fs.writeFileSync(path.join(dir, "app", "big.py"), source(CHUNK_MAX_BYTES * 2 + 5000));
    fs.writeFileSync(path.join(dir, "app", "logo.bin"), randomBytes(700_000));
}

function entries(dir: string): LayerEntry[] {
    const out: LayerEntry[] = [];
    const walk = (rel: string) => {
        for (const name of fs.readdirSync(path.join(dir, rel))) {
            const r = path.posix.join(rel, name);
            if (fs.statSync(path.join(dir, r)).isDirectory()) walk(r);
            else out.push({ dest: `/srv/${r}`, type: "file", source: path.join(dir, r), mode: 0o644, uid: 0, gid: 0 });
        }
    };
    walk("app");
    return out;
}

const total = (b: LayerBlob) => b.chunks.reused + b.chunks.deflated;

/** Writes with reuse and from nothing; asserts equal bytes; returns the reusing write. */
async function both(dir: string, reuse: LayerReuse): Promise<LayerBlob> {
    const warm = await writeLayer(entries(dir), undefined, { reuse });
    await warm.saved; // the entry the next write reuses
    const cold = await writeLayer(entries(dir), undefined);
    assert.equal(cold.chunks.reused, 0, "no reuse asked: nothing reused");
    assert.deepEqual(warm.data, cold.data, "a reusing write gives the bytes of a write from nothing");
    assert.deepEqual([warm.digest, warm.diffId, warm.size], [cold.digest, cold.diffId, cold.size]);
    assert.deepEqual(zlib.gunzipSync(warm.data as Buffer).length, warm.tarSize);
    return warm;
}

test("after each kind of edit, a reusing write is byte-identical to a fresh one and re-deflates only the chunks around the edit", async () => {
    const dir = tempDir();
    const reuse = { slot: "test-app", dir: tempDir() };
    app(dir);
    const first = await both(dir, reuse);
    assert.equal(first.chunks.reused, 0, "nothing to reuse yet");
    assert.ok(total(first) >= 8, `several chunks: ${total(first)}`);

    const again = await both(dir, reuse);
    assert.deepEqual(again.chunks, { reused: total(first), deflated: 0 }, "no change: every chunk reused");

    const v = (i: number) => path.join(dir, "app", "views", `v${String(i).padStart(2, "0")}.py`);
    const edits: Array<[string, () => void]> = [
        ["same-size edit", () => fs.writeFileSync(v(30), source(fs.statSync(v(30)).size))],
        ["a file grows", () => fs.appendFileSync(v(10), "\n# grown\n" + source(3000))],
        ["a file added", () => fs.writeFileSync(path.join(dir, "app", "views", "v30a.py"), source(25_000))],
        ["a file deleted", () => fs.rmSync(v(45))],
        [
            "an edit deep in a large file",
            () => {
                const f = path.join(dir, "app", "big.py");
                const fd = fs.openSync(f, "r+");
                fs.writeSync(fd, "# edited\n", CHUNK_MAX_BYTES + 1000);
                fs.closeSync(fd);
            },
        ],
    ];
    for (const [what, edit] of edits) {
        edit();
        const b = await both(dir, reuse);
        assert.ok(b.chunks.deflated >= 1 && b.chunks.deflated <= 3, `${what}: ${b.chunks.deflated} of ${total(b)} chunks deflated`);
        assert.ok(b.chunks.reused >= total(b) - 3, `${what}: ${b.chunks.reused} of ${total(b)} reused`);
    }
});

test("a damaged or foreign cache entry is never trusted: the damaged chunk is deflated afresh, the bytes stay exact", async () => {
    const dir = tempDir();
    const cache = tempDir();
    const reuse = { slot: "damaged", dir: cache };
    app(dir);
    const first = await both(dir, reuse);
    const blob = fs.readdirSync(path.join(cache, "layers")).find((f) => f.endsWith(".gz")) as string;
    const file = path.join(cache, "layers", blob);
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const b = await both(dir, reuse);
    assert.deepEqual(b.chunks, { reused: total(first) - 1, deflated: 1 }, "one chunk damaged, one re-deflated");

    // A record's crc32 altered (the trailer's is combined from them): its check catches it, and
    // the bytes (trailer included: both() gunzips them) are still a fresh write's.
    const indexFile = path.join(cache, "layers", blob.replace(/\.gz$/, ".json"));
    const index = JSON.parse(fs.readFileSync(indexFile, "utf8")) as { chunks: Array<{ crc: number }> };
    index.chunks[1].crc ^= 1;
    fs.writeFileSync(indexFile, JSON.stringify(index));
    assert.deepEqual((await both(dir, reuse)).chunks, { reused: total(first) - 1, deflated: 1 }, "one record altered, one re-deflated");

    const other = await both(dir, { slot: "another app", dir: cache });
    assert.equal(other.chunks.reused, 0, "another slot reuses nothing");

    fs.writeFileSync(path.join(cache, "layers", blob.replace(/\.gz$/, ".json")), "{not json");
    assert.equal((await both(dir, reuse)).chunks.reused, 0, "an unreadable index: a miss");
});

test("THINLAYER_LAYER_REUSE=0 turns reuse off", async (t) => {
    const dir = tempDir();
    const reuse = { slot: "off", dir: tempDir() };
    app(dir);
    await both(dir, reuse);
    process.env.THINLAYER_LAYER_REUSE = "0";
    t.after(() => delete process.env.THINLAYER_LAYER_REUSE);
    assert.equal((await both(dir, reuse)).chunks.reused, 0);
});

test("the cache keeps the last layer of the REUSE_KEEP most recently written apps", async () => {
    const dir = tempDir();
    const cache = tempDir();
    fs.writeFileSync(path.join(dir, "a.py"), source(2000));
    const one: LayerEntry[] = [{ dest: "/a.py", type: "file", source: path.join(dir, "a.py"), mode: 0o644, uid: 0, gid: 0 }];
    for (let i = 0; i <= REUSE_KEEP + 2; i++) await (await writeLayer(one, undefined, { reuse: { slot: `app ${i}`, dir: cache } })).saved;
    const left = fs.readdirSync(path.join(cache, "layers")).sort();
    assert.equal(left.filter((f) => f.endsWith(".json")).length, REUSE_KEEP);
    assert.equal(left.filter((f) => f.endsWith(".gz")).length, REUSE_KEEP);
    const last = await writeLayer(one, undefined, { reuse: { slot: `app ${REUSE_KEEP + 2}`, dir: cache } });
    assert.equal(last.chunks.reused, 1, "the newest app's entry is kept");
});

test("a write gives the event loop turns while it goes, even when every chunk is reused (nothing to wait for)", async () => {
    // The rest of a write is synchronous; without those turns a caller's network I/O (the base
    // mounts, the streamed upload of the chunks written so far) waited for the whole layer.
    const dir = tempDir();
    const reuse = { slot: "turns", dir: tempDir() };
    app(dir);
    await (
        await writeLayer(entries(dir), undefined, { reuse })
    ).saved;
    let turned = false;
    let dataAfterTurn = 0;
    setImmediate(() => (turned = true));
    const b = await writeLayer(entries(dir), undefined, { reuse, onData: () => void (turned && dataAfterTurn++) });
    assert.equal(b.chunks.deflated, 0, "every chunk reused");
    assert.ok(total(b) > 4, `several chunks (${total(b)})`);
    assert.ok(dataAfterTurn > 0, "the event loop ran (a setImmediate) before the layer's last bytes were given out");
});

test("an edit in the last 32 KiB before a cut re-deflates the next chunk too (its dictionary changed): never reused with another dictionary", async () => {
    const dir = tempDir();
    const reuse = { slot: "dictionary", dir: tempDir() };
    app(dir);
    const first = await both(dir, reuse);
    // The file whose data ends right before a cut: its last byte is in the next chunk's dictionary.
    const tarBytes = zlib.gunzipSync(first.data as Buffer);
    const cuts = new Set(chunkCuts(tarBytes));
    let edited: string | undefined;
    for (let off = 0; off + 512 <= tarBytes.length && edited === undefined;) {
        const name = tarBytes.toString("latin1", off, off + 100).replace(/\0.*$/s, "");
        const size = parseInt(tarBytes.toString("latin1", off + 124, off + 136), 8);
        const next = off + 512 + Math.ceil(size / 512) * 512;
        if (name.endsWith(".py") && size > 0 && cuts.has(next) && size % 512 !== 0) edited = name;
        off = next;
    }
    assert.ok(edited, "a file that ends right before a cut");
    const file = path.join(dir, (edited as string).replace(/^srv\//, ""));
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1] === 0x41 ? 0x42 : 0x41; // same size, same cuts
    fs.writeFileSync(file, bytes);
    const b = await both(dir, reuse); // byte-identical to a write from nothing
    assert.equal(b.chunks.deflated, 2, `the edited chunk and the next: ${JSON.stringify(b.chunks)}`);
});
