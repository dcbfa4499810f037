/**
 * Test images with nothing pulled from the internet: build contexts FROM scratch with
 * busybox-static, a daemonless scratch-image pusher (fast, for bases the test does not need a
 * builder for), per-test buildah storage, and an independent reader (skopeo + umoci, and plain
 * blob reads through the registry API).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { writeLayer, type LayerEntry } from "../../lib/layer/writer";
import { RegistryClient } from "../../lib/oci/client";
import { sha256 } from "../../lib/hashing/digest";
import {
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    OCI_INDEX,
    type ImageManifest,
} from "../../lib/oci/mediatypes";

export const BUSYBOX = "/bin/busybox";

export function tempDir(prefix = "thinlayer-test-"): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes files (relative path → content; a mode via {content, mode}) under dir. */
export function writeFiles(dir: string, files: Record<string, string | Buffer | { content: string | Buffer; mode: number }>): void {
    for (const [rel, v] of Object.entries(files)) {
        const p = path.join(dir, rel);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        if (typeof v === "string" || Buffer.isBuffer(v)) fs.writeFileSync(p, v);
        else {
            fs.writeFileSync(p, v.content);
            fs.chmodSync(p, v.mode);
        }
    }
}

/**
 * An example-shaped context: Dockerfile.base (FROM scratch, busybox, requirements) and a
 * copy-only app Dockerfile (ARG BASE_IMAGE, FROM ${BASE_IMAGE}, COPY with --chown, ENV, CMD…).
 */
export function makeProject(dir: string, opts: { appDockerfile?: string } = {}): { contextDir: string; baseDockerfile: string; appDockerfile: string } {
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(dir, "busybox"));
    fs.chmodSync(path.join(dir, "busybox"), 0o755);
    writeFiles(dir, {
        "Dockerfile.base": "FROM scratch\nCOPY busybox /bin/busybox\nCOPY requirements.txt /opt/requirements.txt\nENV PATH=/bin\n",
        "requirements.txt": "django==5.0\n",
        Dockerfile:
            opts.appDockerfile ??
            [
                "ARG BASE_IMAGE",
                "FROM ${BASE_IMAGE}",
                "WORKDIR /app",
                "COPY --chown=1000:1000 src/ /app/src/",
                "COPY run.sh ./",
                "ENV APP_MODE=prod PATH=/app/bin:$PATH",
                "USER 1000",
                "EXPOSE 8000",
                'LABEL org.example.app="emr"',
                'CMD ["/app/run.sh"]',
                "",
            ].join("\n"),
        ".dockerignore": "*.md\nnotes/\n",
        "src/app.py": "print('hello')\n",
        "src/pkg/util.py": "X = 1\n",
        "run.sh": { content: "#!/bin/sh\necho run\n", mode: 0o755 },
        "README.md": "not copied\n",
    });
    return { contextDir: dir, baseDockerfile: path.join(dir, "Dockerfile.base"), appDockerfile: path.join(dir, "Dockerfile") };
}

/** Fresh buildah storage for one test (root + runroot); remove() deletes it. */
export function buildahStorage(): { env: NodeJS.ProcessEnv; root: string; remove(): void } {
    const root = tempDir("thinlayer-buildah-");
    const env = { THINLAYER_BUILDAH_ROOT: path.join(root, "root"), THINLAYER_BUILDAH_RUNROOT: path.join(root, "runroot") };
    return {
        env,
        root,
        remove: () => {
            // vfs layers may hold read-only dirs: make them writable before removing.
            spawnSync("chmod", ["-R", "u+w", root]);
            fs.rmSync(root, { recursive: true, force: true });
        },
    };
}

/**
 * Pushes a FROM-scratch image built without any builder: one layer per entry list. Used for
 * bases the test only needs to exist (the base-build test exercises buildah for real).
 */
