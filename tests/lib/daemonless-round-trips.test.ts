/**
 * The round trips the daemonless app build saves, against a real registry through a counting
 * proxy. The base's manifests and configs from this machine's copy (lib/build/daemonless.ts,
 * baseFromCache): a second build reads nothing of the base from the registry and makes the same
 * image; a damaged copy is a miss; a base the registry no longer has fails as before, untagged.
 * The config through an upload session opened with the layer's (layerStreamer's putSmall): one
 * PUT, no HEAD or mount; when that PUT fails, the usual upload, and the same image.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureImage, type EnsureResult } from "../../lib/build/ensure";
import { appTag, computeAppInputs } from "../../lib/plan";
import { RegistryClient } from "../../lib/oci/client";
import { BUSYBOX, pushScratchImage, tempDir, writeFiles } from "../helpers/images";
import { startProxy, startRegistry, type StartedProxy, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

// This file's own cache (the copies are per machine; other test files must not lend theirs).
const cache = tempDir("thinlayer-base-cache-");
process.env.THINLAYER_CACHE_DIR = cache;
const copies = path.join(cache, "base-images");

let reg: StartedRegistry | undefined;
let proxy: StartedProxy | undefined;
const ctx = tempDir("thinlayer-base-cache-ctx-");
writeFiles(ctx, { Dockerfile: "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nWORKDIR /srv\nCOPY app.py ./\n", "app.py": "print('hi')\n" });

before(async () => {
    if (!which("docker-registry")) return;
    reg = await startRegistry();
    proxy = await startProxy(reg.host);
});
after(async () => {
    await proxy?.stop();
    await reg?.stop();
    fs.rmSync(cache, { recursive: true, force: true });
});

const busybox = [{ dest: "/bin/busybox", type: "file" as const, source: BUSYBOX, mode: 0o755, uid: 0, gid: 0 }];

async function build(baseRef: string, repository: string, log: (line: string) => void = () => undefined): Promise<EnsureResult> {
    const baseHash = "b".repeat(64);
    const ai = await computeAppInputs(
        { contextDir: ctx, dockerfile: path.join(ctx, "Dockerfile"), buildArgs: {}, platform: "linux/amd64", baseHash },
        { cache: false },
    );
    return ensureImage(
        {
            image: "app",
            context: ctx,
            dockerfile: path.join(ctx, "Dockerfile"),
            repository,
            platform: "linux/amd64",
            expectTag: appTag(ai.hash),
            baseRef,
            baseHash,
        },
        { log },
    );
}

/** GETs of the base repository's manifests and blobs the proxy forwarded since its last reset. */
const baseReads = (p: StartedProxy) => p.counters.requests.filter((r) => r.method === "GET" && r.url.startsWith("/v2/t/base")).map((r) => r.url);

for (const platforms of [undefined, ["linux/amd64", "linux/arm64"]]) {
    void test(`a ${platforms ? "multi-platform (index)" : "single-platform"} base is read from the registry once; the next build reads this machine's copy, same image`, async (t) => {
        if (!needTools(t, "docker-registry", "busybox") || !reg || !proxy) return;
        fs.rmSync(copies, { recursive: true, force: true });
        const direct = new RegistryClient(reg.host);
        const n = platforms?.length ?? 1;
        const base = await pushScratchImage(direct, "t/base", `v${n}`, [busybox], { platforms, env: ["PATH=/bin", "HOME=/root"] });
        const baseRef = `${proxy.host}/t/base@${base.digest}`;

        proxy.reset();
        const lines: string[] = [];
        const first = await build(baseRef, `${proxy.host}/t/app-${n}-a`, (l) => lines.push(l));
        // One early session, one config through it; an index's other configs the usual way (never a second PUT on it).
        assert.deepEqual(
            lines.filter((l) => l.includes("early session")),
            [],
        );
        assert.equal(first.how, "daemonless");
        // The top manifest, each platform's manifest and config.
        assert.equal(baseReads(proxy).length, n > 1 ? 1 + 2 * n : 2, baseReads(proxy).join("\n"));
        assert.equal(fs.readdirSync(copies).filter((f) => !f.endsWith(".type")).length, n > 1 ? 1 + 2 * n : 2);

        proxy.reset();
        const second = await build(baseRef, `${proxy.host}/t/app-${n}-b`);
        assert.deepEqual(baseReads(proxy), []); // nothing of the base read: HEADs and mounts only
        assert.ok(
            proxy.counters.requests.some((r) => r.method === "HEAD" && r.url === `/v2/t/base/manifests/${base.digest}`),
            "the registry is asked whether it has the base",
        );
        assert.equal(second.action, "built");
        assert.equal(second.bytesDownloaded, 0);
        assert.equal(second.digest, first.digest); // the same inputs and base: the same image, in another repository
    });
}

