/**
 * `ensure` faults, each against a real registry (with a fault-injecting loopback proxy where the
 * fault is the network's or another run's): a clear error, never a secret, never a manifest put
 * before its blobs, never an overwrite.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureImage, type EnsureOptions } from "../../lib/build/ensure";
import { Laps } from "../../lib/format";
import { appTag, baseTag, computeAppInputs, computeBaseInputs } from "../../lib/plan";
import { RegistryClient, RegistryError } from "../../lib/oci/client";
import { OCI_MANIFEST } from "../../lib/oci/mediatypes";
import { buildahStorage, makeProject, pushScratchImage, skopeoRaw, tempDir, writeFiles } from "../helpers/images";
import { freePort, startProxy, startRegistry, type ProxyOptions, type StartedProxy, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const PLATFORM = "linux/amd64";
const BASE_HASH = "d".repeat(64);
const SECRET = "pw-faults-9f8e7d";
const quiet = () => undefined;

let reg: StartedRegistry | undefined;
let authReg: StartedRegistry | undefined;
let project: ReturnType<typeof makeProject>;
let baseRef = "";

before(async () => {
    if (!which("busybox")) return;
    project = makeProject(tempDir());
    if (!which("docker-registry") || !which("htpasswd")) return;
    reg = await startRegistry();
    authReg = await startRegistry({ htpasswd: { user: "ci", password: SECRET } });
    const client = new RegistryClient(reg.host);
    const base = await pushScratchImage(client, "t/base", "v1", [
        [{ dest: "/bin/busybox", type: "file", source: path.join(project.contextDir, "busybox"), mode: 0o755, uid: 0, gid: 0 }],
    ]);
    baseRef = `${reg.host}/t/base@${base.digest}`;
});
after(async () => {
    await reg?.stop();
    await authReg?.stop();
});

async function appOpts(host: string, repo = "t/app", ref = baseRef): Promise<EnsureOptions> {
    const ai = await computeAppInputs(
        { contextDir: project.contextDir, dockerfile: project.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: BASE_HASH },
        { cache: false },
    );
    return {
        image: "app",
        context: project.contextDir,
        dockerfile: project.appDockerfile,
        repository: `${host}/${repo}`,
        platform: PLATFORM,
        expectTag: appTag(ai.hash),
        baseRef: ref,
        baseHash: BASE_HASH,
    };
}

const manifestPuts = (reqs: { method: string; url: string }[]) => reqs.filter((r) => r.method === "PUT" && r.url.includes("/manifests/"));

test("registry unreachable: a clear error naming the host", async (t) => {
    if (!needTools(t, "busybox")) return;
    const host = `127.0.0.1:${await freePort()}`;
    const o = await appOpts(host, "t/app", `${host}/t/base@sha256:${"0".repeat(64)}`);
    await assert.rejects(ensureImage(o, { log: quiet, client: new RegistryClient(host, { attempts: 2, backoffMs: 10 }) }), (e: RegistryError) => {
        assert.equal(e.code, "UNREACHABLE");
        assert.match(e.message, new RegExp(`registry ${host} unreachable .*ECONNREFUSED.*Fix: check the host and port`));
        return true;
    });
});

test("401 without credentials and with a wrong password: says which credential source was tried, never the secret", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "htpasswd")) return;
    const host = (authReg as StartedRegistry).host;
    const o = await appOpts(host, "t/app", `${host}/t/base@sha256:${"0".repeat(64)}`);
    const none = path.join(tempDir(), "config.json");
    await assert.rejects(
        ensureImage(o, { log: quiet, dockerConfig: none }),
        (e: RegistryError) => e.code === "UNAUTHORIZED" && e.message.includes(`anonymous (no credentials for this host in ${none})`),
    );
    const wrongDir = tempDir();
    const wrong = `${SECRET}-wrong`;
    fs.writeFileSync(path.join(wrongDir, "config.json"), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`ci:${wrong}`).toString("base64") } } }));
    await assert.rejects(ensureImage(o, { log: quiet, dockerConfig: path.join(wrongDir, "config.json") }), (e: RegistryError) => {
        assert.equal(e.code, "UNAUTHORIZED");
        assert.ok(e.message.includes(`Docker config ${path.join(wrongDir, "config.json")}`), e.message);
        assert.ok(!e.message.includes(wrong) && !e.message.includes(Buffer.from(`ci:${wrong}`).toString("base64")));
        return true;
    });
});

test("403 from the registry: DENIED with the credential source", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const proxy = await startProxy((reg as StartedRegistry).host, {
        intercept: (r) =>
            r.url.includes("/manifests/")
                ? { status: 403, body: { errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] } }
                : undefined,
    });
    try {
        const o = await appOpts(proxy.host, "t/app", baseRef.replace((reg as StartedRegistry).host, proxy.host));
        await assert.rejects(
            ensureImage(o, { log: quiet, dockerConfig: path.join(tempDir(), "none.json") }),
            (e: RegistryError) => e.code === "DENIED" && /403 Forbidden .*credential source anonymous/.test(e.message),
        );
    } finally {
        await proxy.stop();
    }
});

test("repository missing: the base repository does not exist (NAME_UNKNOWN from the real registry)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const o = await appOpts(host, "t/app", `${host}/t/no-such-base@sha256:${"0".repeat(64)}`);
    await assert.rejects(
        ensureImage(o, { log: quiet }),
        (e: RegistryError) => e.code === "NAME_UNKNOWN" && /t\/no-such-base does not exist \(NAME_UNKNOWN\).*Fix: create the repository/.test(e.message),
    );
});

test("repository missing on push (an ECR-like registry answers NAME_UNKNOWN): clear error, no manifest put", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const proxy = await startProxy(host, {
        intercept: (r) =>
            r.method === "POST" && r.url.startsWith("/v2/t/not-created/")
                ? { status: 404, body: { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] } }
                : undefined,
    });
    try {
        const o = await appOpts(proxy.host, "t/not-created", baseRef.replace(host, proxy.host));
        await assert.rejects(
            ensureImage(o, { log: quiet }),
            (e: RegistryError) => e.code === "NAME_UNKNOWN" && /not-created.*repository does not exist/.test(e.message),
        );
        assert.deepEqual(manifestPuts(proxy.counters.requests), []);
    } finally {
        await proxy.stop();
    }
});

test("an existing tag with a different digest than the reproducible rebuild: reported (both digests), never overwritten", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const o = await appOpts(host, "t/app-diff");
    // Someone pushed something else under our tag (here: the base manifest itself).
    const client = new RegistryClient(host);
    const foreign = await client.getManifest("t/base", baseRef.split("@")[1]);
    await client.ensureBlob("t/app-diff", { digest: JSON.parse(foreign.bytes.toString()).layers[0].digest, size: 0 }, "t/base");
    await client.ensureBlob("t/app-diff", { digest: JSON.parse(foreign.bytes.toString()).config.digest, size: 0 }, "t/base");
    await client.putManifest("t/app-diff", o.expectTag, foreign.bytes, OCI_MANIFEST);

    const plain = await ensureImage(o, { log: quiet });
    assert.deepEqual([plain.action, plain.digest, plain.ourDigest], ["reused", foreign.digest, undefined]);
    const verified = await ensureImage(o, { log: quiet, verify: true });
    assert.equal(verified.action, "reused");
    assert.equal(verified.digest, foreign.digest);
    assert.ok(verified.ourDigest && verified.ourDigest !== foreign.digest);
    assert.ok(verified.warnings?.some((w) => w.includes(foreign.digest) && w.includes(verified.ourDigest as string) && /never overwritten/.test(w)));
    assert.equal((await client.headManifest("t/app-diff", o.expectTag))?.digest, foreign.digest, "tag untouched");
});

test("IMMUTABLE race: the tag appears between the check and the push — success with the existing digest, both reported, no overwrite", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const o0 = await appOpts(host, "t/app-race");
    const client = new RegistryClient(host);
    const foreign = await client.getManifest("t/base", baseRef.split("@")[1]);
    // The other run's push lands in the registry...
    for (const d of [JSON.parse(foreign.bytes.toString()).layers[0].digest, JSON.parse(foreign.bytes.toString()).config.digest])
        await client.ensureBlob("t/app-race", { digest: d, size: 0 }, "t/base");
    await client.putManifest("t/app-race", o0.expectTag, foreign.bytes, OCI_MANIFEST);
    // ...but our first check saw the registry before it did.
    let hidden = false;
    const proxy = await startProxy(host, {
        intercept: (r) => {
            if (!hidden && r.method === "HEAD" && r.url.endsWith(`/manifests/${o0.expectTag}`)) {
                hidden = true;
                return { status: 404 };
            }
            return undefined;
        },
    });
    try {
        const o = { ...o0, repository: `${proxy.host}/t/app-race`, baseRef: baseRef.replace(host, proxy.host) };
        const r = await ensureImage(o, { log: quiet });
        assert.equal(r.action, "reused");
        assert.equal(r.digest, foreign.digest);
        assert.ok(r.ourDigest && r.ourDigest !== foreign.digest);
        assert.deepEqual(
            manifestPuts(proxy.counters.requests).filter((q) => q.url.endsWith(o0.expectTag)),
            [],
        );
        assert.equal((await client.headManifest("t/app-race", o0.expectTag))?.digest, foreign.digest);
    } finally {
        await proxy.stop();
    }
});

/**
 * Runs `fn` with ensure options for `repo` through a proxy in front of the registry (the base ref
 * too, so mounts go through it), with `files` added to the app meanwhile.
 */
