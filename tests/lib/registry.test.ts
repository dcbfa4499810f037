import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { parseChallenge, RegistryClient, RegistryError } from "../../lib/oci/client";
import { sha256 } from "../../lib/hashing/digest";
import { fromDockerConfig, resolveCredentials } from "../../lib/oci/credentials";
import { MANIFEST_ACCEPT, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from "../../lib/oci/mediatypes";
import { isLoopbackHost, parseEcrHost, parseImageRef, type ImageRef } from "../../lib/oci/reference";
import { tagExists } from "../../lib/build/ensure";
import { freePort, startProxy, startRegistry, type StartedRegistry } from "../helpers/registry";
import { tempDir } from "../helpers/images";
import { needTools, which } from "../helpers/tools";

const PASSWORD = "s3cret-Pa55-word";

/** An image reference written back as text (the round trip of parseImageRef). */
const formatRef = (r: ImageRef) => `${r.host}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;

/** One authenticated request through the client's whole path (auth, retries, timeouts). */
const reach = (c: RegistryClient) => c.headManifest("thinlayer/reach", "latest");

test("parseImageRef: host, repository, tag, digest; explicit host required", () => {
    const d = "sha256:" + "ab".repeat(32);
    assert.deepEqual(parseImageRef(`127.0.0.1:5000/thinlayer/app:app-123@${d}`), {
        host: "127.0.0.1:5000",
        repository: "thinlayer/app",
        tag: "app-123",
        digest: d,
    });
    assert.equal(formatRef(parseImageRef(`r.example.com/a/b@${d}`)), `r.example.com/a/b@${d}`);
    assert.throws(() => parseImageRef("thinlayer"), /explicit registry host|prefix the repository/);
    assert.throws(() => parseImageRef("h:5000/Upper"), /lowercase/);
    assert.throws(() => parseImageRef("h/a@sha256:123"), /sha256:<64/);
});

test("loopback hosts use plain HTTP, everything else HTTPS; ECR hosts are recognised", () => {
    for (const h of ["localhost:5000", "127.0.0.1:1", "127.9.9.9", "[::1]:5000"]) assert.ok(isLoopbackHost(h), h);
    for (const h of ["10.0.0.1:5000", "registry.example.com", "localhost.evil.com"]) assert.ok(!isLoopbackHost(h), h);
    assert.equal(new RegistryClient("127.0.0.1:5000").baseUrl, "http://127.0.0.1:5000");
    assert.equal(new RegistryClient("registry.example.com").baseUrl, "https://registry.example.com");
    assert.equal(parseEcrHost("123456789012.dkr.ecr.eu-west-1.amazonaws.com")?.region, "eu-west-1");
    assert.equal(parseEcrHost("registry.example.com"), undefined);
});

test("parseChallenge reads Bearer and Basic challenges", () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), {
        scheme: "bearer",
        params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" },
    });
    assert.equal(parseChallenge('Basic realm="x"').scheme, "basic");
});

test("Docker config.json: auths under any spelling; credential helpers are named, not run", () => {
    const d = tempDir();
    const f = path.join(d, "config.json");
    const auth = Buffer.from(`bob:${PASSWORD}`).toString("base64");
    fs.writeFileSync(f, JSON.stringify({ auths: { "https://reg.example:5000": { auth } }, credHelpers: { "other.example": "ecr-login" } }));
    const c = fromDockerConfig("reg.example:5000", f);
    assert.equal(c?.username, "bob");
    assert.equal(c?.password, PASSWORD);
    assert.ok(!c?.source.includes(PASSWORD));
    assert.match(fromDockerConfig("other.example", f)?.source ?? "", /docker-credential-ecr-login.*does not run/);
    assert.equal(fromDockerConfig("nobody.example", f), undefined);
    assert.equal(fromDockerConfig("x", path.join(d, "absent.json")), undefined);
});

let reg: StartedRegistry | undefined;
let authReg: StartedRegistry | undefined;
before(async () => {
    if (which("docker-registry") && which("htpasswd")) {
        reg = await startRegistry();
        authReg = await startRegistry({ htpasswd: { user: "alice", password: PASSWORD } });
    }
});
after(async () => {
    await reg?.stop();
    await authReg?.stop();
});

test("a blob file larger than chunkSize goes up in one streamed PATCH (read a chunk at a time), through a proxy that sees every request", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const r = reg as StartedRegistry;
    const dir = tempDir("thinlayer-blobfile-");
    const file = path.join(dir, "blob.bin");
    const bytes = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    fs.writeFileSync(file, bytes);
    const proxy = await startProxy(r.host);
    try {
        const c = new RegistryClient(proxy.host, { chunkSize: 64 * 1024 });
        assert.equal(await c.ensureBlob("t/file", { digest: sha256(bytes), size: bytes.length, file }), "uploaded");
        const methods = proxy.counters.requests.filter((q) => q.url.includes("/blobs/uploads/")).map((q) => q.method);
        assert.deepEqual(methods, ["POST", "PATCH", "PUT"]);
        const patch = proxy.counters.requests.find((q) => q.method === "PATCH");
        assert.equal(patch?.headers["transfer-encoding"], "chunked");
        assert.deepEqual(await new RegistryClient(r.host).getBlob("t/file", sha256(bytes)), bytes);
    } finally {
        await proxy.stop();
    }
});

test("blobs: monolithic and streamed upload, HEAD, GET verified, cross-repo mount, exists short-cut", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const r = reg as StartedRegistry;
    const small = Buffer.from("small blob\n");
    const big = Buffer.alloc(100_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const c = new RegistryClient(r.host, { chunkSize: 30_000 });
    assert.equal(await c.ensureBlob("t/one", { digest: sha256(small), size: small.length, data: small }), "uploaded");
    const before = c.stats.requests;
    assert.equal(await c.ensureBlob("t/one", { digest: sha256(big), size: big.length, data: big }), "uploaded");
    // Above chunkSize: one PATCH streaming the whole blob (read 30,000 bytes at a time), never one PATCH per chunk.
    assert.equal(c.stats.requests - before, 4, "HEAD + POST + one streamed PATCH + PUT");
    assert.equal(await c.headBlob("t/one", sha256(big)), big.length);
    assert.deepEqual(await c.getBlob("t/one", sha256(big)), big);
    assert.equal(await c.ensureBlob("t/one", { digest: sha256(small), size: small.length, data: small }), "exists");
    assert.equal(await c.ensureBlob("t/two", { digest: sha256(big), size: big.length, data: big }, "t/one"), "mounted");
    assert.equal(await c.headBlob("t/two", sha256(big)), big.length);
    assert.equal(await c.headBlob("t/two", sha256(Buffer.from("nope"))), undefined);
});

test("manifests: PUT/HEAD/GET for an image and an index; Accept covers OCI and Docker types", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const r = reg as StartedRegistry;
    assert.ok(MANIFEST_ACCEPT.includes("application/vnd.docker.distribution.manifest.list.v2+json"));
    assert.ok(MANIFEST_ACCEPT.includes(OCI_INDEX));
    const c = new RegistryClient(r.host);
    const cfg = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
    await c.ensureBlob("t/m", { digest: sha256(cfg), size: cfg.length, data: cfg });
    const m = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: sha256(cfg), size: cfg.length }, layers: [] }),
    );
    const d = await c.putManifest("t/m", "v1", m, OCI_MANIFEST);
    assert.equal(d, sha256(m));
    const idx = Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_INDEX,
            manifests: [{ mediaType: OCI_MANIFEST, digest: d, size: m.length, platform: { os: "linux", architecture: "amd64" } }],
        }),
    );
    const di = await c.putManifest("t/m", "multi", idx, OCI_INDEX);
    assert.deepEqual(await c.headManifest("t/m", "v1"), { digest: d, mediaType: OCI_MANIFEST, size: m.length });
    assert.equal((await c.headManifest("t/m", "multi"))?.mediaType, OCI_INDEX);
    assert.equal((await c.getManifest("t/m", di)).digest, di);
    assert.equal(await c.headManifest("t/m", "absent"), undefined);
    assert.equal(await tagExists(`${r.host}/t/m`, "v1"), "exists");
    assert.equal(await tagExists(`${r.host}/t/m`, "absent"), "missing");
    assert.equal(await tagExists(`127.0.0.1:${await freePort()}/t/m`, "v1", { timeoutMs: 2000 }), "unknown");
    assert.equal(await tagExists("not a repo", "v1"), "unknown");
});

test("Basic auth (htpasswd): credentials from a Docker config.json; 401 names the source, never the secret", async (t) => {
    if (!needTools(t, "docker-registry", "htpasswd")) return;
    const r = authReg as StartedRegistry;
    const cfg = path.join(r.dockerConfigDir as string, "config.json");
    const ok = new RegistryClient(r.host, { dockerConfig: cfg });
    await reach(ok);
    assert.match((await ok.resolvedCredentials()).source, /Docker config .*config\.json/);
    assert.equal(await tagExists(`${r.host}/t/x`, "nope", { dockerConfig: cfg }), "missing");
    assert.equal(await tagExists(`${r.host}/t/x`, "nope", { dockerConfig: path.join(tempDir(), "none.json") }), "unknown");

    const anon = new RegistryClient(r.host, { dockerConfig: path.join(tempDir(), "none.json") });
    await assert.rejects(reach(anon), (e: RegistryError) => e.code === "UNAUTHORIZED" && /anonymous/.test(e.message) && /docker login/.test(e.message));

    const wrongDir = tempDir();
    const wrongPw = "wrong-" + PASSWORD;
    fs.writeFileSync(path.join(wrongDir, "config.json"), JSON.stringify({ auths: { [r.host]: { auth: Buffer.from(`alice:${wrongPw}`).toString("base64") } } }));
    const wrong = new RegistryClient(r.host, { dockerConfig: path.join(wrongDir, "config.json") });
    await assert.rejects(wrong.headManifest("t/x", "v1"), (e: RegistryError) => {
        assert.equal(e.code, "UNAUTHORIZED");
        assert.ok(e.message.includes(path.join(wrongDir, "config.json")), e.message);
        assert.ok(!e.message.includes(wrongPw) && !e.message.includes(Buffer.from(`alice:${wrongPw}`).toString("base64")), "secret leaked");
        return true;
    });
});

test("Bearer token challenge (Docker token spec): token fetched with Basic creds and the scope, then used", async () => {
    const seen: { tokenAuth?: string; scope?: string[]; service?: string; registryAuth: string[] } = { registryAuth: [] };
    const srv = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://x");
        if (url.pathname === "/token") {
            seen.tokenAuth = req.headers.authorization;
            seen.scope = url.searchParams.getAll("scope");
            seen.service = url.searchParams.get("service") ?? undefined;
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end(JSON.stringify({ token: "tok-123" }));
            return;
        }
        seen.registryAuth.push(req.headers.authorization ?? "");
        if (req.headers.authorization !== "Bearer tok-123") {
            const port = (srv.address() as AddressInfo).port;
            res.writeHead(401, { "WWW-Authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="fake-registry",scope="repository:a/b:pull"` });
            res.end();
            return;
        }
        res.writeHead(404);
        res.end();
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    try {
        const host = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
        const c = new RegistryClient(host, { credentials: { source: "test", username: "u", password: "p" } });
        assert.equal(await c.headManifest("a/b", "v1"), undefined);
        assert.equal(seen.tokenAuth, "Basic " + Buffer.from("u:p").toString("base64"));
        assert.deepEqual(seen.scope, ["repository:a/b:pull"]);
        assert.equal(seen.service, "fake-registry");
        assert.deepEqual(seen.registryAuth, ["", "Bearer tok-123"]);
    } finally {
        srv.close();
    }
});

