/**
 * Provenance: ensure attaches an in-toto statement of the image's inputs (an OCI artifact whose
 * subject is the image), a rerun writes nothing, `thinlayer verify` matches the checkout and names
 * a one-byte change; DSSE signing round trip and tampering. Real Distribution 2.8 registry (no
 * referrers API: the sha256-<hex> tag scheme); a thin proxy fake of the referrers API covers the
 * probe's other branch.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensureCommandArgs, ensureImage, type EnsureOptions } from "../../lib/build/ensure";
import { appTag, computeAppInputs } from "../../lib/plan";
import { attachStatement, buildArtifact, findAttestations, referrersTag } from "../../lib/provenance/attach";
import { loadPrivateKey, loadPublicKey, pae, signEnvelope, verifyEnvelope } from "../../lib/provenance/dsse";
import { computeRecord } from "../../lib/provenance/record";
import { buildStatement, IN_TOTO_MEDIA_TYPE, statementBytes } from "../../lib/provenance/statement";
import { RegistryClient } from "../../lib/oci/client";
import { sha256 } from "../../lib/hashing/digest";
import { OCI_INDEX, OCI_MANIFEST } from "../../lib/oci/mediatypes";
import { makeProject, pushScratchImage, tempDir, writeFiles } from "../helpers/images";
import { Laps } from "../../lib/format";
import { startProxy, startRegistry, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const ROOT = path.resolve(__dirname, "../..");
const PLATFORM = "linux/amd64";
const BASE_HASH = "b".repeat(64);
const quiet = () => undefined;

let reg: StartedRegistry | undefined;
let project: ReturnType<typeof makeProject>;
let baseRef = "";
const keys = tempDir("thinlayer-keys-");

function writeKeyPair(name: string, type: "ed25519" | "ec"): { priv: string; pub: string } {
    const kp = type === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ec", { namedCurve: "P-256" });
    const priv = path.join(keys, `${name}.pem`);
    const pub = path.join(keys, `${name}.pub`);
    fs.writeFileSync(priv, kp.privateKey.export({ type: "pkcs8", format: "pem" }));
    fs.writeFileSync(pub, kp.publicKey.export({ type: "spki", format: "pem" }));
    return { priv, pub };
}

before(async () => {
    if (!which("busybox") || !which("docker-registry")) return;
    project = makeProject(tempDir());
    reg = await startRegistry();
    const base = await pushScratchImage(new RegistryClient(reg.host), "t/base", "v1", [
        [{ dest: "/bin/busybox", type: "file", source: path.join(project.contextDir, "busybox"), mode: 0o755, uid: 0, gid: 0 }],
    ]);
    baseRef = `${reg.host}/t/base@${base.digest}`;
});
after(async () => {
    await reg?.stop();
});

/** ensure's options for the app of `proj` (the shared project by default) in `repo`, with the tag its files give now. */
async function appOptions(repo: string, proj: { contextDir: string; appDockerfile: string } = project): Promise<EnsureOptions> {
    const ai = await computeAppInputs(
        { contextDir: proj.contextDir, dockerfile: proj.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: BASE_HASH },
        { cache: false },
    );
    return {
        image: "app",
        context: proj.contextDir,
        dockerfile: proj.appDockerfile,
        repository: `${(reg as StartedRegistry).host}/${repo}`,
        platform: PLATFORM,
        expectTag: appTag(ai.hash),
        baseRef,
        baseHash: BASE_HASH,
    };
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const env = { ...process.env };
    delete env.THINLAYER_SIGNING_KEY;
    return spawnSync(process.execPath, [path.join(ROOT, "bin/thinlayer.js"), ...args], { encoding: "utf8", env });
}

