/**
 * thinlayer's daemonless app image against `docker build` of the same Dockerfile on the same base
 * (examples/django-app, FROM the real example base), both read back through the Docker engine:
 * the daemonless image is pulled from the registry, the BuildKit one built in the engine; each is
 * flattened with `docker create` + `docker export` (the filesystem a container sees) and compared
 * file by file (path, type, mode, owner, content, link target), and their configs compared
 * (Env, WorkingDir, User, Cmd, Entrypoint, ExposedPorts, Labels).
 *
 * Differences that are deliberate are listed in DELIBERATE with the reason; anything else fails.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tar from "tar-stream";
import { ensureImage } from "../../lib/build/ensure";
import { appTag, computeAppInputs } from "../../lib/plan";
import { DOCKER, DOCKERD_TOOLS, startDockerd, type StartedDockerd } from "../helpers/dockerd";
import { EXAMPLE_BASE_TOOLS, EXAMPLE_DIR, exampleBase, type ExampleBase } from "../helpers/example-base";
import { tempDir } from "../helpers/images";
import { startRegistry, type StartedRegistry } from "../helpers/registry";
import { which } from "../helpers/tools";

const TOOLS = [...DOCKERD_TOOLS, ...EXAMPLE_BASE_TOOLS, "docker-registry"];
const missing = TOOLS.filter((t) => (t.startsWith("/") ? !fs.existsSync(t) : which(t) === undefined));
const skip =
    missing.length > 0 && process.env.CI !== "true"
        ? `missing tools: ${missing.join(", ")} (apt-get install -y docker.io debootstrap umoci skopeo docker-registry)`
        : false;

/** One filesystem entry as `docker export` shows it. */
interface Entry {
    type: string;
    mode: string;
    owner: string;
    /** sha256 of a file's bytes, a link's target. */
    content: string;
    /** Seconds since the epoch. */
    mtime: string;
}

