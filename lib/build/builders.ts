/**
 * Image builders thinlayer can drive: `docker buildx`, the Docker engine (`docker`), `podman`,
 * `buildah` (first available, or the one asked for). Every build sets the platform explicitly and pushes `repo:tag`; registry
 * credentials go in a temporary auth file (mode 0600, deleted afterwards), never the user's
 * ~/.docker/config.json. The digest is then read back from the registry by the caller.
 *
 * buildah runs with `--storage-driver vfs` and `--isolation chroot` (works as root with no daemon
 * and no overlay support); THINLAYER_BUILDAH_ROOT / THINLAYER_BUILDAH_RUNROOT pick its storage.
 * Loopback registries are plain HTTP, so pushes/pulls to them use `--tls-verify=false`.
 *
 * `docker` is the engine's BuildKit: `docker buildx build --push` when the buildx plugin is
 * present, else `DOCKER_BUILDKIT=1 docker build` + `docker push` (clients before 23 drive the
 * daemon's built-in BuildKit themselves; 23+ need buildx for it). THINLAYER_DOCKER picks the
 * client binary (e.g. Debian's /usr/bin/docker 20.10 next to a newer client without buildx).
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { inputError, ThinlayerError } from "../errors";
import type { Credentials } from "../oci/credentials";
import { isLoopbackHost } from "../oci/reference";
import { BUILDER_CHOICES_TEXT, BUILDER_ORDER, type BuilderChoice, type BuilderName } from "../rules";


function works(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
    try {
        return spawnSync(cmd, args, { stdio: "ignore", timeout: 15_000, env }).status === 0;
    } catch {
        return false;
    }
}

/** The docker client thinlayer runs (THINLAYER_DOCKER, else `docker` on PATH). */
function dockerClient(env: NodeJS.ProcessEnv = process.env): string {
    return env.THINLAYER_DOCKER ?? "docker";
}

/** Whether the docker client has the buildx plugin. */
function dockerHasBuildx(env: NodeJS.ProcessEnv = process.env): boolean {
    return works(dockerClient(env), ["buildx", "version"], env);
}

