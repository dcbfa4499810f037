/**
 * The example's real base image, with nothing pulled from the internet:
 *
 * 1. A stand-in for `python:3.12-slim`, from Debian's packages only: a debootstrap minbase rootfs
 *    with python3, pip and venv, made to behave as the official image does for Dockerfile.base
 *    (`python` and `pip` on PATH, system-wide `pip install` allowed: Debian's PEP 668 marker
 *    EXTERNALLY-MANAGED removed, as the official image has no marker), packed daemonless with umoci
 *    into an OCI layout with the official image's config that matters (PATH, LANG, Cmd python3).
 * 2. examples/django-app/Dockerfile.base built AS WRITTEN FROM that stand-in (its PYTHON_IMAGE
 *    arg), by `thinlayer ensure base` with the `docker` builder on a dockerd of its own: apt-get
 *    and `pip install` from the network, as on a real runner.
 *
 * Both are cached under $THINLAYER_CACHE (default ~/.cache/thinlayer) by content hash, so a
 * machine builds each once: `example-python-<key>/` (OCI layout) is keyed on the recipe, the suite,
 * the package set, the mirror and this machine's extra CA certificates; `example-base-<key>/`
 * (skopeo `dir:` copy, manifest bytes kept, so digests are stable) on the stand-in's key plus
 * thinlayer's own base hash of Dockerfile.base (what it COPYs, its args, the platform). A test run
 * copies them into its registry in seconds (`skopeo copy --preserve-digests`).
 *
 * This machine reaches the internet through a TLS-intercepting proxy whose CA the host trusts in
 * /usr/local/share/ca-certificates; the stand-in trusts the same CAs, or pip could not reach PyPI
 * from inside a build. On a machine without such CAs nothing is added.
 */
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensureImage } from "../../lib/build/ensure";
import { baseTag, computeBaseInputs } from "../../lib/plan";
import { startDockerd } from "./dockerd";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const EXAMPLE_DIR = path.join(REPO_ROOT, "examples", "django-app");
export const EXAMPLE_BASE_DOCKERFILE = path.join(EXAMPLE_DIR, "Dockerfile.base");

/** Bump when the recipe below changes in a way the inputs do not show. */
const RECIPE = "python-stand-in/1";
export const STAND_IN_SUITE = "bookworm";
/** python-is-python3: `python` → python3, as the official image has `python`. */
export const STAND_IN_PACKAGES = ["python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"];
/** Where the stand-in goes in a registry (the name Dockerfile.base defaults to). */
export const STAND_IN_REPOSITORY = "library/python";
export const STAND_IN_TAG = "3.12-slim";
/** Tools the stand-in and the base need beyond dockerd (for `needTools`). */
export const EXAMPLE_BASE_TOOLS = ["debootstrap", "umoci", "skopeo", "tar"];

const PATH_ENV = "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin";

export function cacheRoot(): string {
    return process.env.THINLAYER_CACHE ?? path.join(os.homedir(), ".cache", "thinlayer");
}

function sha256hex(s: string | Buffer): string {
    return crypto.createHash("sha256").update(s).digest("hex");
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; log?: (l: string) => void; timeoutMs?: number } = {}): string {
    opts.log?.(`$ ${cmd} ${args.join(" ")}`);
    const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 1_800_000 });
    if (r.status !== 0)
        throw new Error(
            `${cmd} ${args.join(" ")} failed (${r.status ?? r.signal ?? r.error?.message}): ${String(r.stderr ?? "").slice(-4000)}${String(r.stdout ?? "").slice(-2000)}`,
        );
    return r.stdout;
}