test("DSSE: PAE as in the spec; Ed25519 and P-256 round trip; a tampered payload or signature fails", () => {
    assert.equal(pae("http://example.com/HelloWorld", Buffer.from("hello world")).toString(), "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    for (const type of ["ed25519", "ec"] as const) {
        const k = writeKeyPair(`dsse-${type}`, type);
        const env = signEnvelope(IN_TOTO_MEDIA_TYPE, Buffer.from('{"a":1}'), loadPrivateKey(k.priv));
        assert.equal(verifyEnvelope(env, loadPublicKey(k.pub)).toString(), '{"a":1}');
        assert.throws(() => verifyEnvelope({ ...env, payload: Buffer.from('{"a":2}').toString("base64") }, loadPublicKey(k.pub)), /no signature verifies/);
        const sig = Buffer.from(env.signatures[0].sig, "base64");
        sig[sig.length - 1] ^= 1;
        assert.throws(
            () => verifyEnvelope({ ...env, signatures: [{ ...env.signatures[0], sig: sig.toString("base64") }] }, loadPublicKey(k.pub)),
            /no signature verifies/,
        );
        assert.throws(() => verifyEnvelope({ ...env, payloadType: "text/plain" }, loadPublicKey(k.pub)), /no signature verifies/);
    }
    const rsa = path.join(keys, "rsa.pem");
    fs.writeFileSync(rsa, generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }));
    assert.throws(() => loadPrivateKey(rsa), /--signing-key: got .*rsa.*expected an Ed25519 or ECDSA P-256 key/);
});

test("ensure attaches the statement (tag scheme on Distribution 2.8); a rerun writes nothing; found by subject", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const o = await appOptions("t/app");
    const r = await ensureImage(o, { log: quiet });
    assert.equal(r.warnings, undefined, String(r.warnings));
    assert.deepEqual([r.action, r.how, r.attestation?.action, r.attestation?.via, r.attestation?.signed], ["built", "daemonless", "attached", "tag", false]);

    const client = new RegistryClient(host);
    // Every request the registry saw, from its access log (the attestation has its own client).
    const logged = () => fs.readFileSync((reg as StartedRegistry).logFile, "utf8").match(/"(HEAD|GET|PUT|POST|PATCH|DELETE) \/v2\/[^"]*"/g) ?? [];
    const seen = logged().length;
    const again = await ensureImage(o, { log: quiet, client });
    assert.deepEqual(
        [again.action, again.attestation?.action, again.attestation?.digest, again.bytesUploaded, again.attestation?.bytesUploaded],
        ["reused", "exists", r.attestation?.digest, 0, 0],
    );
    assert.equal(client.stats.bytesUploaded, 0, "the rerun wrote nothing");
    // HEAD of the tag; then at once HEAD of the subject, of the sha256-<hex> tag, GET referrers (404 here).
    const rerun = logged().slice(seen);
    assert.deepEqual(rerun.map((l) => l.split(" ")[0].slice(1)).sort(), ["GET", "HEAD", "HEAD", "HEAD"], rerun.join("\n"));

    // The referrers tag holds an index naming the artifact, whose subject is the image.
    const idx = JSON.parse((await client.getManifest("t/app", referrersTag(r.digest))).bytes.toString()) as {
        mediaType: string;
        manifests: Array<{ digest: string; artifactType: string }>;
    };
    assert.equal(idx.mediaType, OCI_INDEX);
    assert.deepEqual(
        idx.manifests.map((m) => [m.digest, m.artifactType]),
        [[r.attestation?.digest, IN_TOTO_MEDIA_TYPE]],
    );
    const art = JSON.parse((await client.getManifest("t/app", r.attestation?.digest as string)).bytes.toString()) as {
        artifactType: string;
        config: { mediaType: string };
        subject: { digest: string };
    };
    assert.deepEqual([art.artifactType, art.config.mediaType, art.subject.digest], [IN_TOTO_MEDIA_TYPE, "application/vnd.oci.empty.v1+json", r.digest]);

    const found = await findAttestations(client, "t/app", r.digest);
    assert.equal(found.length, 1);
    const s = found[0].statement;
    assert.ok(s, found[0].error);
    assert.deepEqual(s.subject, [{ name: `${host}/t/app`, digest: { sha256: r.digest.slice(7) } }]);
    assert.deepEqual(
        s.predicate.files.map((f) => [f.path, f.executable]),
        [
            ["run.sh", true],
            ["src/app.py", false],
            ["src/pkg/util.py", false],
        ],
    );
    assert.deepEqual(
        [s.predicate.role, s.predicate.tag, s.predicate.platform, s.predicate.dockerfile.path, s.predicate.from, s.predicate.base],
        ["app", r.tag, PLATFORM, "Dockerfile", [baseRef], { hash: BASE_HASH, ref: baseRef, digest: baseRef.split("@")[1] }],
    );
    assert.equal(s.predicate.source, undefined, "a temp dir is no git work tree");
});