/** The filesystem of `image` as a container sees it. */
async function flatten(dockerd: StartedDockerd, image: string): Promise<Map<string, Entry>> {
    const id = dockerd.docker(["create", image]).trim();
    try {
        const out = new Map<string, Entry>();
        const ex = tar.extract();
        const done = new Promise<void>((resolve, reject) => {
            ex.on("entry", (h, stream, next) => {
                const hash = crypto.createHash("sha256");
                stream.on("data", (c: unknown) => {
                    hash.update(c as Buffer);
                });
                stream.on("end", () => {
                    const name = "/" + h.name.replace(/^\.?\//, "").replace(/\/$/, "");
                    const type = h.type ?? "file";
                    const content = type === "file" ? hash.digest("hex") : type === "symlink" || type === "link" ? `-> ${h.linkname ?? ""}` : "";
                    out.set(name, {
                        type,
                        mode: ((h.mode ?? 0) & 0o7777).toString(8).padStart(4, "0"),
                        owner: `${h.uid ?? -1}:${h.gid ?? -1}`,
                        content,
                        mtime: String((h.mtime?.getTime() ?? -1000) / 1000),
                    });
                    next();
                });
                stream.on("error", reject);
            });
            ex.on("finish", resolve);
            ex.on("error", reject);
        });
        const p = spawn(DOCKER, ["export", id], { env: { ...process.env, ...dockerd.env }, stdio: ["ignore", "pipe", "pipe"] });
        let err = "";
        p.stderr.on("data", (c: Buffer) => (err += c.toString()));
        p.stdout.pipe(ex);
        const code = await new Promise<number | null>((r) => p.on("exit", r));
        if (code !== 0) throw new Error(`docker export ${id} failed (${code}): ${err}`);
        await done;
        return out;
    } finally {
        dockerd.docker(["rm", "-f", id]);
    }
}

/** What the equivalence compares of an image's config, as `docker image inspect` reports it. */
function configOf(dockerd: StartedDockerd, image: string): Record<string, unknown> {
    const [img] = JSON.parse(dockerd.docker(["image", "inspect", image])) as Array<{ Config: Record<string, unknown>; Os: string; Architecture: string }>;
    const c = img.Config;
    const pick = (k: string) => c[k] ?? null;
    return {
        Env: pick("Env"),
        WorkingDir: pick("WorkingDir") ?? "",
        User: pick("User") ?? "",
        Cmd: pick("Cmd"),
        Entrypoint: pick("Entrypoint"),
        ExposedPorts: pick("ExposedPorts"),
        Labels: pick("Labels"),
        Platform: `${img.Os}/${img.Architecture}`,
    };
}

/**
 * What `docker create` writes into every container's init layer (and the directories holding
 * them) at create time: engine artifacts, not image content, so their mtimes say when each
 * container was created. Their other fields are still compared.
 */
const INIT_LAYER = /^\/(\.dockerenv|dev(\/.*)?|etc|etc\/(hostname|hosts|mtab|resolv\.conf)|proc|sys)$/;

/** Every difference between two flattened filesystems, one line each. */
function diffFs(ours: Map<string, Entry>, theirs: Map<string, Entry>): string[] {
    const lines: string[] = [];
    for (const p of [...new Set([...ours.keys(), ...theirs.keys()])].sort()) {
        const a = ours.get(p);
        const b = theirs.get(p);
        if (!a) lines.push(`${p}: only in docker build (${b?.type})`);
        else if (!b) lines.push(`${p}: only in thinlayer (${a.type})`);
        else
            for (const k of ["type", "mode", "owner", "content", "mtime"] as const) {
                if (k === "mtime" && INIT_LAYER.test(p)) continue;
                if (a[k] !== b[k]) lines.push(`${p}: ${k} thinlayer ${a[k]} / docker build ${b[k]}`);
            }
    }
    return lines;
}

/**
 * Deliberate differences (pattern → reason); anything else fails the test. Path, type, mode,
 * owner, content and the config are all equal; what differs is outside the image's meaning:
 */
const DELIBERATE: Array<{ pattern: RegExp; reason: string }> = [
    {
        // BuildKit keeps each context file's mtime and stamps directories it writes with the build
        // time, so the same files give another digest on every checkout and every build.
        pattern: /^\/app(\/.*)?: mtime thinlayer 0 \/ docker build \d+$/,
        reason: "thinlayer writes every entry of its layer with a fixed mtime (the epoch) so the same files always give the same layer digest, on any machine and checkout",
    },
];

let dockerd: StartedDockerd;
let registry: StartedRegistry;
let base: ExampleBase;
let ctx: string;

before(async () => {
    if (skip) return;
    if (missing.length) throw new Error(`missing tools: ${missing.join(", ")}; CI=true, so this is a failure, not a skip`);
    [dockerd, registry] = await Promise.all([startDockerd(), startRegistry()]);
    base = await exampleBase(registry.host, { log: (l) => process.stderr.write(`example-base: ${l}\n`) });
    // A snapshot of the example (others may edit the working tree while this runs): both builds read the same files.
    ctx = tempDir("thinlayer-equiv-");
    const cp = spawnSync("cp", ["-a", `${EXAMPLE_DIR}/.`, ctx]);
    if (cp.status !== 0) throw new Error(`cp -a ${EXAMPLE_DIR} failed: ${String(cp.stderr)}`);
});

after(async () => {
    if (ctx) fs.rmSync(ctx, { recursive: true, force: true });
    await Promise.all([dockerd?.stop(), registry?.stop()]);
});

test("the daemonless app image equals `docker build` of the same Dockerfile on the same base: every file and the config", { skip }, async () => {
    const dockerfile = path.join(ctx, "Dockerfile");
    const inputs = await computeAppInputs({ contextDir: ctx, dockerfile, buildArgs: {}, platform: "linux/amd64", baseHash: base.baseHash });
    const ours = await ensureImage({
        image: "app",
        context: ctx,
        dockerfile,
        repository: `${registry.host}/thinlayer/example-app`,
        platform: "linux/amd64",
        buildArgs: {},
        baseRef: base.baseRef,
        baseHash: base.baseHash,
        expectTag: appTag(inputs.hash),
    });
    assert.equal(ours.how, "daemonless");
    const oursRef = `${registry.host}/thinlayer/example-app@${ours.digest}`;
    dockerd.docker(["pull", "--quiet", oursRef]);
    const theirsRef = "equivalence/docker-build:latest";
    dockerd.docker(["build", "--quiet", "--platform", "linux/amd64", "--build-arg", `BASE_IMAGE=${base.baseRef}`, "-f", dockerfile, "-t", theirsRef, ctx], {
        env: { DOCKER_BUILDKIT: "1" },
    });

    const [a, b] = [await flatten(dockerd, oursRef), await flatten(dockerd, theirsRef)];
    assert.ok(a.has("/app/manage.py") && a.has("/usr/local/bin/gunicorn"), "the flattened daemonless image lacks the app or the base");
    const fsDiff = diffFs(a, b);
    const undocumented = fsDiff.filter((l) => !DELIBERATE.some((d) => d.pattern.test(l)));
    assert.deepEqual(undocumented, [], `files differ:\n${undocumented.join("\n")}`);

    // Only the COPYed files' mtimes differ: the base's files are the same bytes in both.
    assert.ok(
        fsDiff.some((l) => l.startsWith("/app/manage.py: mtime")),
        "expected BuildKit to keep the context's mtime (has the comparison stopped reading mtimes?)",
    );

    // Layers: ours is the base plus exactly one layer. BuildKit adds an empty layer for WORKDIR
    // (the directory exists in the base) and one for COPY; the empty one carries no file.
    const layers = (ref: string) => JSON.parse(dockerd.docker(["image", "inspect", "--format", "{{json .RootFS.Layers}}", ref])) as string[];
    dockerd.docker(["pull", "--quiet", base.baseRef]);
    const baseLayers = layers(base.baseRef);
    assert.deepEqual(layers(oursRef).slice(0, -1), baseLayers);
    assert.equal(layers(oursRef).length, baseLayers.length + 1);
    assert.deepEqual(layers(theirsRef).slice(0, baseLayers.length), baseLayers);

    const [ca, cb] = [configOf(dockerd, oursRef), configOf(dockerd, theirsRef)];
    assert.deepEqual(ca, cb);
    assert.equal(ca.User, "10001:10001");
    assert.equal(ca.WorkingDir, "/app");
});