test("retries with backoff on 503/429, then succeeds", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    let fails = 2;
    const proxy = await startProxy((reg as StartedRegistry).host, {
        intercept: () => (fails-- > 0 ? { status: fails === 1 ? 503 : 429, body: { errors: [{ code: "UNAVAILABLE" }] } } : undefined),
    });
    try {
        const c = new RegistryClient(proxy.host, { backoffMs: 10 });
        await reach(c);
        assert.equal(proxy.counters.requests.length, 3);
    } finally {
        await proxy.stop();
    }
});

test("registry unreachable: a clear error after bounded retries", async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const c = new RegistryClient(host, { attempts: 2, backoffMs: 10 });
    await assert.rejects(
        reach(c),
        (e: RegistryError) => e.code === "UNREACHABLE" && e.message.includes(host) && /ECONNREFUSED/.test(e.message) && /after 2 attempts/.test(e.message),
    );
});

test("digest mismatch on upload is reported as such", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const c = new RegistryClient((reg as StartedRegistry).host);
    const data = Buffer.from("real bytes");
    await assert.rejects(
        c.ensureBlob("t/bad", { digest: sha256(Buffer.from("other bytes")), size: data.length, data }),
        (e: RegistryError) => e.code === "DIGEST_INVALID" && /different digest/.test(e.message),
    );
    assert.equal(await c.headBlob("t/bad", sha256(Buffer.from("other bytes"))), undefined);
});