test("thinlayer verify --image: exit 0 on the same checkout; a one-byte edit fails naming the file", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const o = await appOptions("t/verify");
    const r = await ensureImage(o, { log: quiet });
    const ok = cli(["verify", "--image", r.ref, "--context", project.contextDir]);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^image: verified /);
    const file = path.join(project.contextDir, "src/pkg/util.py");
    const before_ = fs.readFileSync(file);
    writeFiles(project.contextDir, { "src/pkg/util.py": "X = 2\n" });
    writeFiles(project.contextDir, { "src/new.py": "" });
    try {
        const bad = cli(["verify", "--image", r.ref, "--context", project.contextDir, "--json"]);
        assert.equal(bad.status, 1, bad.stderr);
        const out = JSON.parse(bad.stdout) as {
            ok: boolean;
            images: Array<{ diff: { added: string[]; removed: string[]; changed: Array<{ path: string }>; fields: Array<{ field: string }> } }>;
        };
        assert.equal(out.ok, false);
        const d = out.images[0].diff;
        assert.deepEqual([d.added, d.removed, d.changed.map((c) => c.path), d.fields.map((f) => f.field)], [["src/new.py"], [], ["src/pkg/util.py"], ["hash"]]);
        const text = cli(["verify", "--image", r.ref, "--context", project.contextDir]);
        assert.match(text.stdout, /changed {2}src\/pkg\/util\.py \(content\)/);
        assert.match(text.stdout, /added {4}src\/new\.py/);
    } finally {
        fs.writeFileSync(file, before_);
        fs.rmSync(path.join(project.contextDir, "src/new.py"));
    }
    assert.equal(cli(["verify", "--image", r.ref, "--context", project.contextDir]).status, 0, "restored: the same again");
    const none = cli(["verify", "--image", `${(reg as StartedRegistry).host}/t/base@${baseRef.split("@")[1]}`]);
    assert.equal(none.status, 1);
    assert.match(none.stdout, /NOT VERIFIED .*no provenance attestation is attached/);
});