/** The client's major version (`docker version` without a daemon still prints it), or undefined. */
function dockerClientMajor(env: NodeJS.ProcessEnv): number | undefined {
    try {
        const r = spawnSync(dockerClient(env), ["version", "--format", "{{.Client.Version}}"], { encoding: "utf8", timeout: 15_000, env });
        const m = /^(\d+)\./.exec(r.stdout.trim());
        return m ? Number(m[1]) : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Why the `docker` builder cannot run here, or undefined when it can: the daemon must answer, and
 * the client must reach BuildKit (the buildx plugin, or a client older than 23 that drives the
 * daemon's built-in BuildKit itself).
 */
export function dockerBuilderProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
    const client = dockerClient(env);
    if (!works(client, ["version", "--format", "{{.Server.Version}}"], env)) return `${client} cannot reach a Docker daemon (check DOCKER_HOST, and that dockerd runs)`;
    if (dockerHasBuildx(env)) return undefined;
    const major = dockerClientMajor(env);
    if (major !== undefined && major < 23) return undefined;
    return `${client} (client ${major ?? "of unknown version"}) needs the buildx plugin for BuildKit and has none (install docker-buildx-plugin, or set THINLAYER_DOCKER to a client before 23 such as Debian's /usr/bin/docker)`;
}

/** Whether a builder is installed and answers (in `env`: DOCKER_HOST, THINLAYER_DOCKER, PATH). */
export function builderAvailable(b: BuilderName, env: NodeJS.ProcessEnv = process.env): boolean {
    if (b === "buildx") return dockerHasBuildx(env);
    if (b === "docker") return dockerBuilderProblem(env) === undefined;
    return works(b, ["--version"], env);
}

/** How to make an unavailable builder available (the fix of the `--builder` error). */
export function builderInstallHint(b: BuilderName, env: NodeJS.ProcessEnv = process.env): string {
    if (b === "buildx") return "install docker with the buildx plugin";
    if (b === "docker") return dockerBuilderProblem(env) ?? "start dockerd and point DOCKER_HOST at it";
    return `install ${b}`;
}

/** The builder to use: the requested one (must be available), or the first available. */
export function selectBuilder(choice: BuilderChoice = "auto", available: (b: BuilderName) => boolean = builderAvailable, hint: (b: BuilderName) => string = builderInstallHint): BuilderName {
    if (choice !== "auto") {
        if (!BUILDER_ORDER.includes(choice)) {
            throw inputError({ input: "--builder", value: JSON.stringify(choice), allowed: BUILDER_CHOICES_TEXT, fix: "pick one of those" });
        }
        if (!available(choice)) {
            throw inputError({ input: "--builder", value: choice, allowed: "an installed builder", fix: `${hint(choice)}, or use --builder auto` });
        }
        return choice;
    }
    const found = BUILDER_ORDER.find((b) => available(b));
    if (!found) {
        throw new ThinlayerError("no image builder found: tried docker buildx, docker (the engine's BuildKit), podman, buildah. Fix: install one (e.g. apt-get install -y buildah), or make the app Dockerfile copy-only so it builds without one.");
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
    /** Extra environment (tests: buildah storage, DOCKER_HOST, THINLAYER_DOCKER). */
    env?: NodeJS.ProcessEnv;
    /** `docker` builder only: drive BuildKit through the buildx plugin (else `DOCKER_BUILDKIT=1 docker build`). */
    dockerBuildx?: boolean;
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
        case "docker": {
            // The docker client reads credentials from $DOCKER_CONFIG: point it at the temporary dir.
            const docker = dockerClient(env);
            const dockerEnv = { DOCKER_CONFIG: path.dirname(authFile) };
            if (r.builder === "buildx" || r.dockerBuildx === true) {
                return [{ cmd: docker, args: ["buildx", "build", "--platform", r.platform, "-f", r.dockerfile, "-t", r.ref, ...bargs, "--push", r.contextDir], env: dockerEnv }];
            }
            return [
                { cmd: docker, args: ["build", "--platform", r.platform, "-f", r.dockerfile, "-t", r.ref, ...bargs, r.contextDir], env: { ...dockerEnv, DOCKER_BUILDKIT: "1" } },
                { cmd: docker, args: ["push", r.ref], env: dockerEnv, push: true },
            ];
        }
    }
}

/**
 * The temporary $DOCKER_CONFIG for a docker client: the auth file plus links to the user's
 * cli-plugins, buildx and contexts dirs and their currentContext, so swapping the config dir for
 * credentials' sake does not lose the buildx plugin, its builder instances or the chosen context.
 */
function linkDockerConfig(tempDir: string, userDir: string): void {
    for (const name of ["cli-plugins", "buildx", "contexts"]) {
        const src = path.join(userDir, name);
        if (fs.existsSync(src)) fs.symlinkSync(src, path.join(tempDir, name));
    }
    try {
        const user = JSON.parse(fs.readFileSync(path.join(userDir, "config.json"), "utf8")) as { currentContext?: unknown };
        if (typeof user.currentContext === "string") {
            const file = path.join(tempDir, "config.json");
            const cfg = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
            fs.writeFileSync(file, JSON.stringify({ ...cfg, currentContext: user.currentContext }), { mode: 0o600 });
        }
    } catch {
        /* no user config, or not JSON: nothing to carry over */
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
        if (r.builder === "buildx" || r.builder === "docker") linkDockerConfig(auth.dir, baseEnv.DOCKER_CONFIG ?? path.join(os.homedir(), ".docker"));
        const req = r.builder === "docker" && r.dockerBuildx === undefined ? { ...r, dockerBuildx: dockerHasBuildx(baseEnv) } : r;
        for (const c of builderCommands(req, auth.file, baseEnv)) {
            if (c.push && skipPush && (await skipPush())) return false;
            await run(c.cmd, c.args, { ...baseEnv, ...(c.env ?? {}) }, r.stdio);
        }
        return true;
    } finally {
        fs.rmSync(auth.dir, { recursive: true, force: true });
    }
}
