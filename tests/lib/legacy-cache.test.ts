/**
 * The shared stat cache of old versions (filehash-v1.json) is removed once, when this user's cache
 * file is first written, not on every save after that.
 */
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { hashFiles, resetCacheForTests, saveCache, statCacheFile } from "../../lib/hashing/filehash";
import { isolateCache, makeTree } from "./inputs.fixtures";

const cache = isolateCache();
const legacy = path.join(cache, "filehash-v1.json");

test("the legacy cache file goes with the first save of this user's cache; later saves leave the cache directory alone", async () => {
    const dir = makeTree({ "a.txt": "a\n", "b.txt": "b\n" });
    // Even with racyMs 0, a file whose ctime is not before the read's start is racy and not cached
    // (nothing to save); files made within the same millisecond as the read were, once, in CI.
    await new Promise((r) => setTimeout(r, 20));
    fs.writeFileSync(legacy, "{}");
    resetCacheForTests();
    await hashFiles(dir, ["a.txt"], { racyMs: 0 });
    saveCache();
    assert.ok(fs.existsSync(statCacheFile()), "this user's cache is written");
    assert.equal(fs.existsSync(legacy), false, "the legacy file is gone");

    // A later process: its cache file exists, so a save only writes it.
    resetCacheForTests();
    // The fs module object itself (the namespace import is a read-only view of it).
    const rm = mock.method(createRequire(__filename)("node:fs") as typeof fs, "rmSync");
    try {
        await hashFiles(dir, ["b.txt"], { racyMs: 0 });
        saveCache();
    } finally {
        rm.mock.restore();
    }
    assert.deepEqual(
        rm.mock.calls.map((c) => String(c.arguments[0])),
        [],
        "no file removed by a later save",
    );
});
