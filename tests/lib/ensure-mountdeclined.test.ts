/**
 * A registry that declines cross-repository blob mounts, as ECR does unless the account setting
 * BLOB_MOUNTING is enabled: the mount POST answers 202 with an ordinary upload session. The
 * daemonless app build never holds base layers, so it must hand over to the builder (saying why)
 * and cancel the upload sessions the declined mounts opened.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { ensureImage } from "../../lib/build/ensure";
import { appTag, computeAppInputs } from "../../lib/plan";
import { RegistryClient } from "../../lib/oci/client";
import { buildahStorage, makeProject, pushScratchImage, skopeoConfig, tempDir } from "../helpers/images";
import { startProxy, startRegistry, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const PLATFORM = "linux/amd64";
const BASE_HASH = "e".repeat(64);

let reg: StartedRegistry | undefined;
let storage: ReturnType<typeof buildahStorage> | undefined;
let project: ReturnType<typeof makeProject>;
let baseDigest = "";
let baseLayers: string[] = [];

before(async () => {
    if (!which("busybox")) return;
    project = makeProject(tempDir());
    if (which("buildah")) storage = buildahStorage();
    if (!which("docker-registry")) return;
    reg = await startRegistry();
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "v1", [
        [{ dest: "/bin/busybox", type: "file", source: path.join(project.contextDir, "busybox"), mode: 0o755, uid: 0, gid: 0 }],
    ]);
    baseDigest = base.digest;
    baseLayers = base.layerDigests;
});
after(async () => {
    await reg?.stop();
    storage?.remove();
});

/** Opens `n` real upload sessions in `repo`; returns their Location paths (relative, so they go through the proxy). */
async function openSessions(host: string, repo: string, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
        const r = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: "POST" });
        await r.arrayBuffer();
        assert.equal(r.status, 202);
        const u = new URL(r.headers.get("location") as string, `http://${host}`);
        out.push(u.pathname + u.search);
    }
    return out;
}

test("mount declined (202 + an upload session, as ECR without BLOB_MOUNTING): the builder builds the app, the reason is logged, the sessions are cancelled", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const repo = "t/app-nomount";
    // Each mount attempt gets a real upload session of the target repository, as ECR gives.
    const sessions = await openSessions(host, repo, 20);
    const handedOut: string[] = [];
    const proxy = await startProxy(host, {
        intercept: (r) => {
            if (r.method !== "POST" || !r.url.includes("mount=") || sessions.length === 0) return undefined;
            const loc = sessions.shift() as string;
            handedOut.push(loc);
            return { status: 202, headers: { Location: loc, "Docker-Upload-UUID": loc.split("/").pop()?.split("?")[0] ?? "" } };
        },
    });
    try {
        const ai = await computeAppInputs(
            { contextDir: project.contextDir, dockerfile: project.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: BASE_HASH },
            { cache: false },
        );
        const lines: string[] = [];
        const r = await ensureImage(
            {
                image: "app",
                context: project.contextDir,
                dockerfile: project.appDockerfile,
                repository: `${proxy.host}/${repo}`,
                platform: PLATFORM,
                expectTag: appTag(ai.hash),
                baseRef: `${proxy.host}/t/base@${baseDigest}`,
                baseHash: BASE_HASH,
                builder: "buildah",
            },
            { log: (l) => lines.push(l), builderEnv: storage?.env },
        );
        assert.deepEqual([r.action, r.how], ["built", "buildah"]);
        const reason = lines.find((l) => l.includes("daemonless build not possible"));
        assert.ok(reason, lines.join("\n"));
        assert.ok(reason.includes(`registry declined cross-repository mount of ${baseLayers[0]} from t/base`), reason);
        assert.ok(reason.includes("aws ecr put-account-setting --name BLOB_MOUNTING --value ENABLED"), reason);
        // The image is there, on the base's layer (by content: buildah, unable to mount, re-compressed it to upload it).
        const appCfg = skopeoConfig(`${host}/${repo}@${r.digest}`);
        const baseCfg = skopeoConfig(`${host}/t/base@${baseDigest}`);
        assert.equal(appCfg.rootfs.diff_ids[0], baseCfg.rootfs.diff_ids[0]);
        assert.ok(appCfg.rootfs.diff_ids.length > baseCfg.rootfs.diff_ids.length);
        // The session our declined base-layer mount opened (the first one: the daemonless attempt runs before the builder) was cancelled, not left dangling.
        const mountPosts = proxy.counters.requests.filter((q) => q.method === "POST" && q.url.includes("mount="));
        const ours = mountPosts.findIndex((q) => q.url.includes(`mount=${encodeURIComponent(baseLayers[0])}`));
        assert.ok(ours >= 0 && ours < handedOut.length);
        const deletes = proxy.counters.requests.filter((q) => q.method === "DELETE").map((q) => q.url);
        assert.ok(deletes.includes(handedOut[ours]), `DELETEs ${JSON.stringify(deletes)}; our session ${handedOut[ours]}`);
    } finally {
        await proxy.stop();
    }
});