async function throughProxy(
    repo: string,
    files: Record<string, string | Buffer>,
    proxyOpts: ProxyOptions,
    fn: (o: EnsureOptions, proxy: StartedProxy, host: string) => Promise<void>,
): Promise<void> {
    const host = (reg as StartedRegistry).host;
    writeFiles(project.contextDir, files);
    const proxy = await startProxy(host, proxyOpts);
    try {
        await fn({ ...(await appOpts(proxy.host, repo)), baseRef: baseRef.replace(host, proxy.host) }, proxy, host);
    } finally {
        await proxy.stop();
        for (const f of Object.keys(files)) fs.rmSync(path.join(project.contextDir, f));
    }
}

test("upload interrupted part-way: the run fails without putting a manifest; a rerun completes", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    // A bigger app file so the layer upload is cut in the middle (incompressible: the gzip layer
    // stays ~400 kB). Two cuts: the layer's streamed upload (during the write), then the
    // whole-blob upload it falls back to.
    await throughProxy("t/app-cut", { "src/blob.bin": randomBytes(400_000) }, { cutUploadAfterBytes: 150_000, cuts: 2 }, async (o, proxy, host) => {
        await assert.rejects(
            ensureImage(o, { log: quiet, client: new RegistryClient(proxy.host, { attempts: 1 }) }),
            (e: RegistryError) => e.code === "UNREACHABLE",
        );
        assert.equal(proxy.counters.cuts, 2);
        assert.deepEqual(manifestPuts(proxy.counters.requests), [], "no manifest before its blobs");
        assert.equal(await new RegistryClient(host).headManifest("t/app-cut", o.expectTag), undefined);
        const r = await ensureImage(o, { log: quiet });
        assert.deepEqual([r.action, r.how], ["built", "daemonless"]);
        const m = skopeoRaw(`${host}/t/app-cut@${r.digest}`) as { layers: { digest: string }[] };
        for (const l of m.layers) assert.notEqual(await new RegistryClient(host).headBlob("t/app-cut", l.digest), undefined);
    });
});