test("signing: ensure --signing-key attaches a DSSE envelope; verify --public-key passes, a wrong key or unsigned attestation fails", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const k = writeKeyPair("sign", "ed25519");
    const other = writeKeyPair("other", "ed25519");
    const ec = writeKeyPair("ec", "ec");
    const o = await appOptions("t/signed");
    const run = cli([...ensureCommandArgs(o), "--signing-key", k.priv]);
    assert.equal(run.status, 0, run.stderr);
    const r = JSON.parse(run.stdout) as { ref: string; digest: string; attestation: { action: string; signed: boolean } };
    assert.deepEqual([r.attestation.action, r.attestation.signed], ["attached", true]);
    const again = cli([...ensureCommandArgs(o), "--signing-key", k.priv]);
    assert.equal((JSON.parse(again.stdout) as { attestation: { action: string } }).attestation.action, "exists", "Ed25519 is deterministic: same envelope");

    const good = cli(["verify", "--image", r.ref, "--context", project.contextDir, "--public-key", k.pub]);
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /signature ok/);
    const wrong = cli(["verify", "--image", r.ref, "--context", project.contextDir, "--public-key", other.pub]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stdout, /no signature verifies with the public key/);
    const unsigned = cli([
        "verify",
        "--image",
        `${(reg as StartedRegistry).host}/t/app@${(await ensureImage(await appOptions("t/app"), { log: quiet })).digest}`,
        "--context",
        project.contextDir,
        "--public-key",
        k.pub,
    ]);
    assert.equal(unsigned.status, 1);
    assert.match(unsigned.stdout, /not signed/);

    // ECDSA signatures are randomized: a rerun still finds its attestation (by the statement digest).
    const host = (reg as StartedRegistry).host;
    const client = new RegistryClient(host);
    const record = await computeRecord({
        role: "app",
        contextDir: project.contextDir,
        dockerfile: project.appDockerfile,
        buildArgs: {},
        platform: PLATFORM,
        baseHash: BASE_HASH,
        baseRef,
    });
    const st = buildStatement(`${host}/t/signed`, r.digest, record);
    const first = await attachStatement(client, "t/signed", r.digest, st, loadPrivateKey(ec.priv));
    const second = await attachStatement(client, "t/signed", r.digest, st, loadPrivateKey(ec.priv));
    assert.deepEqual([first.action, second.action, second.digest, second.bytesUploaded], ["attached", "exists", first.digest, 0]);
    const all = await findAttestations(client, "t/signed", r.digest, loadPublicKey(ec.pub));
    assert.deepEqual(
        all.map((f) => f.statement !== undefined),
        [false, true],
        "the index merged both; only the P-256 one verifies with its key",
    );

    // A tampered envelope in the registry: a file's sha256 changed in the payload after signing.
    const img = await ensureImage(await appOptions("t/tamper"), { log: quiet, attest: false });
    const signedSt = buildStatement(`${host}/t/tamper`, img.digest, record);
    const subject = await client.headManifest("t/tamper", img.digest);
    const art = buildArtifact(signedSt, subject as NonNullable<typeof subject>, loadPrivateKey(k.priv));
    const env = JSON.parse(art.layer.toString()) as { payload: string };
    const forged = JSON.parse(Buffer.from(env.payload, "base64").toString()) as { predicate: { files: Array<{ sha256: string }> } };
    forged.predicate.files[0].sha256 = "0".repeat(64);
    const layer = Buffer.from(JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(forged)).toString("base64") }));
    const manifest = JSON.parse(art.manifest.toString()) as { layers: Array<{ digest: string; size: number }> };
    manifest.layers[0] = { ...manifest.layers[0], digest: sha256(layer), size: layer.length };
    const mbytes = Buffer.from(JSON.stringify(manifest));
    await client.ensureBlob("t/tamper", { digest: sha256(Buffer.from("{}")), size: 2, data: Buffer.from("{}") });
    await client.ensureBlob("t/tamper", { digest: sha256(layer), size: layer.length, data: layer });
    await client.putManifest("t/tamper", sha256(mbytes), mbytes, OCI_MANIFEST);
    const idx = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...art.descriptor, digest: sha256(mbytes), size: mbytes.length }] }),
    );
    await client.putManifest("t/tamper", referrersTag(img.digest), idx, OCI_INDEX);
    const tampered = cli(["verify", "--image", img.ref, "--context", project.contextDir, "--public-key", k.pub]);
    assert.equal(tampered.status, 1, tampered.stdout);
    assert.match(tampered.stdout, /NOT VERIFIED .*no signature verifies/);
    const unchecked = cli(["verify", "--image", img.ref, "--context", project.contextDir]);
    assert.equal(unchecked.status, 1, "without a key the forged record is read, and it differs from the checkout");
    assert.match(unchecked.stdout, /changed {2}run\.sh \(content\)/);
});

test("a registry with the referrers API (a thin fake in front of Distribution): the probe chooses it, no fallback tag is written", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const reg_ = reg as StartedRegistry;
    const o = await appOptions("t/ref");
    const img = await ensureImage(o, { log: quiet, attest: false });
    let listing: unknown[] = [];
    const proxy = await startProxy(reg_.host, {
        intercept: (req) =>
            req.method === "GET" && req.url === `/v2/t/ref/referrers/${img.digest}`
                ? { status: 200, body: { schemaVersion: 2, mediaType: OCI_INDEX, manifests: listing }, headers: { "Content-Type": OCI_INDEX } }
                : undefined,
    });
    try {
        const client = new RegistryClient(proxy.host);
        const record = await computeRecord({
            role: "app",
            contextDir: project.contextDir,
            dockerfile: project.appDockerfile,
            buildArgs: {},
            platform: PLATFORM,
            baseHash: BASE_HASH,
            baseRef,
        });
        const st = buildStatement(`${reg_.host}/t/ref`, img.digest, record);
        const a = await attachStatement(client, "t/ref", img.digest, st);
        assert.deepEqual([a.action, a.via], ["attached", "referrers"]);
        const puts = proxy.counters.requests.filter((q) => q.method === "PUT" && q.url.includes("/manifests/")).map((q) => q.url);
        assert.deepEqual(puts, [`/v2/t/ref/manifests/${a.digest}`], "the artifact by digest, no sha256-<hex> tag");
        assert.equal(await client.headManifest("t/ref", referrersTag(img.digest)), undefined);
        // The fake now lists what a real registry would have indexed from the subject field.
        const subject = await client.headManifest("t/ref", img.digest);
        listing = [buildArtifact(st, subject as NonNullable<typeof subject>).descriptor];
        proxy.reset();
        const b = await attachStatement(client, "t/ref", img.digest, st);
        assert.deepEqual([b.action, b.via, b.digest, b.bytesUploaded], ["exists", "referrers", a.digest, 0]);
        const found = await findAttestations(client, "t/ref", img.digest);
        assert.deepEqual(
            found.map((f) => [f.via, f.statement?.predicate.hash]),
            [["referrers", record.hash]],
        );
        assert.equal(
            statementBytes(found[0].statement as NonNullable<(typeof found)[0]["statement"]>).equals(statementBytes(st)),
            true,
            "the same bytes came back",
        );
    } finally {
        await proxy.stop();
    }
});

