/**
 * The plan: every content hash a deploy depends on, computed offline from files and stack config.
 *
 * - base image: the base Dockerfile + exactly the context files its COPY/ADD read + build args +
 *   platform + FROM references (lib/hashing/inputs.ts);
 * - app image: the same analysis of the app Dockerfile + the base hash (a new base always means a
 *   new app image);
 * - migrations: the files matching `migrationGlobs`;
 * - settings: the non-secret settings a release deploys;
 * - releaseId: app hash + settings hash.
 *
 * No registry, no credentials: whether a tag already exists is the caller's question (lib/build/ensure.ts).
 */
import type { StackConfig } from "./config";
import type { InputFile } from "./model";

export type { InputFile } from "./model";
import { computeInputs, type InputsResult } from "./hashing/inputs";
import { frameDigest, settingsDigest } from "./hashing/digest";
import { hashFiles, listFilesByGlobs } from "./hashing/filehash";

export interface ImagePlan {
    image: "base" | "app";
    /** Repository name, e.g. thinlayer/base. */
    repository: string;
    /** 64 hex. */
    hash: string;
    /** base: deps-<12 hex>, app: app-<12 hex>. */
    tag: string;
    contextDir: string;
    /** Absolute path. */
    dockerfile: string;
    files: InputFile[];
    totalBytes: number;
    warnings: string[];
    /** The app Dockerfile only copies files onto its FROM image: eligible for a daemonless build. */
    copyOnly: boolean;
}

export interface Plan {
    stack: string;
    platform: string;
    base: ImagePlan;
    app: ImagePlan;
    migrations: { hash: string; files: InputFile[] };
    settings: { hash: string; values: Record<string, string> };
    /** "rel-" + 12 hex over (app.hash, settings.hash). */
    releaseId: string;
}

export interface HashOptions {
    /** Use the input snapshots and the file-hash stat cache (default true). The hash is identical either way. */
    cache?: boolean;
}

export type { InputsResult };

/** Tag of a base image from its hash. */
export function baseTag(hash: string): string {
    return `deps-${hash.slice(0, 12)}`;
}

/** Tag of an app image from its hash. */
export function appTag(hash: string): string {
    return `app-${hash.slice(0, 12)}`;
}

/** Release id from the app hash and the settings hash. */
export function releaseIdOf(appHash: string, settingsHash: string): string {
    return `rel-${frameDigest("thinlayer-release-v1", [
        ["app", appHash],
        ["settings", settingsHash],
    ]).slice(0, 12)}`;
}

/** Base image inputs: its Dockerfile analysis + build args + platform + FROM refs. */
export async function computeBaseInputs(
    args: { contextDir: string; dockerfile: string; buildArgs: Record<string, string>; platform: string },
    opts: HashOptions = {},
): Promise<InputsResult> {
    return computeInputs({ ...args, role: "base" }, opts);
}

/**
 * App image inputs: the app Dockerfile analysis + the base hash. BASE_IMAGE is replaced by the
 * base hash (the registry digest of the base is not known offline, and is a function of it).
 */
export async function computeAppInputs(
    args: { contextDir: string; dockerfile: string; buildArgs: Record<string, string>; platform: string; baseHash: string },
    opts: HashOptions = {},
): Promise<InputsResult> {
    return computeInputs({ ...args, role: "app" }, opts);
}

/** Hash of the migration files (globs relative to appDir). */
export async function computeMigrations(appDir: string, globs: string[], opts: HashOptions = {}): Promise<{ hash: string; files: InputFile[] }> {
    const paths = await listFilesByGlobs(appDir, globs);
    const files = await hashFiles(appDir, paths, opts);
    const hash = frameDigest(
        "thinlayer-migrations-v1",
        files.map((f) => ["file", f.path, f.executable ? "1" : "0", f.sha256]),
    );
    return { hash, files };
}

/**
 * `head` plus the inputs' properties as they are defined: a snapshot's `files` stays a lazy
 * getter (an object spread would call it and build the list, which the program never reads).
 */
function withInputs<T extends object>(head: T, inputs: InputsResult): T & InputsResult {
    return Object.defineProperties(head, Object.getOwnPropertyDescriptors(inputs)) as T & InputsResult;
}

/** Computes the whole plan for a stack. Offline; reads only the files the hashes cover. */
export async function computePlan(cfg: StackConfig, opts: HashOptions = {}): Promise<Plan> {
    const base = await computeBaseInputs({ contextDir: cfg.appDir, dockerfile: cfg.baseDockerfile, buildArgs: cfg.buildArgs, platform: cfg.platform }, opts);
    const [app, migrations] = await Promise.all([
        computeAppInputs({ contextDir: cfg.appDir, dockerfile: cfg.appDockerfile, buildArgs: {}, platform: cfg.platform, baseHash: base.hash }, opts),
        computeMigrations(cfg.appDir, cfg.migrationGlobs, opts),
    ]);
    const settingsHash = settingsDigest(cfg.settings);
    return {
        stack: cfg.stack,
        platform: cfg.platform,
        base: withInputs(
            { image: "base", repository: cfg.baseRepository, tag: baseTag(base.hash), contextDir: cfg.appDir, dockerfile: cfg.baseDockerfile },
            base,
        ),
        app: withInputs({ image: "app", repository: cfg.appRepository, tag: appTag(app.hash), contextDir: cfg.appDir, dockerfile: cfg.appDockerfile }, app),
        migrations,
        settings: { hash: settingsHash, values: { ...cfg.settings } },
        releaseId: releaseIdOf(app.hash, settingsHash),
    };
}
