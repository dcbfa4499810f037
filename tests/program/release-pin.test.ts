/**
 * The rollback pin as the program honours it: no build resources, the pinned image resolved to a
 * digest (ECR: aws.ecr.getImage, mocked; any other registry: a real registry), a clear error when the
 * image is gone.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- resource inputs the mocked engine records are untyped JSON */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";
import { ecrUrl } from "../helpers/mocks";
import { pushScratchImage } from "../helpers/images";
import { startRegistry } from "../helpers/registry";
import { needTools } from "../helpers/tools";
import { RegistryClient } from "../../lib/oci/client";

const SECRETS = { secretSettings: ["DJANGO_SECRET_KEY=x"] };
const DIGEST = `sha256:${"5".repeat(64)}`;

void test("a tag pin: no image builds, the workloads run the tag's digest, no migration Job without the release's migrations hash", async () => {
    const app = copyExampleApp();
    try {
        const source = await evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: SECRETS });
        const pinned = await evaluateProgram({
            stack: "uat",
            config: { appDir: app.dir, releaseImage: "app-0123456789ab" },
            secrets: SECRETS,
            mocks: { registryImages: { [`${ecrUrl("thinlayer/app")}:app-0123456789ab`]: DIGEST } },
        });
        assert.deepEqual(
            pinned.resources.filter((r) => r.type.startsWith("thinlayer:image:") || r.type === "command:local:Command"),
            [],
        );
        assert.equal(pinned.outputs.appImageRef, `${ecrUrl("thinlayer/app")}@${DIGEST}`);
        assert.equal(pinned.outputs.pinned, true);
        assert.deepEqual(pinned.outputs.builtOrReused, { base: "pinned", app: "pinned" });
        for (const name of ["app-web", "app-worker-celery"]) {
            const d = pinned.resources.find((r) => r.name === name)?.inputs as any;
            assert.equal(d.spec.template.spec.containers[0].image, `${ecrUrl("thinlayer/app")}@${DIGEST}`);
        }
        // No releaseMigrationsHash with this pin (as `rollback --image` writes it): no migration Job
        // while pinned, so the checkout's migrations never run in the pinned image.
        assert.equal(pinned.outputs.migrationJob, undefined);
        assert.ok(source.outputs.migrationJob !== undefined);
        assert.deepEqual(
            pinned.resources.filter((r) => r.type === "kubernetes:batch/v1:Job"),
            [],
        );
        // The repositories stay as they are: pinning never touches what the registry keeps.
        const repos = (e: typeof source) => JSON.stringify(e.resources.filter((r) => r.type.startsWith("aws:")));
        assert.equal(repos(pinned), repos(source));
    } finally {
        app.cleanup();
    }
});

void test("a digest pin is checked against the registry and deployed as is", async () => {
    const app = copyExampleApp();
    try {
        const ref = `${ecrUrl("thinlayer/app")}@${DIGEST}`;
        const pinned = await evaluateProgram({ stack: "prod", config: { appDir: app.dir, releaseImage: ref }, secrets: SECRETS });
        assert.equal(pinned.outputs.appImageRef, ref);
    } finally {
        app.cleanup();
    }
});

void test("a pinned image the registry no longer has fails the evaluation (preview included) with the fix", async () => {
    const app = copyExampleApp();
    try {
        const name = `${ecrUrl("thinlayer/app")}:app-0123456789ab`;
        await assert.rejects(
            evaluateProgram({
                stack: "uat",
                preview: true,
                config: { appDir: app.dir, releaseImage: "app-0123456789ab" },
                secrets: SECRETS,
                mocks: { absentImages: [name] },
            }),
            (e: Error) => {
                assert.match(
                    e.message,
                    /thinlayer:releaseImage: got "app-0123456789ab"; expected an image present in the registry; looking up 123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/thinlayer\/app:app-0123456789ab failed: .*ImageNotFoundException/,
                );
                assert.match(
                    e.message,
                    /Fix: pin a release still inside the lifecycle window \(`thinlayer rollback --steps N`\), or build from source \(`thinlayer rollback --clear`\)/,
                );
                return true;
            },
        );
    } finally {
        app.cleanup();
    }
});

void test("on a registry other than ECR, a pin is looked up in the real registry with thinlayer's client; a missing one fails the same way", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const registry = await startRegistry();
    const app = copyExampleApp();
    try {
        const client = new RegistryClient(registry.host);
        const { digest } = await pushScratchImage(client, "thinlayer/app", "app-0123456789ab", [
            [{ dest: "/etc/thinlayer-pin-test", type: "directory", mode: 0o755, uid: 0, gid: 0 }],
        ]);
        const pinned = await evaluateProgram({
            stack: "uat",
            config: { appDir: app.dir, registry: registry.host, releaseImage: "app-0123456789ab" },
            secrets: SECRETS,
        });
        assert.equal(pinned.outputs.appImageRef, `${registry.host}/thinlayer/app@${digest}`);
        assert.deepEqual(
            pinned.resources.filter((r) => r.type.startsWith("aws:")),
            [],
            "no ECR resources for another registry",
        );
        const byDigest = await evaluateProgram({
            stack: "uat",
            config: { appDir: app.dir, registry: registry.host, releaseImage: `${registry.host}/thinlayer/app@${digest}` },
            secrets: SECRETS,
        });
        assert.equal(byDigest.outputs.appImageRef, `${registry.host}/thinlayer/app@${digest}`);
        const host = registry.host.replace(/\./g, "\\.");
        await assert.rejects(
            evaluateProgram({
                stack: "uat",
                preview: true,
                config: { appDir: app.dir, registry: registry.host, releaseImage: "app-ffffffffffff" },
                secrets: SECRETS,
            }),
            new RegExp(
                `thinlayer:releaseImage: got "app-ffffffffffff"; expected an image present in the registry; looking up ${host}/thinlayer/app:app-ffffffffffff failed: .*404`,
            ),
        );
    } finally {
        app.cleanup();
        await registry.stop();
    }
});
