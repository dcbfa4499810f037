/**
 * `pulumi preview`: nothing is built (a local.Command's create never runs in preview — the command
 * provider returns before running it — so the image refs are unknown), and the program tells, per
 * image, whether its tag is already in the registry. No registry access is not an error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { needTools } from "../helpers/tools";
import { startRegistry } from "../helpers/registry";
import { pushScratchImage } from "../helpers/images";
import { RegistryClient } from "../../lib/oci/client";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";
import { UNKNOWN } from "../helpers/mocks";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=x"] };

void test("preview logs reuse for a tag the registry has and build for one it lacks", { timeout: 120_000 }, async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const registry = await startRegistry();
    const app = copyExampleApp();
    try {
        const opts = { stack: "uat", preview: true, config: { appDir: app.dir, registry: registry.host }, secrets: SECRETS };
        const first = await evaluateProgram(opts);
        const baseTag = String(first.outputs.baseTag);
        const appTag = String(first.outputs.appTag);
        assert.ok(
            first.logs.includes(`info: base image ${registry.host}/thinlayer/base:${baseTag} missing: \`pulumi up\` builds and pushes it`),
            first.logs.join("\n"),
        );

        await pushScratchImage(new RegistryClient(registry.host), "thinlayer/base", baseTag, [
            [{ dest: "/etc", type: "directory", mode: 0o755, uid: 0, gid: 0 }],
        ]);
        const second = await evaluateProgram(opts);
        assert.deepEqual(second.logs.filter((l) => l.includes(" image ")).sort(), [
            `info: app image ${registry.host}/thinlayer/app:${appTag} missing: \`pulumi up\` builds and pushes it`,
            `info: base image ${registry.host}/thinlayer/base:${baseTag} exists: reuse, nothing to build`,
        ]);
        // Nothing ran: the images are unknown until `pulumi up`, and so is what the workloads run.
        assert.equal(second.outputs.appImageRef, UNKNOWN);
        assert.deepEqual(second.outputs.builtOrReused, { base: UNKNOWN, app: UNKNOWN });
        // The hashes, tags and the release id are known in preview: they come from files.
        assert.match(String(second.outputs.appHash), /^[a-f0-9]{64}$/);
        assert.match(String(second.outputs.releaseId), /^rel-[a-f0-9]{12}$/);
    } finally {
        await registry.stop();
        app.cleanup();
    }
});

void test("preview without registry access says unknown and succeeds", async () => {
    const app = copyExampleApp();
    try {
        const r = await evaluateProgram({ stack: "uat", preview: true, config: { appDir: app.dir, registry: "127.0.0.1:9" }, secrets: SECRETS });
        const lines = r.logs.filter((l) => l.includes(" image "));
        assert.equal(lines.length, 2);
        for (const l of lines) assert.match(l, /unknown \(no registry access from here\): `pulumi up` checks, then reuses or builds$/);
    } finally {
        app.cleanup();
    }
});