export async function pushScratchImage(
    client: RegistryClient,
    repo: string,
    tag: string,
    layers: LayerEntry[][],
    opts: { platforms?: string[]; env?: string[]; /** Docker v2 schema 2 media types instead of OCI. */ docker?: boolean } = {},
): Promise<{ digest: string; layerDigests: string[] }> {
    const dir = tempDir("thinlayer-scratch-");
    try {
        const blobs = [];
        for (let i = 0; i < layers.length; i++) blobs.push(await writeLayer(layers[i], path.join(dir, `l${i}.tar.gz`)));
        for (const b of blobs) await client.ensureBlob(repo, { digest: b.digest, size: b.size, file: b.file });
        const platforms = opts.platforms ?? ["linux/amd64"];
        const manifests = [];
        for (const p of platforms) {
            const [os_, arch] = p.split("/");
            const cfg = Buffer.from(
                JSON.stringify({
                    architecture: arch,
                    os: os_,
                    created: "1970-01-01T00:00:00Z",
                    config: { Env: opts.env ?? ["PATH=/bin"] },
                    rootfs: { type: "layers", diff_ids: blobs.map((b) => b.diffId) },
                    history: blobs.map((_, i) => ({ created: "1970-01-01T00:00:00Z", created_by: `test layer ${i}` })),
                }),
            );
            await client.ensureBlob(repo, { digest: sha256(cfg), size: cfg.length, data: cfg });
            const m: ImageManifest = {
                schemaVersion: 2,
                mediaType: opts.docker ? DOCKER_MANIFEST : OCI_MANIFEST,
                config: { mediaType: opts.docker ? DOCKER_CONFIG : OCI_CONFIG, digest: sha256(cfg), size: cfg.length },
                layers: blobs.map((b) => ({ mediaType: opts.docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP, digest: b.digest, size: b.size })),
            };
            const bytes = Buffer.from(JSON.stringify(m));
            manifests.push({ bytes, platform: { os: os_, architecture: arch } });
        }
        let digest: string;
        if (platforms.length === 1 && opts.platforms === undefined) {
            digest = await client.putManifest(repo, tag, manifests[0].bytes, opts.docker ? DOCKER_MANIFEST : OCI_MANIFEST);
        } else {
            for (const m of manifests) await client.putManifest(repo, sha256(m.bytes), m.bytes, OCI_MANIFEST);
            const idx = Buffer.from(
                JSON.stringify({
                    schemaVersion: 2,
                    mediaType: OCI_INDEX,
                    manifests: manifests.map((m) => ({ mediaType: OCI_MANIFEST, digest: sha256(m.bytes), size: m.bytes.length, platform: m.platform })),
                }),
            );
            digest = await client.putManifest(repo, tag, idx, OCI_INDEX);
        }
        return { digest, layerDigests: blobs.map((b) => b.digest) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** `skopeo inspect --raw` / `--config` of an image on a plain-HTTP loopback registry (independent reader). */
export function skopeo(args: string[]): string {
    const r = spawnSync("skopeo", args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`skopeo ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
}

export function skopeoRaw(ref: string, creds?: string): unknown {
    return JSON.parse(skopeo(["inspect", "--tls-verify=false", ...(creds ? ["--creds", creds] : []), "--raw", `docker://${ref}`]));
}

export function skopeoConfig(ref: string): { config?: Record<string, unknown>; rootfs: { diff_ids: string[] }; history?: unknown[] } {
    return JSON.parse(skopeo(["inspect", "--tls-verify=false", "--config", `docker://${ref}`])) as {
        config?: Record<string, unknown>;
        rootfs: { diff_ids: string[] };
        history?: unknown[];
    };
}

/** One tar entry as an independent reader sees it. */
export interface TarEntryInfo {
    name: string;
    type: string;
    mode: number;
    uid: number;
    gid: number;
    mtime: number;
    content?: string;
}

/** Reads a gzip layer blob's entries (name, type, mode, owner, mtime, content for small files). */
export async function readLayerEntries(gz: Buffer): Promise<TarEntryInfo[]> {
    const ex = tar.extract();
    const out: TarEntryInfo[] = [];
    const done = new Promise<void>((resolve, reject) => {
        ex.on("entry", (h, stream, next) => {
            const chunks: Buffer[] = [];
            stream.on("data", (c: unknown) => {
                chunks.push(c as Buffer);
            });
            stream.on("end", () => {
                const body = Buffer.concat(chunks);
                out.push({
                    name: h.name,
                    type: h.type ?? "file",
                    mode: (h.mode ?? 0) & 0o7777,
                    uid: h.uid ?? -1,
                    gid: h.gid ?? -1,
                    mtime: (h.mtime?.getTime() ?? -1) / 1000,
                    content: h.type === "file" && body.length < 4096 ? body.toString("utf8") : undefined,
                });
                next();
            });
            stream.on("error", reject);
        });
        ex.on("finish", resolve);
        ex.on("error", reject);
    });
    ex.end(zlib.gunzipSync(gz));
    await done;
    return out;
}

/** Copies an image to an OCI layout with skopeo and unpacks it with umoci; returns the rootfs dir. */
export function unpackWithUmoci(ref: string, dir: string): string {
    const layout = path.join(dir, "oci");
    skopeo(["copy", "--src-tls-verify=false", `docker://${ref}`, `oci:${layout}:img`]);
    const bundle = path.join(dir, "bundle");
    const r = spawnSync("umoci", ["unpack", "--image", `${layout}:img`, bundle], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`umoci unpack failed: ${r.stderr}`);
    return path.join(bundle, "rootfs");
}
