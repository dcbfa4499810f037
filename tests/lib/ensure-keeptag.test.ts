/**
 * `ensure --keep-tag`: after the image exists, repo:<keep tag> names the same manifest digest
 * (re-PUT bytes, no blob upload; an index stays an index); a rerun does nothing; a keep tag
 * already naming another image is a clear error and is never overwritten. Real registry, real CLI.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { ensureCommandArgs, ensureImage, ensureKeepTag, type EnsureOptions, type EnsureResult } from "../../lib/build/ensure";
import { parseEnsureArgv } from "../../cli/ensure";
import { appTag, computeAppInputs } from "../../lib/plan";
import { RegistryClient } from "../../lib/oci/client";
import { OCI_INDEX } from "../../lib/oci/mediatypes";
import { makeProject, pushScratchImage, skopeo, skopeoRaw, tempDir } from "../helpers/images";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const ROOT = path.resolve(__dirname, "../..");
const PLATFORM = "linux/amd64";
const BASE_HASH = "e".repeat(64);
const quiet = () => undefined;

let reg: StartedRegistry | undefined;
let project: ReturnType<typeof makeProject>;
let baseRef = "";

before(async () => {
    if (!which("busybox") || !which("docker-registry")) return;
    project = makeProject(tempDir());
    reg = await startRegistry();
    const client = new RegistryClient(reg.host);
    const base = await pushScratchImage(client, "t/base", "v1", [
        [{ dest: "/bin/busybox", type: "file", source: path.join(project.contextDir, "busybox"), mode: 0o755, uid: 0, gid: 0 }],
    ]);
    baseRef = `${reg.host}/t/base@${base.digest}`;
});
after(async () => {
    await reg?.stop();
});

async function appOptions(repo: string, keepTag?: string): Promise<EnsureOptions> {
    const ai = await computeAppInputs(
        { contextDir: project.contextDir, dockerfile: project.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: BASE_HASH },
        { cache: false },
    );
    return {
        image: "app",
        context: project.contextDir,
        dockerfile: project.appDockerfile,
        repository: `${(reg as StartedRegistry).host}/${repo}`,
        platform: PLATFORM,
        expectTag: appTag(ai.hash),
        baseRef,
        baseHash: BASE_HASH,
        keepTag,
    };
}
function digestOf(ref: string): string {
    return (JSON.parse(skopeo(["inspect", "--tls-verify=false", `docker://${ref}`])) as { Digest: string }).Digest;
}

test("--keep-tag is parsed, validated and written by ensureCommandArgs", () => {
    const base = ["base", "--context", "/c", "--dockerfile", "/c/D", "--repository", "r/t/base", "--expect-tag", "deps-0123456789ab"];
    const parsed = parseEnsureArgv([...base, "--keep-tag", "prod-deps-0123456789ab"]);
    assert.notEqual(parsed, "help");
    if (parsed === "help") return;
    assert.equal(parsed.opts.keepTag, "prod-deps-0123456789ab");
    assert.equal((parseEnsureArgv(base) as { opts: EnsureOptions }).opts.keepTag, undefined);
    assert.deepEqual(ensureCommandArgs({ ...parsed.opts, json: true }).slice(-3), ["--keep-tag", "prod-deps-0123456789ab", "--json"]);
    assert.equal(ensureCommandArgs({ ...parsed.opts, keepTag: undefined }).includes("--keep-tag"), false);
    assert.throws(() => parseEnsureArgv([...base, "--keep-tag", "a", "--keep-tag", "b"]), /--keep-tag.*at most one/s);
    for (const bad of ["", "-x", ".x", "prod/app", "a:b", "x".repeat(129)]) {
        assert.throws(() => parseEnsureArgv([...base, `--keep-tag=${bad}`]), /--keep-tag[\s\S]*1\.\.128 characters/, bad);
    }
    assert.doesNotThrow(() => parseEnsureArgv([...base, "--keep-tag", "x".repeat(128)]));
});

test("ensure app --keep-tag (real CLI): both tags name one digest; a rerun uploads nothing and does nothing", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const o = await appOptions("t/app", "prod-app-keep1");
    const run = spawnSync(process.execPath, [path.join(ROOT, "bin/thinlayer.js"), ...ensureCommandArgs(o)], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const r = JSON.parse(run.stdout) as EnsureResult;
    assert.deepEqual([r.action, r.how, r.keepTag], ["built", "daemonless", { tag: "prod-app-keep1", action: "created" }]);
    const main = digestOf(`${host}/t/app:${r.tag}`);
    assert.equal(main, r.digest);
    assert.equal(digestOf(`${host}/t/app:prod-app-keep1`), main);

    const client = new RegistryClient(host);
    // attest: false — this counts the tag logic's requests; the attestation's own are in tests/lib/provenance.test.ts.
    const again = await ensureImage(o, { log: quiet, client, attest: false });
    assert.deepEqual([again.action, again.digest, again.keepTag, again.bytesUploaded], ["reused", r.digest, { tag: "prod-app-keep1", action: "exists" }, 0]);
    assert.equal(client.stats.requests, 2, "one HEAD of the tag, one HEAD of the keep tag");
});

test("keep tag of an index: the index bytes are re-PUT (still an index, same digest), no blob uploaded", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const client = new RegistryClient(host);
    const idx = await pushScratchImage(
        client,
        "t/multi",
        "deps-0123456789ab",
        [[{ dest: "/bin/busybox", type: "file", source: path.join(project.contextDir, "busybox"), mode: 0o755, uid: 0, gid: 0 }]],
        { platforms: ["linux/amd64", "linux/arm64"] },
    );
    const fresh = new RegistryClient(host);
    assert.equal(await ensureKeepTag(fresh, "t/multi", idx.digest, "uat-deps-0123456789ab"), "created");
    const raw = skopeoRaw(`${host}/t/multi:uat-deps-0123456789ab`) as { mediaType: string; manifests: unknown[] };
    assert.equal(raw.mediaType, OCI_INDEX);
    assert.equal(raw.manifests.length, 2);
    const sent = (await fresh.getManifest("t/multi", idx.digest)).size;
    assert.equal(fresh.stats.bytesUploaded, sent, "only the index bytes went up");
    assert.equal(digestOf(`${host}/t/multi:uat-deps-0123456789ab`), digestOf(`${host}/t/multi:deps-0123456789ab`));
});

test("a keep tag that already names another image: clear error with both digests, never overwritten", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const client = new RegistryClient(host);
    const other = await pushScratchImage(client, "t/app2", "prod-app-taken", [
        [{ dest: "/x", type: "file", source: path.join(project.contextDir, "run.sh"), mode: 0o644, uid: 0, gid: 0 }],
    ]);
    const o = await appOptions("t/app2", "prod-app-taken");
    await assert.rejects(ensureImage(o, { log: quiet }), (e: Error) => {
        assert.match(e.message, /keep tag .*t\/app2:prod-app-taken already points at sha256:[0-9a-f]{64}, but this image is sha256:[0-9a-f]{64}/);
        assert.ok(e.message.includes(other.digest));
        assert.match(e.message, /never overwritten[\s\S]*Fix:/);
        return true;
    });
    assert.equal(digestOf(`${host}/t/app2:prod-app-taken`), other.digest);
});
