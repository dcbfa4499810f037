/**
 * `ensure` end to end against a real registry (docker-registry) and a real builder (buildah),
 * checked with independent readers (skopeo, umoci, and raw blob reads).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureCommandArgs, ensureImage, type EnsureResult } from "../../lib/build/ensure";
import { appTag, baseTag, computeAppInputs, computeBaseInputs } from "../../lib/plan";
import { RegistryClient } from "../../lib/oci/client";
import { OCI_INDEX, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST } from "../../lib/oci/mediatypes";
import {
    buildahStorage,
    makeProject,
    pushScratchImage,
    readLayerEntries,
    skopeo,
    skopeoConfig,
    skopeoRaw,
    tempDir,
    unpackWithUmoci,
    writeFiles,
} from "../helpers/images";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { needTools, which } from "../helpers/tools";

const ROOT = path.resolve(__dirname, "../..");
const PLATFORM = "linux/amd64";
interface Manifest {
    mediaType?: string;
    config: { digest: string; size: number };
    layers: Array<{ digest: string; size: number }>;
    manifests?: Array<{ digest: string; platform?: { architecture: string } }>;
}

let reg: StartedRegistry | undefined;
let authReg: StartedRegistry | undefined;
let storage: ReturnType<typeof buildahStorage> | undefined;
let project: ReturnType<typeof makeProject>;
const state: { base?: EnsureResult; baseHash?: string; app?: EnsureResult } = {};
const quiet = () => undefined;

before(async () => {
    if (which("busybox")) project = makeProject(tempDir());
    if (which("buildah")) storage = buildahStorage();
    if (!which("docker-registry") || !which("htpasswd")) return;
    reg = await startRegistry();
    authReg = await startRegistry({ htpasswd: { user: "ci", password: "pw-ensure-test" } });
});
after(async () => {
    await reg?.stop();
    await authReg?.stop();
    storage?.remove();
});

async function baseInputs() {
    return computeBaseInputs({ contextDir: project.contextDir, dockerfile: project.baseDockerfile, buildArgs: {}, platform: PLATFORM }, { cache: false });
}
async function appInputs(baseHash: string, dockerfile = project.appDockerfile) {
    return computeAppInputs({ contextDir: project.contextDir, dockerfile, buildArgs: {}, platform: PLATFORM, baseHash }, { cache: false });
}
async function ensureBase(host: string, rt: { dockerConfig?: string; log?: (l: string) => void } = {}): Promise<{ r: EnsureResult; hash: string }> {
    const bi = await baseInputs();
    const r = await ensureImage(
        {
            image: "base",
            context: project.contextDir,
            dockerfile: project.baseDockerfile,
            repository: `${host}/t/base`,
            platform: PLATFORM,
            expectTag: baseTag(bi.hash),
            builder: "buildah",
        },
        { log: quiet, builderEnv: storage?.env, ...rt },
    );
    return { r, hash: bi.hash };
}
async function ensureApp(
    host: string,
    baseRef: string,
    baseHash: string,
    repo = "t/app",
    rt: { dockerConfig?: string; client?: RegistryClient; log?: (l: string) => void } = {},
): Promise<EnsureResult> {
    const ai = await appInputs(baseHash);
    return ensureImage(
        {
            image: "app",
            context: project.contextDir,
            dockerfile: project.appDockerfile,
            repository: `${host}/${repo}`,
            platform: PLATFORM,
            expectTag: appTag(ai.hash),
            baseRef,
            baseHash,
        },
        { log: quiet, builderEnv: storage?.env, ...rt },
    );
}

test("ensureCommandArgs builds the documented argv (pure, build args sorted)", () => {
    assert.deepEqual(
        ensureCommandArgs({
            image: "base",
            context: "/c",
            dockerfile: "/c/Dockerfile.base",
            repository: "r.example/t/base",
            buildArgs: { Z: "1", A: "x=y" },
            expectTag: "deps-0123456789ab",
        }),
        [
            "ensure",
            "base",
            "--context",
            "/c",
            "--dockerfile",
            "/c/Dockerfile.base",
            "--repository",
            "r.example/t/base",
            "--platform",
            "linux/amd64",
            "--build-arg",
            "A=x=y",
            "--build-arg",
            "Z=1",
            "--expect-tag",
            "deps-0123456789ab",
            "--json",
        ],
    );
    const d = "sha256:" + "0".repeat(64);
    assert.deepEqual(
        ensureCommandArgs({
            image: "app",
            context: "/c",
            dockerfile: "/c/Dockerfile",
            repository: "r/t/app",
            platform: "linux/arm64",
            baseRef: `r/t/base@${d}`,
            baseHash: "b".repeat(64),
            expectTag: "app-0123456789ab",
            builder: "buildah",
        }),
        [
            "ensure",
            "app",
            "--context",
            "/c",
            "--dockerfile",
            "/c/Dockerfile",
            "--repository",
            "r/t/app",
            "--platform",
            "linux/arm64",
            "--base-ref",
            `r/t/base@${d}`,
            "--base-hash",
            "b".repeat(64),
            "--expect-tag",
            "app-0123456789ab",
            "--builder",
            "buildah",
            "--json",
        ],
    );
});

test("ensure base: built by buildah, pushed, digest read back from the registry; rerun reuses and uploads nothing", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const homeCfg = path.join(os.homedir(), ".docker", "config.json");
    const homeBefore = fs.existsSync(homeCfg) ? fs.readFileSync(homeCfg, "utf8") : undefined;
    const { r, hash } = await ensureBase(host);
    assert.equal(r.action, "built");
    assert.equal(r.how, "buildah");
    assert.match(r.tag, /^deps-[0-9a-f]{12}$/);
    const inspected = JSON.parse(skopeo(["inspect", "--tls-verify=false", `docker://${host}/t/base:${r.tag}`])) as { Digest: string };
    assert.equal(r.digest, inspected.Digest);
    assert.equal(r.ref, `${host}/t/base@${inspected.Digest}`);
    assert.ok(r.bytesUploaded > 1_000_000, "the busybox layer was pushed by the builder");
    // Builder credentials never go to the user's Docker config.
    assert.equal(fs.existsSync(homeCfg) ? fs.readFileSync(homeCfg, "utf8") : undefined, homeBefore);

    const again = await ensureBase(host);
    assert.deepEqual([again.r.action, again.r.how, again.r.digest, again.r.bytesUploaded], ["reused", "registry", r.digest, 0]);
    state.base = r;
    state.baseHash = hash;
});

test("ensure app (copy-only): daemonless; base layers by digest; the app layer holds exactly the COPYed files with owner and mode; config updated", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo", "umoci") || !state.base) return;
    const host = (reg as StartedRegistry).host;
    const r = await ensureApp(host, state.base.ref, state.baseHash as string);
    assert.deepEqual([r.action, r.how], ["built", "daemonless"]);
    const baseM = skopeoRaw(state.base.ref) as Manifest;
    const appM = skopeoRaw(r.ref) as Manifest;
    assert.deepEqual(
        appM.layers.slice(0, -1).map((l) => l.digest),
        baseM.layers.map((l) => l.digest),
    );
    assert.equal(appM.layers.length, baseM.layers.length + 1);
    // Base layer blobs were never downloaded: only manifest + config.
    const baseLayerBytes = baseM.layers.reduce((n, l) => n + l.size, 0);
    assert.ok(r.bytesDownloaded < 20_000 && r.bytesDownloaded < baseLayerBytes, `downloaded ${r.bytesDownloaded}`);
    // Uploaded: the app layer, the config and the manifest; no base layer (mounted from t/base).
    const app = appM.layers[appM.layers.length - 1];
    assert.ok(r.bytesUploaded >= app.size + appM.config.size && r.bytesUploaded < app.size + appM.config.size + 4096, `uploaded ${r.bytesUploaded}`);

    // The layer blob, read independently.
    const res = await fetch(`http://${host}/v2/t/app/blobs/${app.digest}`);
    const entries = await readLayerEntries(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(
        entries.map((e) => [e.name.replace(/\/$/, ""), e.type, e.mode.toString(8), `${e.uid}:${e.gid}`, e.mtime]),
        [
            ["app", "directory", "755", "0:0", 0],
            ["app/run.sh", "file", "755", "0:0", 0],
            ["app/src", "directory", "755", "1000:1000", 0],
            ["app/src/app.py", "file", "644", "1000:1000", 0],
            ["app/src/pkg", "directory", "755", "1000:1000", 0],
            ["app/src/pkg/util.py", "file", "644", "1000:1000", 0],
        ],
    );
    // The whole image, unpacked by skopeo + umoci.
    const rootfs = unpackWithUmoci(`${host}/t/app:${r.tag}`, tempDir());
    const st = fs.statSync(path.join(rootfs, "app/src/app.py"));
    assert.deepEqual([st.uid, st.gid, (st.mode & 0o777).toString(8)], [1000, 1000, "644"]);
    assert.equal(fs.readFileSync(path.join(rootfs, "app/src/app.py"), "utf8"), "print('hello')\n");
    assert.ok(fs.existsSync(path.join(rootfs, "bin/busybox")), "base content present");
    assert.ok(!fs.existsSync(path.join(rootfs, "app/README.md")), "dockerignored file absent");
    // Config: every metadata instruction applied on top of the base config.
    const cfg = skopeoConfig(`${host}/t/app:${r.tag}`);
    const baseCfg = skopeoConfig(state.base.ref.replace(/@.*/, `:${state.base.tag}`));
    assert.deepEqual(cfg.rootfs.diff_ids.slice(0, -1), baseCfg.rootfs.diff_ids);
    const c = cfg.config as { Env: string[]; Cmd: string[]; WorkingDir: string; User: string; ExposedPorts: object; Labels: Record<string, string> };
    assert.ok(c.Env.includes("APP_MODE=prod"));
    assert.ok(c.Env.includes("PATH=/app/bin:/bin"), c.Env.join(","));
    assert.deepEqual(c.Cmd, ["/app/run.sh"]);
    assert.equal(c.WorkingDir, "/app");
    assert.equal(c.User, "1000");
    assert.deepEqual(c.ExposedPorts, { "8000/tcp": {} });
    assert.equal(c.Labels["org.example.app"], "emr");
    assert.equal((cfg.history ?? []).length, (baseCfg.history ?? []).length + 1);
    state.app = r;
});

