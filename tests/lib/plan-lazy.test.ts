/**
 * A warm plan never builds the file lists: a snapshot hit hands `files` over as a lazy getter (a
 * warm caller such as the Pulumi program needs only the hashes), and computePlan must pass it on
 * without reading it. The spy wraps the getter inputs.ts defines, and counts its calls (a read builds the list).
 */
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadStackConfig } from "../../lib/config";
import type { FileHashOptions } from "../../lib/hashing/filehash";
import { computePlan } from "../../lib/plan";
import { copyDir, isolateCache, tempDir } from "./inputs.fixtures";

isolateCache();
const REPO = path.resolve(__dirname, "../..");
const WARM: FileHashOptions = { cache: true, racyMs: 0 };

test("computePlan on warm snapshots leaves the base and app file lists unbuilt; read later, they equal a cold plan's", async () => {
    const dir = tempDir("thinlayer-lazy-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), "config: {}\n");
    copyDir(path.join(REPO, "examples/django-app"), path.join(dir, "examples/django-app"));
    const cfg = loadStackConfig(dir, "t");
    // A file changed in the very millisecond of the read is racy even with racyMs 0: let the copy age.
    await new Promise((r) => setTimeout(r, 20));
    const cold = await computePlan(cfg, WARM); // writes the snapshots

    let lazyLists = 0;
    let reads = 0;
    const define = Object.defineProperty;
    const spy = mock.method(Object, "defineProperty", function (this: unknown, o: object, key: PropertyKey, d: PropertyDescriptor) {
        if (key === "files" && typeof d.get === "function") {
            lazyLists++;
            const get = d.get;
            d = { ...d, get: () => (reads++, get()) };
        }
        return define.call(Object, o, key, d);
    });
    let warm: Awaited<ReturnType<typeof computePlan>>;
    try {
        warm = await computePlan(cfg, WARM);
    } finally {
        spy.mock.restore();
    }
    assert.equal(lazyLists, 2, "both images came from snapshots (each hands over a lazy list)");
    assert.equal(reads, 0, "computePlan read (so built) no file list");
    assert.equal(warm.base.hash, cold.base.hash);
    assert.equal(warm.app.hash, cold.app.hash);
    assert.equal(warm.releaseId, cold.releaseId);

    assert.deepEqual(warm.app.files, cold.app.files);
    assert.deepEqual(warm.base.files, cold.base.files);
    assert.deepEqual(JSON.parse(JSON.stringify(warm)), JSON.parse(JSON.stringify(cold)), "the plan serialises as a cold one does");
});