test("the layer's streamed upload cut part-way: the same run uploads the finished layer whole, and succeeds", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    await throughProxy("t/app-recut", { "src/blob.bin": randomBytes(400_000) }, { cutUploadAfterBytes: 150_000, cuts: 1 }, async (o, proxy, host) => {
        const lines: string[] = [];
        const r = await ensureImage(o, { log: (l) => lines.push(l), client: new RegistryClient(proxy.host, { attempts: 1 }) });
        assert.deepEqual([r.action, r.how, proxy.counters.cuts], ["built", "daemonless", 1]);
        assert.ok(
            lines.some((l) => /streamed upload of the layer failed .*; uploading it whole/.test(l)),
            lines.join("\n"),
        );
        // Streamed part-way, then whole: the bytes sent are more than the image's, honestly counted.
        const m = skopeoRaw(`${host}/t/app-recut@${r.digest}`) as { layers: { digest: string; size: number }[] };
        const layer = m.layers[m.layers.length - 1];
        assert.ok(r.bytesUploaded > layer.size, `${r.bytesUploaded} > ${layer.size}`);
        assert.notEqual(await new RegistryClient(host).headBlob("t/app-recut", layer.digest), undefined);
    });
});

test("THINLAYER_STREAM_UPLOAD=0: the layer goes up whole after it is written (one PUT, no PATCH)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const saved = process.env.THINLAYER_STREAM_UPLOAD;
    process.env.THINLAYER_STREAM_UPLOAD = "0";
    try {
        await throughProxy("t/app-whole", { "src/other.py": "print('whole')\n" }, {}, async (o, proxy) => {
            const r = await ensureImage(o, { log: quiet, client: new RegistryClient(proxy.host), attest: false });
            assert.deepEqual([r.action, r.how], ["built", "daemonless"]);
            assert.deepEqual(
                proxy.counters.requests.filter((q) => q.method === "PATCH"),
                [],
            );
        });
    } finally {
        if (saved === undefined) delete process.env.THINLAYER_STREAM_UPLOAD;
        else process.env.THINLAYER_STREAM_UPLOAD = saved;
    }
});