test("ensure app rerun builds nothing and uploads 0 bytes; same inputs give a byte-identical manifest", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo") || !state.app || !state.base) return;
    const host = (reg as StartedRegistry).host;
    const again = await ensureApp(host, state.base.ref, state.baseHash as string);
    assert.deepEqual([again.action, again.how, again.digest, again.bytesUploaded], ["reused", "registry", state.app.digest, 0]);
    // Rebuilt from scratch into another repository: the same digest, base layers mounted.
    const copy = await ensureApp(host, state.base.ref, state.baseHash as string, "t/app-elsewhere");
    assert.equal(copy.action, "built");
    assert.equal(copy.digest, state.app.digest);
    assert.deepEqual(skopeoRaw(copy.ref), skopeoRaw(state.app.ref));
});

test("one changed app file uploads one new layer (+ its config and manifest) and nothing else", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo") || !state.app || !state.base) return;
    const host = (reg as StartedRegistry).host;
    writeFiles(project.contextDir, { "src/app.py": "print('hello, v2')\n" });
    try {
        const r = await ensureApp(host, state.base.ref, state.baseHash as string);
        assert.equal(r.action, "built");
        assert.notEqual(r.tag, state.app.tag);
        const before = skopeoRaw(state.app.ref) as Manifest;
        const after_ = skopeoRaw(r.ref) as Manifest;
        assert.deepEqual(after_.layers.slice(0, -1), before.layers.slice(0, -1));
        const layer = after_.layers[after_.layers.length - 1];
        assert.notEqual(layer.digest, before.layers[before.layers.length - 1].digest);
        const manifestSize = Buffer.byteLength(JSON.stringify(after_));
        assert.equal(r.bytesUploaded, layer.size + after_.config.size + manifestSize);
    } finally {
        writeFiles(project.contextDir, { "src/app.py": "print('hello')\n" });
    }
});

