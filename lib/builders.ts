/**
 * Image builders thinlayer can drive: `docker buildx`, `podman`, `buildah` (first available, or the
 * one asked for). Every build sets the platform explicitly and pushes `repo:tag`; registry
 * credentials go in a temporary auth file (mode 0600, deleted afterwards), never the user's
 * ~/.docker/config.json. The digest is then read back from the registry by the caller.
 *
 * buildah runs with `--storage-driver vfs` and `--isolation chroot` (works as root with no daemon
 * and no overlay support); THINLAYER_BUILDAH_ROOT / THINLAYER_BUILDAH_RUNROOT pick its storage.
 * Loopback registries are plain HTTP, so pushes/pulls to them use `--tls-verify=false`.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inputError, ThinlayerError } from "./errors";
import type { Credentials } from "./registry/credentials";
import { isLoopbackHost } from "./registry/reference";

export type BuilderName = "buildx" | "podman" | "buildah";
export const BUILDER_ORDER: readonly BuilderName[] = ["buildx", "podman", "buildah"];

function works(cmd: string, args: string[]): boolean {
    try {
        return spawnSync(cmd, args, { stdio: "ignore", timeout: 15_000 }).status === 0;
    } catch {
        return false;
    }
}

/** Whether a builder is installed and answers. */
export function builderAvailable(b: BuilderName): boolean {
    if (b === "buildx") return works("docker", ["buildx", "version"]);
    return works(b, ["--version"]);
}

/** The builder to use: the requested one (must be available), or the first available. */
export function selectBuilder(choice: "auto" | BuilderName = "auto", available: (b: BuilderName) => boolean = builderAvailable): BuilderName {
    if (choice !== "auto") {
        if (!BUILDER_ORDER.includes(choice)) {
            throw inputError({ input: "--builder", value: JSON.stringify(choice), allowed: "auto, buildx, podman or buildah", fix: "pick one of those" });
        }
        if (!available(choice)) {
            throw inputError({ input: "--builder", value: choice, allowed: "an installed builder", fix: `install ${choice === "buildx" ? "docker with the buildx plugin" : choice}, or use --builder auto` });
        }
        return choice;
    }
    const found = BUILDER_ORDER.find((b) => available(b));
    if (!found) {
        throw new ThinlayerError("no image builder found: tried docker buildx, podman, buildah. Fix: install one (e.g. apt-get install -y buildah), or make the app Dockerfile copy-only so it builds without one.");
    }
    return found;
}

export interface BuildRequest {
    builder: BuilderName;
    contextDir: string;
    dockerfile: string;
    /** `host/repo:tag` to push. */
    ref: string;
    /** Registry host (for the auth file and TLS choice). */
    host: string;
    platform: string;
    buildArgs: Record<string, string>;
    credentials?: Credentials;
    /** Builder output goes here (stderr by default: stdout is the --json channel). */
    stdio?: "inherit-stderr" | "ignore";
    /** Extra environment (tests: buildah storage). */
    env?: NodeJS.ProcessEnv;
}

/** Writes a temporary Docker-style auth file; returns its dir and path. */
export function writeTempAuth(host: string, creds: Credentials | undefined): { dir: string; file: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "thinlayer-auth-"));
    fs.chmodSync(dir, 0o700);
    const file = path.join(dir, "config.json");
    const auths: Record<string, { auth: string }> = {};
    if (creds?.username !== undefined && creds.password !== undefined) {
        auths[host] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString("base64") };
    }
    fs.writeFileSync(file, JSON.stringify({ auths }), { mode: 0o600 });
    return { dir, file };
}

/** The commands a build runs (pure; the auth file path is passed in). */
export function builderCommands(r: BuildRequest, authFile: string, env: NodeJS.ProcessEnv = process.env): Array<{ cmd: string; args: string[]; env?: NodeJS.ProcessEnv; push?: boolean }> {
    const bargs = Object.keys(r.buildArgs)
        .sort()
        .flatMap((k) => ["--build-arg", `${k}=${r.buildArgs[k]}`]);
    const tls = isLoopbackHost(r.host) ? ["--tls-verify=false"] : [];
    switch (r.builder) {
        case "buildah": {
            const storage = ["--storage-driver", "vfs", ...(env.THINLAYER_BUILDAH_ROOT ? ["--root", env.THINLAYER_BUILDAH_ROOT] : []), ...(env.THINLAYER_BUILDAH_RUNROOT ? ["--runroot", env.THINLAYER_BUILDAH_RUNROOT] : [])];
            return [
                { cmd: "buildah", args: [...storage, "bud", "--isolation", "chroot", "--platform", r.platform, "--authfile", authFile, ...tls, "-f", r.dockerfile, "-t", r.ref, ...bargs, r.contextDir] },
                { cmd: "buildah", args: [...storage, "push", "--authfile", authFile, ...tls, r.ref, `docker://${r.ref}`], push: true },
            ];
        }
        case "podman":
            return [
                { cmd: "podman", args: ["build", "--platform", r.platform, "--authfile", authFile, ...tls, "-f", r.dockerfile, "-t", r.ref, ...bargs, r.contextDir] },
                { cmd: "podman", args: ["push", "--authfile", authFile, ...tls, r.ref, `docker://${r.ref}`], push: true },
            ];
        case "buildx":
            // buildx reads credentials from $DOCKER_CONFIG: point it at the temporary dir.
            return [{ cmd: "docker", args: ["buildx", "build", "--platform", r.platform, "-f", r.dockerfile, "-t", r.ref, ...bargs, "--push", r.contextDir], env: { DOCKER_CONFIG: path.dirname(authFile) } }];
    }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdio: BuildRequest["stdio"]): Promise<void> {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { env, stdio: ["ignore", stdio === "ignore" ? "ignore" : process.stderr, stdio === "ignore" ? "pipe" : process.stderr] });
        let tail = "";
        p.stderr?.on("data", (c: Buffer) => {
            tail = (tail + c.toString("utf8")).slice(-2000);
        });
        p.on("error", (e) => reject(new ThinlayerError(`${cmd} could not start: ${e.message}`)));
        p.on("exit", (code) => {
            if (code === 0) resolve();
            else reject(new ThinlayerError(`${cmd} ${args.slice(0, 3).join(" ")} … failed with exit code ${code}${tail ? `:\n${tail}` : ""}`));
        });
    });
}

/**
 * Builds and pushes with the chosen builder. Credentials only ever touch a temporary auth file.
 * `skipPush` is asked between build and push (buildah, podman): true means the tag appeared
 * meanwhile (another run won the race), so the push — an overwrite — is skipped. Returns whether
 * it pushed.
 */
export async function buildAndPush(r: BuildRequest, skipPush?: () => Promise<boolean>): Promise<boolean> {
    const auth = writeTempAuth(r.host, r.credentials);
    try {
        const baseEnv = { ...process.env, ...(r.env ?? {}) };
        for (const c of builderCommands(r, auth.file, baseEnv)) {
            if (c.push && skipPush && (await skipPush())) return false;
            await run(c.cmd, c.args, { ...baseEnv, ...(c.env ?? {}) }, r.stdio);
        }
        return true;
    } finally {
        fs.rmSync(auth.dir, { recursive: true, force: true });
    }
}
