/**
 * Real external tools (registry, buildah, skopeo, umoci, busybox). Locally a missing tool skips the
 * tests that need it, with the reason; under CI=true it fails them: CI installs every tool, so a
 * missing one is a broken install, not something to hide.
 */
import { spawnSync } from "node:child_process";
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