test("a changed requirement rebuilds the base (buildah), then the app on the new base", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo") || !state.app || !state.base) return;
    const host = (reg as StartedRegistry).host;
    const oldReq = fs.readFileSync(path.join(project.contextDir, "requirements.txt"), "utf8");
    writeFiles(project.contextDir, { "requirements.txt": "django==5.1\n" });
    try {
        const { r: base2, hash } = await ensureBase(host);
        assert.deepEqual([base2.action, base2.how], ["built", "buildah"]);
        assert.notEqual(base2.tag, state.base.tag);
        assert.notEqual(base2.digest, state.base.digest);
        const app2 = await ensureApp(host, base2.ref, hash);
        assert.deepEqual([app2.action, app2.how], ["built", "daemonless"]);
        assert.notEqual(app2.tag, state.app.tag);
        const b = skopeoRaw(base2.ref) as Manifest;
        const a = skopeoRaw(app2.ref) as Manifest;
        assert.deepEqual(
            a.layers.slice(0, -1).map((l) => l.digest),
            b.layers.map((l) => l.digest),
        );
    } finally {
        writeFiles(project.contextDir, { "requirements.txt": oldReq });
    }
});

test("CLI: `thinlayer ensure app … --json` prints exactly one JSON object on stdout, logs on stderr; human output otherwise", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah") || !state.app || !state.base) return;
    const host = (reg as StartedRegistry).host;
    const ai = await appInputs(state.baseHash as string);
    const argv = ensureCommandArgs({
        image: "app",
        context: project.contextDir,
        dockerfile: project.appDockerfile,
        repository: `${host}/t/app`,
        baseRef: state.base.ref,
        baseHash: state.baseHash as string,
        expectTag: appTag(ai.hash),
    });
    const env = { ...process.env, DOCKER_CONFIG: tempDir() };
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin/thinlayer.js"), ...argv], { encoding: "utf8", env });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1);
    const out = JSON.parse(lines[0]) as EnsureResult;
    assert.deepEqual(Object.keys(out).slice(0, 9), ["ref", "repository", "tag", "digest", "action", "how", "bytesUploaded", "bytesDownloaded", "seconds"]);
    assert.deepEqual([out.digest, out.action, out.how, out.bytesUploaded], [state.app.digest, "reused", "registry", 0]);
    assert.match(r.stderr, /exists .*nothing to build/);
    const human = spawnSync(process.execPath, [path.join(ROOT, "bin/thinlayer.js"), ...argv.filter((a) => a !== "--json")], { encoding: "utf8", env });
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /reused .*app-[0-9a-f]{12}\n\s+ref\s+\S+@sha256:/);
    // A stale --expect-tag is refused with the tag the files give now.
    const stale = spawnSync(process.execPath, [path.join(ROOT, "bin/thinlayer.js"), ...argv.map((a) => (a === appTag(ai.hash) ? "app-000000000000" : a))], {
        encoding: "utf8",
        env,
    });
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /--expect-tag: got app-000000000000; expected the tag the files give now, app-[0-9a-f]{12}/);
    assert.equal(stale.stdout, "");
});

