/**
 * `thinlayer ensure base|app`: make sure `repo:tag` exists in the registry — reuse it when it does
 * (the registry, not a stack's state, is the source of truth), else build it and push it.
 *
 * This module holds the pure argv builder the Pulumi program uses (`ensureCommandArgs`), the
 * preview-time probe (`tagExists`) and the orchestration (`ensureImage`).
 */
import { RegistryClient } from "./registry/client";
import { parseRepository } from "./registry/reference";

export type ImageKind = "base" | "app";
export type EnsureAction = "built" | "reused";
export type EnsureHow = "registry" | "daemonless" | "buildah" | "buildx" | "podman";

/** Options of one `thinlayer ensure` run, as the CLI parses them and `ensureCommandArgs` writes them. */
export interface EnsureOptions {
    /** Which image. */
    image: ImageKind;
    /** Build context directory. */
    context: string;
    /** Dockerfile path (absolute, or relative to the working directory). */
    dockerfile: string;
    /** `host[:port]/repo`, no tag. */
    repository: string;
    /** Target platform. @default "linux/amd64" */
    platform?: string;
    /** Build args (base, and the builder fallback of app). */
    buildArgs?: Record<string, string>;
    /** The tag the plan computed (`deps-<12 hex>` / `app-<12 hex>`); recomputed and checked. */
    expectTag: string;
    /** App only: the base image by digest, `host/repo@sha256:…`. */
    baseRef?: string;
    /** App only: the base content hash (64 hex), part of the app hash. */
    baseHash?: string;
    /** Builder choice. @default "auto" */
    builder?: "auto" | "buildx" | "podman" | "buildah";
    /** Print one JSON object on stdout. @default true in ensureCommandArgs */
    json?: boolean;
}

/** The single JSON object `ensure --json` prints. */
export interface EnsureResult {
    ref: string;
    repository: string;
    tag: string;
    digest: string;
    action: EnsureAction;
    how: EnsureHow;
    bytesUploaded: number;
    bytesDownloaded: number;
    seconds: number;
    /** Set when another run pushed the tag first and our reproducible result differs (never overwritten). */
    ourDigest?: string;
    warnings?: string[];
}

/**
 * The argv after `thinlayer` for one ensure run (pure; the Pulumi local.Command runs
 * `node <projectDir>/bin/thinlayer.js ...this`). Build args are sorted so the command line — and
 * so the resource's inputs — do not depend on object key order.
 */
export function ensureCommandArgs(opts: EnsureOptions): string[] {
    const argv = ["ensure", opts.image, "--context", opts.context, "--dockerfile", opts.dockerfile, "--repository", opts.repository, "--platform", opts.platform ?? "linux/amd64"];
    for (const k of Object.keys(opts.buildArgs ?? {}).sort()) argv.push("--build-arg", `${k}=${(opts.buildArgs ?? {})[k]}`);
    if (opts.image === "app") {
        if (opts.baseRef !== undefined) argv.push("--base-ref", opts.baseRef);
        if (opts.baseHash !== undefined) argv.push("--base-hash", opts.baseHash);
    }
    argv.push("--expect-tag", opts.expectTag);
    if (opts.builder !== undefined && opts.builder !== "auto") argv.push("--builder", opts.builder);
    if (opts.json ?? true) argv.push("--json");
    return argv;
}

/**
 * Whether `repository:tag` exists, for preview-time logging. Never throws: auth or network trouble
 * (or a malformed repository) gives "unknown".
 */
export async function tagExists(repository: string, tag: string, opts: { timeoutMs?: number; dockerConfig?: string } = {}): Promise<"exists" | "missing" | "unknown"> {
    try {
        const { host, repository: repo } = parseRepository(repository);
        const client = new RegistryClient(host, { timeoutMs: opts.timeoutMs ?? 10_000, attempts: 2, dockerConfig: opts.dockerConfig });
        return (await client.headManifest(repo, tag)) ? "exists" : "missing";
    } catch {
        return "unknown";
    }
}
