/**
 * The bridge from the mocked engine to the real one: evaluate the whole program with mocks that run
 * each image local.Command's command line for real (sh -c, in its dir), against a real registry
 * (Distribution) with buildah as the base builder. The refs the program outputs must be the images
 * the registry holds under the planned tags; a second evaluation reuses them.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { needTools } from "../helpers/tools";
import { startRegistry } from "../helpers/registry";
import { buildahStorage, makeProject, skopeo, tempDir } from "../helpers/images";
import { evaluateProgram } from "../helpers/diff";

void test("each image command the program declares runs for real and yields the ref the program outputs", { timeout: 600_000 }, async (t) => {
    if (!needTools(t, "docker-registry", "buildah", "skopeo")) return;
    const registry = await startRegistry();
    const storage = buildahStorage();
    const dir = tempDir("thinlayer-real-");
    try {
        const project = makeProject(path.join(dir, "app"));
        fs.mkdirSync(path.join(project.contextDir, "records", "migrations"), { recursive: true });
        fs.writeFileSync(path.join(project.contextDir, "records", "migrations", "0001_initial.py"), "# initial\n");
        const opts = {
            stack: "uat",
            config: { appDir: project.contextDir, registry: registry.host, builder: "buildah" },
            secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] },
            mocks: { runCommands: true, commandEnv: storage.env as Record<string, string> },
        };
        const first = await evaluateProgram(opts);
        const out = first.outputs as Record<string, any>;
        for (const [image, repo, tag] of [
            ["base", "thinlayer/base", out.baseTag],
            ["app", "thinlayer/app", out.appTag],
        ]) {
            const ref = image === "base" ? out.baseImageRef : out.appImageRef;
            assert.match(ref, new RegExp(`^${registry.host.replace(/\./g, "\\.")}/${repo}@sha256:[a-f0-9]{64}$`), `${image} ref`);
            // The registry (read by skopeo, independently) serves exactly that digest under the planned tag.
            const inspected = JSON.parse(skopeo(["inspect", "--tls-verify=false", "--raw", `docker://${registry.host}/${repo}:${tag}`]));
            assert.ok(inspected.schemaVersion === 2);
            const digest = skopeo(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${registry.host}/${repo}:${tag}`]).trim();
            assert.equal(ref, `${registry.host}/${repo}@${digest}`);
            // The stack's keep tag (--keep-tag uat-<tag>) names the same digest.
            const kept = skopeo(["inspect", "--tls-verify=false", "--format", "{{.Digest}}", `docker://${registry.host}/${repo}:uat-${tag}`]).trim();
            assert.equal(kept, digest);
        }
        assert.deepEqual(out.builtOrReused, { base: "built", app: "built" });
        // The workloads run that very ref.
        const web = first.resources.find((r) => r.name === "app-web");
        assert.equal((web?.inputs as any).spec.template.spec.containers[0].image, out.appImageRef);

        // Same files, fresh state: the registry is the source of truth, so nothing is rebuilt.
        const second = await evaluateProgram(opts);
        assert.deepEqual(second.outputs.builtOrReused, { base: "reused", app: "reused" });
        assert.equal(second.outputs.appImageRef, out.appImageRef);
        assert.equal(second.outputs.baseImageRef, out.baseImageRef);
    } finally {
        await registry.stop();
        storage.remove();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