test("a non-copy-only app Dockerfile (RUN) falls back to buildah with BASE_IMAGE=<repo>@<digest>", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "buildah", "skopeo") || !state.base) return;
    const host = (reg as StartedRegistry).host;
    const df = path.join(project.contextDir, "Dockerfile.run");
    fs.writeFileSync(df, 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN ["/bin/busybox", "mkdir", "/made"]\nCOPY run.sh /app/run.sh\n');
    const ai = await appInputs(state.baseHash as string, df);
    assert.equal(ai.copyOnly, false);
    const r = await ensureImage(
        {
            image: "app",
            context: project.contextDir,
            dockerfile: df,
            repository: `${host}/t/app-run`,
            platform: PLATFORM,
            expectTag: appTag(ai.hash),
            baseRef: state.base.ref,
            baseHash: state.baseHash as string,
            builder: "buildah",
        },
        { log: quiet, builderEnv: storage?.env },
    );
    assert.deepEqual([r.action, r.how], ["built", "buildah"]);
    const b = skopeoRaw(state.base.ref) as Manifest;
    const a = skopeoRaw(r.ref) as Manifest;
    assert.deepEqual(
        a.layers.slice(0, b.layers.length).map((l) => l.digest),
        b.layers.map((l) => l.digest),
    );
    assert.ok(a.layers.length > b.layers.length);
});