test("a file edited while ensure writes the layer: the tag is never put (an input error naming the context), and nothing is attested", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const host = (reg as StartedRegistry).host;
    const own = makeProject(tempDir());
    const o = await appOptions("t/edited", own);
    // The edit lands between the tag's hashing (the "inputs" lap) and the layer's reading of the files.
    const editAfterInputs = (contextDir: string): Laps =>
        new (class extends Laps {
            override lap(name: string): void {
                super.lap(name);
                if (name === "inputs") fs.appendFileSync(path.join(contextDir, "src", "app.py"), "print('edited')\n");
            }
        })();
    const contextChanged = (e: Error) => {
        assert.match(
            e.message,
            /build context: got .*changed while ensure read it \(the files gave app-[0-9a-f]{12}, and give app-[0-9a-f]{12} after the layer was written\)/,
        );
        assert.match(e.message, /nothing was tagged/);
        return true;
    };
    await assert.rejects(ensureImage(o, { log: quiet, laps: editAfterInputs(own.contextDir) }), contextChanged);
    const client = new RegistryClient(host);
    assert.equal(await client.headManifest("t/edited", o.expectTag), undefined, "the tag was not put");
    // Without an attestation (attest: false) the files are checked all the same.
    const plain = makeProject(tempDir());
    const po = await appOptions("t/edited-plain", plain);
    await assert.rejects(ensureImage(po, { log: quiet, laps: editAfterInputs(plain.contextDir), attest: false }), contextChanged);
    assert.equal(await client.headManifest("t/edited-plain", po.expectTag), undefined, "the tag was not put (attest: false)");
    // Nor any referrer of the image (its attestation went early, but names nothing that was not put).
    const tags = (await (await fetch(`http://${host}/v2/t/edited/tags/list`)).json()) as { tags?: string[] | null };
    assert.deepEqual(tags.tags ?? [], [], "no tag at all: neither the image's nor a sha256-<hex> referrers tag");
    // Unchanged since: the same options now build (the files give the new tag, so ask for that one).
    const now = await computeAppInputs(
        { contextDir: own.contextDir, dockerfile: own.appDockerfile, buildArgs: {}, platform: PLATFORM, baseHash: BASE_HASH },
        { cache: false },
    );
    const r = await ensureImage({ ...o, expectTag: appTag(now.hash) }, { log: quiet });
    assert.deepEqual([r.action, r.attestation?.action, r.attestation?.via], ["built", "attached", "tag"]);
    // Attached early (during the push), and found by its subject like any other.
    const found = await findAttestations(client, "t/edited", r.digest);
    assert.deepEqual(
        found.map((f) => f.digest),
        [r.attestation?.digest],
    );
});

test("ensure signs with ECDSA P-256 during the push: the blobs sent early are the ones the artifact names (a randomized signature is made once)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry")) return;
    const ec = writeKeyPair("ec-early", "ec");
    const own = makeProject(tempDir());
    writeFiles(own.contextDir, { "src/ec.py": "print('ecdsa')\n" });
    const o = await appOptions("t/ec-early", own);
    const r = await ensureImage(o, { log: quiet, signingKey: loadPrivateKey(ec.priv) });
    assert.equal(r.warnings, undefined, String(r.warnings));
    assert.deepEqual([r.action, r.attestation?.action, r.attestation?.signed], ["built", "attached", true]);
    const found = await findAttestations(new RegistryClient((reg as StartedRegistry).host), "t/ec-early", r.digest, loadPublicKey(ec.pub));
    assert.deepEqual(
        found.map((f) => [f.digest, f.error]),
        [[r.attestation?.digest, undefined]],
    );
});