void test("a damaged copy is a miss: the base is read from the registry again, and the image is the same", async (t) => {
    if (!needTools(t, "docker-registry", "busybox") || !reg || !proxy) return;
    fs.rmSync(copies, { recursive: true, force: true });
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "damaged", [busybox], { env: ["PATH=/bin", "X=1"] });
    const baseRef = `${proxy.host}/t/base@${base.digest}`;
    const first = await build(baseRef, `${proxy.host}/t/app-d-a`);
    // The config's copy altered (WorkingDir changes where COPY puts files): must not be believed.
    const cfg = fs.readdirSync(copies).find((f) => !f.endsWith(".type") && f !== base.digest.slice(7)) as string;
    const file = path.join(copies, cfg);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('"config":{', '"config":{"WorkingDir":"/elsewhere",'));
    proxy.reset();
    const second = await build(baseRef, `${proxy.host}/t/app-d-b`);
    assert.deepEqual(baseReads(proxy), [`/v2/t/base/manifests/${base.digest}`, `/v2/t/base/blobs/sha256:${cfg}`]);
    assert.equal(second.digest, first.digest);
});

void test("a base the registry no longer has fails as when it is read there, even from this machine's copy; nothing is tagged", async (t) => {
    if (!needTools(t, "docker-registry", "busybox") || !reg || !proxy) return;
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "gone", [busybox], { env: ["PATH=/bin", "X=2"] });
    await build(`${proxy.host}/t/base@${base.digest}`, `${proxy.host}/t/app-g-a`); // reads it, keeps the copy
    // The registry loses the base manifest (its blobs stay, as until a garbage collection).
    proxy.reset();
    const gone = await startProxy(reg.host, {
        intercept: (r) =>
            r.url === `/v2/t/base/manifests/${base.digest}`
                ? { status: 404, body: { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] } }
                : undefined,
    });
    try {
        await assert.rejects(build(`${gone.host}/t/base@${base.digest}`, `${gone.host}/t/app-g-b`), {
            message: `base image ${gone.host}/t/base@${base.digest} is not in the registry (MANIFEST_UNKNOWN). Fix: run \`thinlayer ensure base\` first and pass the ref it prints as --base-ref.`,
        });
        assert.ok(!gone.counters.requests.some((r) => r.method === "PUT" && r.url.includes("/manifests/")), "no manifest put");
    } finally {
        await gone.stop();
    }
});

/** The requests the proxy forwarded for blob `digest` (HEADs, mount POSTs, PUTs naming it). */
const blobRequests = (p: StartedProxy, digest: string) =>
    p.counters.requests
        .filter((r) => r.url.includes(digest) || r.url.includes(encodeURIComponent(digest)))
        .map((r) => `${r.method} ${r.url.replace(/\?.*digest=/, "?digest=").split("&")[0]}`);

async function configOf(host: string, repo: string, digest: string): Promise<string> {
    const m = JSON.parse((await new RegistryClient(host).getManifest(repo, digest)).bytes.toString("utf8")) as { config: { digest: string } };
    return m.config.digest;
}

void test("the config goes up in one PUT, through a session opened alongside the layer's; none is left open", async (t) => {
    if (!needTools(t, "docker-registry", "busybox") || !reg || !proxy) return;
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "cfg", [busybox], { env: ["PATH=/bin", "X=3"] });
    writeFiles(ctx, { "app.py": "print('config session')\n" });
    proxy.reset();
    const r = await build(`${proxy.host}/t/base@${base.digest}`, `${proxy.host}/t/app-c`);
    const cfg = await configOf(reg.host, "t/app-c", r.digest);
    const seen = blobRequests(proxy, cfg);
    assert.equal(seen.length, 1, seen.join("\n")); // no HEAD, no mount POST
    assert.match(seen[0], /^PUT \/v2\/t\/app-c\/blobs\/uploads\/[^?]+\?digest=/);
    // Every session opened (the layer's, the config's, the attestation's) was completed by a PUT; none cancelled.
    const sessions = (m: string) =>
        proxy?.counters.requests.filter((x) => x.method === m && x.url.startsWith("/v2/t/app-c/blobs/uploads/") && !x.url.includes("mount=")).length;
    assert.equal(sessions("POST"), sessions("PUT"));
    assert.equal(proxy.counters.requests.filter((x) => x.method === "DELETE").length, 0);
});

void test("when the early session's PUT fails, the config is uploaded as usual, the same config", async (t) => {
    if (!needTools(t, "docker-registry", "busybox") || !reg) return;
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "cfg-fail", [busybox], { env: ["PATH=/bin", "X=4"] });
    writeFiles(ctx, { "app.py": "print('config fallback')\n" });
    const ok = await build(`${reg.host}/t/base@${base.digest}`, `${reg.host}/t/app-f-a`);
    const cfg = await configOf(reg.host, "t/app-f-a", ok.digest);
    // The first PUT of the config answers 500 (without reaching the registry); a later one passes.
    let failed = 0;
    const flaky = await startProxy(reg.host, {
        intercept: (x) =>
            x.method === "PUT" && x.url.includes(encodeURIComponent(cfg)) && failed++ === 0
                ? { status: 500, body: { errors: [{ code: "UNKNOWN", message: "injected" }] } }
                : undefined,
    });
    try {
        const again = await build(`${flaky.host}/t/base@${base.digest}`, `${flaky.host}/t/app-f-b`);
        // The same config (the manifest differs only in the base's name annotation: another host).
        assert.equal(await configOf(reg.host, "t/app-f-b", again.digest), cfg);
        assert.equal(failed, 2, "the early PUT failed, then the usual upload's PUT went through");
        assert.deepEqual(
            blobRequests(flaky, cfg).map((l) => l.split(" ")[0]),
            ["PUT", "HEAD", "PUT"],
        );
    } finally {
        await flaky.stop();
    }
});
