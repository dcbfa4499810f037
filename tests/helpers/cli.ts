/** The `thinlayer` CLI as users run it: the real entry point (bin/thinlayer.js) as a subprocess. */
import * as path from "node:path";
import { spawnSync } from "node:child_process";

export const REPO = path.resolve(__dirname, "../..");

export interface CliRun {
    code: number | null;
    stdout: string;
    stderr: string;
}

/** A runner of `thinlayer <args>` from the repo root with this cache dir (each test file isolates its own). */
export function cliRunner(cacheDir: string, timeoutMs = 60_000): (...args: string[]) => CliRun {
    return (...args) => {
        const r = spawnSync(process.execPath, [path.join(REPO, "bin/thinlayer.js"), ...args], {
            cwd: REPO,
            encoding: "utf8",
            env: { ...process.env, THINLAYER_CACHE_DIR: cacheDir },
            timeout: timeoutMs,
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
}