/** The Debian mirror apt uses here (its first non-security URI), for debootstrap and the stand-in's sources. */
export function debianMirror(): string {
    const texts: string[] = [];
    for (const d of ["/etc/apt/sources.list.d"]) {
        if (fs.existsSync(d)) for (const f of fs.readdirSync(d).sort()) texts.push(fs.readFileSync(path.join(d, f), "utf8"));
    }
    if (fs.existsSync("/etc/apt/sources.list")) texts.push(fs.readFileSync("/etc/apt/sources.list", "utf8"));
    for (const t of texts) {
        for (const line of t.split("\n")) {
            if (line.trim().startsWith("#")) continue;
            const m = /(?:^URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(https?:\/\/\S+)/.exec(line.trim());
            if (m && !/security/.test(m[1])) return m[1].replace(/\/+$/, "");
        }
    }
    return "http://deb.debian.org/debian";
}

/** This machine's extra CA certificates (name → content), which the stand-in trusts too. */
function localCAs(): Array<{ name: string; content: Buffer }> {
    const dir = "/usr/local/share/ca-certificates";
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir, { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".crt"))
        .sort()
        .map((f) => ({ name: f.replace(/\//g, "_"), content: fs.readFileSync(path.join(dir, f)) }));
}

function debArch(): string {
    return run("dpkg", ["--print-architecture"]).trim();
}

/** The stand-in's content key: everything its build depends on. */
export function standInKey(): string {
    const cas = localCAs().map((c) => `${c.name}:${sha256hex(c.content)}`);
    return sha256hex(
        JSON.stringify({ RECIPE, suite: STAND_IN_SUITE, packages: STAND_IN_PACKAGES, mirror: debianMirror(), arch: debArch(), cas, env: PATH_ENV }),
    );
}

/**
 * Runs `build(tmpDir)` once per machine for `finalDir`: a lock dir serialises concurrent callers
 * (a dead holder's lock is taken over), the result is renamed into place only when complete.
 */
async function buildOnce(finalDir: string, build: (tmp: string) => Promise<void>, log: (l: string) => void): Promise<void> {
    if (fs.existsSync(path.join(finalDir, "meta.json"))) return;
    fs.mkdirSync(path.dirname(finalDir), { recursive: true });
    const lock = `${finalDir}.lock`;
    for (;;) {
        try {
            fs.mkdirSync(lock);
            fs.writeFileSync(path.join(lock, "pid"), String(process.pid));
            break;
        } catch {
            let pid = NaN;
            try {
                pid = Number(fs.readFileSync(path.join(lock, "pid"), "utf8") || NaN);
            } catch {
                /* the holder has not written its pid yet, or just released the lock */
            }
            let alive = false;
            try {
                alive = Number.isInteger(pid) && process.kill(pid, 0);
            } catch {
                alive = false;
            }
            if (!alive && fs.existsSync(lock) && Date.now() - fs.statSync(lock).mtimeMs > 5000) {
                log(`taking over the stale lock ${lock}`);
                fs.rmSync(lock, { recursive: true, force: true });
                continue;
            }
            await new Promise((r) => setTimeout(r, 1000));
            if (fs.existsSync(path.join(finalDir, "meta.json"))) return;
        }
    }
    const tmp = fs.mkdtempSync(`${finalDir}.tmp-`);
    try {
        if (fs.existsSync(path.join(finalDir, "meta.json"))) return;
        await build(tmp);
        fs.rmSync(finalDir, { recursive: true, force: true });
        fs.renameSync(tmp, finalDir);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
        fs.rmSync(lock, { recursive: true, force: true });
    }
}

interface CachedImage {
    dir: string;
    /** Manifest digest. */
    digest: string;
    seconds: number;
}

function readMeta(dir: string): CachedImage {
    const m = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8")) as { digest: string; seconds: number };
    return { dir, digest: m.digest, seconds: m.seconds };
}

/** The python:3.12-slim stand-in's OCI layout (built on first use; ~2-3 min cold, 0 s cached). */
export async function standInImage(log: (l: string) => void = () => undefined): Promise<CachedImage> {
    const dir = path.join(cacheRoot(), `example-python-${standInKey().slice(0, 16)}`);
    await buildOnce(
        dir,
        async (tmp) => {
            const t0 = Date.now();
            const rootfs = path.join(tmp, "rootfs");
            const mirror = debianMirror();
            log(`debootstrap ${STAND_IN_SUITE} from ${mirror} into ${rootfs}`);
            run("debootstrap", ["--variant=minbase", `--include=${STAND_IN_PACKAGES.join(",")}`, STAND_IN_SUITE, rootfs, mirror], { log });
            // Behave like python:3.12-slim for Dockerfile.base: system-wide pip installs allowed
            // (the official image has no PEP 668 marker: its Python is not the distribution's).
            for (const d of fs.readdirSync(path.join(rootfs, "usr/lib"))) {
                if (/^python3\.\d+$/.test(d)) fs.rmSync(path.join(rootfs, "usr/lib", d, "EXTERNALLY-MANAGED"), { force: true });
            }
            // apt sources as the official bookworm images have them (main, updates, security).
            const security = mirror.replace(/\/debian$/, "/debian-security");
            fs.rmSync(path.join(rootfs, "etc/apt/sources.list"), { force: true });
            fs.writeFileSync(
                path.join(rootfs, "etc/apt/sources.list.d/debian.sources"),
                `Types: deb\nURIs: ${mirror}\nSuites: ${STAND_IN_SUITE} ${STAND_IN_SUITE}-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n` +
                    `Types: deb\nURIs: ${security}\nSuites: ${STAND_IN_SUITE}-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
            );
            const cas = localCAs();
            if (cas.length) {
                for (const c of cas) fs.writeFileSync(path.join(rootfs, "usr/local/share/ca-certificates", c.name), c.content);
                run("chroot", [rootfs, "update-ca-certificates"], { log });
            }
            // What a slim image does not ship: downloaded .debs, apt lists, device nodes, logs.
            for (const d of ["var/cache/apt/archives", "var/lib/apt/lists", "dev", "proc", "sys", "tmp", "run"]) {
                const p = path.join(rootfs, d);
                for (const e of fs.existsSync(p) ? fs.readdirSync(p) : [])
                    if (e !== "partial" && e !== "lock") fs.rmSync(path.join(p, e), { recursive: true, force: true });
            }
            for (const f of ["var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin", "var/log/bootstrap.log"])
                fs.rmSync(path.join(rootfs, f), { force: true });
            const version = run("chroot", [rootfs, "python3", "-c", "import platform; print(platform.python_version())"]).trim();
            const layerTar = path.join(tmp, "layer.tar");
            run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=security.capability", "-C", rootfs, "-cf", layerTar, "."], { log });
            fs.rmSync(rootfs, { recursive: true, force: true });
            const layout = path.join(tmp, "oci");
            const image = `${layout}:py`;
            run("umoci", ["init", "--layout", layout], { log });
            run("umoci", ["new", "--image", image], { log });
            run(
                "umoci",
                [
                    "raw",
                    "add-layer",
                    "--image",
                    image,
                    "--history.created_by",
                    `debootstrap --variant=minbase --include=${STAND_IN_PACKAGES.join(",")} ${STAND_IN_SUITE} (thinlayer test stand-in for python:3.12-slim)`,
                    layerTar,
                ],
                { log },
            );
            fs.rmSync(layerTar, { force: true });
            run(
                "umoci",
                [
                    "config",
                    "--image",
                    image,
                    "--no-history",
                    "--config.env",
                    PATH_ENV,
                    "--config.env",
                    "LANG=C.UTF-8",
                    "--config.cmd",
                    "python3",
                    "--config.label",
                    "org.opencontainers.image.description=thinlayer test stand-in for python:3.12-slim, from Debian packages",
                    "--config.env",
                    `PYTHON_VERSION=${version}`,
                ],
                { log },
            );
            run("umoci", ["gc", "--layout", layout], { log });
            const digest = ociTagDigest(layout, "py");
            fs.writeFileSync(
                path.join(tmp, "meta.json"),
                JSON.stringify({ digest, key: standInKey(), seconds: (Date.now() - t0) / 1000, builtAt: new Date().toISOString() }, null, 2),
            );
        },
        log,
    );
    return readMeta(dir);
}

/** The manifest digest an OCI layout's index.json names for a tag. */
function ociTagDigest(layout: string, tag: string): string {
    const idx = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
        manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
    };
    const m = idx.manifests.find((x) => x.annotations?.["org.opencontainers.image.ref.name"] === tag);
    if (!m) throw new Error(`OCI layout ${layout} has no tag ${tag}`);
    return m.digest;
}

/** Pushes the stand-in to `host` (a loopback registry); returns `host/library/python:3.12-slim@sha256:…`. */
export async function pushPythonStandIn(host: string, log: (l: string) => void = () => undefined): Promise<string> {
    const img = await standInImage(log);
    const ref = `${host}/${STAND_IN_REPOSITORY}:${STAND_IN_TAG}`;
    run("skopeo", ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", `oci:${path.join(img.dir, "oci")}:py`, `docker://${ref}`], { log });
    return `${ref}@${img.digest}`;
}

export interface ExampleBase {
    /** The stand-in in the registry: `host/library/python:3.12-slim@sha256:…` (Dockerfile.base's PYTHON_IMAGE). */
    pythonRef: string;
    /** The built base by digest: `host/<repository>@sha256:…`. */
    baseRef: string;
    /** thinlayer's base content hash for Dockerfile.base with PYTHON_IMAGE=pythonRef (the app hash's input). */
    baseHash: string;
    /** The tag the base is pushed under: `deps-<12 hex>` of baseHash, what `thinlayer ensure base` would look for. */
    baseTag: string;
}

/**
 * The example base in the registry at `host`: the stand-in pushed, Dockerfile.base built once per
 * machine (cached), then copied in under the tag thinlayer computes for this registry's
 * PYTHON_IMAGE, so `thinlayer ensure base` there finds it and reuses it.
 */
export async function exampleBase(host: string, opts: { repository?: string; platform?: string; log?: (l: string) => void } = {}): Promise<ExampleBase> {
    const log = opts.log ?? (() => undefined);
    const platform = opts.platform ?? "linux/amd64";
    const repository = `${host}/${opts.repository ?? "thinlayer/example-base"}`;
    const pythonRef = await pushPythonStandIn(host, log);
    const inputs = await computeBaseInputs({ contextDir: EXAMPLE_DIR, dockerfile: EXAMPLE_BASE_DOCKERFILE, buildArgs: { PYTHON_IMAGE: pythonRef }, platform });
    const tag = baseTag(inputs.hash);
    // The cache key must not depend on this registry's port: hash Dockerfile.base's inputs with a
    // PYTHON_IMAGE naming the stand-in by its own key instead.
    const keyed = await computeBaseInputs({
        contextDir: EXAMPLE_DIR,
        dockerfile: EXAMPLE_BASE_DOCKERFILE,
        buildArgs: { PYTHON_IMAGE: `thinlayer-stand-in/python:${standInKey()}` },
        platform,
    });
    const dir = path.join(cacheRoot(), `example-base-${sha256hex(`${RECIPE}\n${keyed.hash}`).slice(0, 16)}`);
    await buildOnce(
        dir,
        async (tmp) => {
            const t0 = Date.now();
            log(`building examples/django-app/Dockerfile.base FROM ${pythonRef} with the docker builder (cold: apt-get + pip install)`);
            const dockerd = await startDockerd();
            try {
                const r = await ensureImage(
                    {
                        image: "base",
                        context: EXAMPLE_DIR,
                        dockerfile: EXAMPLE_BASE_DOCKERFILE,
                        repository,
                        platform,
                        buildArgs: { PYTHON_IMAGE: pythonRef },
                        expectTag: tag,
                        builder: "docker",
                        json: false,
                    },
                    { log, builderEnv: dockerd.env },
                );
                run(
                    "skopeo",
                    ["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", `docker://${repository}@${r.digest}`, `dir:${path.join(tmp, "image")}`],
                    { log },
                );
                fs.writeFileSync(
                    path.join(tmp, "meta.json"),
                    JSON.stringify({ digest: r.digest, key: keyed.hash, seconds: (Date.now() - t0) / 1000, builtAt: new Date().toISOString() }, null, 2),
                );
            } finally {
                await dockerd.stop();
            }
        },
        log,
    );
    const img = readMeta(dir);
    run("skopeo", ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", `dir:${path.join(img.dir, "image")}`, `docker://${repository}:${tag}`], {
        log,
    });
    return { pythonRef, baseRef: `${repository}@${img.digest}`, baseHash: inputs.hash, baseTag: tag };
}

/**
 * `node --import tsx tests/helpers/example-base.ts` (what scripts/tools/example-base.sh runs):
 * builds what is missing, then proves the cache loads into a throwaway registry.
 */
async function warm(): Promise<void> {
    const log = (l: string) => process.stderr.write(`example-base: ${l}\n`);
    const { startRegistry } = await import("./registry");
    const t0 = Date.now();
    const standIn = await standInImage(log);
    log(`python stand-in ${standIn.digest} in ${standIn.dir} (${((Date.now() - t0) / 1000).toFixed(1)} s now; built in ${standIn.seconds.toFixed(1)} s)`);
    const registry = await startRegistry();
    try {
        const t1 = Date.now();
        const b = await exampleBase(registry.host, { log });
        log(`base ${b.baseRef} (${b.baseTag}) ready in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    } finally {
        await registry.stop();
    }
}

if (require.main === module) {
    warm().catch((e: unknown) => {
        process.stderr.write(`example-base: error: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
    });
}