test("upload interrupted part-way: the whole upload is retried and completes; without retries it fails and nothing is left", async (t) => {
    if (!needTools(t, "docker-registry")) return;
    const data = Buffer.alloc(300_000, 3);
    const digest = sha256(data);
    const cut = await startProxy((reg as StartedRegistry).host, { cutUploadAfterBytes: 100_000, cuts: 1 });
    try {
        const noRetry = new RegistryClient(cut.host, { attempts: 1 });
        await assert.rejects(noRetry.ensureBlob("t/cut", { digest, size: data.length, data }), (e: RegistryError) => e.code === "UNREACHABLE");
        assert.equal(cut.counters.cuts, 1);
        assert.equal(await noRetry.headBlob("t/cut", digest), undefined);
    } finally {
        await cut.stop();
    }
    const cut2 = await startProxy((reg as StartedRegistry).host, { cutUploadAfterBytes: 100_000, cuts: 1 });
    try {
        const logs: string[] = [];
        const c = new RegistryClient(cut2.host, { backoffMs: 10, log: (l) => logs.push(l) });
        assert.equal(await c.ensureBlob("t/cut2", { digest, size: data.length, data }), "uploaded");
        assert.equal(cut2.counters.cuts, 1);
        assert.ok(
            logs.some((l) => /interrupted/.test(l)),
            logs.join("\n"),
        );
        assert.deepEqual(await c.getBlob("t/cut2", digest), data);
    } finally {
        await cut2.stop();
    }
});

