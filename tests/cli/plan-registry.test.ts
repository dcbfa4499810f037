/** `thinlayer plan --registry-check` against a real registry: build until a tag exists, then reuse. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { needTools } from "../helpers/tools";
import { startRegistry } from "../helpers/registry";
import { pushScratchImage } from "../helpers/images";
import { RegistryClient } from "../../lib/oci/client";
import { copyDir, isolateCache, tempDir } from "../lib/inputs.fixtures";

const cacheDir = isolateCache();
const REPO = path.resolve(__dirname, "../..");

void test("--registry-check: build for missing tags, reuse once the tag is in the registry", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const reg = await startRegistry();
    t.after(() => reg.stop());
    const dir = tempDir("thinlayer-proj-");
    fs.copyFileSync(path.join(REPO, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    fs.writeFileSync(path.join(dir, "Pulumi.t.yaml"), `config:\n  thinlayer:registry: "${reg.host}"\n`);
    copyDir(path.join(REPO, "examples/django-app"), path.join(dir, "examples/django-app"));
    const plan = () => {
        const r = spawnSync(process.execPath, [path.join(REPO, "bin/thinlayer.js"), "plan", "--project", dir, "--stack", "t", "--json", "--registry-check"], {
            encoding: "utf8",
            env: { ...process.env, THINLAYER_CACHE_DIR: cacheDir },
        });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout) as { base: { tag: string; repository: string }; status: Record<"base" | "app", { status: string }> };
    };
    const p1 = plan();
    assert.deepEqual([p1.status.base.status, p1.status.app.status], ["build", "build"]);
    await pushScratchImage(new RegistryClient(reg.host), p1.base.repository, p1.base.tag, []);
    const p2 = plan();
    assert.deepEqual([p2.status.base.status, p2.status.app.status], ["reuse", "build"]);

    await reg.stop();
    const p3 = plan();
    assert.deepEqual([p3.status.base.status, p3.status.app.status], ["unknown", "unknown"], "an unreachable registry is unknown, not an error");
});