test("a layer write that fails (a file gone after hashing): ensure throws only once nothing it started is still talking to the registry", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    await throughProxy("t/app-gone", { "src/gone.py": "print('gone')\n" }, {}, async (o, proxy) => {
        // The file goes between the tag's hashing and the layer's reading (the mounts start then too).
        class RemoveAfterInputs extends Laps {
            override lap(name: string): void {
                super.lap(name);
                if (name === "inputs") fs.rmSync(path.join(project.contextDir, "src/gone.py"));
            }
        }
        await assert.rejects(
            ensureImage(o, { log: quiet, client: new RegistryClient(proxy.host), laps: new RemoveAfterInputs(), attest: false }),
            (e: NodeJS.ErrnoException) => e.code === "ENOENT",
        );
        const seen = proxy.counters.requests.length;
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(proxy.counters.requests.slice(seen), [], "no request after ensure threw");
        assert.deepEqual(manifestPuts(proxy.counters.requests), []);
        // Never a streamed upload: it opens only after the mounts, and the write had failed by then.
        assert.deepEqual(
            proxy.counters.requests.filter((q) => q.method === "PATCH"),
            [],
        );
        writeFiles(project.contextDir, { "src/gone.py": "" }); // for throughProxy's cleanup
    });
});

test("digest mismatch on upload (bytes corrupted in transit): DIGEST_INVALID, no manifest put", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    // A proxy that flips the bytes of blob uploads to t/app-corrupt.
    const { createServer, request } = await import("node:http");
    const [th, tp] = host.split(":");
    const puts: string[] = [];
    const srv = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            let body = Buffer.concat(chunks);
            if (req.method === "PUT" && req.url?.includes("/manifests/")) puts.push(req.url);
            if (req.url?.includes("/t/app-corrupt/blobs/uploads/") && body.length > 0) body = Buffer.from(body.map((b) => b ^ 0xff));
            const up = request(
                { host: th, port: Number(tp), method: req.method, path: req.url, headers: { ...req.headers, "content-length": String(body.length) } },
                (u) => {
                    const h = { ...u.headers };
                    if (typeof h.location === "string")
                        h.location = h.location.replace(`http://${host}`, `http://127.0.0.1:${(srv.address() as { port: number }).port}`);
                    res.writeHead(u.statusCode ?? 502, h);
                    u.pipe(res);
                },
            );
            up.end(body);
        });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    try {
        const ph = `127.0.0.1:${(srv.address() as { port: number }).port}`;
        const o = { ...(await appOpts(ph, "t/app-corrupt")), baseRef: baseRef.replace(host, ph) };
        await assert.rejects(ensureImage(o, { log: quiet }), (e: RegistryError) => e.code === "DIGEST_INVALID" && /different digest/.test(e.message));
        assert.deepEqual(puts, []);
    } finally {
        srv.close();
    }
});

