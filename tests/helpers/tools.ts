/**
 * Real external tools (registry, buildah, skopeo, umoci, busybox). Locally a missing tool skips the
 * tests that need it, with the reason; under CI=true it fails them: CI installs every tool, so a
 * missing one is a broken install, not something to hide.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import type { TestContext } from "node:test";

export function which(tool: string): string | undefined {
    const r = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
    const p = r.stdout.trim();
    return r.status === 0 && p ? p : undefined;
}

/** Returns false (after t.skip) when a tool is missing locally; throws under CI=true. */
export function needTools(t: TestContext, ...tools: string[]): boolean {
    const missing = tools.filter((x) => which(x) === undefined);
    if (missing.length === 0) return true;
    const msg = `missing tools: ${missing.join(", ")} (install: apt-get install -y docker-registry apache2-utils buildah skopeo umoci busybox-static)`;
    if (process.env.CI === "true") throw new Error(`${msg}; CI=true, so this is a failure, not a skip`);
    t.skip(msg);
    return false;
}

/** The cache where scripts/tools/*.sh put the Go tools they build (`bin/` holds symlinks to them). */
export function toolCacheDir(): string {
    return process.env.THINLAYER_CACHE ?? `${process.env.HOME ?? "/root"}/.cache/thinlayer`;
}

/** A tool's path: on PATH first, then `$THINLAYER_CACHE/bin` (where scripts/tools/*.sh link them). */
export function findTool(tool: string): string | undefined {
    const onPath = which(tool);
    if (onPath) return onPath;
    const cached = `${toolCacheDir()}/bin/${tool}`;
    try {
        accessSync(cached, constants.X_OK);
        return cached;
    } catch {
        return undefined;
    }
}

/**
 * Like needTools, for tools that PATH or `$THINLAYER_CACHE/bin` may hold (built by a script in
 * scripts/tools/). Returns their paths, or undefined (after t.skip) when one is missing locally;
 * throws under CI=true. `install` says how to get them, e.g. "bash scripts/tools/kube.sh".
 */
export function needBuiltTools(t: TestContext, install: string, ...tools: string[]): Record<string, string> | undefined {
    const found: Record<string, string> = {};
    const missing: string[] = [];
    for (const tool of tools) {
        const p = findTool(tool);
        if (p) found[tool] = p;
        else missing.push(tool);
    }
    if (missing.length === 0) return found;
    const msg = `missing tools: ${missing.join(", ")} (not on PATH nor in ${toolCacheDir()}/bin; build them with: ${install})`;
    if (process.env.CI === "true") throw new Error(`${msg}; CI=true, so this is a failure, not a skip`);
    t.skip(msg);
    return undefined;
}

/** Runs `openssl args` in `dir` (test certificates); throws with its stderr when it fails. */
export function openssl(dir: string, args: string[]): void {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
}