test("a multi-platform base (index): the same layer is appended to every platform and an index is pushed", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const client = new RegistryClient(host);
    const bb = path.join(project.contextDir, "busybox");
    const base = await pushScratchImage(client, "t/multibase", "v1", [[{ dest: "/bin/busybox", type: "file", source: bb, mode: 0o755, uid: 0, gid: 0 }]], {
        platforms: ["linux/amd64", "linux/arm64"],
    });
    const baseHash = "c".repeat(64);
    const r = await ensureApp(host, `${host}/t/multibase@${base.digest}`, baseHash, "t/multiapp");
    assert.deepEqual([r.action, r.how], ["built", "daemonless"]);
    const idx = skopeoRaw(r.ref) as Manifest;
    assert.equal(idx.mediaType, OCI_INDEX);
    assert.deepEqual(
        idx.manifests?.map((m) => m.platform?.architecture),
        ["amd64", "arm64"],
    );
    const appLayers = new Set<string>();
    for (const m of idx.manifests ?? []) {
        const child = skopeoRaw(`${host}/t/multiapp@${m.digest}`) as Manifest;
        assert.deepEqual(child.layers[0].digest, base.layerDigests[0]);
        assert.equal(child.layers.length, 2);
        appLayers.add(child.layers[1].digest);
    }
    assert.equal(appLayers.size, 1, "one layer shared by every platform");
});

test("an htpasswd registry: daemonless app and buildah base both authenticate (buildah via a temporary auth file)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "htpasswd", "buildah")) return;
    const r = authReg as StartedRegistry;
    const dockerConfig = path.join(r.dockerConfigDir as string, "config.json");
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const { r: base, hash } = await ensureBase(r.host, { dockerConfig, log });
    assert.deepEqual([base.action, base.how], ["built", "buildah"]);
    const app = await ensureApp(r.host, base.ref, hash, "t/app", { dockerConfig, log });
    assert.deepEqual([app.action, app.how], ["built", "daemonless"]);
    // No secret in any log line or result.
    const secret = "pw-ensure-test";
    const everything = [...lines, JSON.stringify(base), JSON.stringify(app)].join("\n");
    assert.ok(lines.length > 0);
    assert.ok(!everything.includes(secret) && !everything.includes(Buffer.from(`ci:${secret}`).toString("base64")));
    const anon = new RegistryClient(r.host, { dockerConfig: path.join(tempDir(), "none.json") });
    await assert.rejects(anon.headManifest("t/app", app.tag), /401/);
});

test("a Docker v2 schema 2 base gets a Docker v2 app manifest (Docker config and layer media types)", async (t) => {
    if (!needTools(t, "busybox", "docker-registry", "skopeo")) return;
    const host = (reg as StartedRegistry).host;
    const client = new RegistryClient(host);
    const bb = path.join(project.contextDir, "busybox");
    const base = await pushScratchImage(client, "t/dockerbase", "v1", [[{ dest: "/bin/busybox", type: "file", source: bb, mode: 0o755, uid: 0, gid: 0 }]], {
        docker: true,
    });
    const r = await ensureApp(host, `${host}/t/dockerbase@${base.digest}`, "f".repeat(64), "t/dockerapp");
    assert.deepEqual([r.action, r.how], ["built", "daemonless"]);
    const m = skopeoRaw(r.ref) as { mediaType: string; config: { mediaType: string }; layers: Array<{ mediaType: string; digest: string }> };
    assert.equal(m.mediaType, DOCKER_MANIFEST);
    assert.equal(m.config.mediaType, DOCKER_CONFIG);
    assert.deepEqual(
        m.layers.map((l) => l.mediaType),
        [DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP],
    );
    assert.equal(m.layers[0].digest, base.layerDigests[0]);
    const cfg = skopeoConfig(r.ref);
    assert.equal(cfg.rootfs.diff_ids.length, 2);
});