test("a COPY source that matches nothing: an input error naming the Dockerfile line and the pattern", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const df = path.join(project.contextDir, "Dockerfile.missing");
    fs.writeFileSync(df, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY does-not-exist.txt /app/\n");
    await assert.rejects(
        ensureImage(
            {
                image: "app",
                context: project.contextDir,
                dockerfile: df,
                repository: `${host}/t/app`,
                platform: PLATFORM,
                expectTag: "app-000000000000",
                baseRef,
                baseHash: BASE_HASH,
            },
            { log: quiet },
        ),
        (e: Error) => /Dockerfile\.missing:3/.test(e.message) && /does-not-exist\.txt/.test(e.message),
    );
});

test("a stale --expect-tag (files changed since the plan) is refused before any registry call", async (t) => {
    if (!needTools(t, "busybox")) return;
    const host = `127.0.0.1:${await freePort()}`;
    const o = { ...(await appOpts(host)), expectTag: "app-ffffffffffff" };
    await assert.rejects(
        ensureImage(o, { log: quiet }),
        /--expect-tag: got app-ffffffffffff; expected the tag the files give now, app-[0-9a-f]{12}.*rerun the plan/,
    );
});

test("a single-platform base of another platform than --platform: built, with a warning naming both", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const ai = await computeAppInputs(
        { contextDir: project.contextDir, dockerfile: project.appDockerfile, buildArgs: {}, platform: "linux/arm64", baseHash: BASE_HASH },
        { cache: false },
    );
    const r = await ensureImage(
        {
            image: "app",
            context: project.contextDir,
            dockerfile: project.appDockerfile,
            repository: `${host}/t/app-arm`,
            platform: "linux/arm64",
            expectTag: appTag(ai.hash),
            baseRef,
            baseHash: BASE_HASH,
        },
        { log: quiet },
    );
    assert.equal(r.how, "daemonless");
    assert.ok(
        r.warnings?.some((w) => /is linux\/amd64, not the requested linux\/arm64/.test(w)),
        JSON.stringify(r.warnings),
    );
});

test("IMMUTABLE race with a builder: the tag appears while buildah builds — its push is skipped, the existing digest used", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah")) return;
    const host = (reg as StartedRegistry).host;
    const bi = await computeBaseInputs(
        { contextDir: project.contextDir, dockerfile: project.baseDockerfile, buildArgs: {}, platform: PLATFORM },
        { cache: false },
    );
    const tag = baseTag(bi.hash);
    const client = new RegistryClient(host);
    const foreign = await client.getManifest("t/base", baseRef.split("@")[1]);
    // Another run's push of this tag lands (blobs mounted, then the manifest)...
    for (const d of [JSON.parse(foreign.bytes.toString()).layers[0].digest, JSON.parse(foreign.bytes.toString()).config.digest])
        await client.ensureBlob("t/base-race", { digest: d, size: 0 }, "t/base");
    await client.putManifest("t/base-race", tag, foreign.bytes, OCI_MANIFEST);
    // ...after our first check looked.
    let hidden = false;
    const proxy = await startProxy(host, {
        intercept: (r) => {
            if (!hidden && r.method === "HEAD" && r.url.endsWith(`/manifests/${tag}`)) {
                hidden = true;
                return { status: 404 };
            }
            return undefined;
        },
    });
    const storage = buildahStorage();
    try {
        const r = await ensureImage(
            {
                image: "base",
                context: project.contextDir,
                dockerfile: project.baseDockerfile,
                repository: `${proxy.host}/t/base-race`,
                platform: PLATFORM,
                expectTag: tag,
                builder: "buildah",
            },
            // attest: false — the PUTs counted below are the tag logic's; the attestation's are in tests/lib/provenance.test.ts.
            { log: quiet, builderEnv: storage.env, attest: false },
        );
        assert.deepEqual([r.action, r.digest], ["reused", foreign.digest]);
        assert.deepEqual(manifestPuts(proxy.counters.requests), [], "buildah never pushed over the tag");
        assert.equal((await client.headManifest("t/base-race", tag))?.digest, foreign.digest);
    } finally {
        storage.remove();
        await proxy.stop();
    }
});