test("ECR hosts get their credentials from GetAuthorizationToken; without AWS credentials the source says so (no secret, no throw)", async () => {
    const saved = { ...process.env };
    for (const k of Object.keys(process.env)) if (k.startsWith("AWS_")) delete process.env[k];
    process.env.AWS_EC2_METADATA_DISABLED = "true";
    process.env.AWS_CONFIG_FILE = path.join(tempDir(), "none");
    process.env.AWS_SHARED_CREDENTIALS_FILE = path.join(tempDir(), "none");
    try {
        const c = await resolveCredentials("123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert.match(c.source, /^ECR GetAuthorizationToken \(region eu-west-1, ambient AWS credentials\) failed: /);
        assert.equal(c.username, undefined);
    } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
    }
});

test("a registry that accepts but never answers: each request times out, then a clear error", async () => {
    const silent = http.createServer(() => undefined); // never responds
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
        const host = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
        const c = new RegistryClient(host, { timeoutMs: 150, attempts: 2, backoffMs: 10 });
        await assert.rejects(reach(c), (e: RegistryError) => e.code === "UNREACHABLE" && /timed out, after 2 attempts/.test(e.message));
        assert.equal(c.stats.requests, 2);
    } finally {
        silent.closeAllConnections();
        silent.close();
    }
});
